package httpapi

import (
	"net/http"
	"time"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/httpapi/wire"
)

// Native admin keys: permission-scoped keys made by an admin key (or the
// operator CLI). The secret is in the create response only.

type adminKeyJSON struct {
	ID          string                  `json:"id"`
	Object      string                  `json:"object"`
	Name        string                  `json:"name"`
	Permissions []credential.Permission `json:"permissions"`
	Prefix      string                  `json:"prefix"`
	CreatedAt   string                  `json:"created_at"`
	ExpiresAt   *string                 `json:"expires_at"`
	LastUsedAt  *string                 `json:"last_used_at"`
	Revoked     bool                    `json:"revoked"`
	RevokedAt   *string                 `json:"revoked_at"`
}

// optionalTime is an RFC 3339 time, or null for the zero time.
func optionalTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := rfc3339(t)
	return &s
}

func toAdminKey(k authority.AdminKey) adminKeyJSON {
	return adminKeyJSON{
		ID: k.ID, Object: "admin_key", Name: k.Name, Permissions: k.Permissions, Prefix: k.DisplayPrefix,
		CreatedAt: rfc3339(k.CreatedAt), ExpiresAt: optionalTime(k.ExpiresAt), LastUsedAt: optionalTime(k.LastUsedAt),
		Revoked: !k.RevokedAt.IsZero(), RevokedAt: optionalTime(k.RevokedAt),
	}
}

func (n *native) registerAdminKeys(mux wire.Router) {
	mux.Handle("POST /v1/admin_keys", n.Authenticated(n.createAdminKey))
	mux.Handle("GET /v1/admin_keys", n.Authenticated(n.listAdminKeys))
	mux.Handle("GET /v1/admin_keys/{id}", n.Authenticated(n.getAdminKey))
	mux.Handle("POST /v1/admin_keys/{id}/revoke", n.Authenticated(n.revokeAdminKey))
}

func (n *native) createAdminKey(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	f, err := wire.ReadForm(r, "name", "permissions", "expires_at")
	var in authority.CreateAdminKeyInput
	if err == nil {
		in.Name, err = f.String("name")
	}
	if err == nil {
		in.Permissions, err = f.Strings("permissions")
	}
	var expires *string
	if err == nil {
		expires, err = f.String("expires_at")
	}
	if err == nil && expires != nil {
		t, perr := time.Parse(time.RFC3339, *expires)
		if perr != nil {
			err = credential.ParamError(credential.CodeInvalid, "expires_at", "must be an RFC 3339 date-time")
		}
		in.ExpiresAt = &t
	}
	if err != nil {
		return err
	}
	k, secret, err := n.auth.CreateAdminKey(r.Context(), c, in)
	if err != nil {
		return err
	}
	body := toAdminKey(k)
	wire.WriteSecretJSON(w, http.StatusCreated, struct {
		adminKeyJSON
		Secret string `json:"secret"`
	}{body, secret.Reveal()})
	return nil
}

func (n *native) listAdminKeys(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	p, err := readCursorPage(r)
	var keys []authority.AdminKey
	if err == nil {
		keys, err = n.auth.ListAdminKeys(r.Context(), c)
	}
	items, next := pageOf(keys, p)
	page := mapPage(items, next, toAdminKey)
	return respond(w, http.StatusOK, map[string]any{"data": page.Data, "total_count": len(keys), "next_cursor": page.NextCursor}, err)
}

func (n *native) getAdminKey(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	k, err := n.auth.GetAdminKey(r.Context(), c, r.PathValue("id"))
	return respond(w, http.StatusOK, toAdminKey(k), err)
}

func (n *native) revokeAdminKey(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	k, err := n.auth.RevokeAdminKey(r.Context(), c, r.PathValue("id"))
	return respond(w, http.StatusOK, toAdminKey(k), err)
}

package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/httpapi/freezer"
	"github.com/keyward/keyward/internal/httpapi/wire"
)

// Native user-scoped families: a user's personal access tokens and backup
// clients, under /v1/users/{user_id}. An admin key acts for the user in
// the path; a PAT acts only as its own user (another user's path is a
// 404, as a resource it cannot see). A PAT's token is in its create
// answer only.

type nativePATJSON struct {
	ID          string   `json:"id"`
	UserID      string   `json:"user_id"`
	Name        string   `json:"name"`
	Description *string  `json:"description"`
	Scopes      []string `json:"scopes"`
	WorkspaceID *string  `json:"workspace_id"`
	TokenPrefix string   `json:"token_prefix"`
	CreatedAt   string   `json:"created_at"`
	LastUsedAt  *string  `json:"last_used_at"`
	ExpiresAt   *string  `json:"expires_at"`
	// The token's meta (controls at verify time).
	Meta json.RawMessage `json:"meta"`
}

func toNativePAT(p authority.PAT) nativePATJSON {
	out := nativePATJSON{ID: p.ID, UserID: p.UserID, Name: p.Name, Description: optionalText(p.Description), Scopes: p.Scopes,
		WorkspaceID: optionalText(p.WorkspaceID), TokenPrefix: p.TokenPrefix, CreatedAt: rfc3339(p.CreatedAt),
		LastUsedAt: optionalTime(p.LastUsedAt), ExpiresAt: optionalTime(p.ExpiresAt), Meta: nativeMeta(p.Meta)}
	if out.Scopes == nil {
		out.Scopes = []string{}
	}
	return out
}

type nativeClientJSON struct {
	ClientID  string          `json:"client_id"`
	UserID    string          `json:"user_id"`
	Client    json.RawMessage `json:"client"`
	CreatedAt string          `json:"created_at"`
}

func toNativeClient(cl credential.Client) nativeClientJSON {
	return nativeClientJSON{ClientID: cl.ClientID, UserID: cl.UserID, Client: cl.Doc, CreatedAt: rfc3339(cl.CreatedAt)}
}

// registerClient registers a client from its client-info object (the JSON
// object the request sends, client_id included), by Freezer's document
// rules, so both surfaces keep the same documents.
func registerClient(ctx context.Context, a *authority.Authority, c authority.Caller, body []byte) (string, error) {
	return a.CreateClient(ctx, c, func() (authority.NewClient, error) { return freezer.DecodeClient(body) })
}

// everyClient keeps every client (the native list has no search).
func everyClient(credential.Client) (bool, error) { return true, nil }

func (n *native) registerUserFamilies(mux wire.Router) {
	const u = "/v1/users/{user_id}"
	routes := map[string]wire.Handler{
		"POST " + u + "/pats":                  n.createPAT,
		"GET " + u + "/pats":                   n.listPATs,
		"PATCH " + u + "/pats/{pat_id}":        n.updatePAT,
		"POST " + u + "/pats/{pat_id}/revoke":  n.revokePAT,
		"POST " + u + "/clients":               n.createClient,
		"GET " + u + "/clients":                n.listClients,
		"GET " + u + "/clients/{client_id}":    n.getClient,
		"DELETE " + u + "/clients/{client_id}": n.deleteClient,
	}
	for pattern, h := range routes {
		mux.Handle(pattern, n.Authenticated(n.actingForPathUser(h)))
	}
}

// actingForPathUser makes the caller act for the path's user.
func (n *native) actingForPathUser(h wire.Handler) wire.Handler {
	return func(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
		c, err := c.ForUser(r.PathValue("user_id"))
		if err != nil {
			return err
		}
		return h(w, r, c)
	}
}

// createPAT: {"name", "description", "scopes", "workspace_id", "expires_at" (RFC 3339)}.
func (n *native) createPAT(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	f, err := wire.ReadForm(r, "name", "description", "scopes", "workspace_id", "expires_at")
	var in authority.CreatePATInput
	if err == nil {
		in.Name, err = f.String("name")
	}
	if err == nil {
		in.Description, err = f.String("description")
	}
	if err == nil {
		in.Scopes, err = f.Strings("scopes")
	}
	if err == nil {
		in.WorkspaceID, err = f.String("workspace_id")
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
	var p authority.PAT
	if err == nil {
		p, err = n.auth.CreatePAT(r.Context(), c, nil, in)
	}
	if err != nil {
		return err
	}
	wire.WriteSecretJSON(w, http.StatusCreated, struct {
		nativePATJSON
		Token string `json:"token"`
	}{toNativePAT(p), p.Token})
	return nil
}

// listPATs: the user's live PATs, newest first; ?meta.<key>=<value>
// filters on meta (the authority returns the filtered list whole, so the
// page and its cursor count matches only).
func (n *native) listPATs(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	p, err := readCursorPage(r)
	var list []authority.PAT
	if err == nil {
		list, err = n.auth.ListPATs(r.Context(), c, nil, metaQuery(r))
	}
	items, next := pageOf(list, p)
	return respond(w, http.StatusOK, mapPage(items, next, toNativePAT), err)
}

// updatePAT renames a token or changes its description: {"name", "description"}.
func (n *native) updatePAT(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	f, err := wire.ReadForm(r, "name", "description")
	var in authority.UpdatePATInput
	if err == nil {
		in.Name, err = f.String("name")
	}
	if err == nil {
		in.Description, err = f.String("description")
	}
	var p authority.PAT
	if err == nil {
		p, err = n.auth.UpdatePAT(r.Context(), c, nil, r.PathValue("pat_id"), in)
	}
	return respond(w, http.StatusOK, toNativePAT(p), err)
}

func (n *native) revokePAT(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	return respond(w, 0, nil, n.auth.RevokePAT(r.Context(), c, nil, r.PathValue("pat_id")))
}

// createClient registers a backup client: the body is its client-info
// object, with client_id.
func (n *native) createClient(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	body, err := wire.Body(r)
	var f *wire.Form
	if err == nil {
		f, err = wire.ParseForm(body) // one strict JSON object
	}
	var clientID *string
	if err == nil {
		clientID, err = f.String("client_id")
	}
	if err == nil && clientID == nil {
		err = credential.ParamError(credential.CodeMissing, "client_id", "is missing")
	}
	var id string
	if err == nil {
		id, err = registerClient(r.Context(), n.auth, c, body)
	}
	var cl credential.Client
	if err == nil {
		cl, err = n.auth.GetClient(r.Context(), c, id)
	}
	return respond(w, http.StatusCreated, toNativeClient(cl), err)
}

func (n *native) listClients(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	p, err := readCursorPage(r)
	if err != nil {
		return err
	}
	// One more than the page tells whether another page follows.
	limit, offset := p.limit+1, p.offset
	list, err := n.auth.ListClients(r.Context(), c, everyClient, &limit, &offset)
	var next *string
	if len(list) > int(p.limit) {
		list = list[:p.limit]
		s := encodeCursor(p.offset + p.limit)
		next = &s
	}
	return respond(w, http.StatusOK, mapPage(list, next, toNativeClient), err)
}

func (n *native) getClient(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	cl, err := n.auth.GetClient(r.Context(), c, r.PathValue("client_id"))
	return respond(w, http.StatusOK, toNativeClient(cl), err)
}

func (n *native) deleteClient(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	return respond(w, 0, nil, n.auth.DeleteClient(r.Context(), c, r.PathValue("client_id")))
}

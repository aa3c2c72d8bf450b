package console

import (
	"net/http"
	"strings"
	"time"

	"github.com/keyward/keyward/client"
)

// families are the permission families an admin key can hold, in the
// order the create form lists them.
var families = []string{"machines", "m2m_tokens", "api_keys", "actor_tokens", "organizations", "workspaces",
	"pats", "clients", "scopes", "instance", "audit", "admin_keys", "webhooks"}

type adminKeysData struct {
	Keys     []client.AdminKey
	Families []string
	Now      time.Time
}

func (c *Console) adminKeys(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	keys, err := kw.ListAdminKeys(r.Context())
	if err != nil {
		return err
	}
	return c.ok(w, r, s, "adminkeys.html", "Admin keys", "admin_keys", adminKeysData{Keys: keys, Families: families, Now: c.now()})
}

func (c *Console) createAdminKey(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	f := r.PostForm
	in := client.AdminKeyParams{Name: strings.TrimSpace(f.Get("name")), Permissions: []string{}}
	for _, p := range f["permission"] {
		if p != "" {
			in.Permissions = append(in.Permissions, p)
		}
	}
	for _, fam := range families {
		switch f.Get("family_" + fam) {
		case "read", "write":
			in.Permissions = append(in.Permissions, fam+":"+f.Get("family_"+fam))
		}
	}
	if in.Name == "" || len(in.Permissions) == 0 {
		return formError("An admin key needs a name and at least one permission.")
	}
	if exp := strings.TrimSpace(f.Get("expires_at")); exp != "" {
		t, err := parseLocalTime(exp)
		if err != nil {
			return err
		}
		in.ExpiresAt = &t
	}
	k, err := kw.CreateAdminKey(r.Context(), in)
	if err != nil {
		return err
	}
	return c.ok(w, r, s, "secret.html", "Admin key created", "admin_keys", secretData{
		Title: "Admin key " + k.Name + " created", Label: "Admin key " + k.ID + " (" + strings.Join(k.Permissions, ", ") + ")",
		Value: k.Secret, Again: "keyward keeps only its digest", Back: Prefix + "admin_keys", BackLabel: "Back to the admin keys"})
}

func (c *Console) revokeAdminKey(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	id := r.PathValue("id")
	if _, err := kw.RevokeAdminKey(r.Context(), id); err != nil {
		return err
	}
	return done(w, r, s, Prefix+"admin_keys", "Admin key "+id+" revoked; it stopped authenticating.")
}

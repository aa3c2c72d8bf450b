package console

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/keyward/keyward/client"
)

// The detail pages of the credentials the native API reads one by one
// (an org token, an admin key) or only lists (a PAT), each with its life.

func notFound(what string) error {
	return &client.APIError{Status: http.StatusNotFound, Code: "not_found", Message: what + " was not found."}
}

type patData struct {
	User string
	PAT  client.PAT
	Life life
}

// pat shows one of a user's live PATs: the native API only lists them,
// so the page looks for it in the list (its first countCap).
func (c *Console) pat(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	ctx, user, id := r.Context(), r.PathValue("user"), r.PathValue("id")
	n := 0
	for p, err := range client.Iterate(ctx, func(ctx context.Context, cursor string) (client.CursorPage[client.PAT], error) {
		return kw.ListPATs(ctx, user, client.PATQuery{ListParams: client.ListParams{Limit: 100, Cursor: cursor}})
	}) {
		if err != nil {
			return err
		}
		if p.ID == id {
			d := patData{User: user, PAT: p, Life: life{Kind: "pat", ID: p.ID, Created: p.CreatedAt, LastUsed: p.LastUsedAt, Expires: p.ExpiresAt,
				State: state(false, p.ExpiresAt != nil && !p.ExpiresAt.After(c.now()))}}
			d.Life.CreatedBy, d.Life.CreatedByNote = createdBy(ctx, s, kw, "pat.create", p.ID)
			d.Life = c.withUsage(ctx, s, kw, d.Life)
			return c.ok(w, r, s, "pat.html", p.Name, "users", d)
		}
		if n++; n >= countCap {
			break
		}
	}
	return notFound("No live token " + id + " of " + user)
}

func (c *Console) updatePAT(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	user, id := r.PathValue("user"), r.PathValue("id")
	name, desc := strings.TrimSpace(r.PostForm.Get("name")), strings.TrimSpace(r.PostForm.Get("description"))
	if name == "" {
		return formError("A token needs a name.")
	}
	if _, err := kw.UpdatePAT(r.Context(), user, id, client.PATUpdate{Name: &name, Description: &desc}); err != nil {
		return err
	}
	return done(w, r, s, Prefix+"users/"+url.PathEscape(user)+"/pats/"+url.PathEscape(id), "Token saved.")
}

type orgTokenData struct {
	Org   client.Organization
	Token client.OrgToken
	Life  life
}

func orgTokenURL(org, id string) string { return orgURL(org) + "/tokens/" + url.PathEscape(id) }

func (c *Console) orgToken(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	ctx := r.Context()
	o, err := kw.GetOrganization(ctx, r.PathValue("org"))
	if err != nil {
		return err
	}
	t, err := kw.GetOrgToken(ctx, o.ID, r.PathValue("id"))
	if err != nil {
		return err
	}
	d := orgTokenData{Org: o, Token: t, Life: life{Kind: "org_token", ID: t.ID, State: "live", Created: t.CreatedAt, CreatedBy: t.CreatedBy,
		LastUsed: t.LastUsedAt, ExpiresNote: "an org token lives until it is deleted"}}
	if d.Life.CreatedBy == "" {
		d.Life.CreatedBy, d.Life.CreatedByNote = createdBy(ctx, s, kw, "org_token.create", t.ID)
	}
	d.Life = c.withUsage(ctx, s, kw, d.Life)
	return c.ok(w, r, s, "orgtoken.html", t.Name, "organizations", d)
}

// updateOrgToken renames a token (the API keeps its source addresses as
// created; its privileges the console sets at creation only).
func (c *Console) updateOrgToken(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	org, id := r.PathValue("org"), r.PathValue("id")
	in := client.OrgTokenParams{Name: strings.TrimSpace(r.PostForm.Get("name"))}
	if in.Name == "" {
		return formError("A token needs a name.")
	}
	if _, err := kw.UpdateOrgToken(r.Context(), org, id, in); err != nil {
		return err
	}
	return done(w, r, s, orgTokenURL(org, id), "Token saved.")
}

type adminKeyData struct {
	Key  client.AdminKey
	Life life
	Me   bool
}

func (c *Console) adminKey(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	k, err := kw.GetAdminKey(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	expired := k.ExpiresAt != nil && !k.ExpiresAt.After(c.now())
	d := adminKeyData{Key: k, Me: k.ID == s.caller.CredentialID, Life: life{Kind: "admin_key", ID: k.ID, State: state(k.Revoked, expired),
		Created: k.CreatedAt, LastUsed: k.LastUsedAt, Expires: k.ExpiresAt}}
	d.Life.CreatedBy, d.Life.CreatedByNote = createdBy(r.Context(), s, kw, "admin_key.create", k.ID)
	d.Life.UsageNote = "An admin key's calls are not counted as verifications."
	return c.ok(w, r, s, "adminkey.html", k.Name, "admin_keys", d)
}

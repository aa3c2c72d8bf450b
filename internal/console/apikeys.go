package console

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/keyward/keyward/client"
)

type apiKeysData struct {
	Subject, State, Query string
	Keys                  []client.APIKey
	Next                  string
	Usage                 map[string]*usageChart // by key id
}

func apiKeysURL(subject, state string) string {
	return Prefix + "api_keys?" + url.Values{"subject": {subject}, "state": {state}}.Encode()
}

// apiKeys lists one subject's API keys (the native API lists them per
// subject), filtered by state.
func (c *Console) apiKeys(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	q := r.URL.Query()
	d := apiKeysData{Subject: strings.TrimSpace(q.Get("subject")), State: q.Get("state"), Query: q.Get("query")}
	switch d.State {
	case "all", "revoked", "expired":
	default:
		d.State = "live"
	}
	if d.Subject != "" {
		page, err := kw.ListAPIKeys(r.Context(), client.APIKeyQuery{ListParams: client.ListParams{Limit: 100, Cursor: q.Get("cursor")},
			Subject: d.Subject, Query: d.Query, IncludeInvalid: d.State != "live"})
		if err != nil {
			return err
		}
		for _, k := range page.Data {
			if d.State == "revoked" && !k.Revoked || d.State == "expired" && !k.Expired {
				continue
			}
			d.Keys = append(d.Keys, k)
		}
		d.Usage = usages(c, r.Context(), s, kw, d.Keys, func(k client.APIKey) string { return k.ID })
		if page.NextCursor != "" {
			d.Next = apiKeysURL(d.Subject, d.State) + "&" + url.Values{"cursor": {page.NextCursor}}.Encode()
		}
	}
	return c.ok(w, r, s, "apikeys.html", "API keys", "api_keys", d)
}

func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
}

func (c *Console) createAPIKey(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	f := r.PostForm
	in := client.APIKeyParams{Name: strings.TrimSpace(f.Get("name")), Subject: strings.TrimSpace(f.Get("subject")),
		Description: strings.TrimSpace(f.Get("description")), Scopes: splitList(f.Get("scopes"))}
	// created_by names a user (user_…); an admin key is not one, and the
	// audit log's api_key.create event names it as the actor anyway.
	if in.Name == "" || in.Subject == "" {
		return formError("An API key needs a name and a subject (user_…, org_… or mch_…).")
	}
	if exp := strings.TrimSpace(f.Get("seconds_until_expiration")); exp != "" {
		n, err := strconv.ParseFloat(exp, 64)
		if err != nil || n <= 0 {
			return formError("The lifetime is a number of seconds above 0.")
		}
		in.SecondsUntilExpiration = &n
	}
	k, err := kw.CreateAPIKey(r.Context(), in)
	if err != nil {
		return err
	}
	return c.ok(w, r, s, "secret.html", "API key created", "api_keys", secretData{
		Title: "API key " + k.Name + " created", Label: "Secret of " + k.ID, Value: k.Secret,
		Again: "reading it again is a write (api_keys:write) and is audited",
		Back:  apiKeysURL(k.Subject, "live"), BackLabel: "Back to " + k.Subject + "'s keys"})
}

func (c *Console) revokeAPIKey(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	id := r.PathValue("id")
	k, err := kw.RevokeAPIKey(r.Context(), id, strings.TrimSpace(r.PostForm.Get("reason")))
	if err != nil {
		return err
	}
	back := apiKeysURL(k.Subject, "live")
	if r.PostForm.Get("back") == "detail" {
		back = apiKeyURL(id)
	}
	return done(w, r, s, back, "API key "+id+" revoked.")
}

type apiKeyData struct {
	Key    client.APIKey
	Life   life
	Claims string
}

func apiKeyURL(id string) string { return Prefix + "api_keys/" + url.PathEscape(id) }

// apiKey shows one API key: its life, its metadata and the form that
// changes it (never its secret).
func (c *Console) apiKey(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	k, err := kw.GetAPIKey(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	d := apiKeyData{Key: k, Life: life{Kind: "api_key", ID: k.ID, State: state(k.Revoked, k.Expired), Created: k.CreatedAt,
		LastUsed: k.LastUsedAt, Expires: k.ExpiresAt}}
	if k.CreatedBy != nil && *k.CreatedBy != "" {
		d.Life.CreatedBy = *k.CreatedBy
	} else {
		d.Life.CreatedBy, d.Life.CreatedByNote = createdBy(r.Context(), s, kw, "api_key.create", k.ID)
	}
	if len(k.Claims) > 0 && string(k.Claims) != "null" {
		d.Claims = string(k.Claims)
	}
	d.Life = c.withUsage(r.Context(), s, kw, d.Life)
	return c.ok(w, r, s, "apikey.html", k.Name, "api_keys", d)
}

// updateAPIKey changes what the native API's update takes: subject,
// description, scopes, claims and the remaining lifetime (the name and
// type cannot change). A field left empty is left as it is, but the
// description, which an empty field clears.
func (c *Console) updateAPIKey(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	id, f := r.PathValue("id"), r.PostForm
	var in client.APIKeyUpdate
	if v := strings.TrimSpace(f.Get("subject")); v != "" {
		in.Subject = &v
	}
	if _, ok := f["description"]; ok {
		v := strings.TrimSpace(f.Get("description"))
		in.Description = &v
	}
	in.Scopes = splitList(f.Get("scopes"))
	if v := strings.TrimSpace(f.Get("claims")); v != "" {
		if !json.Valid([]byte(v)) || !strings.HasPrefix(v, "{") {
			return formError("The claims are a JSON object.")
		}
		in.Claims = json.RawMessage(v)
	}
	if exp := strings.TrimSpace(f.Get("seconds_until_expiration")); exp != "" {
		n, err := strconv.ParseFloat(exp, 64)
		if err != nil || n <= 0 {
			return formError("The lifetime is a number of seconds above 0.")
		}
		in.SecondsUntilExpiration = &n
	}
	if _, err := kw.UpdateAPIKey(r.Context(), id, in); err != nil {
		return err
	}
	return done(w, r, s, apiKeyURL(id), "API key saved.")
}

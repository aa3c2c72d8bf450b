package console

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/keyward/keyward/client"
)

type machinesData struct {
	Query, OrderBy string
	Machines       []client.Machine
	Next           string // the next page's link, "" on the last
}

func (c *Console) machines(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	q := r.URL.Query()
	d := machinesData{Query: q.Get("query"), OrderBy: q.Get("order_by")}
	page, err := kw.ListMachines(r.Context(), client.MachineQuery{ListParams: client.ListParams{Limit: 50, Cursor: q.Get("cursor")},
		Query: d.Query, OrderBy: d.OrderBy})
	if err != nil {
		return err
	}
	d.Machines = page.Data
	if page.NextCursor != "" {
		v := url.Values{"cursor": {page.NextCursor}}
		if d.Query != "" {
			v.Set("query", d.Query)
		}
		if d.OrderBy != "" {
			v.Set("order_by", d.OrderBy)
		}
		d.Next = Prefix + "machines?" + v.Encode()
	}
	return c.ok(w, r, s, "machines.html", "Machines", "machines", d)
}

// secretData is a page that shows a secret once.
type secretData struct {
	Title, Label, Value, Again string
	URL                        string // a second secret: a link that holds the first (an actor token's)
	Back, BackLabel            string
}

func (c *Console) createMachine(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	in := client.MachineParams{Name: strings.TrimSpace(r.PostForm.Get("name"))}
	if in.Name == "" {
		return formError("A machine needs a name.")
	}
	if ttl := strings.TrimSpace(r.PostForm.Get("default_token_ttl")); ttl != "" {
		n, err := strconv.ParseInt(ttl, 10, 64)
		if err != nil {
			return formError("The default token lifetime is a whole number of seconds.")
		}
		in.DefaultTokenTTL = &n
	}
	m, err := kw.CreateMachine(r.Context(), in)
	if err != nil {
		return err
	}
	return c.ok(w, r, s, "secret.html", "Machine created", "machines", secretData{
		Title: "Machine " + m.Name + " created", Label: "Secret key of " + m.ID, Value: m.SecretKey,
		Again: "reading it again is a write (machines:write) and is audited",
		Back:  Prefix + "machines/" + url.PathEscape(m.ID), BackLabel: "Go to the machine"})
}

type machineData struct {
	Machine client.Machine
	Life    life // of its secret key
	State   string
	Tokens  []client.M2MToken
	Next    string
	TokErr  string
	// Usage charts the machine's keys (they count under its id); Tokens
	// the token rows', by token id.
	Usage      *usageChart
	TokenUsage map[string]*usageChart
}

func (c *Console) machine(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	id := r.PathValue("id")
	m, err := kw.GetMachine(r.Context(), id)
	if err != nil {
		return err
	}
	d := machineData{Machine: m, State: r.URL.Query().Get("state"), Life: life{Kind: "machine_key", ID: m.ID, State: "live", Created: m.CreatedAt,
		LastUsedNote: "the native API keeps no last use of a machine key; its M2M tokens' last use is below",
		ExpiresNote:  "a machine key lasts until it is rotated or its machine deleted"},
		Usage: c.usage(r.Context(), s, kw, m.ID, false)}
	d.Life.CreatedBy, d.Life.CreatedByNote = createdBy(r.Context(), s, kw, "machine.create", m.ID)
	if s.Can("m2m_tokens:read") {
		q := client.M2MTokenQuery{ListParams: client.ListParams{Limit: 50, Cursor: r.URL.Query().Get("cursor")}}
		yes := true
		switch d.State {
		case "revoked":
			q.Revoked = &yes
		case "expired":
			q.Expired = &yes
		default:
			d.State = "live"
		}
		page, err := kw.ListM2MTokens(r.Context(), id, q)
		if err != nil {
			d.TokErr = messageOf(err)
		} else {
			d.Tokens = page.Data
			d.TokenUsage = usages(c, r.Context(), s, kw, page.Data, func(t client.M2MToken) string { return t.ID })
			if page.NextCursor != "" {
				d.Next = Prefix + "machines/" + url.PathEscape(id) + "?" + url.Values{"state": {d.State}, "cursor": {page.NextCursor}}.Encode()
			}
		}
	}
	return c.ok(w, r, s, "machine.html", m.Name, "machines", d)
}

func machineURL(id string) string { return Prefix + "machines/" + url.PathEscape(id) }

func (c *Console) updateMachine(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	id := r.PathValue("id")
	in := client.MachineParams{Name: strings.TrimSpace(r.PostForm.Get("name"))}
	if ttl := strings.TrimSpace(r.PostForm.Get("default_token_ttl")); ttl != "" {
		n, err := strconv.ParseInt(ttl, 10, 64)
		if err != nil {
			return formError("The default token lifetime is a whole number of seconds.")
		}
		in.DefaultTokenTTL = &n
	}
	if _, err := kw.UpdateMachine(r.Context(), id, in); err != nil {
		return err
	}
	return done(w, r, s, machineURL(id), "Machine saved.")
}

func (c *Console) deleteMachine(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	id := r.PathValue("id")
	if err := kw.DeleteMachine(r.Context(), id); err != nil {
		return err
	}
	return done(w, r, s, Prefix+"machines", "Machine "+id+" deleted; its keys and tokens stopped working.")
}

// secretConfirm asks before a secret key is shown: reading it is a
// write, audited, and the page is the only place it appears.
func (c *Console) secretConfirm(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	m, err := kw.GetMachine(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return c.ok(w, r, s, "secret_confirm.html", "Reveal the secret key", "machines", m)
}

func (c *Console) revealSecret(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	id := r.PathValue("id")
	if r.PostForm.Get("confirm") != "yes" {
		return formError("Tick the box to confirm you want to see the secret key.")
	}
	k, err := kw.MachineSecretKey(r.Context(), id)
	if err != nil {
		return err
	}
	return c.ok(w, r, s, "secret.html", "Secret key", "machines", secretData{
		Title: "Secret key of " + id, Label: "Secret key of " + id, Value: k.SecretKey,
		Again: "this read is in the audit log", Back: machineURL(id), BackLabel: "Back to the machine"})
}

func (c *Console) rotateSecret(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	id := r.PathValue("id")
	grace, err := strconv.ParseInt(strings.TrimSpace(r.PostForm.Get("previous_token_ttl")), 10, 64)
	if err != nil || grace < 0 {
		return formError("The grace is a whole number of seconds, 0 or more.")
	}
	k, err := kw.RotateMachineSecretKey(r.Context(), id, grace)
	if err != nil {
		return err
	}
	again := "the previous key stopped working"
	if grace > 0 {
		again = "the previous key keeps working for " + strconv.FormatInt(grace, 10) + " s"
	}
	return c.ok(w, r, s, "secret.html", "Secret key rotated", "machines", secretData{
		Title: "New secret key of " + id, Label: "New secret key of " + id, Value: k.SecretKey, Again: again,
		Back: machineURL(id), BackLabel: "Back to the machine"})
}

func (c *Console) addScope(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	id := r.PathValue("id")
	to := strings.TrimSpace(r.PostForm.Get("to_machine_id"))
	if to == "" {
		return formError("Name the machine this one may call.")
	}
	if _, err := kw.AddMachineScope(r.Context(), id, to); err != nil {
		return err
	}
	return done(w, r, s, machineURL(id), "Scope added: "+id+" may call "+to+".")
}

func (c *Console) removeScope(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	id, to := r.PathValue("id"), r.PathValue("to")
	if err := kw.RemoveMachineScope(r.Context(), id, to); err != nil {
		return err
	}
	return done(w, r, s, machineURL(id), "Scope removed: "+id+" may no longer call "+to+".")
}

func (c *Console) revokeM2M(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	id, token := r.PathValue("id"), r.PathValue("token")
	if _, err := kw.RevokeM2MToken(r.Context(), token, strings.TrimSpace(r.PostForm.Get("reason"))); err != nil {
		return err
	}
	return done(w, r, s, machineURL(id), "Token "+token+" revoked.")
}

package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/httpapi/wire"
	"github.com/keyward/keyward/internal/permquery"
)

// Controls at verify time (authority/controls.go): any credential's
// controls and credits, and the instance's roles.
func (n *native) registerControls(mux wire.Router) {
	mux.Handle("GET /v1/credentials/{credential_id}/controls", n.Authenticated(n.getControls))
	mux.Handle("PATCH /v1/credentials/{credential_id}/controls", n.Authenticated(n.setControls))
	mux.Handle("POST /v1/credentials/{credential_id}/credits", n.Authenticated(n.changeCredits))
	mux.Handle("POST /v1/roles", n.Authenticated(n.createRole))
	mux.Handle("GET /v1/roles", n.Authenticated(n.listRoles))
	mux.Handle("GET /v1/roles/{name}", n.Authenticated(n.getRole))
	mux.Handle("PATCH /v1/roles/{name}", n.Authenticated(n.updateRole))
	mux.Handle("DELETE /v1/roles/{name}", n.Authenticated(n.deleteRole))
	n.registerIdentities(mux)
}

type namedLimitJSON struct {
	Name      string `json:"name"`
	Limit     int64  `json:"limit"`
	Duration  int64  `json:"duration"`
	Algorithm string `json:"algorithm"`
	AutoApply bool   `json:"auto_apply"`
}

type refillJSON struct {
	Amount     int64  `json:"amount"`
	Interval   string `json:"interval"`
	DayOfMonth int    `json:"day_of_month,omitempty"`
}

type creditsJSON struct {
	Remaining int64       `json:"remaining"`
	Refill    *refillJSON `json:"refill"`
}

type controlsJSON struct {
	CredentialID string           `json:"credential_id"`
	Meta         json.RawMessage  `json:"meta"`
	Permissions  []string         `json:"permissions"`
	Roles        []string         `json:"roles"`
	RateLimits   []namedLimitJSON `json:"ratelimits"`
	Credits      *creditsJSON     `json:"credits"`
	IdentityID   *string          `json:"identity_id"`
}

func renderCredits(c *authority.Credits) *creditsJSON {
	if c == nil {
		return nil
	}
	out := &creditsJSON{Remaining: c.Remaining}
	if r := c.Refill; r != nil {
		out.Refill = &refillJSON{Amount: r.Amount, Interval: r.Interval, DayOfMonth: r.DayOfMonth}
	}
	return out
}

func renderControls(v authority.ControlsView) controlsJSON {
	out := controlsJSON{CredentialID: v.CredentialID, Meta: v.Meta, Permissions: v.Permissions, Roles: v.Roles,
		RateLimits: make([]namedLimitJSON, len(v.RateLimits)), Credits: renderCredits(v.Credits), IdentityID: optionalText(v.IdentityID)}
	if len(out.Meta) == 0 {
		out.Meta = json.RawMessage(`{}`)
	}
	for i, l := range v.RateLimits {
		out.RateLimits[i] = namedLimitJSON{Name: l.Name, Limit: l.Limit, Duration: l.Duration, Algorithm: string(l.Algorithm), AutoApply: l.AutoApply}
	}
	return out
}

// decodeStrict decodes a nested JSON value, refusing unknown members, as a
// 400 naming param.
func decodeStrict(param string, raw json.RawMessage, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return credential.ParamError(credential.CodeWrongType, param, "is malformed: "+err.Error())
	}
	return nil
}

// controlsFields are the fields every create or update that takes
// controls accepts.
var controlsFields = []string{"meta", "permissions", "roles", "ratelimits", "credits", "identity_id"}

// controlsInput reads the controls fields of f: absent leaves a control as
// it is, null (or an empty value) clears it.
func controlsInput(f *wire.Form) (authority.ControlsInput, error) {
	var in authority.ControlsInput
	if f.Sent("meta") {
		in.Meta = f.Raw("meta")
		if in.Meta == nil {
			in.Meta = json.RawMessage("null")
		}
	}
	for _, l := range []struct {
		name string
		dst  **[]string
	}{{"permissions", &in.Permissions}, {"roles", &in.Roles}} {
		if !f.Sent(l.name) {
			continue
		}
		ss, err := f.Strings(l.name)
		if err != nil {
			return in, err
		}
		if ss == nil {
			ss = []string{}
		}
		*l.dst = &ss
	}
	if f.Sent("ratelimits") {
		var ls []namedLimitJSON
		if raw := f.Raw("ratelimits"); raw != nil {
			if err := decodeStrict("ratelimits", raw, &ls); err != nil {
				return in, err
			}
		}
		out := make([]authority.NamedLimit, len(ls))
		for i, l := range ls {
			out[i] = authority.NamedLimit{Name: l.Name, Limit: l.Limit, Duration: l.Duration, Algorithm: authority.LimitAlgorithm(l.Algorithm), AutoApply: l.AutoApply}
		}
		in.RateLimits = &out
	}
	if f.Sent("identity_id") {
		id, err := f.String("identity_id")
		if err != nil {
			return in, err
		}
		if id == nil {
			id = new(string) // null unlinks
		}
		in.IdentityID = id
	}
	if f.Sent("credits") {
		in.SetCredits = true
		if raw := f.Raw("credits"); raw != nil {
			var c creditsJSON
			if err := decodeStrict("credits", raw, &c); err != nil {
				return in, err
			}
			in.Credits = &authority.CreditsInput{Remaining: c.Remaining}
			if c.Refill != nil {
				in.Credits.Refill = &authority.CreditsRule{Amount: c.Refill.Amount, Interval: c.Refill.Interval, DayOfMonth: c.Refill.DayOfMonth}
			}
		}
	}
	return in, nil
}

func (n *native) getControls(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	v, err := n.auth.GetCredentialControls(r.Context(), c, r.PathValue("credential_id"))
	if err != nil {
		return err
	}
	wire.WriteJSON(w, http.StatusOK, renderControls(v))
	return nil
}

func (n *native) setControls(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	f, err := wire.ReadForm(r, controlsFields...)
	if err != nil {
		return err
	}
	in, err := controlsInput(f)
	if err != nil {
		return err
	}
	v, err := n.auth.SetCredentialControls(r.Context(), c, r.PathValue("credential_id"), in)
	if err != nil {
		return err
	}
	wire.WriteJSON(w, http.StatusOK, renderControls(v))
	return nil
}

func (n *native) changeCredits(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	f, err := wire.ReadForm(r, "op", "amount")
	if err != nil {
		return err
	}
	op, err := f.Text("op")
	if err != nil {
		return err
	}
	amount, err := f.Int("amount")
	if err != nil {
		return err
	}
	cr, err := n.auth.ChangeCredits(r.Context(), c, r.PathValue("credential_id"), authority.CreditsOp(op), amount)
	if err != nil {
		return err
	}
	wire.WriteJSON(w, http.StatusOK, renderCredits(&cr))
	return nil
}

type roleJSON struct {
	Name        string   `json:"name"`
	Permissions []string `json:"permissions"`
	CreatedAt   string   `json:"created_at"`
	UpdatedAt   string   `json:"updated_at"`
}

func renderRole(ro authority.Role) roleJSON {
	return roleJSON{Name: ro.Name, Permissions: ro.Permissions,
		CreatedAt: ro.CreatedAt.UTC().Format(time.RFC3339Nano), UpdatedAt: ro.UpdatedAt.UTC().Format(time.RFC3339Nano)}
}

func (n *native) createRole(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	f, err := wire.ReadForm(r, "name", "permissions")
	if err != nil {
		return err
	}
	name, err := f.Text("name")
	if err != nil {
		return err
	}
	perms, err := f.Strings("permissions")
	if err != nil {
		return err
	}
	ro, err := n.auth.CreateRole(r.Context(), c, name, perms)
	if err != nil {
		return err
	}
	wire.WriteJSON(w, http.StatusCreated, renderRole(ro))
	return nil
}

func (n *native) listRoles(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	roles, err := n.auth.ListRoles(r.Context(), c)
	if err != nil {
		return err
	}
	data := make([]roleJSON, len(roles))
	for i, ro := range roles {
		data[i] = renderRole(ro)
	}
	wire.WriteJSON(w, http.StatusOK, map[string]any{"data": data})
	return nil
}

func (n *native) getRole(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	ro, err := n.auth.GetRole(r.Context(), c, r.PathValue("name"))
	if err != nil {
		return err
	}
	wire.WriteJSON(w, http.StatusOK, renderRole(ro))
	return nil
}

func (n *native) updateRole(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	f, err := wire.ReadForm(r, "permissions")
	if err != nil {
		return err
	}
	perms, err := f.Strings("permissions")
	if err != nil {
		return err
	}
	ro, err := n.auth.UpdateRole(r.Context(), c, r.PathValue("name"), perms)
	if err != nil {
		return err
	}
	wire.WriteJSON(w, http.StatusOK, renderRole(ro))
	return nil
}

func (n *native) deleteRole(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	if err := n.auth.DeleteRole(r.Context(), c, r.PathValue("name")); err != nil {
		return err
	}
	wire.WriteJSON(w, http.StatusOK, map[string]any{"name": r.PathValue("name"), "deleted": true})
	return nil
}

// Verify's controls: the input fields and the answer's members.

// verifyControlsInput reads permissions (a permquery string), ratelimits
// ([{name, cost}]) and credits ({cost}).
func verifyControlsInput(f *wire.Form, in *authority.VerifyInput) error {
	if f.Has("permissions") {
		q, err := f.String("permissions")
		if err != nil {
			return err
		}
		if in.Permissions, err = permquery.Parse(*q); err != nil {
			return credential.ParamError(credential.CodeInvalid, "permissions", err.Error())
		}
	}
	if raw := f.Raw("ratelimits"); raw != nil {
		var uses []struct {
			Name string `json:"name"`
			Cost *int64 `json:"cost"`
		}
		if err := decodeStrict("ratelimits", raw, &uses); err != nil {
			return err
		}
		in.RateLimits = make([]authority.LimitUse, len(uses))
		for i, u := range uses {
			in.RateLimits[i] = authority.LimitUse{Name: u.Name, Cost: 1}
			if u.Cost != nil {
				in.RateLimits[i].Cost = *u.Cost
			}
		}
	}
	if raw := f.Raw("credits"); raw != nil {
		var c struct {
			Cost *int64 `json:"cost"`
		}
		if err := decodeStrict("credits", raw, &c); err != nil {
			return err
		}
		cost := int64(1)
		if c.Cost != nil {
			cost = *c.Cost
		}
		if cost < 0 || cost > authority.MaxCredits {
			return credential.ParamError(credential.CodeInvalid, "credits.cost", fmt.Sprintf("must be between 0 and %d", int64(authority.MaxCredits)))
		}
		in.CreditCost = &cost
	}
	return nil
}

type limitStateJSON struct {
	Name      string `json:"name"`
	Limit     int64  `json:"limit"`
	Remaining int64  `json:"remaining"`
	Reset     int64  `json:"reset"` // Unix milliseconds, as Unkey's
}

type creditsLeftJSON struct {
	Remaining int64 `json:"remaining"`
}

type identityRefJSON struct {
	ID         string `json:"id"`
	ExternalID string `json:"external_id"`
}

// setVerifyControls copies the result's controls into the answer.
func setVerifyControls(out *verifyResponse, res *authority.VerifyResult) {
	out.Meta, out.Permissions, out.Roles, out.MissingPermissions = res.Meta, res.Permissions, res.Roles, res.MissingPermissions
	if len(res.Limits) > 0 {
		out.Limits = make([]limitStateJSON, len(res.Limits))
		for i, l := range res.Limits {
			out.Limits[i] = limitStateJSON{Name: l.Name, Limit: l.Limit, Remaining: l.Remaining, Reset: l.Reset.UnixMilli()}
		}
	}
	if res.Credits != nil {
		out.Credits = &creditsLeftJSON{Remaining: *res.Credits}
	}
	if res.IdentityID != "" {
		out.Identity = &identityRefJSON{ID: res.IdentityID, ExternalID: res.ExternalID}
	}
}

// appendVerifyControls appends the controls members of a verify answer,
// as json.Encoder would: meta, permissions, roles, missing_permissions,
// ratelimits, credits.
func appendVerifyControls(b []byte, out *verifyResponse) ([]byte, bool) {
	var ok bool
	if len(out.Meta) > 0 {
		b = append(b, `,"meta":`...)
		if b, ok = wire.AppendRaw(b, out.Meta); !ok {
			return b, false
		}
	}
	for _, l := range [...]struct {
		name string
		ss   []string
	}{{`,"permissions":`, out.Permissions}, {`,"roles":`, out.Roles}, {`,"missing_permissions":`, out.MissingPermissions}} {
		if len(l.ss) > 0 {
			b = append(b, l.name...)
			b = appendStrings(b, l.ss)
		}
	}
	if len(out.Limits) > 0 {
		b = append(b, `,"ratelimits":[`...)
		for i, l := range out.Limits {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"name":`...)
			b = wire.AppendString(b, l.Name)
			b = append(b, `,"limit":`...)
			b = strconv.AppendInt(b, l.Limit, 10)
			b = append(b, `,"remaining":`...)
			b = strconv.AppendInt(b, l.Remaining, 10)
			b = append(b, `,"reset":`...)
			b = strconv.AppendInt(b, l.Reset, 10)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if out.Credits != nil {
		b = append(b, `,"credits":{"remaining":`...)
		b = strconv.AppendInt(b, out.Credits.Remaining, 10)
		b = append(b, '}')
	}
	if out.Identity != nil {
		b = append(b, `,"identity":{"id":`...)
		b = wire.AppendString(b, out.Identity.ID)
		b = append(b, `,"external_id":`...)
		b = wire.AppendString(b, out.Identity.ExternalID)
		b = append(b, '}')
	}
	return b, true
}

// Identities (authority/identities.go).
func (n *native) registerIdentities(mux wire.Router) {
	const i = "/v1/identities/{identity_id}"
	mux.Handle("POST /v1/identities", n.Authenticated(n.createIdentity))
	mux.Handle("GET /v1/identities", n.Authenticated(n.listIdentities))
	mux.Handle("GET "+i, n.Authenticated(n.getIdentity))
	mux.Handle("PATCH "+i, n.Authenticated(n.updateIdentity))
	mux.Handle("DELETE "+i, n.Authenticated(n.deleteIdentity))
	mux.Handle("GET "+i+"/credentials", n.Authenticated(n.identityCredentials))
}

type identityJSON struct {
	ID         string           `json:"id"`
	ExternalID string           `json:"external_id"`
	Meta       json.RawMessage  `json:"meta"`
	RateLimits []namedLimitJSON `json:"ratelimits"`
	Credits    *creditsJSON     `json:"credits"`
	CreatedAt  string           `json:"created_at"`
	UpdatedAt  string           `json:"updated_at"`
}

func renderIdentity(v authority.IdentityView) identityJSON {
	out := identityJSON{ID: v.ID, ExternalID: v.ExternalID, Meta: v.Meta, RateLimits: make([]namedLimitJSON, len(v.RateLimits)),
		Credits: renderCredits(v.CreditsView), CreatedAt: rfc3339(v.CreatedAt), UpdatedAt: rfc3339(v.UpdatedAt)}
	if len(out.Meta) == 0 {
		out.Meta = json.RawMessage(`{}`)
	}
	for i, l := range v.RateLimits {
		out.RateLimits[i] = namedLimitJSON{Name: l.Name, Limit: l.Limit, Duration: l.Duration, Algorithm: string(l.Algorithm), AutoApply: l.AutoApply}
	}
	return out
}

func identityInput(r *http.Request) (authority.IdentityInput, error) {
	var in authority.IdentityInput
	f, err := wire.ReadForm(r, "external_id", "meta", "ratelimits", "credits")
	if err != nil {
		return in, err
	}
	if in.ExternalID, err = f.String("external_id"); err != nil {
		return in, err
	}
	ci, err := controlsInput(f)
	in.Meta, in.RateLimits, in.SetCredits, in.Credits = ci.Meta, ci.RateLimits, ci.SetCredits, ci.Credits
	return in, err
}

func (n *native) createIdentity(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	in, err := identityInput(r)
	if err != nil {
		return err
	}
	v, err := n.auth.CreateIdentity(r.Context(), c, in)
	return respond(w, http.StatusCreated, renderIdentity(v), err)
}

// listIdentities: ?external_id= finds one; pages as every native list.
func (n *native) listIdentities(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	p, err := readCursorPage(r)
	if err != nil {
		return err
	}
	limit, offset := p.limitOffset()
	list, total, err := n.auth.ListIdentities(r.Context(), c, r.URL.Query().Get("external_id"), limit, offset)
	return respond(w, http.StatusOK, mapPage(list, p.next(len(list), total), renderIdentity), err)
}

func (n *native) getIdentity(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	v, err := n.auth.GetIdentity(r.Context(), c, r.PathValue("identity_id"))
	return respond(w, http.StatusOK, renderIdentity(v), err)
}

func (n *native) updateIdentity(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	in, err := identityInput(r)
	if err != nil {
		return err
	}
	v, err := n.auth.UpdateIdentity(r.Context(), c, r.PathValue("identity_id"), in)
	return respond(w, http.StatusOK, renderIdentity(v), err)
}

func (n *native) deleteIdentity(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	revoked, err := n.auth.DeleteIdentity(r.Context(), c, r.PathValue("identity_id"))
	return respond(w, http.StatusOK, map[string]any{"id": r.PathValue("identity_id"), "deleted": true, "revoked_credentials": revoked}, err)
}

type identityCredentialJSON struct {
	ID      string          `json:"id"`
	Kind    string          `json:"kind"`
	Revoked bool            `json:"revoked"`
	Meta    json.RawMessage `json:"meta"` // the credential's meta (controls at verify time)
}

// identityCredentials: every credential linked to the identity;
// ?meta.<key>=<value> filters on meta.
func (n *native) identityCredentials(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	list, err := n.auth.IdentityCredentials(r.Context(), c, r.PathValue("identity_id"), metaQuery(r))
	data := make([]identityCredentialJSON, len(list))
	for i, ic := range list {
		data[i] = identityCredentialJSON{ID: ic.ID, Kind: string(ic.Kind), Revoked: ic.Revoked, Meta: nativeMeta(ic.Meta)}
	}
	return respond(w, http.StatusOK, map[string]any{"data": data}, err)
}

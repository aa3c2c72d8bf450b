package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/httpapi/wire"
)

// Native machines, their scopes and secret keys, and their M2M tokens.
// A machine's secret key is in the create, secret-read and rotate answers
// only; an M2M token in its mint answer only.

type machineRefJSON struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type nativeMachineJSON struct {
	ID              string           `json:"id"`
	Name            string           `json:"name"`
	DefaultTokenTTL int64            `json:"default_token_ttl"`
	ScopedMachines  []machineRefJSON `json:"scoped_machines"`
	CreatedAt       string           `json:"created_at"`
	UpdatedAt       string           `json:"updated_at"`
}

func toNativeMachine(m credential.Machine) nativeMachineJSON {
	out := nativeMachineJSON{ID: m.ID, Name: m.Name, DefaultTokenTTL: m.DefaultTokenTTL, ScopedMachines: make([]machineRefJSON, len(m.ScopedMachines)),
		CreatedAt: rfc3339(m.CreatedAt), UpdatedAt: rfc3339(m.UpdatedAt)}
	for i, s := range m.ScopedMachines {
		out.ScopedMachines[i] = machineRefJSON{ID: s.ID, Name: s.Name}
	}
	return out
}

type machineSecretJSON struct {
	MachineID string `json:"machine_id"`
	SecretKey string `json:"secret_key"`
}

type nativeM2MTokenJSON struct {
	ID               string          `json:"id"`
	MachineID        string          `json:"machine_id"`
	Claims           json.RawMessage `json:"claims"`
	Scopes           []string        `json:"scopes"`
	Revoked          bool            `json:"revoked"`
	RevocationReason *string         `json:"revocation_reason"`
	Expired          bool            `json:"expired"`
	ExpiresAt        *string         `json:"expires_at"`
	LastUsedAt       *string         `json:"last_used_at"`
	CreatedAt        string          `json:"created_at"`
	UpdatedAt        string          `json:"updated_at"`
	Meta             json.RawMessage `json:"meta"`            // the token's meta (controls at verify time)
	Token            string          `json:"token,omitempty"` // the mint answer only
}

func toNativeM2MToken(t authority.M2MToken) nativeM2MTokenJSON {
	out := nativeM2MTokenJSON{ID: t.ID, MachineID: t.Subject, Claims: t.Claims, Scopes: t.Scopes, Revoked: t.Revoked, Expired: t.Expired,
		ExpiresAt: optionalTime(t.ExpiresAt), LastUsedAt: optionalTime(t.LastUsedAt), CreatedAt: rfc3339(t.CreatedAt), UpdatedAt: rfc3339(t.UpdatedAt),
		Meta: nativeMeta(t.Meta)}
	if len(out.Claims) == 0 {
		out.Claims = json.RawMessage("null")
	}
	if out.Scopes == nil {
		out.Scopes = []string{}
	}
	if t.RevocationReason != "" {
		out.RevocationReason = &t.RevocationReason
	}
	return out
}

func (n *native) registerMachines(mux wire.Router) {
	const m = "/v1/machines/{machine_id}"
	routes := map[string]wire.Handler{
		"POST /v1/machines":                          n.createMachine,
		"GET /v1/machines":                           n.listMachines,
		"GET " + m:                                   n.getMachine,
		"PATCH " + m:                                 n.updateMachine,
		"DELETE " + m:                                n.deleteMachine,
		"GET " + m + "/secret_key":                   n.getMachineSecretKey,
		"POST " + m + "/secret_key/rotate":           n.rotateMachineSecretKey,
		"POST " + m + "/scopes":                      n.addMachineScope,
		"DELETE " + m + "/scopes/{other_machine_id}": n.removeMachineScope,
		"GET " + m + "/m2m_tokens":                   n.listM2MTokens,
		"POST /v1/m2m_tokens":                        n.createM2MToken,
		"POST /v1/m2m_tokens/{m2m_token_id}/revoke":  n.revokeM2MToken,
	}
	for pattern, h := range routes {
		mux.Handle(pattern, n.Authenticated(h))
	}
}

func (n *native) createMachine(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	f, err := wire.ReadForm(r, "name", "scoped_machines", "default_token_ttl")
	var in authority.CreateMachineInput
	if err == nil {
		in.Name, err = f.String("name")
	}
	if err == nil {
		in.ScopedMachines, err = f.Strings("scoped_machines")
	}
	if err == nil {
		in.DefaultTokenTTL, err = f.Int("default_token_ttl")
	}
	if err != nil {
		return err
	}
	m, secret, err := n.auth.CreateMachine(r.Context(), c, in)
	if err != nil {
		return err
	}
	wire.WriteSecretJSON(w, http.StatusCreated, struct {
		nativeMachineJSON
		SecretKey string `json:"secret_key"`
	}{toNativeMachine(m), secret.Reveal()})
	return nil
}

func (n *native) listMachines(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	p, err := readCursorPage(r)
	if err != nil {
		return err
	}
	in := authority.ListMachinesInput{Query: r.URL.Query().Get("query"), OrderBy: r.URL.Query().Get("order_by")}
	in.Limit, in.Offset = p.limitOffset()
	list, total, err := n.auth.ListMachines(r.Context(), c, in)
	return respond(w, http.StatusOK, mapPage(list, p.next(len(list), total), toNativeMachine), err)
}

func (n *native) getMachine(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	m, err := n.auth.GetMachine(r.Context(), c, r.PathValue("machine_id"))
	return respond(w, http.StatusOK, toNativeMachine(m), err)
}

func (n *native) updateMachine(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	f, err := wire.ReadForm(r, "name", "default_token_ttl")
	var in authority.UpdateMachineInput
	if err == nil {
		in.Name, err = f.String("name")
	}
	if err == nil {
		in.DefaultTokenTTL, err = f.Int("default_token_ttl")
	}
	var m credential.Machine
	if err == nil {
		m, err = n.auth.UpdateMachine(r.Context(), c, r.PathValue("machine_id"), in)
	}
	return respond(w, http.StatusOK, toNativeMachine(m), err)
}

func (n *native) deleteMachine(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	return respond(w, 0, nil, n.auth.DeleteMachine(r.Context(), c, r.PathValue("machine_id")))
}

func writeMachineSecret(w http.ResponseWriter, id string, secret credential.Secret, err error) error {
	if err != nil {
		return err
	}
	wire.WriteSecretJSON(w, http.StatusOK, machineSecretJSON{MachineID: id, SecretKey: secret.Reveal()})
	return nil
}

// getMachineSecretKey is the documented secret read: needs machines:write.
func (n *native) getMachineSecretKey(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	id := r.PathValue("machine_id")
	secret, err := n.auth.MachineSecretKey(r.Context(), c, id)
	return writeMachineSecret(w, id, secret, err)
}

// rotateMachineSecretKey: {"previous_token_ttl": seconds the old key keeps working}.
func (n *native) rotateMachineSecretKey(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	f, err := wire.ReadForm(r, "previous_token_ttl")
	var ttl *int64
	if err == nil {
		ttl, err = f.Int("previous_token_ttl")
	}
	if err != nil {
		return err
	}
	id := r.PathValue("machine_id")
	secret, err := n.auth.RotateMachineSecretKey(r.Context(), c, id, ttl)
	return writeMachineSecret(w, id, secret, err)
}

type machineScopeJSON struct {
	FromMachineID string `json:"from_machine_id"`
	ToMachineID   string `json:"to_machine_id"`
	CreatedAt     string `json:"created_at"`
}

// addMachineScope lets the machine call another: {"to_machine_id": "mch_…"}.
func (n *native) addMachineScope(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	to, err := wire.RequireString(r, "to_machine_id")
	var s credential.MachineScope
	if err == nil {
		s, err = n.auth.CreateMachineScope(r.Context(), c, r.PathValue("machine_id"), to)
	}
	return respond(w, http.StatusCreated, machineScopeJSON{FromMachineID: s.FromMachineID, ToMachineID: s.ToMachineID, CreatedAt: rfc3339(s.CreatedAt)}, err)
}

func (n *native) removeMachineScope(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	return respond(w, 0, nil, n.auth.DeleteMachineScope(r.Context(), c, r.PathValue("machine_id"), r.PathValue("other_machine_id")))
}

// queryBool reads an optional true/false query parameter.
func queryBool(r *http.Request, name string) (*bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return nil, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return nil, credential.ParamError(credential.CodeWrongType, name, "must be true or false")
	}
	return &b, nil
}

// listM2MTokens lists a machine's opaque tokens, newest first; ?revoked
// and ?expired include those (default: live tokens only);
// ?meta.<key>=<value> filters on meta.
func (n *native) listM2MTokens(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	p, err := readCursorPage(r)
	in := authority.ListM2MTokensInput{Subject: r.PathValue("machine_id"), Meta: metaQuery(r)}
	if err == nil {
		in.Revoked, err = queryBool(r, "revoked")
	}
	if err == nil {
		in.Expired, err = queryBool(r, "expired")
	}
	if err != nil {
		return err
	}
	in.Limit, in.Offset = p.limitOffset()
	list, total, err := n.auth.ListM2MTokens(r.Context(), c, in)
	return respond(w, http.StatusOK, mapPage(list, p.next(len(list), total), toNativeM2MToken), err)
}

// createM2MToken mints a token for the calling machine (a machine secret
// key only).
func (n *native) createM2MToken(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	f, err := wire.ReadForm(r, append([]string{"token_format", "seconds_until_expiration", "claims", "min_remaining_ttl_seconds", "scopes"}, controlsFields...)...)
	var in authority.CreateM2MTokenInput
	var format *string
	if err == nil {
		format, err = f.String("token_format")
	}
	if err == nil && format != nil {
		in.Format = *format
	}
	if err == nil {
		in.SecondsUntilExpiration, err = f.Number("seconds_until_expiration")
	}
	if err == nil {
		in.MinRemainingTTLSeconds, err = f.Int("min_remaining_ttl_seconds")
	}
	if err == nil {
		in.Scopes, err = f.Strings("scopes")
	}
	if err == nil {
		in.Controls, err = controlsInput(f)
	}
	if err != nil {
		return err
	}
	in.Claims = f.Raw("claims")
	t, err := n.auth.CreateM2MToken(r.Context(), c, in)
	if err != nil {
		return err
	}
	out := toNativeM2MToken(t)
	out.Token = t.Token
	wire.WriteSecretJSON(w, http.StatusCreated, out)
	return nil
}

// revokeM2MToken: {"revocation_reason": "…"} (optional).
func (n *native) revokeM2MToken(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	reason, err := wire.ReadString(r, "revocation_reason")
	if err != nil {
		return err
	}
	t, err := n.auth.RevokeM2MToken(r.Context(), c, r.PathValue("m2m_token_id"), reason)
	return respond(w, http.StatusOK, toNativeM2MToken(t), err)
}

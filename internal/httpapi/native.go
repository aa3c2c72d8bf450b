package httpapi

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/httpapi/wire"
)

// native is keyward's own API under /v1, with its own envelope:
// {"error":{"code","message","param"},"request_id"}.
type native struct {
	wire.Surface
	auth      *authority.Authority
	log       *slog.Logger
	publicURL string
	trusted   []netip.Prefix
	// authzInstance is the instance /v1/authz verifies for ("" for the
	// default one); authzHeader the header it reads the credential from
	// ("" for Authorization: Bearer).
	authzInstance string
	authzHeader   string
	leaks         LeakReportConfig // POST /v1/leaks (leaks.go)
}

func (n *native) register(mux wire.Router) {
	n.Surface = wire.Surface{Authenticate: n.authenticate, WriteError: n.writeError}
	mux.Handle("GET /healthz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wire.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}))
	mux.Handle("GET /readyz", http.HandlerFunc(n.ready))
	mux.Handle("GET /openapi.json", http.HandlerFunc(n.openapi))
	mux.Handle("GET /v1/audit_events", n.Authenticated(n.listAuditEvents))
	mux.Handle("GET /v1/caller", n.Authenticated(n.caller))
	mux.Handle("POST /v1/verify", n.Authenticated(n.verify))
	mux.Handle("POST /oauth/introspect", n.Checked(n.introspect))
	mux.Handle("GET /.well-known/jwks.json", http.HandlerFunc(n.jwks))
	mux.Handle("GET /v1/instance", n.Authenticated(n.getInstance))
	mux.Handle("PATCH /v1/instance", n.Authenticated(n.updateInstance))
	mux.Handle("GET /v1/signing_keys", n.Authenticated(n.listSigningKeys))
	mux.Handle("POST /v1/signing_keys/rotate", n.Authenticated(n.rotateSigningKey))
	n.registerOrganizations(mux)
	n.registerWorkspaces(mux)
	n.registerAdminKeys(mux)
	n.registerMachines(mux)
	n.registerAPIKeys(mux)
	n.registerOrgTokens(mux)
	n.registerUserFamilies(mux)
	n.registerAnalytics(mux)
	n.registerWebhooks(mux)
	n.registerControls(mux)
	mux.Handle("POST /oauth/token", n.Checked(n.token))
	mux.Handle("POST /oauth/revoke", n.Checked(n.revoke))
	mux.Handle("GET /.well-known/openid-configuration", n.Checked(n.discovery))
	mux.Handle("GET /.well-known/oauth-authorization-server", n.Checked(n.discovery))
	n.registerAuthz(mux)
	mux.Handle("GET /v1/tickets/accept", n.Checked(n.previewTicket))
	mux.Handle("POST /v1/tickets/accept", n.Checked(n.acceptTicket))
	mux.Handle("POST /v1/impersonation_sessions/{id}/revoke", n.Authenticated(n.revokeSession))
	mux.Handle("POST /v1/leaks", n.Checked(n.reportLeaks)) // signed by the reporter, no credential
	mux.Handle("/v1/", wire.NewUnrouted(n.writeError, "no such endpoint"))
	mux.Handle("/", wire.NewUnrouted(n.writeError, "no such endpoint")) // every path no surface owns
}

func (n *native) ready(w http.ResponseWriter, r *http.Request) {
	if err := n.auth.Ready(r.Context()); err != nil {
		n.log.LogAttrs(r.Context(), slog.LevelWarn, "not ready", slog.String("error", err.Error()))
		wire.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable"})
		return
	}
	wire.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// caller tells an authenticated caller who keyward takes it for: the
// quickest way to check that a key works.
func (n *native) caller(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	out := map[string]any{
		"kind":          string(c.Kind),
		"instance_id":   c.InstanceID,
		"credential_id": c.CredentialID,
		"machine_id":    c.MachineID,
	}
	if c.Kind == credential.KindAdminKey {
		out["permissions"] = c.Permissions
		out["expires_at"] = optionalTime(c.ExpiresAt)
	}
	wire.WriteJSON(w, http.StatusOK, out)
	return nil
}

// authenticate resolves the bearer credential to a caller; each handler's
// authority call decides what that caller may do.
func (n *native) authenticate(_ http.ResponseWriter, r *http.Request) (authority.Caller, error) {
	return n.auth.Authenticate(r.Context(), wire.Credential(r, "Bearer"))
}

type nativeError struct {
	Code    credential.Code `json:"code"`
	Message string          `json:"message"`
	Param   string          `json:"param,omitempty"`
}

// nativeStatuses maps keyward's codes to the native API's statuses, in one
// place; the envelope carries the code itself.
var nativeStatuses = map[credential.Code]int{
	credential.CodeMalformed:        http.StatusBadRequest,
	credential.CodeMissing:          http.StatusBadRequest,
	credential.CodeInvalid:          http.StatusBadRequest,
	credential.CodeWrongType:        http.StatusBadRequest,
	credential.CodeUnknownParam:     http.StatusBadRequest,
	credential.CodeTooLong:          http.StatusBadRequest,
	credential.CodeTooMany:          http.StatusBadRequest,
	credential.CodeConstraint:       http.StatusBadRequest,
	credential.CodeReserved:         http.StatusBadRequest,
	credential.CodeTooLarge:         http.StatusRequestEntityTooLarge,
	credential.CodeMethodNotAllowed: http.StatusMethodNotAllowed,
	credential.CodeNotFound:         http.StatusNotFound,
	credential.CodeConflict:         http.StatusConflict,
	credential.CodeUnauthenticated:  http.StatusUnauthorized,
	credential.CodeForbidden:        http.StatusForbidden,
	credential.CodeRateLimited:      http.StatusTooManyRequests,
	credential.CodeUnavailable:      http.StatusServiceUnavailable,
	credential.CodeInternal:         http.StatusInternalServerError,
}

func nativeStatus(c credential.Code) int {
	if status, ok := nativeStatuses[c]; ok {
		return status
	}
	return http.StatusInternalServerError
}

func (n *native) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := credential.AsError(err)
	status := nativeStatus(e.Code)
	body := nativeError{Code: e.Code, Message: e.Message, Param: e.Param}
	if status >= 500 {
		body.Code, body.Message = credential.CodeInternal, "internal error"
		if status == http.StatusServiceUnavailable {
			body.Code, body.Message = credential.CodeUnavailable, "the store is unavailable; retry later"
		}
		n.log.LogAttrs(r.Context(), slog.LevelError, "request failed",
			slog.String("request_id", authority.RequestID(r.Context())), slog.String("error", err.Error()))
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="keyward"`)
	}
	wire.SetRetryAfter(w, e)
	wire.WriteJSON(w, status, map[string]any{"error": body, "request_id": authority.RequestID(r.Context())})
}

type auditEventJSON struct {
	ID        string          `json:"id"`
	At        string          `json:"at"`
	Actor     auditRefJSON    `json:"actor"`
	Action    string          `json:"action"`
	Target    auditRefJSON    `json:"target"`
	RequestID string          `json:"request_id,omitempty"`
	Outcome   string          `json:"outcome"`
	Detail    json.RawMessage `json:"detail"`
	// CredentialID is the credential the actor authenticated with.
	CredentialID string `json:"credential_id,omitempty"`
	ClientIP     string `json:"client_ip,omitempty"`
	// Count is how many occurrences the event stands for (refusals are
	// aggregated per minute).
	Count int    `json:"count"`
	Seq   int64  `json:"seq"`
	Hash  string `json:"hash,omitempty"`
}

type auditRefJSON struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
}

func (n *native) listAuditEvents(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	q := r.URL.Query()
	in := authority.ListAuditEventsInput{Action: q.Get("action"), TargetID: q.Get("target_id"), CredentialSHA256: q.Get("credential_sha256")}
	var err error
	if in.Limit, in.Offset, err = offsetPage(r); err != nil {
		return err
	}
	events, total, err := n.auth.ListAuditEvents(r.Context(), c, in)
	if err != nil {
		return err
	}
	data := make([]auditEventJSON, len(events))
	for i, e := range events {
		data[i] = auditEventJSON{
			ID:        e.ID,
			At:        e.At.UTC().Format(time.RFC3339Nano),
			Actor:     auditRefJSON{Kind: e.ActorKind, ID: e.ActorID},
			Action:    e.Action,
			Target:    auditRefJSON{Kind: e.TargetKind, ID: e.TargetID},
			RequestID: e.RequestID,
			Outcome:   e.Outcome,
			Detail:    e.Detail,

			CredentialID: e.CredentialID,
			ClientIP:     e.ClientIP,
			Count:        e.Count,
			Seq:          e.Seq,
			Hash:         e.Hash,
		}
	}
	wire.WriteJSON(w, http.StatusOK, map[string]any{"data": data, "total_count": total, "next_cursor": nextAfter(in.Offset, len(data), total)})
	return nil
}

type instanceJSON struct {
	ID                       string `json:"id"`
	Name                     string `json:"name"`
	OrgTokenHourlyLimit      int    `json:"org_token_hourly_limit"`
	ImpersonationRedirectURL string `json:"impersonation_redirect_url"`
	CreatedAt                string `json:"created_at"`
}

func toInstance(in credential.Instance) instanceJSON {
	limit := in.OrgTokenHourlyLimit
	if limit <= 0 {
		limit = credential.DefaultOrgTokenHourlyLimit
	}
	return instanceJSON{ID: in.ID, Name: in.Name, OrgTokenHourlyLimit: limit, ImpersonationRedirectURL: in.ImpersonationRedirectURL,
		CreatedAt: in.CreatedAt.UTC().Format(time.RFC3339Nano)}
}

func (n *native) getInstance(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	in, err := n.auth.Instance(r.Context(), c)
	return respond(w, http.StatusOK, toInstance(in), err)
}

// updateInstance changes the instance's settings:
// {"org_token_hourly_limit": N ≥ 1 (null restores 5000), "impersonation_redirect_url": "https://…"}.
func (n *native) updateInstance(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	f, err := wire.ReadForm(r, "org_token_hourly_limit", "impersonation_redirect_url")
	var (
		limit        *int64
		restoreLimit bool
		redirect     *string
		in           credential.Instance
	)
	if err == nil {
		limit, err = f.Int("org_token_hourly_limit")
		restoreLimit = f.Null("org_token_hourly_limit")
	}
	if err == nil {
		redirect, err = f.String("impersonation_redirect_url")
	}
	if err == nil && limit == nil && !restoreLimit && redirect == nil {
		err = credential.Errorf(credential.CodeMissing, "send org_token_hourly_limit or impersonation_redirect_url")
	}
	if err == nil {
		err = authority.CheckOrgTokenHourlyLimit(limit)
	}
	// The redirect URL is checked before it is written and the limit is
	// known good, so a refused request changes neither.
	if err == nil && redirect != nil {
		in, err = n.auth.SetImpersonationRedirectURL(r.Context(), c, *redirect)
	}
	if err == nil && (limit != nil || restoreLimit) {
		in, err = n.auth.SetOrgTokenHourlyLimit(r.Context(), c, limit)
	}
	return respond(w, http.StatusOK, toInstance(in), err)
}

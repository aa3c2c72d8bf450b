package httpapi

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/httpapi/wire"
)

// native is keyward's own API under /v1, with its own envelope:
// {"error":{"code","message","param"},"request_id"}.
type native struct {
	auth      *authority.Authority
	log       *slog.Logger
	publicURL string
	trusted   []netip.Prefix
	// authzInstance is the instance /v1/authz verifies for ("" for the
	// default one); authzHeader the header it reads the credential from
	// ("" for Authorization: Bearer).
	authzInstance string
	authzHeader   string
}

func (n *native) register(mux wire.Router) {
	mux.Handle("GET /healthz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wire.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}))
	mux.Handle("GET /readyz", http.HandlerFunc(n.ready))
	mux.Handle("GET /openapi.json", http.HandlerFunc(n.openapi))
	mux.Handle("GET /v1/audit_events", n.authenticated(n.listAuditEvents))
	mux.Handle("GET /v1/caller", n.authenticated(n.caller))
	mux.Handle("POST /v1/verify", n.authenticated(n.verify))
	mux.Handle("POST /oauth/introspect", n.checked(n.introspect))
	mux.Handle("GET /.well-known/jwks.json", http.HandlerFunc(n.jwks))
	mux.Handle("GET /v1/instance", n.authenticated(n.getInstance))
	mux.Handle("PATCH /v1/instance", n.authenticated(n.updateInstance))
	n.registerOrganizations(mux)
	n.registerWorkspaces(mux)
	n.registerAdminKeys(mux)
	n.registerMachines(mux)
	n.registerAPIKeys(mux)
	n.registerOrgTokens(mux)
	n.registerUserFamilies(mux)
	mux.Handle("POST /oauth/token", n.checked(n.token))
	mux.Handle("POST /oauth/revoke", n.checked(n.revoke))
	mux.Handle("GET /.well-known/openid-configuration", n.checked(n.discovery))
	mux.Handle("GET /.well-known/oauth-authorization-server", n.checked(n.discovery))
	n.registerAuthz(mux)
	mux.Handle("GET /v1/tickets/accept", n.checked(n.previewTicket))
	mux.Handle("POST /v1/tickets/accept", n.checked(n.acceptTicket))
	mux.Handle("POST /v1/impersonation_sessions/{id}/revoke", n.authenticated(n.revokeSession))
	mux.Handle("/v1/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.writeError(w, r, credential.Errorf(credential.CodeNotFound, "no such endpoint"))
	}))
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
func (n *native) caller(w http.ResponseWriter, r *http.Request, c authority.Caller) {
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
}

// checked refuses a request whose path values, query or X-User-ID are not
// text a store keeps (wire.CheckRequest) before h reads them.
func (n *native) checked(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := wire.CheckRequest(r); err != nil {
			n.writeError(w, r, err)
			return
		}
		h(w, r)
	})
}

// authenticated resolves the bearer credential to a caller; each handler's
// authority call decides what that caller may do.
func (n *native) authenticated(h func(http.ResponseWriter, *http.Request, authority.Caller)) http.Handler {
	return n.checked(func(w http.ResponseWriter, r *http.Request) {
		caller, err := n.auth.Authenticate(r.Context(), wire.Credential(r, "Bearer"))
		if err != nil {
			n.writeError(w, r, err)
			return
		}
		h(w, r, caller)
	})
}

type nativeError struct {
	Code    credential.Code `json:"code"`
	Message string          `json:"message"`
	Param   string          `json:"param,omitempty"`
}

func nativeStatus(c credential.Code) int {
	switch c {
	case credential.CodeMalformed, credential.CodeMissing, credential.CodeInvalid, credential.CodeWrongType,
		credential.CodeUnknownParam, credential.CodeTooLong, credential.CodeTooMany, credential.CodeConstraint, credential.CodeReserved:
		return http.StatusBadRequest
	case credential.CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case credential.CodeNotFound:
		return http.StatusNotFound
	case credential.CodeConflict:
		return http.StatusConflict
	case credential.CodeUnauthenticated:
		return http.StatusUnauthorized
	case credential.CodeForbidden:
		return http.StatusForbidden
	case credential.CodeRateLimited:
		return http.StatusTooManyRequests
	case credential.CodeUnavailable:
		return http.StatusServiceUnavailable
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

// pageParams reads the optional limit and offset query parameters.
func pageParams(r *http.Request) (limit, offset *int64, err error) {
	for name, dst := range map[string]**int64{"limit": &limit, "offset": &offset} {
		if v := r.URL.Query().Get(name); v != "" {
			i, perr := strconv.ParseInt(v, 10, 64)
			if perr != nil {
				return nil, nil, credential.ParamError(credential.CodeWrongType, name, "must be an integer")
			}
			*dst = &i
		}
	}
	return limit, offset, nil
}

func (n *native) listAuditEvents(w http.ResponseWriter, r *http.Request, c authority.Caller) {
	q := r.URL.Query()
	in := authority.ListAuditEventsInput{Action: q.Get("action"), TargetID: q.Get("target_id"), CredentialSHA256: q.Get("credential_sha256")}
	var err error
	if in.Limit, in.Offset, err = offsetPage(r); err != nil {
		n.writeError(w, r, err)
		return
	}
	events, total, err := n.auth.ListAuditEvents(r.Context(), c, in)
	if err != nil {
		n.writeError(w, r, err)
		return
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

func (n *native) getInstance(w http.ResponseWriter, r *http.Request, c authority.Caller) {
	in, err := n.auth.Instance(r.Context(), c)
	n.respond(w, r, http.StatusOK, toInstance(in), err)
}

// updateInstance changes the instance's settings:
// {"org_token_hourly_limit": N ≥ 1 (null restores 5000), "impersonation_redirect_url": "https://…"}.
func (n *native) updateInstance(w http.ResponseWriter, r *http.Request, c authority.Caller) {
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
	n.respond(w, r, http.StatusOK, toInstance(in), err)
}

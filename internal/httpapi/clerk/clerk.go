package clerk

import (
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/httpapi/wire"
)

// Prefix is where the surface is mounted: Clerk SDKs use
// http://host:port/clerk/v1 as their API URL.
const Prefix = "/clerk/v1"

// UnversionedPrefix serves the routes that Clerk's JavaScript SDK calls
// without the version segment (its skipApiVersionInUrl clients: M2M tokens
// and API keys), so that one apiUrl, http://host:port/clerk, serves every
// call of @clerk/backend: {apiUrl}/v1/machines and {apiUrl}/m2m_tokens.
const UnversionedPrefix = "/clerk"

type surface struct {
	auth      *authority.Authority
	log       *slog.Logger
	publicURL string
}

// Register mounts the Clerk surface on mux. publicURL is where keyward is
// reached, for actor tokens' accept URLs.
func Register(mux wire.Router, a *authority.Authority, log *slog.Logger, publicURL string) {
	s := &surface{auth: a, log: log, publicURL: publicURL}
	routes := []struct {
		pattern string
		handle  func(http.ResponseWriter, *http.Request, authority.Caller)
		// unversioned marks the routes @clerk/backend calls without /v1.
		unversioned bool
	}{
		{"GET /machines", s.listMachines, false},
		{"POST /machines", s.createMachine, false},
		{"GET /machines/{machine_id}", s.getMachine, false},
		{"PATCH /machines/{machine_id}", s.updateMachine, false},
		{"DELETE /machines/{machine_id}", s.deleteMachine, false},
		{"GET /machines/{machine_id}/secret_key", s.getSecretKey, false},
		{"POST /machines/{machine_id}/secret_key/rotate", s.rotateSecretKey, false},
		{"POST /machines/{machine_id}/scopes", s.createScope, false},
		{"DELETE /machines/{machine_id}/scopes/{other_machine_id}", s.deleteScope, false},
		{"POST /m2m_tokens", s.createM2MToken, true},
		{"GET /m2m_tokens", s.listM2MTokens, true},
		{"POST /m2m_tokens/{m2m_token_id}/revoke", s.revokeM2MToken, true},
		{"POST /m2m_tokens/verify", s.verifyM2MToken, true},
		{"POST /api_keys", s.createAPIKey, true},
		{"GET /api_keys", s.listAPIKeys, true},
		{"POST /api_keys/verify", s.verifyAPIKey, true},
		{"GET /api_keys/{api_key_id}", s.getAPIKey, true},
		{"PATCH /api_keys/{api_key_id}", s.updateAPIKey, true},
		{"DELETE /api_keys/{api_key_id}", s.deleteAPIKey, true},
		{"GET /api_keys/{api_key_id}/secret", s.apiKeySecret, true},
		{"POST /api_keys/{api_key_id}/revoke", s.revokeAPIKey, true},
		{"GET /jwks", s.jwks, false},
		{"POST /actor_tokens", s.createActorToken, false},
		{"GET /actor_tokens", s.listActorTokens, false},
		{"GET /actor_tokens/{actor_token_id}", s.getActorToken, false},
		{"POST /actor_tokens/{actor_token_id}/revoke", s.revokeActorToken, false},
	}
	for _, rt := range routes {
		method, path, _ := strings.Cut(rt.pattern, " ")
		h := s.authenticated(rt.handle)
		mux.Handle(method+" "+Prefix+path, h)
		if rt.unversioned {
			mux.Handle(method+" "+UnversionedPrefix+path, h)
		}
	}
	notFound := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, credential.Errorf(credential.CodeNotFound, "no such endpoint"))
	})
	mux.Handle(Prefix+"/", notFound)
	mux.Handle(UnversionedPrefix+"/", notFound)
}

// authenticated resolves the bearer secret to a caller, or answers Clerk's
// 401 (one body for every failure).
func (s *surface) authenticated(h func(http.ResponseWriter, *http.Request, authority.Caller)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := wire.CheckRequest(r); err != nil {
			s.writeError(w, r, err)
			return
		}
		caller, err := s.auth.Authenticate(r.Context(), wire.Credential(r, "Bearer"))
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		h(w, r, caller)
	})
}

// queryInt reads an optional integer query parameter.
func queryInt(r *http.Request, name string) (*int64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return nil, credential.ParamError(credential.CodeWrongType, name, "must be an integer")
	}
	return &n, nil
}

// jwks serves the instance's published keys (Clerk's GET /jwks takes the
// secret key).
func (s *surface) jwks(w http.ResponseWriter, r *http.Request, c authority.Caller) {
	keys, err := s.auth.PublishedKeys(r.Context(), c.InstanceID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	set, err := wire.JWKS(keys)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	wire.WriteJSON(w, http.StatusOK, set)
}

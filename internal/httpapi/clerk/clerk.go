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
	}{
		{"GET /machines", s.listMachines},
		{"POST /machines", s.createMachine},
		{"GET /machines/{machine_id}", s.getMachine},
		{"PATCH /machines/{machine_id}", s.updateMachine},
		{"DELETE /machines/{machine_id}", s.deleteMachine},
		{"GET /machines/{machine_id}/secret_key", s.getSecretKey},
		{"POST /machines/{machine_id}/secret_key/rotate", s.rotateSecretKey},
		{"POST /machines/{machine_id}/scopes", s.createScope},
		{"DELETE /machines/{machine_id}/scopes/{other_machine_id}", s.deleteScope},
		{"POST /m2m_tokens", s.createM2MToken},
		{"GET /m2m_tokens", s.listM2MTokens},
		{"POST /m2m_tokens/{m2m_token_id}/revoke", s.revokeM2MToken},
		{"POST /m2m_tokens/verify", s.verifyM2MToken},
		{"GET /jwks", s.jwks},
		{"POST /actor_tokens", s.createActorToken},
		{"GET /actor_tokens", s.listActorTokens},
		{"GET /actor_tokens/{actor_token_id}", s.getActorToken},
		{"POST /actor_tokens/{actor_token_id}/revoke", s.revokeActorToken},
	}
	for _, rt := range routes {
		method, path, _ := strings.Cut(rt.pattern, " ")
		mux.Handle(method+" "+Prefix+path, s.authenticated(rt.handle))
	}
	mux.Handle(Prefix+"/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, credential.Errorf(credential.CodeNotFound, "no such endpoint"))
	}))
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

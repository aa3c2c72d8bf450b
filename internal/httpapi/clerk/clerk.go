package clerk

import (
	"log/slog"
	"net/http"

	"github.com/keyward/keyward/internal/authority"
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
	wire.Surface
	auth      *authority.Authority
	log       *slog.Logger
	publicURL string
}

// Register mounts the Clerk surface on mux. publicURL is where keyward is
// reached, for actor tokens' accept URLs.
func Register(mux wire.Router, a *authority.Authority, log *slog.Logger, publicURL string) {
	s := &surface{auth: a, log: log, publicURL: publicURL}
	s.Surface = wire.Surface{Authenticate: s.authenticate, WriteError: s.writeError}
	// both mounts a route @clerk/backend calls without /v1 at both prefixes.
	both := func(method, path string, h wire.Handler) {
		mux.Handle(method+" "+Prefix+path, s.Authenticated(h))
		mux.Handle(method+" "+UnversionedPrefix+path, s.Authenticated(h))
	}
	mux.Handle("GET "+Prefix+"/machines", s.Authenticated(s.listMachines))
	mux.Handle("POST "+Prefix+"/machines", s.Authenticated(s.createMachine))
	mux.Handle("GET "+Prefix+"/machines/{machine_id}", s.Authenticated(s.getMachine))
	mux.Handle("PATCH "+Prefix+"/machines/{machine_id}", s.Authenticated(s.updateMachine))
	mux.Handle("DELETE "+Prefix+"/machines/{machine_id}", s.Authenticated(s.deleteMachine))
	mux.Handle("GET "+Prefix+"/machines/{machine_id}/secret_key", s.Authenticated(s.getSecretKey))
	mux.Handle("POST "+Prefix+"/machines/{machine_id}/secret_key/rotate", s.Authenticated(s.rotateSecretKey))
	mux.Handle("POST "+Prefix+"/machines/{machine_id}/scopes", s.Authenticated(s.createScope))
	mux.Handle("DELETE "+Prefix+"/machines/{machine_id}/scopes/{other_machine_id}", s.Authenticated(s.deleteScope))
	both("POST", "/m2m_tokens", s.createM2MToken)
	both("GET", "/m2m_tokens", s.listM2MTokens)
	both("POST", "/m2m_tokens/{m2m_token_id}/revoke", s.revokeM2MToken)
	both("POST", "/m2m_tokens/verify", s.verifyM2MToken)
	both("POST", "/api_keys", s.createAPIKey)
	both("GET", "/api_keys", s.listAPIKeys)
	both("POST", "/api_keys/verify", s.verifyAPIKey)
	both("GET", "/api_keys/{api_key_id}", s.getAPIKey)
	both("PATCH", "/api_keys/{api_key_id}", s.updateAPIKey)
	both("DELETE", "/api_keys/{api_key_id}", s.deleteAPIKey)
	both("GET", "/api_keys/{api_key_id}/secret", s.apiKeySecret)
	both("POST", "/api_keys/{api_key_id}/revoke", s.revokeAPIKey)
	mux.Handle("GET "+Prefix+"/jwks", s.Authenticated(s.jwks))
	mux.Handle("POST "+Prefix+"/actor_tokens", s.Authenticated(s.createActorToken))
	mux.Handle("GET "+Prefix+"/actor_tokens", s.Authenticated(s.listActorTokens))
	mux.Handle("GET "+Prefix+"/actor_tokens/{actor_token_id}", s.Authenticated(s.getActorToken))
	mux.Handle("POST "+Prefix+"/actor_tokens/{actor_token_id}/revoke", s.Authenticated(s.revokeActorToken))
	mux.Handle(Prefix+"/", wire.NewUnrouted(s.writeError, "no such endpoint"))
	mux.Handle(UnversionedPrefix+"/", wire.NewUnrouted(s.writeError, "no such endpoint"))
}

// Errors is the Clerk surface's error writer.
func Errors(log *slog.Logger) wire.ErrorWriter { return (&surface{log: log}).writeError }

// authenticate resolves the bearer secret to a caller (Clerk's 401 has
// one body for every failure).
func (s *surface) authenticate(_ http.ResponseWriter, r *http.Request) (authority.Caller, error) {
	return s.auth.Authenticate(r.Context(), wire.Credential(r, "Bearer"))
}

// jwks serves the instance's published keys (Clerk's GET /jwks takes the
// secret key).
func (s *surface) jwks(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	keys, err := s.auth.PublishedKeys(r.Context(), c.InstanceID)
	if err != nil {
		return err
	}
	set, err := wire.JWKS(keys)
	if err != nil {
		return err
	}
	wire.WriteJSON(w, http.StatusOK, set)
	return nil
}

package freezer

import (
	"encoding/json"
	"net/http"
	"slices"
	"time"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/httpapi/wire"
)

// IdentityPrefix is the Keystone v3 base URL (OS_AUTH_URL) that keyward
// answers for Freezer's client. The unchanged freezer CLI always
// authenticates through Keystone's token method before its calls
// (keystoneauth's "token" plugin), so keyward answers the two requests it
// makes: version discovery and POST /auth/tokens. The token it hands back
// is the one presented (a PAT); keyward mints no Keystone tokens.
const IdentityPrefix = "/freezer/identity/v3"

// Keystone's v3 media type and a version id keystoneauth accepts as v3.
const (
	identityMediaType = "application/vnd.openstack.identity-v3+json"
	identityVersion   = "v3.14"
	identityUpdated   = "2020-04-07T00:00:00Z"
)

func (s *surface) registerIdentity(mux wire.Router) {
	mux.Handle("GET "+IdentityPrefix, identityChecked(s.identityVersion))
	mux.Handle("GET "+IdentityPrefix+"/{$}", identityChecked(s.identityVersion))
	mux.Handle("POST "+IdentityPrefix+"/auth/tokens", identityChecked(s.issueIdentityToken))
	mux.Handle(IdentityPrefix+"/", wire.NewUnrouted(identityErrors, "The resource could not be found."))
}

// identityChecked refuses, in Keystone's envelope, a request whose query
// or path is not text a store keeps (wire.CheckRequest), as every surface
// does.
func identityChecked(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := wire.CheckRequest(r); err != nil {
			writeIdentityError(w, http.StatusBadRequest, "Bad Request", err.Error())
			return
		}
		h(w, r)
	})
}

// baseURL is where clients reach keyward: the configured public URL, or
// the scheme and host the request came to.
func (s *surface) baseURL(r *http.Request) string {
	if s.publicURL != "" {
		return s.publicURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// identityVersion is Keystone's version document; keystoneauth takes the
// self link as the identity endpoint.
func (s *surface) identityVersion(w http.ResponseWriter, r *http.Request) {
	wire.WriteJSON(w, http.StatusOK, map[string]any{"version": map[string]any{
		"id": identityVersion, "status": "stable", "updated": identityUpdated,
		"links":       []map[string]string{{"rel": "self", "href": s.baseURL(r) + IdentityPrefix}},
		"media-types": []map[string]string{{"base": "application/json", "type": identityMediaType}},
	}})
}

type identityRequest struct {
	Auth *struct {
		Identity struct {
			Methods []string `json:"methods"`
			Token   *struct {
				ID string `json:"id"`
			} `json:"token"`
		} `json:"identity"`
	} `json:"auth"`
}

// issueIdentityToken answers Keystone's POST /v3/auth/tokens for the token
// method: 201, the presented token as X-Subject-Token, and an unscoped
// token whose user is the PAT's user and whose catalogue names keyward's
// Freezer endpoint (service type "backup"), so the client needs no
// separate endpoint setting. Scope requests are answered unscoped.
func (s *surface) issueIdentityToken(w http.ResponseWriter, r *http.Request) {
	body, err := wire.Body(r)
	if credential.IsCode(err, credential.CodeTooLarge) {
		writeIdentityError(w, http.StatusRequestEntityTooLarge, "Request Entity Too Large", "Request is too large.")
		return
	}
	if err == nil {
		err = wire.CheckJSON(body)
	}
	if credential.IsCode(err, credential.CodeInvalid) { // a NUL: name where it is
		writeIdentityError(w, http.StatusBadRequest, "Bad Request", err.Error())
		return
	}
	var in identityRequest
	if err != nil || json.Unmarshal(body, &in) != nil || in.Auth == nil {
		writeIdentityError(w, http.StatusBadRequest, "Bad Request", "Expecting {\"auth\": {\"identity\": {...}}} as a JSON body.")
		return
	}
	id := in.Auth.Identity
	if !slices.Equal(id.Methods, []string{"token"}) {
		writeIdentityError(w, http.StatusUnauthorized, "Unauthorized", "Only the token authentication method is supported: authenticate with a personal access token.")
		return
	}
	if id.Token == nil || id.Token.ID == "" {
		writeIdentityError(w, http.StatusBadRequest, "Bad Request", "auth.identity.token.id is missing.")
		return
	}
	ident, err := s.auth.IdentifyClientUser(r.Context(), id.Token.ID)
	if err != nil {
		identityErrors(w, r, err)
		return
	}
	base := s.baseURL(r)
	user := ident.Caller.UserID
	w.Header().Set("X-Subject-Token", id.Token.ID)
	wire.WriteSecretJSON(w, http.StatusCreated, map[string]any{"token": map[string]any{
		"methods":    []string{"token"},
		"user":       map[string]any{"id": user, "name": user, "domain": map[string]string{"id": "default", "name": "Default"}},
		"issued_at":  keystoneTime(ident.IssuedAt),
		"expires_at": keystoneTime(ident.ExpiresAt),
		"audit_ids":  []string{authority.RequestID(r.Context())},
		"catalog": []map[string]any{{
			"id": "keyward-freezer", "type": "backup", "name": "freezer",
			"endpoints": []map[string]string{
				{"id": "keyward-freezer-public", "interface": "public", "region": "keyward", "region_id": "keyward", "url": base + "/freezer"},
				{"id": "keyward-freezer-internal", "interface": "internal", "region": "keyward", "region_id": "keyward", "url": base + "/freezer"},
			},
		}},
	}})
}

// keystoneTime is Keystone's timestamp format.
func keystoneTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000Z") }

// identityErrors renders err in Keystone's envelope, with the status and
// title of Freezer's table.
func identityErrors(w http.ResponseWriter, _ *http.Request, err error) {
	e := credential.AsError(err)
	status, title := statusAndTitle(e.Code)
	msg := e.Message
	if status >= 500 {
		msg = "internal error"
	}
	writeIdentityError(w, status, title, msg)
}

// writeIdentityError writes Keystone's error envelope.
func writeIdentityError(w http.ResponseWriter, status int, title, message string) {
	wire.WriteJSON(w, status, map[string]any{"error": map[string]any{"code": status, "title": title, "message": message}})
}

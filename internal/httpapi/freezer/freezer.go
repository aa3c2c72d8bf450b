// Package freezer speaks OpenStack Freezer's wire protocol for the client
// registry (/v1/clients), mounted under /freezer so python-freezerclient
// works with the endpoint http://host:port/freezer.
//
// As Freezer does, the list takes its search option as a JSON body on the
// GET, malformed JSON is status 753, and errors are {"title",
// "description"} — except a missing client on show, which is a bare 404.
// Callers are the admin key acting for X-User-ID (as Keystone's middleware
// supplies it) or a PAT with keyward:clients acting as its own user. The
// credential comes as Keystone's X-Auth-Token (what python-freezerclient
// sends) or as a bearer token; the collection routes also answer at their
// trailing-slash form (/v1/clients/, as the client calls them).
package freezer

import (
	"crypto/subtle"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/httpapi/wire"
)

// Prefix is where the surface is mounted.
const Prefix = "/freezer/v1"

// StatusMalformedJSON is Freezer's (Falcon's) custom status for a body
// that is not JSON.
const StatusMalformedJSON = 753

type surface struct {
	auth      *authority.Authority
	log       *slog.Logger
	publicURL string
}

// Register mounts the Freezer surface on mux. publicURL is where clients
// reach keyward (for the Keystone catalogue); "" means the request's host.
func Register(mux wire.Router, a *authority.Authority, log *slog.Logger, publicURL string) {
	s := &surface{auth: a, log: log, publicURL: strings.TrimRight(publicURL, "/")}
	for _, path := range []string{Prefix + "/clients", Prefix + "/clients/{$}"} {
		mux.Handle("GET "+path, s.authenticated(s.list))
		mux.Handle("POST "+path, s.authenticated(s.create))
	}
	mux.Handle("GET "+Prefix+"/clients/{client_id}", s.authenticated(s.show))
	mux.Handle("DELETE "+Prefix+"/clients/{client_id}", s.authenticated(s.delete))
	mux.Handle(Prefix+"/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, credential.Errorf(credential.CodeNotFound, "The requested resource could not be found."))
	}))
	s.registerIdentity(mux)
}

// errTwoCredentials refuses a request whose X-Auth-Token and bearer token
// disagree: which one would act is ambiguous, so neither does.
var errTwoCredentials = credential.Errorf(credential.CodeUnauthenticated,
	"X-Auth-Token and the Authorization bearer token differ; send one credential")

// presented is the request's credential: Keystone's X-Auth-Token, a bearer
// token, or both when they are the same. More than one X-Auth-Token or
// Authorization header is refused like two different credentials (an
// X-Auth-Token must not stand in for the Authorization headers
// wire.Credential refused).
func presented(r *http.Request) (string, error) {
	bearer := wire.Credential(r, "Bearer")
	values := r.Header.Values("X-Auth-Token")
	if len(values) > 1 || len(r.Header.Values("Authorization")) > 1 {
		return "", errTwoCredentials
	}
	token := ""
	if len(values) == 1 {
		token = strings.TrimSpace(values[0])
	}
	switch {
	case token == "":
		return bearer, nil
	case bearer == "":
		return token, nil
	case subtle.ConstantTimeCompare([]byte(token), []byte(bearer)) != 1:
		return "", errTwoCredentials
	}
	return token, nil
}

func (s *surface) authenticated(h func(http.ResponseWriter, *http.Request, authority.Caller)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := wire.CheckRequest(r); err != nil {
			s.writeError(w, r, err)
			return
		}
		token, err := presented(r)
		var c authority.Caller
		if err == nil {
			c, err = s.auth.AuthenticateUser(r.Context(), token, r.Header.Get("X-User-ID"))
		} else if refusal := s.auth.RefuseAmbiguousCredential(r.Context()); credential.IsCode(refusal, credential.CodeRateLimited) {
			err = refusal
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		h(w, r, c)
	})
}

type errorBody struct {
	Title       string `json:"title"`
	Description string `json:"description"`
}

func statusAndTitle(c credential.Code) (int, string) {
	switch c {
	case credential.CodeMalformed:
		return StatusMalformedJSON, "Malformed JSON"
	case credential.CodeMissing, credential.CodeInvalid, credential.CodeWrongType, credential.CodeUnknownParam,
		credential.CodeTooLong, credential.CodeTooMany, credential.CodeConstraint, credential.CodeReserved:
		return http.StatusBadRequest, "Bad request format"
	case credential.CodeTooLarge:
		return http.StatusRequestEntityTooLarge, "Request Entity Too Large"
	case credential.CodeNotFound:
		return http.StatusNotFound, "Not Found"
	case credential.CodeConflict:
		return http.StatusConflict, "Document already existing"
	case credential.CodeUnauthenticated:
		return http.StatusUnauthorized, "Unauthorized"
	case credential.CodeForbidden:
		return http.StatusForbidden, "Access Forbidden"
	case credential.CodeRateLimited:
		return http.StatusTooManyRequests, "Too Many Requests"
	case credential.CodeUnavailable:
		return http.StatusServiceUnavailable, "Service Unavailable"
	}
	return http.StatusInternalServerError, "Internal Storage Error"
}

func (s *surface) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := credential.AsError(err)
	status, title := statusAndTitle(e.Code)
	desc := e.Message
	switch {
	case e.Code == credential.CodeMalformed: // 753, not a server error
		desc = "Could not decode the request body. The JSON was incorrect."
	case status >= 500:
		desc = "internal error"
		s.log.LogAttrs(r.Context(), slog.LevelError, "freezer request failed",
			slog.String("request_id", authority.RequestID(r.Context())), slog.String("error", err.Error()))
	case e.Param != "":
		desc = e.Param + ": " + e.Message
	}
	wire.SetRetryAfter(w, e)
	wire.WriteJSON(w, status, errorBody{Title: title, Description: desc})
}

// readJSON reads the body and checks that it is well-formed JSON (753
// otherwise); an empty body passes as empty.
func readJSON(r *http.Request) ([]byte, error) {
	body, err := wire.Body(r)
	if err != nil || len(body) == 0 {
		return body, err
	}
	return body, wire.CheckJSON(body)
}

func (s *surface) create(w http.ResponseWriter, r *http.Request, c authority.Caller) {
	body, err := readJSON(r)
	var id string
	if err == nil {
		id, err = s.auth.CreateClient(r.Context(), c, func() (authority.NewClient, error) { return decodeClient(body) })
	}
	if e := credential.AsError(err); e.Code == credential.CodeConflict && e.Param == "client_id" {
		err = credential.Errorf(credential.CodeConflict, "Client already registered with ID %s", id)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	wire.WriteJSON(w, http.StatusCreated, map[string]string{"client_id": id})
}

func (s *surface) list(w http.ResponseWriter, r *http.Request, c authority.Caller) {
	body, err := readJSON(r)
	var search clientSearch
	if err == nil {
		search, err = parseClientSearch(body)
	}
	var limit, offset *int64
	for name, dst := range map[string]**int64{"limit": &limit, "offset": &offset} {
		if v := r.URL.Query().Get(name); v != "" && err == nil {
			n, perr := strconv.ParseInt(v, 10, 64)
			if perr != nil {
				err = credential.ParamError(credential.CodeWrongType, name, "must be an integer")
			}
			*dst = &n
		}
	}
	var clients []credential.Client
	if err == nil {
		clients, err = s.auth.ListClients(r.Context(), c, search.keeps, limit, offset)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	entries := make([]any, len(clients))
	for i, cl := range clients {
		entries[i] = clientEntry(cl)
	}
	wire.WriteJSON(w, http.StatusOK, map[string]any{"clients": entries})
}

// show answers a missing client, or another user's, with a bare 404.
func (s *surface) show(w http.ResponseWriter, r *http.Request, c authority.Caller) {
	cl, err := s.auth.GetClient(r.Context(), c, r.PathValue("client_id"))
	if credential.IsCode(err, credential.CodeNotFound) {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(clientEntry(cl))
}

func (s *surface) delete(w http.ResponseWriter, r *http.Request, c authority.Caller) {
	id := r.PathValue("client_id")
	if err := s.auth.DeleteClient(r.Context(), c, id); err != nil {
		if credential.IsCode(err, credential.CodeNotFound) {
			err = credential.Errorf(credential.CodeNotFound, "No Client found with ID:%s", id)
		}
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

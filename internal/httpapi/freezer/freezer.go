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
	wire.Surface
	auth      *authority.Authority
	log       *slog.Logger
	publicURL string
}

// Register mounts the Freezer surface on mux. publicURL is where clients
// reach keyward (for the Keystone catalogue); "" means the request's host.
func Register(mux wire.Router, a *authority.Authority, log *slog.Logger, publicURL string) {
	s := &surface{auth: a, log: log, publicURL: strings.TrimRight(publicURL, "/")}
	s.Surface = wire.Surface{Authenticate: s.authenticate, WriteError: s.writeError}
	for _, path := range []string{Prefix + "/clients", Prefix + "/clients/{$}"} {
		mux.Handle("GET "+path, s.Authenticated(s.list))
		mux.Handle("POST "+path, s.Authenticated(s.create))
	}
	mux.Handle("GET "+Prefix+"/clients/{client_id}", s.Authenticated(s.show))
	mux.Handle("DELETE "+Prefix+"/clients/{client_id}", s.Authenticated(s.delete))
	mux.Handle(Prefix+"/", wire.NewUnrouted(s.writeError, "The requested resource could not be found."))
	s.registerIdentity(mux)
}

// Errors is the Freezer surface's error writer.
func Errors(log *slog.Logger) wire.ErrorWriter { return (&surface{log: log}).writeError }

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

// authenticate resolves the presented credential: a PAT acting as its
// user, or the admin key acting for X-User-ID.
func (s *surface) authenticate(_ http.ResponseWriter, r *http.Request) (authority.Caller, error) {
	token, err := presented(r)
	if err != nil {
		if refusal := s.auth.RefuseAmbiguousCredential(r.Context()); credential.IsCode(refusal, credential.CodeRateLimited) {
			return authority.Caller{}, refusal
		}
		return authority.Caller{}, err
	}
	return s.auth.AuthenticateUser(r.Context(), token, r.Header.Get("X-User-ID"))
}

type errorBody struct {
	Title       string `json:"title"`
	Description string `json:"description"`
}

// freezerError is how Freezer answers one of keyward's codes: the status
// and the title.
type freezerError struct {
	status int
	title  string
}

// errorTable maps keyward's codes to Freezer's, in one place.
var errorTable = map[credential.Code]freezerError{
	credential.CodeMalformed:        {StatusMalformedJSON, "Malformed JSON"},
	credential.CodeMissing:          {http.StatusBadRequest, "Bad request format"},
	credential.CodeInvalid:          {http.StatusBadRequest, "Bad request format"},
	credential.CodeWrongType:        {http.StatusBadRequest, "Bad request format"},
	credential.CodeUnknownParam:     {http.StatusBadRequest, "Bad request format"},
	credential.CodeTooLong:          {http.StatusBadRequest, "Bad request format"},
	credential.CodeTooMany:          {http.StatusBadRequest, "Bad request format"},
	credential.CodeConstraint:       {http.StatusBadRequest, "Bad request format"},
	credential.CodeReserved:         {http.StatusBadRequest, "Bad request format"},
	credential.CodeTooLarge:         {http.StatusRequestEntityTooLarge, "Request Entity Too Large"},
	credential.CodeMethodNotAllowed: {http.StatusMethodNotAllowed, "Method Not Allowed"},
	credential.CodeNotFound:         {http.StatusNotFound, "Not Found"},
	credential.CodeConflict:         {http.StatusConflict, "Document already existing"},
	credential.CodeUnauthenticated:  {http.StatusUnauthorized, "Unauthorized"},
	credential.CodeForbidden:        {http.StatusForbidden, "Access Forbidden"},
	credential.CodeRateLimited:      {http.StatusTooManyRequests, "Too Many Requests"},
	credential.CodeUnavailable:      {http.StatusServiceUnavailable, "Service Unavailable"},
	credential.CodeInternal:         {http.StatusInternalServerError, "Internal Storage Error"},
}

func statusAndTitle(c credential.Code) (int, string) {
	t, ok := errorTable[c]
	if !ok {
		t = errorTable[credential.CodeInternal]
	}
	return t.status, t.title
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

func (s *surface) create(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	body, err := readJSON(r)
	var id string
	if err == nil {
		id, err = s.auth.CreateClient(r.Context(), c, func() (authority.NewClient, error) { return decodeClient(body) })
	}
	if e := credential.AsError(err); e.Code == credential.CodeConflict && e.Param == "client_id" {
		err = credential.Errorf(credential.CodeConflict, "Client already registered with ID %s", id)
	}
	if err != nil {
		return err
	}
	wire.WriteJSON(w, http.StatusCreated, map[string]string{"client_id": id})
	return nil
}

func (s *surface) list(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	body, err := readJSON(r)
	var search clientSearch
	if err == nil {
		search, err = parseClientSearch(body)
	}
	var limit, offset *int64
	if err == nil {
		limit, offset, err = wire.Page(r)
	}
	var clients []credential.Client
	if err == nil {
		clients, err = s.auth.ListClients(r.Context(), c, search.keeps, limit, offset)
	}
	if err != nil {
		return err
	}
	entries := make([]any, len(clients))
	for i, cl := range clients {
		entries[i] = clientEntry(cl)
	}
	wire.WriteJSON(w, http.StatusOK, map[string]any{"clients": entries})
	return nil
}

// show answers a missing client, or another user's, with a bare 404.
func (s *surface) show(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	cl, err := s.auth.GetClient(r.Context(), c, r.PathValue("client_id"))
	if credential.IsCode(err, credential.CodeNotFound) {
		w.WriteHeader(http.StatusNotFound)
		return nil
	}
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(clientEntry(cl))
	return nil
}

func (s *surface) delete(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	id := r.PathValue("client_id")
	if err := s.auth.DeleteClient(r.Context(), c, id); err != nil {
		if credential.IsCode(err, credential.CodeNotFound) {
			err = credential.Errorf(credential.CodeNotFound, "No Client found with ID:%s", id)
		}
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

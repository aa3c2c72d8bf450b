package wire

import (
	"net/http"
	"strconv"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
)

// Handler answers an authenticated request: it writes the answer, or
// returns an error (having written nothing) that the surface renders in
// its envelope.
type Handler func(w http.ResponseWriter, r *http.Request, c authority.Caller) error

// PublicHandler is a Handler for a route that takes no credential.
type PublicHandler func(w http.ResponseWriter, r *http.Request) error

// ErrorWriter renders an error in a surface's envelope, with the status
// its table gives the error's code.
type ErrorWriter func(w http.ResponseWriter, r *http.Request, err error)

// Surface is one protocol keyward speaks: how it finds the caller, and how
// it answers an error. Its adapters are the one place a request is
// checked, authenticated and its error rendered.
type Surface struct {
	// Authenticate resolves the request's credential to a caller; it may
	// set response headers (such as a rate-limit window) on w.
	Authenticate func(w http.ResponseWriter, r *http.Request) (authority.Caller, error)
	WriteError   ErrorWriter
}

// Checked serves h after CheckRequest: path values, query and X-User-ID
// must be text a store keeps before h reads them.
func (s *Surface) Checked(h PublicHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := CheckRequest(r)
		if err == nil {
			err = h(w, r)
		}
		if err != nil {
			s.WriteError(w, r, err)
		}
	})
}

// Authenticated serves h with the request's caller; each handler's
// authority call decides what that caller may do.
func (s *Surface) Authenticated(h Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := CheckRequest(r)
		if err == nil {
			var c authority.Caller
			if c, err = s.Authenticate(w, r); err == nil {
				err = h(w, r, c)
			}
		}
		if err != nil {
			s.WriteError(w, r, err)
		}
	})
}

// Page reads the optional integer query parameters limit and offset (the
// authority checks their ranges).
func Page(r *http.Request) (limit, offset *int64, err error) {
	if limit, err = queryInt(r, "limit"); err != nil {
		return nil, nil, err
	}
	if offset, err = queryInt(r, "offset"); err != nil {
		return nil, nil, err
	}
	return limit, offset, nil
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

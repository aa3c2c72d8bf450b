package wire

import (
	"net/http"
	"strings"

	"github.com/keyward/keyward/internal/credential"
)

// Unrouted answers, in a surface's envelope, the requests under its
// prefix that no route takes: 405 with an Allow header when the path has
// routes for other methods, else a 404. A surface registers one as its
// catch-all; the server binds it to the mux's matcher (Bind).
type Unrouted struct {
	WriteError ErrorWriter
	NotFound   string // the 404's message
	// NotFoundOnly answers a wrong method with the 404 too, for a surface
	// whose protocol has no 405.
	NotFoundOnly bool
	match        func(*http.Request) (http.Handler, string)
}

// NewUnrouted returns the catch-all of a surface whose errors errs writes.
func NewUnrouted(errs ErrorWriter, notFound string) *Unrouted {
	return &Unrouted{WriteError: errs, NotFound: notFound}
}

// Bind gives u the matcher of the mux it is registered on (an
// *http.ServeMux's Handler method), so that it can tell a wrong method
// from an unknown path.
func (u *Unrouted) Bind(match func(*http.Request) (http.Handler, string)) { u.match = match }

// probedMethods are the methods a path is tried with to fill Allow.
var probedMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

func (u *Unrouted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if allow := u.allowed(r); len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		u.WriteError(w, r, credential.Errorf(credential.CodeMethodNotAllowed, "%s is not allowed here; use %s", r.Method, strings.Join(allow, " or ")))
		return
	}
	u.WriteError(w, r, credential.Errorf(credential.CodeNotFound, "%s", u.NotFound))
}

// allowed lists the methods a route takes at r's path (a catch-all, which
// has no method in its pattern, is not a route).
func (u *Unrouted) allowed(r *http.Request) []string {
	if u.match == nil || u.NotFoundOnly {
		return nil
	}
	var allow []string
	for _, m := range probedMethods {
		if m == r.Method {
			continue
		}
		probe := *r
		probe.Method = m
		if _, pattern := u.match(&probe); strings.Contains(pattern, " ") {
			allow = append(allow, m)
		}
	}
	return allow
}

package wire

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/keyward/keyward/internal/credential"
)

// Credential returns the credential presented in the Authorization header
// with one of the given schemes ("Bearer", and "Token" for Mist), or "".
// Credentials are read from headers only, never from the query string.
//
// A request presenting more than one credential (two Authorization
// headers) presents none, so it is refused as unauthenticated (401 in the
// surface's envelope): which one wins is exactly what a proxy and keyward
// could disagree on. Any other header that comes to carry a credential must
// count towards the same rule.
func Credential(r *http.Request, schemes ...string) string {
	values := r.Header.Values("Authorization")
	if len(values) != 1 {
		return ""
	}
	h := values[0]
	for _, scheme := range schemes {
		if len(h) > len(scheme) && strings.EqualFold(h[:len(scheme)], scheme) && h[len(scheme)] == ' ' {
			return strings.TrimSpace(h[len(scheme)+1:])
		}
	}
	return ""
}

// Body reads the whole request body. The server bounds every body with
// http.MaxBytesReader; crossing the bound is CodeTooLarge.
func Body(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(r.Body)
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, credential.Errorf(credential.CodeTooLarge, "the request body is too large")
	case err != nil:
		return nil, credential.Wrap(credential.CodeMalformed, err, "the request body could not be read")
	}
	return b, nil
}

// WriteSecretJSON writes a response that hands out a secret: never to be
// stored by a browser or a cache (RFC 6749 §5.1).
func WriteSecretJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	WriteJSON(w, status, v)
}

// WriteJSON writes v as a JSON response with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header()["Content-Type"] = jsonContentType // shared, never appended to in place (len == cap)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Router is where surfaces register their routes: an *http.ServeMux, or
// a recorder that lists them (for the OpenAPI document's test).
type Router interface {
	Handle(pattern string, handler http.Handler)
}

// SetRetryAfter sends Retry-After (whole seconds, rounded up) for a
// CodeRateLimited error that says how long to wait. Every surface's error
// writer calls it, so a throttled caller learns when to come back in each
// envelope.
func SetRetryAfter(w http.ResponseWriter, e *credential.Error) {
	if e.Code == credential.CodeRateLimited && e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(e.RetryAfterSeconds(), 10))
	}
}

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
	var b []byte
	var err error
	if n := r.ContentLength; n > 0 && n <= maxPreallocatedBody {
		// One allocation of the announced size (plus one byte, to see the
		// end without growing), where io.ReadAll would start at 512 bytes
		// and grow by copying: a JWT in a body is already past that.
		b, err = readAllInto(r.Body, make([]byte, 0, n+1))
	} else {
		b, err = io.ReadAll(r.Body)
	}
	if err != nil {
		return nil, bodyError(err)
	}
	return b, nil
}

// bodyError names why a body could not be read. Apart from Body, so that
// errors.As's target escapes only when there is an error.
func bodyError(err error) error {
	if tooLarge := (*http.MaxBytesError)(nil); errors.As(err, &tooLarge) {
		return credential.Errorf(credential.CodeTooLarge, "the request body is too large")
	}
	return credential.Wrap(credential.CodeMalformed, err, "the request body could not be read")
}

// maxPreallocatedBody bounds what a Content-Length header may make Body
// allocate before any byte has arrived.
const maxPreallocatedBody = 64 << 10

// readAllInto is io.ReadAll reading into buf.
func readAllInto(r io.Reader, buf []byte) ([]byte, error) {
	for {
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)] // grow, as io.ReadAll does
		}
	}
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

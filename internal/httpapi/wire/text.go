package wire

import (
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/keyward/keyward/internal/credential"
)

// Text that reaches a store must be valid UTF-8 without NUL: PostgreSQL
// refuses both in text and jsonb (a 500 there, while SQLite keeps them),
// so they are refused here, as invalid input, the same on both engines and
// before any store sees them. JSON bodies are checked by CheckJSON; this
// file checks what a handler reads beside the body.

// ValidText reports whether s is valid UTF-8 without a NUL character.
func ValidText(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// errNotText is the error for a parameter that fails ValidText.
func errNotText(param string) error {
	return credential.ParamError(credential.CodeInvalid, printableName(param), "must be valid UTF-8 without NUL characters")
}

// printableName makes a parameter's name fit to be echoed in an error:
// bounded, NUL spelled out, valid UTF-8.
func printableName(name string) string {
	if len(name) > 64 {
		name = name[:64] + "…"
	}
	return strings.ToValidUTF8(strings.ReplaceAll(name, "\x00", `\0`), "\uFFFD")
}

// CheckValues checks every name and value of a query string or an
// application/x-www-form-urlencoded body, in name order.
func CheckValues(v url.Values) error {
	names := make([]string, 0, len(v))
	for name := range v {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if !ValidText(name) {
			return errNotText(name)
		}
		for _, value := range v[name] {
			if !ValidText(value) {
				return errNotText(name)
			}
		}
	}
	return nil
}

// headerParams are the request headers a surface passes on to the
// authority as data (the credential headers are parsed, never stored).
// Each is {the name errors use, its canonical key}: Header.Values with a
// key not in canonical form allocates its canonical copy on every call.
var headerParams = [...]struct{ name, key string }{{"X-User-ID", textproto.CanonicalMIMEHeaderKey("X-User-ID")}}

// CheckRequest checks what a handler may read from a request beside its
// body: the path values of the matched route, the query parameters and the
// headers in headerParams. Every surface calls it before anything else, so
// the error names the parameter in the surface's own envelope.
func CheckRequest(r *http.Request) error {
	for _, name := range patternWildcards(r.Pattern) {
		if !ValidText(r.PathValue(name)) {
			return errNotText(name)
		}
	}
	q, _ := url.ParseQuery(r.URL.RawQuery) // what r.URL.Query() reads, undecodable pairs dropped alike
	if err := CheckValues(q); err != nil {
		return err
	}
	for _, h := range headerParams {
		name, values := h.name, r.Header[h.key]
		if len(values) > 1 {
			// Two of them would let a proxy and keyward disagree on whom a
			// request acts for, as two Authorization headers would.
			return credential.ParamError(credential.CodeInvalid, name, "must be sent once")
		}
		for _, v := range values {
			if !ValidText(v) {
				return errNotText(name)
			}
		}
	}
	return nil
}

// patternWildcards lists the wildcard names of a ServeMux pattern:
// "GET /a/{id}/b/{rest...}" → id, rest.
func patternWildcards(pattern string) []string {
	var names []string
	for {
		open := strings.IndexByte(pattern, '{')
		if open < 0 {
			return names
		}
		end := strings.IndexByte(pattern[open:], '}')
		if end < 0 {
			return names
		}
		name := strings.TrimSuffix(pattern[open+1:open+end], "...")
		if name != "$" {
			names = append(names, name)
		}
		pattern = pattern[open+end+1:]
	}
}

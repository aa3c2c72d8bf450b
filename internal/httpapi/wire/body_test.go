package wire_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/httpapi/wire"
)

// Body reads the whole body whatever Content-Length announces: the length
// only sizes the first allocation.
func TestBodyReadsTheWholeBodyWhateverItsAnnouncedLength(t *testing.T) {
	const payload = `{"token":"` + "x" + `"}`
	long := strings.Repeat("a", 3000)
	for _, tc := range []struct {
		name     string
		body     string
		announce int64
	}{
		{"announced exactly", payload, int64(len(payload))},
		{"announced short", long, 10},
		{"announced long", payload, 5000},
		{"not announced", long, -1},
		{"announced past the preallocation bound", long, 1 << 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", strings.NewReader(tc.body))
			r.ContentLength = tc.announce
			got, err := wire.Body(r)
			if err != nil || string(got) != tc.body {
				t.Fatalf("Body = %d bytes, %v; want the %d bytes sent", len(got), err, len(tc.body))
			}
		})
	}
}

func TestBodyPastTheServersBoundIsTooLarge(t *testing.T) {
	r := httptest.NewRequest("POST", "/", strings.NewReader(strings.Repeat("a", 100)))
	r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, 64)
	if _, err := wire.Body(r); !credential.IsCode(err, credential.CodeTooLarge) {
		t.Fatalf("Body = %v; want CodeTooLarge", err)
	}
}

package wire

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
)

func TestPageReadsOptionalIntegers(t *testing.T) {
	for _, tc := range []struct {
		name, query   string
		limit, offset int64 // -1: absent
		wantParam     string
	}{
		{"neither", "", -1, -1, ""},
		{"both", "limit=5&offset=10", 5, 10, ""},
		{"limit only", "limit=5", 5, -1, ""},
		{"a word for limit", "limit=ten", 0, 0, "limit"},
		{"a word for offset", "limit=5&offset=x", 0, 0, "offset"},
		{"both bad: limit is named", "limit=x&offset=y", 0, 0, "limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			limit, offset, err := Page(httptest.NewRequest("GET", "/?"+tc.query, nil))
			if tc.wantParam != "" {
				if e := credential.AsError(err); e.Code != credential.CodeWrongType || e.Param != tc.wantParam {
					t.Fatalf("err = %v, want wrong_type on %s", err, tc.wantParam)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range []struct {
				got  *int64
				want int64
			}{{limit, tc.limit}, {offset, tc.offset}} {
				if (v.got == nil) != (v.want == -1) || (v.got != nil && *v.got != v.want) {
					t.Errorf("got %v, want %d", v.got, v.want)
				}
			}
		})
	}
}

func TestAuthenticatedRendersEveryErrorOnce(t *testing.T) {
	var rendered []error
	s := &Surface{
		Authenticate: func(_ http.ResponseWriter, r *http.Request) (authority.Caller, error) {
			if r.Header.Get("Authorization") == "" {
				return authority.Caller{}, credential.Errorf(credential.CodeUnauthenticated, "no")
			}
			return authority.Caller{CredentialID: "c"}, nil
		},
		WriteError: func(_ http.ResponseWriter, _ *http.Request, err error) { rendered = append(rendered, err) },
	}
	h := s.Authenticated(func(w http.ResponseWriter, _ *http.Request, c authority.Caller) error {
		if c.CredentialID != "c" {
			t.Errorf("handler got caller %+v", c)
		}
		return credential.Errorf(credential.CodeConflict, "handler")
	})
	for _, tc := range []struct {
		name, auth, query string
		want              credential.Code
	}{
		{"an unauthenticated request", "", "", credential.CodeUnauthenticated},
		{"a request with a NUL in its query", "Bearer x", "q=%00", credential.CodeInvalid},
		{"a handler's error", "Bearer x", "", credential.CodeConflict},
	} {
		rendered = nil
		r := httptest.NewRequest("GET", "/?"+tc.query, nil)
		if tc.auth != "" {
			r.Header.Set("Authorization", tc.auth)
		}
		h.ServeHTTP(httptest.NewRecorder(), r)
		if len(rendered) != 1 || credential.CodeOf(rendered[0]) != tc.want {
			t.Errorf("%s: rendered %v, want one %s", tc.name, rendered, tc.want)
		}
	}
}

package wire

import (
	"net/http/httptest"
	"testing"
)

func TestCredentialRefusesSeveralAuthorizationHeaders(t *testing.T) {
	cases := []struct {
		name    string
		headers []string
		want    string
	}{
		{"one bearer header", []string{"Bearer sk_a"}, "sk_a"},
		{"no header", nil, ""},
		{"two bearer headers", []string{"Bearer sk_a", "Bearer sk_b"}, ""},
		{"the same header twice", []string{"Bearer sk_a", "Bearer sk_a"}, ""},
		{"a bearer and a basic header", []string{"Basic eDp5", "Bearer sk_a"}, ""},
		{"an empty header beside a bearer one", []string{"", "Bearer sk_a"}, ""},
		{"two credentials folded into one header", []string{"Bearer sk_a, Bearer sk_b"}, "sk_a, Bearer sk_b"}, // never a valid secret
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.Header["Authorization"] = tc.headers
			if got := Credential(r, "Token", "Bearer"); got != tc.want {
				t.Fatalf("Credential = %q, want %q", got, tc.want)
			}
		})
	}
}

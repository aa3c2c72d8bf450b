package httpapi

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
)

func encoded(t *testing.T, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestVerifyResponseBytesAreWhatEncodingJSONWrote(t *testing.T) {
	at := "2026-12-01T10:00:00.123Z"
	for name, out := range map[string]verifyResponse{
		"not found":   {Code: "not_found"},
		"opaque m2m":  {Valid: true, Code: "valid", Kind: "m2m_token", ID: "mt_1", Subject: "mch_1", Scopes: []string{"mch_2", "mch_3"}, ExpiresAt: &at},
		"jwt claims":  {Valid: true, Code: "valid", Kind: "m2m_token", ID: "mt_1", Claims: json.RawMessage(`{ "iss" : "http://x/<&>", "n": [1, 2.5] }`)},
		"org token":   {Valid: true, Code: "valid", Kind: "org_token", Privileges: []credential.Privilege{{Scope: "org", Role: "admin"}, {Scope: "site", Role: "viewer", SiteID: "s1", SitegroupID: "g\"1", Views: []string{"a", "<b>"}}}},
		"pat":         {Valid: false, Code: "rate_limited", Kind: "pat", WorkspaceID: "ws_1", RateLimit: &rateLimitJSON{Limit: 100, Remaining: 0, ResetAt: "2026-12-01T10:00:00Z"}},
		"odd strings": {Code: "x\u2028\xff\x01", Kind: "é", ID: "\\", Subject: "\t", Scopes: []string{""}},
		"empty slice": {Code: "valid", Scopes: []string{}, Privileges: []credential.Privilege{}, Claims: json.RawMessage{}},
		"controls": {Code: "insufficient_permissions", Kind: "api_key", Meta: json.RawMessage(`{ "plan": "<pro>" }`), Permissions: []string{"a.b"},
			Roles: []string{"r"}, MissingPermissions: []string{"c"}, Limits: []limitStateJSON{{Name: "burst", Limit: 3, Remaining: 0, Reset: 1764583200000}, {Name: "d", Limit: 1, Remaining: 1, Reset: 1}},
			Credits: &creditsLeftJSON{Remaining: 7}, Identity: &identityRefJSON{ID: "idt_1", ExternalID: "cust <42>"}},
		"empty controls": {Code: "valid", Meta: json.RawMessage{}, Permissions: []string{}, Limits: []limitStateJSON{}},
	} {
		got, ok := appendVerifyResponse(nil, &out)
		if want := encoded(t, out); !ok || !bytes.Equal(got, want) {
			t.Errorf("%s: appended %s (ok %v), encoding/json wrote %s", name, got, ok, want)
		}
	}
	if _, ok := appendVerifyResponse(nil, &verifyResponse{Claims: json.RawMessage(`{`)}); ok {
		t.Error("invalid claims were appended")
	}
}

// introspectionAsMap is the answer introspect built before it was appended
// by hand.
func introspectionAsMap(res authority.VerifyResult) any {
	if !res.Valid {
		return map[string]bool{"active": false}
	}
	out := map[string]any{"active": true, "token_type": "Bearer", "kind": res.Kind, "sub": res.Subject, "jti": res.ID, "iat": res.IssuedAt.Unix()}
	if res.Kind == credential.KindM2MToken {
		out["client_id"] = res.Subject
	}
	if len(res.Scopes) > 0 {
		out["scope"] = strings.Join(res.Scopes, " ")
	}
	if !res.ExpiresAt.IsZero() {
		out["exp"] = res.ExpiresAt.Unix()
	}
	return out
}

func TestIntrospectionBytesAreWhatEncodingJSONWrote(t *testing.T) {
	issued := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for name, res := range map[string]authority.VerifyResult{
		"inactive":         {Reason: authority.ReasonRevoked, Kind: credential.KindM2MToken, ID: "mt_1"},
		"m2m with scopes":  {Valid: true, Kind: credential.KindM2MToken, ID: "mt_1", Subject: "mch_<1>", Scopes: []string{"a", "b"}, IssuedAt: issued, ExpiresAt: issued.Add(time.Hour)},
		"pat, no expiry":   {Valid: true, Kind: credential.KindPAT, ID: "pat_1", Subject: "usr_1", IssuedAt: issued},
		"before the epoch": {Valid: true, Kind: credential.KindOrgToken, ID: "ot_1", IssuedAt: time.Unix(-5, 0)},
	} {
		if got, want := appendIntrospection(nil, res), encoded(t, introspectionAsMap(res)); !bytes.Equal(got, want) {
			t.Errorf("%s: appended %s, encoding/json wrote %s", name, got, want)
		}
	}
}

func FuzzVerifyResponseBytes(f *testing.F) {
	f.Add(true, "valid", "m2m_token", "mt_1", "mch_1", "scope", "ws", `{"a":1}`, 5, 3)
	f.Add(false, "\u2028", "<", "\xff", "\\\"", "", "", `[ 1 ]`, -1, 0)
	f.Fuzz(func(t *testing.T, valid bool, code, kind, id, subject, scope, workspace, claims string, limit, remaining int) {
		out := verifyResponse{Valid: valid, Code: code, Kind: kind, ID: id, Subject: subject, WorkspaceID: workspace,
			Claims: json.RawMessage(claims), ExpiresAt: &subject}
		if scope != "" {
			out.Scopes = []string{scope, code}
			out.Privileges = []credential.Privilege{{Scope: credential.Scope(scope), Role: credential.Role(kind), SiteID: id, Views: []string{code}}}
		}
		if limit > 0 {
			out.RateLimit = &rateLimitJSON{Limit: limit, Remaining: remaining, ResetAt: code}
		}
		var want bytes.Buffer
		encodeErr := json.NewEncoder(&want).Encode(out)
		got, ok := appendVerifyResponse(nil, &out)
		if ok != (encodeErr == nil) || ok && !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("appended %s (ok %v), encoding/json wrote %s (%v)", got, ok, want.Bytes(), encodeErr)
		}
	})
}

package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/credential"
)

func TestCheckJSON(t *testing.T) {
	cases := []struct {
		name string
		body string
		ok   bool
	}{
		{"accepts an object", `{"a":1,"b":{"c":[1,{"d":null}]}}`, true},
		{"accepts the same key in sibling objects", `{"a":{"x":1},"b":{"x":2}}`, true},
		{"accepts an array", `[1,2]`, true},
		{"rejects a duplicate key", `{"a":1,"a":2}`, false},
		{"rejects a nested duplicate key", `{"a":{"x":1,"x":2}}`, false},
		{"rejects trailing data", `{"a":1} {"a":2}`, false},
		{"rejects trailing garbage", `{"a":1}x`, false},
		{"rejects a truncated object", `{"a":1`, false},
		{"rejects invalid UTF-8", "{\"a\":\"\xff\"}", false},
		{"rejects deep nesting", strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1), false},
		{"accepts nesting at the limit", strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckJSON([]byte(tc.body))
			if tc.ok && err != nil {
				t.Fatalf("CheckJSON(%q) = %v", tc.body, err)
			}
			if !tc.ok && credential.CodeOf(err) != credential.CodeMalformed {
				t.Fatalf("CheckJSON(%q) = %v, want CodeMalformed", tc.body, err)
			}
		})
	}
}

func TestFormFields(t *testing.T) {
	f, err := ParseForm([]byte(`{"name":"a","ttl":3600,"float":3600.0,"frac":1.5,"ids":["x"],"nil":null,"num":"7"}`))
	if err != nil {
		t.Fatal(err)
	}
	if s, err := f.String("name"); err != nil || *s != "a" {
		t.Errorf("String(name) = %v, %v", s, err)
	}
	if n, err := f.Int("ttl"); err != nil || *n != 3600 {
		t.Errorf("Int(ttl) = %v, %v", n, err)
	}
	if n, err := f.Int("float"); err != nil || *n != 3600 {
		t.Errorf("Int(float) = %v, %v", n, err)
	}
	if ids, err := f.Strings("ids"); err != nil || len(ids) != 1 {
		t.Errorf("Strings(ids) = %v, %v", ids, err)
	}
	if s, err := f.String("nil"); err != nil || s != nil {
		t.Errorf("null must read as absent: %v, %v", s, err)
	}
	for name, read := range map[string]func() error{
		"frac": func() error { _, err := f.Int("frac"); return err },
		"num":  func() error { _, err := f.Int("num"); return err },
		"ttl":  func() error { _, err := f.String("ttl"); return err },
		"name": func() error { _, err := f.Strings("name"); return err },
	} {
		err := read()
		e := credential.AsError(err)
		if e.Code != credential.CodeWrongType || e.Param != name {
			t.Errorf("%s: error = %v, want wrong_type on %s", name, err, name)
		}
	}
	if err := f.Only("name", "ttl", "float", "frac", "ids", "nil"); credential.AsError(err).Param != "num" {
		t.Errorf("Only did not report the unknown field: %v", err)
	}
}

func TestParseFormRejectsNonObjects(t *testing.T) {
	for _, body := range []string{`[]`, `"x"`, `1`, `{`} {
		if _, err := ParseForm([]byte(body)); credential.CodeOf(err) != credential.CodeMalformed {
			t.Errorf("ParseForm(%q) = %v, want CodeMalformed", body, err)
		}
	}
	for _, body := range []string{``, `null`, ` {} `} {
		if _, err := ParseForm([]byte(body)); err != nil {
			t.Errorf("ParseForm(%q) = %v, want an empty form", body, err)
		}
	}
}

func FuzzCheckJSON(f *testing.F) {
	for _, s := range []string{`{"a":"\u0000"}`, `{"a":1}`, `{"a":1,"a":2}`, `[[[]]]`, `{"a":{"b":[1,2,{"c":"d"}]}}`, `1 2`, "\"\xff\""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		err := CheckJSON(b)
		if code := credential.CodeOf(err); err != nil && code != credential.CodeMalformed && code != credential.CodeInvalid {
			t.Fatalf("CheckJSON: code %s", code)
		}
		if credential.CodeOf(err) == credential.CodeInvalid && !bytes.Contains(b, []byte(`\u0000`)) {
			t.Fatalf("CheckJSON refused %q as holding a NUL", b)
		}
		if err == nil {
			var v any
			if json.Unmarshal(b, &v) == nil && holdsNUL(v) {
				t.Fatalf("CheckJSON accepted a NUL: %q", b)
			}
			if _, perr := ParseForm(b); perr != nil && b[0] == '{' {
				t.Fatalf("CheckJSON accepted what ParseForm rejects: %q: %v", b, perr)
			}
		}
	})
}

// holdsNUL reports whether a decoded JSON value holds a NUL in any string.
func holdsNUL(v any) bool {
	switch v := v.(type) {
	case string:
		return strings.ContainsRune(v, 0)
	case []any:
		for _, x := range v {
			if holdsNUL(x) {
				return true
			}
		}
	case map[string]any:
		for k, x := range v {
			if strings.ContainsRune(k, 0) || holdsNUL(x) {
				return true
			}
		}
	}
	return false
}

// parseFormTwoPass is ParseForm as it was before the one-pass scanner:
// CheckJSON, then json.Unmarshal. The new one must agree with it on every
// body, error message included.
func parseFormTwoPass(body []byte) (map[string]json.RawMessage, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || string(body) == "null" {
		return map[string]json.RawMessage{}, nil
	}
	if err := CheckJSON(body); err != nil {
		return nil, err
	}
	if body[0] != '{' {
		return nil, credential.Errorf(credential.CodeMalformed, "the request body must be a JSON object")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return nil, credential.Wrap(credential.CodeMalformed, err, "the request body is not valid JSON")
	}
	return fields, nil
}

// sameAsTwoPass fails t unless ParseForm and the two-pass parse agree on b.
func sameAsTwoPass(t *testing.T, b []byte) {
	t.Helper()
	want, wantErr := parseFormTwoPass(b)
	got, err := ParseForm(b)
	if (err == nil) != (wantErr == nil) {
		t.Fatalf("ParseForm(%q) error = %v, two-pass error = %v", b, err, wantErr)
	}
	if err != nil {
		if e, w := credential.AsError(err), credential.AsError(wantErr); e.Code != w.Code || e.Message != w.Message || e.Param != w.Param {
			t.Fatalf("ParseForm(%q) = %s %s %q, two-pass = %s %s %q", b, e.Code, e.Param, e.Message, w.Code, w.Param, w.Message)
		}
		return
	}
	if len(got.fields) != len(want) {
		t.Fatalf("ParseForm(%q) fields %q, two-pass %q", b, got.fields, want)
	}
	for k, v := range want {
		if !bytes.Equal(got.fields[k], v) {
			t.Fatalf("ParseForm(%q)[%q] = %q, two-pass %q", b, k, got.fields[k], v)
		}
	}
}

func TestParseFormMatchesTwoPassParse(t *testing.T) {
	for _, body := range []string{
		`{"token":"kw_abc","required_scopes":["a","b"],"n":-1.5e+3,"o":{"x":[true,false,null]}}`,
		`{"a":1,"a":2}`, `{"a":1,"\u0061":2}`, `{"a":{"x":1,"x":2}}`, `{"a":[{"x":1},{"x":1}]}`,
		`{"a":"\ud800"}`, `{"\ud800":1,"\udc00":2}`, "{\"a\":\"\xff\"}", "{\"a\":\"\x01\"}", `{"a":"\x"}`,
		`{"a":01}`, `{"a":1.}`, `{"a":.5}`, `{"a":-}`, `{"a":1e}`, `{"a":tru}`, `{"a":1,}`, `{,}`, `{"a" 1}`,
		`{"a":1} x`, `{"a":1} {}`, `{"a":1} 1`, `{"a":1`, `{"a":[1,2}`, `{"a":"é ☃ 𝄞"}`,
		"{\"a\":1}\n", " \t{\"a\" : [ 1 , 2 ] }\r\n",
		`{"a":` + strings.Repeat("[", MaxDepth-1) + strings.Repeat("]", MaxDepth-1) + `}`,
		`{"a":` + strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth) + `}`,
		`{"a":` + strings.Repeat(`{"b":`, MaxDepth) + `1` + strings.Repeat("}", MaxDepth) + `}`,
		`[]`, `"x"`, `1`, `{`, ``, `null`, `{}`, `{"token":"a\"b"}`,
		// What ends a run of plain ASCII, which str skips without its switch.
		"{\"a\":\"abcdef\x01\"}", "{\"a\":\"abcdef\xff\"}", "{\"a\":\"abcdef\x7f\"}", `{"a":"abcdef\q"}`,
		`{"a":"abcdef\"gh"}`, `{"a":"abcdefé"}`, `{"a":"abcdef`, `{"abcdef`, `{"a":"` + strings.Repeat("x", 600) + `"}`,
		`{"token":"a\u0000b"}`, `{"a\u0000":1}`, `{"o":{"k\u0000":1}}`, `{"o":["x","\u0000"]}`, `{"a":"\u00000"}`, `{"a":"\u0001"}`,
	} {
		sameAsTwoPass(t, []byte(body))
	}
}

func TestStringReadsEscapes(t *testing.T) {
	f, err := ParseForm([]byte(`{"plain":"kw_abc","esc":"a\"b\u00e9\n","bad":"\ud800"}`))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"plain": "kw_abc", "esc": "a\"bé\n", "bad": "\ufffd"} {
		if s, err := f.String(name); err != nil || *s != want {
			t.Errorf("String(%s) = %q, %v; want %q", name, *s, err, want)
		}
	}
}

func FuzzParseForm(f *testing.F) {
	for _, s := range []string{`{"token":"kw_x","client_ip":"::1"}`, `{"a":1,"a":2}`, `{"a":{"b":[1,2,{"c":"d"}]}}`,
		`{"a":"\u0061\ud800"}`, `{"a":"\u0000"}`, `{"a":-0.5E-7}`, "{\"a\":\"\xff\"}", `{"a":1} 2`, `[1]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		sameAsTwoPass(t, b)
		form, err := ParseForm(b)
		if err != nil {
			return
		}
		for name, raw := range form.fields {
			var want string
			wantErr := json.Unmarshal(raw, &want)
			got, err := form.String(name)
			if (err == nil) != (wantErr == nil) || (got != nil && *got != want) {
				t.Fatalf("String(%q) of %q = %v, %v; json.Unmarshal gives %q, %v", name, raw, got, err, want, wantErr)
			}
		}
	})
}

func TestReadStringAndRequireString(t *testing.T) {
	req := func(body string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		if body != "" {
			r.Header.Set("Content-Type", "application/json")
		}
		return r
	}
	cases := []struct {
		name, body       string
		read             string
		readCode         credential.Code
		require          string
		requireCode      credential.Code
		requireNamesName bool
	}{
		{name: "present", body: `{"reason":"leaked"}`, read: "leaked", require: "leaked"},
		{name: "absent parameter", body: `{}`, requireCode: credential.CodeMissing, requireNamesName: true},
		{name: "no body", body: ``, requireCode: credential.CodeMissing, requireNamesName: true},
		{name: "not a string", body: `{"reason":7}`, readCode: credential.CodeWrongType, requireCode: credential.CodeWrongType},
		{name: "another parameter", body: `{"other":"x"}`, readCode: credential.CodeUnknownParam, requireCode: credential.CodeUnknownParam},
	}
	codeOf := func(err error) credential.Code {
		if err == nil {
			return ""
		}
		return credential.CodeOf(err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadString(req(tc.body), "reason")
			if codeOf(err) != tc.readCode || (err == nil && got != tc.read) {
				t.Errorf("ReadString = %q, %v; want %q, code %q", got, err, tc.read, tc.readCode)
			}
			got, err = RequireString(req(tc.body), "reason")
			if codeOf(err) != tc.requireCode || (err == nil && got != tc.require) {
				t.Errorf("RequireString = %q, %v; want %q, code %q", got, err, tc.require, tc.requireCode)
			}
			var ce *credential.Error
			if tc.requireNamesName && (!errors.As(err, &ce) || ce.Param != "reason") {
				t.Errorf("RequireString's error %v does not name the parameter", err)
			}
		})
	}
}

// BenchmarkParseFormJWTVerify parses a verify body holding a JWT: the
// string scan is most of it (the JWT verify row's body is ~700 bytes).
func BenchmarkParseFormJWTVerify(b *testing.B) {
	body := []byte(`{"token":"eyJhbGciOiJSUzI1NiIsImtpZCI6Imluc18yIiwidHlwIjoiSldUIn0.` +
		strings.Repeat("eyJzdWIiOiJtY2hfMnFBYnhaIiwiaWF0IjoxNzY0NzM4MDAwfQ", 8) + `.` +
		strings.Repeat("c2lnbmF0dXJlX2J5dGVz", 17) + `"}`)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseForm(body); err != nil {
			b.Fatal(err)
		}
	}
}

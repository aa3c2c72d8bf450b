package wire

import (
	"bytes"
	"encoding/json"
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

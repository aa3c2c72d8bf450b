package wire

import (
	"bytes"
	"encoding/json"
	"testing"
)

// encoderBytes is what json.Encoder writes for v, without the newline.
func encoderBytes(t *testing.T, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

var awkwardStrings = []string{"", "kw_abc", `a"b\c`, "<script>&</script>", "\x00\x01\b\f\n\r\t\x1f\x7f", "é ☃ 𝄞",
	"\xff", "a\xc3", "\u2028\u2029", "\ufffd", "\xed\xa0\x80", "/"}

func TestAppendStringIsWhatEncodingJSONWrites(t *testing.T) {
	for _, s := range awkwardStrings {
		if got, want := AppendString(nil, s), encoderBytes(t, s); !bytes.Equal(got, want) {
			t.Errorf("AppendString(%q) = %s, encoding/json writes %s", s, got, want)
		}
	}
}

func TestAppendRawIsWhatEncodingJSONWrites(t *testing.T) {
	for _, raw := range []string{`{"a":1}`, `{ "a" : [1, 2] }`, `{"html":"<b>&</b>"}`, "{\"s\":\"\u2028\"}", `"x"`, `{"a":"b c"}`} {
		got, ok := AppendRaw(nil, json.RawMessage(raw))
		if want := encoderBytes(t, json.RawMessage(raw)); !ok || !bytes.Equal(got, want) {
			t.Errorf("AppendRaw(%s) = %s, %v; encoding/json writes %s", raw, got, ok, want)
		}
	}
	if _, ok := AppendRaw(nil, json.RawMessage(`{"a":`)); ok {
		t.Error("AppendRaw accepted invalid JSON")
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range awkwardStrings {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := AppendString(nil, s), encoderBytes(t, s); !bytes.Equal(got, want) {
			t.Fatalf("AppendString(%q) = %s, encoding/json writes %s", s, got, want)
		}
	})
}

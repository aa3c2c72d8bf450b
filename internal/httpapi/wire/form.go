package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/keyward/keyward/internal/credential"
)

// MaxDepth bounds JSON nesting, so a deeply nested body cannot exhaust the
// stack or the CPU.
const MaxDepth = 32

// Form is a decoded JSON object whose fields are read one by one with their
// types checked, so an error names the parameter. A JSON null counts as
// absent.
type Form struct {
	fields map[string]json.RawMessage
}

// ParseForm decodes body as one JSON object. An empty body or "null" is an
// empty object. The body must be valid UTF-8, nest at most MaxDepth deep,
// hold no duplicate keys and nothing after the object; anything else is
// CodeMalformed.
//
// It reads the body once (scanObject); only a body it rejects is walked
// again by CheckJSON, so that the error says exactly what CheckJSON says.
func ParseForm(body []byte) (*Form, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || string(body) == "null" {
		return &Form{fields: map[string]json.RawMessage{}}, nil
	}
	if body[0] == '{' {
		if fields, ok := scanObject(body); ok {
			return &Form{fields: fields}, nil
		}
	}
	if err := CheckJSON(body); err != nil {
		return nil, err
	}
	if body[0] != '{' {
		return nil, credential.Errorf(credential.CodeMalformed, "the request body must be a JSON object")
	}
	// scanObject and CheckJSON disagree; refuse rather than guess.
	return nil, credential.Errorf(credential.CodeMalformed, "the request body is not valid JSON")
}

// ReadString reads a body whose one parameter is the string name (a
// reason, a token): "" when the body or the parameter is absent.
func ReadString(r *http.Request, name string) (string, error) {
	f, err := ReadForm(r, name)
	if err != nil {
		return "", err
	}
	v, err := f.String(name)
	if err != nil || v == nil {
		return "", err
	}
	return *v, nil
}

// RequireString is ReadString for a parameter that must be there: its
// absence is a CodeMissing error naming it.
func RequireString(r *http.Request, name string) (string, error) {
	f, err := ReadForm(r, name)
	if err != nil {
		return "", err
	}
	v, err := f.String(name)
	if err == nil && v == nil {
		err = credential.ParamError(credential.CodeMissing, name, "is missing")
	}
	if err != nil {
		return "", err
	}
	return *v, nil
}

// ReadForm reads the request body as a strict JSON object that may hold
// only the allowed parameters (most vendor schemas forbid others).
func ReadForm(r *http.Request, allowed ...string) (*Form, error) {
	body, err := Body(r)
	if err != nil {
		return nil, err
	}
	f, err := ParseForm(body)
	if err != nil {
		return nil, err
	}
	return f, f.Only(allowed...)
}

// Text returns a string field, "" when absent or null, without String's
// pointer (an allocation on verify's path).
func (f *Form) Text(name string) (string, error) {
	s, _, err := f.text(name)
	return s, err
}

// CheckJSON reports whether b is one well-formed JSON value in valid UTF-8,
// at most MaxDepth deep, without duplicate object keys and without trailing
// data (CodeMalformed otherwise). encoding/json accepts all of those
// silently; a credential service must not (two parsers reading one body two
// ways is how checks get bypassed). No string, key or value, at any depth,
// may hold a NUL, sent as the escape \u0000 (see ValidText): that is
// CodeInvalid naming the top-level key it is under.
func CheckJSON(b []byte) error {
	malformed := func(msg string) error { return credential.Errorf(credential.CodeMalformed, "%s", msg) }
	if !utf8.Valid(b) {
		return malformed("the request body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	type frame struct {
		object bool
		keys   map[string]bool
		key    bool // the next string token in an object is a key
	}
	var stack []frame
	values := 0 // complete top-level values seen
	param := "" // the top-level key being read, for errors
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return malformed("the request body is not valid JSON")
		}
		if len(stack) == 0 {
			if values++; values > 1 {
				return malformed("the request body has data after its JSON value")
			}
		}
		var top *frame
		if len(stack) > 0 {
			top = &stack[len(stack)-1]
		}
		if top != nil && top.object && top.key {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				continue
			}
			k := tok.(string)
			if top.keys[k] {
				return malformed("the request body repeats the key " + quoteKey(k))
			}
			if len(stack) == 1 {
				if strings.IndexByte(k, 0) >= 0 {
					return credential.Errorf(credential.CodeInvalid, "a key of the request body holds a NUL character")
				}
				param = k
			} else if strings.IndexByte(k, 0) >= 0 {
				return nulIn(param)
			}
			top.keys[k] = true
			top.key = false
			continue
		}
		if top != nil && top.object {
			top.key = true // this token is a value; the next is a key
		}
		if str, ok := tok.(string); ok && strings.IndexByte(str, 0) >= 0 {
			return nulIn(param)
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, frame{object: true, keys: map[string]bool{}, key: true})
		case json.Delim('['):
			stack = append(stack, frame{})
		case json.Delim(']'), json.Delim('}'):
			stack = stack[:len(stack)-1]
		}
		if len(stack) > MaxDepth {
			return malformed("the request body nests too deeply")
		}
	}
	if len(stack) != 0 {
		return malformed("the request body is not valid JSON")
	}
	return nil
}

func nulIn(param string) error {
	if param == "" {
		return credential.Errorf(credential.CodeInvalid, "the request body holds a NUL character")
	}
	return credential.ParamError(credential.CodeInvalid, param, "must not hold a NUL character")
}

func quoteKey(k string) string {
	if len(k) > 64 {
		k = k[:64] + "…"
	}
	return `"` + strings.ToValidUTF8(k, "") + `"`
}

// Sent reports whether the field was sent at all, null included: what
// tells "clear it" (null) from "leave it" (absent) in a partial update.
func (f *Form) Sent(name string) bool {
	_, ok := f.fields[name]
	return ok
}

// Has reports whether the field is present and not null.
func (f *Form) Has(name string) bool {
	raw, ok := f.fields[name]
	return ok && string(raw) != "null"
}

// Null reports whether the field is present as an explicit JSON null (for
// the few settings where null means "restore the default").
func (f *Form) Null(name string) bool {
	raw, ok := f.fields[name]
	return ok && string(raw) == "null"
}

// Raw returns a field's JSON as sent, or nil when absent or null.
func (f *Form) Raw(name string) json.RawMessage {
	if !f.Has(name) {
		return nil
	}
	return f.fields[name]
}

// Only reports the first field that is not one of allowed, as
// CodeUnknownParam.
func (f *Form) Only(allowed ...string) error {
	for name := range f.fields {
		known := false
		for _, a := range allowed {
			if name == a {
				known = true
				break
			}
		}
		if !known {
			return credential.ParamError(credential.CodeUnknownParam, name, "is not a valid parameter for this request")
		}
	}
	return nil
}

// String returns a string field, nil when absent or null.
func (f *Form) String(name string) (*string, error) {
	s, ok, err := f.text(name)
	if !ok || err != nil {
		return nil, err
	}
	p := new(string) // not &s, which would allocate even for an absent field
	*p = s
	return p, nil
}

// text is String by value: ok is false when the field is absent or null.
func (f *Form) text(name string) (string, bool, error) {
	if !f.Has(name) {
		return "", false, nil
	}
	raw := f.fields[name]
	// Most strings hold no escape: their bytes are the value (ParseForm
	// has checked the UTF-8 and the control characters).
	if len(raw) >= 2 && raw[0] == '"' && bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1]), true, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false, wrongType(name, "a string")
	}
	return s, true, nil
}

// Int returns an integer field, nil when absent or null. A number with a
// fraction or outside int64 is CodeWrongType.
func (f *Form) Int(name string) (*int64, error) {
	if !f.Has(name) {
		return nil, nil
	}
	raw := f.fields[name]
	if raw[0] == '"' { // json.Number would take a quoted number
		return nil, wrongType(name, "an integer")
	}
	var n json.Number
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&n); err != nil {
		return nil, wrongType(name, "an integer")
	}
	i, err := n.Int64()
	if err != nil {
		if fl, ferr := n.Float64(); ferr == nil && fl == math.Trunc(fl) && math.Abs(fl) < 1<<53 {
			i = int64(fl) // 3600.0 is an integer
		} else {
			return nil, wrongType(name, "an integer")
		}
	}
	return &i, nil
}

// Number returns a numeric field, nil when absent or null.
func (f *Form) Number(name string) (*float64, error) {
	if !f.Has(name) {
		return nil, nil
	}
	var n float64
	if raw := f.fields[name]; raw[0] == '"' || json.Unmarshal(raw, &n) != nil {
		return nil, wrongType(name, "a number")
	}
	return &n, nil
}

// Bool returns a boolean field, nil when absent or null.
func (f *Form) Bool(name string) (*bool, error) {
	if !f.Has(name) {
		return nil, nil
	}
	var b bool
	if err := json.Unmarshal(f.fields[name], &b); err != nil {
		return nil, wrongType(name, "a boolean")
	}
	return &b, nil
}

// Strings returns an array-of-strings field, nil when absent or null.
func (f *Form) Strings(name string) ([]string, error) {
	if !f.Has(name) {
		return nil, nil
	}
	var ss []string
	if err := json.Unmarshal(f.fields[name], &ss); err != nil {
		return nil, wrongType(name, "an array of strings")
	}
	return ss, nil
}

func wrongType(name, want string) error {
	return credential.ParamError(credential.CodeWrongType, name, "must be "+want)
}

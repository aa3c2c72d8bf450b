package wire

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// scanObject is ParseForm's one pass over a body that starts with '{': it
// accepts exactly what CheckJSON followed by json.Unmarshal accept (the
// JSON grammar of RFC 8259 in valid UTF-8, at most MaxDepth deep, no
// duplicate key in any object, no NUL in any string, nothing after the
// object) and returns the
// top-level fields as slices of body, without copying them. ok is false for
// anything else; the caller then asks CheckJSON why.
func scanObject(body []byte) (fields map[string]json.RawMessage, ok bool) {
	s := scanner{b: body}
	fields = make(map[string]json.RawMessage, 4)
	if !s.object(1, fields) {
		return nil, false
	}
	s.space()
	return fields, s.i == len(s.b)
}

type scanner struct {
	b []byte
	i int
}

func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// object reads an object at s.i (which holds '{'), depth deep. With top
// set it records each member's raw value under its decoded key.
func (s *scanner) object(depth int, top map[string]json.RawMessage) bool {
	if depth > MaxDepth {
		return false
	}
	s.i++ // '{'
	s.space()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return true
	}
	var seen map[string]struct{} // nested objects only; top is its own set
	if top == nil {
		seen = make(map[string]struct{}, 4)
	}
	for {
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			return false
		}
		start := s.i
		escaped, ok := s.str()
		if !ok {
			return false
		}
		key, ok := decodeKey(s.b[start:s.i], escaped)
		if !ok {
			return false
		}
		if top != nil {
			if _, dup := top[key]; dup {
				return false
			}
		} else {
			if _, dup := seen[key]; dup {
				return false
			}
			seen[key] = struct{}{}
		}
		s.space()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return false
		}
		s.i++
		s.space()
		from := s.i
		if !s.value(depth) {
			return false
		}
		if top != nil {
			top[key] = s.b[from:s.i:s.i]
		}
		s.space()
		if s.i >= len(s.b) {
			return false
		}
		switch s.b[s.i] {
		case ',':
			s.i++
			s.space()
		case '}':
			s.i++
			return true
		default:
			return false
		}
	}
}

// decodeKey is a key as encoding/json decodes it: the bytes between the
// quotes, or, with escapes, what json.Unmarshal makes of them.
func decodeKey(quoted []byte, escaped bool) (string, bool) {
	if !escaped {
		return string(quoted[1 : len(quoted)-1]), true
	}
	var k string
	if json.Unmarshal(quoted, &k) != nil {
		return "", false
	}
	return k, true
}

// value reads one value at s.i inside a container depth deep.
func (s *scanner) value(depth int) bool {
	if s.i >= len(s.b) {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '{':
		return s.object(depth+1, nil)
	case c == '[':
		return s.array(depth + 1)
	case c == '"':
		_, ok := s.str()
		return ok
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	}
	return false
}

func (s *scanner) array(depth int) bool {
	if depth > MaxDepth {
		return false
	}
	s.i++ // '['
	s.space()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		return true
	}
	for {
		if !s.value(depth) {
			return false
		}
		s.space()
		if s.i >= len(s.b) {
			return false
		}
		switch s.b[s.i] {
		case ',':
			s.i++
			s.space()
		case ']':
			s.i++
			return true
		default:
			return false
		}
	}
}

func (s *scanner) literal(word string) bool {
	if !bytes.HasPrefix(s.b[s.i:], []byte(word)) {
		return false
	}
	s.i += len(word)
	return true
}

// number reads -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() bool {
	if s.b[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(s.b) && s.b[s.i] == '0':
		s.i++
	case s.digits() == 0:
		return false
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if s.digits() == 0 {
			return false
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if s.digits() == 0 {
			return false
		}
	}
	return true
}

func (s *scanner) digits() int {
	from := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i - from
}

// plainStringByte marks the bytes a JSON string holds as they are: ASCII
// other than control characters, '"' and '\\'.
var plainStringByte = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// str reads a string at s.i (which holds '"'): no control characters, only
// JSON's escapes, valid UTF-8. escaped reports whether it held a backslash.
func (s *scanner) str() (escaped, ok bool) {
	s.i++ // '"'
	for s.i < len(s.b) {
		// Runs of plain ASCII (a JWT is nothing else) skip the switch.
		for s.i < len(s.b) && plainStringByte[s.b[s.i]] {
			s.i++
		}
		if s.i == len(s.b) {
			break
		}
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return escaped, true
		case c == '\\':
			escaped = true
			if s.i+1 >= len(s.b) {
				return false, false
			}
			switch s.b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if s.i+6 > len(s.b) {
					return false, false
				}
				hex := s.b[s.i+2 : s.i+6]
				for _, h := range hex {
					if !isHex(h) {
						return false, false
					}
				}
				if string(hex) == "0000" { // a NUL: CheckJSON says which parameter
					return false, false
				}
				s.i += 6
			default:
				return false, false
			}
		case c < 0x20:
			return false, false
		case c < utf8.RuneSelf:
			s.i++
		default:
			r, size := utf8.DecodeRune(s.b[s.i:])
			if r == utf8.RuneError && size == 1 {
				return false, false
			}
			s.i += size
		}
	}
	return false, false
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

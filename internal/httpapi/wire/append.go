package wire

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sync"
	"unicode/utf8"
)

// The hot answers (verify, introspect) are appended by hand instead of
// going through encoding/json's reflection. Their bytes must stay what
// json.Encoder wrote; the tests compare them.

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string exactly as encoding/json writes
// it: <, > and & escaped for HTML, invalid UTF-8 as \ufffd, U+2028 and
// U+2029 escaped.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// AppendRaw appends a json.RawMessage as encoding/json writes one:
// compacted, HTML characters escaped. It reports false for invalid JSON
// (encoding/json would then write nothing at all).
func AppendRaw(dst []byte, raw json.RawMessage) ([]byte, bool) {
	if !bytes.ContainsAny(raw, " \t\r\n<>&\u2028\u2029") && json.Valid(raw) {
		return append(dst, raw...), true // already what Compact would make of it
	}
	var compact bytes.Buffer
	if json.Compact(&compact, raw) != nil {
		return dst, false
	}
	var escaped bytes.Buffer
	json.HTMLEscape(&escaped, compact.Bytes())
	return append(dst, escaped.Bytes()...), true
}

var (
	jsonContentType = []string{"application/json"}
	answerBuffers   = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}
)

// AnswerBuffer returns an empty buffer to append a response into; give it
// back with WriteJSONBytes.
func AnswerBuffer() *[]byte {
	b := answerBuffers.Get().(*[]byte)
	*b = (*b)[:0]
	return b
}

// WriteJSONBytes writes an appended JSON answer (which must end in a
// newline, as json.Encoder's do) with the given status, and recycles buf.
func WriteJSONBytes(w http.ResponseWriter, status int, buf *[]byte) {
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(status)
	_, _ = w.Write(*buf)
	if cap(*buf) <= 64<<10 { // an outsized answer is not kept
		answerBuffers.Put(buf)
	}
}

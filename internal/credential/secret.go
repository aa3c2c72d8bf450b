package credential

import (
	"crypto/rand"
	"encoding/binary"
	"hash/crc32"
	"log/slog"
	"strings"
)

// Kind is the kind of a bearer credential. Every kind has its own secret
// prefix, so a secret routes itself to its verification rules.
type Kind string

const (
	KindAdminKey    Kind = "admin_key"    // an instance's admin secret key
	KindMachineKey  Kind = "machine_key"  // a machine's secret key
	KindM2MToken    Kind = "m2m_token"    // an opaque machine-to-machine token
	KindOrgToken    Kind = "org_token"    // an organization API token
	KindPAT         Kind = "pat"          // a personal access token
	KindActorTicket Kind = "actor_ticket" // a one-time impersonation ticket
)

// Secret layout: <prefix><body><checksum>. The body is 32 random bytes in
// base62 (43 characters, fixed width); the checksum is the CRC32 of
// prefix+body in base62 (6 characters, fixed width). The checksum lets the
// verify path and secret scanners reject typos and garbage without a store
// read; it is not a security property.
const (
	bodyBytes   = 32
	bodyLen     = 43
	checksumLen = 6
)

var prefixes = []struct {
	kind   Kind
	prefix string
}{
	{KindAdminKey, "sk_live_"},
	{KindMachineKey, "ak_"},
	{KindM2MToken, "mt_"},
	{KindOrgToken, "otk_"},
	{KindPAT, "pat_"},
	{KindActorTicket, "tkt_"},
}

// Prefix returns the secret prefix of a kind, or "" for an unknown kind.
func (k Kind) Prefix() string {
	for _, p := range prefixes {
		if p.kind == k {
			return p.prefix
		}
	}
	return ""
}

const base62Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// Secret is a plaintext secret. It prints, formats and logs as a redaction
// marker; only Reveal gives the value, and only the paths a contract allows
// (the create response, Clerk's get-secret-key, the first-start admin key)
// call it.
//
// Secrets cannot be compared with == (the zero-length func array makes the
// type incomparable, so such code does not compile): a secret is only ever
// matched through its HMAC digest and Digest.Equal, in constant time.
type Secret struct {
	value string
	_     [0]func()
}

const redacted = "[REDACTED]"

// Reveal returns the plaintext. Call it only where a contract hands the
// secret out.
func (s Secret) Reveal() string { return s.value }

func (s Secret) String() string               { return redacted }
func (s Secret) GoString() string             { return redacted }
func (s Secret) LogValue() slog.Value         { return slog.StringValue(redacted) }
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// IsZero reports whether s holds no secret.
func (s Secret) IsZero() bool { return s.value == "" }

// DisplayPrefix is the non-secret start of the secret that may be stored and
// shown: the kind prefix and the first four body characters.
func (s Secret) DisplayPrefix() string {
	_, p, ok := splitPrefix(s.value)
	if !ok || len(s.value) < len(p)+4 {
		return ""
	}
	return s.value[:len(p)+4]
}

// Generate returns a new secret of the given kind with a 256-bit body from
// crypto/rand.
func Generate(kind Kind) (Secret, error) {
	prefix := kind.Prefix()
	if prefix == "" {
		return Secret{}, Errorf(CodeInternal, "no secret prefix for kind %q", kind)
	}
	var raw [bodyBytes]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return Secret{}, Wrap(CodeInternal, err, "read random bytes")
	}
	body := encodeBase62(raw[:], bodyLen)
	return Secret{value: prefix + body + checksum(prefix+body)}, nil
}

// MustGenerate is Generate for callers that cannot continue without a secret.
func MustGenerate(kind Kind) Secret {
	s, err := Generate(kind)
	if err != nil {
		panic(err)
	}
	return s
}

// Parse checks that s is a well-formed secret (known prefix, exact length,
// base62 body, matching checksum) and returns it with its kind. It reads no
// store: a malformed secret is rejected here, before any lookup.
func Parse(s string) (Secret, Kind, error) {
	kind, prefix, ok := splitPrefix(s)
	if !ok {
		return Secret{}, "", errMalformedSecret
	}
	rest := s[len(prefix):]
	if len(rest) != bodyLen+checksumLen {
		return Secret{}, "", errMalformedSecret
	}
	for i := 0; i < len(rest); i++ {
		if !isBase62(rest[i]) {
			return Secret{}, "", errMalformedSecret
		}
	}
	body, sum := rest[:bodyLen], rest[bodyLen:]
	var want [checksumLen]byte // on the stack: Parse runs for every presented secret
	appendUint(want[:0], uint64(crc32String(crc32String(0, prefix), body)), checksumLen)
	if string(want[:]) != sum {
		return Secret{}, "", errMalformedSecret
	}
	return Secret{value: s}, kind, nil
}

var errMalformedSecret = Errorf(CodeMalformed, "malformed secret")

func splitPrefix(s string) (Kind, string, bool) {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p.prefix) {
			return p.kind, p.prefix, true
		}
	}
	return "", "", false
}

func checksum(s string) string {
	return string(appendUint(nil, uint64(crc32String(0, s)), checksumLen))
}

// crc32String is crc32.Update(crc, crc32.IEEETable, []byte(s)) without
// converting s, which would allocate (the digest escapes through an
// indirect call).
func crc32String(crc uint32, s string) uint32 {
	crc = ^crc
	for i := 0; i < len(s); i++ {
		crc = crc32.IEEETable[byte(crc)^s[i]] ^ crc>>8
	}
	return ^crc
}

func isBase62(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}

// encodeBase62 encodes b as a big-endian number in exactly width base62
// digits, left-padded with '0'. Fixed width keeps lengths checkable and,
// since the alphabet is in ASCII order, keeps byte order and string order
// the same.
func encodeBase62(b []byte, width int) string {
	return string(appendBase62(make([]byte, 0, width), b, width))
}

// appendBase62 is encodeBase62 appending to dst, by schoolbook division of
// 32-bit limbs (no big.Int: it runs for every request id). A 32-byte number
// at most; wider ones keep their low 32 bytes.
func appendBase62(dst, b []byte, width int) []byte {
	var limbs [8]uint32 // big-endian
	if len(b) > 4*len(limbs) {
		b = b[len(b)-4*len(limbs):]
	}
	var padded [32]byte
	copy(padded[len(padded)-len(b):], b)
	for i := range limbs {
		limbs[i] = binary.BigEndian.Uint32(padded[4*i:])
	}
	// Divide by 62⁵ (< 2³²) per pass: five digits from each remainder.
	const chunk = 62 * 62 * 62 * 62 * 62
	start := len(dst)
	dst = append(dst, make([]byte, width)...)
	for i := width - 1; i >= 0; {
		var rem uint64
		for j := range limbs {
			cur := rem<<32 | uint64(limbs[j])
			limbs[j] = uint32(cur / chunk)
			rem = cur % chunk
		}
		for k := 0; k < 5 && i >= 0; k++ {
			dst[start+i] = base62Alphabet[rem%62]
			rem /= 62
			i--
		}
	}
	return dst
}

func appendUint(dst []byte, v uint64, width int) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, width)...)
	for i := width - 1; i >= 0; i-- {
		dst[start+i] = base62Alphabet[v%62]
		v /= 62
	}
	return dst
}

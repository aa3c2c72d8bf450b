package credential

import (
	"crypto/rand"
	"hash/crc32"
	"log/slog"
	"math/big"
	"strings"
	"unsafe"
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
	KindAPIKey      Kind = "api_key"      // a Clerk API key, owned by a user or an organization
)

// Secret layout: <prefix><body><checksum>. The body is 32 random bytes in
// base62 (43 characters, fixed width); the checksum is the CRC32 of
// domain+prefix+body in base62 (6 characters, fixed width). The checksum
// lets the verify path and secret scanners reject typos and garbage
// without a store read; it is not a security property.
//
// Two kinds may share a prefix when the vendor's SDKs route on it (Clerk
// sends machine secret keys and API keys both as ak_…): they then differ in
// their checksum domain, so Parse still checks every secret offline and
// tells the kinds apart. The first kind of a prefix has the empty domain,
// which keeps secrets issued before a second kind was added parsing as they
// did.
const (
	bodyBytes   = 32
	bodyLen     = 43
	checksumLen = 6
)

var prefixes = []struct {
	kind   Kind
	prefix string
	domain string // mixed into the checksum; "" for the first kind of a prefix
}{
	{KindAdminKey, "sk_live_", ""},
	{KindMachineKey, "ak_", ""},
	{KindAPIKey, "ak_", "api_key:"},
	{KindM2MToken, "mt_", ""},
	{KindOrgToken, "otk_", ""},
	{KindPAT, "pat_", ""},
	{KindActorTicket, "tkt_", ""},
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
	prefix, domain := kind.Prefix(), kind.domain()
	if prefix == "" {
		return Secret{}, Errorf(CodeInternal, "no secret prefix for kind %q", kind)
	}
	for {
		var raw [bodyBytes]byte
		if _, err := rand.Read(raw[:]); err != nil {
			return Secret{}, Wrap(CodeInternal, err, "read random bytes")
		}
		body := encodeBase62(raw[:], bodyLen)
		sum := checksumOf(domain, prefix, body)
		// A body whose checksum is also right for another kind of the same
		// prefix would be ambiguous; such bodies (one in 2^32) are skipped.
		if _, n := kindOf(prefix + body + sum); n == 1 {
			return Secret{value: prefix + body + sum}, nil
		}
	}
}

func (k Kind) domain() string {
	for _, p := range prefixes {
		if p.kind == k {
			return p.domain
		}
	}
	return ""
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
	kind, n := kindOf(s)
	if n != 1 {
		return Secret{}, "", errMalformedSecret
	}
	return Secret{value: s}, kind, nil
}

var errMalformedSecret = Errorf(CodeMalformed, "malformed secret")

// kindOf returns the kind whose prefix, length, alphabet and checksum s
// satisfies, and how many kinds do: one for a well-formed secret, none for
// garbage. It allocates nothing (it runs on every verification).
func kindOf(s string) (Kind, int) {
	var (
		kind Kind
		n    int
	)
	for _, p := range prefixes {
		if !strings.HasPrefix(s, p.prefix) {
			continue
		}
		rest := s[len(p.prefix):]
		if len(rest) != bodyLen+checksumLen || !allBase62(rest) {
			return "", 0
		}
		if sumOf(p.domain, p.prefix, rest[:bodyLen]) == decodeUint(rest[bodyLen:]) {
			kind, n = p.kind, n+1
		}
	}
	return kind, n
}

func allBase62(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isBase62(s[i]) {
			return false
		}
	}
	return true
}

func splitPrefix(s string) (Kind, string, bool) {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p.prefix) {
			return p.kind, p.prefix, true
		}
	}
	return "", "", false
}

func checksum(s string) string {
	return encodeUint(uint64(crc32.ChecksumIEEE([]byte(s))), checksumLen)
}

// checksumOf is the checksum of domain+prefix+body, in base62.
func checksumOf(domain, prefix, body string) string {
	return encodeUint(sumOf(domain, prefix, body), checksumLen)
}

// sumOf is the CRC32 (IEEE) of domain+prefix+body. It reads the strings
// in place (crc32.ChecksumIEEE takes a []byte, and converting would
// allocate on the verify path): hash/crc32 only reads what it is given,
// and its slicing-by-8 loop is about twice as fast as a byte at a time.
func sumOf(domain, prefix, body string) uint64 {
	crc := crc32.Update(0, crc32.IEEETable, bytesOf(domain))
	crc = crc32.Update(crc, crc32.IEEETable, bytesOf(prefix))
	return uint64(crc32.Update(crc, crc32.IEEETable, bytesOf(body)))
}

// bytesOf views s as bytes without copying; the bytes must not be
// written.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// decodeUint reads fixed-width base62 digits (all already checked to be
// base62) as encodeUint wrote them.
func decodeUint(s string) uint64 {
	var v uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		var d byte
		switch {
		case c <= '9':
			d = c - '0'
		case c <= 'Z':
			d = c - 'A' + 10
		default:
			d = c - 'a' + 36
		}
		v = v*62 + uint64(d)
	}
	return v
}

func isBase62(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}

// encodeBase62 encodes b as a big-endian number in exactly width base62
// digits, left-padded with '0'. Fixed width keeps lengths checkable and,
// since the alphabet is in ASCII order, keeps byte order and string order
// the same.
func encodeBase62(b []byte, width int) string {
	n := new(big.Int).SetBytes(b)
	out := make([]byte, width)
	base := big.NewInt(62)
	mod := new(big.Int)
	for i := width - 1; i >= 0; i-- {
		n.DivMod(n, base, mod)
		out[i] = base62Alphabet[mod.Int64()]
	}
	return string(out)
}

func encodeUint(v uint64, width int) string {
	out := make([]byte, width)
	for i := width - 1; i >= 0; i-- {
		out[i] = base62Alphabet[v%62]
		v /= 62
	}
	return string(out)
}

// ForeignSecret wraps a key another system issued (it has none of
// keyward's prefixes or checksums), so an imported key that is presented
// can be digested and re-keyed like a native one. It is never generated,
// and never parsed to a kind.
func ForeignSecret(s string) Secret { return Secret{value: s} }

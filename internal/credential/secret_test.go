package credential

import (
	"bytes"
	"fmt"
	"hash/crc32"
	"log/slog"
	"math/big"
	"strings"
	"testing"
	"time"
)

var allKinds = []Kind{KindAdminKey, KindMachineKey, KindM2MToken, KindOrgToken, KindPAT, KindActorTicket}

func TestGenerateParsesBackToItsKind(t *testing.T) {
	for _, kind := range allKinds {
		s, err := Generate(kind)
		if err != nil {
			t.Fatal(err)
		}
		got, gotKind, err := Parse(s.Reveal())
		if err != nil {
			t.Fatalf("%s: Parse(Generate()) = %v", kind, err)
		}
		if gotKind != kind || got.Reveal() != s.Reveal() {
			t.Fatalf("%s: Parse gave kind %s", kind, gotKind)
		}
		if want := len(kind.Prefix()) + bodyLen + checksumLen; len(s.Reveal()) != want {
			t.Fatalf("%s: length %d, want %d", kind, len(s.Reveal()), want)
		}
		if !strings.HasPrefix(s.DisplayPrefix(), kind.Prefix()) || len(s.DisplayPrefix()) != len(kind.Prefix())+4 {
			t.Fatalf("%s: display prefix %q", kind, s.DisplayPrefix())
		}
	}
}

func TestParseRejectsMalformedSecrets(t *testing.T) {
	good := MustGenerate(KindMachineKey).Reveal()
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		return string(b)
	}
	cases := map[string]string{
		"empty":                 "",
		"unknown prefix":        "zz_" + good[3:],
		"prefix only":           "ak_",
		"one character short":   good[:len(good)-1],
		"one character long":    good + "0",
		"typo in the body":      flip(good, 10),
		"typo in the checksum":  flip(good, len(good)-1),
		"non-base62 character":  good[:10] + "-" + good[11:],
		"another kind's prefix": "mt_" + good[3:],
		"whitespace around it":  " " + good,
		"jwt shaped":            "eyJhbGciOiJIUzI1NiJ9.e30.x",
	}
	for name, s := range cases {
		t.Run(name, func(t *testing.T) {
			if _, _, err := Parse(s); CodeOf(err) != CodeMalformed {
				t.Fatalf("Parse(%q) error = %v, want CodeMalformed", s, err)
			}
		})
	}
}

func TestSecretNeverFormatsItsValue(t *testing.T) {
	s := MustGenerate(KindPAT)
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "s", s)
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s", s, s, s, s), logs.String()} {
		if strings.Contains(out, s.Reveal()[4:]) {
			t.Fatalf("secret leaked through formatting: %s", out)
		}
	}
}

func TestGeneratedSecretsAreUnique(t *testing.T) {
	seen := map[string]bool{}
	for range 10000 {
		s := MustGenerate(KindM2MToken).Reveal()
		if seen[s] {
			t.Fatalf("duplicate secret after %d", len(seen))
		}
		seen[s] = true
	}
}

func TestNewIDSortsByTimeAndHasItsShape(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a, b := NewID(PrefixMachine, t0), NewID(PrefixMachine, t0.Add(time.Millisecond))
	if !(a < b) {
		t.Fatalf("ids out of order: %s >= %s", a, b)
	}
	prev := b
	for range 1000 { // same millisecond, and a clock that went back
		for _, at := range []time.Time{t0.Add(time.Millisecond), t0} {
			next := NewID(PrefixMachine, at)
			if !(prev < next) {
				t.Fatalf("ids made in one millisecond are not increasing: %s >= %s", prev, next)
			}
			prev = next
		}
	}
	if !ValidID(PrefixMachine, a) || ValidID(PrefixMachine, a[:len(a)-1]) || ValidID(PrefixInstance, a) {
		t.Fatalf("ValidID disagrees with NewID for %s", a)
	}
	if _, _, err := Parse(a); err == nil {
		t.Fatalf("an id parsed as a secret: %s", a)
	}
}

func FuzzParse(f *testing.F) {
	for _, kind := range allKinds {
		f.Add(MustGenerate(kind).Reveal())
	}
	f.Add("")
	f.Add("sk_live_")
	f.Add("ak_0000000000000000000000000000000000000000000000000")
	f.Add("mt_\x00\xff")
	f.Fuzz(func(t *testing.T, s string) {
		secret, kind, err := Parse(s)
		if err != nil {
			if CodeOf(err) != CodeMalformed {
				t.Fatalf("Parse(%q): error code %s, want malformed", s, CodeOf(err))
			}
			return
		}
		// Whatever parses must be exactly what Generate could have made.
		if secret.Reveal() != s || !strings.HasPrefix(s, kind.Prefix()) {
			t.Fatalf("Parse(%q) = %q, %s", s, secret.Reveal(), kind)
		}
		body := s[len(kind.Prefix()) : len(s)-checksumLen]
		if checksum(kind.Prefix()+body) != s[len(s)-checksumLen:] {
			t.Fatalf("Parse accepted a bad checksum: %q", s)
		}
	})
}

// base62BigInt is encodeBase62 as it was written with math/big; the limb
// division must give the same digits.
func base62BigInt(b []byte, width int) string {
	n := new(big.Int).SetBytes(b)
	out := make([]byte, width)
	base, mod := big.NewInt(62), new(big.Int)
	for i := width - 1; i >= 0; i-- {
		n.DivMod(n, base, mod)
		out[i] = base62Alphabet[mod.Int64()]
	}
	return string(out)
}

func FuzzEncodeBase62MatchesBigInt(f *testing.F) {
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 27)
	f.Add([]byte{}, 5)
	f.Add([]byte{1, 2, 3}, 2) // wider than width: the low digits
	f.Fuzz(func(t *testing.T, b []byte, width int) {
		if len(b) > 32 || width < 0 || width > 64 {
			return
		}
		if got, want := encodeBase62(b, width), base62BigInt(b, width); got != want {
			t.Fatalf("encodeBase62(%x, %d) = %s, math/big gives %s", b, width, got, want)
		}
	})
}

func FuzzCRC32StringMatchesHashCRC32(f *testing.F) {
	f.Add("kw_m2m_", "abc")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, a, b string) {
		if got, want := crc32String(crc32String(0, a), b), crc32.ChecksumIEEE([]byte(a+b)); got != want {
			t.Fatalf("crc32String(%q then %q) = %x, hash/crc32 gives %x", a, b, got, want)
		}
	})
}

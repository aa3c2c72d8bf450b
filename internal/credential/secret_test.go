package credential

import (
	"bytes"
	"fmt"
	"hash/crc32"
	"log/slog"
	"strings"
	"testing"
	"time"
)

var allKinds = []Kind{KindAdminKey, KindMachineKey, KindAPIKey, KindM2MToken, KindOrgToken, KindPAT, KindActorTicket}

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

// legacyMachineKey was made by the layout before API keys existed (CRC32
// of prefix+body): machine keys already handed out must keep parsing as
// machine keys.
const legacyMachineKey = "ak_7kQ2mZp9XvB4nR8sT1wY6cF3hJ5dL0gA2eK9uN4xM7q3ZDLDZ"

func TestMachineKeysAndAPIKeysShareAkButParseApart(t *testing.T) {
	if _, kind, err := Parse(legacyMachineKey); err != nil || kind != KindMachineKey {
		t.Fatalf("a machine key issued before API keys: kind %q, err %v; want machine_key", kind, err)
	}
	for range 1000 {
		m, a := MustGenerate(KindMachineKey).Reveal(), MustGenerate(KindAPIKey).Reveal()
		if m[:3] != "ak_" || a[:3] != "ak_" {
			t.Fatalf("both kinds must start ak_ as Clerk's do: %q %q", m[:3], a[:3])
		}
		if _, kind, _ := Parse(m); kind != KindMachineKey {
			t.Fatalf("machine key parsed as %q", kind)
		}
		if _, kind, _ := Parse(a); kind != KindAPIKey {
			t.Fatalf("API key parsed as %q", kind)
		}
	}
	// The body of one kind under the other's checksum is garbage to both
	// readings but its own: swapping checksums never yields the other kind.
	a := MustGenerate(KindAPIKey).Reveal()
	body := a[3 : 3+bodyLen]
	asMachine := "ak_" + body + checksum("ak_"+body)
	if _, kind, err := Parse(asMachine); err != nil || kind != KindMachineKey {
		t.Fatalf("the same body with the machine checksum: %q %v", kind, err)
	}
	if _, _, err := Parse("ak_" + body + "000000"); CodeOf(err) != CodeMalformed {
		t.Fatalf("an ak_ secret with neither checksum parsed: %v", err)
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
		if checksum(kind.domain()+kind.Prefix()+body) != s[len(s)-checksumLen:] {
			t.Fatalf("Parse accepted a bad checksum: %q", s)
		}
	})
}

// TestParseDoesNotAllocate: Parse runs on every verification, and an ak_
// secret is checked under two checksum domains.
func TestParseDoesNotAllocate(t *testing.T) {
	for _, kind := range allKinds {
		good := MustGenerate(kind).Reveal()
		if n := testing.AllocsPerRun(100, func() { _, _, _ = Parse(good) }); n != 0 {
			t.Errorf("%s: Parse allocates %v times per call, want 0", kind, n)
		}
	}
}

// TestChecksumIsCRC32IEEE pins the checksum every issued secret carries
// to CRC-32/IEEE's published check value: a change of algorithm, which
// would stop every secret already issued from parsing, fails here.
func TestChecksumIsCRC32IEEE(t *testing.T) {
	if got := sumOf("", "", "123456789"); got != 0xCBF43926 {
		t.Fatalf("CRC32 of \"123456789\" = %#x, want 0xcbf43926", got)
	}
	if got := sumOf("123", "45", "6789"); got != 0xCBF43926 {
		t.Fatalf("split three ways: %#x, want 0xcbf43926", got)
	}
}

// FuzzChecksumIsCRC32OfTheWholeToken checks the checksum against the
// standard library's CRC32 (IEEE) of domain, prefix and body together,
// however the three are split.
func FuzzChecksumIsCRC32OfTheWholeToken(f *testing.F) {
	f.Add("keyward", "mt_", "01a2534fb87a435101c97c64623f3a6a")
	f.Add("", "", "")
	f.Add("a", "", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789")
	f.Fuzz(func(t *testing.T, domain, prefix, body string) {
		want := uint64(crc32.ChecksumIEEE([]byte(domain + prefix + body)))
		if got := sumOf(domain, prefix, body); got != want {
			t.Fatalf("sumOf(%q, %q, %q) = %d, want %d", domain, prefix, body, got, want)
		}
	})
}

package signing

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var algs = []string{RS256, EdDSA}

// keypair is one generated key with everything the tests need around it.
type keypair struct {
	alg, kid  string
	pub, priv []byte
	key       crypto.Signer // the parsed private key, for crafting tokens with golang-jwt
	signer    *Signer
	verifier  *Verifier
}

var (
	keysOnce sync.Once
	keysErr  error
	keySet   map[string][2]*keypair // alg → {real key, attacker key}
)

// keys returns, per algorithm, the real key (kid "kid-<alg>") and an
// attacker's key of the same algorithm. RSA generation is slow, so they are
// made once per process.
func keys(tb testing.TB) map[string][2]*keypair {
	tb.Helper()
	keysOnce.Do(func() {
		keySet = map[string][2]*keypair{}
		for _, alg := range algs {
			var pair [2]*keypair
			for i := range pair {
				if pair[i], keysErr = newKeypair(alg, "kid-"+alg); keysErr != nil {
					return
				}
			}
			keySet[alg] = pair
		}
	})
	if keysErr != nil {
		tb.Fatal(keysErr)
	}
	return keySet
}

func newKeypair(alg, kid string) (*keypair, error) {
	pub, priv, err := GenerateKey(alg)
	if err != nil {
		return nil, err
	}
	key, err := x509.ParsePKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	s, err := NewSigner(alg, kid, priv)
	if err != nil {
		return nil, err
	}
	v, err := NewVerifier(alg, pub)
	if err != nil {
		return nil, err
	}
	return &keypair{alg: alg, kid: kid, pub: pub, priv: priv, key: key.(crypto.Signer), signer: s, verifier: v}, nil
}

var testClaims = map[string]any{"sub": "user_1", "iss": "https://keyward.test", "exp": 4102444800}

func sign(tb testing.TB, k *keypair, h Header, claims any) string {
	tb.Helper()
	tok, err := k.signer.Sign(h, claims)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// craft signs claims with golang-jwt, so header and algorithm are whatever
// the caller says; a nil header value deletes that member.
func craft(tb testing.TB, m jwt.SigningMethod, key any, header map[string]any) string {
	tb.Helper()
	tok := jwt.NewWithClaims(m, jwt.MapClaims(testClaims))
	for k, v := range header {
		if v == nil {
			delete(tok.Header, k)
		} else {
			tok.Header[k] = v
		}
	}
	s, err := tok.SignedString(key)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func method(alg string) jwt.SigningMethod {
	if alg == RS256 {
		return jwt.SigningMethodRS256
	}
	return jwt.SigningMethodEdDSA
}

func b64(tb testing.TB, v any) string {
	tb.Helper()
	b, ok := v.([]byte)
	if !ok {
		var err error
		if b, err = json.Marshal(v); err != nil {
			tb.Fatal(err)
		}
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// rewrite decodes segment i of a compact token, applies f and re-encodes it,
// keeping the other segments (and so the original signature).
func rewrite(tb testing.TB, token string, i int, f func([]byte) []byte) string {
	tb.Helper()
	parts := strings.Split(token, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		tb.Fatal(err)
	}
	parts[i] = b64(tb, f(b))
	return strings.Join(parts, ".")
}

func TestSignParseVerifyRoundTripReturnsExactPayload(t *testing.T) {
	for _, alg := range algs {
		t.Run(alg, func(t *testing.T) {
			k := keys(t)[alg][0]
			want, _ := json.Marshal(testClaims)
			for _, h := range []Header{ // the second and third calls exercise the per-Header signer cache
				{Type: "JWT", Category: "cat1"},
				{Type: "at+jwt"},
				{Type: "JWT", Category: "cat1"},
				{Type: "JWT", Category: "cat2"},
			} {
				tok := sign(t, k, h, testClaims)
				p, err := Parse(tok)
				if err != nil {
					t.Fatalf("Parse(%+v): %v", h, err)
				}
				if p.KeyID != k.kid || p.Header != h {
					t.Errorf("Parse: kid %q header %+v, want %q %+v", p.KeyID, p.Header, k.kid, h)
				}
				if h.Category == "" && strings.Contains(decodeSegment(t, tok, 0), `"cat"`) {
					t.Errorf("empty category still written: %s", decodeSegment(t, tok, 0))
				}
				v, err := NewVerifier(alg, k.pub)
				if err != nil {
					t.Fatal(err)
				}
				if got, err := v.Verify(p); err != nil || !bytes.Equal(got, want) {
					t.Errorf("Verify = %s, %v; want %s", got, err, want)
				}
			}
		})
	}
}

func decodeSegment(tb testing.TB, token string, i int) string {
	tb.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[i])
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

func TestSignerIsSafeForConcurrentUse(t *testing.T) {
	k := keys(t)[EdDSA][0]
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			h := Header{Type: "JWT", Category: []string{"a", "b"}[i%2]}
			p, err := Parse(sign(t, k, h, testClaims))
			if err != nil || p.Header != h {
				t.Errorf("concurrent sign %+v: %+v, %v", h, p, err)
			}
		})
	}
	wg.Wait()
}

func TestParseAcceptsTokenAtMaxLength(t *testing.T) {
	k := keys(t)[EdDSA][0]
	h := Header{Type: "JWT"}
	pad := 0
	for range 64 { // token length grows by about 4/3 per padding byte
		tok := sign(t, k, h, map[string]string{"pad": strings.Repeat("x", pad)})
		switch d := MaxTokenLength - len(tok); {
		case d == 0:
			if _, err := Parse(tok); err != nil {
				t.Fatalf("Parse of a %d-byte token: %v", len(tok), err)
			}
			if _, err := Parse(sign(t, k, h, map[string]string{"pad": strings.Repeat("x", pad+1)})); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse of a token one byte over the limit: %v, want ErrInvalid", err)
			}
			return
		case d > 4:
			pad += d * 3 / 4
		default:
			pad++
		}
	}
	t.Skip("no padding gives a token of exactly MaxTokenLength")
}

func TestRejectedTokens(t *testing.T) {
	ks := keys(t)
	rk, ek := ks[RS256][0], ks[EdDSA][0]
	valid := map[string]string{}
	for _, alg := range algs {
		valid[alg] = sign(t, ks[alg][0], Header{Type: "JWT", Category: "cat1"}, testClaims)
	}
	payload := b64(t, testClaims)
	pemPub := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: rk.pub})
	attackerJWK, _ := json.Marshal(mustJWK(t, rk.kid, RS256, ks[RS256][1].pub))
	var jwkHeader map[string]any
	if err := json.Unmarshal(attackerJWK, &jwkHeader); err != nil {
		t.Fatal(err)
	}

	type tc struct {
		name, token string
		verifier    *Verifier // nil: every real verifier must refuse it
	}
	cases := []tc{
		{name: "alg none, empty signature", token: b64(t, map[string]string{"alg": "none", "typ": "JWT", "kid": rk.kid}) + "." + payload + "."},
		{name: "alg NONE, empty signature", token: b64(t, map[string]string{"alg": "NONE", "kid": rk.kid}) + "." + payload + "."},
		{name: "HS256 keyed with the RSA public key DER", token: craft(t, jwt.SigningMethodHS256, rk.pub, map[string]any{"kid": rk.kid})},
		{name: "HS256 keyed with the RSA public key PEM", token: craft(t, jwt.SigningMethodHS256, pemPub, map[string]any{"kid": rk.kid})},
		{name: "embedded jwk of the attacker's key with the real kid", token: craft(t, jwt.SigningMethodRS256, ks[RS256][1].key, map[string]any{"kid": rk.kid, "jwk": jwkHeader})},
		{name: "EdDSA token to RS256 verifier", token: valid[EdDSA], verifier: rk.verifier},
		{name: "RS256 token to EdDSA verifier", token: valid[RS256], verifier: ek.verifier},
		{name: "EdDSA signature under an RS256 alg header", token: rewrite(t, valid[EdDSA], 0, func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"EdDSA"`), []byte(`"RS256"`), 1)
		}), verifier: rk.verifier},
		{name: "over MaxTokenLength", token: sign(t, ek, Header{Type: "JWT"}, map[string]string{"pad": strings.Repeat("x", MaxTokenLength)})},
		{name: "1 MiB of dots", token: strings.Repeat(".", 1<<20)},
		{name: "empty", token: ""},
		{name: "two segments", token: valid[RS256][:strings.LastIndexByte(valid[RS256], '.')]},
		{name: "four segments", token: valid[RS256] + "." + payload},
		{name: "JWE, five segments", token: b64(t, map[string]string{"alg": "RSA-OAEP", "enc": "A256GCM", "kid": rk.kid}) + ".AAAA.AAAA.AAAA.AAAA"},
	}
	for _, alg := range algs {
		k, other := ks[alg][0], ks[alg][1]
		cases = append(cases,
			tc{name: alg + " signed by another key with the real kid", token: sign(t, other, Header{Type: "JWT", Category: "cat1"}, testClaims)},
			tc{name: alg + " tampered payload", token: rewrite(t, valid[alg], 1, func(b []byte) []byte {
				return bytes.Replace(b, []byte("user_1"), []byte("user_2"), 1)
			})},
			tc{name: alg + " tampered header", token: rewrite(t, valid[alg], 0, func(b []byte) []byte {
				return bytes.Replace(b, []byte("cat1"), []byte("cat2"), 1)
			})},
			tc{name: alg + " tampered signature", token: rewrite(t, valid[alg], 2, func(b []byte) []byte {
				b[len(b)/2] ^= 1
				return b
			})},
			tc{name: alg + " null signature", token: b64(t, map[string]string{"alg": alg, "typ": "JWT", "kid": k.kid}) + "." + payload + "."},
			tc{name: alg + " missing kid", token: craft(t, method(alg), k.key, nil)},
			tc{name: alg + " empty kid", token: craft(t, method(alg), k.key, map[string]any{"kid": ""})},
			tc{name: alg + " unknown crit", token: craft(t, method(alg), k.key, map[string]any{"kid": k.kid, "crit": []string{"exp2"}, "exp2": 1})},
		)
	}

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := Parse(c.token)
			if err != nil {
				if !errors.Is(err, ErrInvalid) || p != nil {
					t.Fatalf("Parse = %v, %v; want nil, ErrInvalid", p, err)
				}
				return
			}
			verifiers := []*Verifier{c.verifier}
			if c.verifier == nil {
				verifiers = []*Verifier{rk.verifier, ek.verifier}
			}
			for _, v := range verifiers {
				if got, err := v.Verify(p); !errors.Is(err, ErrInvalid) || got != nil {
					t.Errorf("Verify(%s verifier) = %q, %v; want nil, ErrInvalid", v.alg, got, err)
				}
			}
		})
	}
}

func TestParseOfMiBOfDotsAllocatesLittle(t *testing.T) {
	dots := strings.Repeat(".", 1<<20)
	if n := testing.AllocsPerRun(20, func() { _, _ = Parse(dots) }); n > 5 {
		t.Errorf("Parse of 1 MiB of dots: %v allocations per run, want ≤ 5", n)
	}
}

func mustJWK(tb testing.TB, kid, alg string, pub []byte) any {
	tb.Helper()
	k, err := JWK(kid, alg, pub)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func TestJWKHasPublicMembersOnlyAndVerifiesWithGolangJWT(t *testing.T) {
	for _, alg := range algs {
		t.Run(alg, func(t *testing.T) {
			k := keys(t)[alg][0]
			raw, err := json.Marshal(mustJWK(t, k.kid, alg, k.pub))
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]string
			if err := json.Unmarshal(raw, &m); err != nil {
				t.Fatal(err)
			}
			if m["kid"] != k.kid || m["alg"] != alg || m["use"] != "sig" {
				t.Errorf("JWK %s: want kid %q, alg %q, use sig", raw, k.kid, alg)
			}
			for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
				if _, ok := m[private]; ok {
					t.Errorf("JWK %s has private member %q", raw, private)
				}
			}

			var key any
			switch alg {
			case RS256:
				n, e := decodeBig(t, m["n"]), decodeBig(t, m["e"])
				key = &rsa.PublicKey{N: n, E: int(e.Int64())}
			case EdDSA:
				if m["kty"] != "OKP" || m["crv"] != "Ed25519" {
					t.Fatalf("JWK %s: want kty OKP, crv Ed25519", raw)
				}
				x, err := base64.RawURLEncoding.DecodeString(m["x"])
				if err != nil || len(x) != ed25519.PublicKeySize {
					t.Fatalf("JWK x %q: %v", m["x"], err)
				}
				key = ed25519.PublicKey(x)
			}
			claims := map[string]any{"sub": "user_1", "exp": time.Now().Add(time.Hour).Unix()}
			tok := sign(t, k, Header{Type: "JWT", Category: "cat1"}, claims)
			parsed, err := jwt.Parse(tok, func(tok *jwt.Token) (any, error) {
				if tok.Header["kid"] != m["kid"] {
					return nil, errors.New("unknown kid")
				}
				return key, nil
			}, jwt.WithValidMethods([]string{alg}))
			if err != nil || !parsed.Valid {
				t.Fatalf("golang-jwt with the JWK's key: %v", err)
			}
		})
	}
}

func decodeBig(tb testing.TB, s string) *big.Int {
	tb.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) == 0 {
		tb.Fatalf("JWK integer %q: %v", s, err)
	}
	return new(big.Int).SetBytes(b)
}

func TestUnsupportedAlgorithmsAreRefused(t *testing.T) {
	k := keys(t)[RS256][0]
	for _, alg := range algs {
		if !ValidAlgorithm(alg) {
			t.Errorf("ValidAlgorithm(%q) = false", alg)
		}
	}
	for _, alg := range []string{"HS256", "none", "", "ES256", "rs256", "EDDSA"} {
		t.Run(alg, func(t *testing.T) {
			if ValidAlgorithm(alg) {
				t.Error("ValidAlgorithm = true")
			}
			if pub, priv, err := GenerateKey(alg); err == nil || pub != nil || priv != nil {
				t.Errorf("GenerateKey = %d, %d bytes, %v; want an error", len(pub), len(priv), err)
			}
			if s, err := NewSigner(alg, k.kid, k.priv); err == nil || s != nil {
				t.Errorf("NewSigner = %v, %v; want an error", s, err)
			}
			if v, err := NewVerifier(alg, k.pub); err == nil || v != nil {
				t.Errorf("NewVerifier = %v, %v; want an error", v, err)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	ks := keys(f)
	for _, alg := range algs {
		f.Add(sign(f, ks[alg][0], Header{Type: "JWT", Category: "cat1"}, testClaims))
	}
	f.Add(b64(f, map[string]string{"alg": "none", "kid": "k"}) + "." + b64(f, testClaims) + ".")
	for _, s := range []string{"", ".", "..", "...", "a.b.c", "eyJhbGciOiJSUzI1NiJ9..", "eyJ9.e30.", "\x00.\xff.\n"} {
		f.Add(s)
	}
	verifiers := []*Verifier{ks[RS256][0].verifier, ks[EdDSA][0].verifier}
	f.Fuzz(func(t *testing.T, token string) {
		p, err := Parse(token)
		if err != nil {
			if !errors.Is(err, ErrInvalid) || p != nil {
				t.Fatalf("Parse = %v, %v; want nil, ErrInvalid", p, err)
			}
			return
		}
		if strings.Count(token, ".") != 2 || len(token) > MaxTokenLength || p.KeyID == "" {
			t.Fatalf("Parse accepted %q (kid %q)", token, p.KeyID)
		}
		for _, v := range verifiers {
			if got, err := v.Verify(p); (err == nil) == (got == nil) {
				t.Fatalf("Verify = %q, %v", got, err)
			}
		}
	})
}

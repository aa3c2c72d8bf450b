// Package signing makes and checks keyward's JWTs through go-jose: key
// generation, compact JWS signing, and verification where the algorithm
// comes from the key, never from the token's header. It never parses a JWT
// by hand.
package signing

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/go-jose/go-jose/v4"
)

// Supported algorithms. RS256 is what Clerk's SDKs and most gateways
// verify; EdDSA (Ed25519) signs about fifty times faster.
const (
	RS256 = "RS256"
	EdDSA = "EdDSA"
)

// MaxTokenLength bounds what is handed to the JWS parser, so a token made of
// megabytes of dots costs nothing (go-jose CVE-2025-27144 was exactly this).
const MaxTokenLength = 8 << 10

// ErrInvalid is every verification failure: malformed, wrong algorithm,
// bad signature.
var ErrInvalid = errors.New("invalid token")

// ValidAlgorithm reports whether alg is one keyward signs with.
func ValidAlgorithm(alg string) bool { return alg == RS256 || alg == EdDSA }

// GenerateKey returns a new key pair for alg as PKIX (public) and PKCS#8
// (private) DER.
func GenerateKey(alg string) (public, private []byte, err error) {
	var priv crypto.Signer
	switch alg {
	case RS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, nil, fmt.Errorf("unsupported signing algorithm %q", alg)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("generate %s key: %w", alg, err)
	}
	if public, err = x509.MarshalPKIXPublicKey(priv.Public()); err != nil {
		return nil, nil, err
	}
	if private, err = x509.MarshalPKCS8PrivateKey(priv); err != nil {
		return nil, nil, err
	}
	return public, private, nil
}

// Header names the token type in the protected header: typ, and an
// optional category (Clerk's cat) that keeps one kind of JWT from passing
// as another.
type Header struct {
	Type     string
	Category string
}

// Signer signs JWTs with one private key. It is safe for concurrent use.
type Signer struct {
	alg     jose.SignatureAlgorithm
	kid     string
	key     any
	signers sync.Map // Header → jose.Signer
}

// NewSigner parses a PKCS#8 private key for alg. Parsing is slow for RSA,
// so callers keep the Signer.
func NewSigner(alg, kid string, private []byte) (*Signer, error) {
	if !ValidAlgorithm(alg) {
		return nil, fmt.Errorf("unsupported signing algorithm %q", alg)
	}
	key, err := x509.ParsePKCS8PrivateKey(private)
	if err != nil {
		return nil, fmt.Errorf("parse signing key %s: %w", kid, err)
	}
	return &Signer{alg: jose.SignatureAlgorithm(alg), kid: kid, key: key}, nil
}

// Sign returns the compact JWS of claims under the given header.
func (s *Signer) Sign(h Header, claims any) (string, error) {
	signer, err := s.signerFor(h)
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("encode claims: %w", err)
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	return obj.CompactSerialize()
}

func (s *Signer) signerFor(h Header) (jose.Signer, error) {
	if v, ok := s.signers.Load(h); ok {
		return v.(jose.Signer), nil
	}
	opts := (&jose.SignerOptions{}).WithType(jose.ContentType(h.Type)).WithHeader("kid", s.kid)
	if h.Category != "" {
		opts = opts.WithHeader("cat", h.Category)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: s.alg, Key: s.key}, opts)
	if err != nil {
		return nil, fmt.Errorf("signer %s: %w", s.kid, err)
	}
	s.signers.Store(h, signer)
	return signer, nil
}

// Token is a parsed, not yet verified JWS.
type Token struct {
	jws    *jose.JSONWebSignature
	KeyID  string
	Header Header
}

// Parse parses a compact JWS signed with one of keyward's algorithms. It
// checks shape only; Verify checks the signature.
func Parse(token string) (*Token, error) {
	if len(token) > MaxTokenLength || strings.Count(token, ".") != 2 {
		return nil, ErrInvalid
	}
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.RS256, jose.EdDSA})
	if err != nil || len(jws.Signatures) != 1 {
		return nil, ErrInvalid
	}
	h := jws.Signatures[0].Protected
	if h.KeyID == "" || h.JSONWebKey != nil {
		return nil, ErrInvalid // an embedded key is never trusted
	}
	t := &Token{jws: jws, KeyID: h.KeyID}
	t.Header.Type, _ = h.ExtraHeaders[jose.HeaderType].(string)
	t.Header.Category, _ = h.ExtraHeaders["cat"].(string)
	return t, nil
}

// Verifier checks signatures against one public key.
type Verifier struct {
	alg string
	key any
}

// NewVerifier parses a PKIX public key for alg.
func NewVerifier(alg string, public []byte) (*Verifier, error) {
	if !ValidAlgorithm(alg) {
		return nil, fmt.Errorf("unsupported signing algorithm %q", alg)
	}
	key, err := x509.ParsePKIXPublicKey(public)
	if err != nil {
		return nil, fmt.Errorf("parse public key: %w", err)
	}
	return &Verifier{alg: alg, key: key}, nil
}

// Verify checks the token's signature with the verifier's key and returns
// the payload. The token's alg header must be the key's algorithm.
func (v *Verifier) Verify(t *Token) ([]byte, error) {
	if t.jws.Signatures[0].Protected.Algorithm != v.alg {
		return nil, ErrInvalid
	}
	payload, err := t.jws.Verify(v.key)
	if err != nil {
		return nil, ErrInvalid
	}
	return payload, nil
}

// JWK returns the public JSON Web Key of a key pair, for a JWKS.
func JWK(kid, alg string, public []byte) (jose.JSONWebKey, error) {
	key, err := x509.ParsePKIXPublicKey(public)
	if err != nil {
		return jose.JSONWebKey{}, fmt.Errorf("parse public key %s: %w", kid, err)
	}
	return jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: alg, Use: "sig"}, nil
}

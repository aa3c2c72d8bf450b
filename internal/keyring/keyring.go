// Package keyring holds the master key and the keys derived from it: the
// pepper that digests every secret, and the sealing key that encrypts the
// few secrets that must stay retrievable.
//
// The master key never touches the store. A stolen database therefore
// yields neither a usable secret (only HMAC digests) nor a readable machine
// key (only AES-256-GCM ciphertexts bound to their row ids).
package keyring

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
	"sync"

	"github.com/keyward/keyward/internal/credential"
)

// MasterKeySize is the length of a master key in bytes.
const MasterKeySize = 32

// HKDF info strings: one per derived key, versioned so a future scheme can
// live beside this one.
const (
	infoPepper = "keyward/v1/pepper"
	infoSeal   = "keyward/v1/seal"
)

// Keyring digests and seals secrets with keys derived from one master key.
// It is safe for concurrent use.
type Keyring struct {
	pepper []byte
	aead   cipher.AEAD
	macs   sync.Pool // of HMAC-SHA256 states keyed by the pepper; Digest is on the verify hot path
}

// New derives a keyring from a 32-byte master key.
func New(master []byte) (*Keyring, error) {
	if len(master) != MasterKeySize {
		return nil, fmt.Errorf("master key must be %d bytes, got %d", MasterKeySize, len(master))
	}
	pepper, err := hkdf.Key(sha256.New, master, nil, infoPepper, 32)
	if err != nil {
		return nil, fmt.Errorf("derive pepper: %w", err)
	}
	sealKey, err := hkdf.Key(sha256.New, master, nil, infoSeal, 32)
	if err != nil {
		return nil, fmt.Errorf("derive sealing key: %w", err)
	}
	block, err := aes.NewCipher(sealKey)
	if err != nil {
		return nil, fmt.Errorf("sealing cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("sealing cipher: %w", err)
	}
	k := &Keyring{pepper: pepper, aead: aead}
	k.macs.New = func() any { return hmac.New(sha256.New, k.pepper) }
	return k, nil
}

// Digest returns HMAC-SHA256(pepper, secret): what the store keeps and
// looks secrets up by.
func (k *Keyring) Digest(s credential.Secret) credential.Digest {
	m := k.macs.Get().(hash.Hash)
	m.Reset()
	io.WriteString(m, s.Reveal())
	var d credential.Digest
	m.Sum(d[:0])
	k.macs.Put(m)
	return d
}

// Seal encrypts plaintext with AES-256-GCM under a random nonce, binding it
// to aad (the row id), so a ciphertext moved to another row fails to open.
// The result is nonce || ciphertext.
func (k *Keyring) Seal(plaintext, aad []byte) ([]byte, error) {
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plaintext)+k.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal: read nonce: %w", err)
	}
	return k.aead.Seal(nonce, nonce, plaintext, aad), nil
}

// ErrOpen is returned when a sealed value does not authenticate: it was
// tampered with, moved to another row, or sealed under another master key.
var ErrOpen = errors.New("sealed value does not authenticate")

// Open decrypts a value made by Seal with the same aad.
func (k *Keyring) Open(sealed, aad []byte) ([]byte, error) {
	n := k.aead.NonceSize()
	if len(sealed) < n+k.aead.Overhead() {
		return nil, ErrOpen
	}
	plain, err := k.aead.Open(nil, sealed[:n], sealed[n:], aad)
	if err != nil {
		return nil, ErrOpen
	}
	return plain, nil
}

// ParseMasterKey decodes a master key given as standard base64 of 32 bytes,
// as `openssl rand -base64 32` prints it. Surrounding whitespace is ignored.
func ParseMasterKey(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, errors.New("master key is not valid standard base64")
	}
	if len(b) != MasterKeySize {
		return nil, fmt.Errorf("master key must decode to %d bytes, got %d", MasterKeySize, len(b))
	}
	return b, nil
}

// GenerateMasterKey returns a new random master key in its base64 form.
func GenerateMasterKey() (string, error) {
	b := make([]byte, MasterKeySize)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate master key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

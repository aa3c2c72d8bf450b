// Package keyring holds the data keys that protect stored secrets, and the
// envelope that wraps them under the master key.
//
// Two data keys do the work: the pepper, under which every secret is
// digested (HMAC-SHA256), and the sealing key, which encrypts the few
// secrets that must stay retrievable (AES-256-GCM). The store keeps them
// wrapped (AES-256-GCM) by a key derived from the master key, beside a
// key-check value, so a wrong master key is refused at start and a new
// master key re-wraps the data keys without changing any digest.
//
// The master key never touches the store. A stolen database therefore
// yields neither a usable secret (only HMAC digests) nor a readable machine
// key (only ciphertexts under a data key it holds only wrapped).
package keyring

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strings"
	"sync"

	"github.com/keyward/keyward/internal/credential"
)

// MasterKeySize is the length of a master key in bytes.
const MasterKeySize = 32

// dataKeySize is the length of each data key: HMAC-SHA256 and AES-256 keys.
const dataKeySize = 32

// HKDF info strings: one per derived key, versioned so a future scheme can
// live beside this one. The v1 ones derive the data keys of a store created
// before envelope keys, from its master key; they must never change.
const (
	infoPepper   = "keyward/v1/pepper"
	infoSeal     = "keyward/v1/seal"
	infoWrap     = "keyward/v2/wrap"      // master key → key-wrapping key
	infoKeyCheck = "keyward/v2/key-check" // master key → key-check value
	// wrapAAD binds a wrapped blob to its purpose and format.
	wrapAAD = "keyward/v2/data-keys"
	// infoSearch derives the search key from the pepper (not from the
	// master key), so it follows the pepper through a master-key rotation.
	infoSearch = "keyward/v1/search"
)

// Keyring digests and seals secrets with its data keys. It is safe for
// concurrent use.
type Keyring struct {
	pepper []byte
	search []byte // keys search digests; derived from the pepper
	aead   cipher.AEAD
	macs   sync.Pool // of HMAC-SHA256 states keyed by the pepper; Digest is on the verify hot path
}

// DataKeys are a keyring's pepper and sealing key. The type never prints
// them.
type DataKeys struct {
	pepper, seal []byte
}

// String hides the keys from fmt and loggers.
func (DataKeys) String() string { return "keyring.DataKeys{redacted}" }

// GoString hides the keys from %#v.
func (DataKeys) GoString() string { return "keyring.DataKeys{redacted}" }

// DerivedDataKeys returns the data keys derived from master by HKDF, as
// every keyward store created before envelope keys used. Such a store keeps
// them when it is first wrapped, so no digest or sealed value changes.
func DerivedDataKeys(master []byte) (DataKeys, error) {
	if len(master) != MasterKeySize {
		return DataKeys{}, fmt.Errorf("master key must be %d bytes, got %d", MasterKeySize, len(master))
	}
	pepper, err := hkdf.Key(sha256.New, master, nil, infoPepper, dataKeySize)
	if err != nil {
		return DataKeys{}, fmt.Errorf("derive pepper: %w", err)
	}
	seal, err := hkdf.Key(sha256.New, master, nil, infoSeal, dataKeySize)
	if err != nil {
		return DataKeys{}, fmt.Errorf("derive sealing key: %w", err)
	}
	return DataKeys{pepper: pepper, seal: seal}, nil
}

// RandomDataKeys returns fresh random data keys, for a new store.
func RandomDataKeys() (DataKeys, error) {
	b := make([]byte, 2*dataKeySize)
	if _, err := rand.Read(b); err != nil {
		return DataKeys{}, fmt.Errorf("generate data keys: %w", err)
	}
	return DataKeys{pepper: b[:dataKeySize], seal: b[dataKeySize:]}, nil
}

// New returns the keyring whose data keys are derived from master
// (DerivedDataKeys): what a store created before envelope keys used, and a
// quick keyring for tests.
func New(master []byte) (*Keyring, error) {
	dk, err := DerivedDataKeys(master)
	if err != nil {
		return nil, err
	}
	return FromDataKeys(dk)
}

// FromDataKeys returns the keyring over dk.
func FromDataKeys(dk DataKeys) (*Keyring, error) {
	if len(dk.pepper) != dataKeySize || len(dk.seal) != dataKeySize {
		return nil, errors.New("keyring: data keys are not set")
	}
	block, err := aes.NewCipher(dk.seal)
	if err != nil {
		return nil, fmt.Errorf("sealing cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("sealing cipher: %w", err)
	}
	search, err := hkdf.Key(sha256.New, dk.pepper, nil, infoSearch, 32)
	if err != nil {
		return nil, fmt.Errorf("derive search key: %w", err)
	}
	k := &Keyring{pepper: dk.pepper, search: search, aead: aead}
	k.macs.New = func() any { return &digester{mac: hmac.New(sha256.New, k.pepper)} }
	return k, nil
}

// DeriveKey returns an n-byte key for purpose (a versioned label such as
// "keyward/v1/audit-chain"), derived by HKDF-SHA256 from the pepper. Keys
// derived here follow the data keys, not the master key, so they survive a
// master-key rotation unchanged. Each purpose gets an independent key.
func (k *Keyring) DeriveKey(purpose string, n int) ([]byte, error) {
	if purpose == "" {
		return nil, errors.New("keyring: DeriveKey needs a purpose")
	}
	key, err := hkdf.Key(sha256.New, k.pepper, nil, "keyward/derived/"+purpose, n)
	if err != nil {
		return nil, fmt.Errorf("keyring: derive %s: %w", purpose, err)
	}
	return key, nil
}

// Digest returns HMAC-SHA256(pepper, secret): what the store keeps and
// looks secrets up by.
func (k *Keyring) Digest(s credential.Secret) credential.Digest {
	m := k.macs.Get().(*digester)
	m.mac.Reset()
	m.in = append(m.in[:0], s.Reveal()...)
	m.mac.Write(m.in)
	var d credential.Digest
	copy(d[:], m.mac.Sum(m.sum[:0]))
	clear(m.in) // the secret does not outlive the call in the pool
	k.macs.Put(m)
	return d
}

// SearchDigest returns HMAC-SHA256(search key, sum), where sum is the
// SHA-256 of a presented secret (GitHub's hashed_token): what lets an
// operator holding a leaked secret's SHA-256 find its credential, while the
// store never holds a plain, unkeyed SHA-256 of any secret.
func (k *Keyring) SearchDigest(sum [sha256.Size]byte) credential.Digest {
	m := hmac.New(sha256.New, k.search)
	m.Write(sum[:])
	var d credential.Digest
	m.Sum(d[:0])
	return d
}

// SearchDigestOf is SearchDigest of the SHA-256 of s.
func (k *Keyring) SearchDigestOf(s credential.Secret) credential.Digest {
	return k.SearchDigest(sha256.Sum256([]byte(s.Reveal())))
}

// digester is one pooled HMAC with scratch space for its input and sum,
// so a Digest (two per verify) allocates nothing.
type digester struct {
	mac hash.Hash
	in  []byte
	sum [sha256.Size]byte
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

// ErrWrongMasterKey is returned by Unwrap when the master key is not the one
// the data keys were wrapped with.
var ErrWrongMasterKey = errors.New("the master key does not match this data: its key-check value differs from the stored one (use the key this store was created with or last rotated to)")

// ErrCorrupt is returned by Unwrap when the master key passes the key check
// but the wrapped data keys do not authenticate: they were altered.
var ErrCorrupt = errors.New("the wrapped data keys do not authenticate: the keyring row was altered")

// Wrapped is what the store keeps of the data keys: a key-check value of
// the master key and the data keys encrypted under a key derived from it.
// Neither reveals the master key or the data keys.
type Wrapped struct {
	KeyCheck []byte // HKDF(master, key-check): tells a wrong master key apart at once
	Keys     []byte // nonce || AES-256-GCM(wrapping key, pepper || sealing key)
}

// keyCheck returns the key-check value of master.
func keyCheck(master []byte) ([]byte, error) {
	if len(master) != MasterKeySize {
		return nil, fmt.Errorf("master key must be %d bytes, got %d", MasterKeySize, len(master))
	}
	return hkdf.Key(sha256.New, master, nil, infoKeyCheck, 32)
}

// wrapper returns the AEAD that wraps data keys under master.
func wrapper(master []byte) (cipher.AEAD, error) {
	kek, err := hkdf.Key(sha256.New, master, nil, infoWrap, 32)
	if err != nil {
		return nil, fmt.Errorf("derive wrapping key: %w", err)
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, fmt.Errorf("wrapping cipher: %w", err)
	}
	return cipher.NewGCM(block)
}

// Wrap encrypts dk under master and computes master's key-check value.
func Wrap(master []byte, dk DataKeys) (Wrapped, error) {
	if len(dk.pepper) != dataKeySize || len(dk.seal) != dataKeySize {
		return Wrapped{}, errors.New("keyring: data keys are not set")
	}
	check, err := keyCheck(master)
	if err != nil {
		return Wrapped{}, err
	}
	aead, err := wrapper(master)
	if err != nil {
		return Wrapped{}, err
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+2*dataKeySize+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return Wrapped{}, fmt.Errorf("wrap: read nonce: %w", err)
	}
	plain := append(append(make([]byte, 0, 2*dataKeySize), dk.pepper...), dk.seal...)
	return Wrapped{KeyCheck: check, Keys: aead.Seal(nonce, nonce, plain, []byte(wrapAAD))}, nil
}

// Unwrap checks master against w's key-check value (ErrWrongMasterKey) and
// decrypts the data keys (ErrCorrupt if they do not authenticate).
func Unwrap(master []byte, w Wrapped) (DataKeys, error) {
	check, err := keyCheck(master)
	if err != nil {
		return DataKeys{}, err
	}
	if subtle.ConstantTimeCompare(check, w.KeyCheck) != 1 {
		return DataKeys{}, ErrWrongMasterKey
	}
	aead, err := wrapper(master)
	if err != nil {
		return DataKeys{}, err
	}
	n := aead.NonceSize()
	if len(w.Keys) < n+aead.Overhead() {
		return DataKeys{}, ErrCorrupt
	}
	plain, err := aead.Open(nil, w.Keys[:n], w.Keys[n:], []byte(wrapAAD))
	if err != nil || len(plain) != 2*dataKeySize {
		return DataKeys{}, ErrCorrupt
	}
	return DataKeys{pepper: plain[:dataKeySize], seal: plain[dataKeySize:]}, nil
}

// Rewrap unwraps w with oldMaster and wraps the same data keys under
// newMaster, so nothing they digested or sealed changes.
func Rewrap(oldMaster, newMaster []byte, w Wrapped) (Wrapped, error) {
	dk, err := Unwrap(oldMaster, w)
	if err != nil {
		return Wrapped{}, err
	}
	return Wrap(newMaster, dk)
}

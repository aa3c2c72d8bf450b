package keyring

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/keyward/keyward/internal/credential"
)

func newKeyring(t *testing.T, fill byte) *Keyring {
	t.Helper()
	k, err := New(bytes.Repeat([]byte{fill}, MasterKeySize))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestDigestIsStablePerMasterKeyAndDiffersAcross(t *testing.T) {
	s := credential.MustGenerate(credential.KindPAT)
	a, b := newKeyring(t, 1), newKeyring(t, 2)
	if !a.Digest(s).Equal(newKeyring(t, 1).Digest(s)) {
		t.Fatal("same master key, same secret: digests differ")
	}
	if a.Digest(s).Equal(b.Digest(s)) {
		t.Fatal("different master keys gave the same digest: the pepper is not applied")
	}
	if a.Digest(s).Equal(a.Digest(credential.MustGenerate(credential.KindPAT))) {
		t.Fatal("different secrets gave the same digest")
	}
}

func TestSealOpensOnlyWithItsRowIDAndMasterKey(t *testing.T) {
	k := newKeyring(t, 1)
	plain := []byte("ak_secret")
	sealed, err := k.Seal(plain, []byte("msk_row1"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, plain) {
		t.Fatal("sealed value contains the plaintext")
	}
	got, err := k.Open(sealed, []byte("msk_row1"))
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-1] ^= 1
	for name, open := range map[string]func() ([]byte, error){
		"another row's id":   func() ([]byte, error) { return k.Open(sealed, []byte("msk_row2")) },
		"another master key": func() ([]byte, error) { return newKeyring(t, 2).Open(sealed, []byte("msk_row1")) },
		"a tampered byte":    func() ([]byte, error) { return k.Open(tampered, []byte("msk_row1")) },
		"a truncated value":  func() ([]byte, error) { return k.Open(sealed[:5], []byte("msk_row1")) },
	} {
		if _, err := open(); !errors.Is(err, ErrOpen) {
			t.Errorf("%s: Open error = %v, want ErrOpen", name, err)
		}
	}
}

func TestParseMasterKey(t *testing.T) {
	good, err := GenerateMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseMasterKey(good + "\n"); err != nil {
		t.Fatalf("generated key does not parse: %v", err)
	}
	for name, s := range map[string]string{
		"not base64": "not base64!",
		"16 bytes":   base64.StdEncoding.EncodeToString(make([]byte, 16)),
		"empty":      "",
	} {
		if _, err := ParseMasterKey(s); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
	if _, err := New(make([]byte, 31)); err == nil {
		t.Error("New accepted a 31-byte master key")
	}
}

// Captured from the keyring before envelope keys: a store made then must
// keep verifying its secrets and opening its sealed values once wrapped.
const (
	legacySecret = "pat_B2X4GjWVSxlmia4MRLv31yIv7xEmLAYdyx91Nq5uXeP3JMMHU"
	legacyDigest = "bf183085592a1e4dddf313c30e77aafcc817ca47fc5750d92c5c34831bcd50b3"
	legacySealed = "726aed32e47686db13e4ed8656b3de8e79a0af8395d7fc25c79448191bf3d8b0086c7c2ca0"
)

func TestDerivedDataKeysKeepTheDigestsAndSealsOfStoresMadeBeforeEnvelopeKeys(t *testing.T) {
	master := bytes.Repeat([]byte{1}, MasterKeySize)
	dk, err := DerivedDataKeys(master)
	if err != nil {
		t.Fatal(err)
	}
	// Through the envelope, as an upgraded store holds them.
	w, err := Wrap(master, dk)
	if err != nil {
		t.Fatal(err)
	}
	unwrapped, err := Unwrap(master, w)
	if err != nil {
		t.Fatal(err)
	}
	for name, dk := range map[string]DataKeys{"derived": dk, "unwrapped": unwrapped} {
		k, err := FromDataKeys(dk)
		if err != nil {
			t.Fatal(err)
		}
		s, _, err := credential.Parse(legacySecret)
		if err != nil {
			t.Fatal(err)
		}
		d := k.Digest(s)
		if got := hex.EncodeToString(d[:]); got != legacyDigest {
			t.Errorf("%s: digest = %s, want the pre-envelope %s", name, got, legacyDigest)
		}
		sealed, _ := hex.DecodeString(legacySealed)
		if plain, err := k.Open(sealed, []byte("msk_1")); err != nil || string(plain) != "ak_golden" {
			t.Errorf("%s: Open(pre-envelope sealed value) = %q, %v", name, plain, err)
		}
	}
}

func TestUnwrapRefusesAnotherMasterKeyAndAlteredKeys(t *testing.T) {
	master, other := bytes.Repeat([]byte{1}, MasterKeySize), bytes.Repeat([]byte{2}, MasterKeySize)
	dk, err := RandomDataKeys()
	if err != nil {
		t.Fatal(err)
	}
	w, err := Wrap(master, dk)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Unwrap(other, w); !errors.Is(err, ErrWrongMasterKey) {
		t.Fatalf("Unwrap with another master key: %v, want ErrWrongMasterKey", err)
	}
	altered := Wrapped{KeyCheck: w.KeyCheck, Keys: bytes.Clone(w.Keys)}
	altered.Keys[len(altered.Keys)-1] ^= 1
	if _, err := Unwrap(master, altered); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Unwrap of altered keys: %v, want ErrCorrupt", err)
	}
	if _, err := Unwrap(master, Wrapped{KeyCheck: w.KeyCheck, Keys: w.Keys[:10]}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Unwrap of truncated keys: %v, want ErrCorrupt", err)
	}
	for _, secret := range [][]byte{master, dk.pepper, dk.seal} {
		if bytes.Contains(w.Keys, secret) || bytes.Contains(w.KeyCheck, secret) {
			t.Fatal("the wrapped form holds a key in the clear")
		}
	}
	if strings.Contains(fmt.Sprintf("%v %+v %#v %s", dk, dk, dk, dk), string(dk.pepper)) {
		t.Fatal("DataKeys formatted its keys")
	}
}

func TestRewrapKeepsTheDataKeysAndRetiresTheOldMasterKey(t *testing.T) {
	oldMaster, newMaster := bytes.Repeat([]byte{1}, MasterKeySize), bytes.Repeat([]byte{2}, MasterKeySize)
	dk, err := RandomDataKeys()
	if err != nil {
		t.Fatal(err)
	}
	before, err := FromDataKeys(dk)
	if err != nil {
		t.Fatal(err)
	}
	w, err := Wrap(oldMaster, dk)
	if err != nil {
		t.Fatal(err)
	}
	rewrapped, err := Rewrap(oldMaster, newMaster, w)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Unwrap(oldMaster, rewrapped); !errors.Is(err, ErrWrongMasterKey) {
		t.Fatalf("the old master key still unwraps: %v", err)
	}
	got, err := Unwrap(newMaster, rewrapped)
	if err != nil {
		t.Fatal(err)
	}
	after, err := FromDataKeys(got)
	if err != nil {
		t.Fatal(err)
	}
	s := credential.MustGenerate(credential.KindM2MToken)
	if !before.Digest(s).Equal(after.Digest(s)) {
		t.Fatal("a rewrap changed the digests")
	}
	sealed, err := before.Seal([]byte("ak_x"), []byte("row"))
	if err != nil {
		t.Fatal(err)
	}
	if plain, err := after.Open(sealed, []byte("row")); err != nil || string(plain) != "ak_x" {
		t.Fatalf("a rewrap broke sealed values: %q %v", plain, err)
	}
	a1, _ := before.DeriveKey("test/v1", 32)
	a2, _ := after.DeriveKey("test/v1", 32)
	if !bytes.Equal(a1, a2) {
		t.Fatal("a key derived from the data keys changed with the master key")
	}
	if _, err := Rewrap(newMaster, oldMaster, w); !errors.Is(err, ErrWrongMasterKey) {
		t.Fatalf("Rewrap with a wrong current key: %v", err)
	}
}

func TestDeriveKeyIsPerPurposeAndIndependentOfThePepper(t *testing.T) {
	k := newKeyring(t, 1)
	a, err := k.DeriveKey("audit/v1", 32)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := k.DeriveKey("audit/v1", 32)
	b, _ := k.DeriveKey("other/v1", 32)
	if !bytes.Equal(a, again) || bytes.Equal(a, b) || bytes.Equal(a, k.pepper) {
		t.Fatal("DeriveKey must be stable per purpose, differ across purposes and never be the pepper")
	}
	if c, _ := newKeyring(t, 2).DeriveKey("audit/v1", 32); bytes.Equal(a, c) {
		t.Fatal("two keyrings derived the same key")
	}
	if _, err := k.DeriveKey("", 32); err == nil {
		t.Fatal("DeriveKey accepted an empty purpose")
	}
}

// FuzzUnwrap feeds Unwrap stored rows it did not write: it must refuse
// them with an error, never panic or hand out keys.
func FuzzUnwrap(f *testing.F) {
	master := bytes.Repeat([]byte{1}, MasterKeySize)
	dk, err := RandomDataKeys()
	if err != nil {
		f.Fatal(err)
	}
	w, err := Wrap(master, dk)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(w.KeyCheck, w.Keys)
	f.Add([]byte{}, []byte{})
	f.Add(w.KeyCheck, w.Keys[:12])
	f.Fuzz(func(t *testing.T, check, keys []byte) {
		// Wrap's nonce is random, so only the key check is the same in
		// every fuzzing process; a forged ciphertext must not authenticate.
		_, err := Unwrap(master, Wrapped{KeyCheck: check, Keys: keys})
		if err == nil && !bytes.Equal(check, w.KeyCheck) {
			t.Fatal("Unwrap accepted another master key's key check")
		}
		if !bytes.Equal(check, w.KeyCheck) && !errors.Is(err, ErrWrongMasterKey) {
			t.Fatalf("a wrong key check: %v, want ErrWrongMasterKey", err)
		}
	})
}

// TestDigestIsHMACOfTheSecretUnderConcurrentReuse checks the pooled
// digesters against a fresh HMAC: no state or input leaks between calls.
func TestDigestIsHMACOfTheSecretUnderConcurrentReuse(t *testing.T) {
	k := newKeyring(t, 3)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 200 {
				s := credential.MustGenerate(credential.KindM2MToken)
				mac := hmac.New(sha256.New, k.pepper)
				mac.Write([]byte(s.Reveal()))
				if got := k.Digest(s); !bytes.Equal(got[:], mac.Sum(nil)) {
					t.Error("Digest differs from HMAC-SHA256(pepper, secret)")
					return
				}
			}
		})
	}
	wg.Wait()
}

// The search digest is keyed (a stolen database cannot be matched against
// a list of leaked-secret hashes without the keys), differs from the lookup
// digest, and is derived from the pepper.
func TestSearchDigestIsAKeyedDigestOfTheSecretsSHA256(t *testing.T) {
	s := credential.MustGenerate(credential.KindAdminKey)
	sum := sha256.Sum256([]byte(s.Reveal()))
	a := newKeyring(t, 1)
	d := a.SearchDigestOf(s)
	if d != a.SearchDigest(sum) || d != newKeyring(t, 1).SearchDigest(sum) {
		t.Fatal("the search digest of a secret is not the search digest of its SHA-256, stably")
	}
	if d == credential.Digest(sum) || d == a.Digest(s) {
		t.Fatal("the search digest is the plain SHA-256 or the lookup digest")
	}
	if d == newKeyring(t, 2).SearchDigest(sum) {
		t.Fatal("different keys gave the same search digest: it is not keyed")
	}
	// Derived from the pepper alone: a keyring holding the same pepper
	// (as after a master-key rotation that re-wraps it) searches alike.
	same := &Keyring{pepper: a.pepper}
	same.search = mustDeriveSearch(t, a.pepper)
	if same.SearchDigest(sum) != d {
		t.Fatal("the search key is not derived from the pepper alone")
	}
}

func mustDeriveSearch(t *testing.T, pepper []byte) []byte {
	t.Helper()
	k, err := hkdf.Key(sha256.New, pepper, nil, infoSearch, 32)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

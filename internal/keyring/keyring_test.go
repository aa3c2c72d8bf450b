package keyring

import (
	"bytes"
	"encoding/base64"
	"errors"
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

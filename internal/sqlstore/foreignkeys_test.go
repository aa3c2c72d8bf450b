package sqlstore_test

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

const foreignPrefix = "sk_live_"

var foreignHMACKey = []byte("the other system's hmac key")

// foreignKey makes a key as another system would issue it.
func foreignKey(t *testing.T) string {
	t.Helper()
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return foreignPrefix + string(b)
}

type importedKey struct {
	key    string
	format authority.ForeignFormat
}

// foreignRecord hashes key as the other system stored it; variant picks
// hex or base64 for the digest formats.
func foreignRecord(t *testing.T, key string, format authority.ForeignFormat, variant, line int) authority.ForeignKey {
	t.Helper()
	r := authority.ForeignKey{Line: line, Format: format, Subject: "user_" + strings.Repeat("a", 27), Name: "imported"}
	switch format {
	case authority.ForeignSHA256:
		sum := sha256.Sum256([]byte(key))
		r.Hash = hex.EncodeToString(sum[:])
		if variant%2 == 1 {
			r.Hash = base64.StdEncoding.EncodeToString(sum[:]) // Unkey's form
			r.Start = key[:len(foreignPrefix)+4]
		}
	case authority.ForeignHMACSHA256:
		m := hmac.New(sha256.New, foreignHMACKey)
		m.Write([]byte(key))
		r.Hash = hex.EncodeToString(m.Sum(nil))
	case authority.ForeignBcrypt:
		h, err := bcrypt.GenerateFromPassword([]byte(key), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		r.Hash, r.Start = string(h), key[:len(foreignPrefix)+6]
	}
	return r
}

// importForeign imports n keys, formats in turn (one bcrypt key in
// bcryptEvery, since bcrypt is slow even at its minimum cost).
func importForeign(t *testing.T, a *authority.Authority, instanceID string, n, bcryptEvery int) []importedKey {
	t.Helper()
	keys := make([]importedKey, 0, n)
	in := authority.ImportForeignKeysInput{InstanceID: instanceID, Prefixes: map[string]string{foreignPrefix: "live"}, HMACKey: foreignHMACKey}
	for i := range n {
		format := []authority.ForeignFormat{authority.ForeignSHA256, authority.ForeignHMACSHA256}[i%2]
		if i%bcryptEvery == 0 {
			format = authority.ForeignBcrypt
		}
		k := foreignKey(t)
		keys = append(keys, importedKey{k, format})
		in.Keys = append(in.Keys, foreignRecord(t, k, format, i/2, i+1))
	}
	res, err := a.ImportForeignKeys(context.Background(), in)
	if err != nil {
		t.Fatalf("ImportForeignKeys: %v", err)
	}
	if res.Imported != n {
		t.Fatalf("imported %d, want %d", res.Imported, n)
	}
	return keys
}

func adminCaller(t *testing.T, a *authority.Authority) (authority.Caller, string) {
	t.Helper()
	ctx := context.Background()
	in, admin, err := a.CreateInstance(ctx, "imported")
	if err != nil {
		t.Fatal(err)
	}
	c, err := a.Authenticate(ctx, admin.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	return c, in.ID
}

func verifyKey(t *testing.T, a *authority.Authority, c authority.Caller, key string) authority.VerifyResult {
	t.Helper()
	r, err := a.Verify(context.Background(), c, authority.VerifyInput{Token: key})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return r
}

// foreignHashes counts the instance's keys still held by a foreign hash.
func foreignHashes(t *testing.T, s *sqlstore.Store) int {
	t.Helper()
	n, err := sqlstore.RowCount(context.Background(), s, "foreign_key_hashes")
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestImportedForeignKeysVerifyAndAreRekeyedOnFirstUse(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		a := chainAuthority(t, s)
		c, instanceID := adminCaller(t, a)
		const n = 10000
		keys := importForeign(t, a, instanceID, n, 25)
		if got := foreignHashes(t, s); got != n {
			t.Fatalf("%d foreign hashes after the import, want %d", got, n)
		}
		sample := map[authority.ForeignFormat][]string{}
		for _, k := range keys {
			if len(sample[k.format]) < 5 {
				sample[k.format] = append(sample[k.format], k.key)
			}
		}
		verified := 0
		for format, ks := range sample {
			for _, key := range ks {
				r := verifyKey(t, a, c, key)
				if !r.Valid || r.Kind != credential.KindAPIKey || r.APIKey == nil || r.APIKey.Type != "live" {
					t.Fatalf("%s key: %+v, want a valid API key of type live", format, r)
				}
				verified++
				// Re-keyed: found by keyward's own digest, the foreign hash gone.
				d := chainKeyring(t).Digest(credential.ForeignSecret(key))
				cred := view(t, s, func(tx authority.Tx) (credential.Credential, error) { return tx.CredentialByDigest(ctx, d) })
				if cred.ID != r.ID {
					t.Fatalf("%s key: the credential found by digest is %s, want %s", format, cred.ID, r.ID)
				}
				if again := verifyKey(t, a, c, key); !again.Valid || again.ID != r.ID {
					t.Fatalf("%s key after re-keying: %+v", format, again)
				}
			}
		}
		if got := foreignHashes(t, s); got != n-verified {
			t.Fatalf("%d foreign hashes after %d first verifies, want %d", got, verified, n-verified)
		}
		wrong := []struct {
			name, key string
		}{
			{"a digest key with one character changed", keys[1].key[:len(keys[1].key)-1] + "#"},
			{"an hmac key's sha256 never imported", keys[101].key + "x"},
			{"a bcrypt key with its start but another tail", keys[25].key[:len(foreignPrefix)+6] + strings.Repeat("z", 18)},
			{"a key of an unmapped prefix", "sk_test_" + keys[3].key[len(foreignPrefix):]},
		}
		for _, w := range wrong {
			if r := verifyKey(t, a, c, w.key); r.Valid || r.Reason != authority.ReasonNotFound {
				t.Errorf("%s: %+v, want not_found", w.name, r)
			}
		}
		if got := foreignHashes(t, s); got != n-verified {
			t.Fatalf("wrong keys changed the foreign hashes: %d, want %d", got, n-verified)
		}
	})
}

func TestConcurrentFirstVerifiesRekeyOnce(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		clock := testkit.NewClock()
		a := janitorAuthority(t, s, clock)
		c, instanceID := adminCaller(t, a)
		keys := importForeign(t, a, instanceID, 3, 3) // bcrypt, hmac, sha256
		clock.Advance(authority.ForeignHMACKeyGrace)
		for _, k := range keys {
			var wg sync.WaitGroup
			for range 8 {
				wg.Go(func() {
					r, err := a.Verify(ctx, c, authority.VerifyInput{Token: k.key})
					if err != nil || !r.Valid {
						t.Errorf("%s: concurrent first verify: %+v, %v", k.format, r, err)
					}
				})
			}
			wg.Wait()
		}
		events, _, err := a.ListAuditEvents(ctx, authority.Operator(instanceID), authority.ListAuditEventsInput{Action: "api_key.rekey"})
		if err != nil {
			t.Fatal(err)
		}
		if len(events) != len(keys) {
			t.Fatalf("%d re-key events for %d keys verified 8 times at once, want one each", len(events), len(keys))
		}
		if got := foreignHashes(t, s); got != 0 {
			t.Fatalf("%d foreign hashes left", got)
		}
		// keyward never held an imported key's secret, even once it was presented.
		r := verifyKey(t, a, c, keys[0].key)
		if _, err := a.APIKeySecret(ctx, c, r.ID); !credential.IsCode(err, credential.CodeNotFound) {
			t.Fatalf("APIKeySecret of an imported key: %v, want not_found", err)
		}
		if n, _ := sqlstore.RowCount(ctx, s, "foreign_hmac_keys"); n != 0 {
			t.Fatalf("the foreign HMAC key outlived the last key that needed it (%d left)", n)
		}
	})
}

// alreadyImported is a key imported before the run that repeats it.
var alreadyImported authority.ForeignKey

func TestForeignImportRefusesABadLineAndWritesNothing(t *testing.T) {
	bad := []struct {
		name string
		edit func(*authority.ForeignKey)
		want string
	}{
		{"unknown format", func(k *authority.ForeignKey) { k.Format = "md5" }, `line 7: format: "md5" is not sha256`},
		{"short digest", func(k *authority.ForeignKey) { k.Hash = "abcd" }, "line 7: hash: must be a SHA-256 digest"},
		{"bcrypt without start", func(k *authority.ForeignKey) {
			h, _ := bcrypt.GenerateFromPassword([]byte("whatever"), bcrypt.MinCost)
			k.Format, k.Hash, k.Start = authority.ForeignBcrypt, string(h), ""
		}, "line 7: start: is required for bcrypt"},
		{"unmapped prefix", func(k *authority.ForeignKey) { k.Start = "pk_live_abcd" }, `line 7: prefix: "" is not mapped`},
		{"bad subject", func(k *authority.ForeignKey) { k.Subject = "nobody" }, "line 7: subject"},
		{"duplicate key", func(k *authority.ForeignKey) {}, "line 7: the same key as line 6"},
		// Found inside the transaction, after six keys were written.
		{"unknown machine", func(k *authority.ForeignKey) { k.Subject = "mch_" + strings.Repeat("b", 27) }, "line 7: subject: is not a machine"},
		{"already imported", func(k *authority.ForeignKey) { *k = alreadyImported }, "line 7: this key is already imported"},
	}
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		a := chainAuthority(t, s)
		_, instanceID := adminCaller(t, a)
		alreadyImported = foreignRecord(t, foreignKey(t), authority.ForeignSHA256, 0, 7)
		if _, err := a.ImportForeignKeys(ctx, authority.ImportForeignKeysInput{InstanceID: instanceID,
			Prefixes: map[string]string{foreignPrefix: "live"}, Keys: []authority.ForeignKey{alreadyImported}}); err != nil {
			t.Fatal(err)
		}
		for _, b := range bad {
			t.Run(b.name, func(t *testing.T) {
				in := authority.ImportForeignKeysInput{InstanceID: instanceID, Prefixes: map[string]string{foreignPrefix: "live"}}
				var key string
				for i := range 10 {
					if i != 6 || b.name != "duplicate key" {
						key = foreignKey(t)
					}
					in.Keys = append(in.Keys, foreignRecord(t, key, authority.ForeignSHA256, 0, i+1))
				}
				b.edit(&in.Keys[6])
				before, err := s.TableDigests(ctx)
				if err != nil {
					t.Fatal(err)
				}
				_, err = a.ImportForeignKeys(ctx, in)
				if err == nil || !strings.Contains(err.Error(), b.want) {
					t.Fatalf("ImportForeignKeys = %v, want an error containing %q", err, b.want)
				}
				if strings.Contains(err.Error(), in.Keys[6].Hash) && in.Keys[6].Hash != "abcd" {
					t.Fatalf("the error echoes the hash: %v", err)
				}
				after, err := s.TableDigests(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for table, d := range before {
					if after[table] != d {
						t.Errorf("table %s changed: a refused import wrote something", table)
					}
				}
			})
		}
	})
}

func TestForeignKeysTravelInTheExport(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		a := chainAuthority(t, s)
		_, instanceID := adminCaller(t, a)
		importForeign(t, a, instanceID, 4, 4)
		var out strings.Builder
		if _, err := s.Export(context.Background(), &out, chainKeyring(t).ExportCheck()); err != nil {
			t.Fatal(err)
		}
		for _, table := range []string{"foreign_key_hashes", "foreign_hmac_keys"} {
			if got := strings.Count(out.String(), fmt.Sprintf(`"type":%q`, table)); got == 0 {
				t.Errorf("the export has no %s rows", table)
			}
		}
		if strings.Contains(out.String(), string(foreignHMACKey)) {
			t.Error("the export holds the foreign HMAC key in the clear")
		}
	})
}

// The foreign HMAC key outlives the last key that needed it by a grace (an
// import that just found it may still be writing), then the janitor drops it.
func TestTheForeignHMACKeyGoesAfterItsLastKey(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		clock := testkit.NewClock()
		a := janitorAuthority(t, s, clock)
		c, instanceID := adminCaller(t, a)
		keys := importForeign(t, a, instanceID, 2, 1000) // bcrypt, hmac
		for _, k := range keys {
			if r := verifyKey(t, a, c, k.key); !r.Valid {
				t.Fatalf("%s: %+v", k.format, r)
			}
		}
		if n, _ := sqlstore.RowCount(ctx, s, "foreign_hmac_keys"); n != 1 {
			t.Fatalf("%d foreign HMAC keys right after the re-key, want 1 (within the grace)", n)
		}
		clock.Advance(authority.ForeignHMACKeyGrace)
		if _, err := a.RunJanitor(ctx, authority.Retention{}); err != nil {
			t.Fatal(err)
		}
		if n, _ := sqlstore.RowCount(ctx, s, "foreign_hmac_keys"); n != 0 {
			t.Fatalf("%d foreign HMAC keys after the grace, want none", n)
		}
	})
}

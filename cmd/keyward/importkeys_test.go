package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/keyward/keyward/internal/keyring"
)

func TestImportKeysThenTheyVerifyAndABadLineWritesNothing(t *testing.T) {
	master, _ := keyring.GenerateMasterKey()
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	cfg := &storeConfig{dataDir: dataDir, masterKey: master, redisPolicy: "local"}
	n, err := cfg.open(context.Background(), false, nodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	in, admin, err := n.auth.CreateInstance(context.Background(), "prod")
	n.Close()
	if err != nil {
		t.Fatal(err)
	}
	const hmacKey = "legacy-hmac-key-0123456789"
	keyFile := filepath.Join(dir, "hmac.key")
	if err := os.WriteFile(keyFile, []byte(hex.EncodeToString([]byte(hmacKey))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	shaKey, hmacKeyed, bcryptKey := "sk_live_Sha256KeyOfTheOtherSystem1", "sk_live_HmacKeyOfTheOtherSystem22", "sk_live_BcryptKeyOfTheOtherSystem"
	sum := sha256.Sum256([]byte(shaKey))
	m := hmac.New(sha256.New, []byte(hmacKey))
	m.Write([]byte(hmacKeyed))
	bh, _ := bcrypt.GenerateFromPassword([]byte(bcryptKey), bcrypt.MinCost)
	subject := "user_" + strings.Repeat("u", 27)
	good := fmt.Sprintf(`{"hash":%q,"start":"sk_live_Sha2","subject":%q,"name":"from unkey","expires_at":null}
{"format":"hmac-sha256","hash":%q,"subject":%q,"created_at":"2025-01-01T00:00:00Z"}

{"format":"bcrypt","hash":%q,"start":"sk_live_Bcry","subject":%q,"scopes":["read"]}
`, base64.StdEncoding.EncodeToString(sum[:]), subject, hex.EncodeToString(m.Sum(nil)), subject, string(bh), subject)
	from := filepath.Join(dir, "keys.jsonl")
	args := []string{"import-keys", "--data-dir", dataDir, "--master-key", master, "--from", from, "--prefix", "sk_live_=api_key:live",
		"--hmac-key-file", keyFile, "--hmac-key-encoding", "hex", "--format", "sha256"}

	bad := []struct{ name, content, want string }{
		{"a line that is not JSON", strings.Replace(good, `{"format":"bcrypt"`, `{format:bcrypt`, 1), "line 4: not a JSON object"},
		{"an unknown field", strings.Replace(good, `"scopes"`, `"scopez"`, 1), `line 4: unknown field "scopez"`},
		{"a bad hash", strings.Replace(good, string(bh), "$2a$nope", 1), "line 4: hash: is not a bcrypt hash"},
	}
	for _, b := range bad {
		if err := os.WriteFile(from, []byte(b.content), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := runKeyward(t, args...)
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Fatalf("%s: err = %v, want %q", b.name, err, b.want)
		}
		if strings.Contains(out+err.Error(), hmacKey) || strings.Contains(out+err.Error(), hex.EncodeToString(sum[:])) {
			t.Fatalf("%s: the output echoes a key or a hash", b.name)
		}
	}
	if err := os.WriteFile(from, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	// Had a refused run written its first lines, this one would conflict.
	out, err := runKeyward(t, args...)
	if err != nil {
		t.Fatalf("import-keys: %v", err)
	}
	if !strings.Contains(out, "imported 3 keys into "+in.ID+" (bcrypt 1, hmac-sha256 1, sha256 1)") {
		t.Fatalf("import-keys said %q", out)
	}
	if strings.Contains(out, hmacKey) {
		t.Fatal("import-keys printed the HMAC key")
	}
	// Through the server's /v1/verify, twice: by the foreign hash (which
	// re-keys the key), then by keyward's own digest.
	url, _ := startServe(t, "--data-dir", dataDir, "--master-key", master)
	for _, key := range []string{shaKey, hmacKeyed, bcryptKey, shaKey, hmacKeyed, bcryptKey} {
		req, _ := http.NewRequest("POST", url+"/v1/verify", strings.NewReader(`{"token":"`+key+`"}`))
		req.Header.Set("Authorization", "Bearer "+admin.Reveal())
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Valid bool   `json:"valid"`
			Kind  string `json:"kind"`
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || !body.Valid || body.Kind != "api_key" {
			t.Fatalf("%s: /v1/verify answered %d %+v (%v); want a valid api_key", key[:12], resp.StatusCode, body, err)
		}
	}
	if wrong := get(t, url+"/v1/caller", "sk_live_BcryptKeyOfTheOtherSystem"); wrong != http.StatusUnauthorized {
		t.Fatalf("an imported API key authenticated to keyward itself: %d", wrong)
	}
}

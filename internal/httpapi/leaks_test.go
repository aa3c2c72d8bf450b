package httpapi_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/httpapi"
	"github.com/keyward/keyward/internal/httpapi/apitest"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

// GitHub's published sample (the partner program page's validation
// samples): this public key, whose key_identifier is the SHA-256 of its
// PEM text, signed this payload with this signature.
const (
	githubSampleKey = `-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE9MJJHnMfn2+H4xL4YaPDA4RpJqUq
kCmRCBnYERxZanmcpzQSXs1X/AljlKkbJ8qpVIW4clayyef9gWhFbNHWAA==
-----END PUBLIC KEY-----
`
	githubSampleKeyID     = "90a421169f0a406205f1563a953312f0be898d3c7b6c06b681aa86a874555f4a"
	githubSamplePayload   = `[{"token":"some_token","type":"some_type","url":"some_url"}]`
	githubSampleSignature = "MEUCIQDKZokqnCjrRtw0tni+2Ltvl/uiMJ1EGumEsp1BsNr32AIgQY1YXD2nlj+XNfGK4rBfkMJ1JDOQcYXxa2sY8FNkrKc="
)

func TestLeakSignatureMatchesGitHubsSample(t *testing.T) {
	keys, err := httpapi.ParseLeakReportKeys([]byte(githubSampleKey))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := keys[githubSampleKeyID]; !ok || len(keys) != 1 {
		t.Fatalf("a PEM key is named %v, want GitHub's identifier %s", keys, githubSampleKeyID)
	}
	if !httpapi.VerifyLeakSignature(keys, githubSampleKeyID, githubSampleSignature, []byte(githubSamplePayload)) {
		t.Error("GitHub's sample signature does not verify")
	}
	if httpapi.VerifyLeakSignature(keys, githubSampleKeyID, githubSampleSignature, []byte(githubSamplePayload+" ")) {
		t.Error("the sample signature verifies another body")
	}
	// The JSON GitHub publishes at /meta/public_keys/secret_scanning.
	doc, _ := json.Marshal(map[string]any{"public_keys": []map[string]any{
		{"key_identifier": "custom-id", "key": githubSampleKey, "is_current": true}}})
	keys, err = httpapi.ParseLeakReportKeys(doc)
	if err != nil || keys["custom-id"] == nil {
		t.Fatalf("the JSON form: %v, %v", keys, err)
	}
	if _, err := httpapi.ParseLeakReportKeys([]byte("not a key")); err == nil {
		t.Error("a file without a key was accepted")
	}
}

// reporter signs leak reports as GitHub does: ECDSA P-256 over the SHA-256
// of the raw body, ASN.1 DER, base64.
type reporter struct {
	key *ecdsa.PrivateKey
	id  string
}

func newReporter(t *testing.T) (reporter, map[string]*ecdsa.PublicKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := httpapi.ParseLeakReportKeys(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 {
		t.Fatalf("%d keys parsed from one PEM block", len(keys))
	}
	var r reporter
	for id := range keys {
		r = reporter{key: key, id: id}
	}
	return r, keys
}

func (r reporter) sign(t *testing.T, body []byte) string {
	t.Helper()
	sum := sha256.Sum256(body)
	sig, err := ecdsa.SignASN1(rand.Reader, r.key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

func leakHeaders(id, sig string) http.Header {
	h := http.Header{}
	if id != "" {
		h.Set(httpapi.LeakKeyIDHeader, id)
	}
	if sig != "" {
		h.Set(httpapi.LeakSignatureHeader, sig)
	}
	return h
}

// mintToken makes a machine and an opaque M2M token in instanceID.
func mintToken(t *testing.T, e *apitest.Env, instanceID string) string {
	t.Helper()
	ctx := context.Background()
	name := "leaky"
	_, key, err := e.Auth.CreateMachine(ctx, authority.Operator(instanceID), authority.CreateMachineInput{Name: &name})
	if err != nil {
		t.Fatal(err)
	}
	mc, err := e.Auth.Authenticate(ctx, key.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	tok, err := e.Auth.CreateM2MToken(ctx, mc, authority.CreateM2MTokenInput{})
	if err != nil {
		t.Fatal(err)
	}
	return tok.Token
}

// verifies reports whether token is valid, verified with adminKey.
func verifies(t *testing.T, e *apitest.Env, adminKey, token string) bool {
	t.Helper()
	admin, err := e.Auth.Authenticate(context.Background(), adminKey)
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.Auth.Verify(context.Background(), admin, authority.VerifyInput{Token: token})
	if err != nil {
		t.Fatal(err)
	}
	return res.Valid
}

func leakEvents(t *testing.T, e *apitest.Env, instanceID string) int {
	t.Helper()
	events, _, err := e.Auth.ListAuditEvents(context.Background(), authority.Operator(instanceID), authority.ListAuditEventsInput{Action: "credential.leak"})
	if err != nil {
		t.Fatal(err)
	}
	return len(events)
}

func TestLeakReports(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		github, keys := newReporter(t)
		stranger, _ := newReporter(t)
		e := apitest.StartWith(t, s, apitest.Options{LeakReports: httpapi.LeakReportConfig{Keys: keys}})
		ctx := context.Background()
		if _, _, err := e.Auth.CreateWebhook(ctx, authority.Operator(e.InstanceID),
			authority.CreateWebhookInput{URL: "https://hooks.example.com/leaks", Events: []string{"m2m_token.leaked"}}); err != nil {
			t.Fatal(err)
		}
		other, otherKey := e.NewInstance(t, "other")
		leaked, theirs := mintToken(t, e, e.InstanceID), mintToken(t, e, other)
		bad := leaked[:len(leaked)-1] + "x"
		if bad == leaked {
			bad = leaked[:len(leaked)-1] + "y"
		}
		const where = "https://github.com/octocat/Hello-World/blob/1234/foo/bar.txt"
		body := fmt.Appendf(nil, `[{"token":%q,"type":"keyward_m2m_token","url":%q,"source":"content"},`+
			`{"token":%q,"type":"keyward_m2m_token","url":%q,"source":"commit"},`+
			`{"token":%q,"type":"keyward_m2m_token","url":"","source":"content","new_field":1}]`, leaked, where, theirs, where, bad)

		// Refused before anything is read: 401, nothing revoked.
		refused := map[string]http.Header{
			"no headers":           nil,
			"no signature":         leakHeaders(github.id, ""),
			"no key identifier":    leakHeaders("", github.sign(t, body)),
			"an unknown key id":    leakHeaders(stranger.id, stranger.sign(t, body)),
			"another key's sig":    leakHeaders(github.id, stranger.sign(t, body)),
			"another body's sig":   leakHeaders(github.id, github.sign(t, append([]byte(" "), body...))),
			"a signature not b64":  leakHeaders(github.id, "!!!"),
			"an empty signature":   leakHeaders(github.id, base64.StdEncoding.EncodeToString(nil)),
			"a truncated signatur": leakHeaders(github.id, github.sign(t, body)[:20]),
		}
		for name, h := range refused {
			resp := e.DoWith(t, http.MethodPost, "/v1/leaks", body, h)
			if resp.Status != http.StatusUnauthorized || !strings.Contains(string(resp.Body), `"unauthenticated"`) {
				t.Errorf("%s: %d %s, want 401 unauthenticated", name, resp.Status, resp.Body)
			}
		}
		if !verifies(t, e, e.AdminKey, leaked) || leakEvents(t, e, e.InstanceID) != 0 {
			t.Fatal("a refused report touched the credential")
		}
		_, queued, err := s.OutboxCounts(ctx)
		if err != nil {
			t.Fatal(err)
		}

		// Signed: the instance's token is revoked and answered
		// true_positive; the other instance's and the bad checksum are
		// false positives. The answer never repeats a token.
		resp := e.DoWith(t, http.MethodPost, "/v1/leaks", body, leakHeaders(github.id, github.sign(t, body)))
		if resp.Status != http.StatusOK {
			t.Fatalf("a signed report: %d %s", resp.Status, resp.Body)
		}
		for _, tok := range []string{leaked, theirs, bad} {
			if strings.Contains(string(resp.Body), tok) {
				t.Error("the answer repeats a reported token")
			}
		}
		var got []map[string]string
		if err := json.Unmarshal(resp.Body, &got); err != nil {
			t.Fatal(err)
		}
		want := []struct{ token, label string }{{leaked, "true_positive"}, {theirs, "false_positive"}, {bad, "false_positive"}}
		if len(got) != len(want) {
			t.Fatalf("answer %s", resp.Body)
		}
		for i, w := range want {
			sum := sha256.Sum256([]byte(w.token))
			g := got[i]
			if g["token_hash"] != hex.EncodeToString(sum[:]) || g["token_type"] != "keyward_m2m_token" || g["label"] != w.label || len(g) != 3 {
				t.Errorf("answer %d: %v, want label %s with the token's SHA-256", i, g, w.label)
			}
		}
		if verifies(t, e, e.AdminKey, leaked) {
			t.Error("the leaked token still verifies")
		}
		if !verifies(t, e, otherKey, theirs) || leakEvents(t, e, other) != 0 {
			t.Error("the other instance's token was touched")
		}
		events, _, err := e.Auth.ListAuditEvents(ctx, authority.Operator(e.InstanceID), authority.ListAuditEventsInput{Action: "credential.leak"})
		if err != nil || len(events) != 1 || !strings.Contains(string(events[0].Detail), where) || events[0].TargetKind != string(credential.KindM2MToken) {
			t.Errorf("audit: %+v, %v", events, err)
		}
		if _, after, err := s.OutboxCounts(ctx); err != nil || after-queued != 1 {
			t.Errorf("%d webhook deliveries queued, want 1 (m2m_token.leaked)", after-queued)
		}

		// Not a JSON array: 400 once the signature holds.
		junk := []byte(`{"token":"x"}`)
		if resp := e.DoWith(t, http.MethodPost, "/v1/leaks", junk, leakHeaders(github.id, github.sign(t, junk))); resp.Status != http.StatusBadRequest {
			t.Errorf("a signed non-array: %d %s", resp.Status, resp.Body)
		}
	})
}

// Without keys configured every report is refused.
func TestLeakReportsWithoutKeysRefuseEverything(t *testing.T) {
	e := apitest.Start(t, testkit.OpenSQLite(t))
	github, _ := newReporter(t)
	body := []byte(`[]`)
	if resp := e.DoWith(t, http.MethodPost, "/v1/leaks", body, leakHeaders(github.id, github.sign(t, body))); resp.Status != http.StatusUnauthorized {
		t.Errorf("%d %s, want 401", resp.Status, resp.Body)
	}
}

// A machine whose only secret key a leak report revoked has no secret to
// show: its GET is a 404 that says to rotate, not a 500, and a rotation
// issues the key it shows from then on.
func TestAMachineWhoseOnlyKeyLeakedShowsNoSecretUntilRotated(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		github, keys := newReporter(t)
		e := apitest.StartWith(t, s, apitest.Options{LeakReports: httpapi.LeakReportConfig{Keys: keys}})
		created := e.Do(t, http.MethodPost, "/clerk/v1/machines", e.AdminKey, `{"name":"leaky"}`).JSON(t)
		id, leaked := created["id"].(string), created["secret_key"].(string)
		body := fmt.Appendf(nil, `[{"token":%q,"type":"keyward_machine_secret_key","url":"","source":"content"}]`, leaked)
		if resp := e.DoWith(t, http.MethodPost, "/v1/leaks", body, leakHeaders(github.id, github.sign(t, body))); resp.Status != http.StatusOK {
			t.Fatalf("the leak report: %d %s", resp.Status, resp.Body)
		}
		resp := e.Do(t, http.MethodGet, "/clerk/v1/machines/"+id+"/secret_key", e.AdminKey, nil)
		if resp.Status != http.StatusNotFound || !strings.Contains(string(resp.Body), "rotate") || strings.Contains(string(resp.Body), leaked) {
			t.Fatalf("the secret key of a machine with none: %d %s; want a 404 that says to rotate", resp.Status, resp.Body)
		}
		rotated := e.Do(t, http.MethodPost, "/clerk/v1/machines/"+id+"/secret_key/rotate", e.AdminKey, `{"previous_token_ttl":0}`)
		if rotated.Status != http.StatusOK {
			t.Fatalf("rotate: %d %s", rotated.Status, rotated.Body)
		}
		fresh := rotated.JSON(t)["secret"]
		if got := e.Do(t, http.MethodGet, "/clerk/v1/machines/"+id+"/secret_key", e.AdminKey, nil).JSON(t)["secret"]; got != fresh || got == leaked {
			t.Fatalf("after the rotation the secret key is %v; want the rotated one", got)
		}
	})
}

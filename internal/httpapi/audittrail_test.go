package httpapi_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/auditlog"
	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/httpapi/apitest"
	"github.com/keyward/keyward/internal/metrics"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

// auditEvents lists the instance's audit events through the API.
func auditEvents(t *testing.T, e *apitest.Env, key, query string) []map[string]any {
	t.Helper()
	resp := e.Do(t, "GET", "/v1/audit_events?limit=200&"+query, key, nil)
	if resp.Status != http.StatusOK {
		t.Fatalf("list audit events: %d %s", resp.Status, resp.Body)
	}
	var out []map[string]any
	for _, ev := range resp.JSON(t)["data"].([]any) {
		out = append(out, ev.(map[string]any))
	}
	return out
}

// hostEvents lists the host-wide events (refusals whose secret matched no
// instance), which no instance's API shows.
func hostEvents(t *testing.T, e *apitest.Env, action string) []credential.AuditEvent {
	t.Helper()
	var out []credential.AuditEvent
	err := e.Store.View(context.Background(), func(tx authority.Tx) error {
		var err error
		out, _, err = tx.ListAuditEvents(context.Background(), authority.AuditFilter{InstanceID: "", Action: action})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// endMinute moves past the current aggregation minute and flushes.
func endMinute(t *testing.T, e *apitest.Env) {
	t.Helper()
	e.Clock.Advance(time.Minute)
	if err := e.Auth.FlushRefusals(context.Background(), false); err != nil {
		t.Fatal(err)
	}
}

func withAction(events []map[string]any, action string) []map[string]any {
	var out []map[string]any
	for _, ev := range events {
		if ev["action"] == action {
			out = append(out, ev)
		}
	}
	return out
}

func bogusKey(t *testing.T, kind credential.Kind) string {
	t.Helper()
	s, err := credential.Generate(kind)
	if err != nil {
		t.Fatal(err)
	}
	return s.Reveal()
}

func callerID(t *testing.T, e *apitest.Env, key string) string {
	t.Helper()
	return e.Do(t, "GET", "/v1/caller", key, nil).JSON(t)["credential_id"].(string)
}

func TestSecretReadsAreAudited(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := apitest.Start(t, store)
		create := e.Do(t, "POST", "/clerk/v1/machines", e.AdminKey, map[string]string{"name": "worker"})
		id := create.JSON(t)["id"].(string)
		read := e.Do(t, "GET", "/clerk/v1/machines/"+id+"/secret_key", e.AdminKey, nil)
		if read.Status != http.StatusOK {
			t.Fatalf("read secret key: %d %s", read.Status, read.Body)
		}
		secret := read.JSON(t)["secret"].(string)
		e.Remember(secret)

		events := withAction(auditEvents(t, e, e.AdminKey, "target_id="+id), "machine.secret_key.read")
		if len(events) != 1 {
			t.Fatalf("%d machine.secret_key.read events, want 1", len(events))
		}
		ev := events[0]
		if ev["credential_id"] != callerID(t, e, e.AdminKey) || ev["client_ip"] != "127.0.0.1" ||
			ev["request_id"] != read.Header.Get("X-Request-Id") || ev["count"] != float64(1) {
			t.Errorf("secret read event %v: want the admin key, 127.0.0.1, the request id and count 1", ev)
		}
		body := e.Do(t, "GET", "/v1/audit_events?limit=200", e.AdminKey, nil).Body
		if bytes.Contains(body, []byte(secret)) {
			t.Error("the audit log holds the secret it records the reading of")
		}
	})
}

func TestRefusedAuthenticationsAreAggregatedPerMinute(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := apitest.Start(t, store)
		ctx := context.Background()
		revokedName := "to be revoked"
		cred, revoked, err := e.Auth.CreateAdminKey(ctx, authority.Operator(e.InstanceID), authority.CreateAdminKeyInput{Name: &revokedName, Permissions: []string{"*"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Auth.RevokeAdminKey(ctx, authority.Operator(e.InstanceID), cred.ID); err != nil {
			t.Fatal(err)
		}
		for range 25 {
			if r := e.Do(t, "GET", "/v1/caller", revoked.Reveal(), nil); r.Status != http.StatusUnauthorized {
				t.Fatalf("revoked key: %d", r.Status)
			}
		}
		for range 40 {
			e.Do(t, "GET", "/clerk/v1/machines", bogusKey(t, credential.KindAdminKey), nil)
		}
		if got := withAction(auditEvents(t, e, e.AdminKey, ""), authority.ActionAuthRefused); len(got) != 0 {
			t.Fatalf("refusals written before their minute ended: %v", got)
		}
		endMinute(t, e)

		events := withAction(auditEvents(t, e, e.AdminKey, ""), authority.ActionAuthRefused)
		if len(events) != 1 {
			t.Fatalf("%d auth.refused events for 25 refusals of one key in one minute, want 1: %v", len(events), events)
		}
		ev := events[0]
		detail := ev["detail"].(map[string]any)
		if ev["count"] != float64(25) || ev["credential_id"] != cred.ID || ev["client_ip"] != "127.0.0.1" ||
			ev["outcome"] != "denied" || detail["reason"] != "revoked" {
			t.Errorf("aggregated event %v: want count 25, credential %s, 127.0.0.1, denied, reason revoked", ev, cred.ID)
		}
		// 40 distinct unknown secrets: one key (unknown, address, reason).
		host := hostEvents(t, e, authority.ActionAuthRefused)
		if len(host) != 1 || host[0].Count != 40 || host[0].CredentialID != authority.UnknownCredential {
			t.Fatalf("host-wide refusals %+v, want one event counting 40 unknown secrets", host)
		}

		// The next minute gets its own event.
		e.Do(t, "GET", "/v1/caller", revoked.Reveal(), nil)
		endMinute(t, e)
		if got := withAction(auditEvents(t, e, e.AdminKey, ""), authority.ActionAuthRefused); len(got) != 2 {
			t.Errorf("%d events after a refusal in the next minute, want 2", len(got))
		}
	})
}

func TestRefusedAuthorizationsAreAudited(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := apitest.Start(t, store)
		create := e.Do(t, "POST", "/clerk/v1/machines", e.AdminKey, map[string]string{"name": "worker"})
		machineID, machineKey := create.JSON(t)["id"].(string), create.JSON(t)["secret_key"].(string)
		e.Remember(machineKey)
		for range 3 {
			if r := e.Do(t, "GET", "/v1/audit_events", machineKey, nil); r.Status != http.StatusForbidden {
				t.Fatalf("machine key reading the audit log: %d", r.Status)
			}
		}
		endMinute(t, e)
		events := withAction(auditEvents(t, e, e.AdminKey, ""), authority.ActionAuthzRefused)
		if len(events) != 1 {
			t.Fatalf("%d authz.refused events, want 1", len(events))
		}
		ev := events[0]
		if ev["count"] != float64(3) || ev["credential_id"] != callerID(t, e, machineKey) ||
			ev["actor"].(map[string]any)["id"] != machineID || ev["detail"].(map[string]any)["reason"] != "not_allowed" {
			t.Errorf("authz refusal event %v", ev)
		}

		// An admin key lacking the permission is refused, and recorded, by
		// the one permission check.
		made := e.Do(t, "POST", "/v1/admin_keys", e.AdminKey, map[string]any{"name": "verifier", "permissions": []string{"verify"}})
		if made.Status != http.StatusCreated {
			t.Fatalf("create a verify key: %d %s", made.Status, made.Body)
		}
		verifyKey := made.JSON(t)["secret"].(string)
		e.Remember(verifyKey)
		if r := e.Do(t, "GET", "/v1/audit_events", verifyKey, nil); r.Status != http.StatusForbidden {
			t.Fatalf("a verify key reading the audit log: %d", r.Status)
		}
		endMinute(t, e)
		var found bool
		for _, ev := range withAction(auditEvents(t, e, e.AdminKey, ""), authority.ActionAuthzRefused) {
			found = found || (ev["credential_id"] == made.JSON(t)["id"] && ev["detail"].(map[string]any)["reason"] == "permission_required:audit:read")
		}
		if !found {
			t.Error("no authz.refused event naming the verify key and the audit:read permission it lacks")
		}
	})
}

// countingStore counts every transaction, to show a throttled request
// never reaches the store.
type countingStore struct {
	authority.Store
	calls atomic.Int64
}

func (s *countingStore) View(ctx context.Context, fn func(authority.Tx) error) error {
	s.calls.Add(1)
	return s.Store.View(ctx, fn)
}

func (s *countingStore) Update(ctx context.Context, fn func(authority.Tx) error) error {
	s.calls.Add(1)
	return s.Store.Update(ctx, fn)
}

func from(ip, key string) http.Header {
	h := http.Header{"X-Forwarded-For": {ip}}
	if key != "" {
		h.Set("Authorization", "Bearer "+key)
	}
	return h
}

func TestBruteForceThrottle(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		counting := &countingStore{Store: store}
		m := metrics.New()
		e := apitest.StartWith(t, counting, apitest.Options{
			AuthFailureLimit: 5, AuthFailureWindow: time.Minute, Metrics: m,
			TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		})
		const attacker, neighbour = "203.0.113.9", "203.0.113.10"
		for i := range 5 {
			if r := e.DoWith(t, "GET", "/v1/caller", nil, from(attacker, bogusKey(t, credential.KindAdminKey))); r.Status != http.StatusUnauthorized {
				t.Fatalf("failure %d: %d, want 401 within the budget", i+1, r.Status)
			}
		}
		r := e.DoWith(t, "GET", "/v1/caller", nil, from(attacker, bogusKey(t, credential.KindAdminKey)))
		if r.Status != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
			t.Fatalf("past the budget: %d Retry-After %q, want 429 with Retry-After", r.Status, r.Header.Get("Retry-After"))
		}
		if code := r.JSON(t)["error"].(map[string]any)["code"]; code != "rate_limited" {
			t.Errorf("native envelope code %v, want rate_limited", code)
		}

		// Every surface answers in its own envelope, before any store read.
		before := counting.calls.Load()
		surfaces := []struct {
			name, method, path string
			envelope           func(map[string]any) bool
		}{
			{"native", "GET", "/v1/instance", func(b map[string]any) bool { return b["error"] != nil }},
			{"clerk", "GET", "/clerk/v1/machines", func(b map[string]any) bool {
				errs, ok := b["errors"].([]any)
				return ok && errs[0].(map[string]any)["code"] == "too_many_requests"
			}},
			{"mist", "GET", "/mist/api/v1/orgs/7d0a2f6e-5f0e-4b4e-9a53-000000000001/apitokens", func(b map[string]any) bool { return b["detail"] != nil }},
			{"spatio", "GET", "/spatio/v1/tokens", func(b map[string]any) bool { return b["code"] == "rate_limited" }},
			{"freezer", "GET", "/freezer/v1/clients", func(b map[string]any) bool { return b["title"] == "Too Many Requests" }},
		}
		for _, s := range surfaces {
			r := e.DoWith(t, s.method, s.path, nil, from(attacker, bogusKey(t, credential.KindAdminKey)))
			if r.Status != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" || !s.envelope(r.JSON(t)) {
				t.Errorf("%s: %d Retry-After %q %s, want 429 with Retry-After in its envelope", s.name, r.Status, r.Header.Get("Retry-After"), r.Body)
			}
		}
		if r := e.DoWith(t, "GET", "/v1/caller", nil, from(attacker, e.AdminKey)); r.Status != http.StatusTooManyRequests {
			t.Errorf("a valid key from the throttled address: %d, want 429 (the address is over budget)", r.Status)
		}
		if got := counting.calls.Load(); got != before {
			t.Errorf("throttled requests made %d store calls, want none", got-before)
		}

		// Other addresses are unaffected.
		if r := e.DoWith(t, "GET", "/v1/caller", nil, from(neighbour, e.AdminKey)); r.Status != http.StatusOK {
			t.Errorf("a valid key from another address: %d, want 200", r.Status)
		}
		if r := e.DoWith(t, "GET", "/v1/caller", nil, from(neighbour, bogusKey(t, credential.KindAdminKey))); r.Status != http.StatusUnauthorized {
			t.Errorf("a bad key from another address: %d, want 401", r.Status)
		}

		// Metrics and the audit trail count it.
		scrape := string(e.Do(t, "GET", "/metrics", "", nil).Body)
		if !strings.Contains(scrape, `keyward_auth_failures_total{outcome="throttled"} 7`) ||
			!strings.Contains(scrape, `keyward_auth_failures_total{outcome="refused"} 6`) {
			t.Errorf("metrics lack the failure counts:\n%s", grepLines(scrape, "auth_failures"))
		}
		endMinute(t, e)
		throttled := hostEvents(t, e, authority.ActionThrottled)
		if len(throttled) != 1 || throttled[0].Count != 7 || throttled[0].ClientIP != attacker {
			t.Errorf("throttled events %+v, want one from %s counting 7", throttled, attacker)
		}

		// A new window restores the budget.
		e.Clock.Advance(time.Minute)
		if r := e.DoWith(t, "GET", "/v1/caller", nil, from(attacker, e.AdminKey)); r.Status != http.StatusOK {
			t.Errorf("a valid key from the address after its window: %d, want 200", r.Status)
		}
	})
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// breakableWriter fails every write once broken.
type breakableWriter struct{ broken atomic.Bool }

func (w *breakableWriter) Write(p []byte) (int, error) {
	if w.broken.Load() {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

func TestAuditLogWritesEveryEventAsAJSONLine(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		var buf apitest.Buffer
		e := apitest.StartWith(t, store, apitest.Options{AuditSink: auditlog.New(&buf)})
		create := e.Do(t, "POST", "/clerk/v1/machines", e.AdminKey, map[string]string{"name": "worker"})
		id, secret := create.JSON(t)["id"].(string), create.JSON(t)["secret_key"].(string)
		e.Remember(secret)
		e.Do(t, "GET", "/clerk/v1/machines/"+id+"/secret_key", e.AdminKey, nil)
		e.Do(t, "GET", "/v1/caller", bogusKey(t, credential.KindAdminKey), nil)
		endMinute(t, e)

		var actions []string
		for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
			var l auditlog.Line
			if err := json.Unmarshal([]byte(line), &l); err != nil {
				t.Fatalf("not a JSON line: %q: %v", line, err)
			}
			if len(l.Hash) != 64 || l.Seq < 1 {
				t.Errorf("line without its chain link: %q", line)
			}
			actions = append(actions, l.Action)
		}
		want := []string{"instance.create", "admin_key.create", "machine.create", "machine.secret_key.read", authority.ActionAuthRefused}
		if strings.Join(actions, ",") != strings.Join(want, ",") {
			t.Errorf("logged actions %v, want %v", actions, want)
		}
		for _, s := range e.Secrets() {
			if strings.Contains(buf.String(), s) {
				t.Error("a secret is in the audit log")
			}
		}
	})
}

func TestAuditLogRequired(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		for _, tc := range []struct {
			name     string
			required bool
			want     int
		}{
			{"required: a change whose line cannot be written fails and commits nothing", true, http.StatusServiceUnavailable},
			{"not required: the change goes ahead", false, http.StatusOK},
		} {
			t.Run(tc.name, func(t *testing.T) {
				w := &breakableWriter{}
				e := apitest.StartWith(t, store, apitest.Options{AuditSink: auditlog.New(w), AuditSinkRequired: tc.required})
				w.broken.Store(true)
				r := e.Do(t, "POST", "/clerk/v1/machines", e.AdminKey, map[string]string{"name": "worker"})
				if r.Status != tc.want {
					t.Fatalf("create machine: %d %s, want %d", r.Status, r.Body, tc.want)
				}
				list := e.Do(t, "GET", "/clerk/v1/machines", e.AdminKey, nil).JSON(t)
				wantTotal := float64(0)
				if !tc.required {
					wantTotal = 1
				}
				if list["total_count"] != wantTotal {
					t.Errorf("machines after the create: %v, want %v", list["total_count"], wantTotal)
				}
			})
		}
	})
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestAuditSearchByLeakedSecret(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := apitest.Start(t, store)
		create := e.Do(t, "POST", "/clerk/v1/machines", e.AdminKey, map[string]string{"name": "worker"})
		machineKey := create.JSON(t)["secret_key"].(string)
		e.Remember(machineKey)
		mint := e.Do(t, "POST", "/clerk/v1/m2m_tokens", machineKey, map[string]any{})
		if mint.Status != http.StatusCreated {
			t.Fatalf("mint: %d %s", mint.Status, mint.Body)
		}
		e.Remember(mint.JSON(t)["token"].(string))
		e.Do(t, "GET", "/v1/audit_events", machineKey, nil) // 403, audited
		endMinute(t, e)

		events := auditEvents(t, e, e.AdminKey, "credential_sha256="+sha256Hex(machineKey))
		var actions []string
		for _, ev := range events {
			actions = append(actions, ev["action"].(string))
		}
		if strings.Join(actions, ",") != authority.ActionAuthzRefused+",m2m_token.create" {
			t.Errorf("events of the leaked machine key: %v, want what it did (authz.refused, m2m_token.create)", actions)
		}
		if got := auditEvents(t, e, e.AdminKey, "credential_sha256="+sha256Hex("sk_live_not_a_credential")); len(got) != 0 {
			t.Errorf("an unknown secret's hash found %d events, want none", len(got))
		}
		_, otherAdmin := e.NewInstance(t, "other")
		if got := auditEvents(t, e, otherAdmin, "credential_sha256="+sha256Hex(machineKey)); len(got) != 0 {
			t.Errorf("another instance found %d events of this instance's credential, want none", len(got))
		}
		for _, bad := range []string{"xyz", sha256Hex("x")[:63], strings.ToUpper(sha256Hex("x")) + "00"} {
			r := e.Do(t, "GET", "/v1/audit_events?credential_sha256="+bad, e.AdminKey, nil)
			if r.Status != http.StatusBadRequest || r.JSON(t)["error"].(map[string]any)["param"] != "credential_sha256" {
				t.Errorf("credential_sha256=%s: %d %s, want 400 naming the parameter", bad, r.Status, r.Body)
			}
		}
	})
}

// keyward never stores a plain SHA-256 of a secret: only the keyed search
// digest.
func TestNoPlainSHA256OfASecretIsStored(t *testing.T) {
	store, path := testkit.OpenSQLiteAt(t)
	e := apitest.Start(t, store)
	create := e.Do(t, "POST", "/clerk/v1/machines", e.AdminKey, map[string]string{"name": "worker"})
	e.Remember(create.JSON(t)["secret_key"].(string))
	e.Do(t, "GET", "/clerk/v1/machines", create.JSON(t)["secret_key"].(string), nil)
	db, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if wal, err := os.ReadFile(path + "-wal"); err == nil {
		db = append(db, wal...)
	}
	for _, s := range e.Secrets() {
		sum := sha256.Sum256([]byte(s))
		if bytes.Contains(db, sum[:]) || bytes.Contains(db, []byte(hex.EncodeToString(sum[:]))) {
			t.Errorf("the database holds a plain SHA-256 of a secret")
		}
	}
}

// Two different credentials on Freezer (X-Auth-Token and a bearer token)
// are a refused authentication like any other: audited and counted
// against the address's budget.
func TestAmbiguousFreezerCredentialsAreAuditedRefusals(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := apitest.Start(t, store)
		h := http.Header{"X-Auth-Token": {bogusKey(t, credential.KindPAT)}, "Authorization": {"Bearer " + bogusKey(t, credential.KindPAT)}}
		for range 3 {
			if r := e.DoWith(t, "GET", "/freezer/v1/clients", nil, h); r.Status != http.StatusUnauthorized {
				t.Fatalf("two different credentials: %d %s", r.Status, r.Body)
			}
		}
		endMinute(t, e)
		host := hostEvents(t, e, authority.ActionAuthRefused)
		if len(host) != 1 || host[0].Count != 3 || !strings.Contains(string(host[0].Detail), "ambiguous_credential") {
			t.Fatalf("refusal events %+v, want one counting 3 ambiguous credentials", host)
		}
	})
}

// An actor ticket is a bearer secret too: unknown tickets are audited
// refusals and count against the address's budget, so tickets cannot be
// guessed at full speed.
func TestUnknownActorTicketsAreAuditedAndThrottled(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := apitest.StartWith(t, store, apitest.Options{AuthFailureLimit: 3, AuthFailureWindow: time.Minute})
		redeem := func() int {
			t.Helper()
			form := url.Values{
				"grant_type":         {"urn:ietf:params:oauth:grant-type:token-exchange"},
				"subject_token":      {bogusKey(t, credential.KindActorTicket)},
				"subject_token_type": {"urn:keyward:params:oauth:token-type:actor-ticket"},
			}
			resp, err := http.PostForm(e.URL+"/oauth/token", form)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		for i := range 3 {
			if status := redeem(); status != http.StatusBadRequest {
				t.Fatalf("unknown ticket %d: %d, want 400 invalid_grant", i+1, status)
			}
		}
		if status := redeem(); status != http.StatusTooManyRequests {
			t.Fatalf("the 4th unknown ticket from one address: %d, want 429", status)
		}
		endMinute(t, e)
		host := hostEvents(t, e, authority.ActionAuthRefused)
		if len(host) != 1 || host[0].Count != 3 || !strings.Contains(string(host[0].Detail), "unknown_ticket") {
			t.Fatalf("refusal events %+v, want one counting 3 unknown tickets", host)
		}
	})
}

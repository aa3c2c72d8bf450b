package mist_test

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/httpapi/apitest"
	"github.com/keyward/keyward/internal/httpapi/mist"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

// orgEnv is an organization with two sites, a sitegroup holding the first,
// and the org's token endpoint.
type orgEnv struct {
	*apitest.Env
	org, siteA, siteB, group string
}

func (o orgEnv) tokens() string { return "/mist/api/v1/orgs/" + o.org + "/apitokens" }

func newOrg(t *testing.T, e *apitest.Env, key, slug string) orgEnv {
	t.Helper()
	must := func(resp apitest.Response) map[string]any {
		t.Helper()
		if resp.Status != http.StatusCreated {
			t.Fatalf("setup: %d %s", resp.Status, resp.Body)
		}
		return resp.JSON(t)
	}
	o := orgEnv{Env: e}
	o.org = must(e.Do(t, "POST", "/v1/organizations", key, map[string]string{"slug": slug, "name": slug}))["id"].(string)
	o.siteA = must(e.Do(t, "POST", "/v1/organizations/"+o.org+"/sites", key, map[string]string{"name": "a"}))["id"].(string)
	o.siteB = must(e.Do(t, "POST", "/v1/organizations/"+o.org+"/sites", key, map[string]string{"name": "b"}))["id"].(string)
	o.group = must(e.Do(t, "POST", "/v1/organizations/"+o.org+"/sitegroups", key, map[string]any{"name": "g", "site_ids": []string{o.siteA}}))["id"].(string)
	return o
}

// do calls the Mist surface with `Authorization: Token <key>`, as Mist
// clients send it.
func (o orgEnv) do(t *testing.T, method, path, key string, body any) apitest.Response {
	t.Helper()
	return o.DoWith(t, method, path, body, http.Header{"Authorization": {"Token " + key}})
}

func (o orgEnv) create(t *testing.T, key string, body any) map[string]any {
	t.Helper()
	resp := o.do(t, "POST", o.tokens(), key, body)
	if resp.Status != http.StatusOK {
		t.Fatalf("create token: %d %s", resp.Status, resp.Body)
	}
	tok := resp.JSON(t)
	o.Remember(tok["key"].(string))
	return tok
}

func orgAdmin() []map[string]string { return []map[string]string{{"scope": "org", "role": "admin"}} }

var mask = regexp.MustCompile(`^otk_\.\.\.[0-9A-Za-z]{4}$`)

func TestOrgTokenLifecycleShowsTheKeyOnce(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		o := start(t, store)
		tok := o.create(t, o.AdminKey, map[string]any{
			"name":       "automation",
			"privileges": []map[string]string{{"scope": "org", "role": "read"}, {"scope": "site", "site_id": o.siteA, "role": "admin"}, {"scope": "sitegroup", "sitegroup_id": o.group, "role": "write"}},
			"src_ips":    []string{"::ffff:10.1.2.3", "192.0.2.0/24", "2001:db8::1"},
		})
		key := tok["key"].(string)
		if !strings.HasPrefix(key, "otk_") || tok["org_id"] != o.org || tok["name"] != "automation" || tok["created_time"] != float64(o.Clock.Now().Unix()) {
			t.Fatalf("create returned %v", tok)
		}
		if got := tok["src_ips"]; !cmp.Equal(got, []any{"10.1.2.3", "192.0.2.0/24", "2001:db8::1"}) {
			t.Fatalf("src_ips stored as %v, want them normalized", got)
		}
		id := tok["id"].(string)

		get := o.do(t, "GET", o.tokens()+"/"+id, o.AdminKey, nil)
		list := o.do(t, "GET", o.tokens(), o.AdminKey, nil)
		for _, resp := range []apitest.Response{get, list} {
			if resp.Status != 200 || strings.Contains(string(resp.Body), key) {
				t.Fatalf("a read shows the full key: %d %s", resp.Status, resp.Body)
			}
		}
		if m := get.JSON(t)["key"].(string); !mask.MatchString(m) || m != key[:4]+"..."+key[len(key)-4:] {
			t.Fatalf("masked key %q", m)
		}
		if !strings.HasPrefix(strings.TrimSpace(string(list.Body)), "[") {
			t.Fatalf("list must be a bare array: %s", list.Body)
		}

		// PUT changes name and privileges, answers 200 with no body, and
		// accepts the same src_ips back (normalized or not).
		put := o.do(t, "PUT", o.tokens()+"/"+id, o.AdminKey, map[string]any{
			"name": "renamed", "privileges": []map[string]string{{"scope": "org", "role": "write"}},
			"src_ips": []string{"10.1.2.3", "192.0.2.0/24", "2001:db8::1"}, "id": id, "key": "ignored",
		})
		if put.Status != 200 || len(put.Body) != 0 {
			t.Fatalf("PUT: %d %q", put.Status, put.Body)
		}
		got := o.do(t, "GET", o.tokens()+"/"+id, o.AdminKey, nil).JSON(t)
		if got["name"] != "renamed" || got["privileges"].([]any)[0].(map[string]any)["role"] != "write" {
			t.Fatalf("after PUT: %v", got)
		}

		del := o.do(t, "DELETE", o.tokens()+"/"+id, o.AdminKey, nil)
		if del.Status != 200 || len(del.Body) != 0 {
			t.Fatalf("DELETE: %d %q", del.Status, del.Body)
		}
		if resp := o.do(t, "GET", o.tokens()+"/"+id, o.AdminKey, nil); resp.Status != 404 || resp.JSON(t)["detail"] == nil {
			t.Fatalf("GET after delete: %d %s", resp.Status, resp.Body)
		}
		if code := verify(t, o.Env, key, "10.1.2.3"); code != "not_found" {
			t.Fatalf("a deleted token verifies as %s", code)
		}
		audit := o.Do(t, "GET", "/v1/audit_events?limit=200", o.AdminKey, nil)
		for name, text := range map[string]string{"the logs": o.Logs.String(), "the audit log": string(audit.Body)} {
			if strings.Contains(text, key) || strings.Contains(text, key[4:]) {
				t.Fatalf("the org token's key appears in %s", name)
			}
		}
	})
}

// start serves keyward over store and creates an organization in it.
func start(t *testing.T, store authority.Store) orgEnv {
	t.Helper()
	e := apitest.Start(t, store)
	return newOrg(t, e, e.AdminKey, "acme")
}

// another creates a second organization in the same instance.
func another(t *testing.T, o orgEnv) orgEnv {
	t.Helper()
	return newOrg(t, o.Env, o.AdminKey, "org-"+credential.NewHexID("")[:8])
}

// verify asks /v1/verify about a token presented from ip.
func verify(t *testing.T, e *apitest.Env, token, ip string, extra ...map[string]any) string {
	t.Helper()
	body := map[string]any{"token": token}
	if ip != "" {
		body["client_ip"] = ip
	}
	for _, x := range extra {
		for k, v := range x {
			body[k] = v
		}
	}
	resp := e.Do(t, "POST", "/v1/verify", e.AdminKey, body)
	if resp.Status != 200 {
		t.Fatalf("verify: %d %s", resp.Status, resp.Body)
	}
	return resp.JSON(t)["code"].(string)
}

func TestSourceIPAllowlist(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		o := start(t, store)
		key := o.create(t, o.AdminKey, map[string]any{"name": "ips", "privileges": orgAdmin(),
			"src_ips": []string{"203.0.113.7", "10.0.0.0/8", "2001:db8::/32"}})["key"].(string)
		for _, tc := range []struct {
			ip   string
			want string
		}{
			{"203.0.113.7", "valid"},
			{"203.0.113.8", "ip_not_allowed"},
			{"10.255.255.255", "valid"},
			{"11.0.0.0", "ip_not_allowed"},
			{"::ffff:10.1.2.3", "valid"},
			{"::ffff:203.0.113.7", "valid"},
			{"2001:db8:ffff::1", "valid"},
			{"2001:db9::1", "ip_not_allowed"},
			{"::1", "ip_not_allowed"},
			{"", "ip_not_allowed"},
		} {
			if got := verify(t, o.Env, key, tc.ip); got != tc.want {
				t.Errorf("from %q: %s, want %s", tc.ip, got, tc.want)
			}
		}
		open := o.create(t, o.AdminKey, map[string]any{"name": "open", "privileges": orgAdmin()})["key"].(string)
		if got := verify(t, o.Env, open, ""); got != "valid" {
			t.Errorf("a token without src_ips from anywhere: %s", got)
		}
	})
}

func TestSpoofedForwardedForChangesNothing(t *testing.T) {
	store := testkit.OpenSQLite(t)
	untrusting := start(t, store)
	key := untrusting.create(t, untrusting.AdminKey, map[string]any{"name": "office", "privileges": orgAdmin(), "src_ips": []string{"198.51.100.0/24"}})["key"].(string)
	spoof := func(o orgEnv, xff string) int {
		return o.DoWith(t, "GET", o.tokens(), nil, http.Header{"Authorization": {"Token " + key}, "X-Forwarded-For": {xff}}).Status
	}
	if got := spoof(untrusting, "198.51.100.9"); got != http.StatusForbidden {
		t.Fatalf("a spoofed X-Forwarded-For from an untrusted peer let the token in: %d", got)
	}

	// The same store behind a trusted proxy (this test's loopback peer):
	// now the forwarded address counts, read from the right.
	trusting := untrusting
	trusting.Env = apitest.StartWith(t, store, apitest.Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	trusting.Env.AdminKey = untrusting.AdminKey
	if got := spoof(trusting, "198.51.100.9"); got != http.StatusOK {
		t.Fatalf("a forwarded allowed address from a trusted proxy: %d", got)
	}
	if got := spoof(trusting, "198.51.100.9, 6.6.6.6"); got != http.StatusForbidden {
		t.Fatalf("the rightmost untrusted hop must decide: %d", got)
	}
}

func TestHourlyLimitIsExactAndResetsOnTheHour(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		o := start(t, store)
		o.Clock.Set(time.Date(2026, 3, 4, 5, 0, 0, 0, time.UTC))
		key := o.create(t, o.AdminKey, map[string]any{"name": "busy", "privileges": orgAdmin()})["key"].(string)

		var admitted, refused atomic.Int64
		var wg sync.WaitGroup
		calls := make(chan struct{}, 5000)
		for range 5000 {
			calls <- struct{}{}
		}
		close(calls)
		ctx := context.Background()
		admin, err := o.Auth.Authenticate(ctx, o.AdminKey)
		if err != nil {
			t.Fatal(err)
		}
		for range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range calls {
					r, err := o.Auth.Verify(ctx, admin, authority.VerifyInput{Token: key})
					switch {
					case err != nil:
						t.Error(err)
					case r.Valid:
						admitted.Add(1)
					default:
						refused.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		if admitted.Load() != 5000 || refused.Load() != 0 {
			t.Fatalf("5000 calls over 32 goroutines: %d admitted, %d refused", admitted.Load(), refused.Load())
		}
		o.Clock.Advance(59*time.Minute + 59*time.Second)
		resp := o.Do(t, "POST", "/v1/verify", o.AdminKey, map[string]any{"token": key})
		body := resp.JSON(t)
		if body["code"] != "rate_limited" || body["ratelimit"].(map[string]any)["reset_at"] != "2026-03-04T06:00:00Z" {
			t.Fatalf("the 5001st call of the hour: %s", resp.Body)
		}
		mistResp := o.do(t, "GET", o.tokens(), key, nil)
		if mistResp.Status != 429 || mistResp.JSON(t)["detail"] != mist.RateLimitedDetail ||
			mistResp.Header.Get("Retry-After") != "1" || mistResp.Header.Get("X-RateLimit-Remaining") != "0" ||
			mistResp.Header.Get("X-RateLimit-Limit") != "5000" || mistResp.Header.Get("X-RateLimit-Reset") != fmt.Sprint(time.Date(2026, 3, 4, 6, 0, 0, 0, time.UTC).Unix()) {
			t.Fatalf("Mist at the limit: %d %s %v", mistResp.Status, mistResp.Body, mistResp.Header)
		}

		o.Clock.Advance(time.Second) // 06:00:00, a new clock hour
		if got := verify(t, o.Env, key, ""); got != "valid" {
			t.Fatalf("the first call of the next hour: %s", got)
		}
		next := o.do(t, "GET", o.tokens(), key, nil)
		if next.Status != 200 || next.Header.Get("X-RateLimit-Remaining") != "4998" {
			t.Fatalf("Mist in the next hour: %d, remaining %s", next.Status, next.Header.Get("X-RateLimit-Remaining"))
		}
	})
}

func TestTokensCannotEscalate(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		o := start(t, store)
		orgAdminKey := o.create(t, o.AdminKey, map[string]any{"name": "root", "privileges": orgAdmin()})["key"].(string)
		siteAdmin := o.create(t, o.AdminKey, map[string]any{"name": "site", "privileges": []map[string]string{{"scope": "site", "site_id": o.siteA, "role": "admin"}}})
		reader := o.create(t, o.AdminKey, map[string]any{"name": "reader", "privileges": []map[string]string{{"scope": "org", "role": "read"}}})
		victim := o.create(t, o.AdminKey, map[string]any{"name": "victim", "privileges": []map[string]string{{"scope": "org", "role": "read"}}})
		before := tokensState(t, o)

		for _, tc := range []struct {
			name, key, method, path string
			body                    any
		}{
			{"a site admin creating an org token", siteAdmin["key"].(string), "POST", o.tokens(), map[string]any{"name": "x", "privileges": orgAdmin()}},
			{"a site admin creating a token for its own site", siteAdmin["key"].(string), "POST", o.tokens(), map[string]any{"name": "x", "privileges": []map[string]string{{"scope": "site", "site_id": o.siteA, "role": "read"}}}},
			{"a reader granting write", reader["key"].(string), "POST", o.tokens(), map[string]any{"name": "x", "privileges": []map[string]string{{"scope": "org", "role": "write"}}}},
			{"a reader listing tokens", reader["key"].(string), "GET", o.tokens(), nil},
			{"a reader raising another token", reader["key"].(string), "PUT", o.tokens() + "/" + victim["id"].(string), map[string]any{"privileges": orgAdmin()}},
			{"a reader deleting a token", reader["key"].(string), "DELETE", o.tokens() + "/" + victim["id"].(string), nil},
			{"a site admin raising itself", siteAdmin["key"].(string), "PUT", o.tokens() + "/" + siteAdmin["id"].(string), map[string]any{"privileges": orgAdmin()}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				resp := o.do(t, tc.method, tc.path, tc.key, tc.body)
				if resp.Status != http.StatusForbidden || resp.JSON(t)["detail"] != "You do not have permission to perform this action." {
					t.Fatalf("%d %s, want 403", resp.Status, resp.Body)
				}
			})
		}
		if diff := cmp.Diff(before, tokensState(t, o)); diff != "" {
			t.Fatalf("refused escalations changed tokens:\n%s", diff)
		}
		// An org admin token may manage tokens, within its own privileges.
		made := o.create(t, orgAdminKey, map[string]any{"name": "delegated", "privileges": []map[string]string{{"scope": "sitegroup", "sitegroup_id": o.group, "role": "write"}}})
		if made["created_by"] == "" {
			t.Fatal("created_by must name the creating token")
		}
	})
}

// tokensState is every org token row of the org, as the store holds it.
func tokensState(t *testing.T, o orgEnv) []credential.Credential {
	t.Helper()
	var out []credential.Credential
	err := o.Store.View(context.Background(), func(tx authority.Tx) error {
		var err error
		out, _, err = tx.PageCredentials(context.Background(), authority.CredentialQuery{InstanceID: o.InstanceID, Kind: credential.KindOrgToken, Subject: o.org})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range out {
		out[i].LastUsedAt = time.Time{} // reads move it; it is not what refusals must keep
	}
	return out
}

func TestAnotherOrgsOrInstancesTokenIsNotFound(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		a := start(t, store)
		b := another(t, a)
		tokA := a.create(t, a.AdminKey, map[string]any{"name": "a", "privileges": orgAdmin()})
		tokB := b.create(t, b.AdminKey, map[string]any{"name": "b", "privileges": orgAdmin()})
		_, otherAdmin := a.NewInstance(t, "other")
		for _, tc := range []struct {
			name, key, path string
		}{
			{"org A's token id under org B", a.AdminKey, b.tokens() + "/" + tokA["id"].(string)},
			{"org A's token reading org B", tokA["key"].(string), b.tokens()},
			{"org A's token reading org B's token", tokA["key"].(string), b.tokens() + "/" + tokB["id"].(string)},
			{"another instance's admin key", otherAdmin, a.tokens() + "/" + tokA["id"].(string)},
			{"another instance's admin key listing", otherAdmin, a.tokens()},
			{"a malformed org id", a.AdminKey, "/mist/api/v1/orgs/not-a-uuid/apitokens"},
		} {
			for _, method := range []string{"GET", "DELETE"} {
				resp := a.do(t, method, tc.path, tc.key, nil)
				if resp.Status != http.StatusNotFound {
					t.Errorf("%s (%s): %d %s, want 404", tc.name, method, resp.Status, resp.Body)
				}
			}
		}
		if got := verify(t, a.Env, tokA["key"].(string), ""); got != "valid" {
			t.Fatalf("org A's token was harmed: %s", got)
		}
	})
}

func TestBadInputGets400AndWritesNothing(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		o := start(t, store)
		other := another(t, o)
		existing := o.create(t, o.AdminKey, map[string]any{"name": "keep", "privileges": orgAdmin(), "src_ips": []string{"10.0.0.0/8"}})
		eleven := make([]map[string]string, 11)
		for i := range eleven {
			eleven[i] = map[string]string{"scope": "site", "site_id": o.siteA, "role": []string{"admin", "write", "read", "helpdesk", "installer"}[i%5]}
		}
		elevenIPs := make([]string, 11)
		for i := range elevenIPs {
			elevenIPs[i] = fmt.Sprintf("10.0.0.%d", i+1)
		}
		before := tokensState(t, o)
		for _, tc := range []struct {
			name   string
			method string
			path   string
			body   any
		}{
			{"no name", "POST", "", map[string]any{"privileges": orgAdmin()}},
			{"no privileges", "POST", "", map[string]any{"name": "x"}},
			{"a bad scope", "POST", "", map[string]any{"name": "x", "privileges": []map[string]string{{"scope": "msp", "role": "admin"}}}},
			{"a bad role", "POST", "", map[string]any{"name": "x", "privileges": []map[string]string{{"scope": "org", "role": "root"}}}},
			{"site scope without site_id", "POST", "", map[string]any{"name": "x", "privileges": []map[string]string{{"scope": "site", "role": "read"}}}},
			{"sitegroup scope without sitegroup_id", "POST", "", map[string]any{"name": "x", "privileges": []map[string]string{{"scope": "sitegroup", "role": "read"}}}},
			{"a site of another org", "POST", "", map[string]any{"name": "x", "privileges": []map[string]string{{"scope": "site", "site_id": other.siteA, "role": "read"}}}},
			{"a sitegroup of another org", "POST", "", map[string]any{"name": "x", "privileges": []map[string]string{{"scope": "sitegroup", "sitegroup_id": other.group, "role": "read"}}}},
			{"11 privileges", "POST", "", map[string]any{"name": "x", "privileges": eleven}},
			{"duplicate privileges", "POST", "", map[string]any{"name": "x", "privileges": []map[string]string{{"scope": "org", "role": "read"}, {"scope": "org", "role": "read"}}}},
			{"11 src_ips", "POST", "", map[string]any{"name": "x", "privileges": orgAdmin(), "src_ips": elevenIPs}},
			{"a bad CIDR", "POST", "", map[string]any{"name": "x", "privileges": orgAdmin(), "src_ips": []string{"10.0.0.0/33"}}},
			{"a CIDR with host bits", "POST", "", map[string]any{"name": "x", "privileges": orgAdmin(), "src_ips": []string{"10.0.0.1/8"}}},
			{"not an IP", "POST", "", map[string]any{"name": "x", "privileges": orgAdmin(), "src_ips": []string{"example.com"}}},
			{"malformed JSON", "POST", "", `{"name":`},
			{"privileges not an array", "POST", "", `{"name":"x","privileges":"admin"}`},
			{"an unknown field", "POST", "", map[string]any{"name": "x", "privileges": orgAdmin(), "expires": 5}},
			{"changing src_ips", "PUT", "/" + existing["id"].(string), map[string]any{"src_ips": []string{"10.0.0.0/16"}}},
			{"clearing src_ips", "PUT", "/" + existing["id"].(string), map[string]any{"src_ips": []string{}}},
			{"a bad role on update", "PUT", "/" + existing["id"].(string), map[string]any{"privileges": []map[string]string{{"scope": "org", "role": "god"}}}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				resp := o.do(t, tc.method, o.tokens()+tc.path, o.AdminKey, tc.body)
				if resp.Status != http.StatusBadRequest {
					t.Fatalf("%d %s, want 400", resp.Status, resp.Body)
				}
				if d, _ := resp.JSON(t)["detail"].(string); d == "" {
					t.Fatalf("no {detail}: %s", resp.Body)
				}
			})
		}
		if diff := cmp.Diff(before, tokensState(t, o)); diff != "" {
			t.Fatalf("bad input changed tokens:\n%s", diff)
		}
	})
}

func TestRequiredPrivilegeFollowsTheHierarchy(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		o := start(t, store)
		groupWriter := o.create(t, o.AdminKey, map[string]any{"name": "gw", "privileges": []map[string]string{{"scope": "sitegroup", "sitegroup_id": o.group, "role": "write"}}})["key"].(string)
		orgReader := o.create(t, o.AdminKey, map[string]any{"name": "or", "privileges": []map[string]string{{"scope": "org", "role": "read"}}})["key"].(string)
		req := func(scope, role, id string) map[string]any {
			p := map[string]any{"scope": scope, "role": role}
			switch scope {
			case "site":
				p["site_id"] = id
			case "sitegroup":
				p["sitegroup_id"] = id
			}
			return map[string]any{"required_privilege": p}
		}
		for _, tc := range []struct {
			name, key string
			need      map[string]any
			want      string
		}{
			{"a sitegroup writer reading a site in the group", groupWriter, req("site", "read", o.siteA), "valid"},
			{"a sitegroup writer writing a site in the group", groupWriter, req("site", "write", o.siteA), "valid"},
			{"a sitegroup writer on a site outside the group", groupWriter, req("site", "read", o.siteB), "insufficient_scope"},
			{"a sitegroup writer needing admin", groupWriter, req("site", "admin", o.siteA), "insufficient_scope"},
			{"a sitegroup writer needing org read", groupWriter, req("org", "read", ""), "insufficient_scope"},
			{"an org reader reading any site", orgReader, req("site", "read", o.siteB), "valid"},
			{"an org reader writing", orgReader, req("sitegroup", "write", o.group), "insufficient_scope"},
		} {
			if got := verify(t, o.Env, tc.key, "", tc.need); got != tc.want {
				t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
			}
		}
		// Moving siteB into the group extends the writer's reach at once.
		resp := o.Do(t, "PATCH", "/v1/organizations/"+o.org+"/sitegroups/"+o.group, o.AdminKey, map[string]any{"site_ids": []string{o.siteA, o.siteB}})
		if resp.Status != 200 {
			t.Fatalf("update sitegroup: %d %s", resp.Status, resp.Body)
		}
		if got := verify(t, o.Env, groupWriter, "", req("site", "write", o.siteB)); got != "valid" {
			t.Fatalf("after adding siteB to the group: %s", got)
		}
	})
}

func TestDeletingAnOrganizationRevokesItsTokens(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		o := start(t, store)
		key := o.create(t, o.AdminKey, map[string]any{"name": "x", "privileges": orgAdmin()})["key"].(string)
		if got := verify(t, o.Env, key, ""); got != "valid" {
			t.Fatal(got)
		}
		if resp := o.Do(t, "DELETE", "/v1/organizations/"+o.org, o.AdminKey, nil); resp.Status != http.StatusNoContent {
			t.Fatalf("delete org: %d %s", resp.Status, resp.Body)
		}
		if got := verify(t, o.Env, key, ""); got != "revoked" {
			t.Fatalf("a deleted org's token: %s, want revoked", got)
		}
		if resp := o.do(t, "GET", o.tokens(), key, nil); resp.Status != http.StatusUnauthorized {
			t.Fatalf("a deleted org's token on Mist: %d", resp.Status)
		}
	})
}

// Mist's hourly limit is one named limit among the token's own: a call is
// counted against both or neither, on the Mist surface and at /v1/verify,
// and the Mist headers keep their meaning.
func TestHourlyLimitIsTakenWithTheTokensNamedLimitsAllOrNothing(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		o := start(t, store)
		o.Clock.Set(time.Date(2026, 3, 4, 5, 0, 0, 0, time.UTC))
		if r := o.Do(t, "PATCH", "/v1/instance", o.AdminKey, map[string]any{"org_token_hourly_limit": 4}); r.Status != http.StatusOK {
			t.Fatalf("hourly limit: %d %s", r.Status, r.Body)
		}
		tok := o.create(t, o.AdminKey, map[string]any{"name": "metered", "privileges": orgAdmin()})
		key := tok["key"].(string)
		if r := o.Do(t, "PATCH", "/v1/credentials/"+tok["id"].(string)+"/controls", o.AdminKey, map[string]any{
			"ratelimits": []map[string]any{{"name": "burst", "limit": 2, "duration": 60000, "algorithm": "fixed", "auto_apply": true}},
		}); r.Status != http.StatusOK {
			t.Fatalf("controls: %d %s", r.Status, r.Body)
		}
		call := func(wantStatus int, wantRemaining string) {
			t.Helper()
			r := o.do(t, "GET", o.tokens(), key, nil)
			if r.Status != wantStatus || r.Header.Get("X-RateLimit-Remaining") != wantRemaining || r.Header.Get("X-RateLimit-Limit") != "4" {
				t.Fatalf("want %d with %s left of the hour: %d %s %v", wantStatus, wantRemaining, r.Status, r.Body, r.Header)
			}
			if wantStatus == http.StatusTooManyRequests && r.JSON(t)["detail"] != mist.RateLimitedDetail {
				t.Fatalf("refusal body: %s", r.Body)
			}
		}
		call(http.StatusOK, "3")
		call(http.StatusOK, "2")
		call(http.StatusTooManyRequests, "2") // burst refuses: the hour keeps its two
		if r := o.do(t, "GET", o.tokens(), key, nil); r.Header.Get("Retry-After") != "60" {
			t.Fatalf("refused by burst: Retry-After %q, want burst's 60 s, not the hour's", r.Header.Get("Retry-After"))
		}

		v := o.Do(t, "POST", "/v1/verify", o.AdminKey, map[string]any{"token": key}).JSON(t)
		burst := v["ratelimits"].([]any)[0].(map[string]any)
		if v["code"] != "rate_limited" || v["ratelimit"].(map[string]any)["remaining"] != float64(2) || burst["name"] != "burst" || burst["remaining"] != float64(0) {
			t.Fatalf("verify refused by burst: %v", v)
		}

		o.Clock.Advance(time.Minute) // burst's next window; the same hour
		call(http.StatusOK, "1")
		if v := o.Do(t, "POST", "/v1/verify", o.AdminKey, map[string]any{"token": key}).JSON(t); v["valid"] != true || v["ratelimit"].(map[string]any)["remaining"] != float64(0) {
			t.Fatalf("verify takes from both: %v", v)
		}
		o.Clock.Advance(time.Minute)
		call(http.StatusTooManyRequests, "0") // the hour refuses: burst keeps its two
		if r := o.do(t, "GET", o.tokens(), key, nil); r.Header.Get("Retry-After") != "3480" {
			t.Fatalf("refused by the hour at 05:02: Retry-After %q, want 3480", r.Header.Get("Retry-After"))
		}
		v = o.Do(t, "POST", "/v1/verify", o.AdminKey, map[string]any{"token": key}).JSON(t)
		if burst := v["ratelimits"].([]any)[0].(map[string]any); v["code"] != "rate_limited" || burst["remaining"] != float64(2) {
			t.Fatalf("refused by the hour, burst untouched: %v", v)
		}

		// Out of credits: 429 with Mist's text, and no Retry-After (waiting
		// brings no credits back).
		o.Clock.Advance(time.Hour)
		if r := o.Do(t, "PATCH", "/v1/credentials/"+tok["id"].(string)+"/controls", o.AdminKey, map[string]any{"credits": map[string]any{"remaining": 0}}); r.Status != http.StatusOK {
			t.Fatalf("credits: %d %s", r.Status, r.Body)
		}
		r := o.do(t, "GET", o.tokens(), key, nil)
		if r.Status != http.StatusTooManyRequests || r.JSON(t)["detail"] != mist.RateLimitedDetail || r.Header.Get("Retry-After") != "" {
			t.Fatalf("out of credits on Mist: %d %s %v", r.Status, r.Body, r.Header)
		}
	})
}

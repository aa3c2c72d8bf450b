package httpapi_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/httpapi/apitest"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

// GET /v1/analytics/verifications answers the flushed counts of the
// caller's instance, bucketed, and names the parameter it refuses.
func TestAnalyticsVerifications(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		e := apitest.Start(t, s)
		created := e.Do(t, "POST", "/v1/api_keys", e.AdminKey, map[string]any{"name": "counted", "subject": permAPIKeySubject})
		key := created.JSON(t)
		id, _ := key["id"].(string)
		secret, _ := key["secret"].(string)
		if id == "" || secret == "" {
			t.Fatalf("create an API key: %d %s", created.Status, created.Body)
		}
		e.Remember(secret)
		for range 2 {
			if r := e.Do(t, "POST", "/v1/verify", e.AdminKey, map[string]any{"token": secret}); r.Status != http.StatusOK {
				t.Fatalf("verify: %d %s", r.Status, r.Body)
			}
		}
		e.Do(t, "POST", "/v1/verify", e.AdminKey, map[string]any{"token": "ak_unknown"})
		if err := e.Auth.FlushVerificationCounts(context.Background()); err != nil {
			t.Fatal(err)
		}
		hour := e.Clock.Now().UTC().Truncate(time.Hour).Format(time.RFC3339)

		r := e.Do(t, "GET", "/v1/analytics/verifications?credential_id="+id, e.AdminKey, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		body := r.JSON(t)
		data := body["data"].([]any)
		if body["granularity"] != "hour" || len(data) != 1 {
			t.Fatalf("series: %s", r.Body)
		}
		if b := data[0].(map[string]any); b["start"] != hour || b["outcome"] != "valid" || b["count"] != float64(2) {
			t.Fatalf("bucket: %v, want %s valid 2", b, hour)
		}
		all := e.Do(t, "GET", "/v1/analytics/verifications?outcome=not_found&granularity=day", e.AdminKey, nil).JSON(t)
		if d := all["data"].([]any); len(d) != 1 || d[0].(map[string]any)["count"] != float64(1) {
			t.Fatalf("the instance's not_found: %v", all)
		}

		// Another tenant asking for this credential gets nothing.
		_, otherKey := e.NewInstance(t, "other")
		for _, q := range []string{"?credential_id=" + id, ""} {
			other := e.Do(t, "GET", "/v1/analytics/verifications"+q, otherKey, nil)
			if other.Status != http.StatusOK || len(other.JSON(t)["data"].([]any)) != 0 {
				t.Fatalf("another instance %q: %d %s", q, other.Status, other.Body)
			}
		}

		from := url.QueryEscape(e.Clock.Now().Add(-48 * time.Hour).Format(time.RFC3339))
		for q, param := range map[string]string{
			"granularity=week":                "granularity",
			"outcome=fine":                    "outcome",
			"from=yesterday":                  "from",
			"to=2026-13-01T00:00:00Z":         "to",
			"granularity=minute&from=" + from: "from",
		} {
			r := e.Do(t, "GET", "/v1/analytics/verifications?"+q, e.AdminKey, nil)
			if r.Status != http.StatusBadRequest || r.JSON(t)["error"].(map[string]any)["param"] != param {
				t.Errorf("%s: %d %s, want a 400 naming %s", q, r.Status, r.Body, param)
			}
		}
	})
}

// ?identity= sums the counts of every credential linked to the identity,
// per bucket and outcome, and no other credential's; another tenant's or
// an unknown identity is a 404, and identity with credential_id a 400.
func TestAnalyticsByIdentity(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		e := apitest.Start(t, s)
		identity := func(external string) string {
			return mustDo(t, e, "POST", "/v1/identities", e.AdminKey, map[string]any{"external_id": external}, http.StatusCreated)["id"].(string)
		}
		acme, globex, empty := identity("acme"), identity("globex"), identity("nobody")
		key := func(name, ident string) string {
			k := mustDo(t, e, "POST", "/v1/api_keys", e.AdminKey, map[string]any{"name": name, "subject": permAPIKeySubject, "identity_id": ident}, http.StatusCreated)
			e.Remember(k["secret"].(string))
			return k["secret"].(string)
		}
		verify := func(secret string, times int, body map[string]any) {
			for range times {
				body["token"] = secret
				if r := e.Do(t, "POST", "/v1/verify", e.AdminKey, body); r.Status != http.StatusOK {
					t.Fatalf("verify: %d %s", r.Status, r.Body)
				}
			}
		}
		// acme: two keys, 2 + 1 valid and one refused for its permissions;
		// globex: one key, 4 valid.
		a1, a2, g1 := key("acme one", acme), key("acme two", acme), key("globex one", globex)
		verify(a1, 2, map[string]any{})
		verify(a2, 1, map[string]any{})
		verify(a2, 1, map[string]any{"permissions": "billing.read"})
		verify(g1, 4, map[string]any{})
		if err := e.Auth.FlushVerificationCounts(context.Background()); err != nil {
			t.Fatal(err)
		}
		hour := e.Clock.Now().UTC().Truncate(time.Hour).Format(time.RFC3339)
		_, otherKey := e.NewInstance(t, "other")

		type bucket struct {
			outcome string
			count   float64
		}
		for _, c := range []struct {
			name, q, key string
			want         []bucket
		}{
			{"sums_the_identitys_credentials", "identity=" + acme, e.AdminKey, []bucket{{"insufficient_permissions", 1}, {"valid", 3}}},
			{"excludes_another_identitys_credential", "identity=" + globex, e.AdminKey, []bucket{{"valid", 4}}},
			{"filters_by_outcome", "identity=" + acme + "&outcome=valid", e.AdminKey, []bucket{{"valid", 3}}},
			{"identity_without_credentials_counts_nothing", "identity=" + empty, e.AdminKey, nil},
		} {
			t.Run(c.name, func(t *testing.T) {
				r := mustDo(t, e, "GET", "/v1/analytics/verifications?"+c.q, c.key, nil, http.StatusOK)
				var got []bucket
				for _, b := range r["data"].([]any) {
					m := b.(map[string]any)
					if m["start"] != hour {
						t.Errorf("bucket start %v, want %s", m["start"], hour)
					}
					got = append(got, bucket{m["outcome"].(string), m["count"].(float64)})
				}
				if !slices.Equal(got, c.want) {
					t.Fatalf("?%s: %v, want %v", c.q, got, c.want)
				}
			})
		}
		for _, c := range []struct {
			name, q, key, param string
			status              int
		}{
			{"another_tenants_identity_is_404", "identity=" + acme, otherKey, "identity", http.StatusNotFound},
			{"unknown_identity_is_404", "identity=idt_0000000000000000000000000", e.AdminKey, "identity", http.StatusNotFound},
			{"identity_with_credential_id_is_400", "identity=" + acme + "&credential_id=ak_x", e.AdminKey, "identity", http.StatusBadRequest},
		} {
			t.Run(c.name, func(t *testing.T) {
				r := e.Do(t, "GET", "/v1/analytics/verifications?"+c.q, c.key, nil)
				errObj, _ := r.JSON(t)["error"].(map[string]any)
				if r.Status != c.status || errObj["param"] != c.param {
					t.Fatalf("?%s: %d %s, want %d naming %s", c.q, r.Status, r.Body, c.status, c.param)
				}
			})
		}
	})
}

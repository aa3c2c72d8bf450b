package httpapi_test

import (
	"context"
	"net/http"
	"net/url"
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

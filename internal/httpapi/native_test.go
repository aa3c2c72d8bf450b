package httpapi_test

import (
	"net/http"
	"testing"

	"github.com/keyward/keyward/internal/httpapi/apitest"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

func TestAuditEventsRecordEveryMutation(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := apitest.Start(t, store)
		create := e.Do(t, "POST", "/clerk/v1/machines", e.AdminKey, map[string]string{"name": "worker"})
		id := create.JSON(t)["id"].(string)
		e.Remember(create.JSON(t)["secret_key"].(string))
		e.Do(t, "PATCH", "/clerk/v1/machines/"+id, e.AdminKey, map[string]string{"name": "renamed"})
		e.Do(t, "POST", "/clerk/v1/machines/"+id+"/secret_key/rotate", e.AdminKey, map[string]int{"previous_token_ttl": 0})
		e.Do(t, "DELETE", "/clerk/v1/machines/"+id, e.AdminKey, nil)
		e.Do(t, "PATCH", "/clerk/v1/machines/"+id, e.AdminKey, map[string]string{"name": "gone"}) // 404: no event

		resp := e.Do(t, "GET", "/v1/audit_events?target_id="+id, e.AdminKey, nil)
		if resp.Status != http.StatusOK {
			t.Fatalf("list: %d %s", resp.Status, resp.Body)
		}
		body := resp.JSON(t)
		var actions []string
		for _, ev := range body["data"].([]any) {
			ev := ev.(map[string]any)
			actions = append(actions, ev["action"].(string))
			if ev["outcome"] != "success" || ev["actor"].(map[string]any)["kind"] != "admin_key" || ev["target"].(map[string]any)["id"] != id {
				t.Errorf("event %v", ev)
			}
		}
		want := []string{"machine.delete", "machine.secret_key.rotate", "machine.update", "machine.create"}
		if len(actions) != len(want) || body["total_count"] != float64(len(want)) {
			t.Fatalf("actions %v, want newest first %v", actions, want)
		}
		for i := range want {
			if actions[i] != want[i] {
				t.Fatalf("actions %v, want newest first %v", actions, want)
			}
		}
		first := body["data"].([]any)[3].(map[string]any)
		if first["request_id"] != create.Header.Get("X-Request-Id") {
			t.Errorf("create event request_id %v, want the create response's X-Request-Id %s", first["request_id"], create.Header.Get("X-Request-Id"))
		}

		byAction := e.Do(t, "GET", "/v1/audit_events?action=machine.update", e.AdminKey, nil).JSON(t)
		if byAction["total_count"] != float64(1) {
			t.Errorf("filter by action: %v", byAction)
		}
		paged := e.Do(t, "GET", "/v1/audit_events?target_id="+id+"&limit=1&offset=1", e.AdminKey, nil).JSON(t)
		if got := paged["data"].([]any); len(got) != 1 || got[0].(map[string]any)["action"] != "machine.secret_key.rotate" {
			t.Errorf("limit/offset page: %v", paged)
		}

		_, otherKey := e.NewInstance(t, "other")
		other := e.Do(t, "GET", "/v1/audit_events?target_id="+id, otherKey, nil).JSON(t)
		if other["total_count"] != float64(0) {
			t.Errorf("another instance sees this instance's audit events: %v", other)
		}
	})
}

func TestAuditEventsRejectBadInputAndBadCallers(t *testing.T) {
	e := apitest.Start(t, testkit.OpenSQLite(t))
	for _, tc := range []struct {
		name, query, key string
		status           int
		code, param      string
	}{
		{"no key", "", "", 401, "unauthenticated", ""},
		{"limit 0", "?limit=0", e.AdminKey, 400, "invalid", "limit"},
		{"limit over 200", "?limit=201", e.AdminKey, 400, "invalid", "limit"},
		{"negative offset", "?offset=-3", e.AdminKey, 400, "invalid", "offset"},
		{"non-numeric limit", "?limit=x", e.AdminKey, 400, "wrong_type", "limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.Do(t, "GET", "/v1/audit_events"+tc.query, tc.key, nil)
			errBody, _ := resp.JSON(t)["error"].(map[string]any)
			if resp.Status != tc.status || errBody["code"] != tc.code || (tc.param != "" && errBody["param"] != tc.param) {
				t.Fatalf("%d %s, want %d %s %s", resp.Status, resp.Body, tc.status, tc.code, tc.param)
			}
		})
	}
	if resp := e.Do(t, "GET", "/v1/audit_events", "", nil); resp.Header.Get("WWW-Authenticate") == "" {
		t.Error("a native 401 must carry WWW-Authenticate")
	}
	if resp := e.Do(t, "GET", "/debug/pprof/", e.AdminKey, nil); resp.Status != http.StatusNotFound {
		t.Errorf("/debug/pprof/ answered %d; no debug routes on the API port", resp.Status)
	}
}

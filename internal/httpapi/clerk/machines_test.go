package clerk_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/httpapi/apitest"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

// createMachine creates a machine over HTTP and returns its id and secret.
func createMachine(t *testing.T, e *apitest.Env, key string, body any) (string, string) {
	t.Helper()
	resp := e.Do(t, "POST", "/clerk/v1/machines", key, body)
	if resp.Status != http.StatusOK {
		t.Fatalf("create machine: %d %s", resp.Status, resp.Body)
	}
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatal("a response that hands out a secret must be Cache-Control: no-store")
	}
	m := resp.JSON(t)
	secret := m["secret_key"].(string)
	e.Remember(secret)
	return m["id"].(string), secret
}

// authenticates reports whether key authenticates, through /v1/caller.
func authenticates(t *testing.T, e *apitest.Env, key string) bool {
	t.Helper()
	resp := e.Do(t, "GET", "/v1/caller", key, nil)
	switch resp.Status {
	case http.StatusOK:
		return true
	case http.StatusUnauthorized:
		return false
	}
	t.Fatalf("GET /v1/caller: %d %s", resp.Status, resp.Body)
	return false
}

func rotate(t *testing.T, e *apitest.Env, id string, previousTTL int) string {
	t.Helper()
	resp := e.Do(t, "POST", "/clerk/v1/machines/"+id+"/secret_key/rotate", e.AdminKey, map[string]int{"previous_token_ttl": previousTTL})
	if resp.Status != http.StatusOK {
		t.Fatalf("rotate: %d %s", resp.Status, resp.Body)
	}
	body := resp.JSON(t)
	if body["object"] != "machine_secret_key" {
		t.Fatalf("rotate returned %s", resp.Body)
	}
	secret := body["secret"].(string)
	e.Remember(secret)
	return secret
}

func TestRotateSecretKeyKeepsThePreviousKeyForItsGraceOnly(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := start(t, store)
		id, first := createMachine(t, e, e.AdminKey, map[string]string{"name": "worker"})
		if !authenticates(t, e, first) {
			t.Fatal("a fresh machine key does not authenticate")
		}

		second := rotate(t, e, id, 60)
		if second == first {
			t.Fatal("rotation returned the same key")
		}
		if got := e.Do(t, "GET", "/clerk/v1/machines/"+id+"/secret_key", e.AdminKey, nil).JSON(t)["secret"]; got != second {
			t.Fatal("get secret key does not return the new key")
		}
		e.Clock.Advance(59*time.Second + 999*time.Millisecond)
		if !authenticates(t, e, first) || !authenticates(t, e, second) {
			t.Fatal("inside the grace window both keys must authenticate")
		}
		e.Clock.Advance(time.Millisecond)
		if authenticates(t, e, first) {
			t.Fatal("the previous key still authenticates when its grace has ended")
		}
		if !authenticates(t, e, second) {
			t.Fatal("the current key stopped authenticating")
		}

		third := rotate(t, e, id, 0)
		if authenticates(t, e, second) {
			t.Fatal("previous_token_ttl 0 must end the previous key at once")
		}
		if !authenticates(t, e, third) {
			t.Fatal("the new key does not authenticate")
		}
	})
}

func TestSecondRotationInsideTheGraceEndsTheOlderPreviousKey(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := start(t, store)
		id, first := createMachine(t, e, e.AdminKey, map[string]string{"name": "worker"})
		second := rotate(t, e, id, 3600)
		e.Clock.Advance(10 * time.Second)
		third := rotate(t, e, id, 120)

		if authenticates(t, e, first) {
			t.Fatal("the older previous key survived a second rotation")
		}
		if !authenticates(t, e, second) || !authenticates(t, e, third) {
			t.Fatal("the key that was current gets the new grace, and the new key works")
		}
		e.Clock.Advance(120 * time.Second)
		if authenticates(t, e, second) {
			t.Fatal("the grace of the second rotation is 120 s, not the first rotation's 3600 s")
		}
	})
}

func TestDeletedMachineKeysStopAuthenticatingAtOnce(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := start(t, store)
		id, key := createMachine(t, e, e.AdminKey, map[string]string{"name": "worker"})
		previous := key
		key = rotate(t, e, id, 3600)
		if resp := e.Do(t, "DELETE", "/clerk/v1/machines/"+id, e.AdminKey, nil); resp.Status != http.StatusOK {
			t.Fatalf("delete: %d %s", resp.Status, resp.Body)
		}
		if authenticates(t, e, key) || authenticates(t, e, previous) {
			t.Fatal("a deleted machine's keys still authenticate")
		}
	})
}

func TestMachineKeyCannotManageMachines(t *testing.T) {
	e := start(t, testkit.OpenSQLite(t))
	_, key := createMachine(t, e, e.AdminKey, map[string]string{"name": "worker"})
	resp := e.Do(t, "POST", "/clerk/v1/machines", key, map[string]string{"name": "x"})
	if resp.Status != http.StatusForbidden || clerkCode(t, resp) != "authorization_invalid" {
		t.Fatalf("machine key creating a machine: %d %s, want 403 authorization_invalid", resp.Status, resp.Body)
	}
}

// TestUnauthenticatedCallsGetOneIdentical401 checks that a caller cannot
// tell a missing, malformed, unknown or revoked key apart.
func TestUnauthenticatedCallsGetOneIdentical401(t *testing.T) {
	e := start(t, testkit.OpenSQLite(t))
	ctx := context.Background()
	op := authority.Operator(e.InstanceID)
	name := "soon gone"
	cred, revoked, err := e.Auth.CreateAdminKey(ctx, op, authority.CreateAdminKeyInput{Name: &name, Permissions: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	e.Remember(revoked.Reveal())
	if _, err := e.Auth.RevokeAdminKey(ctx, op, cred.ID); err != nil {
		t.Fatal(err)
	}
	soon := e.Clock.Now().Add(time.Hour)
	_, expired, err := e.Auth.CreateAdminKey(ctx, op, authority.CreateAdminKeyInput{Name: &name, Permissions: []string{"*"}, ExpiresAt: &soon})
	if err != nil {
		t.Fatal(err)
	}
	e.Remember(expired.Reveal())
	if resp := e.Do(t, "GET", "/clerk/v1/machines", expired.Reveal(), nil); resp.Status != http.StatusOK {
		t.Fatalf("an admin key before its expiry: status %d, want 200", resp.Status)
	}
	e.Clock.Advance(time.Hour)
	good := e.AdminKey
	typo := good[:12] + string(good[12]^1) + good[13:]
	var bodies []string
	for name, key := range map[string]string{
		"none":       "",
		"garbage":    "hello",
		"typo":       typo,
		"unknown":    credential.MustGenerate(credential.KindAdminKey).Reveal(),
		"revoked":    revoked.Reveal(),
		"expired":    expired.Reveal(),
		"wrong kind": credential.MustGenerate(credential.KindPAT).Reveal(),
	} {
		resp := e.Do(t, "GET", "/clerk/v1/machines", key, nil)
		if resp.Status != http.StatusUnauthorized {
			t.Fatalf("%s: status %d, want 401", name, resp.Status)
		}
		body := resp.JSON(t)
		delete(body, "clerk_trace_id")
		bodies = append(bodies, fmt.Sprint(body))
	}
	for _, b := range bodies[1:] {
		if b != bodies[0] {
			t.Fatalf("401 bodies differ:\n%s\n%s", bodies[0], b)
		}
	}
}

func TestAnotherInstancesMachineIsNotFound(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := start(t, store)
		_, keyB := e.NewInstance(t, "other")
		idA, _ := createMachine(t, e, e.AdminKey, map[string]string{"name": "a-machine"})
		idB, _ := createMachine(t, e, keyB, map[string]string{"name": "b-machine"})
		before := snapshot(t, e)

		for _, tc := range []struct {
			method, path string
			body         any
		}{
			{"GET", "/clerk/v1/machines/" + idA, nil},
			{"PATCH", "/clerk/v1/machines/" + idA, map[string]string{"name": "stolen"}},
			{"DELETE", "/clerk/v1/machines/" + idA, nil},
			{"GET", "/clerk/v1/machines/" + idA + "/secret_key", nil},
			{"POST", "/clerk/v1/machines/" + idA + "/secret_key/rotate", map[string]int{"previous_token_ttl": 0}},
			{"POST", "/clerk/v1/machines/" + idA + "/scopes", map[string]string{"to_machine_id": idB}},
			{"DELETE", "/clerk/v1/machines/" + idA + "/scopes/" + idB, nil},
		} {
			resp := e.Do(t, tc.method, tc.path, keyB, tc.body)
			if resp.Status != http.StatusNotFound || clerkCode(t, resp) != "resource_not_found" {
				t.Errorf("%s %s with instance B's key: %d %s, want 404", tc.method, tc.path, resp.Status, resp.Body)
			}
		}
		// B cannot scope its machine to A's either, nor see A's in a list.
		resp := e.Do(t, "POST", "/clerk/v1/machines/"+idB+"/scopes", keyB, map[string]string{"to_machine_id": idA})
		if resp.Status != http.StatusUnprocessableEntity {
			t.Errorf("scope to another instance's machine: %d %s", resp.Status, resp.Body)
		}
		resp = e.Do(t, "GET", "/clerk/v1/machines?query="+idA, keyB, nil)
		if total := resp.JSON(t)["total_count"]; total != float64(0) {
			t.Errorf("instance B's list finds A's machine: %s", resp.Body)
		}
		if diff := cmp.Diff(before, snapshot(t, e)); diff != "" {
			t.Fatalf("instance B changed instance A's data:\n%s", diff)
		}
	})
}

func clerkCode(t *testing.T, resp apitest.Response) string {
	t.Helper()
	errs, _ := resp.JSON(t)["errors"].([]any)
	if len(errs) == 0 {
		t.Fatalf("no Clerk errors in %s", resp.Body)
	}
	return errs[0].(map[string]any)["code"].(string)
}

// storeState is everything a machines request could change in an instance.
type storeState struct {
	Machines    []credential.Machine
	Credentials []credential.Credential
	AuditCount  int
}

func snapshot(t *testing.T, e *apitest.Env) storeState {
	t.Helper()
	var s storeState
	ctx := context.Background()
	err := e.Store.View(ctx, func(tx authority.Tx) error {
		ms, _, err := tx.ListMachines(ctx, authority.MachineFilter{InstanceID: e.InstanceID, OrderBy: authority.OrderByCreatedAt, Limit: 1000})
		if err != nil {
			return err
		}
		ids := make([]string, len(ms))
		for i, m := range ms {
			ids[i] = m.ID
		}
		scoped, err := tx.ScopedMachines(ctx, e.InstanceID, ids)
		if err != nil {
			return err
		}
		for i := range ms {
			ms[i].ScopedMachines = scoped[ms[i].ID]
		}
		s.Machines = ms
		if s.Credentials, err = tx.ListCredentials(ctx, authority.CredentialFilter{InstanceID: e.InstanceID}); err != nil {
			return err
		}
		_, s.AuditCount, err = tx.ListAuditEvents(ctx, authority.AuditFilter{InstanceID: e.InstanceID, Limit: 1})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestInvalidInputGetsClerksErrorAndChangesNothing(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := start(t, store)
		m1, _ := createMachine(t, e, e.AdminKey, map[string]string{"name": "one"})
		m2, _ := createMachine(t, e, e.AdminKey, map[string]any{"name": "two", "scoped_machines": []string{m1}})
		unknown := credential.NewID(credential.PrefixMachine, time.Now())
		many := make([]string, 151)
		for i := range many {
			many[i] = m1
		}
		cases := []struct {
			name         string
			method, path string
			body         any
			status       int
			code, param  string
		}{
			{"create without a name", "POST", "/clerk/v1/machines", `{}`, 422, "form_param_missing", "name"},
			{"create with a null name", "POST", "/clerk/v1/machines", `{"name":null}`, 422, "form_param_missing", "name"},
			{"create with an empty name", "POST", "/clerk/v1/machines", `{"name":""}`, 422, "form_param_missing", "name"},
			{"create with a 256-character name", "POST", "/clerk/v1/machines", map[string]string{"name": strings.Repeat("n", 256)}, 422, "form_param_max_length_exceeded", "name"},
			{"create with a numeric name", "POST", "/clerk/v1/machines", `{"name":42}`, 422, "form_param_type_invalid", "name"},
			{"create with 151 scoped machines", "POST", "/clerk/v1/machines", map[string]any{"name": "x", "scoped_machines": many}, 422, "form_param_array_size_exceeded", "scoped_machines"},
			{"create scoped to an unknown machine", "POST", "/clerk/v1/machines", map[string]any{"name": "x", "scoped_machines": []string{m1, unknown}}, 422, "form_param_value_invalid", "scoped_machines"},
			{"create with scoped_machines not an array", "POST", "/clerk/v1/machines", `{"name":"x","scoped_machines":"` + m1 + `"}`, 422, "form_param_type_invalid", "scoped_machines"},
			{"create with ttl 0", "POST", "/clerk/v1/machines", `{"name":"x","default_token_ttl":0}`, 422, "form_param_value_invalid", "default_token_ttl"},
			{"create with ttl above ten years", "POST", "/clerk/v1/machines", `{"name":"x","default_token_ttl":315360001}`, 422, "form_param_value_invalid", "default_token_ttl"},
			{"create with a fractional ttl", "POST", "/clerk/v1/machines", `{"name":"x","default_token_ttl":1.5}`, 422, "form_param_type_invalid", "default_token_ttl"},
			{"create with a string ttl", "POST", "/clerk/v1/machines", `{"name":"x","default_token_ttl":"3600"}`, 422, "form_param_type_invalid", "default_token_ttl"},
			{"create with an unknown field", "POST", "/clerk/v1/machines", `{"name":"x","secret_key":"mine"}`, 422, "form_param_unknown", "secret_key"},
			{"create with malformed JSON", "POST", "/clerk/v1/machines", `{"name":`, 400, "request_body_invalid", ""},
			{"create with a JSON array", "POST", "/clerk/v1/machines", `["x"]`, 400, "request_body_invalid", ""},
			{"create with a duplicate key", "POST", "/clerk/v1/machines", `{"name":"x","name":"y"}`, 400, "request_body_invalid", ""},
			{"create with invalid UTF-8", "POST", "/clerk/v1/machines", "{\"name\":\"\xff\"}", 400, "request_body_invalid", ""},
			{"create with a body over 1 MiB", "POST", "/clerk/v1/machines", `{"name":"` + strings.Repeat("x", 1<<20) + `"}`, 413, "request_body_too_large", ""},
			{"list with limit 0", "GET", "/clerk/v1/machines?limit=0", nil, 422, "form_param_value_invalid", "limit"},
			{"list with limit 501", "GET", "/clerk/v1/machines?limit=501", nil, 422, "form_param_value_invalid", "limit"},
			{"list with a non-numeric limit", "GET", "/clerk/v1/machines?limit=ten", nil, 422, "form_param_type_invalid", "limit"},
			{"list with a negative offset", "GET", "/clerk/v1/machines?offset=-1", nil, 422, "form_param_value_invalid", "offset"},
			{"list with a huge offset", "GET", "/clerk/v1/machines?offset=99999999999999999999", nil, 422, "form_param_type_invalid", "offset"},
			{"list ordered by an unknown field", "GET", "/clerk/v1/machines?order_by=secret", nil, 422, "form_param_value_invalid", "order_by"},
			{"list ordered with two signs", "GET", "/clerk/v1/machines?order_by=--name", nil, 422, "form_param_value_invalid", "order_by"},
			{"get an unknown machine", "GET", "/clerk/v1/machines/" + unknown, nil, 404, "resource_not_found", ""},
			{"get a malformed id", "GET", "/clerk/v1/machines/%27%20OR%201=1", nil, 404, "resource_not_found", ""},
			{"update an unknown machine", "PATCH", "/clerk/v1/machines/" + unknown, `{"name":"x"}`, 404, "resource_not_found", ""},
			{"update to an empty name", "PATCH", "/clerk/v1/machines/" + m1, `{"name":""}`, 422, "form_param_missing", "name"},
			{"update to a 256-character name", "PATCH", "/clerk/v1/machines/" + m1, map[string]string{"name": strings.Repeat("n", 256)}, 422, "form_param_max_length_exceeded", "name"},
			{"update ttl to 0", "PATCH", "/clerk/v1/machines/" + m1, `{"default_token_ttl":0}`, 422, "form_param_value_invalid", "default_token_ttl"},
			{"update scopes", "PATCH", "/clerk/v1/machines/" + m1, `{"scoped_machines":[]}`, 422, "form_param_unknown", "scoped_machines"},
			{"update with malformed JSON", "PATCH", "/clerk/v1/machines/" + m1, `{`, 400, "request_body_invalid", ""},
			{"delete an unknown machine", "DELETE", "/clerk/v1/machines/" + unknown, nil, 404, "resource_not_found", ""},
			{"secret key of an unknown machine", "GET", "/clerk/v1/machines/" + unknown + "/secret_key", nil, 404, "resource_not_found", ""},
			{"rotate without previous_token_ttl", "POST", "/clerk/v1/machines/" + m1 + "/secret_key/rotate", `{}`, 422, "form_param_missing", "previous_token_ttl"},
			{"rotate with a negative ttl", "POST", "/clerk/v1/machines/" + m1 + "/secret_key/rotate", `{"previous_token_ttl":-1}`, 422, "form_param_value_invalid", "previous_token_ttl"},
			{"rotate with a ttl over 8 hours", "POST", "/clerk/v1/machines/" + m1 + "/secret_key/rotate", `{"previous_token_ttl":28801}`, 422, "form_param_value_invalid", "previous_token_ttl"},
			{"rotate with a string ttl", "POST", "/clerk/v1/machines/" + m1 + "/secret_key/rotate", `{"previous_token_ttl":"0"}`, 422, "form_param_type_invalid", "previous_token_ttl"},
			{"rotate an unknown machine", "POST", "/clerk/v1/machines/" + unknown + "/secret_key/rotate", `{"previous_token_ttl":0}`, 404, "resource_not_found", ""},
			{"scope without a target", "POST", "/clerk/v1/machines/" + m1 + "/scopes", `{}`, 422, "form_param_missing", "to_machine_id"},
			{"scope to itself", "POST", "/clerk/v1/machines/" + m1 + "/scopes", map[string]string{"to_machine_id": m1}, 422, "form_param_value_invalid", "to_machine_id"},
			{"scope to an unknown machine", "POST", "/clerk/v1/machines/" + m1 + "/scopes", map[string]string{"to_machine_id": unknown}, 422, "form_param_value_invalid", "to_machine_id"},
			{"scope that exists", "POST", "/clerk/v1/machines/" + m2 + "/scopes", map[string]string{"to_machine_id": m1}, 409, "conflict", ""},
			{"scope from an unknown machine", "POST", "/clerk/v1/machines/" + unknown + "/scopes", map[string]string{"to_machine_id": m1}, 404, "resource_not_found", ""},
			{"delete a scope that does not exist", "DELETE", "/clerk/v1/machines/" + m1 + "/scopes/" + m2, nil, 404, "resource_not_found", ""},
			{"an unknown endpoint", "GET", "/clerk/v1/nope", nil, 404, "resource_not_found", ""},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				before := snapshot(t, e)
				resp := e.Do(t, tc.method, tc.path, e.AdminKey, tc.body)
				if resp.Status != tc.status {
					t.Fatalf("status %d, want %d: %s", resp.Status, tc.status, resp.Body)
				}
				first := resp.JSON(t)["errors"].([]any)[0].(map[string]any)
				if first["code"] != tc.code {
					t.Errorf("code %v, want %s: %s", first["code"], tc.code, resp.Body)
				}
				var param any
				if meta, ok := first["meta"].(map[string]any); ok {
					param = meta["param_name"]
				}
				if tc.param != "" && param != tc.param {
					t.Errorf("meta.param_name %v, want %s: %s", param, tc.param, resp.Body)
				}
				if first["message"] == "" || first["long_message"] == "" {
					t.Errorf("message and long_message are required: %s", resp.Body)
				}
				if resp.JSON(t)["clerk_trace_id"] != resp.Header.Get("X-Request-Id") {
					t.Errorf("clerk_trace_id is not the request id")
				}
				if diff := cmp.Diff(before, snapshot(t, e)); diff != "" {
					t.Fatalf("a refused request changed the store:\n%s", diff)
				}
			})
		}
	})
}

// TestSecretsAppearOnlyWhereTheContractHandsThemOut walks every read a
// client can make after issuing secrets, then scans the logs and the SQLite
// files for every secret handed out.
func TestSecretsAppearOnlyWhereTheContractHandsThemOut(t *testing.T) {
	store, path := testkit.OpenSQLiteAt(t)
	e := start(t, store)
	id, first := createMachine(t, e, e.AdminKey, map[string]any{"name": "one"})
	other, _ := createMachine(t, e, e.AdminKey, map[string]any{"name": "two", "scoped_machines": []string{id}})
	second := rotate(t, e, id, 3600)
	key := createAPIKey(t, e, "/clerk", map[string]any{"name": "scanned", "subject": alice})
	keyID, keySecret := key["id"].(string), key["secret"].(string)

	reads := []struct {
		method, path string
		body         any
	}{
		{"GET", "/clerk/v1/machines", nil},
		{"GET", "/clerk/v1/machines/" + id, nil},
		{"GET", "/clerk/v1/machines/" + other, nil},
		{"PATCH", "/clerk/v1/machines/" + id, map[string]string{"name": "renamed"}},
		{"POST", "/clerk/v1/machines/" + id + "/scopes", map[string]string{"to_machine_id": other}},
		{"DELETE", "/clerk/v1/machines/" + id + "/scopes/" + other, nil},
		{"GET", "/clerk/api_keys/" + keyID, nil},
		{"GET", "/clerk/api_keys?include_invalid=true&subject=" + alice, nil},
		{"PATCH", "/clerk/api_keys/" + keyID, map[string]any{"scopes": []string{"read"}}},
		{"POST", "/clerk/api_keys/verify", map[string]string{"secret": keySecret}},
		{"POST", "/v1/verify", map[string]string{"token": keySecret}},
		{"POST", "/clerk/api_keys", `{"name":"` + keySecret + `","subject":"x"}`}, // a secret echoed back in a bad request
		{"POST", "/clerk/api_keys/" + keyID + "/revoke", map[string]any{}},
		{"GET", "/v1/audit_events?limit=200", nil},
		{"GET", "/v1/caller", nil},
		{"POST", "/clerk/v1/machines", `{"name":"` + first + `","bad":1}`}, // a secret echoed back in a bad request
	}
	for _, r := range reads {
		resp := e.Do(t, r.method, r.path, e.AdminKey, r.body)
		for _, s := range e.Secrets() {
			if strings.Contains(string(resp.Body), s) {
				t.Errorf("%s %s response contains an issued secret: %s", r.method, r.path, resp.Body)
			}
		}
	}
	if got := e.Do(t, "GET", "/clerk/v1/machines/"+id+"/secret_key", e.AdminKey, nil).JSON(t)["secret"]; got != second {
		t.Fatalf("get secret key = %v, want the current key", got)
	}
	if got := e.Do(t, "GET", "/clerk/api_keys/"+keyID+"/secret", e.AdminKey, nil).JSON(t)["secret"]; got != keySecret {
		t.Fatalf("get API key secret = %v, want the create response's", got)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}

	logs := e.Logs.String()
	if !strings.Contains(logs, `"msg":"request"`) {
		t.Fatal("no access log captured; the log scan would prove nothing")
	}
	files := map[string][]byte{"logs": []byte(logs)}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if b, err := os.ReadFile(path + suffix); err == nil {
			files[path+suffix] = b
		}
	}
	if len(files[path]) == 0 {
		t.Fatal("the SQLite file is empty; the scan would prove nothing")
	}
	for _, s := range e.Secrets() {
		body := s[strings.Index(s, "_")+1:]
		if strings.HasPrefix(s, "sk_live_") {
			body = s[len("sk_live_"):]
		}
		for name, b := range files {
			if strings.Contains(string(b), s) || strings.Contains(string(b), body) {
				t.Errorf("an issued secret appears in %s", name)
			}
		}
	}
}

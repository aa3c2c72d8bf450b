package clerk_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	clerksdk "github.com/clerk/clerk-sdk-go/v2"
	"github.com/clerk/clerk-sdk-go/v2/actortoken"
	"github.com/golang-jwt/jwt/v5"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/httpapi/apitest"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

// exchange redeems a ticket at /oauth/token (RFC 8693).
func exchange(t *testing.T, e *apitest.Env, ticket string) apitest.Response {
	t.Helper()
	form := url.Values{
		"grant_type":         {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token":      {ticket},
		"subject_token_type": {"urn:keyward:params:oauth:token-type:actor-ticket"},
	}
	return postForm(t, e, "/oauth/token", form, "")
}

func postForm(t *testing.T, e *apitest.Env, path string, form url.Values, accept string) apitest.Response {
	t.Helper()
	req, err := http.NewRequest("POST", e.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return apitest.Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

func createActorToken(t *testing.T, e *apitest.Env, body any) map[string]any {
	t.Helper()
	resp := e.Do(t, "POST", "/clerk/v1/actor_tokens", e.AdminKey, body)
	if resp.Status != http.StatusOK {
		t.Fatalf("create actor token: %d %s", resp.Status, resp.Body)
	}
	tok := resp.JSON(t)
	e.Remember(tok["token"].(string))
	return tok
}

func TestClerkSDKCreatesAndRevokesActorTokens(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := start(t, store)
		client := actortoken.NewClient(sdkConfig(e, e.AdminKey))
		ctx := context.Background()
		actor := json.RawMessage(`{"sub":"user_support_1","name":"Ada"}`)
		created, err := client.Create(ctx, &actortoken.CreateParams{
			UserID: clerksdk.String("user_customer_9"), Actor: actor,
			ExpiresInSeconds: clerksdk.Int64(600), SessionMaxDurationInSeconds: clerksdk.Int64(900),
		})
		if err != nil {
			t.Fatal(err)
		}
		e.Remember(created.Token)
		if created.Object != "actor_token" || !strings.HasPrefix(created.ID, "act_") || len(created.ID) != 31 ||
			created.Status != "pending" || created.UserID != "user_customer_9" || string(created.Actor) != string(actor) ||
			!strings.HasPrefix(created.Token, "tkt_") || created.URL == nil || created.CreatedAt != e.Clock.Now().UnixMilli() {
			t.Fatalf("create returned %+v", created)
		}
		if !strings.Contains(*created.URL, "/v1/tickets/accept?ticket="+created.Token) {
			t.Fatalf("url = %s", *created.URL)
		}
		revoked, err := client.Revoke(ctx, created.ID)
		if err != nil {
			t.Fatal(err)
		}
		if revoked.Status != "revoked" || revoked.ID != created.ID || revoked.Token != "" {
			t.Fatalf("revoke returned %+v", revoked)
		}
		_, err = client.Revoke(ctx, created.ID)
		if status, code := clerkError(t, err); status != 400 || code != "actor_token_cannot_be_revoked_code" {
			t.Fatalf("revoking a revoked token: %d %s", status, code)
		}
		again := e.Do(t, "POST", "/clerk/v1/actor_tokens/"+created.ID+"/revoke", e.AdminKey, nil)
		if item := again.JSON(t)["errors"].([]any)[0].(map[string]any); item["message"] != "cannot be revoked" ||
			item["long_message"] != "This actor token cannot be revoked because its status is revoked. Only pending tokens can be revoked." {
			t.Fatalf("revoking a revoked token: %s", again.Body)
		}

		// keyward's additions: get and list, in the same shape, never with the token.
		got := e.Do(t, "GET", "/clerk/v1/actor_tokens/"+created.ID, e.AdminKey, nil)
		list := e.Do(t, "GET", "/clerk/v1/actor_tokens?user_id=user_customer_9&status=revoked", e.AdminKey, nil)
		if got.JSON(t)["status"] != "revoked" || list.JSON(t)["total_count"] != float64(1) {
			t.Fatalf("get %s, list %s", got.Body, list.Body)
		}
		for _, r := range []apitest.Response{got, list} {
			if strings.Contains(string(r.Body), created.Token) {
				t.Fatalf("a read returns the ticket: %s", r.Body)
			}
		}
	})
}

func TestActorTokenCreateValidation(t *testing.T) {
	e := start(t, testkit.OpenSQLite(t))
	for _, tc := range []struct {
		name, body  string
		status      int
		code, param string
	}{
		{"no user_id", `{"actor":{"sub":"a"}}`, 422, "form_param_missing", "user_id"},
		{"no actor", `{"user_id":"u1"}`, 422, "form_param_missing", "actor"},
		{"an actor without sub", `{"user_id":"u1","actor":{"name":"x"}}`, 422, "form_param_missing", "actor.sub"},
		{"an actor that is not an object", `{"user_id":"u1","actor":"root"}`, 422, "form_param_type_invalid", "actor"},
		{"zero expires_in_seconds", `{"user_id":"u1","actor":{"sub":"a"},"expires_in_seconds":0}`, 422, "form_param_value_invalid", "expires_in_seconds"},
		{"a negative session duration", `{"user_id":"u1","actor":{"sub":"a"},"session_max_duration_in_seconds":-1}`, 422, "form_param_value_invalid", "session_max_duration_in_seconds"},
		{"an unknown field", `{"user_id":"u1","actor":{"sub":"a"},"status":"accepted"}`, 422, "form_param_unknown", "status"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.Do(t, "POST", "/clerk/v1/actor_tokens", e.AdminKey, tc.body)
			if resp.Status != tc.status || clerkCode(t, resp) != tc.code || !strings.Contains(string(resp.Body), `"param_name":"`+tc.param+`"`) {
				t.Fatalf("%d %s, want %d %s %s", resp.Status, resp.Body, tc.status, tc.code, tc.param)
			}
		})
	}
}

// TestATicketIsRedeemedExactlyOnce sends 100 concurrent exchanges of one
// ticket: one wins, 99 learn it was used.
func TestATicketIsRedeemedExactlyOnce(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := start(t, store)
		ticket := createActorToken(t, e, map[string]any{"user_id": "u1", "actor": map[string]string{"sub": "admin_1"}})["token"].(string)
		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			statuses = map[int]int{}
			codes    = map[string]int{}
		)
		start := make(chan struct{})
		for range 100 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				resp := exchange(t, e, ticket)
				var body map[string]any
				_ = json.Unmarshal(resp.Body, &body)
				mu.Lock()
				defer mu.Unlock()
				statuses[resp.Status]++
				if code, ok := body["code"].(string); ok {
					codes[code]++
				}
				if tok, ok := body["access_token"].(string); ok {
					e.Remember(tok)
				}
			}()
		}
		close(start)
		wg.Wait()
		if statuses[200] != 1 || statuses[400] != 99 || codes["actor_token_already_used"] != 99 {
			t.Fatalf("100 concurrent redemptions: statuses %v, codes %v; want exactly one 200", statuses, codes)
		}
	})
}

func TestSessionTokenCarriesTheActorAndItsMaximumDuration(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := start(t, store)
		tok := createActorToken(t, e, map[string]any{"user_id": "user_9", "actor": map[string]string{"sub": "support_1", "email": "s@example.com"}, "session_max_duration_in_seconds": 900})
		e.Clock.Advance(90 * time.Second)
		redeemedAt := e.Clock.Now()
		resp := exchange(t, e, tok["token"].(string))
		if resp.Status != 200 {
			t.Fatalf("exchange: %d %s", resp.Status, resp.Body)
		}
		body := resp.JSON(t)
		access := body["access_token"].(string)
		e.Remember(access)
		if body["issued_token_type"] != "urn:ietf:params:oauth:token-type:access_token" || body["token_type"] != "Bearer" || body["expires_in"] != float64(900) {
			t.Fatalf("token response: %s", resp.Body)
		}
		claims := verifyWithGolangJWT(t, e, access)
		act, _ := claims["act"].(map[string]any)
		if claims["sub"] != "user_9" || act["sub"] != "support_1" || act["email"] != "s@example.com" || claims["sid"] != body["session_id"] {
			t.Fatalf("claims %v", claims)
		}
		if exp, _ := claims.GetExpirationTime(); !exp.Equal(redeemedAt.Add(900 * time.Second)) {
			t.Fatalf("exp = %v, want redemption time + 900 s = %v", exp, redeemedAt.Add(900*time.Second))
		}
		if h := jwtHeader(t, access); h["typ"] != "at+jwt" || h["cat"] != nil {
			t.Fatalf("session header %v", h)
		}

		// keyward verifies the session until it is revoked or expires.
		if code := verifyCode(t, e, e.AdminKey, access); code != "valid" {
			t.Fatalf("session verify: %s", code)
		}
		if code := verifyCode(t, e, e.AdminKey, access, "billing:write"); code != "insufficient_scope" {
			t.Fatalf("a session asked for a scope it does not hold: %s", code)
		}
		sid := body["session_id"].(string)
		if r := e.Do(t, "POST", "/v1/impersonation_sessions/"+sid+"/revoke", e.AdminKey, nil); r.Status != 200 {
			t.Fatalf("revoke session: %d %s", r.Status, r.Body)
		}
		if code := verifyCode(t, e, e.AdminKey, access); code != "revoked" {
			t.Fatalf("a revoked session verifies as %s", code)
		}
		audit := e.Do(t, "GET", "/v1/audit_events?target_id="+sid, e.AdminKey, nil).JSON(t)["data"].([]any)
		if len(audit) != 2 {
			t.Fatalf("want the redemption and the revocation in the audit log, got %v", audit)
		}
		for _, ev := range audit {
			detail := ev.(map[string]any)["detail"].(map[string]any)
			if detail["user_id"] != "user_9" || detail["actor_sub"] != "support_1" {
				t.Fatalf("audit event without both user and actor: %v", ev)
			}
		}

		// An M2M verifier must never take a session token for an M2M token.
		f := newFleet(t, e)
		if code := verifyCode(t, e, f.targetKey, access); code != "not_found" {
			t.Fatalf("a machine verifying a session token: %s", code)
		}
	})
}

func TestAcceptURLPreviewsWithoutConsumingAndConfirmRedeems(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := start(t, store)
		tok := createActorToken(t, e, map[string]any{"user_id": "u1", "actor": map[string]string{"sub": "admin_1"}})
		accept, err := url.Parse(tok["url"].(string))
		if err != nil {
			t.Fatal(err)
		}
		path := accept.Path + "?" + accept.RawQuery

		for range 3 { // a link scanner, a chat preview, a human
			page := e.DoWith(t, "GET", path, nil, http.Header{"Accept": {"text/html"}})
			if page.Status != 200 || !strings.Contains(string(page.Body), "admin_1") || !strings.Contains(string(page.Body), `method="post"`) ||
				page.Header.Get("Cache-Control") != "no-store" || page.Header.Get("Referrer-Policy") != "no-referrer" {
				t.Fatalf("preview page: %d %v %s", page.Status, page.Header, page.Body)
			}
		}
		if st := e.Do(t, "GET", "/clerk/v1/actor_tokens/"+tok["id"].(string), e.AdminKey, nil).JSON(t)["status"]; st != "pending" {
			t.Fatalf("GETs of the accept URL changed the status to %v", st)
		}

		set := e.Do(t, "PATCH", "/v1/instance", e.AdminKey, map[string]string{"impersonation_redirect_url": "https://app.example/impersonate"})
		if set.Status != 200 {
			t.Fatalf("set redirect: %d %s", set.Status, set.Body)
		}
		confirm := postForm(t, e, path, url.Values{"ticket": {tok["token"].(string)}}, "")
		loc := confirm.Header.Get("Location")
		if confirm.Status != http.StatusSeeOther || !strings.HasPrefix(loc, "https://app.example/impersonate#access_token=") {
			t.Fatalf("confirm: %d, Location %q", confirm.Status, loc)
		}
		frag, _ := url.ParseQuery(strings.SplitN(loc, "#", 2)[1])
		e.Remember(frag.Get("access_token"))
		if code := verifyCode(t, e, e.AdminKey, frag.Get("access_token")); code != "valid" {
			t.Fatalf("the redirect's session token: %s", code)
		}
		if st := e.Do(t, "GET", "/clerk/v1/actor_tokens/"+tok["id"].(string), e.AdminKey, nil).JSON(t)["status"]; st != "accepted" {
			t.Fatalf("after confirm the status is %v, want accepted", st)
		}
		again := postForm(t, e, path, url.Values{"ticket": {tok["token"].(string)}}, "application/json")
		if again.Status != 400 || again.JSON(t)["code"] != "actor_token_already_used" {
			t.Fatalf("confirming twice: %d %s", again.Status, again.Body)
		}
		resp := e.Do(t, "POST", "/clerk/v1/actor_tokens/"+tok["id"].(string)+"/revoke", e.AdminKey, nil)
		if resp.Status != 400 || clerkCode(t, resp) != "actor_token_cannot_be_revoked_code" || !strings.Contains(string(resp.Body), "accepted") {
			t.Fatalf("revoking an accepted token: %d %s", resp.Status, resp.Body)
		}
	})
}

func TestExpiredAndRevokedTicketsCannotBeRedeemed(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := start(t, store)
		short := createActorToken(t, e, map[string]any{"user_id": "u1", "actor": map[string]string{"sub": "a"}, "expires_in_seconds": 60})
		revoked := createActorToken(t, e, map[string]any{"user_id": "u1", "actor": map[string]string{"sub": "a"}})
		if r := e.Do(t, "POST", "/clerk/v1/actor_tokens/"+revoked["id"].(string)+"/revoke", e.AdminKey, nil); r.Status != 200 {
			t.Fatalf("revoke: %d", r.Status)
		}
		e.Clock.Advance(60 * time.Second)
		for _, tc := range []struct{ name, ticket, code string }{
			{"an expired ticket", short["token"].(string), "ticket_expired"},
			{"a revoked ticket", revoked["token"].(string), "actor_token_revoked"},
			{"garbage", "tkt_nope", "ticket_invalid"},
		} {
			resp := exchange(t, e, tc.ticket)
			body := resp.JSON(t)
			if resp.Status != 400 || body["error"] != "invalid_grant" || body["code"] != tc.code {
				t.Errorf("%s: %d %s, want 400 invalid_grant %s", tc.name, resp.Status, resp.Body, tc.code)
			}
		}
		// An expired ticket stays pending (Clerk has no expired status) and
		// can still be revoked.
		if st := e.Do(t, "GET", "/clerk/v1/actor_tokens/"+short["id"].(string), e.AdminKey, nil).JSON(t)["status"]; st != "pending" {
			t.Fatalf("an expired ticket's status: %v", st)
		}
		bad := postForm(t, e, "/oauth/token", url.Values{"grant_type": {"password"}}, "")
		if bad.Status != 400 || bad.JSON(t)["error"] != "unsupported_grant_type" {
			t.Fatalf("another grant type: %d %s", bad.Status, bad.Body)
		}
	})
}

var _ = jwt.MapClaims{}
var _ = authority.DefaultIssuer

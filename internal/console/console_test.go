package console

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward/client"
	"github.com/keyward/keyward/internal/httpapi/apitest"
	"github.com/keyward/keyward/internal/testkit"
)

// fakeClock is the sessions' clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// logBuffer is a goroutine-safe log sink.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// env is a real keyward (SQLite) with the console mounted, as serve does.
type env struct {
	*apitest.Env
	console *Console
	clock   *fakeClock
	logs    *logBuffer
	kw      *client.Client // the admin key's SDK client, over the network
}

func start(t *testing.T, opts apitest.Options) *env {
	t.Helper()
	e := &env{clock: &fakeClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}, logs: &logBuffer{}}
	opts.Wrap = func(api http.Handler) http.Handler {
		e.console = New(Config{API: api, Now: e.clock.Now, Logger: slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
		return Mount(e.console, api)
	}
	e.Env = apitest.StartWith(t, testkit.OpenSQLite(t), opts)
	// The console's clock starts where the authority's does, so the
	// overview's 24 hours hold the events the test makes.
	e.clock.now = e.Env.Clock.Now()
	e.kw = client.New(e.URL, e.AdminKey, client.WithRetries(0))
	return e
}

// browser is a cookie-keeping HTTP client that does not follow redirects.
type browser struct {
	t    *testing.T
	base string
	hc   *http.Client
	// seen is every response body and Location header, for leak checks.
	seen []string
}

func (e *env) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: e.URL, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

type page struct {
	status int
	header http.Header
	body   string
}

func (b *browser) do(method, path string, form url.Values, header http.Header) page {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.base+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	b.seen = append(b.seen, string(out), resp.Header.Get("Location"), req.URL.String())
	return page{resp.StatusCode, resp.Header, string(out)}
}

func (b *browser) get(path string) page { b.t.Helper(); return b.do(http.MethodGet, path, nil, nil) }

func (b *browser) post(path string, form url.Values) page {
	b.t.Helper()
	return b.do(http.MethodPost, path, form, nil)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf reads the CSRF token from a signed-in page.
func (b *browser) csrf() string {
	b.t.Helper()
	p := b.get("/console/machines")
	m := csrfRE.FindStringSubmatch(p.body)
	if m == nil {
		b.t.Fatalf("no CSRF token on the machines page (%d): %.300s", p.status, p.body)
	}
	return m[1]
}

func (b *browser) signIn(key string) {
	b.t.Helper()
	p := b.post("/console/login", url.Values{"key": {key}})
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/console/" {
		b.t.Fatalf("sign-in: %d %q %.300s", p.status, p.header.Get("Location"), p.body)
	}
}

func TestSignInSetsAStrictSessionCookie(t *testing.T) {
	e := start(t, apitest.Options{})
	b := e.browser(t)
	if p := b.get("/console/"); p.status != http.StatusSeeOther || p.header.Get("Location") != "/console/login" {
		t.Fatalf("signed out, the overview: %d %q", p.status, p.header.Get("Location"))
	}
	if p := b.get("/console/login"); p.status != 200 || !strings.Contains(p.body, `name="key"`) || !strings.Contains(p.body, `<label for="key">`) {
		t.Fatalf("login page: %d %.300s", p.status, p.body)
	}
	if p := b.post("/console/login", url.Values{"key": {"sk_live_wrong"}}); p.status != http.StatusUnauthorized || p.header.Get("Set-Cookie") != "" {
		t.Fatalf("a wrong key: %d, cookie %q", p.status, p.header.Get("Set-Cookie"))
	}
	p := b.post("/console/login", url.Values{"key": {e.AdminKey}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("sign-in: %d %.300s", p.status, p.body)
	}
	ck := p.header.Get("Set-Cookie")
	for _, want := range []string{cookieName + "=", "Path=/console/", "HttpOnly", "SameSite=Strict"} {
		if !strings.Contains(ck, want) {
			t.Errorf("cookie %q lacks %q", ck, want)
		}
	}
	if strings.Contains(ck, "Secure") {
		t.Errorf("cookie over plain HTTP is Secure: %q", ck)
	}
	if strings.Contains(ck, e.AdminKey) {
		t.Error("the cookie holds the admin key")
	}
	if p := b.get("/console/"); p.status != 200 || !strings.Contains(p.body, "Overview") {
		t.Fatalf("overview: %d %.300s", p.status, p.body)
	}
	// Sign-out destroys the session: the old cookie no longer works.
	old := b.hc.Jar.Cookies(mustURL(t, e.URL+"/console/"))
	if p := b.post("/console/logout", url.Values{"csrf": {b.csrf()}}); p.status != http.StatusSeeOther {
		t.Fatalf("sign-out: %d", p.status)
	}
	if n := e.console.sessions.count(); n != 0 {
		t.Errorf("%d sessions after sign-out", n)
	}
	b.hc.Jar.SetCookies(mustURL(t, e.URL+"/console/"), old)
	if p := b.get("/console/"); p.status != http.StatusSeeOther {
		t.Errorf("the signed-out cookie still opens the overview: %d", p.status)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestCookieIsSecureOverTLS(t *testing.T) {
	e := start(t, apitest.Options{})
	r := httptest.NewRequest(http.MethodPost, "https://keyward.example/console/login", strings.NewReader(url.Values{"key": {e.AdminKey}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.TLS = &tls.ConnectionState{}
	w := httptest.NewRecorder()
	e.console.ServeHTTP(w, r)
	if w.Code != http.StatusSeeOther || !strings.Contains(w.Header().Get("Set-Cookie"), "Secure") {
		t.Errorf("sign-in over TLS: %d, cookie %q", w.Code, w.Header().Get("Set-Cookie"))
	}
	if w.Header().Get("Strict-Transport-Security") == "" {
		t.Error("no HSTS over TLS")
	}
}

func TestEveryPageCarriesTheSecurityHeaders(t *testing.T) {
	e := start(t, apitest.Options{})
	b := e.browser(t)
	check := func(path string, p page) {
		t.Helper()
		want := map[string]string{
			"Content-Security-Policy": contentSecurityPolicy,
			"X-Frame-Options":         "DENY",
			"X-Content-Type-Options":  "nosniff",
			"Referrer-Policy":         "no-referrer",
			"Cache-Control":           "no-store",
		}
		for h, v := range want {
			if got := p.header.Get(h); got != v {
				t.Errorf("%s: %s is %q, want %q", path, h, got, v)
			}
		}
	}
	check("/console/login", b.get("/console/login"))
	b.signIn(e.AdminKey)
	for _, path := range []string{"/console/", "/console/machines", "/console/api_keys", "/console/organizations", "/console/users",
		"/console/audit", "/console/admin_keys", "/console/settings"} {
		p := b.get(path)
		if p.status != 200 {
			t.Errorf("%s: %d %.300s", path, p.status, p.body)
		}
		check(path, p)
		if strings.Contains(p.body, "<script>") || strings.Contains(p.body, " style=") || strings.Contains(p.body, " on") && regexp.MustCompile(` on[a-z]+=`).MatchString(p.body) {
			t.Errorf("%s has inline script or style, which the CSP refuses", path)
		}
	}
	if !strings.Contains(contentSecurityPolicy, "frame-ancestors 'none'") || strings.Contains(contentSecurityPolicy, "unsafe-inline") {
		t.Errorf("CSP %q", contentSecurityPolicy)
	}
}

func TestSessionsEndWhenIdleAndAfterTheAbsoluteTimeout(t *testing.T) {
	e := start(t, apitest.Options{})
	idle := e.browser(t)
	idle.signIn(e.AdminKey)
	e.clock.Advance(DefaultIdleTimeout - time.Second)
	if p := idle.get("/console/"); p.status != 200 {
		t.Fatalf("just under the idle timeout: %d", p.status)
	}
	e.clock.Advance(DefaultIdleTimeout)
	if p := idle.get("/console/"); p.status != http.StatusSeeOther || p.header.Get("Location") != "/console/login" {
		t.Fatalf("idle past the timeout: %d %q", p.status, p.header.Get("Location"))
	}

	busy := e.browser(t)
	busy.signIn(e.AdminKey)
	for elapsed := time.Duration(0); elapsed < DefaultAbsoluteTimeout-DefaultIdleTimeout; elapsed += DefaultIdleTimeout / 2 {
		e.clock.Advance(DefaultIdleTimeout / 2)
		if p := busy.get("/console/machines"); p.status != 200 {
			t.Fatalf("a busy session ended after %v: %d", elapsed, p.status)
		}
	}
	e.clock.Advance(DefaultIdleTimeout)
	if p := busy.get("/console/machines"); p.status != http.StatusSeeOther {
		t.Fatalf("past the absolute timeout: %d", p.status)
	}
	if n := e.console.sessions.count(); n != 0 {
		t.Errorf("%d sessions held after both ended", n)
	}
}

func machineCount(t *testing.T, e *env) int {
	t.Helper()
	return machinesOf(t, e.kw)
}

func machinesOf(t *testing.T, kw *client.Client) int {
	t.Helper()
	page, err := kw.ListMachines(context.Background(), client.MachineQuery{ListParams: client.ListParams{Limit: 100}})
	if err != nil {
		t.Fatal(err)
	}
	return len(page.Data)
}

func TestAPostWithoutTheCSRFTokenChangesNothing(t *testing.T) {
	e := start(t, apitest.Options{})
	b := e.browser(t)
	b.signIn(e.AdminKey)
	token := b.csrf()
	for name, form := range map[string]url.Values{
		"missing": {"name": {"evil"}},
		"empty":   {"name": {"evil"}, "csrf": {""}},
		"wrong":   {"name": {"evil"}, "csrf": {token[:len(token)-2] + "xx"}},
		"another": {"name": {"evil"}, "csrf": {randomToken()}},
	} {
		if p := b.post("/console/machines", form); p.status != http.StatusForbidden {
			t.Errorf("CSRF token %s: %d, want 403", name, p.status)
		}
	}
	if n := machineCount(t, e); n != 0 {
		t.Fatalf("%d machines created by refused posts", n)
	}
	// A cross-site POST is refused even with the token.
	if p := b.do(http.MethodPost, "/console/machines", url.Values{"name": {"evil"}, "csrf": {token}},
		http.Header{"Sec-Fetch-Site": {"cross-site"}}); p.status != http.StatusForbidden {
		t.Errorf("a cross-site POST: %d, want 403", p.status)
	}
	// A token of another session is refused.
	other := e.browser(t)
	other.signIn(e.AdminKey)
	if p := b.post("/console/machines", url.Values{"name": {"evil"}, "csrf": {other.csrf()}}); p.status != http.StatusForbidden {
		t.Errorf("another session's token: %d, want 403", p.status)
	}
	if n := machineCount(t, e); n != 0 {
		t.Fatalf("%d machines created by refused posts", n)
	}
	if p := b.post("/console/machines", url.Values{"name": {"good"}, "csrf": {token}}); p.status != 200 {
		t.Fatalf("with the token: %d %.300s", p.status, p.body)
	}
	if n := machineCount(t, e); n != 1 {
		t.Fatalf("%d machines after the good post", n)
	}
}

var errorRE = regexp.MustCompile(`(?s)<main.*</main>`)

var secretRE = regexp.MustCompile(`<output id="secret" class="secret">([^<]+)</output>`)

func TestASecretIsShownOnceAndNowhereElse(t *testing.T) {
	e := start(t, apitest.Options{})
	b := e.browser(t)
	b.signIn(e.AdminKey)
	csrf := b.csrf()
	p := b.post("/console/machines", url.Values{"name": {"worker"}, "csrf": {csrf}})
	m := secretRE.FindStringSubmatch(p.body)
	if p.status != 200 || m == nil {
		t.Fatalf("create: %d %.500s", p.status, p.body)
	}
	secret := m[1]
	e.Remember(secret)
	caller, err := client.New(e.URL, secret).Caller(context.Background())
	if err != nil || caller.Kind != "machine_key" {
		t.Fatalf("the shown secret does not authenticate: %+v %v", caller, err)
	}
	list := b.get("/console/machines")
	if !strings.Contains(list.body, "worker") {
		t.Fatalf("machine list lacks the machine: %.300s", list.body)
	}
	detail := b.get("/console/machines/" + caller.MachineID)
	if detail.status != 200 {
		t.Fatalf("machine page: %d", detail.status)
	}
	// Reveal is behind a confirmation POST; a GET only asks.
	if p := b.get("/console/machines/" + caller.MachineID + "/secret"); strings.Contains(p.body, secret) || !strings.Contains(p.body, `name="confirm"`) {
		t.Errorf("the confirmation page shows the secret or asks nothing")
	}
	if p := b.post("/console/machines/"+caller.MachineID+"/secret", url.Values{"csrf": {csrf}}); p.status != http.StatusBadRequest || strings.Contains(p.body, secret) {
		t.Errorf("reveal without confirming: %d", p.status)
	}
	if p := b.post("/console/machines/"+caller.MachineID+"/secret", url.Values{"csrf": {csrf}, "confirm": {"yes"}}); !strings.Contains(p.body, secret) {
		t.Errorf("confirmed reveal lacks the secret: %d", p.status)
	}
	// Rotate: a new secret, once.
	p = b.post("/console/machines/"+caller.MachineID+"/rotate", url.Values{"csrf": {csrf}, "previous_token_ttl": {"0"}})
	m = secretRE.FindStringSubmatch(p.body)
	if p.status != 200 || m == nil || m[1] == secret {
		t.Fatalf("rotate: %d %.300s", p.status, p.body)
	}
	e.Remember(m[1])
	for _, path := range []string{"/console/", "/console/machines", "/console/machines/" + caller.MachineID, "/console/audit", "/console/admin_keys"} {
		b.get(path)
	}
	e.Remember(e.AdminKey)
	// Every secret appears only in the body of the POST that showed it:
	// never in a URL, a Location, a list page or a log line.
	reveals := 0
	for _, s := range b.seen {
		for _, sec := range e.Secrets() {
			if strings.Contains(s, sec) {
				reveals++
				if !strings.Contains(s, `<output id="secret"`) {
					t.Errorf("a secret is outside a reveal page: %.200s", s)
				}
			}
		}
	}
	if reveals != 3 {
		t.Errorf("%d pages showed a secret, want 3 (create, reveal, rotate)", reveals)
	}
	for _, sec := range e.Secrets() {
		if strings.Contains(e.logs.String(), sec) || strings.Contains(e.Logs.String(), sec) {
			t.Error("a secret is in a log line")
		}
	}
}

func TestAVerifyOnlyKeySeesNoWriteButtonsAndIsRefused(t *testing.T) {
	e := start(t, apitest.Options{})
	ctx := context.Background()
	vk, err := e.kw.CreateAdminKey(ctx, client.AdminKeyParams{Name: "verifier", Permissions: []string{client.PermissionVerify}})
	if err != nil {
		t.Fatal(err)
	}
	e.Remember(vk.Secret)
	mch, err := e.kw.CreateMachine(ctx, client.MachineParams{Name: "existing"})
	if err != nil {
		t.Fatal(err)
	}
	e.Remember(mch.SecretKey)
	b := e.browser(t)
	b.signIn(vk.Secret)
	postForm := regexp.MustCompile(`<form[^>]*method="post"[^>]*action="([^"]+)"`)
	for _, path := range []string{"/console/", "/console/machines", "/console/machines/" + mch.ID, "/console/api_keys?subject=user_1",
		"/console/organizations", "/console/users?user=user_1", "/console/audit", "/console/admin_keys", "/console/settings"} {
		p := b.get(path)
		for _, m := range postForm.FindAllStringSubmatch(p.body, -1) {
			if m[1] != "/console/logout" {
				t.Errorf("%s (%d) offers a write form to %s", path, p.status, m[1])
			}
		}
	}
	// The page offers nothing, and the server refuses a forged POST anyway.
	csrf := csrfRE.FindStringSubmatch(b.get("/console/").body)[1]
	p := b.post("/console/machines", url.Values{"name": {"forged"}, "csrf": {csrf}})
	if p.status != http.StatusForbidden || !strings.Contains(p.body, "machines:write") {
		t.Errorf("forged create: %d %.300s", p.status, p.body)
	}
	if p := b.post("/console/machines/"+mch.ID+"/delete", url.Values{"csrf": {csrf}}); p.status != http.StatusForbidden {
		t.Errorf("forged delete: %d", p.status)
	}
	if n := machineCount(t, e); n != 1 {
		t.Errorf("%d machines after forged posts, want 1", n)
	}
}

func TestARevokedKeyEndsItsSession(t *testing.T) {
	e := start(t, apitest.Options{})
	ctx := context.Background()
	k, err := e.kw.CreateAdminKey(ctx, client.AdminKeyParams{Name: "temp", Permissions: []string{client.PermissionAll}})
	if err != nil {
		t.Fatal(err)
	}
	e.Remember(k.Secret)
	b := e.browser(t)
	b.signIn(k.Secret)
	if _, err := e.kw.RevokeAdminKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if p := b.get("/console/machines"); p.status != http.StatusSeeOther || p.header.Get("Location") != "/console/login" {
		t.Errorf("after the key's revocation: %d %q", p.status, p.header.Get("Location"))
	}
	if n := e.console.sessions.count(); n != 0 {
		t.Errorf("%d sessions after the key's revocation", n)
	}
}

func TestFailedSignInsAreThrottledByTheServer(t *testing.T) {
	e := start(t, apitest.Options{AuthFailureLimit: 3, AuthFailureWindow: time.Minute})
	b := e.browser(t)
	var last page
	for range 5 {
		last = b.post("/console/login", url.Values{"key": {"sk_live_guess"}})
	}
	if last.status != http.StatusTooManyRequests || !strings.Contains(last.body, "Too many") {
		t.Errorf("after 5 failures: %d %.200s", last.status, last.body)
	}
	if strings.Contains(e.logs.String(), "sk_live_guess") || strings.Contains(e.Logs.String(), "sk_live_guess") {
		t.Error("a tried key is in a log line")
	}
}

func TestAnM2MTokenIsRevokedWithAReasonAndAudited(t *testing.T) {
	e := start(t, apitest.Options{})
	ctx := context.Background()
	mch, err := e.kw.CreateMachine(ctx, client.MachineParams{Name: "minter"})
	if err != nil {
		t.Fatal(err)
	}
	e.Remember(mch.SecretKey)
	tok, err := client.New(e.URL, mch.SecretKey).CreateM2MToken(ctx, client.M2MTokenParams{})
	if err != nil {
		t.Fatal(err)
	}
	e.Remember(tok.Token)
	b := e.browser(t)
	b.signIn(e.AdminKey)
	if p := b.get("/console/machines/" + mch.ID); !strings.Contains(p.body, tok.ID) || strings.Contains(p.body, tok.Token) {
		t.Fatalf("machine page lacks the token id or shows the token: %.300s", p.body)
	}
	p := b.post("/console/machines/"+mch.ID+"/m2m_tokens/"+tok.ID+"/revoke", url.Values{"csrf": {b.csrf()}, "reason": {"leaked"}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("revoke: %d %.300s", p.status, p.body)
	}
	if p := b.get("/console/machines/" + mch.ID + "?state=revoked"); !strings.Contains(p.body, tok.ID) || !strings.Contains(p.body, "revoked: leaked") {
		t.Errorf("revoked list: %.500s", p.body)
	}
	if p := b.get("/console/audit?target=" + tok.ID); !strings.Contains(p.body, "m2m_token.revoke") {
		t.Errorf("audit lacks the revocation: %.500s", p.body)
	}
	if p := b.get("/console/audit"); !strings.Contains(p.body, "are contiguous and hashed") {
		t.Errorf("audit page lacks the chain status")
	}
}

func TestVerificationChartCountsTheLast24Hours(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 30, 0, 0, time.UTC)
	hour := now.Truncate(time.Hour)
	series := client.VerificationSeries{Buckets: []client.VerificationBucket{
		{Start: hour.Add(-30 * time.Hour), Outcome: "valid", Count: 9}, // outside
		{Start: hour.Add(-5 * time.Hour), Outcome: "valid", Count: 1},
		{Start: hour, Outcome: "not_found", Count: 2},
		{Start: hour, Outcome: "revoked", Count: 7},
		{Start: hour, Outcome: "valid", Count: 3},
	}}
	ch := verificationChart(series, now, false)
	if ch.Total != 13 || ch.Max != 12 || len(ch.Hours) != 24 || len(ch.Bars) != 4 || len(ch.Outcomes) != 3 {
		t.Fatalf("chart: total %d max %d hours %d bars %d outcomes %+v", ch.Total, ch.Max, len(ch.Hours), len(ch.Bars), ch.Outcomes)
	}
	if o := ch.Outcomes; o[0].Outcome != "valid" || o[0].Count != 4 || o[1].Outcome != "not_found" || o[2].Class != "denied" {
		t.Errorf("outcomes, valid first: %+v", o)
	}
	if last := ch.Hours[23]; last.Hour != "12:00" || !slices.Equal(last.Counts, []int64{3, 2, 7}) {
		t.Errorf("the current hour: %+v", last)
	}
	if ch.Hours[18].Hour != "07:00" || ch.Hours[18].Counts[0] != 1 {
		t.Errorf("five hours ago: %+v", ch.Hours[18])
	}
	// The current hour's stack fills the plot: its bars sum to its height.
	h := 0
	for _, b := range ch.Bars[1:] {
		h += b.H
	}
	if h < 118 || h > 120 {
		t.Errorf("the highest hour's stack is %d high, want the plot's 120", h)
	}
}

// The overview charts the instance's verifications per hour by outcome,
// and each credential page charts its own (the machine's keys, its tokens,
// API keys), from GET /v1/analytics/verifications.
func TestCredentialPagesChartTheirVerifications(t *testing.T) {
	e := start(t, apitest.Options{})
	ctx := context.Background()
	mch, err := e.kw.CreateMachine(ctx, client.MachineParams{Name: "minter"})
	if err != nil {
		t.Fatal(err)
	}
	e.Remember(mch.SecretKey)
	tok, err := client.New(e.URL, mch.SecretKey).CreateM2MToken(ctx, client.M2MTokenParams{})
	if err != nil {
		t.Fatal(err)
	}
	e.Remember(tok.Token)
	key, err := e.kw.CreateAPIKey(ctx, client.APIKeyParams{Name: "counted", Subject: mch.ID})
	if err != nil {
		t.Fatal(err)
	}
	e.Remember(key.Secret)
	for _, secret := range []string{tok.Token, tok.Token, key.Secret, "ak_unknown"} {
		if _, err := e.kw.Verify(ctx, client.VerifyRequest{Token: secret}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Auth.FlushVerificationCounts(ctx); err != nil {
		t.Fatal(err)
	}
	b := e.browser(t)
	b.signIn(e.AdminKey)
	hour := e.clock.Now().UTC().Truncate(time.Hour).Format("15:00")
	// Two token verifications, one API key, one unknown token, and the
	// machine key that minted.
	if p := b.get("/console/"); !strings.Contains(p.body, "5 in all") || !strings.Contains(p.body, hour+" UTC: 4 valid") || !strings.Contains(p.body, hour+" UTC: 1 not_found") {
		t.Errorf("overview chart: %.2000s", p.body)
	}
	p := b.get("/console/machines/" + mch.ID)
	if !strings.Contains(p.body, hour+" UTC: 1 valid") { // the key minted once
		t.Errorf("machine page lacks its keys' chart: %.2000s", p.body)
	}
	if !strings.Contains(p.body, `aria-label="2 verifications in the last 24 hours, 2 valid"`) {
		t.Errorf("machine page lacks the token's sparkline: %.3000s", p.body)
	}
	if p := b.get("/console/api_keys?subject=" + mch.ID); !strings.Contains(p.body, `aria-label="1 verifications in the last 24 hours, 1 valid"`) {
		t.Errorf("API key page lacks the key's sparkline: %.3000s", p.body)
	}
	if p := b.get("/console/api_keys/" + key.ID); !strings.Contains(p.body, "Verifications per hour, last 24 hours") || !strings.Contains(p.body, hour+" UTC: 1 valid") {
		t.Errorf("the API key's own page lacks its chart: %.3000s", p.body)
	}
	// Without analytics:read the pages say so and chart nothing.
	ro, err := e.kw.CreateAdminKey(ctx, client.AdminKeyParams{Name: "reader", Permissions: []string{"machines:read", "api_keys:read"}})
	if err != nil {
		t.Fatal(err)
	}
	e.Remember(ro.Secret)
	rb := e.browser(t)
	rb.signIn(ro.Secret)
	if p := rb.get("/console/machines/" + mch.ID); !strings.Contains(p.body, "needs analytics:read") || strings.Contains(p.body, "UTC: 1 valid") {
		t.Errorf("machine page for a key without analytics:read: %.2000s", p.body)
	}
	if p := rb.get("/console/api_keys/" + key.ID); !strings.Contains(p.body, "needs analytics:read") || strings.Contains(p.body, "UTC: 1 valid") {
		t.Errorf("API key page for a key without analytics:read: %.2000s", p.body)
	}
}

// Behind a proxy that terminates TLS the request reaches keyward over
// plain HTTP; with BehindTLS the cookie is still Secure and HSTS is sent.
func TestCookieIsSecureBehindATLSProxy(t *testing.T) {
	e := start(t, apitest.Options{})
	behind := New(Config{API: e.console.api.(inProcess).api, BehindTLS: true})
	r := httptest.NewRequest(http.MethodPost, "http://keyward.internal/console/login", strings.NewReader(url.Values{"key": {e.AdminKey}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	behind.ServeHTTP(w, r)
	if w.Code != http.StatusSeeOther || !strings.Contains(w.Header().Get("Set-Cookie"), "Secure") {
		t.Errorf("sign-in behind a TLS proxy: %d, cookie %q", w.Code, w.Header().Get("Set-Cookie"))
	}
	if w.Header().Get("Strict-Transport-Security") == "" {
		t.Error("no HSTS behind a TLS proxy")
	}
}

// Signing in again in the same browser ends the session it had: a switch
// to a lesser key leaves no session of the greater one behind.
func TestASignInEndsTheBrowsersEarlierSession(t *testing.T) {
	e := start(t, apitest.Options{})
	b := e.browser(t)
	b.signIn(e.AdminKey)
	if n := e.console.sessions.count(); n != 1 {
		t.Fatalf("%d sessions after one sign-in", n)
	}
	b.signIn(e.AdminKey)
	if n := e.console.sessions.count(); n != 1 {
		t.Fatalf("%d sessions after signing in twice in one browser, want 1", n)
	}
}

func TestTheStaticFolderIsNotListed(t *testing.T) {
	e := start(t, apitest.Options{})
	b := e.browser(t)
	if p := b.get("/console/static/"); p.status != http.StatusNotFound {
		t.Errorf("/console/static/: %d, want 404", p.status)
	}
}

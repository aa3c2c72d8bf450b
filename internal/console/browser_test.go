package console

// The browser test: Debian's chromium, headless, driven by chromedp
// against a real `keyward serve` (built from this module, SQLite in a
// temporary directory, its log captured). It runs when
// KEYWARD_BROWSER_TEST=1 (as .ci/run sets it, after installing chromium)
// and is skipped otherwise. Screenshots of every page land in
// artifacts/console/ at the repository's root (KEYWARD_CONSOLE_SCREENSHOTS
// to change it).

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	cdpage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/keyward/keyward/client"
)

func chromium(t *testing.T) string {
	t.Helper()
	if os.Getenv("KEYWARD_BROWSER_TEST") != "1" {
		t.Skip("the browser test runs with KEYWARD_BROWSER_TEST=1 (and Debian's chromium installed)")
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("KEYWARD_BROWSER_TEST=1 but no chromium on PATH (apt-get install -y chromium)")
	return ""
}

func screenshotDir(t *testing.T) string {
	dir := os.Getenv("KEYWARD_CONSOLE_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join("..", "..", "artifacts", "console")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// served is a keyward serve process started for the test.
type served struct {
	URL, AdminKey string
	kw            *client.Client
	logs          *logBuffer // its stdout and stderr
	secrets       []string
}

func (s *served) Remember(secrets ...string) { s.secrets = append(s.secrets, secrets...) }
func (s *served) Secrets() []string          { return append([]string{s.AdminKey}, s.secrets...) }

// serveKeyward builds keyward and runs `keyward serve` on a free loopback
// port with a fresh data directory and a bootstrap admin key, until the
// test ends.
func serveKeyward(t *testing.T) *served {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "keyward")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/keyward").CombinedOutput(); err != nil {
		t.Fatalf("build keyward: %v\n%s", err, out)
	}
	// keyward refuses unknown KEYWARD_* variables, and this test's own
	// (KEYWARD_BROWSER_TEST, …) are unknown to it.
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KEYWARD_") {
			env = append(env, kv)
		}
	}
	gen := exec.Command(bin, "admin-key", "generate")
	gen.Env = env
	out, err := gen.Output()
	if err != nil {
		t.Fatalf("keyward admin-key generate: %v", err)
	}
	lines := strings.Fields(string(out))
	s := &served{AdminKey: lines[len(lines)-1], logs: &logBuffer{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "serve", "--addr", addr, "--data-dir", filepath.Join(dir, "data"))
	cmd.Env = append(env, "KEYWARD_BOOTSTRAP_ADMIN_KEY="+s.AdminKey)
	cmd.Stdout, cmd.Stderr = s.logs, s.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	})
	s.URL = "http://" + addr
	s.kw = client.New(s.URL, s.AdminKey, client.WithRetries(0))
	ready := client.New(s.URL, "")
	for deadline := time.Now().Add(30 * time.Second); ; {
		if ready.Ready(context.Background()) == nil {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("keyward serve did not get ready:\n%s", s.logs.String())
		}
		time.Sleep(50 * time.Millisecond) // waiting for a process to bind its port
	}
}

// awaitPromise makes Evaluate wait for the promise an expression returns.
func awaitPromise(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }

func TestBrowserConsoleWalkthrough(t *testing.T) {
	execPath := chromium(t)
	e := serveKeyward(t)
	shots := screenshotDir(t)
	base := e.URL + "/console/"

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(execPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	defer cancelTimeout()
	// Confirmation dialogs (data-confirm) are accepted.
	chromedp.ListenTarget(ctx, func(ev any) {
		if _, ok := ev.(*cdpage.EventJavascriptDialogOpening); ok {
			go chromedp.Run(ctx, cdpage.HandleJavaScriptDialog(true))
		}
	})
	run := func(step string, actions ...chromedp.Action) {
		t.Helper()
		if err := chromedp.Run(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	shot := func(name string) {
		t.Helper()
		var png []byte
		run("screenshot "+name, chromedp.FullScreenshot(&png, 100))
		if err := os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	html := func() string {
		t.Helper()
		var s string
		run("read the page", chromedp.OuterHTML("html", &s))
		return s
	}

	// Sign in.
	run("open the login page", chromedp.Navigate(base+"login"), chromedp.WaitVisible(`#key`, chromedp.ByID))
	shot("login")
	run("sign in", chromedp.SendKeys(`#key`, e.AdminKey, chromedp.ByID), chromedp.Submit(`#key`, chromedp.ByID),
		chromedp.WaitVisible(`section[aria-labelledby="counts"]`))

	// Create a machine; its secret is shown once.
	run("machines", chromedp.Navigate(base+"machines"), chromedp.WaitVisible(`#name`, chromedp.ByID))
	var secret string
	run("create a machine", chromedp.SendKeys(`#name`, "worker", chromedp.ByID), chromedp.Submit(`#name`, chromedp.ByID),
		chromedp.WaitVisible(`#secret`, chromedp.ByID), chromedp.Text(`#secret`, &secret, chromedp.ByID))
	secret = strings.TrimSpace(secret)
	e.Remember(secret)
	var copyHidden bool
	run("the copy button", chromedp.Evaluate(`document.querySelector("button.copy").hidden`, &copyHidden))
	if copyHidden {
		t.Error("with JavaScript on, the copy button stays hidden")
	}
	shot("secret-once")
	caller, err := client.New(e.URL, secret).Caller(context.Background())
	if err != nil || caller.Kind != "machine_key" {
		t.Fatalf("the secret on the page does not authenticate: %+v %v", caller, err)
	}
	machineURL := base + "machines/" + caller.MachineID
	run("machine list", chromedp.Navigate(base+"machines"), chromedp.WaitVisible(`table`))
	if strings.Contains(html(), secret) {
		t.Error("the machine list shows the secret")
	}
	shot("machines")

	// Rotate it: a new secret, shown once.
	tok, err := client.New(e.URL, secret).CreateM2MToken(context.Background(), client.M2MTokenParams{})
	if err != nil {
		t.Fatal(err)
	}
	e.Remember(tok.Token)
	var rotated string
	run("rotate", chromedp.Navigate(machineURL), chromedp.WaitVisible(`#previous_token_ttl`, chromedp.ByID),
		chromedp.Click(`form[action$="/rotate"] button`), chromedp.WaitVisible(`#secret`, chromedp.ByID),
		chromedp.Text(`#secret`, &rotated, chromedp.ByID))
	rotated = strings.TrimSpace(rotated)
	e.Remember(rotated)
	if rotated == "" || rotated == secret {
		t.Fatalf("rotation showed %q", rotated)
	}

	// Revoke the M2M token with a reason.
	run("revoke the token", chromedp.Navigate(machineURL), chromedp.WaitVisible(`#reason-`+tok.ID, chromedp.ByID),
		chromedp.SendKeys(`#reason-`+tok.ID, "leaked in a log", chromedp.ByID),
		chromedp.Click(`form[action$="/m2m_tokens/`+tok.ID+`/revoke"] button`),
		chromedp.WaitVisible(`p.flash`))
	if got := html(); strings.Contains(got, secret) || strings.Contains(got, rotated) {
		t.Error("the machine page shows a secret")
	}
	shot("machine")
	if res, err := e.kw.Verify(context.Background(), client.VerifyRequest{Token: tok.Token}); err != nil || res.Code != client.CodeRevoked {
		t.Errorf("the revoked token verifies as %+v %v", res, err)
	}

	// Find the event in the audit log.
	run("audit", chromedp.Navigate(base+"audit?target="+tok.ID), chromedp.WaitVisible(`table`))
	if got := html(); !strings.Contains(got, "m2m_token.revoke") {
		t.Error("the audit log lacks the revocation")
	}
	run("audit, all", chromedp.Navigate(base+"audit"), chromedp.WaitVisible(`p.chain`))
	shot("audit")

	// The detail pages' credentials, made through the SDK.
	sdk := context.Background()
	org, err := e.kw.CreateOrganization(sdk, client.OrganizationParams{Name: "Acme", Slug: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	site, _ := e.kw.CreateSite(sdk, org.ID, "hq")
	if _, err := e.kw.CreateSitegroup(sdk, org.ID, client.SitegroupParams{Name: "all", SiteIDs: []string{site.ID}}); err != nil {
		t.Fatal(err)
	}
	ot, err := e.kw.CreateOrgToken(sdk, org.ID, client.OrgTokenParams{Name: "ci", Privileges: []client.Privilege{{Scope: "org", Role: "read"}}, SrcIPs: []string{"10.0.0.0/8"}})
	if err != nil {
		t.Fatal(err)
	}
	ws, _ := e.kw.CreateWorkspace(sdk, org.ID, client.WorkspaceParams{Name: "Eng", Slug: "eng"})
	ak, err := e.kw.CreateAPIKey(sdk, client.APIKeyParams{Name: "billing", Subject: subject1, Scopes: []string{"read"}, Claims: []byte(`{"tier":"gold"}`)})
	if err != nil {
		t.Fatal(err)
	}
	pat, err := e.kw.CreatePAT(sdk, subject1, client.PATParams{Name: "laptop", Description: "cli"})
	if err != nil {
		t.Fatal(err)
	}
	adm, err := e.kw.CreateAdminKey(sdk, client.AdminKeyParams{Name: "reader", Permissions: []string{"machines:read", "audit:read"}})
	if err != nil {
		t.Fatal(err)
	}
	e.Remember(ot.Key, ak.Secret, pat.Token, adm.Secret)
	if _, err := e.kw.RotateSigningKey(sdk, "EdDSA"); err != nil {
		t.Fatal(err)
	}

	// An actor token's ticket and link, shown once.
	run("actor token", chromedp.Navigate(base+"actor_tokens"), chromedp.WaitVisible(`#new-user`, chromedp.ByID),
		chromedp.SetValue(`#new-user`, subject1, chromedp.ByID), chromedp.SetValue(`#new-actor`, "user_support", chromedp.ByID),
		chromedp.Submit(`#new-actor`, chromedp.ByID), chromedp.WaitVisible(`#secret-url`, chromedp.ByID))
	shot("actor-token-secret")

	// A webhook endpoint: its signing secret shown once, then a test
	// event in its delivery log.
	run("webhooks", chromedp.Navigate(base+"webhooks"), chromedp.WaitVisible(`#url`, chromedp.ByID))
	var whsec string
	run("create an endpoint", chromedp.SendKeys(`#url`, "https://hooks.example.com/keyward", chromedp.ByID),
		chromedp.Submit(`#url`, chromedp.ByID), chromedp.WaitVisible(`#secret`, chromedp.ByID), chromedp.Text(`#secret`, &whsec, chromedp.ByID))
	whsec = strings.TrimSpace(whsec)
	e.Remember(whsec)
	hooks, err := e.kw.ListWebhooks(sdk)
	if err != nil || len(hooks) != 1 || !strings.HasPrefix(whsec, "whsec_") {
		t.Fatalf("endpoints %+v %v", hooks, err)
	}
	run("test the endpoint", chromedp.Navigate(base+"webhooks/"+hooks[0].ID), chromedp.WaitVisible(`form[action$="/test"] button`),
		chromedp.Click(`form[action$="/test"] button`), chromedp.WaitVisible(`p.flash`))
	if got := html(); strings.Contains(got, whsec) || !strings.Contains(got, "webhook.ping") {
		t.Error("the endpoint page shows its secret, or no test delivery")
	}
	shot("webhook")

	// The other pages, for the review.
	for name, path := range map[string]string{"api-keys": "api_keys?subject=" + subject1, "organizations": "organizations",
		"users": "users?user=" + subject1, "admin-keys": "admin_keys", "settings": "settings",
		"api-key": "api_keys/" + ak.ID, "organization": "organizations/" + org.ID, "org-token": "organizations/" + org.ID + "/tokens/" + ot.ID,
		"workspace": "organizations/" + org.ID + "/workspaces/" + ws.ID, "pat": "users/" + subject1 + "/pats/" + pat.ID,
		"admin-key": "admin_keys/" + adm.ID, "actor-tokens": "actor_tokens"} {
		run(name, chromedp.Navigate(base+path), chromedp.WaitVisible(`main h1`))
		shot(name)
	}

	// The overview: its weight and its first render, then a screenshot in
	// light and in dark.
	var weight struct {
		HTML, Resources int
		FCP             float64
		Count           int
	}
	run("overview", chromedp.Navigate(base), chromedp.WaitVisible(`figure.chart`))
	run("measure", chromedp.Evaluate(`new Promise(function (done) {
		function measure() {
			var nav = performance.getEntriesByType("navigation")[0];
			var res = performance.getEntriesByType("resource");
			var fcp = performance.getEntriesByName("first-contentful-paint")[0];
			if (!fcp) { setTimeout(measure, 20); return; }
			var sum = 0; res.forEach(function (r) { sum += r.decodedBodySize; });
			done({HTML: nav.decodedBodySize, Resources: sum, FCP: fcp.startTime, Count: res.length});
		}
		measure();
	})`, &weight, awaitPromise))
	t.Logf("overview page weight: %d bytes (HTML %d + CSS/JS %d in %d files); first contentful paint %.0f ms",
		weight.HTML+weight.Resources, weight.HTML, weight.Resources, weight.Count, weight.FCP)
	if weight.HTML == 0 || weight.Count != 2 {
		t.Errorf("overview loaded %d bytes of HTML and %d other files, want 2 (CSS, JS)", weight.HTML, weight.Count)
	}
	shot("overview")
	var top []byte
	run("overview, the first screen", chromedp.CaptureScreenshot(&top))
	if err := os.WriteFile(filepath.Join(shots, "overview-viewport.png"), top, 0o644); err != nil {
		t.Fatal(err)
	}
	run("dark", emulation.SetEmulatedMedia().WithFeatures([]*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}))
	shot("overview-dark")
	run("light", emulation.SetEmulatedMedia().WithFeatures([]*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "light"}}))
	run("narrow", emulation.SetDeviceMetricsOverride(390, 844, 2, true))
	shot("overview-phone")
	run("wide", emulation.ClearDeviceMetricsOverride())

	// A POST without the CSRF token is refused, and changes nothing.
	var status int
	run("post without CSRF", chromedp.Evaluate(`fetch("/console/machines", {method: "POST", body: new URLSearchParams({name: "no-token"})}).then(function (r) { return r.status; })`, &status, awaitPromise))
	if status != http.StatusForbidden {
		t.Errorf("a POST without the CSRF token: %d, want 403", status)
	}

	// Sign out: the session is gone.
	run("sign out", chromedp.Click(`form.signout button`), chromedp.WaitVisible(`#key`, chromedp.ByID))
	var loc string
	run("after sign-out", chromedp.Navigate(base+"machines"), chromedp.WaitVisible(`#key`, chromedp.ByID), chromedp.Location(&loc))
	if !strings.HasSuffix(loc, "/console/login") {
		t.Errorf("after sign-out the machines page is at %s", loc)
	}

	// A verify-only key sees no write button, and a forged POST is refused.
	vk, err := e.kw.CreateAdminKey(context.Background(), client.AdminKeyParams{Name: "verifier", Permissions: []string{client.PermissionVerify}})
	if err != nil {
		t.Fatal(err)
	}
	e.Remember(vk.Secret)
	run("sign in as verify", chromedp.SendKeys(`#key`, vk.Secret, chromedp.ByID), chromedp.Submit(`#key`, chromedp.ByID),
		chromedp.WaitVisible(`section[aria-labelledby="counts"]`))
	shot("overview-verify-only")
	for _, path := range []string{"", "machines", "machines/" + caller.MachineID, "admin_keys", "settings", "organizations"} {
		var forms int
		run("forms on "+path, chromedp.Navigate(base+path), chromedp.WaitVisible(`main h1`),
			chromedp.Evaluate(`document.querySelectorAll('form[method="post"]:not([action="/console/logout"]), button.danger').length`, &forms))
		if forms != 0 {
			t.Errorf("/console/%s offers a verify-only key %d write forms", path, forms)
		}
	}
	run("forged POST", chromedp.Evaluate(`fetch("/console/machines", {method: "POST", body: new URLSearchParams({name: "forged",
		csrf: document.querySelector('input[name="csrf"]').value})}).then(function (r) { return r.status; })`, &status, awaitPromise))
	if status != http.StatusForbidden {
		t.Errorf("a verify-only key's forged POST: %d, want 403", status)
	}
	if n := machinesOf(t, e.kw); n != 1 {
		t.Errorf("%d machines after the refused posts, want 1", n)
	}
	for _, s := range e.Secrets() {
		if strings.Contains(e.logs.String(), s) {
			t.Error("a secret is in a log line")
		}
	}
	fmt.Fprintf(os.Stderr, "console screenshots: %s\n", shots)
}

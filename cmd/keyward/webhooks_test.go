package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/client"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/webhooksend"
)

type hookRequest struct {
	headers http.Header
	body    []byte
}

func hookReceiver(t *testing.T) (string, <-chan hookRequest) {
	t.Helper()
	got := make(chan hookRequest, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- hookRequest{r.Header.Clone(), b}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, got
}

func TestRemoteWebhooks(t *testing.T) {
	e := startRemote(t)
	url, got := hookReceiver(t)
	hook := e.okJSON("webhooks", "create", url+"/hook", "--event", "machine.created", "--description", "ops")
	id, secret := str(t, hook, "id"), str(t, hook, "secret")
	e.env.Remember(secret)
	if !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("create: %v", hook)
	}
	if r := e.ok("webhooks", "list"); !strings.Contains(r.out, id) || strings.Contains(r.out, "whsec_") {
		t.Fatalf("list:\n%s", r.out)
	}
	if r := e.ok("webhooks", "get", id); strings.Contains(r.out, "whsec_") || !strings.Contains(r.out, "ops") {
		t.Fatalf("get:\n%s", r.out)
	}
	if r := e.run("webhooks", "create", url); r.code != exitUsage {
		t.Fatalf("create without --event: exit %d", r.code)
	}
	m := e.okJSON("machines", "create", "worker")
	e.env.Remember(str(t, m, "secret_key"))
	if n, err := e.env.Auth.DeliverWebhooks(context.Background(), webhooksend.New(webhooksend.Options{AllowPrivate: true})); err != nil || n != 1 {
		t.Fatalf("deliver: %d %v", n, err)
	}
	d := <-got
	if err := client.VerifyWebhook(secret, d.headers, d.body, e.env.Clock.Now(), time.Minute); err != nil || !strings.Contains(string(d.body), `"machine.created"`) {
		t.Fatalf("delivery %s: %v", d.body, err)
	}
	r := e.ok("webhooks", "deliveries", id)
	if !strings.Contains(r.out, "succeeded") || !strings.Contains(r.out, "machine.created") {
		t.Fatalf("deliveries:\n%s", r.out)
	}
	deliveries := e.okJSON("webhooks", "deliveries", id, "--limit", "5")["data"].([]any)
	first := deliveries[0].(map[string]any)["id"].(string)
	e.okJSON("webhooks", "replay", id, first)
	e.okJSON("webhooks", "test", id)
	rotated := e.okJSON("webhooks", "rotate-secret", id)
	e.env.Remember(str(t, rotated, "secret"))
	if r := e.ok("webhooks", "rotate-secret", id); !strings.Contains(r.out, "signing secret: whsec_") {
		t.Fatalf("rotate table:\n%s", r.out)
	} else {
		e.env.Remember(strings.TrimSpace(strings.SplitN(strings.SplitN(r.out, "signing secret: ", 2)[1], "\n", 2)[0]))
	}
	if u := e.okJSON("webhooks", "update", id, "--event", "*"); u["events"].([]any)[0] != "*" {
		t.Fatalf("update: %v", u)
	}
	if r := e.run("webhooks", "update", id); r.code != exitUsage {
		t.Fatalf("update with nothing: exit %d", r.code)
	}
	e.okJSON("webhooks", "delete", id)
	if r := e.run("webhooks", "get", id); r.code != exitNotFound {
		t.Fatalf("get after delete: exit %d", r.code)
	}
}

// serve runs the dispatcher: a change made through the API reaches the
// endpoint without anyone asking.
func TestServeDeliversWebhooks(t *testing.T) {
	preset := credential.MustGenerate(credential.KindAdminKey).Reveal()
	t.Setenv("KEYWARD_BOOTSTRAP_ADMIN_KEY", preset)
	base, _ := startServe(t, "--data-dir", t.TempDir(), "--webhook-allow-private")
	url, got := hookReceiver(t)
	ctx := context.Background()
	kw := client.New(base, preset, client.WithRetries(0))
	hook, err := kw.CreateWebhook(ctx, client.WebhookParams{URL: url, Events: []string{"machine.created"}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := kw.CreateMachine(ctx, client.MachineParams{Name: "worker"})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-got:
		if err := client.VerifyWebhook(hook.Secret, d.headers, d.body, time.Now(), 0); err != nil || !strings.Contains(string(d.body), m.ID) {
			t.Fatalf("delivery %s: %v", d.body, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no delivery within 30 s")
	}
}

// Without --webhook-allow-private (serve's default) a loopback endpoint
// is refused, and the delivery log says why.
func TestPrivateWebhookTargetsAreRefused(t *testing.T) {
	e := startRemote(t)
	url, got := hookReceiver(t)
	hook := e.okJSON("webhooks", "create", url, "--event", "api_key.revoked")
	e.env.Remember(str(t, hook, "secret"))
	id := str(t, hook, "id")
	e.okJSON("webhooks", "test", id)
	var cfg webhookConfig // the flags' defaults
	if n, err := e.env.Auth.DeliverWebhooks(context.Background(), webhooksend.New(webhooksend.Options{AllowPrivate: cfg.allowPrivate})); err != nil || n != 1 {
		t.Fatalf("deliver: %d %v", n, err)
	}
	select {
	case <-got:
		t.Fatal("a loopback endpoint was reached")
	default:
	}
	d := e.okJSON("webhooks", "deliveries", id)["data"].([]any)[0].(map[string]any)
	if d["status"] != "pending" || !strings.Contains(d["last_error"].(string), "private") || d["next_attempt_at"] == nil {
		t.Fatalf("delivery %v", d)
	}
}

func TestNotifyExpiringTakesAListOfDurationsOrOff(t *testing.T) {
	cases := []struct {
		in   string
		want string
		bad  bool
	}{
		{"7d,1d", "7d,1d", false},
		{"30d, 12h", "30d,12h0m0s", false},
		{"off", "off", false},
		{"", "off", false},
		{"7d,x", "", true},
		{"-1d", "", true},
	}
	for _, c := range cases {
		var th thresholds
		err := th.Set(c.in)
		if (err != nil) != c.bad || (!c.bad && th.String() != c.want) {
			t.Errorf("Set(%q) = %s, %v; want %s (error: %v)", c.in, th.String(), err, c.want, c.bad)
		}
	}
}

package console

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/keyward/keyward/client"
	"github.com/keyward/keyward/internal/httpapi/apitest"
)

// failingSender answers every delivery with a 500.
type failingSender struct{}

func (failingSender) Send(context.Context, string, map[string]string, []byte) (int, error) {
	return http.StatusInternalServerError, nil
}

func TestWebhookFormsShowTheSecretOnceAndTheDeliveryLog(t *testing.T) {
	e := start(t, apitest.Options{})
	ctx := context.Background()
	b := e.browser(t)
	b.signIn(e.AdminKey)

	secret := b.revealed("/console/webhooks", url.Values{"url": {"https://hooks.example.com/keyward"}, "events": {"credential.expiring, machine.created"},
		"description": {"ops"}})
	e.Remember(secret)
	if !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("the shown secret is not a signing secret")
	}
	hooks, err := e.kw.ListWebhooks(ctx)
	if err != nil || len(hooks) != 1 || !slices.Equal(hooks[0].Events, []string{"credential.expiring", "machine.created"}) || hooks[0].Description != "ops" {
		t.Fatalf("endpoints: %+v %v", hooks, err)
	}
	h := hooks[0]
	if list := b.get("/console/webhooks"); !strings.Contains(list.body, "https://hooks.example.com/keyward") || !strings.Contains(list.body, `href="/console/webhooks/`+h.ID+`"`) {
		t.Fatalf("the list lacks the endpoint: %.300s", list.body)
	}
	path := "/console/webhooks/" + h.ID

	b.posted(path, url.Values{"url": {"https://hooks.example.com/v2"}, "events": {"*"}, "description": {""}})
	if got, err := e.kw.GetWebhook(ctx, h.ID); err != nil || got.URL != "https://hooks.example.com/v2" || !slices.Equal(got.Events, []string{"*"}) || got.Description != "" {
		t.Fatalf("edited endpoint: %+v %v", got, err)
	}
	if p := b.post(path, url.Values{"csrf": {b.csrf()}, "url": {"ftp://nope"}, "events": {"*"}}); p.status != http.StatusBadRequest {
		t.Errorf("an invalid URL: %d", p.status)
	}

	b.posted(path+"/test", nil)
	// The edit to "*" is itself an event (webhook.updated) besides the ping.
	if n, err := e.Auth.DeliverWebhooks(ctx, failingSender{}); err != nil || n == 0 {
		t.Fatalf("delivered %d (%v)", n, err)
	}
	detail := b.get(path)
	for _, want := range []string{"webhook.ping", `class="state pending"`, "HTTP 500", "<td>1</td>", "Replay"} {
		if !strings.Contains(detail.body, want) {
			t.Errorf("the delivery log lacks %q", want)
		}
	}
	ds, err := e.kw.WebhookDeliveries(ctx, h.ID, 0)
	i := slices.IndexFunc(ds, func(d client.WebhookDelivery) bool { return d.EventType == "webhook.ping" })
	if err != nil || i < 0 || ds[i].NextAttemptAt == nil || ds[i].Attempts != 1 {
		t.Fatalf("deliveries: %+v %v", ds, err)
	}
	ping := ds[i]
	b.posted(path+"/deliveries/"+ping.ID+"/replay", nil)
	if after, err := e.kw.WebhookDeliveries(ctx, h.ID, 0); err != nil || len(after) != len(ds)+1 || after[0].EventID != ping.EventID {
		t.Fatalf("after the replay: %+v %v", after, err)
	}

	rotated := b.revealed(path+"/rotate", url.Values{})
	e.Remember(rotated)
	if rotated == secret || !strings.HasPrefix(rotated, "whsec_") {
		t.Fatal("the rotation showed no new secret")
	}
	for _, p := range []string{"/console/webhooks", path, "/console/audit"} {
		b.get(p)
	}
	reveals := 0
	for _, s := range b.seen {
		for _, sec := range []string{secret, rotated} {
			if strings.Contains(s, sec) {
				reveals++
				if !strings.Contains(s, `<output id="secret"`) {
					t.Errorf("a signing secret is outside a reveal page: %.200s", s)
				}
			}
		}
	}
	if reveals != 2 {
		t.Errorf("%d pages showed a signing secret, want 2 (create, rotate)", reveals)
	}
	for _, sec := range []string{secret, rotated} {
		if strings.Contains(e.logs.String(), sec) || strings.Contains(e.Logs.String(), sec) {
			t.Error("a signing secret is in a log line")
		}
	}

	b.posted(path+"/delete", nil)
	if _, err := e.kw.GetWebhook(ctx, h.ID); err == nil {
		t.Error("the endpoint survived its delete")
	}
}

func TestAWebhooksReaderSeesNoWriteButtonsAndIsRefused(t *testing.T) {
	e := start(t, apitest.Options{})
	ctx := context.Background()
	h, err := e.kw.CreateWebhook(ctx, client.WebhookParams{URL: "https://hooks.example.com/keyward", Events: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	e.Remember(h.Secret)
	if _, err := e.kw.TestWebhook(ctx, h.ID); err != nil {
		t.Fatal(err)
	}
	rk, err := e.kw.CreateAdminKey(ctx, client.AdminKeyParams{Name: "reader", Permissions: []string{"webhooks:read"}})
	if err != nil {
		t.Fatal(err)
	}
	e.Remember(rk.Secret)
	b := e.browser(t)
	b.signIn(rk.Secret)
	postForm := regexp.MustCompile(`<form[^>]*method="post"[^>]*action="([^"]+)"`)
	for _, path := range []string{"/console/webhooks", "/console/webhooks/" + h.ID} {
		p := b.get(path)
		if p.status != http.StatusOK || !strings.Contains(p.body, "hooks.example.com") {
			t.Fatalf("%s: %d", path, p.status)
		}
		for _, m := range postForm.FindAllStringSubmatch(p.body, -1) {
			if m[1] != "/console/logout" {
				t.Errorf("%s offers a write form to %s", path, m[1])
			}
		}
	}
	if p := b.get("/console/webhooks/" + h.ID); !strings.Contains(p.body, "webhook.ping") {
		t.Error("a reader does not see the delivery log")
	}
	csrf := csrfRE.FindStringSubmatch(b.get("/console/webhooks").body)[1]
	for _, path := range []string{"/console/webhooks/" + h.ID + "/delete", "/console/webhooks/" + h.ID + "/rotate"} {
		if p := b.post(path, url.Values{"csrf": {csrf}}); p.status != http.StatusForbidden || !strings.Contains(p.body, "webhooks:write") {
			t.Errorf("forged %s: %d %.200s", path, p.status, p.body)
		}
	}
	if _, err := e.kw.GetWebhook(ctx, h.ID); err != nil {
		t.Error("a forged delete went through")
	}
}

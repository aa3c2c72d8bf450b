package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/keyward/keyward/client"
	"github.com/keyward/keyward/internal/httpapi/apitest"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
	"github.com/keyward/keyward/internal/webhooksend"
)

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func TestVerifyWebhookAcceptsTheLibrarysSignature(t *testing.T) {
	signer, err := standardwebhooks.NewWebhook(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0)
	body := []byte(`{"type":"machine.created"}`)
	sig, err := signer.Sign("evt_1", now, body)
	if err != nil {
		t.Fatal(err)
	}
	headers := func(id, ts, sig string) http.Header {
		h := http.Header{}
		h.Set("webhook-id", id)
		h.Set("webhook-timestamp", ts)
		h.Set("webhook-signature", sig)
		return h
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	if err := client.VerifyWebhook(testSecret, headers("evt_1", ts, sig), body, now, 0); err != nil {
		t.Fatalf("the library's signature: %v", err)
	}
	if err := client.VerifyWebhook(testSecret, headers("evt_1", ts, "v1,bm9wZQ== "+sig), body, now.Add(4*time.Minute), 0); err != nil {
		t.Fatalf("one good signature among several, within tolerance: %v", err)
	}
	for name, c := range map[string]struct {
		h    http.Header
		body string
		now  time.Time
		want error
	}{
		"another body":      {headers("evt_1", ts, sig), `{"type":"machine.deleted"}`, now, client.ErrWebhookSignature},
		"another id":        {headers("evt_2", ts, sig), string(body), now, client.ErrWebhookSignature},
		"another timestamp": {headers("evt_1", strconv.FormatInt(now.Unix()+1, 10), sig), string(body), now, client.ErrWebhookSignature},
		"a v2 signature":    {headers("evt_1", ts, "v2"+strings.TrimPrefix(sig, "v1")), string(body), now, client.ErrWebhookSignature},
		"too old":           {headers("evt_1", ts, sig), string(body), now.Add(6 * time.Minute), client.ErrWebhookTimestamp},
		"from the future":   {headers("evt_1", ts, sig), string(body), now.Add(-6 * time.Minute), client.ErrWebhookTimestamp},
		"no signature":      {headers("evt_1", ts, ""), string(body), now, client.ErrWebhookHeaders},
		"a bad timestamp":   {headers("evt_1", "soon", sig), string(body), now, client.ErrWebhookHeaders},
	} {
		if err := client.VerifyWebhook(testSecret, c.h, []byte(c.body), c.now, 0); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	if err := client.VerifyWebhook("whsec_"+strings.Repeat("A", 32), headers("evt_1", ts, sig), body, now, 0); !errors.Is(err, client.ErrWebhookSignature) {
		t.Errorf("another secret: %v", err)
	}
}

// receiver is a webhook endpoint that keeps what it was sent.
type receiver struct {
	mu  sync.Mutex
	got []delivery
}

type delivery struct {
	headers http.Header
	body    []byte
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.got = append(r.got, delivery{req.Header.Clone(), b})
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func TestWebhooksEndToEnd(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		e := apitest.Start(t, s)
		ctx := context.Background()
		kw := client.New(e.URL, e.AdminKey, client.WithRetries(0))
		rcv := &receiver{}
		srv := httptest.NewServer(rcv)
		defer srv.Close()
		desc := "audit sink"
		hook, err := kw.CreateWebhook(ctx, client.WebhookParams{URL: srv.URL + "/hook", Events: []string{"machine.created", "api_key.revoked"}, Description: &desc})
		if err != nil {
			t.Fatal(err)
		}
		e.Remember(hook.Secret)
		if !strings.HasPrefix(hook.Secret, "whsec_") || hook.Description != desc {
			t.Fatalf("created %+v", hook)
		}
		got, err := kw.GetWebhook(ctx, hook.ID)
		if err != nil || got.Secret != "" || got.URL != hook.URL {
			t.Fatalf("get: %+v %v", got, err)
		}
		list, err := kw.ListWebhooks(ctx)
		if err != nil || len(list) != 1 || list[0].Secret != "" {
			t.Fatalf("list: %+v %v", list, err)
		}
		m, err := kw.CreateMachine(ctx, client.MachineParams{Name: "worker"})
		if err != nil {
			t.Fatal(err)
		}
		e.Remember(m.SecretKey)
		sender := webhooksend.New(webhooksend.Options{AllowPrivate: true})
		if n, err := e.Auth.DeliverWebhooks(ctx, sender); err != nil || n != 1 {
			t.Fatalf("deliver: %d %v", n, err)
		}
		if len(rcv.got) != 1 {
			t.Fatalf("received %d", len(rcv.got))
		}
		d := rcv.got[0]
		now := e.Clock.Now()
		if err := client.VerifyWebhook(hook.Secret, d.headers, d.body, now, time.Minute); err != nil {
			t.Fatalf("VerifyWebhook: %v", err)
		}
		lib, _ := standardwebhooks.NewWebhook(hook.Secret)
		if err := lib.VerifyIgnoringTimestamp(d.body, d.headers); err != nil {
			t.Fatalf("the Standard Webhooks library: %v", err)
		}
		var ev struct {
			Type   string `json:"type"`
			Target struct {
				Kind, ID string
			} `json:"target"`
		}
		if err := json.Unmarshal(d.body, &ev); err != nil || ev.Type != "machine.created" || ev.Target.ID != m.ID {
			t.Fatalf("event %s (%v)", d.body, err)
		}
		if strings.Contains(string(d.body), m.SecretKey) {
			t.Fatal("the event carries the machine's secret key")
		}
		ds, err := kw.WebhookDeliveries(ctx, hook.ID, 10)
		if err != nil || len(ds) != 1 || ds[0].Status != "succeeded" || ds[0].LastStatusCode == nil || *ds[0].LastStatusCode != 204 || ds[0].Attempts != 1 {
			t.Fatalf("deliveries: %+v %v", ds, err)
		}
		// Rotate, ping, replay.
		rotated, err := kw.RotateWebhookSecret(ctx, hook.ID)
		if err != nil || rotated.Secret == "" || rotated.Secret == hook.Secret {
			t.Fatalf("rotate: %v", err)
		}
		e.Remember(rotated.Secret)
		ping, err := kw.TestWebhook(ctx, hook.ID)
		if err != nil || ping.EventType != "webhook.ping" || ping.Status != "pending" || ping.NextAttemptAt == nil {
			t.Fatalf("test: %+v %v", ping, err)
		}
		if _, err := kw.ReplayWebhookDelivery(ctx, hook.ID, ds[0].ID); err != nil {
			t.Fatal(err)
		}
		if n, err := e.Auth.DeliverWebhooks(ctx, sender); err != nil || n != 2 {
			t.Fatalf("deliver: %d %v", n, err)
		}
		for _, d := range rcv.got[1:] {
			if err := client.VerifyWebhook(rotated.Secret, d.headers, d.body, now, time.Minute); err != nil {
				t.Errorf("after rotation: %v", err)
			}
		}
		replays := 0
		for _, d := range rcv.got[1:] {
			if string(d.body) == string(rcv.got[0].body) {
				replays++
				if d.headers.Get("webhook-id") != rcv.got[0].headers.Get("webhook-id") {
					t.Error("the replay has another webhook-id")
				}
			}
		}
		if replays != 1 {
			t.Errorf("%d replays received", replays)
		}
		// Update, refusals, another instance, delete.
		upd, err := kw.UpdateWebhook(ctx, hook.ID, client.WebhookParams{Events: []string{"*"}})
		if err != nil || len(upd.Events) != 1 || upd.Events[0] != "*" {
			t.Fatalf("update: %+v %v", upd, err)
		}
		if _, err := kw.CreateWebhook(ctx, client.WebhookParams{URL: "gopher://x", Events: []string{"*"}}); !errors.Is(err, client.ErrInvalid) {
			t.Errorf("a gopher URL: %v", err)
		}
		if _, err := kw.CreateWebhook(ctx, client.WebhookParams{URL: srv.URL, Events: []string{"machine.secret_key.read"}}); !errors.Is(err, client.ErrInvalid) {
			t.Errorf("a secret-read event: %v", err)
		}
		ro, err := kw.CreateAdminKey(ctx, client.AdminKeyParams{Name: "reader", Permissions: []string{"webhooks:read"}})
		if err != nil {
			t.Fatal(err)
		}
		e.Remember(ro.Secret)
		rk := client.New(e.URL, ro.Secret, client.WithRetries(0))
		if _, err := rk.ListWebhooks(ctx); err != nil {
			t.Errorf("webhooks:read lists: %v", err)
		}
		if _, err := rk.RotateWebhookSecret(ctx, hook.ID); !errors.Is(err, client.ErrForbidden) {
			t.Errorf("webhooks:read rotates: %v", err)
		}
		if err := kw.DeleteWebhook(ctx, hook.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := kw.GetWebhook(ctx, hook.ID); !errors.Is(err, client.ErrNotFound) {
			t.Errorf("after delete: %v", err)
		}
	})
}

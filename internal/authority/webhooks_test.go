package authority_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/inmem"
	"github.com/keyward/keyward/internal/keyring"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

// sent is one delivery a fakeSender received.
type sent struct {
	url     string
	headers http.Header
	body    []byte
}

// fakeSender records deliveries and answers with status (200 unless set).
type fakeSender struct {
	mu     sync.Mutex
	got    []sent
	status int
}

func (s *fakeSender) Send(_ context.Context, url string, headers map[string]string, body []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := http.Header{}
	for k, v := range headers {
		h.Set(k, v)
	}
	s.got = append(s.got, sent{url: url, headers: h, body: slices.Clone(body)})
	if s.status == 0 {
		return 200, nil
	}
	return s.status, nil
}

func (s *fakeSender) received() []sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

func webhookAuthority(t *testing.T, store authority.Store, clock authority.Clock) *authority.Authority {
	t.Helper()
	keys, err := keyring.New(bytes.Repeat([]byte{3}, keyring.MasterKeySize))
	if err != nil {
		t.Fatal(err)
	}
	return authority.New(authority.Config{Store: store, Keyring: keys, Clock: clock, Limiter: inmem.NewLimiter()})
}

func newInstance(t *testing.T, a *authority.Authority) authority.Caller {
	t.Helper()
	in, _, err := a.CreateInstance(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	return authority.Operator(in.ID)
}

func outboxSize(t *testing.T, store *sqlstore.Store) (events, deliveries int) {
	t.Helper()
	events, deliveries, err := store.OutboxCounts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return events, deliveries
}

func TestWebhookEventsAreSignedOrderedAndCarryNoSecret(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		clock := testkit.NewClock()
		a := webhookAuthority(t, store, clock)
		op := newInstance(t, a)
		desc := "ops"
		w, whsec, err := a.CreateWebhook(ctx, op, authority.CreateWebhookInput{URL: "https://hooks.example.com/keyward",
			Events: []string{"machine.created", "machine.secret_key.rotated", "machine.created"}, Description: &desc})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(whsec.Reveal(), "whsec_") || !slices.Equal(w.Events, []string{"machine.created", "machine.secret_key.rotated"}) {
			t.Fatalf("created %+v, secret prefix %q", w, whsec.DisplayPrefix())
		}
		name := "worker"
		m, secret1, err := a.CreateMachine(ctx, op, authority.CreateMachineInput{Name: &name})
		if err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Second)
		if _, err := a.MachineSecretKey(ctx, op, m.ID); err != nil { // a secret read emits nothing
			t.Fatal(err)
		}
		ttl := int64(0)
		secret2, err := a.RotateMachineSecretKey(ctx, op, m.ID, &ttl)
		if err != nil {
			t.Fatal(err)
		}
		other := "other"
		if _, _, err := a.CreateMachine(ctx, op, authority.CreateMachineInput{Name: &other}); err != nil {
			t.Fatal(err)
		}
		s := &fakeSender{}
		// Round one: the first event of each machine; the rotation waits
		// for its machine's creation to be delivered.
		if n, err := a.DeliverWebhooks(ctx, s); err != nil || n != 2 {
			t.Fatalf("round 1 attempted %d, %v; want the two creations", n, err)
		}
		if n, err := a.DeliverWebhooks(ctx, s); err != nil || n != 1 {
			t.Fatalf("round 2 attempted %d, %v; want the rotation", n, err)
		}
		if n, err := a.DeliverWebhooks(ctx, s); err != nil || n != 0 {
			t.Fatalf("round 3 attempted %d, %v; want nothing", n, err)
		}
		got := s.received()
		verifier, err := standardwebhooks.NewWebhook(whsec.Reveal())
		if err != nil {
			t.Fatal(err)
		}
		var types []string
		for _, d := range got {
			if d.url != w.URL {
				t.Errorf("delivered to %s", d.url)
			}
			if err := verifier.VerifyIgnoringTimestamp(d.body, d.headers); err != nil {
				t.Errorf("the Standard Webhooks library rejects the signature: %v", err)
			}
			if ts, _ := strconv.ParseInt(d.headers.Get("webhook-timestamp"), 10, 64); ts != clock.Now().Unix() {
				t.Errorf("webhook-timestamp %d, want the send time %d", ts, clock.Now().Unix())
			}
			for _, secret := range []string{secret1.Reveal(), secret2.Reveal(), whsec.Reveal()} {
				if bytes.Contains(d.body, []byte(secret)) {
					t.Errorf("a payload carries a secret: %s", d.body)
				}
			}
			var p struct {
				ID, Type, InstanceID string
				OccurredAt           string `json:"occurred_at"`
				Actor, Target        struct{ Kind, ID string }
				Detail               json.RawMessage
			}
			if err := json.Unmarshal(d.body, &p); err != nil {
				t.Fatal(err)
			}
			if p.ID != d.headers.Get("webhook-id") || !strings.HasPrefix(p.ID, "evt_") || p.Target.Kind != "machine" || p.Actor.Kind != "operator" {
				t.Errorf("payload %s, webhook-id %s", d.body, d.headers.Get("webhook-id"))
			}
			types = append(types, p.Type)
			if p.Target.ID == m.ID && p.Type == "machine.secret_key.rotated" && !strings.Contains(string(p.Detail), "previous_token_ttl") {
				t.Errorf("the rotation's detail is not the audit detail: %s", p.Detail)
			}
		}
		if !slices.Equal(types, []string{"machine.created", "machine.created", "machine.secret_key.rotated"}) {
			t.Fatalf("event types %v", types)
		}
		// Lists and logs never show the signing secret.
		list, err := a.ListWebhooks(ctx, op)
		if err != nil || len(list) != 1 {
			t.Fatal(list, err)
		}
		ds, err := a.ListWebhookDeliveries(ctx, op, w.ID, 0)
		if err != nil || len(ds) != 3 {
			t.Fatal(len(ds), err)
		}
		for _, d := range ds {
			if d.State != credential.DeliverySucceeded || d.Attempts != 1 || d.LastStatus != 200 {
				t.Errorf("delivery %+v", d)
			}
		}
		events, _, err := a.ListAuditEvents(ctx, op, authority.ListAuditEventsInput{})
		if err != nil {
			t.Fatal(err)
		}
		dump, _ := json.Marshal([]any{list, ds, events})
		if bytes.Contains(dump, []byte(whsec.Reveal())) || bytes.Contains(dump, []byte(strings.TrimPrefix(whsec.Reveal(), "whsec_"))) {
			t.Fatal("the signing secret shows in a list")
		}
		// Rotation: the new secret signs from now on.
		_, whsec2, err := a.RotateWebhookSecret(ctx, op, w.ID)
		if err != nil {
			t.Fatal(err)
		}
		d, err := a.TestWebhook(ctx, op, w.ID)
		if err != nil || d.EventType != credential.EventPing {
			t.Fatal(d, err)
		}
		if n, err := a.DeliverWebhooks(ctx, s); err != nil || n != 1 {
			t.Fatal(n, err)
		}
		ping := s.received()[3]
		v2, _ := standardwebhooks.NewWebhook(whsec2.Reveal())
		if err := v2.VerifyIgnoringTimestamp(ping.body, ping.headers); err != nil {
			t.Fatalf("ping not signed with the rotated secret: %v", err)
		}
		if verifier.VerifyIgnoringTimestamp(ping.body, ping.headers) == nil {
			t.Fatal("the old secret still verifies after rotation")
		}
		// Replay sends the same event again, with the same webhook-id.
		r, err := a.ReplayWebhookDelivery(ctx, op, w.ID, ds[0].ID)
		if err != nil || r.EventID != ds[0].EventID {
			t.Fatal(r, err)
		}
		if n, err := a.DeliverWebhooks(ctx, s); err != nil || n != 1 {
			t.Fatal(n, err)
		}
		if again := s.received()[4]; again.headers.Get("webhook-id") != ds[0].EventID {
			t.Fatalf("replay webhook-id %s, want %s", again.headers.Get("webhook-id"), ds[0].EventID)
		}
	})
}

// rollingBack commits nothing: every change runs in full (its audit event
// and its outbox rows written) and is then rolled back.
type rollingBack struct{ authority.Store }

func (s rollingBack) Update(ctx context.Context, fn func(authority.Tx) error) error {
	return s.Store.Update(ctx, func(tx authority.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		return errors.New("the commit is lost")
	})
}

func TestARolledBackChangeEmitsNoEvent(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		clock := testkit.NewClock()
		a := webhookAuthority(t, store, clock)
		op := newInstance(t, a)
		if _, _, err := a.CreateWebhook(ctx, op, authority.CreateWebhookInput{URL: "https://hooks.example.com/", Events: []string{"*"}}); err != nil {
			t.Fatal(err)
		}
		ev0, del0 := outboxSize(t, store)
		name := "worker"
		for label, broken := range map[string]authority.Store{"audit fails": failingAudit{store}, "commit lost": rollingBack{store}} {
			if _, _, err := webhookAuthority(t, broken, clock).CreateMachine(ctx, op, authority.CreateMachineInput{Name: &name}); err == nil {
				t.Fatalf("%s: CreateMachine succeeded", label)
			}
			if ev, del := outboxSize(t, store); ev != ev0 || del != del0 {
				t.Fatalf("%s: the outbox holds %d events, %d deliveries; before the change %d, %d", label, ev, del, ev0, del0)
			}
		}
		if _, _, err := a.CreateMachine(ctx, op, authority.CreateMachineInput{Name: &name}); err != nil {
			t.Fatal(err)
		}
		if ev, del := outboxSize(t, store); ev != ev0+1 || del != del0+1 {
			t.Fatalf("a committed change wrote %d events, %d deliveries", ev-ev0, del-del0)
		}
	})
}

func TestAnInstanceWithoutWebhooksWritesNoOutbox(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		a := webhookAuthority(t, store, testkit.NewClock())
		op := newInstance(t, a)
		if _, _, err := a.CreateWebhook(ctx, op, authority.CreateWebhookInput{URL: "https://hooks.example.com/", Events: []string{"api_key.revoked"}}); err != nil {
			t.Fatal(err)
		}
		other := newInstance(t, a)
		name := "worker"
		for _, c := range []authority.Caller{op, other} {
			if _, _, err := a.CreateMachine(ctx, c, authority.CreateMachineInput{Name: &name}); err != nil {
				t.Fatal(err)
			}
		}
		if ev, del := outboxSize(t, store); ev != 0 || del != 0 {
			t.Fatalf("unsubscribed changes wrote %d events, %d deliveries", ev, del)
		}
	})
}

func TestAnEndpointMadeOnAnotherNodeGetsTheNextChangesEventBeforeAnyInvalidation(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		clock := testkit.NewClock()
		// Two nodes on one store and no bus: node B never hears that
		// node A made an endpoint.
		nodeA, nodeB := webhookAuthority(t, store, clock), webhookAuthority(t, store, clock)
		op := newInstance(t, nodeA)
		name := "worker"
		// Node B has looked at the instance's endpoints (there were none)
		// and would have cached that.
		if _, _, err := nodeB.CreateMachine(ctx, op, authority.CreateMachineInput{Name: &name}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := nodeA.CreateWebhook(ctx, op, authority.CreateWebhookInput{URL: "https://hooks.example.com/", Events: []string{"machine.created"}}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := nodeB.CreateMachine(ctx, op, authority.CreateMachineInput{Name: &name}); err != nil {
			t.Fatal(err)
		}
		if ev, del := outboxSize(t, store); ev != 1 || del != 1 {
			t.Fatalf("the change after the endpoint was made wrote %d events, %d deliveries; want 1, 1", ev, del)
		}
	})
}

func TestFailingDeliveriesBackOffThenDeadLetter(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		clock := testkit.NewClock()
		a := webhookAuthority(t, store, clock)
		op := newInstance(t, a)
		w, _, err := a.CreateWebhook(ctx, op, authority.CreateWebhookInput{URL: "https://hooks.example.com/", Events: []string{"machine.created", "machine.updated"}})
		if err != nil {
			t.Fatal(err)
		}
		worker := "worker"
		m, _, err := a.CreateMachine(ctx, op, authority.CreateMachineInput{Name: &worker})
		if err != nil {
			t.Fatal(err)
		}
		name := "renamed"
		if _, err := a.UpdateMachine(ctx, op, m.ID, authority.UpdateMachineInput{Name: &name}); err != nil {
			t.Fatal(err)
		}
		start := clock.Now()
		s := &fakeSender{status: 503}
		first := func() credential.WebhookDelivery {
			ds, err := a.ListWebhookDeliveries(ctx, op, w.ID, 0)
			if err != nil || len(ds) != 2 {
				t.Fatal(len(ds), err)
			}
			return ds[1] // the oldest: the creation
		}
		for attempt := 1; ; attempt++ {
			n, err := a.DeliverWebhooks(ctx, s)
			if err != nil || n != 1 {
				t.Fatalf("attempt %d: attempted %d, %v (the update must wait behind the creation)", attempt, n, err)
			}
			d := first()
			if d.Attempts != attempt || d.LastStatus != 503 || d.LastError != "HTTP 503" {
				t.Fatalf("attempt %d: %+v", attempt, d)
			}
			if d.State == credential.DeliveryDead {
				if since := clock.Now().Sub(start); since > authority.WebhookRetryWindow || since < authority.WebhookRetryWindow-5*time.Hour {
					t.Fatalf("dead-lettered %v after the event", since)
				}
				break
			}
			delay := d.NextAttemptAt.Sub(clock.Now())
			base := authority.WebhookRetryDelay(attempt)
			if delay < base || delay > base+base/5 {
				t.Fatalf("attempt %d: retry in %v, want %v plus at most 20%% jitter", attempt, delay, base)
			}
			// Not due a moment before, due at the time.
			clock.Set(d.NextAttemptAt.Add(-time.Millisecond))
			if n, err := a.DeliverWebhooks(ctx, s); err != nil || n != 0 {
				t.Fatalf("attempt %d: a retry went out early (%d, %v)", attempt, n, err)
			}
			clock.Set(d.NextAttemptAt)
			if attempt > 40 {
				t.Fatal("never dead-lettered")
			}
		}
		// The dead letter no longer holds back the next event of the machine.
		s.status = 200
		if n, err := a.DeliverWebhooks(ctx, s); err != nil || n != 1 {
			t.Fatalf("after the dead letter: %d, %v", n, err)
		}
		if last := s.received()[len(s.received())-1]; !bytes.Contains(last.body, []byte(`"machine.updated"`)) {
			t.Fatalf("delivered %s", last.body)
		}
	})
}

func TestAnotherInstancesWebhookIsNotFound(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		a := webhookAuthority(t, store, testkit.NewClock())
		op, other := newInstance(t, a), newInstance(t, a)
		w, _, err := a.CreateWebhook(ctx, op, authority.CreateWebhookInput{URL: "https://hooks.example.com/", Events: []string{"*"}})
		if err != nil {
			t.Fatal(err)
		}
		d, err := a.TestWebhook(ctx, op, w.ID)
		if err != nil {
			t.Fatal(err)
		}
		url := "https://evil.example.com/"
		calls := map[string]func() error{
			"get": func() error { _, err := a.GetWebhook(ctx, other, w.ID); return err },
			"update": func() error {
				_, err := a.UpdateWebhook(ctx, other, w.ID, authority.UpdateWebhookInput{URL: &url})
				return err
			},
			"delete":     func() error { return a.DeleteWebhook(ctx, other, w.ID) },
			"rotate":     func() error { _, _, err := a.RotateWebhookSecret(ctx, other, w.ID); return err },
			"test":       func() error { _, err := a.TestWebhook(ctx, other, w.ID); return err },
			"deliveries": func() error { _, err := a.ListWebhookDeliveries(ctx, other, w.ID, 0); return err },
			"replay":     func() error { _, err := a.ReplayWebhookDelivery(ctx, other, w.ID, d.ID); return err },
		}
		for name, call := range calls {
			if err := call(); credential.CodeOf(err) != credential.CodeNotFound {
				t.Errorf("%s from another instance: %v, want not found", name, err)
			}
		}
		if list, err := a.ListWebhooks(ctx, other); err != nil || len(list) != 0 {
			t.Errorf("the other instance lists %v, %v", list, err)
		}
	})
}

func TestWebhookInputIsChecked(t *testing.T) {
	ctx := context.Background()
	a := webhookAuthority(t, testkit.OpenSQLite(t), testkit.NewClock())
	op := newInstance(t, a)
	for _, in := range []authority.CreateWebhookInput{
		{URL: "", Events: []string{"*"}},
		{URL: "ftp://example.com/", Events: []string{"*"}},
		{URL: "https://user:pw@example.com/", Events: []string{"*"}},
		{URL: "/relative", Events: []string{"*"}},
		{URL: "https://example.com/", Events: nil},
		{URL: "https://example.com/", Events: []string{"machine.secret_key.read"}},
	} {
		if _, _, err := a.CreateWebhook(ctx, op, in); credential.CodeOf(err) == "" {
			t.Errorf("CreateWebhook(%+v) succeeded", in)
		}
	}
}

// Every action a use case audits maps to a listed event type, or to none
// on purpose (the secret reads, reuse, the webhook test and replay; a
// credential's controls and credits, which change what a verify allows,
// not the credential's life: the credential.* notices report their effect).
func TestEveryAuditActionHasAnEvent(t *testing.T) {
	silent := []string{"machine.secret_key.read", "api_key.secret_read", "m2m_token.reuse", "webhook.test", "webhook.delivery.replay"}
	files, _ := filepath.Glob("*.go")
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || sel.Sel.Name != "audit" {
				return true
			}
			lit, ok := call.Args[0].(*ast.BasicLit)
			if !ok {
				return true
			}
			action, _ := strconv.Unquote(lit.Value)
			typ, emits := credential.EventType(action)
			switch {
			case slices.Contains(silent, action):
				if emits {
					t.Errorf("%s emits %s; it should emit nothing", action, typ)
				}
			case credential.PerKindEvent(action):
				// Shared by every kind: it emits under the target's kind.
				for _, k := range credential.LeakableKinds {
					if kt, _ := credential.EventTypeFor(action, credential.LeakTarget(k)); !slices.Contains(credential.EventTypes, kt) {
						t.Errorf("%s on a %s emits %s, which credential.EventTypes does not list", action, k, kt)
					}
				}
			case !emits:
				t.Errorf("%s: the audit action maps to no event type (add its verb to credential.eventVerbs, or list it as silent)", action)
			case !slices.Contains(credential.EventTypes, typ):
				t.Errorf("%s emits %s, which credential.EventTypes does not list", action, typ)
			}
			return true
		})
	}
}

// Three dispatchers over one PostgreSQL database claim with SKIP LOCKED
// and leases: each event is delivered once.
func TestThreeDispatchersDeliverEachEventOnce(t *testing.T) {
	url := testkit.PostgresURL(t)
	ctx := context.Background()
	open := func() *sqlstore.Store {
		s, err := sqlstore.OpenPostgres(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	clock := testkit.NewClock()
	nodes := []*authority.Authority{webhookAuthority(t, open(), clock), webhookAuthority(t, open(), clock), webhookAuthority(t, open(), clock)}
	op := newInstance(t, nodes[0])
	if _, _, err := nodes[0].CreateWebhook(ctx, op, authority.CreateWebhookInput{URL: "https://hooks.example.com/", Events: []string{"*"}}); err != nil {
		t.Fatal(err)
	}
	const machines = 150
	for i := range machines {
		name := "m" + strconv.Itoa(i)
		if _, _, err := nodes[i%len(nodes)].CreateMachine(ctx, op, authority.CreateMachineInput{Name: &name}); err != nil {
			t.Fatal(err)
		}
	}
	s := &fakeSender{}
	for round := 0; round < 20; round++ {
		var wg sync.WaitGroup
		for _, n := range nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := n.DeliverWebhooks(ctx, s); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
	}
	seen := map[string]int{}
	for _, d := range s.received() {
		seen[d.headers.Get("webhook-id")]++
	}
	if len(seen) != machines+1 { // the machines and the webhook's own creation
		t.Fatalf("%d distinct events delivered, want %d", len(seen), machines+1)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("event %s delivered %d times", id, n)
		}
	}
}

// A change committed before a crash is delivered after it: by a node
// restarted over the same store, once the crashed claim's lease is over.
func TestACommittedEventOutlivesACrashedDispatcher(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		clock := testkit.NewClock()
		a := webhookAuthority(t, store, clock)
		op := newInstance(t, a)
		if _, _, err := a.CreateWebhook(ctx, op, authority.CreateWebhookInput{URL: "https://hooks.example.com/", Events: []string{"machine.created"}}); err != nil {
			t.Fatal(err)
		}
		name := "worker"
		if _, _, err := a.CreateMachine(ctx, op, authority.CreateMachineInput{Name: &name}); err != nil {
			t.Fatal(err)
		}
		// A dispatcher claims the delivery and dies (kill -9) before it
		// records an outcome.
		err := store.Update(ctx, func(tx authority.Tx) error {
			claimed, err := tx.ClaimWebhookDeliveries(ctx, clock.Now(), clock.Now().Add(authority.WebhookLease), 10)
			if err == nil && len(claimed) != 1 {
				t.Errorf("claimed %d", len(claimed))
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		restarted := webhookAuthority(t, store, clock)
		s := &fakeSender{}
		if n, err := restarted.DeliverWebhooks(ctx, s); err != nil || n != 0 {
			t.Fatalf("within the lease: %d, %v; the crashed claim still holds it", n, err)
		}
		clock.Advance(authority.WebhookLease)
		if n, err := restarted.DeliverWebhooks(ctx, s); err != nil || n != 1 {
			t.Fatalf("after the lease: %d, %v", n, err)
		}
		if got := s.received(); len(got) != 1 || !bytes.Contains(got[0].body, []byte(`"machine.created"`)) {
			t.Fatalf("received %v", got)
		}
	})
}

func TestTheDeliveryLogIsPrunedAfterItsRetention(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		clock := testkit.NewClock()
		a := webhookAuthority(t, store, clock)
		op := newInstance(t, a)
		w, _, err := a.CreateWebhook(ctx, op, authority.CreateWebhookInput{URL: "https://hooks.example.com/", Events: []string{"machine.created"}})
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"a", "b"} {
			if _, _, err := a.CreateMachine(ctx, op, authority.CreateMachineInput{Name: &name}); err != nil {
				t.Fatal(err)
			}
		}
		if n, err := a.DeliverWebhooks(ctx, &fakeSender{}); err != nil || n != 2 {
			t.Fatal(n, err)
		}
		clock.Advance(time.Hour)
		c := "c"
		if _, _, err := a.CreateMachine(ctx, op, authority.CreateMachineInput{Name: &c}); err != nil { // stays pending
			t.Fatal(err)
		}
		clock.Advance(authority.WebhookLogRetention)
		if n, err := a.PruneWebhookLog(ctx); err != nil || n != 2 {
			t.Fatalf("pruned %d, %v; want the two delivered", n, err)
		}
		ds, err := a.ListWebhookDeliveries(ctx, op, w.ID, 0)
		if err != nil || len(ds) != 1 || ds[0].State != credential.DeliveryPending {
			t.Fatalf("left %+v, %v; want the pending one", ds, err)
		}
		if ev, del := outboxSize(t, store); ev != 1 || del != 1 {
			t.Fatalf("outbox %d events, %d deliveries", ev, del)
		}
	})
}

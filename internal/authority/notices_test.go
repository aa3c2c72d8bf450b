package authority_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

var noticeTypes = []string{credential.EventExpiring, credential.EventExpired, credential.EventUnused,
	credential.EventRateLimitExhausted, credential.EventCreditsLow, credential.EventUsageExceeded}

// noticeBody is what a notice's delivery carries.
type noticeBody struct {
	Type   string `json:"type"`
	Actor  struct{ Kind, ID string }
	Target struct{ Kind, ID string }
	Detail map[string]any
}

// delivered runs the dispatcher until nothing is due and returns the
// bodies s received since the last call, decoded.
func delivered(t *testing.T, a *authority.Authority, s *fakeSender, seen *int) []noticeBody {
	t.Helper()
	testkit.DeliverAllWebhooks(t, a, s)
	got := s.received()
	var out []noticeBody
	for _, g := range got[*seen:] {
		var b noticeBody
		if err := json.Unmarshal(g.body, &b); err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	*seen = len(got)
	return out
}

func countType(bodies []noticeBody, typ, targetID string) int {
	n := 0
	for _, b := range bodies {
		if b.Type == typ && (targetID == "" || b.Target.ID == targetID) {
			n++
		}
	}
	return n
}

func subscribeNotices(t *testing.T, a *authority.Authority, op authority.Caller, events ...string) {
	t.Helper()
	if len(events) == 0 {
		events = noticeTypes
	}
	if _, _, err := a.CreateWebhook(context.Background(), op, authority.CreateWebhookInput{URL: "https://hooks.example.com/notices", Events: events}); err != nil {
		t.Fatal(err)
	}
}

func noticeKey(t *testing.T, a *authority.Authority, op authority.Caller, expiresIn time.Duration, controls authority.ControlsInput) authority.APIKey {
	t.Helper()
	name, subject := "noticed key", "user_2xhFjEI5X2qWRvtV13BzSj8H6Dk"
	in := authority.CreateAPIKeyInput{Name: &name, Subject: &subject, Controls: controls}
	if expiresIn > 0 {
		in.SecondsUntilExpiration = ptr(expiresIn.Seconds())
	}
	k, err := a.CreateAPIKey(context.Background(), op, in)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// noticeInstance makes an instance and returns its operator and its
// admin key's caller (verify needs an admin or machine caller).
func noticeInstance(t *testing.T, a *authority.Authority) (op, admin authority.Caller) {
	t.Helper()
	in, key, err := a.CreateInstance(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	if admin, err = a.Authenticate(context.Background(), key.Reveal()); err != nil {
		t.Fatal(err)
	}
	return authority.Operator(in.ID), admin
}

func scan(t *testing.T, a *authority.Authority) int {
	t.Helper()
	n, err := a.ScanNotices(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

const day = 24 * time.Hour

// thresholdOf is the detail.threshold of the first body of type typ.
func thresholdOf(bodies []noticeBody, typ string) any {
	for _, b := range bodies {
		if b.Type == typ {
			return b.Detail["threshold"]
		}
	}
	return nil
}

// expiring is sent once per threshold (the smallest that holds the
// expiry), expired once, whatever the passes; payloads name the
// credential and the system actor, never the secret.
func TestExpiringAndExpiredNoticesAreSentOncePerThreshold(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		clock := testkit.NewClock()
		a := webhookAuthority(t, store, clock)
		a.SetNotices(authority.NoticeConfig{Expiring: []time.Duration{day, 7 * day}})
		op := newInstance(t, a)
		subscribeNotices(t, a, op)
		s, seen := &fakeSender{}, 0
		long := noticeKey(t, a, op, 10*day, authority.ControlsInput{})
		short := noticeKey(t, a, op, 12*time.Hour, authority.ControlsInput{})
		noticeKey(t, a, op, 0, authority.ControlsInput{}) // never expires

		if n := scan(t, a); n != 1 {
			t.Fatalf("first pass sent %d notices, want 1 (the 12 h key's 1d)", n)
		}
		if n := scan(t, a); n != 0 {
			t.Fatalf("second pass sent %d notices, want 0", n)
		}
		got := delivered(t, a, s, &seen)
		if len(got) != 1 || countType(got, credential.EventExpiring, short.ID) != 1 || got[0].Detail["threshold"] != "1d" {
			t.Fatalf("delivered %+v, want one 1d expiring for %s", got, short.ID)
		}
		b := got[0]
		if b.Actor.Kind != "system" || b.Target.Kind != string(credential.KindAPIKey) || b.Detail["credential_id"] != short.ID ||
			b.Detail["subject"] != "user_2xhFjEI5X2qWRvtV13BzSj8H6Dk" || b.Detail["kind"] != "api_key" {
			t.Fatalf("notice body %+v", b)
		}
		for _, g := range s.received() {
			if strings.Contains(string(g.body), short.Secret) || strings.Contains(string(g.body), long.Secret) {
				t.Fatal("a notice carries a secret")
			}
		}

		clock.Advance(4 * day) // long: 6 days left (7d); short: expired
		if n := scan(t, a) + scan(t, a); n != 2 {
			t.Fatalf("after 4 days the passes sent %d notices, want 2", n)
		}
		got = delivered(t, a, s, &seen)
		if countType(got, credential.EventExpiring, long.ID) != 1 || countType(got, credential.EventExpired, short.ID) != 1 || thresholdOf(got, credential.EventExpiring) != "7d" {
			t.Fatalf("after 4 days delivered %+v", got)
		}
		clock.Advance(5*day + 12*time.Hour) // long: 12 h left (1d)
		if n := scan(t, a) + scan(t, a); n != 1 {
			t.Fatalf("12 h before the expiry the passes sent %d notices, want 1", n)
		}
		clock.Advance(day) // long expired
		if n := scan(t, a) + scan(t, a); n != 1 {
			t.Fatalf("after the expiry the passes sent %d notices, want 1", n)
		}
		got = delivered(t, a, s, &seen)
		if countType(got, credential.EventExpiring, long.ID) != 1 || countType(got, credential.EventExpired, long.ID) != 1 || len(got) != 2 {
			t.Fatalf("delivered %+v, want long's 1d expiring and its expired", got)
		}
	})
}

// Two authorities sharing a store (two nodes; on PostgreSQL concurrent
// transactions) send each notice exactly once between them.
func TestNoticesAreSentOnceAcrossNodes(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		clock := testkit.NewClock()
		a1, a2 := webhookAuthority(t, store, clock), webhookAuthority(t, store, clock)
		for _, a := range []*authority.Authority{a1, a2} {
			a.SetNotices(authority.NoticeConfig{Expiring: []time.Duration{7 * day, day}})
		}
		op := newInstance(t, a1)
		subscribeNotices(t, a1, op)
		const keys = 12
		for range keys {
			noticeKey(t, a1, op, 3*day, authority.ControlsInput{})
		}
		for pass := range 2 {
			var wg sync.WaitGroup
			sent := make([]int, 2)
			errs := make([]error, 2)
			for i, a := range []*authority.Authority{a1, a2} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					sent[i], errs[i] = a.ScanNotices(context.Background())
				}()
			}
			wg.Wait()
			if errs[0] != nil || errs[1] != nil {
				t.Fatal(errs)
			}
			want := keys
			if pass > 0 {
				want = 0
			}
			if sent[0]+sent[1] != want {
				t.Fatalf("pass %d: the nodes sent %d + %d notices, want %d", pass, sent[0], sent[1], want)
			}
		}
		if events, _ := outboxSize(t, store); events != keys {
			t.Fatalf("outbox holds %d events, want %d", events, keys)
		}
	})
}

// unused is sent once per last use: again only after the credential was
// used and then went idle again.
func TestUnusedNoticeIsSentOncePerLastUse(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		clock := testkit.NewClock()
		a := webhookAuthority(t, store, clock)
		a.SetNotices(authority.NoticeConfig{Unused: 30 * day, Batch: 2})
		op, admin := noticeInstance(t, a)
		subscribeNotices(t, a, op)
		s, seen := &fakeSender{}, 0
		k := noticeKey(t, a, op, 0, authority.ControlsInput{})
		noticeKey(t, a, op, 0, authority.ControlsInput{})
		noticeKey(t, a, op, 0, authority.ControlsInput{})
		if n := scan(t, a); n != 0 {
			t.Fatalf("fresh keys: %d notices", n)
		}
		clock.Advance(31 * day)
		total := 0
		for range 4 { // a batch of 2: two passes read all four keys
			total += scan(t, a)
		}
		if total != 4 { // and the instance's admin key
			t.Fatalf("the passes sent %d unused notices, want 4", total)
		}
		if r, err := a.Verify(ctx, admin, authority.VerifyInput{Token: k.Secret}); err != nil || !r.Valid {
			t.Fatal(r, err)
		}
		if err := a.FlushUsage(ctx); err != nil {
			t.Fatal(err)
		}
		clock.Advance(10 * day)
		for range 4 {
			if n := scan(t, a); n != 0 {
				t.Fatalf("nothing new is unused, yet a pass sent %d", n)
			}
		}
		clock.Advance(21 * day)
		total = 0
		for range 4 {
			total += scan(t, a)
		}
		if total != 1 {
			t.Fatalf("idle again: the passes sent %d notices, want 1", total)
		}
		got := delivered(t, a, s, &seen)
		if countType(got, credential.EventUnused, k.ID) != 2 || countType(got, credential.EventUnused, "") != 5 {
			t.Fatalf("delivered %+v", got)
		}
	})
}

// rate_limit_exhausted once per limit and window, usage_exceeded once
// until the credits change, credits_low once, under concurrent verifies
// on two nodes.
func TestUsageNoticesAreSentOncePerWindow(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		clock := testkit.NewClock()
		a1, a2 := webhookAuthority(t, store, clock), webhookAuthority(t, store, clock)
		for _, a := range []*authority.Authority{a1, a2} {
			a.SetNotices(authority.NoticeConfig{CreditsLow: 3})
		}
		op, admin := noticeInstance(t, a1)
		subscribeNotices(t, a1, op)
		s, seen := &fakeSender{}, 0
		limited := noticeKey(t, a1, op, 0, authority.ControlsInput{RateLimits: &[]authority.NamedLimit{
			{Name: "calls", Limit: 2, Duration: 60_000, Algorithm: authority.LimitFixed, AutoApply: true}}})
		metered := noticeKey(t, a1, op, 0, authority.ControlsInput{SetCredits: true, Credits: &authority.CreditsInput{Remaining: 5}})
		burst := func(token string, n int) (refused int) {
			var wg sync.WaitGroup
			var mu sync.Mutex
			for i := range n {
				a := []*authority.Authority{a1, a2}[i%2]
				wg.Add(1)
				go func() {
					defer wg.Done()
					r, err := a.Verify(ctx, admin, authority.VerifyInput{Token: token})
					if err != nil {
						t.Error(err)
						return
					}
					if !r.Valid {
						mu.Lock()
						refused++
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			return refused
		}
		if r := burst(limited.Secret, 20); r < 16 { // each node's limiter admits 2
			t.Fatalf("%d of 20 refused", r)
		}
		if r := burst(metered.Secret, 20); r != 15 {
			t.Fatalf("%d of 20 refused by credits, want 15", r)
		}
		got := delivered(t, a1, s, &seen)
		if countType(got, credential.EventRateLimitExhausted, limited.ID) != 1 || countType(got, credential.EventUsageExceeded, metered.ID) != 1 ||
			countType(got, credential.EventCreditsLow, metered.ID) != 1 || len(got) != 3 {
			t.Fatalf("delivered %+v, want one of each", got)
		}
		for _, b := range got {
			if b.Type == credential.EventRateLimitExhausted && b.Detail["ratelimit"] != "calls" {
				t.Fatalf("rate limit notice %+v", b)
			}
		}

		// The same window, later: nothing new. The next window: once more.
		clock.Advance(30 * time.Second)
		burst(limited.Secret, 6)
		burst(metered.Secret, 6)
		if got := delivered(t, a1, s, &seen); len(got) != 0 {
			t.Fatalf("same window delivered %+v", got)
		}
		clock.Advance(60 * time.Second)
		burst(limited.Secret, 10)
		got = delivered(t, a1, s, &seen)
		if countType(got, credential.EventRateLimitExhausted, limited.ID) != 1 || len(got) != 1 {
			t.Fatalf("next window delivered %+v", got)
		}

		// Topped up, the credits may run out (and low) again.
		if _, err := a1.ChangeCredits(ctx, op, metered.ID, "increment", ptr(int64(4))); err != nil {
			t.Fatal(err)
		}
		clock.Advance(2 * time.Minute) // past what the nodes remember
		if r := burst(metered.Secret, 10); r != 6 {
			t.Fatalf("%d of 10 refused after the top-up, want 6", r)
		}
		got = delivered(t, a1, s, &seen)
		if countType(got, credential.EventUsageExceeded, metered.ID) != 1 || countType(got, credential.EventCreditsLow, metered.ID) != 1 || len(got) != 2 {
			t.Fatalf("after the top-up delivered %+v", got)
		}
		// The rate limit's windows have ended: the scanner prunes their
		// rows; the credits' (no refill) stay until the next change.
		if n, err := store.NoticeCount(ctx); err != nil || n != 4 {
			t.Fatalf("%d notices recorded (%v), want 4", n, err)
		}
		if _, err := a1.ScanNotices(ctx); err != nil {
			t.Fatal(err)
		}
		if n, err := store.NoticeCount(ctx); err != nil || n != 2 {
			t.Fatalf("%d notices recorded after the prune (%v), want 2", n, err)
		}
	})
}

// Without an endpoint subscribed to a notice, nothing is written: no
// outbox row, no notice row.
func TestNoNoticeWithoutASubscriber(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		clock := testkit.NewClock()
		a := webhookAuthority(t, store, clock)
		a.SetNotices(authority.NoticeConfig{Expiring: []time.Duration{day}, Unused: day})
		op, admin := noticeInstance(t, a)
		subscribeNotices(t, a, op, "machine.created")
		k := noticeKey(t, a, op, 12*time.Hour, authority.ControlsInput{RateLimits: &[]authority.NamedLimit{
			{Name: "calls", Limit: 1, Duration: 60_000, Algorithm: authority.LimitFixed, AutoApply: true}},
			SetCredits: true, Credits: &authority.CreditsInput{Remaining: 1}})
		for range 3 {
			if r, err := a.Verify(ctx, admin, authority.VerifyInput{Token: k.Secret}); err != nil || r.Reason == authority.ReasonNotFound {
				t.Fatal(r, err)
			}
		}
		clock.Advance(2 * day)
		if n := scan(t, a) + scan(t, a); n != 0 {
			t.Fatalf("sent %d notices without a subscriber", n)
		}
		if events, deliveries := outboxSize(t, store); events != 0 || deliveries != 0 {
			t.Fatalf("outbox holds %d events, %d deliveries", events, deliveries)
		}
		if n, err := store.NoticeCount(ctx); err != nil || n != 0 {
			t.Fatalf("%d notices recorded (%v)", n, err)
		}
	})
}

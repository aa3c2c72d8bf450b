package pgbus_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/pgbus"
	"github.com/keyward/keyward/internal/testkit"
)

// wait bounds every wait for a delivery or a change of state.
const wait = 10 * time.Second

func unique(prefix string) string {
	b := make([]byte, 6)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// serverURL returns KEYWARD_TEST_DATABASE_URL with application_name set to
// app (when not empty), and skips the test when it is unset.
func serverURL(t *testing.T, app string) string {
	t.Helper()
	base := os.Getenv(testkit.DatabaseURLEnv)
	if base == "" {
		t.Skip(testkit.DatabaseURLEnv + " is not set; skipping the PostgreSQL bus")
	}
	if app == "" {
		return base
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("application_name", app)
	u.RawQuery = q.Encode()
	return u.String()
}

// newBus returns a Bus closed when the test ends.
func newBus(t *testing.T, url, channel string) *pgbus.Bus {
	b := pgbus.New(url, channel)
	t.Cleanup(b.Close)
	return b
}

// sub is a running Subscribe, seen through channels.
type sub struct {
	got    chan authority.Invalidation
	states chan bool
}

// subscribe runs b.Subscribe until the test ends and waits for it to be
// connected.
func subscribe(t *testing.T, b *pgbus.Bus) *sub {
	t.Helper()
	s := &sub{got: make(chan authority.Invalidation, 256), states: make(chan bool, 16)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- b.Subscribe(ctx, func(inv authority.Invalidation) { s.got <- inv },
			func(up bool) { s.states <- up })
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Subscribe returned %v after its context ended, want nil", err)
			}
		case <-time.After(wait):
			t.Error("Subscribe did not return after its context ended")
		}
	})
	s.state(t, true)
	return s
}

// state waits for the next connected report and checks it.
func (s *sub) state(t *testing.T, want bool) {
	t.Helper()
	select {
	case up := <-s.states:
		if up != want {
			t.Fatalf("connected(%v), want connected(%v)", up, want)
		}
	case <-time.After(wait):
		t.Fatalf("no connected(%v) within %v", want, wait)
	}
}

// next waits for the next delivery.
func (s *sub) next(t *testing.T) authority.Invalidation {
	t.Helper()
	select {
	case inv := <-s.got:
		return inv
	case <-time.After(wait):
		t.Fatalf("no invalidation delivered within %v", wait)
		return authority.Invalidation{}
	}
}

func digests(n int) []credential.Digest {
	ds := make([]credential.Digest, n)
	for i := range ds {
		rand.Read(ds[i][:])
	}
	return ds
}

func publish(t *testing.T, b *pgbus.Bus, inv authority.Invalidation) {
	t.Helper()
	if err := b.Publish(context.Background(), inv); err != nil {
		t.Fatalf("Publish: %v", err)
	}
}

func TestTwoSubscribersReceiveAPublish(t *testing.T) {
	url, channel := serverURL(t, ""), unique("kw_test_")
	// Two nodes, each with its own Bus; the first also publishes.
	a, b := newBus(t, url, channel), newBus(t, url, channel)
	subA, subB := subscribe(t, a), subscribe(t, b)

	want := authority.Invalidation{Digests: digests(3)}
	publish(t, a, want)
	for name, s := range map[string]*sub{"publisher": subA, "other node": subB} {
		if diff := cmp.Diff(want, s.next(t)); diff != "" {
			t.Errorf("%s received (-want +got):\n%s", name, diff)
		}
	}

	publish(t, b, authority.Invalidation{All: true})
	for _, s := range []*sub{subA, subB} {
		if got := s.next(t); !got.All || len(got.Digests) != 0 {
			t.Errorf("received %+v, want All", got)
		}
	}

	// Another channel is not heard.
	other := newBus(t, url, unique("kw_test_"))
	publish(t, other, authority.Invalidation{All: true})
	publish(t, a, want)
	if got := subB.next(t); got.All {
		t.Fatal("a publish on another channel was delivered")
	}
}

func TestLargeInvalidationDegradesToAll(t *testing.T) {
	url, channel := serverURL(t, ""), unique("kw_test_")
	b := newBus(t, url, channel)
	s := subscribe(t, b)

	// The largest invalidation that still fits goes through as it is.
	ds := digests(200)
	var fits []credential.Digest
	for {
		p, _ := json.Marshal(authority.Invalidation{Digests: ds[:len(fits)+1]})
		if len(p) > pgbus.MaxPayload {
			break
		}
		fits = ds[:len(fits)+1]
	}
	publish(t, b, authority.Invalidation{Digests: fits})
	if got := s.next(t); got.All || !slices.Equal(got.Digests, fits) {
		t.Fatalf("%d digests that fit: got All=%v with %d digests", len(fits), got.All, len(got.Digests))
	}

	// One digest more does not.
	big := authority.Invalidation{Digests: ds[:len(fits)+1]}
	publish(t, b, big)
	if got := s.next(t); !got.All || len(got.Digests) != 0 {
		t.Fatalf("too large an invalidation: got All=%v with %d digests, want All alone", got.All, len(got.Digests))
	}
	t.Logf("%d digests fit in one notification", len(fits))
}

func TestSubscriberReconnectsAfterItsBackendIsTerminated(t *testing.T) {
	app := unique("kw_bus_test_")
	url, channel := serverURL(t, app), unique("kw_test_")
	b := newBus(t, url, channel)
	s := subscribe(t, b)

	ctx := context.Background()
	admin, err := pgx.Connect(ctx, serverURL(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	listener := func() []int32 {
		t.Helper()
		rows, _ := admin.Query(ctx, `SELECT pid FROM pg_stat_activity
			WHERE application_name = $1 AND query LIKE 'LISTEN%'`, app)
		pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
		if err != nil {
			t.Fatal(err)
		}
		return pids
	}
	pids := listener()
	if len(pids) != 1 {
		t.Fatalf("%d listening backends named %s, want 1", len(pids), app)
	}
	var ok bool
	if err := admin.QueryRow(ctx, "SELECT pg_terminate_backend($1)", pids[0]).Scan(&ok); err != nil || !ok {
		t.Fatalf("pg_terminate_backend: %v, %v", ok, err)
	}

	s.state(t, false)
	s.state(t, true)
	if now := listener(); len(now) != 1 || now[0] == pids[0] {
		t.Fatalf("listening backends after the reconnect: %v (was %v)", now, pids)
	}
	want := authority.Invalidation{Digests: digests(1)}
	publish(t, b, want)
	if diff := cmp.Diff(want, s.next(t)); diff != "" {
		t.Fatalf("after the reconnect (-want +got):\n%s", diff)
	}
}

func TestPublishToDeliverLatency(t *testing.T) {
	url, channel := serverURL(t, ""), unique("kw_test_")
	b := newBus(t, url, channel)
	s := subscribe(t, b)
	publish(t, b, authority.Invalidation{All: true}) // warm the pool
	s.next(t)

	const n = 100
	took := make([]time.Duration, n)
	for i := range took {
		inv := authority.Invalidation{Digests: digests(1)}
		begin := time.Now()
		publish(t, b, inv)
		got := s.next(t)
		took[i] = time.Since(begin)
		if !slices.Equal(got.Digests, inv.Digests) {
			t.Fatalf("message %d: got %+v, want %+v", i, got, inv)
		}
	}
	slices.Sort(took)
	t.Logf("publish→deliver over %d messages: median %v, p90 %v, max %v", n, took[n/2], took[n*9/10], took[n-1])
}

func TestChannelNamesAreQuoted(t *testing.T) {
	url := serverURL(t, "")
	if got := pgbus.New(url, "").Channel(); got != "keyward_invalidate" {
		t.Fatalf("default channel %q", got)
	}
	// Case, spaces and quotes survive LISTEN and pg_notify alike.
	b := newBus(t, url, unique(`Kw "Test"; `))
	s := subscribe(t, b)
	want := authority.Invalidation{Digests: digests(2)}
	publish(t, b, want)
	if diff := cmp.Diff(want, s.next(t)); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}

	long := pgbus.New(url, strings.Repeat("c", 64))
	if err := long.Publish(context.Background(), authority.Invalidation{All: true}); err == nil {
		t.Error("Publish on a 64-byte channel succeeded")
	}
	if err := long.Subscribe(context.Background(), func(authority.Invalidation) {}, func(bool) {}); err == nil {
		t.Error("Subscribe on a 64-byte channel succeeded")
	}
}

func TestUnreadablePayloadDropsEverything(t *testing.T) {
	url, channel := serverURL(t, ""), unique("kw_test_")
	s := subscribe(t, newBus(t, url, channel))
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SELECT pg_notify($1, 'not json')", channel); err != nil {
		t.Fatal(err)
	}
	if got := s.next(t); !got.All {
		t.Fatalf("unreadable payload delivered as %+v, want All", got)
	}
}

func TestSubscribeRetriesUntilItsContextEnds(t *testing.T) {
	serverURL(t, "")
	// Nothing listens on port 1: every connect fails at once.
	b := pgbus.New("postgres://postgres@127.0.0.1:1/test?sslmode=disable", "")
	var errs int
	b.SetErrorHandler(func(error) { errs++ })
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	var states []bool
	err := b.Subscribe(ctx, func(authority.Invalidation) {}, func(up bool) { states = append(states, up) })
	if err != nil {
		t.Fatalf("Subscribe returned %v, want nil when its context ends", err)
	}
	if len(states) != 0 {
		t.Fatalf("connected reports %v without a connection", states)
	}
	if errs < 3 {
		t.Fatalf("%d connect attempts in 500ms, want several (backoff from 50ms)", errs)
	}

	bad := pgbus.New("postgres://127.0.0.1:notaport/test", "")
	if err := bad.Subscribe(context.Background(), nil, nil); err == nil {
		t.Fatal("Subscribe with an unparsable URL returned nil")
	}
}

func TestPublishAfterClose(t *testing.T) {
	b := pgbus.New(serverURL(t, ""), unique("kw_test_"))
	publish(t, b, authority.Invalidation{All: true})
	b.Close()
	if err := b.Publish(context.Background(), authority.Invalidation{All: true}); !errors.Is(err, pgbus.ErrClosed) {
		t.Fatalf("Publish after Close: %v, want ErrClosed", err)
	}
}

package redisbus_test

import (
	"context"
	"crypto/sha256"
	"net"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/redisbus"
)

// subscriber runs Subscribe and records what it is told.
type subscriber struct {
	t     *testing.T
	inv   chan authority.Invalidation
	state chan bool
	done  chan error
}

func subscribe(t *testing.T, ctx context.Context, bus *redisbus.Bus) *subscriber {
	s := &subscriber{
		t:     t,
		inv:   make(chan authority.Invalidation, 16),
		state: make(chan bool, 16),
		done:  make(chan error, 1),
	}
	go func() {
		s.done <- bus.Subscribe(ctx,
			func(inv authority.Invalidation) { s.inv <- inv },
			func(up bool) { s.state <- up })
	}()
	return s
}

func (s *subscriber) wantState(want bool) {
	s.t.Helper()
	select {
	case got := <-s.state:
		if got != want {
			s.t.Fatalf("connected(%v); want connected(%v)", got, want)
		}
	case <-time.After(5 * time.Second):
		s.t.Fatalf("no connected(%v) within 5 s", want)
	}
}

func (s *subscriber) wantInv(want authority.Invalidation) {
	s.t.Helper()
	select {
	case got := <-s.inv:
		if !reflect.DeepEqual(got, want) {
			s.t.Fatalf("delivered %+v; want %+v", got, want)
		}
	case <-time.After(5 * time.Second):
		s.t.Fatalf("nothing delivered within 5 s; want %+v", want)
	}
}

func (s *subscriber) wantQuiet() {
	s.t.Helper()
	select {
	case got := <-s.inv:
		s.t.Fatalf("unexpected delivery %+v", got)
	case up := <-s.state:
		s.t.Fatalf("unexpected connected(%v)", up)
	case <-time.After(50 * time.Millisecond):
	}
}

func digest(s string) credential.Digest { return sha256.Sum256([]byte(s)) }

func TestBusRoundTrip(t *testing.T) {
	rdb := newClient(t, nil)
	channel := "keyward:test:" + uniquePrefix(t, rdb)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	a := subscribe(t, ctx, redisbus.NewBus(rdb, channel))
	b := subscribe(t, ctx, redisbus.NewBus(newClient(t, nil), channel))
	a.wantState(true)
	b.wantState(true)

	pub := redisbus.NewBus(rdb, channel)
	invs := []authority.Invalidation{
		{Digests: []credential.Digest{digest("one"), digest("two")}},
		{All: true},
		{Digests: []credential.Digest{digest("three")}},
	}
	for i, inv := range invs {
		if i == 1 {
			// Undecodable messages are skipped.
			for _, junk := range []string{"not json", `{"digests":"x"}`, `[1,2]`} {
				if err := rdb.Publish(ctx, channel, junk).Err(); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := pub.Publish(ctx, inv); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []*subscriber{a, b} {
		for _, inv := range invs {
			s.wantInv(inv)
		}
		s.wantQuiet()
	}

	// Subscribe returns nil when ctx ends, without another report.
	cancel()
	for _, s := range []*subscriber{a, b} {
		select {
		case err := <-s.done:
			if err != nil {
				t.Fatalf("Subscribe returned %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Subscribe did not return within 5 s of ctx ending")
		}
		if len(s.state) != 0 {
			t.Fatalf("connected(%v) after ctx ended", <-s.state)
		}
	}
}

func TestBusReconnects(t *testing.T) {
	admin := newClient(t, nil)
	name := uniquePrefix(t, admin)
	channel := "keyward:test:" + name
	rdb := newClient(t, &redis.Options{ClientName: name})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	bus := redisbus.NewBus(rdb, channel)
	s := subscribe(t, ctx, bus)
	s.wantState(true)

	for round := range 3 {
		if n := killClients(t, admin, name, "pubsub"); n != 1 {
			t.Fatalf("round %d: killed %d pubsub connections; want 1", round, n)
		}
		s.wantState(false)
		s.wantState(true)
		inv := authority.Invalidation{Digests: []credential.Digest{digest("after kill " + string(rune('a'+round)))}}
		if err := bus.Publish(ctx, inv); err != nil {
			t.Fatal(err)
		}
		s.wantInv(inv)
		s.wantQuiet()
	}
}

func TestBusUnreachable(t *testing.T) {
	bus := redisbus.NewBus(unreachableClient(t), "keyward:test:none")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	var mu sync.Mutex
	var states []bool
	err := bus.Subscribe(ctx, func(authority.Invalidation) { t.Error("delivered") }, func(up bool) {
		mu.Lock()
		states = append(states, up)
		mu.Unlock()
	})
	if err != nil {
		t.Fatalf("Subscribe = %v; want nil", err)
	}
	if len(states) != 0 {
		t.Fatalf("connected calls %v; want none", states)
	}
	if err := bus.Publish(context.Background(), authority.Invalidation{All: true}); err == nil {
		t.Fatal("Publish to an unreachable Redis: no error")
	}
}

func TestOpen(t *testing.T) {
	newClient(t, nil) // skip without Redis
	ctx := context.Background()
	rdb, err := redisbus.Open(ctx, "redis://"+redisAddr+"/0")
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	if opt := rdb.Options(); opt.ReadTimeout != 500*time.Millisecond || opt.DB != 0 {
		t.Errorf("options: read timeout %v, db %d", opt.ReadTimeout, opt.DB)
	}
	rdb2, err := redisbus.Open(ctx, "redis://"+redisAddr+"/1?read_timeout=2s")
	if err != nil {
		t.Fatal(err)
	}
	defer rdb2.Close()
	if opt := rdb2.Options(); opt.ReadTimeout != 2*time.Second || opt.DB != 1 {
		t.Errorf("options: read timeout %v, db %d", opt.ReadTimeout, opt.DB)
	}

	for _, bad := range []string{
		"http://" + redisAddr,
		"redis://user:s3cret@127.0.0.1:6379/x",
		"redis://user:s3cret@[::1/0",
		"redis://user:s3cret@127.0.0.1:1/0",
	} {
		_, err := redisbus.Open(ctx, bad)
		if err == nil {
			t.Errorf("Open(%q): no error", bad)
			continue
		}
		if msg := err.Error(); strings.Contains(msg, "s3cret") {
			t.Errorf("Open(%q) error repeats the password: %s", bad, msg)
		}
	}
}

// freezingProxy forwards TCP to Redis; while frozen it silently drops
// everything in both directions, like a partition that sends no reset.
type freezingProxy struct {
	ln     net.Listener
	frozen atomic.Bool
}

func newFreezingProxy(t *testing.T) *freezingProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &freezingProxy{ln: ln}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r, err := net.Dial("tcp", redisAddr)
			if err != nil {
				_ = c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, r)
			mu.Unlock()
			pipe := func(dst, src net.Conn) {
				defer dst.Close()
				defer src.Close()
				buf := make([]byte, 32<<10)
				for {
					n, err := src.Read(buf)
					if n > 0 && !p.frozen.Load() {
						if _, werr := dst.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}
			wg.Go(func() { pipe(r, c) })
			wg.Go(func() { pipe(c, r) })
		}
	})
	return p
}

func TestBusSilentPartition(t *testing.T) {
	newClient(t, nil) // skip without Redis
	defer redisbus.SetHealthEvery(100 * time.Millisecond)()
	proxy := newFreezingProxy(t)
	rdb := redis.NewClient(&redis.Options{Addr: proxy.ln.Addr().String(), MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	direct := newClient(t, nil)
	channel := "keyward:test:" + uniquePrefix(t, direct)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	s := subscribe(t, ctx, redisbus.NewBus(rdb, channel))
	s.wantState(true)
	pub := redisbus.NewBus(direct, channel)

	// Quiet but healthy: the pings are answered, nothing is reported.
	time.Sleep(350 * time.Millisecond)
	s.wantQuiet()

	proxy.frozen.Store(true)
	s.wantState(false) // the ping went unanswered
	proxy.frozen.Store(false)
	s.wantState(true)
	inv := authority.Invalidation{All: true}
	if err := pub.Publish(ctx, inv); err != nil {
		t.Fatal(err)
	}
	s.wantInv(inv)
}

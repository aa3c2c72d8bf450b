package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	var sorted []time.Duration
	for i := 1; i <= 200; i++ {
		sorted = append(sorted, time.Duration(i)*time.Millisecond)
	}
	for _, tc := range []struct {
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{sorted, 50, 100 * time.Millisecond},
		{sorted, 99, 198 * time.Millisecond},
		{sorted, 100, 200 * time.Millisecond},
		{sorted, 0.1, time.Millisecond},
		{sorted[:1], 99, time.Millisecond},
		{sorted[:3], 50, 2 * time.Millisecond},
		{nil, 50, 0},
	} {
		if got := percentile(tc.in, tc.p); got != tc.want {
			t.Errorf("percentile(%d values, %v) = %v, want %v", len(tc.in), tc.p, got, tc.want)
		}
	}
}

func TestRoundRobin(t *testing.T) {
	bodies, err := verifyBodies([]string{"a", "b", "c"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for range 5 {
		got = append(got, string(bodies.pick()))
	}
	want := []string{`{"token":"a"}`, `{"token":"b"}`, `{"token":"c"}`, `{"token":"a"}`, `{"token":"b"}`}
	if !slices.Equal(got, want) {
		t.Fatalf("picks = %q, want %q", got, want)
	}

	// Concurrent pickers still share one sequence: every body equally often.
	bodies.next.Store(0)
	var mu sync.Mutex
	counts := map[string]int{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 300 {
				b := string(bodies.pick())
				mu.Lock()
				counts[b]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for body, n := range counts {
		if n != 8*300/3 {
			t.Errorf("%s picked %d times, want %d", body, n, 8*300/3)
		}
	}
}

func TestExceedsErrorBudget(t *testing.T) {
	for _, tc := range []struct {
		errors, requests int
		want             bool
	}{
		{0, 100, false},
		{1, 100, false}, // exactly 1 % is within the budget
		{2, 100, true},
		{10, 1001, false},
		{11, 1001, true},
		{0, 0, true}, // nothing measured is a failed run
	} {
		if got := exceedsErrorBudget(tc.errors, tc.requests); got != tc.want {
			t.Errorf("exceedsErrorBudget(%d, %d) = %v, want %v", tc.errors, tc.requests, got, tc.want)
		}
	}
}

func TestParseConcurrency(t *testing.T) {
	if got, err := parseConcurrency("1, 16,64"); err != nil || !slices.Equal(got, []int{1, 16, 64}) {
		t.Errorf("parseConcurrency = %v, %v", got, err)
	}
	for _, bad := range []string{"", "1,,2", "0", "-4", "x"} {
		if _, err := parseConcurrency(bad); err == nil {
			t.Errorf("parseConcurrency(%q) accepted", bad)
		}
	}
}

func TestParseProcStatus(t *testing.T) {
	status := "Name:\tkeyward\nVmPeak:\t 1300000 kB\nVmHWM:\t   61440 kB\nVmRSS:\t   51200 kB\nRssAnon:\t   30720 kB\nRssFile:\t   20480 kB\nThreads:\t8\n"
	m, err := parseProcStatus(status)
	if err != nil || *m != (memory{VmRSSKiB: 51200, VmHWMKiB: 61440, RssAnonKiB: 30720}) {
		t.Fatalf("parseProcStatus = %+v, %v", m, err)
	}
	for _, partial := range []string{"Name:\tkeyward\nVmRSS:\t 1 kB\nRssAnon:\t 1 kB\n", "VmHWM:\t 2 kB\nVmRSS:\t 1 kB\n"} {
		if _, err := parseProcStatus(partial); err == nil {
			t.Fatalf("a status lacking a field was accepted: %q", partial)
		}
	}
}

func TestReport(t *testing.T) {
	rep := report{Date: "2026-01-02T03:04:05Z", GoVersion: "go1.26", GOMAXPROCS: 2, Target: "http://127.0.0.1:1",
		Store: "sqlite", TokenFormat: "jwt", Machines: 4, Tokens: 1000, Warmup: "1s", Duration: "5s",
		ServerMemory: &memory{VmRSSKiB: 51200, VmHWMKiB: 61440, RssAnonKiB: 30720}}
	rep.add(level{Concurrency: 16,
		Baseline: stats{Requests: 100000, RequestsPerSecond: 20000, P50Ms: 0.5, P99Ms: 2},
		Keyward:  stats{Requests: 25000, Errors: 3, FirstError: `401 {"error":"no"}`, RequestsPerSecond: 5000, P50Ms: 3.2, P99Ms: 9.75},
	})
	if got := rep.Levels[0].RatioPercent; got != 25 {
		t.Fatalf("ratio = %v%%, want 25%%", got)
	}

	var text bytes.Buffer
	if err := rep.write(&text, false); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"go1.26  GOMAXPROCS=2", "store sqlite", "1000 jwt tokens over 4 machines",
		"20000", "0.500", "2.000", "5000", "3.200", "9.750", "25.0%",
		`keyward c=16: 3 of 25000 requests failed; first: 401 {"error":"no"}`,
		"VmRSS 50.0 MiB (anonymous 30.0 MiB), VmHWM 60.0 MiB",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, text.String())
		}
	}

	var asJSON bytes.Buffer
	if err := rep.write(&asJSON, true); err != nil {
		t.Fatal(err)
	}
	var decoded report
	if err := json.Unmarshal(asJSON.Bytes(), &decoded); err != nil {
		t.Fatal(err)
	}
	if decoded.Levels[0].RatioPercent != 25 || decoded.Levels[0].Keyward.P99Ms != 9.75 || decoded.ServerMemory.VmHWMKiB != 61440 {
		t.Fatalf("JSON report = %s", asJSON.String())
	}
}

// TestRunLoad drives the load loop against the no-op baseline and a fake
// verifier that rejects one of its three tokens.
func TestRunLoad(t *testing.T) {
	const concurrency = 4
	newServer := func(h http.Handler) (*httptest.Server, *atomic.Int64) {
		var dials atomic.Int64
		srv := httptest.NewUnstartedServer(h)
		srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				dials.Add(1)
			}
		}
		srv.Start()
		t.Cleanup(srv.Close)
		return srv, &dials
	}
	baseline, baselineDials := newServer(noopVerify())
	verifier, _ := newServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Token string }
		if r.Header.Get("Authorization") != "Bearer sk_test" || json.NewDecoder(r.Body).Decode(&req) != nil {
			http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		fmt.Fprintf(w, `{"valid":%t,"code":"%s"}`, req.Token != "revoked", map[bool]string{true: "valid", false: "revoked"}[req.Token != "revoked"])
	}))

	bodies, err := verifyBodies([]string{"t1", "t2", "revoked"})
	if err != nil {
		t.Fatal(err)
	}
	client := newClient(concurrency)
	spec := loadSpec{url: baseline.URL + "/v1/verify", authorization: "Bearer sk_test", bodies: bodies,
		concurrency: concurrency, warmup: 20 * time.Millisecond, duration: 150 * time.Millisecond}

	res, err := runLoad(context.Background(), client, spec)
	if err != nil {
		t.Fatal(err)
	}
	s := res.stats()
	if res.requests < 10 || res.errors != 0 || s.RequestsPerSecond <= 0 || s.P50Ms <= 0 || s.P99Ms < s.P50Ms {
		t.Fatalf("baseline: %d requests, %d errors (%s), %+v", res.requests, res.errors, res.firstError, s)
	}
	if !slices.IsSorted(res.latencies) {
		t.Fatal("latencies are not sorted")
	}
	if res.elapsed < spec.duration || res.elapsed > spec.duration+time.Second {
		t.Fatalf("measured %v for a %v run", res.elapsed, spec.duration)
	}
	// A connection returns to the idle pool a moment after its body is
	// read, so a busy machine sees a few extra dials; undrained bodies
	// would need one per request.
	if n := baselineDials.Load(); n > 2*concurrency {
		t.Fatalf("%d connections for %d clients: bodies are not drained or connections not reused", n, concurrency)
	}

	spec.url = verifier.URL + "/v1/verify"
	res, err = runLoad(context.Background(), client, spec)
	if err != nil {
		t.Fatal(err)
	}
	if third := res.requests / 3; res.errors < third-concurrency || res.errors > third+concurrency+1 {
		t.Fatalf("%d errors in %d requests, want about a third", res.errors, res.requests)
	}
	if res.firstError != `200 {"valid":false,"code":"revoked"}` {
		t.Fatalf("first error = %q", res.firstError)
	}
	if !exceedsErrorBudget(res.errors, res.requests) {
		t.Fatal("a third failing is within the error budget")
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := runLoad(ctx, client, spec); err == nil {
		t.Fatal("a cancelled run reported no error")
	}
}

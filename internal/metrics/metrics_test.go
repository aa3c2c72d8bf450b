package metrics_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/metrics"
)

// gather returns the families of m's registry by name.
func gather(t *testing.T, m *metrics.Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	out := make(map[string]*dto.MetricFamily, len(mfs))
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

// find returns the metric of family name whose labels are exactly labels,
// or nil.
func find(t *testing.T, m *metrics.Metrics, name string, labels map[string]string) *dto.Metric {
	t.Helper()
	mf := gather(t, m)[name]
	if mf == nil {
		return nil
	}
next:
	for _, mt := range mf.GetMetric() {
		if len(mt.GetLabel()) != len(labels) {
			continue
		}
		for _, lp := range mt.GetLabel() {
			if v, ok := labels[lp.GetName()]; !ok || v != lp.GetValue() {
				continue next
			}
		}
		return mt
	}
	return nil
}

func counter(t *testing.T, m *metrics.Metrics, name string, labels map[string]string) float64 {
	t.Helper()
	mt := find(t, m, name, labels)
	if mt == nil {
		return 0
	}
	return mt.GetCounter().GetValue()
}

func histCount(t *testing.T, m *metrics.Metrics, name string, labels map[string]string) uint64 {
	t.Helper()
	mt := find(t, m, name, labels)
	if mt == nil {
		return 0
	}
	return mt.GetHistogram().GetSampleCount()
}

func gauge(t *testing.T, m *metrics.Metrics, name string, labels map[string]string) float64 {
	t.Helper()
	mt := find(t, m, name, labels)
	if mt == nil {
		t.Fatalf("%s%v: no such series", name, labels)
	}
	return mt.GetGauge().GetValue()
}

// keywardCount counts the series of the named keyward families in m.
func keywardCount(t *testing.T, m *metrics.Metrics, names ...string) int {
	t.Helper()
	n, err := testutil.GatherAndCount(m.Registry(), names...)
	if err != nil {
		t.Fatalf("GatherAndCount: %v", err)
	}
	return n
}

func TestObserver(t *testing.T) {
	m := metrics.New()
	var o authority.Observer = m

	o.Verified(credential.KindM2MToken, authority.ReasonValid, 40*time.Microsecond)
	o.Verified(credential.KindM2MToken, authority.ReasonValid, 2*time.Millisecond)
	o.Verified(credential.KindM2MToken, authority.ReasonRevoked, time.Millisecond)
	o.Verified(credential.KindPAT, authority.ReasonExpired, time.Millisecond)
	// Unknown kinds and reasons collapse into bounded values.
	o.Verified("", authority.ReasonNotFound, time.Microsecond)
	o.Verified(credential.Kind("pat_abcdefSECRET"), authority.Reason("weird"), time.Microsecond)

	o.CacheLookup(true)
	o.CacheLookup(true)
	o.CacheLookup(false)
	o.RateLimited(credential.KindOrgToken)
	o.RateLimited(credential.KindOrgToken)
	o.RateLimited(credential.Kind("otk_secretish"))

	for _, c := range []struct {
		labels map[string]string
		want   float64
	}{
		{map[string]string{"kind": "m2m_token", "code": "valid"}, 2},
		{map[string]string{"kind": "m2m_token", "code": "revoked"}, 1},
		{map[string]string{"kind": "pat", "code": "expired"}, 1},
		{map[string]string{"kind": "unknown", "code": "not_found"}, 1},
		{map[string]string{"kind": "unknown", "code": "other"}, 1},
	} {
		if got := counter(t, m, "keyward_verify_total", c.labels); got != c.want {
			t.Errorf("keyward_verify_total%v = %v, want %v", c.labels, got, c.want)
		}
	}
	// The 6×7 known kinds and codes exist from the start; the two unknown
	// ones add one series each, bounded.
	if n := keywardCount(t, m, "keyward_verify_total"); n != 6*7+2 {
		t.Errorf("keyward_verify_total has %d series, want %d", n, 6*7+2)
	}
	if got := histCount(t, m, "keyward_verify_duration_seconds", map[string]string{"kind": "m2m_token"}); got != 3 {
		t.Errorf("verify duration count for m2m_token = %d, want 3", got)
	}
	if got := histCount(t, m, "keyward_verify_duration_seconds", map[string]string{"kind": "unknown"}); got != 2 {
		t.Errorf("verify duration count for unknown = %d, want 2", got)
	}
	// The 40µs sample lands in the le=5e-05 bucket; buckets start at 25µs.
	h := find(t, m, "keyward_verify_duration_seconds", map[string]string{"kind": "m2m_token"}).GetHistogram()
	if b := h.GetBucket(); b[0].GetUpperBound() != 25e-6 || b[len(b)-1].GetUpperBound() != 0.25 {
		t.Errorf("verify buckets span %v … %v, want 2.5e-05 … 0.25", b[0].GetUpperBound(), b[len(b)-1].GetUpperBound())
	}
	if b := h.GetBucket(); b[1].GetUpperBound() != 50e-6 || b[1].GetCumulativeCount() != 1 {
		t.Errorf("bucket le=%v holds %d, want le=5e-05 holding 1", b[1].GetUpperBound(), b[1].GetCumulativeCount())
	}

	if got := counter(t, m, "keyward_cache_lookups_total", map[string]string{"result": "hit"}); got != 2 {
		t.Errorf("cache hits = %v, want 2", got)
	}
	if got := counter(t, m, "keyward_cache_lookups_total", map[string]string{"result": "miss"}); got != 1 {
		t.Errorf("cache misses = %v, want 1", got)
	}
	if got := counter(t, m, "keyward_ratelimit_refusals_total", map[string]string{"kind": "org_token"}); got != 2 {
		t.Errorf("rate-limit refusals for org_token = %v, want 2", got)
	}
	if got := counter(t, m, "keyward_ratelimit_refusals_total", map[string]string{"kind": "unknown"}); got != 1 {
		t.Errorf("rate-limit refusals for unknown = %v, want 1", got)
	}
}

func TestCacheSeriesExistAtZero(t *testing.T) {
	m := metrics.New()
	if n := keywardCount(t, m, "keyward_cache_lookups_total"); n != 2 {
		t.Errorf("keyward_cache_lookups_total has %d series before any lookup, want 2 (hit, miss)", n)
	}
	if n := keywardCount(t, m, "keyward_store_transaction_duration_seconds"); n != 4 {
		t.Errorf("store histogram has %d series before any transaction, want 4", n)
	}
}

func TestObserveRequest(t *testing.T) {
	m := metrics.New()
	const route = "GET /clerk/v1/machines/{machine_id}"
	m.ObserveRequest(route, http.MethodGet, 200, 3*time.Millisecond)
	m.ObserveRequest(route, http.MethodGet, 200, 4*time.Millisecond)
	m.ObserveRequest(route, http.MethodGet, 404, time.Millisecond)
	m.ObserveRequest("", "POST", 404, time.Millisecond)
	m.ObserveRequest("", "BREW", 405, time.Millisecond)
	m.ObserveRequest("POST /freezer/clients", http.MethodPost, 753, time.Millisecond)
	m.ObserveRequest("POST /freezer/clients", http.MethodPost, 0, time.Millisecond)

	for _, c := range []struct {
		labels map[string]string
		want   float64
	}{
		{map[string]string{"route": route, "method": "GET", "status": "200"}, 2},
		{map[string]string{"route": route, "method": "GET", "status": "404"}, 1},
		{map[string]string{"route": "unmatched", "method": "POST", "status": "404"}, 1},
		{map[string]string{"route": "unmatched", "method": "OTHER", "status": "405"}, 1},
		{map[string]string{"route": "POST /freezer/clients", "method": "POST", "status": "753"}, 1},
		{map[string]string{"route": "POST /freezer/clients", "method": "POST", "status": "other"}, 1},
	} {
		if got := counter(t, m, "keyward_http_requests_total", c.labels); got != c.want {
			t.Errorf("keyward_http_requests_total%v = %v, want %v", c.labels, got, c.want)
		}
	}
	if n := keywardCount(t, m, "keyward_http_requests_total"); n != 6 {
		t.Errorf("keyward_http_requests_total has %d series, want 6", n)
	}
	if got := histCount(t, m, "keyward_http_request_duration_seconds", map[string]string{"route": route}); got != 3 {
		t.Errorf("duration count for %q = %d, want 3", route, got)
	}
	if got := histCount(t, m, "keyward_http_request_duration_seconds", map[string]string{"route": "unmatched"}); got != 2 {
		t.Errorf("duration count for unmatched = %d, want 2", got)
	}
}

func TestFallback(t *testing.T) {
	m := metrics.New()
	total := func(c string) float64 {
		return counter(t, m, "keyward_fallback_total", map[string]string{"component": c})
	}
	active := func(c string) float64 {
		return gauge(t, m, "keyward_fallback_active", map[string]string{"component": c})
	}

	m.Fallback("bus", false) // healthy from the start: no transition
	if active("bus") != 0 || total("bus") != 0 {
		t.Fatalf("healthy bus: active=%v total=%v, want 0 0", active("bus"), total("bus"))
	}
	m.Fallback("bus", true)
	m.Fallback("bus", true) // still active: not a new transition
	if active("bus") != 1 || total("bus") != 1 {
		t.Fatalf("bus down: active=%v total=%v, want 1 1", active("bus"), total("bus"))
	}
	m.Fallback("bus", false)
	if active("bus") != 0 || total("bus") != 1 {
		t.Fatalf("bus back: active=%v total=%v, want 0 1", active("bus"), total("bus"))
	}
	m.Fallback("bus", true)
	m.Fallback("ratelimit", true)
	if active("bus") != 1 || total("bus") != 2 {
		t.Fatalf("bus down again: active=%v total=%v, want 1 2", active("bus"), total("bus"))
	}
	if active("ratelimit") != 1 || total("ratelimit") != 1 {
		t.Fatalf("ratelimit down: active=%v total=%v, want 1 1", active("ratelimit"), total("ratelimit"))
	}
}

// fakeStore is an authority.Store whose transactions call fn with a nil Tx
// and return whatever err returns.
type fakeStore struct {
	err    func(mode string) error
	pinged int
	closed int
	mu     sync.Mutex
}

func (f *fakeStore) Update(ctx context.Context, fn func(authority.Tx) error) error {
	if err := fn(nil); err != nil {
		return err
	}
	return f.err("update")
}

func (f *fakeStore) View(ctx context.Context, fn func(authority.Tx) error) error {
	if err := fn(nil); err != nil {
		return err
	}
	return f.err("view")
}

func (f *fakeStore) Ping(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pinged++
	return errors.New("ping failed")
}

func (f *fakeStore) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed++
	return nil
}

func TestStore(t *testing.T) {
	m := metrics.New()
	busy := &credential.Error{Code: credential.CodeUnavailable, Message: "busy"}
	fake := &fakeStore{err: func(mode string) error {
		if mode == "view" {
			return busy
		}
		return nil
	}}
	s := m.Store(fake)
	ctx := context.Background()

	ran := 0
	fn := func(authority.Tx) error { ran++; return nil }
	for range 3 {
		if err := s.Update(ctx, fn); err != nil {
			t.Fatalf("Update: %v", err)
		}
	}
	// An error from fn itself (a rolled-back transaction) is an error outcome.
	fnErr := errors.New("rolled back")
	if err := s.Update(ctx, func(authority.Tx) error { return fnErr }); !errors.Is(err, fnErr) {
		t.Fatalf("Update error = %v, want %v", err, fnErr)
	}
	for range 2 {
		if err := s.View(ctx, fn); err != busy {
			t.Fatalf("View error = %v, want the store's own error value", err)
		}
	}
	fake.err = func(string) error { return nil }
	if err := s.View(ctx, fn); err != nil {
		t.Fatalf("View: %v", err)
	}
	if ran != 6 {
		t.Errorf("fn ran %d times, want 6", ran)
	}

	for _, c := range []struct {
		mode, outcome string
		want          uint64
	}{
		{"update", "ok", 3}, {"update", "error", 1},
		{"view", "ok", 1}, {"view", "error", 2},
	} {
		got := histCount(t, m, "keyward_store_transaction_duration_seconds", map[string]string{"mode": c.mode, "outcome": c.outcome})
		if got != c.want {
			t.Errorf("store %s/%s count = %d, want %d", c.mode, c.outcome, got, c.want)
		}
	}

	if err := s.Ping(ctx); err == nil || err.Error() != "ping failed" {
		t.Errorf("Ping = %v, want the store's error", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if fake.pinged != 1 || fake.closed != 1 {
		t.Errorf("pinged=%d closed=%d, want 1 1", fake.pinged, fake.closed)
	}
	// Ping and Close are not transactions.
	if n := keywardCount(t, m, "keyward_store_transaction_duration_seconds"); n != 4 {
		t.Errorf("store histogram has %d series, want 4", n)
	}
}

func TestHandler(t *testing.T) {
	m := metrics.New()
	m.Verified(credential.KindM2MToken, authority.ReasonValid, time.Millisecond)
	m.CacheLookup(true)
	m.RateLimited(credential.KindOrgToken)
	m.ObserveRequest("GET /v1/verify", "GET", 200, time.Millisecond)
	m.Fallback("bus", true)
	s := m.Store(&fakeStore{err: func(string) error { return nil }})
	if err := s.Update(context.Background(), func(authority.Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}

	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type = %q, want text/plain", ct)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parse exposition: %v\n%s", err, body)
	}
	want := map[string]dto.MetricType{
		"keyward_verify_total":                       dto.MetricType_COUNTER,
		"keyward_verify_duration_seconds":            dto.MetricType_HISTOGRAM,
		"keyward_cache_lookups_total":                dto.MetricType_COUNTER,
		"keyward_ratelimit_refusals_total":           dto.MetricType_COUNTER,
		"keyward_http_requests_total":                dto.MetricType_COUNTER,
		"keyward_http_request_duration_seconds":      dto.MetricType_HISTOGRAM,
		"keyward_store_transaction_duration_seconds": dto.MetricType_HISTOGRAM,
		"keyward_fallback_active":                    dto.MetricType_GAUGE,
		"keyward_fallback_total":                     dto.MetricType_COUNTER,
		"keyward_bus_errors_total":                   dto.MetricType_COUNTER,
		"go_goroutines":                              dto.MetricType_GAUGE,
	}
	for name, typ := range want {
		mf, ok := fams[name]
		if !ok {
			t.Errorf("exposition lacks %s", name)
			continue
		}
		if mf.GetType() != typ {
			t.Errorf("%s has type %v, want %v", name, mf.GetType(), typ)
		}
		if mf.GetHelp() == "" {
			t.Errorf("%s has no help text", name)
		}
	}
	// The process collector only works where procfs exists.
	if _, err := os.Stat("/proc/self/stat"); err == nil {
		if _, ok := fams["process_cpu_seconds_total"]; !ok {
			t.Errorf("exposition lacks process_cpu_seconds_total")
		}
	}
	mf := fams["keyward_http_requests_total"]
	if len(mf.GetMetric()) != 1 || mf.GetMetric()[0].GetCounter().GetValue() != 1 {
		t.Errorf("parsed keyward_http_requests_total = %v, want one series at 1", mf.GetMetric())
	}
}

func TestRegistriesAreIndependent(t *testing.T) {
	a, b := metrics.New(), metrics.New() // no duplicate-registration panic
	a.CacheLookup(true)
	if got := counter(t, b, "keyward_cache_lookups_total", map[string]string{"result": "hit"}); got != 0 {
		t.Errorf("b saw a's lookup: %v", got)
	}
}

func TestConcurrent(t *testing.T) {
	m := metrics.New()
	s := m.Store(&fakeStore{err: func(string) error { return nil }})
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()

	const workers, each = 8, 200
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			comp := []string{"bus", "ratelimit"}[w%2]
			for i := range each {
				m.Verified(credential.KindPAT, authority.ReasonValid, time.Microsecond)
				m.CacheLookup(i%2 == 0)
				m.RateLimited(credential.KindOrgToken)
				m.ObserveRequest("GET /x/{id}", "GET", 200, time.Millisecond)
				m.Fallback(comp, i%2 == 0)
				_ = s.Update(ctx, func(authority.Tx) error { return nil })
				_ = s.View(ctx, func(authority.Tx) error { return nil })
			}
		}()
	}
	// Scrape while writers run.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 5 {
			resp, err := http.Get(srv.URL)
			if err != nil {
				t.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	wg.Wait()

	const n = workers * each
	if got := counter(t, m, "keyward_verify_total", map[string]string{"kind": "pat", "code": "valid"}); got != n {
		t.Errorf("verify_total = %v, want %d", got, n)
	}
	hits := counter(t, m, "keyward_cache_lookups_total", map[string]string{"result": "hit"})
	misses := counter(t, m, "keyward_cache_lookups_total", map[string]string{"result": "miss"})
	if hits != n/2 || misses != n/2 {
		t.Errorf("hits=%v misses=%v, want %d each", hits, misses, n/2)
	}
	if got := counter(t, m, "keyward_ratelimit_refusals_total", map[string]string{"kind": "org_token"}); got != n {
		t.Errorf("refusals = %v, want %d", got, n)
	}
	if got := counter(t, m, "keyward_http_requests_total", map[string]string{"route": "GET /x/{id}", "method": "GET", "status": "200"}); got != n {
		t.Errorf("http requests = %v, want %d", got, n)
	}
	for _, mode := range []string{"update", "view"} {
		if got := histCount(t, m, "keyward_store_transaction_duration_seconds", map[string]string{"mode": mode, "outcome": "ok"}); got != n {
			t.Errorf("store %s count = %d, want %d", mode, got, n)
		}
	}
	// Each fallback counter is at least 1 and at most the number of calls
	// that set it active; the final state of each is consistent with it.
	for _, c := range []string{"bus", "ratelimit"} {
		got := counter(t, m, "keyward_fallback_total", map[string]string{"component": c})
		if got < 1 || got > n/4 {
			t.Errorf("fallback_total{%s} = %v, want 1..%d", c, got, n/4)
		}
	}
}

func TestExposition(t *testing.T) {
	m := metrics.New()
	m.CacheLookup(true)
	m.CacheLookup(false)
	m.CacheLookup(false)
	m.Fallback("bus", true)
	m.Fallback("ratelimit", false)
	m.BusError("subscribe")
	m.BusError("subscribe")
	want := `
# HELP keyward_bus_errors_total Errors of the invalidation bus by operation (publish, subscribe).
# TYPE keyward_bus_errors_total counter
keyward_bus_errors_total{op="publish"} 0
keyward_bus_errors_total{op="subscribe"} 2
# HELP keyward_cache_lookups_total Credential-cache lookups by result (hit, miss).
# TYPE keyward_cache_lookups_total counter
keyward_cache_lookups_total{result="hit"} 1
keyward_cache_lookups_total{result="miss"} 2
# HELP keyward_fallback_active 1 while a component runs on its single-node fallback, else 0.
# TYPE keyward_fallback_active gauge
keyward_fallback_active{component="bus"} 1
keyward_fallback_active{component="ratelimit"} 0
# HELP keyward_fallback_total Transitions of a component to its single-node fallback.
# TYPE keyward_fallback_total counter
keyward_fallback_total{component="bus"} 1
keyward_fallback_total{component="ratelimit"} 0
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want),
		"keyward_bus_errors_total", "keyward_cache_lookups_total", "keyward_fallback_active", "keyward_fallback_total"); err != nil {
		t.Error(err)
	}
}

// The commit counters read the store's counts at each scrape, so their
// ratio is the mean batch of the interval between two scrapes.
func TestCommitCountsAreReadAtEachScrape(t *testing.T) {
	m := metrics.New()
	var commits, writes int64
	m.CommitCounts(func() (int64, int64) { return commits, writes })
	value := func(name string) float64 {
		t.Helper()
		mt := find(t, m, name, map[string]string{})
		if mt == nil {
			t.Fatalf("no %s", name)
		}
		return mt.GetCounter().GetValue()
	}
	if value("keyward_store_commits_total") != 0 || value("keyward_store_committed_writes_total") != 0 {
		t.Fatal("the counters do not start at zero")
	}
	commits, writes = 3, 40
	if c, w := value("keyward_store_commits_total"), value("keyward_store_committed_writes_total"); c != 3 || w != 40 {
		t.Fatalf("commits %v, writes %v; want 3 and 40", c, w)
	}
}

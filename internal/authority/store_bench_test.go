package authority_test

// Benchmarks of the store-bound paths: verification that misses the cache,
// durable M2M creation, and the memory the cache holds. They use only the
// authority's public API, so the same file measures any revision.
//
//	go test ./internal/authority -run '^$' -bench 'VerifyStored|CreateM2M|CacheMemory' -benchtime 3s
//
// KEYWARD_BENCH_TOKENS sets how many tokens are stored (default 20 000);
// KEYWARD_TEST_DATABASE_URL adds the PostgreSQL runs. Each run reports
// ops/s, p50-µs and p99-µs besides ns/op.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/inmem"
	"github.com/keyward/keyward/internal/keyring"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

func benchTokens(b *testing.B) int {
	if v := os.Getenv("KEYWARD_BENCH_TOKENS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("KEYWARD_BENCH_TOKENS=%q", v)
		}
		return n
	}
	return 20000
}

// benchEnv is an authority over a store holding many M2M tokens.
type benchEnv struct {
	a      *authority.Authority
	admin  authority.Caller
	minter authority.Caller
	tokens []string
}

func newBenchEnv(b *testing.B, store authority.Store, tokens int) *benchEnv {
	b.Helper()
	ctx := context.Background()
	keys, err := keyring.New(make([]byte, keyring.MasterKeySize))
	if err != nil {
		b.Fatal(err)
	}
	// The wall clock: creates must give distinct ids, and the usage
	// flusher runs on real time.
	a := authority.New(authority.Config{Store: store, Keyring: keys, Limiter: inmem.NewLimiter()})
	in, adminKey, err := a.CreateInstance(ctx, "bench")
	if err != nil {
		b.Fatal(err)
	}
	admin, err := a.Authenticate(ctx, adminKey.Reveal())
	if err != nil {
		b.Fatal(err)
	}
	op := authority.Operator(in.ID)
	name := "target"
	target, _, err := a.CreateMachine(ctx, op, authority.CreateMachineInput{Name: &name})
	if err != nil {
		b.Fatal(err)
	}
	name = "minter"
	minter, secret, err := a.CreateMachine(ctx, op, authority.CreateMachineInput{Name: &name})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := a.CreateMachineScope(ctx, op, minter.ID, target.ID); err != nil {
		b.Fatal(err)
	}
	caller, err := a.Authenticate(ctx, secret.Reveal())
	if err != nil {
		b.Fatal(err)
	}
	env := &benchEnv{a: a, admin: admin, minter: caller}

	// Seed the tokens straight into the store, as minting does, in big
	// transactions: minting a million through the API would take minutes.
	attrs, _ := json.Marshal(map[string]any{"scopes": []string{target.ID}})
	now := time.Now()
	const batch = 5000
	for done := 0; done < tokens; done += batch {
		n := min(batch, tokens-done)
		creds := make([]credential.Credential, n)
		for i := range creds {
			s := credential.MustGenerate(credential.KindM2MToken)
			env.tokens = append(env.tokens, s.Reveal())
			creds[i] = credential.Credential{
				ID: credential.NewHexID("mt_"), InstanceID: in.ID, Kind: credential.KindM2MToken,
				Digest: keys.Digest(s), SearchDigest: keys.SearchDigestOf(s), DisplayPrefix: s.DisplayPrefix(), Subject: minter.ID,
				ExpiresAt: now.Add(24 * time.Hour), CreatedAt: now, UpdatedAt: now, Attrs: attrs,
			}
		}
		err := store.Update(ctx, func(tx authority.Tx) error {
			for _, c := range creds {
				if err := tx.InsertCredential(ctx, c); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return env
}

// latencies collects per-operation times from parallel goroutines.
type latencies struct {
	mu  sync.Mutex
	all []time.Duration
}

func (l *latencies) add(d []time.Duration) {
	l.mu.Lock()
	l.all = append(l.all, d...)
	l.mu.Unlock()
}

func (l *latencies) report(b *testing.B, elapsed time.Duration) {
	if len(l.all) == 0 {
		return
	}
	slices.Sort(l.all)
	b.ReportMetric(float64(len(l.all))/elapsed.Seconds(), "ops/s")
	b.ReportMetric(float64(l.all[len(l.all)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(l.all[len(l.all)*99/100].Microseconds()), "p99-µs")
}

// runParallel runs op from conc goroutines (conc a multiple of GOMAXPROCS
// or rounded up to one) and reports throughput and latency.
func runParallel(b *testing.B, conc int, op func(i int64) error) {
	b.Helper()
	b.SetParallelism(max(1, conc/runtime.GOMAXPROCS(0)))
	var (
		next atomic.Int64
		lat  latencies
	)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		local := make([]time.Duration, 0, 1024)
		for pb.Next() {
			t := time.Now()
			if err := op(next.Add(1) - 1); err != nil {
				b.Error(err)
				return
			}
			local = append(local, time.Since(t))
		}
		lat.add(local)
	})
	elapsed := time.Since(start)
	b.StopTimer()
	lat.report(b, elapsed)
}

func benchStores(b *testing.B, fn func(b *testing.B, open func(testing.TB) *sqlstore.Store)) {
	for _, engine := range []string{"sqlite", "postgres"} {
		open := testkit.Stores()[engine]
		b.Run(engine, func(b *testing.B) {
			if engine == "postgres" && os.Getenv(testkit.DatabaseURLEnv) == "" {
				b.Skip(testkit.DatabaseURLEnv + " is not set")
			}
			fn(b, open)
		})
	}
}

// BenchmarkVerifyStored compares verification answered from the cache ("hot":
// a few tokens) with verification where every request presents a token
// not yet cached ("miss"), at 16 concurrent callers, while the flushers
// write last-used times every second and verification counts every ten,
// as the server does.
func BenchmarkVerifyStored(b *testing.B) {
	benchStores(b, func(b *testing.B, open func(testing.TB) *sqlstore.Store) {
		env := newBenchEnv(b, open(b), benchTokens(b))
		ctx, stop := context.WithCancel(context.Background())
		var flushers sync.WaitGroup
		flushers.Go(func() { env.a.RunUsageFlusher(ctx, authority.UsageFlushInterval, nil) })
		flushers.Go(func() { env.a.RunAnalyticsFlusher(ctx, authority.AnalyticsFlushInterval, nil) })
		b.Cleanup(func() { stop(); flushers.Wait() })
		verify := func(tok string) error {
			r, err := env.a.Verify(ctx, env.admin, authority.VerifyInput{Token: tok})
			if err == nil && !r.Valid {
				err = fmt.Errorf("verify: %s", r.Reason)
			}
			return err
		}
		b.Run("hot/c16", func(b *testing.B) {
			runParallel(b, 16, func(i int64) error { return verify(env.tokens[i%64]) })
		})
		// Each run goes on where the previous one stopped, as each round of
		// keyward-bench's miss row takes tokens of its own: a token used
		// for the first time is also the first write of its last-used time.
		var offset int64
		b.Run("miss/c16", func(b *testing.B) {
			authority.DropCache(env.a)
			runParallel(b, 16, func(i int64) error {
				i += offset
				if i%int64(len(env.tokens)) == 0 && i > 0 {
					// A full pass: start over with an empty cache, so every
					// request still misses.
					authority.DropCache(env.a)
				}
				return verify(env.tokens[i%int64(len(env.tokens))])
			})
			offset += int64(b.N)
		})
	})
}

// BenchmarkCreateM2M mints opaque M2M tokens through the authority, each
// acknowledged only after its transaction commits.
func BenchmarkCreateM2M(b *testing.B) {
	benchStores(b, func(b *testing.B, open func(testing.TB) *sqlstore.Store) {
		env := newBenchEnv(b, open(b), 1)
		ttl := 3600.0
		for _, conc := range []int{16, 64} {
			b.Run("c"+strconv.Itoa(conc), func(b *testing.B) {
				runParallel(b, conc, func(int64) error {
					_, err := env.a.CreateM2MToken(context.Background(), env.minter, authority.CreateM2MTokenInput{SecondsUntilExpiration: &ttl})
					return err
				})
			})
		}
	})
}

// BenchmarkCacheMemory verifies every stored token once (a cache filled
// past any bound) and then as many distinct unknown tokens, and reports
// the live heap after each, in MiB.
func BenchmarkCacheMemory(b *testing.B) {
	store := testkit.OpenSQLite(b)
	env := newBenchEnv(b, store, benchTokens(b))
	ctx := context.Background()
	heap := func() float64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return float64(m.HeapAlloc) / (1 << 20)
	}
	base := heap()
	for b.Loop() {
		for _, tok := range env.tokens {
			if _, err := env.a.Verify(ctx, env.admin, authority.VerifyInput{Token: tok}); err != nil {
				b.Fatal(err)
			}
		}
		_ = authority.TakePendingUsage(env.a)
		valid := heap()
		for range env.tokens {
			bogus := credential.MustGenerate(credential.KindM2MToken).Reveal()
			if _, err := env.a.Verify(ctx, env.admin, authority.VerifyInput{Token: bogus}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(valid-base, "valid-heap-MiB")
		b.ReportMetric(heap()-base, "flood-heap-MiB")
		b.ReportMetric(rssMiB(), "RSS-MiB")
	}
}

// rssMiB is the process's resident set, from /proc (0 elsewhere).
func rssMiB() float64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			return float64(kb) / 1024
		}
	}
	return 0
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/keyward/keyward/internal/authority"
)

type config struct {
	url, adminKey          string // an already running target
	keywardBin             string // skip the build
	databaseURL, masterKey string // passed through to the started server
	machines, tokens       int
	format                 string
	concurrency            []int
	warmup, duration       time.Duration
	jsonOutput             bool

	// --pinned: wrk against a pinned server (pinned.go)
	pinned             bool
	serverCPU, loadCPU string
	rounds             int
	missTokens         int
	pinnedConcurrency  int
	pprofAddr          string
	limitRows          []int    // named limits of each API key verify row
	analyticsRow       bool     // also measure opaque verify on a server with --analytics=false
	only               []string // measure only the rows whose names contain one of these (and bare, opaque)
	serveFlags         []string // extra keyward serve flags of this server (internal)
	serveBaseline      string   // internal: serve the bare baseline here and nothing else
}

func main() {
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		os.Exit(2) // already reported with the usage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, cfg, os.Stdout, os.Stderr)
	if err != nil && ctx.Err() != nil {
		err = errors.New("interrupted")
	}
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "keyward-bench:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var cfg config
	var concurrency, limitRows, only string
	fs := flag.NewFlagSet("keyward-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.url, "url", "", "target a running keyward at this base URL (http://host:port) instead of starting one; needs --admin-key")
	fs.StringVar(&cfg.adminKey, "admin-key", "", "the target's admin key (sk_live_…); for a started server the bootstrap key, default generated (pass the instance's key when --database-url already has one)")
	fs.StringVar(&cfg.keywardBin, "keyward-bin", "", "start the keyward binary at `path` instead of building one")
	fs.StringVar(&cfg.databaseURL, "database-url", "", "start keyward on this PostgreSQL database (postgres://…) instead of SQLite; needs --master-key")
	fs.StringVar(&cfg.masterKey, "master-key", "", "master key for the started keyward (with --database-url)")
	fs.IntVar(&cfg.machines, "machines", 4, "machines to create; the tokens are minted with their keys, spread over them")
	fs.IntVar(&cfg.tokens, "tokens", 1000, "M2M tokens to mint and verify round robin")
	fs.StringVar(&cfg.format, "format", "opaque", "token format: opaque or jwt")
	fs.StringVar(&concurrency, "concurrency", "1,16,64", "comma-separated concurrency levels (closed-loop clients)")
	fs.DurationVar(&cfg.warmup, "warmup", time.Second, "unmeasured warm-up before each run")
	fs.DurationVar(&cfg.duration, "duration", 5*time.Second, "measured time of each run")
	fs.BoolVar(&cfg.jsonOutput, "json", false, "print the report as one JSON object instead of a table")
	fs.BoolVar(&cfg.pinned, "pinned", false, "measure like a peer: wrk pinned to --load-cpu against keyward and a bare net/http server pinned to --server-cpu, every row of issue 14's table (--duration defaults to 10s)")
	fs.StringVar(&cfg.serverCPU, "server-cpu", "1", "with --pinned: the CPU list (taskset -c) of the servers")
	fs.StringVar(&cfg.loadCPU, "load-cpu", "0", "with --pinned: the CPU list (taskset -c) of wrk")
	fs.IntVar(&cfg.rounds, "rounds", 3, "with --pinned: interleaved rounds; the table shows medians")
	fs.IntVar(&cfg.missTokens, "miss-tokens", 200000, "with --pinned: tokens stored (in bulk) for the cache-miss row, each request a distinct one; 0 leaves the row out (a --keyward-bin older than this store's schema cannot be seeded)")
	fs.IntVar(&cfg.pinnedConcurrency, "connections", 16, "with --pinned: wrk connections (-c)")
	fs.StringVar(&limitRows, "limit-rows", "0,1,3,10", fmt.Sprintf("with --pinned: an API key verify row for each of these counts of auto-applied named limits (comma-separated, 0 to %d; '' for none)", authority.MaxNamedLimits))
	fs.BoolVar(&cfg.analyticsRow, "analytics-row", true, "with --pinned: also verify opaque tokens on two more fresh SQLite servers, one started with --analytics=false, so the ratio of their rows is what counting verifications costs")
	fs.StringVar(&cfg.pprofAddr, "pprof-addr", "", "with --pinned: start keyward with --pprof-addr (loopback), to profile it during the runs; the PostgreSQL server (with --database-url) gets the next port")
	fs.StringVar(&only, "only", "", "with --pinned: measure only the rows whose names contain one of these comma-separated words (e.g. miss,PostgreSQL), besides bare and opaque, which every ratio needs")
	fs.StringVar(&cfg.serveBaseline, "serve-baseline", "", "")
	fs.Usage = func() { usage(fs) }
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	durationSet := false
	fs.Visit(func(f *flag.Flag) { durationSet = durationSet || f.Name == "duration" })
	if cfg.pinned && !durationSet {
		cfg.duration = 10 * time.Second
	}
	if only != "" {
		cfg.only = strings.Split(only, ",")
	}
	err := cfg.validate(concurrency, fs.NArg())
	if err == nil {
		cfg.limitRows, err = parseLimitRows(limitRows)
	}
	if err != nil {
		fmt.Fprintln(fs.Output(), "keyward-bench:", err)
	}
	return cfg, err
}

// usage prints keyward-bench's help and flags.
func usage(fs *flag.FlagSet) {
	fmt.Fprint(fs.Output(), `Usage: keyward-bench [flags]

Measures POST /v1/verify throughput and latency of keyward against a no-op
net/http baseline driven by the same load code in the same run; on a shared
machine only the ratio keyward ÷ baseline is meaningful.

Without --url it builds keyward, starts it on a free port (SQLite in a
temporary directory, or --database-url), and stops it at the end.

Examples:
  go run ./cmd/keyward-bench --duration 3s
  go run ./cmd/keyward-bench --url http://127.0.0.1:8080 --admin-key sk_live_… --format jwt --concurrency 1,64 --json

Flags:
`)
	fs.PrintDefaults()
}

func (cfg *config) validate(concurrency string, extraArgs int) error {
	var err error
	if cfg.concurrency, err = parseConcurrency(concurrency); err != nil {
		return err
	}
	switch {
	case extraArgs > 0:
		return errors.New("no positional arguments expected")
	case cfg.url != "" && cfg.adminKey == "":
		return errors.New("--url needs --admin-key")
	case cfg.url != "" && (cfg.keywardBin != "" || cfg.databaseURL != "" || cfg.masterKey != ""):
		return errors.New("--keyward-bin, --database-url and --master-key are for a started server, not --url")
	case cfg.databaseURL != "" && cfg.masterKey == "":
		return errors.New("--database-url needs --master-key")
	case cfg.machines < 1 || cfg.tokens < 1:
		return errors.New("--machines and --tokens must be at least 1")
	case cfg.format != "opaque" && cfg.format != "jwt":
		return fmt.Errorf("--format must be opaque or jwt, not %q", cfg.format)
	case cfg.duration <= 0 || cfg.warmup < 0:
		return errors.New("--duration must be positive and --warmup not negative")
	case cfg.pinned && cfg.url != "":
		return errors.New("--pinned starts its own servers; it does not take --url")
	case cfg.pinned && (cfg.rounds < 1 || cfg.pinnedConcurrency < 1):
		return errors.New("--rounds and --connections must be at least 1")
	case cfg.pinned && cfg.missTokens < 0:
		return errors.New("--miss-tokens must not be negative")
	case cfg.pinned && cfg.missTokens == 0 && slices.ContainsFunc(cfg.only, selectsMissRow):
		return errors.New("--only names the cache-miss row, which --miss-tokens 0 leaves out")
	}
	return nil
}

// missRowPrefix starts the cache-miss row's name (cacheMissRow); its first
// word is the one no other row's name shares.
const missRowPrefix = "cache-miss verify"

// selectsMissRow reports whether an --only word picks the cache-miss row
// by the distinctive part of its name.
func selectsMissRow(word string) bool {
	distinctive, _, _ := strings.Cut(missRowPrefix, " ")
	return word != "" && strings.Contains(distinctive, word)
}

func parseConcurrency(s string) ([]int, error) {
	var levels []int
	for field := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(field))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("--concurrency: %q is not a positive integer", field)
		}
		levels = append(levels, n)
	}
	return levels, nil
}

// run sets up the target, measures every level and prints the report. Every
// resource it starts is released by a defer, so the started server is stopped
// on errors and on Ctrl-C as well.
func run(ctx context.Context, cfg config, stdout, progress io.Writer) error {
	if cfg.serveBaseline != "" {
		return serveBaseline(ctx, cfg.serveBaseline)
	}
	if cfg.pinned {
		return runPinned(ctx, cfg, stdout, progress)
	}
	client := newClient(slices.Max(cfg.concurrency))
	rep := newReport(cfg)

	target, adminKey, server, release, err := openTarget(ctx, cfg, client, progress)
	defer release()
	if err != nil {
		return err
	}
	rep.Target = target.baseURL

	baselineURL, stopBaseline, err := startBaseline()
	if err != nil {
		return err
	}
	defer stopBaseline()

	tokens, cleanup, err := setUp(ctx, cfg, target, adminKey, progress)
	if err != nil {
		return err
	}
	// A throwaway SQLite server disappears with its directory; anything else
	// keeps what the run created unless it is deleted.
	if cfg.url != "" || cfg.databaseURL != "" {
		defer cleanup()
	}

	bodies, err := verifyBodies(tokens)
	if err != nil {
		return err
	}
	baseline := loadSpec{url: baselineURL + "/v1/verify", authorization: "Bearer " + adminKey, bodies: bodies, warmup: cfg.warmup, duration: cfg.duration}
	keyward := baseline
	keyward.url = target.baseURL + "/v1/verify"
	// One request first, so a missing or broken endpoint fails in a second
	// with its answer instead of after a whole run of errors.
	if failure := verifyOnce(ctx, client, keyward, bodies.pick(), &bytes.Buffer{}); failure != "" {
		return fmt.Errorf("POST %s: %s", keyward.url, failure)
	}

	if err := measureLevels(ctx, cfg, client, &rep, baseline, keyward, stdout, progress); err != nil {
		return err
	}
	if server != nil {
		if rep.ServerMemory, err = server.memory(); err != nil {
			fmt.Fprintln(progress, "keyward-bench: server memory:", err)
		}
	}
	return rep.write(stdout, cfg.jsonOutput)
}

// newReport is the report header: what was measured, on what, how long.
func newReport(cfg config) report {
	return report{
		Date:        time.Now().UTC().Format(time.RFC3339),
		GoVersion:   runtime.Version(),
		GOMAXPROCS:  runtime.GOMAXPROCS(0),
		Store:       storeName(cfg),
		TokenFormat: cfg.format,
		Machines:    cfg.machines,
		Tokens:      cfg.tokens,
		Warmup:      cfg.warmup.String(),
		Duration:    cfg.duration.String(),
	}
}

// openTarget is --url, or a keyward started in a temporary directory. release
// stops that server and then removes its directory; call it even on error.
func openTarget(ctx context.Context, cfg config, client *http.Client, progress io.Writer) (target api, adminKey string, server *keywardProcess, release func(), err error) {
	target = api{client: client, baseURL: strings.TrimRight(cfg.url, "/")}
	adminKey = cfg.adminKey
	release = func() {}
	if cfg.url != "" {
		return target, adminKey, nil, release, nil
	}
	dir, err := os.MkdirTemp("", "keyward-bench-")
	if err != nil {
		return target, adminKey, nil, release, err
	}
	release = func() { os.RemoveAll(dir) }
	if server, err = startKeyward(ctx, cfg, dir, client, progress); err != nil {
		return target, adminKey, nil, release, err
	}
	release = func() {
		server.stop()
		os.RemoveAll(dir)
	}
	target.baseURL, adminKey = server.url, server.adminKey
	return target, adminKey, server, release, nil
}

// measureLevels runs the baseline and then keyward at every level, adding
// each level to rep. A side over the error budget ends the run: the report so
// far is written and the error returned.
func measureLevels(ctx context.Context, cfg config, client *http.Client, rep *report, baseline, keyward loadSpec, stdout, progress io.Writer) error {
	for _, c := range cfg.concurrency {
		baseline.concurrency, keyward.concurrency = c, c
		var lvl level
		lvl.Concurrency = c
		for _, side := range []struct {
			name  string
			spec  loadSpec
			stats *stats
		}{{"baseline", baseline, &lvl.Baseline}, {"keyward", keyward, &lvl.Keyward}} {
			fmt.Fprintf(progress, "%s c=%d …\n", side.name, c)
			res, err := runLoad(ctx, client, side.spec)
			if err != nil {
				return err
			}
			*side.stats = res.stats()
			if exceedsErrorBudget(res.errors, res.requests) {
				rep.add(lvl)
				rep.write(stdout, cfg.jsonOutput)
				return fmt.Errorf("%s c=%d: %d of %d requests failed (more than 1 %%); first: %s", side.name, c, res.errors, res.requests, res.firstError)
			}
		}
		rep.add(lvl)
	}
	return nil
}

// storeName names the store without printing the database URL, which may
// carry a password.
func storeName(cfg config) string {
	switch {
	case cfg.url != "":
		return "unknown (running server)"
	case cfg.databaseURL == "":
		return "sqlite"
	}
	if u, err := url.Parse(cfg.databaseURL); err == nil && u.Scheme != "" {
		return u.Scheme
	}
	return "unknown"
}

type report struct {
	Date         string  `json:"date"`
	GoVersion    string  `json:"go_version"`
	GOMAXPROCS   int     `json:"gomaxprocs"`
	Target       string  `json:"target"`
	Store        string  `json:"store"`
	TokenFormat  string  `json:"token_format"`
	Machines     int     `json:"machines"`
	Tokens       int     `json:"tokens"`
	Warmup       string  `json:"warmup"`
	Duration     string  `json:"duration"`
	Levels       []level `json:"levels"`
	ServerMemory *memory `json:"server_memory,omitempty"` // only for a server it started
}

type level struct {
	Concurrency  int     `json:"concurrency"`
	Baseline     stats   `json:"baseline"`
	Keyward      stats   `json:"keyward"`
	RatioPercent float64 `json:"ratio_percent"` // keyward req/s ÷ baseline req/s
}

type stats struct {
	Requests          int     `json:"requests"`
	Errors            int     `json:"errors"`
	FirstError        string  `json:"first_error,omitempty"`
	RequestsPerSecond float64 `json:"requests_per_second"`
	P50Ms             float64 `json:"p50_ms"`
	P99Ms             float64 `json:"p99_ms"`
}

type memory struct {
	VmRSSKiB int64 `json:"vm_rss_kib"`
	VmHWMKiB int64 `json:"vm_hwm_kib"`
	// RssAnonKiB is the part of VmRSS that is the process's own memory
	// (heap, stacks, SQLite's caches); the rest is mostly the binary's
	// code, clean file pages the kernel shares and can drop.
	RssAnonKiB int64 `json:"rss_anon_kib"`
}

// add appends a level, computing its ratio.
func (r *report) add(l level) {
	if l.Baseline.RequestsPerSecond > 0 {
		l.RatioPercent = 100 * l.Keyward.RequestsPerSecond / l.Baseline.RequestsPerSecond
	}
	r.Levels = append(r.Levels, l)
}

func (r *report) write(w io.Writer, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	fmt.Fprintf(w, "keyward-bench  %s  %s  GOMAXPROCS=%d\n", r.Date, r.GoVersion, r.GOMAXPROCS)
	fmt.Fprintf(w, "target %s  store %s  %d %s tokens over %d machines  warm-up %s, measured %s per run\n\n",
		r.Target, r.Store, r.Tokens, r.TokenFormat, r.Machines, r.Warmup, r.Duration)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "concurrency\tbaseline req/s\tp50 ms\tp99 ms\tkeyward req/s\tp50 ms\tp99 ms\tratio\terrors\t")
	for _, l := range r.Levels {
		fmt.Fprintf(tw, "%d\t%.0f\t%.3f\t%.3f\t%.0f\t%.3f\t%.3f\t%.1f%%\t%d\t\n", l.Concurrency,
			l.Baseline.RequestsPerSecond, l.Baseline.P50Ms, l.Baseline.P99Ms,
			l.Keyward.RequestsPerSecond, l.Keyward.P50Ms, l.Keyward.P99Ms,
			l.RatioPercent, l.Baseline.Errors+l.Keyward.Errors)
	}
	tw.Flush()
	for _, l := range r.Levels {
		for _, side := range []struct {
			name string
			stats
		}{{"baseline", l.Baseline}, {"keyward", l.Keyward}} {
			if side.Errors > 0 {
				fmt.Fprintf(w, "%s c=%d: %d of %d requests failed; first: %s\n", side.name, l.Concurrency, side.Errors, side.Requests, side.FirstError)
			}
		}
	}
	if m := r.ServerMemory; m != nil {
		fmt.Fprintf(w, "\nserver memory after the load: VmRSS %.1f MiB (anonymous %.1f MiB), VmHWM %.1f MiB\n", float64(m.VmRSSKiB)/1024, float64(m.RssAnonKiB)/1024, float64(m.VmHWMKiB)/1024)
	}
	return nil
}

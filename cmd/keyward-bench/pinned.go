package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/inmem"
	"github.com/keyward/keyward/internal/keyring"
	"github.com/keyward/keyward/internal/sqlstore"
)

// wrkScript sends KWB_BODY, or the lines of KWB_BODIES in turn from line
// KWB_OFFSET on (one distinct token per request), with KWB_AUTH.
const wrkScript = `
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = os.getenv("KWB_AUTH")
wrk.body = os.getenv("KWB_BODY")
local bodies = {}
local file = os.getenv("KWB_BODIES")
if file and file ~= "" then
  for line in io.lines(file) do bodies[#bodies + 1] = line end
  local i = tonumber(os.getenv("KWB_OFFSET") or "0")
  request = function()
    i = i % #bodies + 1
    return wrk.format(nil, nil, nil, bodies[i])
  end
end
`

// pinnedRow is one line of the table: what wrk sends, to which server.
type pinnedRow struct {
	name       string
	server     *pinnedServer
	path, auth string
	body       string
	bodies     string // a file of bodies, one a line
	bodyCount  int
	wantStatus int
	// connections, when set, is the row's own wrk -c (else --connections).
	connections int
}

type pinnedServer struct {
	pid int
	url string
}

type wrkResult struct {
	requests, bad       int
	rps, p50Ms, p99Ms   float64
	cpuUsPerReq, rssMiB float64
	anonMiB             float64 // the anonymous part of rssMiB
	// writesPerCommit is the mean group-commit batch during the run (0:
	// the row committed nothing, or the server is the bare one).
	writesPerCommit float64
}

// runPinned measures every row of issue 14's table with wrk pinned to one
// CPU and the servers pinned to another, rounds times interleaved.
func runPinned(ctx context.Context, cfg config, stdout, progress io.Writer) error {
	if err := ensureWrk(ctx, progress); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "keyward-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	script, err := writeWrkScript(dir)
	if err != nil {
		return err
	}
	client := newClient(4)

	bare, stopBare, err := startPinnedBaseline(ctx, cfg)
	if err != nil {
		return err
	}
	defer stopBare()

	sqliteCfg, err := pinnedSQLiteConfig(ctx, cfg, dir, progress)
	if err != nil {
		return err
	}
	kw, err := startKeyward(ctx, sqliteCfg, filepath.Join(dir, "sqlite"), client, progress)
	if err != nil {
		return err
	}
	defer kw.stop()
	rows, err := sqliteRows(ctx, cfg, sqliteCfg, dir, kw, client, bare, progress)
	if err != nil {
		return err
	}

	if cfg.analyticsRow {
		both, stop, err := analyticsRows(ctx, sqliteCfg, dir, client, progress)
		defer stop()
		if err != nil {
			return err
		}
		rows = slices.Insert(rows, 2, both...) // beside the opaque row
	}

	if cfg.databaseURL != "" {
		create, stopPostgres, err := postgresCreateTokenRow(ctx, cfg, sqliteCfg.keywardBin, dir, client, progress)
		defer stopPostgres()
		if err != nil {
			return err
		}
		rows = append(rows, create)
	}

	rows = onlyRows(rows, cfg.only)
	results, err := measurePinnedRounds(ctx, cfg, script, rows, progress)
	if err != nil {
		return err
	}
	return writePinned(stdout, cfg, rows, results)
}

// onlyRows keeps bare and opaque, the first two rows, which the ratios
// need, and the rows whose names contain one of words; all rows when
// words is empty.
func onlyRows(rows []pinnedRow, words []string) []pinnedRow {
	if len(words) == 0 {
		return rows
	}
	kept := slices.Clone(rows[:min(2, len(rows))])
	for _, row := range rows[len(kept):] {
		if slices.ContainsFunc(words, func(w string) bool { return w != "" && strings.Contains(row.name, w) }) {
			kept = append(kept, row)
		}
	}
	return kept
}

// sqliteRows are the rows measured on the SQLite server kw: every verify
// kind, API keys with named limits, the cache miss (unless --miss-tokens
// is 0) and the create.
func sqliteRows(ctx context.Context, cfg, sqliteCfg config, dir string, kw *keywardProcess, client *http.Client, bare *pinnedServer, progress io.Writer) ([]pinnedRow, error) {
	server := &pinnedServer{pid: kw.cmd.Process.Pid, url: kw.url}
	rows, err := pinnedVerifyRows(ctx, client, server, kw.adminKey, bare)
	if err != nil {
		return nil, err
	}
	limited, err := apiKeyLimitRows(ctx, client, server, kw.adminKey, cfg.limitRows)
	if err != nil {
		return nil, err
	}
	rows = append(rows, limited...)
	if cfg.missTokens > 0 {
		miss, err := cacheMissRow(ctx, cfg, sqliteCfg.masterKey, dir, kw, server, client, progress)
		if err != nil {
			return nil, err
		}
		rows = append(rows, miss)
	}
	create, err := createTokenRow(ctx, client, server, kw.adminKey, "create M2M token, SQLite")
	if err != nil {
		return nil, err
	}
	// Issue 14 bounds the tail of creates at 64 callers too.
	create64 := create
	create64.name, create64.connections = "create M2M token, SQLite, c=64", 64
	return append(rows, create, create64), nil
}

// writeWrkScript writes wrkScript into dir and returns its path.
func writeWrkScript(dir string) (string, error) {
	script := filepath.Join(dir, "post.lua")
	if err := os.WriteFile(script, []byte(wrkScript), 0o600); err != nil {
		return "", err
	}
	return script, nil
}

// postgresCreateTokenRow starts keyward (bin, if built) on cfg's PostgreSQL
// with its files in dir/postgres and returns its create row. stop stops that
// server; call it even on error.
func postgresCreateTokenRow(ctx context.Context, cfg config, bin, dir string, client *http.Client, progress io.Writer) (row pinnedRow, stop func(), err error) {
	pgCfg := cfg
	pgCfg.keywardBin = bin
	// It runs beside the SQLite server, which has --pprof-addr.
	if pgCfg.pprofAddr, err = nextPort(cfg.pprofAddr); err != nil {
		return pinnedRow{}, func() {}, err
	}
	pg, err := startKeyward(ctx, pgCfg, filepath.Join(dir, "postgres"), client, progress)
	if err != nil {
		return pinnedRow{}, func() {}, err
	}
	row, err = createTokenRow(ctx, client, &pinnedServer{pid: pg.cmd.Process.Pid, url: pg.url}, pg.adminKey, "create M2M token, PostgreSQL")
	return row, pg.stop, err
}

// nextPort is addr (host:port) with the port one higher; "" stays "".
func nextPort(addr string) (string, error) {
	if addr == "" {
		return "", nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("--pprof-addr: %w", err)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n <= 0 || n >= 65535 {
		return "", fmt.Errorf("--pprof-addr: %q needs a port below 65535", addr)
	}
	return net.JoinHostPort(host, strconv.Itoa(n+1)), nil
}

// analyticsRows are opaque verify on two fresh servers alike but for
// --analytics=false: the main one has stored the miss row's tokens and
// filled its cache by the second round, which costs its verifies some GC
// work of their own. stop stops both; call it even on error.
func analyticsRows(ctx context.Context, sqliteCfg config, dir string, client *http.Client, progress io.Writer) ([]pinnedRow, func(), error) {
	on, stopOn, err := sideOpaqueRow(ctx, sqliteCfg, dir, "analytics-on", "opaque M2M verify, fresh server", client, progress)
	if err != nil {
		return nil, stopOn, err
	}
	off, stopOff, err := sideOpaqueRow(ctx, sqliteCfg, dir, "no-analytics", "opaque M2M verify, fresh server, --analytics=false", client, progress, "--analytics=false")
	stop := func() { stopOff(); stopOn() }
	return []pinnedRow{on, off}, stop, err
}

// sideOpaqueRow starts another SQLite keyward (sqliteCfg's binary and
// flags plus flags, files in dir/sub) and returns its opaque verify row
// named name: the same request as the opaque row. The analytics rows are
// two of them, with and without --analytics=false, so their ratio is the
// cost of counting verifications. stop stops that server; call it even on
// error.
func sideOpaqueRow(ctx context.Context, sqliteCfg config, dir, sub, name string, client *http.Client, progress io.Writer, flags ...string) (row pinnedRow, stop func(), err error) {
	offCfg := sqliteCfg
	offCfg.pprofAddr = "" // one profiled server: the main one
	offCfg.serveFlags = append(slices.Clone(sqliteCfg.serveFlags), flags...)
	sub = filepath.Join(dir, sub)
	if err := os.Mkdir(sub, 0o700); err != nil {
		return pinnedRow{}, func() {}, err
	}
	kw, err := startKeyward(ctx, offCfg, sub, client, progress)
	if err != nil {
		return pinnedRow{}, func() {}, err
	}
	server := &pinnedServer{pid: kw.cmd.Process.Pid, url: kw.url}
	machineKey, err := newMachine(ctx, client, kw.url, kw.adminKey, "bench-verify")
	if err != nil {
		return pinnedRow{}, kw.stop, err
	}
	var out struct {
		Token string `json:"token"`
	}
	err = api{client: client, baseURL: kw.url}.call(ctx, http.MethodPost, "/clerk/v1/m2m_tokens", machineKey,
		map[string]any{"seconds_until_expiration": tokenTTL, "token_format": "opaque"}, http.StatusCreated, &out)
	if err != nil {
		return pinnedRow{}, kw.stop, err
	}
	row = pinnedRow{name: name, server: server, path: "/v1/verify",
		auth: "Bearer " + kw.adminKey, body: `{"token":"` + out.Token + `"}`, wantStatus: http.StatusOK}
	return row, kw.stop, checkRow(ctx, client, row)
}

// pinnedSQLiteConfig is cfg for the SQLite server, with a fresh master key
// (the cache-miss row stores tokens with it) and keyward built once into dir
// for both stores. It also makes the stores' data directories.
func pinnedSQLiteConfig(ctx context.Context, cfg config, dir string, progress io.Writer) (config, error) {
	sqliteCfg := cfg
	sqliteCfg.databaseURL = ""
	var err error
	if sqliteCfg.masterKey, err = keyring.GenerateMasterKey(); err != nil {
		return config{}, err
	}
	if cfg.keywardBin == "" { // build once for both stores
		sqliteCfg.keywardBin = filepath.Join(dir, "keyward")
		if err := buildKeyward(ctx, sqliteCfg.keywardBin, progress); err != nil {
			return config{}, err
		}
	}
	for _, sub := range []string{"sqlite", "postgres"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o700); err != nil {
			return config{}, err
		}
	}
	return sqliteCfg, nil
}

// cacheMissRow stores cfg.missTokens tokens in bulk through the SQLite store
// and returns the row that verifies them, one distinct token per request.
func cacheMissRow(ctx context.Context, cfg config, masterKey, dir string, kw *keywardProcess, server *pinnedServer, client *http.Client, progress io.Writer) (pinnedRow, error) {
	fmt.Fprintf(progress, "storing %d tokens for the cache-miss row …\n", cfg.missTokens)
	started := time.Now()
	missFile := filepath.Join(dir, "miss.txt")
	if err := seedTokens(ctx, masterKey, filepath.Join(dir, "sqlite", "data", "keyward.db"), kw, client, cfg.missTokens, missFile); err != nil {
		return pinnedRow{}, err
	}
	fmt.Fprintf(progress, "stored them in %s\n", time.Since(started).Round(time.Millisecond))
	miss := pinnedRow{name: fmt.Sprintf("%s, %d stored tokens", missRowPrefix, cfg.missTokens), server: server, path: "/v1/verify",
		auth: "Bearer " + kw.adminKey, bodies: missFile, bodyCount: cfg.missTokens, wantStatus: http.StatusOK}
	// A stored token must verify as valid: wrk sees only statuses.
	if last, err := lastLine(missFile); err != nil {
		return pinnedRow{}, err
	} else if err := checkRow(ctx, client, pinnedRow{name: miss.name, server: server, path: miss.path, auth: miss.auth, body: last, wantStatus: http.StatusOK}); err != nil {
		return pinnedRow{}, err
	}
	return miss, nil
}

// createTokenRow makes a machine on server and returns the row that creates
// M2M tokens with its key.
func createTokenRow(ctx context.Context, client *http.Client, server *pinnedServer, adminKey, name string) (pinnedRow, error) {
	machineKey, err := newMachine(ctx, client, server.url, adminKey, "bench-creates")
	if err != nil {
		return pinnedRow{}, err
	}
	return pinnedRow{name: name, server: server, path: "/clerk/v1/m2m_tokens", auth: "Bearer " + machineKey,
		body: `{"seconds_until_expiration":3600}`, wantStatus: http.StatusCreated}, nil
}

// measurePinnedRounds runs wrk on every row, round after round, so that a
// drift of the machine spreads over all rows; results[i] are row i's rounds.
func measurePinnedRounds(ctx context.Context, cfg config, script string, rows []pinnedRow, progress io.Writer) ([][]wrkResult, error) {
	results := make([][]wrkResult, len(rows))
	for round := range cfg.rounds {
		for i, row := range rows {
			fmt.Fprintf(progress, "round %d/%d: %s …\n", round+1, cfg.rounds, row.name)
			offset := 0
			if row.bodyCount > 0 {
				offset = round * row.bodyCount / cfg.rounds // each round its own tokens
			}
			res, err := runWrk(ctx, cfg, script, row, offset)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", row.name, err)
			}
			results[i] = append(results[i], res)
		}
	}
	return results, nil
}

// ensureWrk installs Debian's wrk when it is missing.
func ensureWrk(ctx context.Context, progress io.Writer) error {
	for _, tool := range []string{"taskset"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("--pinned needs %s (util-linux)", tool)
		}
	}
	if _, err := exec.LookPath("wrk"); err == nil {
		return nil
	}
	fmt.Fprintln(progress, "wrk is missing; apt-get install -y wrk …")
	install := exec.CommandContext(ctx, "apt-get", "install", "-y", "wrk")
	install.Stdout, install.Stderr = progress, progress
	if err := install.Run(); err != nil {
		return fmt.Errorf("install wrk (apt-get install -y wrk): %w", err)
	}
	return nil
}

// startPinnedBaseline runs this binary's bare net/http verify in a process
// of its own on the server CPU, so it is measured exactly like keyward.
func startPinnedBaseline(ctx context.Context, cfg config) (*pinnedServer, func(), error) {
	self, err := os.Executable()
	if err != nil {
		return nil, nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command("taskset", "-c", cfg.serverCPU, self, "--serve-baseline", addr)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	stop := func() { cmd.Process.Kill(); cmd.Wait() }
	url := "http://" + addr
	for deadline := time.Now().Add(readyTimeout); ; {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			stop()
			return nil, nil, fmt.Errorf("the baseline did not listen on %s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return &pinnedServer{pid: cmd.Process.Pid, url: url}, stop, nil
}

// serveBaseline is the --serve-baseline child: the no-op verify until
// killed.
func serveBaseline(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: noopVerify(), ReadHeaderTimeout: 10 * time.Second}
	go func() { <-ctx.Done(); srv.Close() }()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// pinnedVerifyRows creates one credential of each kind and returns the
// baseline row and a verify row for each.
func pinnedVerifyRows(ctx context.Context, client *http.Client, server *pinnedServer, adminKey string, bare *pinnedServer) ([]pinnedRow, error) {
	target := api{client: client, baseURL: server.url}
	machineKey, err := newMachine(ctx, client, server.url, adminKey, "bench-verify")
	if err != nil {
		return nil, err
	}
	mint := func(format string) (string, error) {
		var out struct {
			Token string `json:"token"`
		}
		err := target.call(ctx, http.MethodPost, "/clerk/v1/m2m_tokens", machineKey, map[string]any{"seconds_until_expiration": tokenTTL, "token_format": format}, http.StatusCreated, &out)
		return out.Token, err
	}
	opaque, err := mint("opaque")
	if err != nil {
		return nil, err
	}
	jwt, err := mint("jwt")
	if err != nil {
		return nil, err
	}
	// An org token, with an hourly limit no run reaches.
	if err := target.call(ctx, http.MethodPatch, "/v1/instance", adminKey, map[string]any{"org_token_hourly_limit": 1_000_000_000}, http.StatusOK, nil); err != nil {
		return nil, err
	}
	var org struct {
		ID string `json:"id"`
	}
	if err := target.call(ctx, http.MethodPost, "/v1/organizations", adminKey, map[string]string{"slug": "bench", "name": "Bench"}, http.StatusCreated, &org); err != nil {
		return nil, err
	}
	var orgToken struct {
		Key string `json:"key"`
	}
	if err := target.call(ctx, http.MethodPost, "/mist/api/v1/orgs/"+org.ID+"/apitokens", adminKey,
		map[string]any{"name": "bench", "privileges": []map[string]string{{"scope": "org", "role": "read"}}}, http.StatusOK, &orgToken); err != nil {
		return nil, err
	}
	pat, err := createPAT(ctx, client, server.url, adminKey)
	if err != nil {
		return nil, err
	}
	verify := func(token string) string { return `{"token":"` + token + `"}` }
	admin := "Bearer " + adminKey
	rows := []pinnedRow{
		{name: "bare net/http, ~200 B JSON", server: bare, path: "/v1/verify", auth: admin, body: verify(opaque), wantStatus: http.StatusOK},
		{name: "opaque M2M verify", server: server, path: "/v1/verify", auth: admin, body: verify(opaque), wantStatus: http.StatusOK},
		{name: "JWT M2M verify", server: server, path: "/v1/verify", auth: admin, body: verify(jwt), wantStatus: http.StatusOK},
		{name: "org token verify", server: server, path: "/v1/verify", auth: admin, body: verify(orgToken.Key), wantStatus: http.StatusOK},
		{name: "PAT verify", server: server, path: "/v1/verify", auth: admin, body: verify(pat), wantStatus: http.StatusOK},
		{name: "Clerk verify (/clerk/v1/m2m_tokens/verify)", server: server, path: "/clerk/v1/m2m_tokens/verify", auth: admin, body: verify(opaque), wantStatus: http.StatusOK},
	}
	// Every keyward row must answer a valid verdict before it is measured.
	for _, row := range rows[1:] {
		if err := checkRow(ctx, client, row); err != nil {
			return nil, err
		}
	}
	return rows, nil
}

// benchAPIKeySubject is the subject of the bench's API keys.
const benchAPIKeySubject = "user_2xhFjEI5X2qWRvtV13BzSj8H6Dk"

// apiKeyLimitRows creates, for each n in counts, an API key through the
// native API with n named limits (apiKeyWithLimits) and returns its verify
// row. The body names no limits, so every auto_apply one applies: the row
// measures a verify that counts n limits, all or nothing, on the server's
// limiter. Each key is checked to verify as valid with n limits reported.
func apiKeyLimitRows(ctx context.Context, client *http.Client, server *pinnedServer, adminKey string, counts []int) ([]pinnedRow, error) {
	target := api{client: client, baseURL: server.url}
	var rows []pinnedRow
	for _, n := range counts {
		var key struct {
			Secret string `json:"secret"`
		}
		if err := target.call(ctx, http.MethodPost, "/v1/api_keys", adminKey, apiKeyWithLimits(n), http.StatusCreated, &key); err != nil {
			return nil, err
		}
		row := pinnedRow{name: limitRowName(n), server: server, path: "/v1/verify", auth: "Bearer " + adminKey,
			body: `{"token":"` + key.Secret + `"}`, wantStatus: http.StatusOK}
		var answer struct {
			Valid      bool              `json:"valid"`
			RateLimits []json.RawMessage `json:"ratelimits"`
		}
		if err := target.call(ctx, http.MethodPost, row.path, adminKey, map[string]string{"token": key.Secret}, http.StatusOK, &answer); err != nil {
			return nil, fmt.Errorf("%s: %w", row.name, err)
		}
		if !answer.Valid || len(answer.RateLimits) != n {
			return nil, fmt.Errorf("%s: the verify answered valid %v with %d limits, want valid with %d", row.name, answer.Valid, len(answer.RateLimits), n)
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// apiKeyWithLimits is the POST /v1/api_keys body of a bench key with n
// named limits l0, l1, …, each sliding (the dearer algorithm: it reads the
// previous window too), auto_apply, and authority.MaxLimit (10^9) calls an
// hour, which no run reaches; n = 0 sends no ratelimits, so the key has
// no controls at all.
func apiKeyWithLimits(n int) map[string]any {
	body := map[string]any{"name": limitRowName(n), "subject": benchAPIKeySubject}
	if n == 0 {
		return body
	}
	limits := make([]map[string]any, n)
	for i := range limits {
		limits[i] = map[string]any{"name": "l" + strconv.Itoa(i), "limit": authority.MaxLimit, "duration": time.Hour.Milliseconds(),
			"algorithm": string(authority.LimitSliding), "auto_apply": true}
	}
	body["ratelimits"] = limits
	return body
}

func limitRowName(n int) string {
	if n == 1 {
		return "API key verify, 1 named limit"
	}
	return fmt.Sprintf("API key verify, %d named limits", n)
}

// parseLimitRows reads --limit-rows: comma-separated distinct counts of
// named limits, each 0 to authority.MaxNamedLimits; "" adds no rows.
func parseLimitRows(s string) ([]int, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var counts []int
	for field := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(field))
		if err != nil || n < 0 || n > authority.MaxNamedLimits {
			return nil, fmt.Errorf("--limit-rows: %q is not a count of limits from 0 to %d", field, authority.MaxNamedLimits)
		}
		if slices.Contains(counts, n) {
			return nil, fmt.Errorf("--limit-rows: %d appears twice", n)
		}
		counts = append(counts, n)
	}
	return counts, nil
}

func checkRow(ctx context.Context, client *http.Client, row pinnedRow) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, row.server.url+row.path, strings.NewReader(row.body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", row.auth)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != row.wantStatus || bytes.Contains(body, []byte(`"valid":false`)) {
		return fmt.Errorf("%s: %d %s", row.name, resp.StatusCode, bytes.TrimSpace(body))
	}
	return nil
}

func newMachine(ctx context.Context, client *http.Client, url, adminKey, name string) (string, error) {
	var m machine
	err := api{client: client, baseURL: url}.call(ctx, http.MethodPost, "/clerk/v1/machines", adminKey, map[string]string{"name": name}, http.StatusOK, &m)
	return m.SecretKey, err
}

// createPAT makes a personal access token for a bench user (Spatio).
func createPAT(ctx context.Context, client *http.Client, url, adminKey string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/spatio/v1/tokens", strings.NewReader(`{"name":"bench","scopes":["keyward:tokens"]}`))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+adminKey)
	req.Header.Set("X-User-ID", "user_bench")
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out struct {
		Token string `json:"token"`
	}
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(body, &out) != nil || out.Token == "" {
		return "", fmt.Errorf("create PAT: %d %s", resp.StatusCode, bytes.TrimSpace(body))
	}
	return out.Token, nil
}

// seedTokens stores n tokens of a new machine in the SQLite file of the
// running server kw, in bulk
// (authority.SeedM2MTokens), and writes one verify body per line to file.
func seedTokens(ctx context.Context, masterKey, sqlitePath string, kw *keywardProcess, client *http.Client, n int, file string) error {
	machineKey, err := newMachine(ctx, client, kw.url, kw.adminKey, "bench-miss")
	if err != nil {
		return err
	}
	master, err := keyring.ParseMasterKey(masterKey)
	if err != nil {
		return err
	}
	// The running server's own file: SQLite takes a second process's
	// writes (WAL), and the server reads the rows on its misses.
	store, err := sqlstore.OpenSQLite(ctx, sqlitePath)
	if err != nil {
		return err
	}
	defer store.Close()
	// The server's own data keys, unwrapped with the master key.
	keys, err := authority.UnlockKeyring(ctx, store, authority.SystemClock{}, master)
	if err != nil {
		return err
	}
	auth := authority.New(authority.Config{Store: store, Keyring: keys, Clock: authority.SystemClock{}, Limiter: inmem.NewLimiter()})
	caller, err := auth.Authenticate(ctx, machineKey)
	if err != nil {
		return err
	}
	secrets, err := auth.SeedM2MTokens(ctx, caller, n, tokenTTL*time.Second)
	if err != nil {
		return err
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for _, s := range secrets {
		fmt.Fprintf(w, "{\"token\":%q}\n", s.Reveal())
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func lastLine(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1], nil
}

// runWrk runs one wrk measurement of row and reads the server's CPU time
// and RSS around it.
func runWrk(ctx context.Context, cfg config, script string, row pinnedRow, offset int) (wrkResult, error) {
	cpuBefore, err := cpuTicks(row.server.pid)
	if err != nil {
		return wrkResult{}, err
	}
	commits0, writes0 := commitCounts(ctx, row.server.url)
	conns := cfg.pinnedConcurrency
	if row.connections > 0 {
		conns = row.connections
	}
	c := strconv.Itoa(conns)
	cmd := exec.CommandContext(ctx, "taskset", "-c", cfg.loadCPU, "wrk", "-t1", "-c"+c, "-d"+wrkSeconds(cfg.duration), "--latency", "-s", script, row.server.url+row.path)
	cmd.Env = append(os.Environ(), "KWB_AUTH="+row.auth, "KWB_BODY="+row.body, "KWB_BODIES="+row.bodies, "KWB_OFFSET="+strconv.Itoa(offset))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk: %w: %s", err, out)
	}
	cpuAfter, err := cpuTicks(row.server.pid)
	if err != nil {
		return wrkResult{}, err
	}
	res, err := parseWrk(string(out))
	if err != nil {
		return wrkResult{}, err
	}
	if res.requests > 0 {
		res.cpuUsPerReq = float64(cpuAfter-cpuBefore) * 1e6 / clockTicks / float64(res.requests)
	}
	if mem, err := processMemory(row.server.pid); err == nil {
		res.rssMiB = float64(mem.VmRSSKiB) / 1024
		res.anonMiB = float64(mem.RssAnonKiB) / 1024
	}
	if commits1, writes1 := commitCounts(ctx, row.server.url); commits1 > commits0 {
		res.writesPerCommit = (writes1 - writes0) / (commits1 - commits0)
	}
	if exceedsErrorBudget(res.bad, res.requests) {
		return res, fmt.Errorf("%d of %d answers were not %d; wrk said:\n%s", res.bad, res.requests, row.wantStatus, out)
	}
	return res, nil
}

// commitCounts reads keyward_store_commits_total and
// keyward_store_committed_writes_total from the server's /metrics; zeros
// when it has none (the bare server).
func commitCounts(ctx context.Context, url string) (commits, writes float64) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/metrics", nil)
	if err != nil {
		return 0, 0
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		return 0, 0
	}
	return parseCommitCounts(string(body))
}

// parseCommitCounts picks the two commit counters out of a Prometheus
// text exposition.
func parseCommitCounts(exposition string) (commits, writes float64) {
	for line := range strings.Lines(exposition) {
		name, value, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue
		}
		switch name {
		case "keyward_store_commits_total":
			commits, _ = strconv.ParseFloat(value, 64)
		case "keyward_store_committed_writes_total":
			writes, _ = strconv.ParseFloat(value, 64)
		}
	}
	return commits, writes
}

// wrkSeconds is d for wrk's -d, which takes no fractions: whole seconds,
// at least one.
func wrkSeconds(d time.Duration) string {
	return strconv.Itoa(max(1, int((d+time.Second-1)/time.Second))) + "s"
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times: 100 on every
// Linux architecture keyward runs on.
const clockTicks = 100

// cpuTicks is utime+stime of pid, in clock ticks.
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseProcStat(string(b))
}

// parseProcStat reads fields 14 and 15 (utime, stime) of /proc/<pid>/stat;
// the command name in field 2 may hold spaces, so fields count from its ')'.
func parseProcStat(stat string) (int64, error) {
	end := strings.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, errors.New("/proc/<pid>/stat: no command name")
	}
	fields := strings.Fields(stat[end+1:]) // fields[0] is field 3, the state
	if len(fields) < 13 {
		return 0, errors.New("/proc/<pid>/stat: too few fields")
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("/proc/<pid>/stat: utime or stime is not a number")
	}
	return utime + stime, nil
}

func processMemory(pid int) (*memory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	return parseProcStatus(string(b))
}

// parseWrk reads requests, req/s, p50, p99 and the non-2xx count from
// wrk --latency output.
func parseWrk(out string) (wrkResult, error) {
	var r wrkResult
	var haveRPS, haveReq bool
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		switch {
		case len(f) >= 2 && f[0] == "Requests/sec:":
			r.rps, _ = strconv.ParseFloat(f[1], 64)
			haveRPS = true
		case len(f) >= 3 && f[1] == "requests" && f[2] == "in":
			r.requests, _ = strconv.Atoi(f[0])
			haveReq = true
		case len(f) == 2 && f[0] == "50%":
			r.p50Ms = wrkMillis(f[1])
		case len(f) == 2 && f[0] == "99%":
			r.p99Ms = wrkMillis(f[1])
		case strings.HasPrefix(strings.TrimSpace(line), "Non-2xx or 3xx responses:"):
			n, _ := strconv.Atoi(f[len(f)-1])
			r.bad += n
		case strings.HasPrefix(strings.TrimSpace(line), "Socket errors:"):
			// connect 0, read 0, write 0, timeout 0
			for i := 2; i+1 < len(f); i += 2 {
				n, _ := strconv.Atoi(strings.TrimSuffix(f[i+1], ","))
				r.bad += n
			}
		}
	}
	if !haveRPS || !haveReq {
		return r, fmt.Errorf("unexpected wrk output:\n%s", out)
	}
	return r, nil
}

// wrkMillis converts wrk's "512.00us", "1.23ms", "2.10s" to milliseconds.
func wrkMillis(s string) float64 {
	for _, u := range []struct {
		suffix string
		ms     float64
	}{{"us", 1e-3}, {"ms", 1}, {"m", 60e3}, {"s", 1e3}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f * u.ms
		}
	}
	return 0
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// writePinned prints medians over the rounds; the ratio is the median of
// each round's row ÷ that round's bare net/http (the first row).
func writePinned(w io.Writer, cfg config, rows []pinnedRow, results [][]wrkResult) error {
	fmt.Fprintf(w, "keyward-bench --pinned  %s  servers on CPU %s, wrk -t1 -c%d on CPU %s, %s per run, %d interleaved rounds, medians\n\n",
		time.Now().UTC().Format(time.RFC3339), cfg.serverCPU, cfg.pinnedConcurrency, cfg.loadCPU, cfg.duration, cfg.rounds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "case\treq/s\tp50 ms\tp99 ms\tCPU µs/req\tRSS MiB\tanon MiB\t÷ bare\t÷ opaque\tby CPU ÷ bare\twrites/commit\t")
	pick := func(rs []wrkResult, f func(wrkResult) float64) float64 {
		var xs []float64
		for _, r := range rs {
			xs = append(xs, f(r))
		}
		return median(xs)
	}
	ratio := func(i, base int) float64 {
		var xs []float64
		for round := range results[i] {
			if b := results[base][round].rps; b > 0 {
				xs = append(xs, results[i][round].rps/b)
			}
		}
		return median(xs)
	}
	// What the ratio would be on a core of its own: bare CPU per request ÷
	// the row's. On a busy machine the servers share their core with
	// others, and req/s understates the difference.
	cpuRatio := func(i int) float64 {
		var xs []float64
		for round := range results[i] {
			if c := results[i][round].cpuUsPerReq; c > 0 {
				xs = append(xs, results[0][round].cpuUsPerReq/c)
			}
		}
		return median(xs)
	}
	for i, row := range rows {
		rs := results[i]
		batch := "-"
		if b := pick(rs, func(r wrkResult) float64 { return r.writesPerCommit }); b > 0 {
			batch = strconv.FormatFloat(b, 'f', 1, 64)
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.3f\t%.3f\t%.1f\t%.1f\t%.1f\t%.2f\t%.2f\t%.2f\t%s\t\n", row.name,
			pick(rs, func(r wrkResult) float64 { return r.rps }),
			pick(rs, func(r wrkResult) float64 { return r.p50Ms }),
			pick(rs, func(r wrkResult) float64 { return r.p99Ms }),
			pick(rs, func(r wrkResult) float64 { return r.cpuUsPerReq }),
			pick(rs, func(r wrkResult) float64 { return r.rssMiB }),
			pick(rs, func(r wrkResult) float64 { return r.anonMiB }),
			ratio(i, 0), ratio(i, 1), cpuRatio(i), batch)
	}
	return tw.Flush()
}

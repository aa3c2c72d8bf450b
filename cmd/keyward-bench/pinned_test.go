package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/authority"
)

const wrkOutput = `Running 10s test @ http://127.0.0.1:4000/v1/verify
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.02ms    2.10ms  45.00ms   97.00%
    Req/Sec    15.10k     1.20k   17.00k    80.00%
  Latency Distribution
     50%  512.00us
     75%  800.00us
     90%    1.50ms
     99%    2.10s
  150321 requests in 10.00s, 40.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 7
Requests/sec:  15032.10
Transfer/sec:      4.00MB
`

func TestParseWrk(t *testing.T) {
	r, err := parseWrk(wrkOutput)
	if err != nil {
		t.Fatal(err)
	}
	if r.requests != 150321 || r.rps != 15032.10 || r.p50Ms != 0.512 || r.p99Ms != 2100 || r.bad != 10 {
		t.Fatalf("parseWrk = %+v", r)
	}
	if _, err := parseWrk("unable to connect to 127.0.0.1:4000 Connection refused\n"); err == nil {
		t.Fatal("output without results was accepted")
	}
}

func TestParseProcStat(t *testing.T) {
	// The command name may hold spaces and parentheses.
	stat := "4242 (key ward) (x)) S 1 4242 4242 0 -1 4194560 900 0 0 0 1234 567 0 0 20 0 9 0 100 2000000 3000 18446744073709551615\n"
	if ticks, err := parseProcStat(stat); err != nil || ticks != 1234+567 {
		t.Fatalf("parseProcStat = %d, %v; want %d", ticks, err, 1234+567)
	}
	if _, err := parseProcStat("4242 (keyward) S 1 2"); err == nil {
		t.Fatal("a short stat line was accepted")
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{{[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 2.5}, {[]float64{7}, 7}, {nil, 0}} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// TestWrkScriptSendsEachBodyInTurn runs the Lua script under wrk against
// the baseline when wrk is installed (CI installs it for --pinned).
func TestWrkScriptSendsEachBodyInTurn(t *testing.T) {
	if _, err := exec.LookPath("wrk"); err != nil {
		t.Skip("wrk is not installed")
	}
	var mu sync.Mutex
	seen := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen[r.Header.Get("Authorization")+" "+string(b)]++
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	url := srv.URL
	dir := t.TempDir()
	script := filepath.Join(dir, "post.lua")
	bodies := filepath.Join(dir, "bodies.txt")
	if err := os.WriteFile(script, []byte(wrkScript), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bodies, []byte("{\"token\":\"a\"}\n{\"token\":\"b\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("wrk", "-t1", "-c1", "-d1s", "--latency", "-s", script, url+"/v1/verify")
	cmd.Env = append(os.Environ(), "KWB_AUTH=Bearer x", "KWB_BODIES="+bodies, "KWB_OFFSET=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("wrk: %v\n%s", err, out)
	}
	r, err := parseWrk(string(out))
	if err != nil || r.requests == 0 || r.bad != 0 || !strings.Contains(string(out), "Latency Distribution") {
		t.Fatalf("wrk run: %+v, %v\n%s", r, err, out)
	}
	mu.Lock()
	defer mu.Unlock()
	a, b := seen[`Bearer x {"token":"a"}`], seen[`Bearer x {"token":"b"}`]
	if len(seen) != 2 || a == 0 || a-b > 1 || b-a > 1 {
		t.Fatalf("bodies sent: %v; want both in turn", seen)
	}
}

func TestWrkSeconds(t *testing.T) {
	for d, want := range map[time.Duration]string{10 * time.Second: "10s", 1500 * time.Millisecond: "2s", 0: "1s", time.Minute: "60s"} {
		if got := wrkSeconds(d); got != want {
			t.Errorf("wrkSeconds(%v) = %s, want %s", d, got, want)
		}
	}
}

func TestWritePinnedShowsMediansAndRatiosPerRound(t *testing.T) {
	rows := []pinnedRow{{name: "bare"}, {name: "opaque"}, {name: "jwt"}}
	results := [][]wrkResult{
		{{rps: 10000, cpuUsPerReq: 20}, {rps: 20000, cpuUsPerReq: 20}, {rps: 30000, cpuUsPerReq: 20}},
		{{rps: 6000, cpuUsPerReq: 40, rssMiB: 50, anonMiB: 30}, {rps: 10000, cpuUsPerReq: 50, rssMiB: 60, anonMiB: 31}, {rps: 12000, cpuUsPerReq: 25, rssMiB: 55, anonMiB: 40} /* ratios .6 .5 .4 */},
		{{rps: 6000, p99Ms: 3, writesPerCommit: 9}, {rps: 9000, p99Ms: 1, writesPerCommit: 7}, {rps: 12000, p99Ms: 2, writesPerCommit: 8}},
	}
	var out strings.Builder
	if err := writePinned(&out, config{serverCPU: "1", loadCPU: "0", pinnedConcurrency: 16, duration: 10 * time.Second, rounds: 3}, rows, results); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(out.String(), "\n")
	var opaque, jwt string
	for _, l := range lines {
		switch f := strings.Fields(l); {
		case len(f) > 0 && f[0] == "opaque":
			opaque = l
		case len(f) > 0 && f[0] == "jwt":
			jwt = l
		}
	}
	// opaque: median 10000 req/s, 40 µs, RSS 55 of which 31 anonymous;
	// ÷ bare median of .6 .5 .4; by CPU median of .5 .4 .8
	if f := strings.Fields(opaque); len(f) != 11 || f[10] != "-" || f[1] != "10000" || f[4] != "40.0" || f[5] != "55.0" || f[6] != "31.0" ||
		f[7] != "0.50" || f[8] != "1.00" || f[9] != "0.50" {
		t.Errorf("opaque row: %q", opaque)
	}
	// jwt: ÷ opaque per round 1.0 .9 1.0 → 1.00; p99 median 2; batch median 8
	if f := strings.Fields(jwt); len(f) != 11 || f[3] != "2.000" || f[8] != "1.00" || f[10] != "8.0" {
		t.Errorf("jwt row: %q", jwt)
	}
	if !strings.Contains(out.String(), "3 interleaved rounds") {
		t.Errorf("header: %s", lines[0])
	}
}

func TestParseCommitCounts(t *testing.T) {
	exposition := `# HELP keyward_store_commits_total Group-commit transactions committed.
# TYPE keyward_store_commits_total counter
keyward_store_commits_total 120
keyward_store_committed_writes_total 1.5e+03
keyward_store_transaction_duration_seconds_count{mode="update",outcome="ok"} 9
`
	if c, w := parseCommitCounts(exposition); c != 120 || w != 1500 {
		t.Fatalf("commits %v writes %v, want 120 and 1500", c, w)
	}
	if c, w := parseCommitCounts("go_goroutines 8\n"); c != 0 || w != 0 {
		t.Fatalf("without the counters: %v %v, want zeros", c, w)
	}
}

func TestParseLimitRows(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []int
	}{{"0,1,3,10", []int{0, 1, 3, 10}}, {" 16 , 0", []int{16, 0}}, {"", nil}, {"  ", nil}} {
		if got, err := parseLimitRows(tc.in); err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("parseLimitRows(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"-1", "17", "3,x", "1,,2", "1,1", "3.5"} {
		if got, err := parseLimitRows(bad); err == nil || !strings.HasPrefix(err.Error(), "--limit-rows: ") {
			t.Errorf("parseLimitRows(%q) = %v, %v; want an error naming --limit-rows", bad, got, err)
		}
	}
	cfg, err := parseFlags([]string{"--pinned"}, io.Discard)
	if err != nil || !slices.Equal(cfg.limitRows, []int{0, 1, 3, 10}) {
		t.Errorf("default --limit-rows: %v, %v; want [0 1 3 10]", cfg.limitRows, err)
	}
	if _, err := parseFlags([]string{"--pinned", "--limit-rows", "40"}, io.Discard); err == nil {
		t.Error("--limit-rows 40 was accepted")
	}
}

// The create body of a limit row's key is what the native API takes: n
// distinct auto_apply limits no run reaches, and none at all for n = 0.
func TestAPIKeyWithLimits(t *testing.T) {
	for _, n := range []int{0, 1, 3, 10, authority.MaxNamedLimits} {
		b, err := json.Marshal(apiKeyWithLimits(n))
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Name, Subject string
			RateLimits    *[]struct {
				Name      string `json:"name"`
				Limit     int64  `json:"limit"`
				Duration  int64  `json:"duration"`
				Algorithm string `json:"algorithm"`
				AutoApply bool   `json:"auto_apply"`
			} `json:"ratelimits"`
		}
		if err := json.Unmarshal(b, &body); err != nil {
			t.Fatal(err)
		}
		if body.Name != limitRowName(n) || body.Subject != benchAPIKeySubject {
			t.Errorf("n=%d: %s", n, b)
		}
		if n == 0 {
			if body.RateLimits != nil {
				t.Errorf("n=0 sends ratelimits: %s", b)
			}
			continue
		}
		if body.RateLimits == nil || len(*body.RateLimits) != n {
			t.Fatalf("n=%d: %s", n, b)
		}
		names := map[string]bool{}
		for _, l := range *body.RateLimits {
			names[l.Name] = true
			if l.Limit != authority.MaxLimit || l.Duration != 3_600_000 || l.Algorithm != "sliding" || !l.AutoApply {
				t.Errorf("n=%d: limit %+v, want %d an hour, sliding, auto_apply", n, l, authority.MaxLimit)
			}
		}
		if len(names) != n {
			t.Errorf("n=%d: names repeat: %s", n, b)
		}
	}
	if limitRowName(1) != "API key verify, 1 named limit" || limitRowName(10) != "API key verify, 10 named limits" {
		t.Errorf("row names: %q, %q", limitRowName(1), limitRowName(10))
	}
}

func TestNextPortGivesThePostgresServerItsOwnProfiler(t *testing.T) {
	for addr, want := range map[string]string{"": "", "127.0.0.1:6060": "127.0.0.1:6061", "[::1]:7000": "[::1]:7001"} {
		if got, err := nextPort(addr); err != nil || got != want {
			t.Errorf("nextPort(%q) = %q, %v; want %q", addr, got, err, want)
		}
	}
	for _, bad := range []string{"127.0.0.1", "127.0.0.1:x", "127.0.0.1:65535"} {
		if _, err := nextPort(bad); err == nil {
			t.Errorf("nextPort(%q) accepted", bad)
		}
	}
}

func TestOnlyRowsKeepsBareOpaqueAndTheNamedRows(t *testing.T) {
	rows := []pinnedRow{{name: "bare"}, {name: "opaque"}, {name: "JWT"}, {name: "cache-miss verify"}, {name: "create, PostgreSQL"}}
	names := func(rs []pinnedRow) (out []string) {
		for _, r := range rs {
			out = append(out, r.name)
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		words []string
		want  []string
	}{
		{"no words keeps every row", nil, names(rows)},
		{"a word keeps its rows besides bare and opaque", []string{"miss"}, []string{"bare", "opaque", "cache-miss verify"}},
		{"several words keep each one's rows", []string{"PostgreSQL", "JWT"}, []string{"bare", "opaque", "JWT", "create, PostgreSQL"}},
		{"a word that names nothing keeps bare and opaque", []string{"nothing"}, []string{"bare", "opaque"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := names(onlyRows(rows, tc.words)); !slices.Equal(got, tc.want) {
				t.Errorf("onlyRows(%v) = %v, want %v", tc.words, got, tc.want)
			}
		})
	}
	if rows[2].name != "JWT" {
		t.Errorf("onlyRows changed its input: %v", names(rows))
	}
}

func TestPinnedMissTokensAcceptsZeroAndRefusesANegativeCount(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr string
		want    int
	}{
		{"the default stores 200 000", []string{"--pinned"}, "", 200000},
		{"zero is accepted (no miss row)", []string{"--pinned", "--miss-tokens", "0"}, "", 0},
		{"a negative count is refused", []string{"--pinned", "--miss-tokens", "-1"}, "--miss-tokens must not be negative", 0},
		{"zero rounds is still refused", []string{"--pinned", "--rounds", "0"}, "--rounds and --connections must be at least 1", 0},
		{"zero with --only miss is refused", []string{"--pinned", "--miss-tokens", "0", "--only", "create,miss"}, "--only names the cache-miss row", 0},
		{"zero with --only create is accepted", []string{"--pinned", "--miss-tokens", "0", "--only", "create,PostgreSQL"}, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parseFlags(tc.args, io.Discard)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parseFlags(%q) = %v, want an error with %q", tc.args, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseFlags(%q): %v", tc.args, err)
			}
			if cfg.missTokens != tc.want {
				t.Fatalf("missTokens = %d, want %d", cfg.missTokens, tc.want)
			}
		})
	}
}

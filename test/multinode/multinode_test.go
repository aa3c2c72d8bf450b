// Package multinode_test runs several real keyward processes against one
// PostgreSQL database (and, in one mode, one Redis) and checks that they
// behave as one:
//
//   - a revoke through one node fails on the others at once;
//   - an hourly limit counts calls across all of them;
//   - named rate limits (fixed and sliding, costs over 1, two limits in one
//     call) admit exactly what they allow, all or nothing, under calls
//     spread 60/30/10 over the nodes, and an identity's limit is shared by
//     its keys verified through different nodes;
//   - credits are spent exactly (never below zero), and a refill that
//     falls due is applied once, not once per node;
//   - webhook events of changes made through every node are delivered,
//     signed, once each and in order per credential, though every node's
//     dispatcher may send any of them.
//
// It needs KEYWARD_TEST_DATABASE_URL (a PostgreSQL server where it may
// create and drop a database) and, for the Redis mode, the redis-server
// binary (it starts a private Redis on a free port, so it can kill it).
package multinode_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyward/keyward/client"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/keyring"
)

const nodes = 3

// cluster is nodes keyward processes sharing one database.
type cluster struct {
	urls      []string
	adminKey  string
	minterKey string // a machine scoped to another, made on first mint
	client    *http.Client
	dbURL     string
}

func TestMultiNodeWithRedis(t *testing.T) {
	redisPath, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not installed")
	}
	dbURL := database(t)
	redisAddr, stopRedis := startRedis(t, redisPath)
	c := start(t, dbURL, "redis://"+redisAddr+"/0")
	c.propagation(t)
	c.sharedLimit(t)
	c.namedLimits(t)
	c.identityLimit(t)
	c.credits(t)
	c.webhooks(t)

	// Redis dies mid-run: verification keeps answering (limits fall back
	// to each node's own counter, invalidations to short cache lifetimes).
	tok := c.mint(t)
	stopRedis()
	for i := 0; i < 30; i++ {
		if code := c.verify(t, i%nodes, tok.token); code != "valid" {
			t.Fatalf("verification with Redis down answered %s", code)
		}
	}
	t.Log("with Redis killed, 30 verifications over 3 nodes all answered valid")
}

func TestMultiNodeWithPostgresAlone(t *testing.T) {
	dbURL := database(t)
	c := start(t, dbURL, "")
	c.propagation(t)
	c.sharedLimit(t)
	c.namedLimits(t)
	c.identityLimit(t)
	c.credits(t)
	c.webhooks(t)
}

// database creates a fresh database on the test server and drops it after.
func database(t *testing.T) string {
	t.Helper()
	base := os.Getenv("KEYWARD_TEST_DATABASE_URL")
	if base == "" {
		t.Skip("KEYWARD_TEST_DATABASE_URL is not set")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect to %s: %v", redact(base), err)
	}
	name := "kw_multinode_" + strings.ToLower(credential.NewHexID("")[:12])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		conn.Close(context.Background())
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

func redact(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	return "the database URL"
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func startRedis(t *testing.T, path string) (string, func()) {
	t.Helper()
	addr := freePort(t)
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(path, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
	}
	t.Cleanup(stop)
	waitFor(t, "redis-server to listen", func() bool {
		conn, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			conn.Close()
		}
		return err == nil
	})
	return addr, stop
}

// waitFor polls ok until it holds, for at most 20 s.
func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	if !eventually(ok) {
		t.Fatalf("timed out waiting for %s", what)
	}
}

// eventually polls ok until it holds, for at most 20 s, and reports
// whether it did.
func eventually(ok func() bool) bool {
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// build compiles keyward once per test process.
func build(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "keyward-multinode-")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "keyward")
		out, err := exec.Command("go", "build", "-o", binary, "github.com/keyward/keyward/cmd/keyward").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

// start runs the nodes and waits until each is ready.
func start(t *testing.T, dbURL, redisURL string) *cluster {
	t.Helper()
	bin := build(t)
	masterKey, err := keyring.GenerateMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{
		adminKey: credential.MustGenerate(credential.KindAdminKey).Reveal(),
		client:   &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
		dbURL:    dbURL,
	}
	for i := 0; i < nodes; i++ {
		addr := freePort(t)
		// One public URL for all: it is the iss of every node's JWTs.
		// Webhooks go to the test's receiver on loopback.
		args := []string{"serve", "--addr", addr, "--database-url", dbURL, "--log-level", "warn", "--public-url", "http://keyward.cluster.test",
			"--webhook-allow-private"}
		if redisURL != "" {
			args = append(args, "--redis-url", redisURL)
		}
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "KEYWARD_MASTER_KEY="+masterKey, "KEYWARD_BOOTSTRAP_ADMIN_KEY="+c.adminKey)
		var logs bytes.Buffer
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Signal(os.Interrupt)
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
			if t.Failed() {
				t.Logf("node %s output:\n%s", addr, logs.String())
			}
		})
		base := "http://" + addr
		waitFor(t, "node "+addr+" to be ready", func() bool {
			resp, err := c.client.Get(base + "/readyz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == 200
		})
		c.urls = append(c.urls, base)
	}
	return c
}

// call sends one request to node; an answer of 300 or more is an error.
// It never fails the test, so goroutines may use it.
func (c *cluster) call(node int, method, path, key string, body any) (map[string]any, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.urls[node]+path, rd)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return nil, fmt.Errorf("%s %s on node %d: %d %s", method, path, node, resp.StatusCode, raw)
	}
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return out, nil
}

func (c *cluster) do(t *testing.T, node int, method, path, key string, body any) map[string]any {
	t.Helper()
	out, err := c.call(node, method, path, key, body)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (c *cluster) verify(t *testing.T, node int, token string) string {
	t.Helper()
	return c.do(t, node, "POST", "/v1/verify", c.adminKey, map[string]string{"token": token})["code"].(string)
}

type token struct{ id, token string }

// mint creates an M2M token through node 0.
func (c *cluster) mint(t *testing.T) token {
	t.Helper()
	if c.minterKey == "" {
		target := c.do(t, 0, "POST", "/clerk/v1/machines", c.adminKey, map[string]string{"name": "target"})["id"].(string)
		c.minterKey = c.do(t, 0, "POST", "/clerk/v1/machines", c.adminKey, map[string]any{"name": "minter", "scoped_machines": []string{target}})["secret_key"].(string)
	}
	tok := c.do(t, 0, "POST", "/clerk/v1/m2m_tokens", c.minterKey, map[string]any{"seconds_until_expiration": 3600})
	return token{id: tok["id"].(string), token: tok["token"].(string)}
}

// propagation revokes 100 tokens through node 0 and measures how long the
// other nodes, which had each token cached as valid, keep accepting it.
func (c *cluster) propagation(t *testing.T) {
	t.Helper()
	const rounds = 100
	var took []time.Duration
	for i := 0; i < rounds; i++ {
		tok := c.mint(t)
		for n := 1; n < nodes; n++ {
			if code := c.verify(t, n, tok.token); code != "valid" {
				t.Fatalf("node %d before the revoke: %s", n, code)
			}
		}
		start := time.Now()
		c.do(t, 0, "POST", "/clerk/v1/m2m_tokens/"+tok.id+"/revoke", c.adminKey, map[string]any{})
		for n := 1; n < nodes; n++ {
			for c.verify(t, n, tok.token) != "revoked" {
				if time.Since(start) > 10*time.Second {
					t.Fatalf("node %d still accepts a token revoked 10 s ago", n)
				}
				time.Sleep(time.Millisecond)
			}
		}
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	p50, p99 := took[len(took)/2], took[len(took)*99/100]
	t.Logf("revocation propagation over %d revocations to %d other nodes: p50 %v, p99 %v, max %v", rounds, nodes-1, p50, p99, took[len(took)-1])
	// The figures are reported, never asserted: speed is measured, and a
	// shared machine's scheduling is not keyward's propagation.
}

// awaitFreshWindow waits for the next window of length w (aligned to the
// Unix epoch, as keyward's limit windows and daily refills are) when the
// current one ends within two minutes: a count that resets mid-test is not
// exact.
func awaitFreshWindow(t *testing.T, w time.Duration) {
	t.Helper()
	ms := w.Milliseconds()
	end := time.UnixMilli((time.Now().UnixMilli()/ms + 1) * ms)
	if left := time.Until(end); left < 2*time.Minute {
		t.Logf("waiting %v for the next %v window", left.Round(time.Second), w)
		time.Sleep(left + time.Second)
	}
}

// uneven is the node of call i when calls are spread 60/30/10.
func uneven(i int) int { return [...]int{0, 0, 0, 0, 0, 0, 1, 1, 1, 2}[i%10] }

// answer is one verify call's node and answer.
type answer struct {
	node int
	body map[string]any
}

func (a answer) code() string { s, _ := a.body["code"].(string); return s }

// limitRemaining is what a verify answer reports left of the named limit,
// or -1 when it reports none of that name.
func (a answer) limitRemaining(name string) int64 {
	ls, _ := a.body["ratelimits"].([]any)
	for _, l := range ls {
		if m, _ := l.(map[string]any); m["name"] == name {
			r, _ := m["remaining"].(float64)
			return int64(r)
		}
	}
	return -1
}

// verifyMany sends n verify calls, 24 at a time: call i goes to the node
// and with the body (the token and any controls) that call(i) returns. It
// returns the answers in call order.
func (c *cluster) verifyMany(t *testing.T, n int, call func(i int) (node int, body map[string]any)) []answer {
	t.Helper()
	out := make([]answer, n)
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	for w := 0; w < 24; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || failed.Load() != nil {
					return
				}
				node, body := call(i)
				got, err := c.call(node, "POST", "/v1/verify", c.adminKey, body)
				if err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
				out[i] = answer{node, got}
			}
		}()
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		t.Fatal(*err)
	}
	return out
}

// verifyOne is one verify call to node with body.
func (c *cluster) verifyOne(t *testing.T, node int, body map[string]any) answer {
	t.Helper()
	return answer{node, c.do(t, node, "POST", "/v1/verify", c.adminKey, body)}
}

// tally counts the answers by code.
func tally(as []answer) map[string]int {
	n := map[string]int{}
	for _, a := range as {
		n[a.code()]++
	}
	return n
}

// spread describes where the answers came from and what they said:
// "60 calls (36/18/6 over the nodes): 20 valid, 40 rate_limited".
func spread(as []answer) string {
	var per [nodes]int
	for _, a := range as {
		per[a.node]++
	}
	counts := make([]string, nodes)
	for i, n := range per {
		counts[i] = fmt.Sprint(n)
	}
	byCode := tally(as)
	codes := slices.Sorted(maps.Keys(byCode))
	parts := make([]string, len(codes))
	for i, code := range codes {
		parts[i] = fmt.Sprintf("%d %s", byCode[code], code)
	}
	return fmt.Sprintf("%d calls (%s over the nodes): %s", len(as), strings.Join(counts, "/"), strings.Join(parts, ", "))
}

// sharedLimit spends one org token's 5000 calls of this hour round-robin
// over the nodes: all 5000 pass and the 5001st, on any node, is refused.
func (c *cluster) sharedLimit(t *testing.T) {
	t.Helper()
	awaitFreshWindow(t, time.Hour) // the hourly limit counts clock hours
	org := c.do(t, 0, "POST", "/v1/organizations", c.adminKey, map[string]string{"slug": "acme-" + strings.ToLower(credential.NewHexID("")[:6]), "name": "Acme"})["id"].(string)
	key := c.do(t, 0, "POST", "/mist/api/v1/orgs/"+org+"/apitokens", c.adminKey, map[string]any{"name": "busy", "privileges": []map[string]string{{"scope": "org", "role": "admin"}}})["key"].(string)

	answers := c.verifyMany(t, 5000, func(i int) (int, map[string]any) { return i % nodes, map[string]any{"token": key} })
	n := tally(answers)
	last := c.verify(t, 1, key)
	t.Logf("hourly limit across %d nodes: %d of 5000 calls valid, %d refused, %d other; call 5001: %s", nodes, n["valid"], n["rate_limited"], 5000-n["valid"]-n["rate_limited"], last)
	if n["valid"] != 5000 || last != "rate_limited" {
		t.Fatalf("want exactly 5000 valid and the 5001st rate_limited")
	}
}

// An API key's subject: a user of the application, taken as given.
const keySubject = "user_2xhFjEI5X2qWRvtV13BzSj8H6Dk"

type apiKey struct{ id, secret string }

// createAPIKey makes an API key through node, with the extra fields
// (controls) of the create call.
func (c *cluster) createAPIKey(node int, fields map[string]any) (apiKey, error) {
	body := map[string]any{"name": "multinode key", "subject": keySubject}
	maps.Copy(body, fields)
	out, err := c.call(node, "POST", "/v1/api_keys", c.adminKey, body)
	if err != nil {
		return apiKey{}, err
	}
	return apiKey{id: out["id"].(string), secret: out["secret"].(string)}, nil
}

func (c *cluster) apiKey(t *testing.T, node int, fields map[string]any) apiKey {
	t.Helper()
	k, err := c.createAPIKey(node, fields)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Windows of named limits, in the API's milliseconds.
var (
	hourMS = time.Hour.Milliseconds()
	dayMS  = (24 * time.Hour).Milliseconds()
)

// namedLimits gives one API key two named limits (set through
// PATCH …/controls) and spends them with concurrent verifies spread
// 60/30/10 over the nodes, every count exact:
//
//  1. 60 calls naming both, burst (40 an hour, sliding) at cost 2 and
//     daily (100 a day, fixed) at cost 1: burst admits 20. The refused 40
//     take nothing from daily (all or nothing), so daily has 80 left, not 40.
//  2. 40 calls naming daily alone at cost 3: 26 fit in 80, and 2 are left.
func (c *cluster) namedLimits(t *testing.T) {
	t.Helper()
	awaitFreshWindow(t, time.Hour) // a day's end is an hour's too
	key := c.apiKey(t, 0, nil)
	c.do(t, 1, "PATCH", "/v1/credentials/"+key.id+"/controls", c.adminKey, map[string]any{"ratelimits": []map[string]any{
		{"name": "burst", "limit": 40, "duration": hourMS, "algorithm": "sliding"},
		{"name": "daily", "limit": 100, "duration": dayMS, "algorithm": "fixed"},
	}})
	uses := func(pairs ...any) map[string]any {
		var rl []map[string]any
		for i := 0; i < len(pairs); i += 2 {
			rl = append(rl, map[string]any{"name": pairs[i], "cost": pairs[i+1]})
		}
		return map[string]any{"token": key.secret, "ratelimits": rl}
	}
	// What is left, read at cost 0 (which takes nothing) on the node that had the fewest calls.
	left := func() (burst, daily int64) {
		a := c.verifyOne(t, 2, uses("burst", 0, "daily", 0))
		return a.limitRemaining("burst"), a.limitRemaining("daily")
	}

	both := c.verifyMany(t, 60, func(i int) (int, map[string]any) { return uneven(i), uses("burst", 2, "daily", 1) })
	burst, daily := left()
	t.Logf("named limits, burst 40/h sliding at cost 2 + daily 100/day fixed at cost 1: %s; left: burst %d, daily %d", spread(both), burst, daily)
	if n := tally(both); n["valid"] != 20 || n["rate_limited"] != 40 || burst != 0 || daily != 80 {
		t.Fatalf("want 20 valid, 40 rate_limited, burst 0 and daily 80 left (a refused call takes from no limit)")
	}

	alone := c.verifyMany(t, 40, func(i int) (int, map[string]any) { return uneven(i), uses("daily", 3) })
	_, daily = left()
	t.Logf("named limits, daily alone at cost 3 from 80: %s; daily left %d", spread(alone), daily)
	if n := tally(alone); n["valid"] != 26 || n["rate_limited"] != 14 || daily != 2 {
		t.Fatalf("want 26 valid, 14 rate_limited and daily 2 left")
	}
}

// identityLimit links two API keys to one identity whose limit (30 an
// hour, auto-applied) they share, and verifies key A through nodes 0 and
// 1 and key B through node 2, 60 calls at once: exactly 30 pass in all,
// and the limit reads 0 through either key.
func (c *cluster) identityLimit(t *testing.T) {
	t.Helper()
	awaitFreshWindow(t, time.Hour)
	ident := c.do(t, 1, "POST", "/v1/identities", c.adminKey, map[string]any{"external_id": "tenant-" + strings.ToLower(credential.NewHexID("")[:8]),
		"ratelimits": []map[string]any{{"name": "shared", "limit": 30, "duration": hourMS, "algorithm": "fixed", "auto_apply": true}}})["id"].(string)
	a := c.apiKey(t, 0, map[string]any{"identity_id": ident})
	b := c.apiKey(t, 2, nil)
	c.do(t, 0, "PATCH", "/v1/credentials/"+b.id+"/controls", c.adminKey, map[string]any{"identity_id": ident})

	answers := c.verifyMany(t, 60, func(i int) (int, map[string]any) {
		switch i % 3 {
		case 0:
			return 0, map[string]any{"token": a.secret}
		case 1:
			return 1, map[string]any{"token": a.secret}
		}
		return 2, map[string]any{"token": b.secret}
	})
	var validA, validB int
	for i, ans := range answers {
		if ans.code() == "valid" && i%3 == 2 {
			validB++
		} else if ans.code() == "valid" {
			validA++
		}
	}
	viaA := c.verifyOne(t, 2, map[string]any{"token": a.secret, "ratelimits": []map[string]any{{"name": "shared", "cost": 0}}}).limitRemaining("shared")
	viaB := c.verifyOne(t, 0, map[string]any{"token": b.secret, "ratelimits": []map[string]any{{"name": "shared", "cost": 0}}}).limitRemaining("shared")
	t.Logf("identity limit 30/h shared by two keys: %s (key A %d, key B %d); left through A %d, through B %d", spread(answers), validA, validB, viaA, viaB)
	if n := tally(answers); n["valid"] != 30 || n["rate_limited"] != 30 || viaA != 0 || viaB != 0 {
		t.Fatalf("want 30 valid and 30 rate_limited in all, and 0 left through either key")
	}
}

// creditsLeft reads a credential's remaining credits back.
func (c *cluster) creditsLeft(t *testing.T, node int, id string) int64 {
	t.Helper()
	cr, _ := c.do(t, node, "GET", "/v1/credentials/"+id+"/controls", c.adminKey, nil)["credits"].(map[string]any)
	r, ok := cr["remaining"].(float64)
	if !ok {
		t.Fatalf("credential %s has no credits", id)
	}
	return int64(r)
}

// credits spends API keys' credits with concurrent verifies spread
// 60/30/10 over the nodes: 100 calls on 50 credits pass 50 times; 10 calls
// of cost 3 on 10 credits pass 3 times; and a daily refill of 20 that is
// due when 40 calls arrive at once is applied once, not once per node, so
// 20 pass. No node's clock can be moved, so the refill is made due by
// moving the row's last refill back a day in the database.
func (c *cluster) credits(t *testing.T) {
	t.Helper()
	awaitFreshWindow(t, 24*time.Hour) // no real refill boundary mid-test

	fifty := c.apiKey(t, 0, map[string]any{"credits": map[string]any{"remaining": 50}})
	plain := c.verifyMany(t, 100, func(i int) (int, map[string]any) { return uneven(i), map[string]any{"token": fifty.secret} })
	leftFifty := c.creditsLeft(t, 1, fifty.id)
	t.Logf("credits, 50 at cost 1: %s; %d left", spread(plain), leftFifty)
	if n := tally(plain); n["valid"] != 50 || n["usage_exceeded"] != 50 || leftFifty != 0 {
		t.Fatalf("want exactly 50 valid, 50 usage_exceeded and 0 credits left")
	}

	ten := c.apiKey(t, 1, map[string]any{"credits": map[string]any{"remaining": 10}})
	costly := c.verifyMany(t, 10, func(i int) (int, map[string]any) {
		return uneven(i), map[string]any{"token": ten.secret, "credits": map[string]any{"cost": 3}}
	})
	leftTen := c.creditsLeft(t, 2, ten.id)
	t.Logf("credits, 10 at cost 3: %s; %d left", spread(costly), leftTen)
	if n := tally(costly); n["valid"] != 3 || n["usage_exceeded"] != 7 || leftTen != 1 {
		t.Fatalf("want exactly 3 valid, 7 usage_exceeded and 1 credit left")
	}

	daily := c.apiKey(t, 2, map[string]any{"credits": map[string]any{"remaining": 0, "refill": map[string]any{"amount": 20, "interval": "daily"}}})
	if code := c.verifyOne(t, 0, map[string]any{"token": daily.secret}).code(); code != "usage_exceeded" {
		t.Fatalf("no credits and no refill due: %s", code)
	}
	c.backdateRefill(t, daily.id, 24*time.Hour)
	refilled := c.verifyMany(t, 40, func(i int) (int, map[string]any) { return uneven(i), map[string]any{"token": daily.secret} })
	leftDaily := c.creditsLeft(t, 0, daily.id)
	t.Logf("credits, a due daily refill of 20: %s; %d left", spread(refilled), leftDaily)
	if n := tally(refilled); n["valid"] != 20 || n["usage_exceeded"] != 20 || leftDaily != 0 {
		t.Fatalf("want exactly 20 valid (one refill), 20 usage_exceeded and 0 credits left")
	}
}

// backdateRefill moves a credits row's last refill back by d, as if that
// much time had passed since.
func (c *cluster) backdateRefill(t *testing.T, owner string, d time.Duration) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tag, err := conn.Exec(ctx, "UPDATE credits SET refilled_at = refilled_at - $1 WHERE owner_id = $2", d.Milliseconds(), owner)
	if err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("backdate the refill of %s: %v (%d rows)", owner, err, tag.RowsAffected())
	}
}

// receiver is the test's webhook endpoint: it checks each delivery's
// Standard Webhooks signature and records it.
type receiver struct {
	mu      sync.Mutex
	secret  string
	times   map[string]int      // deliveries per webhook-id
	byKey   map[string][]string // event types per target, as they arrived
	total   int
	refused []string // why deliveries were refused
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if err := client.VerifyWebhook(rc.secret, r.Header, body, time.Now(), 5*time.Minute); err != nil {
		rc.refused = append(rc.refused, err.Error())
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var ev struct {
		ID, Type string
		Target   struct{ ID string }
	}
	if err := json.Unmarshal(body, &ev); err != nil || ev.ID != r.Header.Get("webhook-id") {
		rc.refused = append(rc.refused, fmt.Sprintf("body %s does not match webhook-id %s", body, r.Header.Get("webhook-id")))
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	rc.total++
	rc.times[ev.ID]++
	rc.byKey[ev.Target.ID] = append(rc.byKey[ev.Target.ID], ev.Type)
	w.WriteHeader(http.StatusNoContent)
}

// webhooks subscribes a loopback receiver to API keys' created and
// revoked events, then creates 40 keys through the nodes (60/30/10),
// revoking each through the next node, 8 at a time. Every one of the 80
// events arrives signed, once (each webhook-id once, and the delivery log
// says succeeded at the first attempt), and each key's created before its
// revoked, though every node's dispatcher may send any of them.
func (c *cluster) webhooks(t *testing.T) {
	t.Helper()
	rc := &receiver{times: map[string]int{}, byKey: map[string][]string{}}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	hook := c.do(t, 0, "POST", "/v1/webhooks", c.adminKey, map[string]any{"url": srv.URL + "/keyward", "events": []string{"api_key.created", "api_key.revoked"}})
	rc.mu.Lock()
	rc.secret = hook["secret"].(string)
	rc.mu.Unlock()
	// No wait for the other nodes to hear of the endpoint: a change reads
	// the subscriptions in its own transaction, so every change that
	// commits from here on, through any node, emits its event.

	const keys = 40
	ids := make([]string, keys)
	// Where key i is created and revoked.
	createdOn, revokedOn := uneven, func(i int) int { return (uneven(i) + 1) % nodes }
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < keys && failed.Load() == nil; i = int(next.Add(1) - 1) {
				k, err := c.createAPIKey(createdOn(i), nil)
				if err == nil {
					ids[i] = k.id
					_, err = c.call(revokedOn(i), "POST", "/v1/api_keys/"+k.id+"/revoke", c.adminKey, map[string]any{"revocation_reason": "multinode"})
				}
				if err != nil {
					failed.CompareAndSwap(nil, &err)
				}
			}
		}()
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		t.Fatal(*err)
	}
	start := time.Now()
	if !eventually(func() bool {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		return len(rc.times) >= 2*keys || len(rc.refused) > 0
	}) {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		for i, id := range ids {
			if got := rc.byKey[id]; len(got) < 2 {
				t.Errorf("key %s (created through node %d, revoked through node %d): received only %v", id, createdOn(i), revokedOn(i), got)
			}
		}
		t.Fatalf("timed out waiting for %d events: %d arrived", 2*keys, len(rc.times))
	}
	arrived := time.Since(start)
	// Every delivery finished at its first attempt: none is pending, so no
	// node sends one again.
	var log []any
	waitFor(t, "every delivery to be logged as succeeded", func() bool {
		log, _ = c.do(t, 1, "GET", "/v1/webhooks/"+hook["id"].(string)+"/deliveries", c.adminKey, nil)["data"].([]any)
		done := 0
		for _, d := range log {
			if m, _ := d.(map[string]any); m["status"] == "succeeded" {
				done++
			}
		}
		return done == len(log)
	})

	rc.mu.Lock()
	defer rc.mu.Unlock()
	once := 0
	for _, n := range rc.times {
		if n == 1 {
			once++
		}
	}
	inOrder := 0
	for _, id := range ids {
		if slices.Equal(rc.byKey[id], []string{"api_key.created", "api_key.revoked"}) {
			inOrder++
		}
	}
	firstAttempt := 0
	for _, d := range log {
		if m, _ := d.(map[string]any); m["attempts"] == 1.0 && rc.times[m["event_id"].(string)] == 1 {
			firstAttempt++
		}
	}
	t.Logf("webhooks, %d keys created and revoked over %d nodes: %d deliveries received, all %d events within %v of the last change, %d distinct webhook-ids, %d once each, %d keys in order; log: %d deliveries, %d succeeded at the first attempt; %d refused",
		keys, nodes, rc.total, 2*keys, arrived.Round(time.Millisecond), len(rc.times), once, inOrder, len(log), firstAttempt, len(rc.refused))
	if len(rc.refused) > 0 {
		t.Fatalf("deliveries refused by the receiver: %v", rc.refused)
	}
	if rc.total != 2*keys || once != 2*keys || inOrder != keys || len(log) != 2*keys || firstAttempt != 2*keys {
		t.Fatalf("want %d deliveries, each webhook-id once, every key's created before its revoked, and %d logged deliveries at one attempt each; per key: %v", 2*keys, 2*keys, rc.byKey)
	}
}

// Package multinode_test runs several real keyward processes against one
// PostgreSQL database (and, in one mode, one Redis) and checks that they
// behave as one: a revoke through one node fails on the others at once,
// and an hourly limit counts calls across all of them.
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
	"net"
	"net/http"
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
	waitFor(t, func() bool {
		conn, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			conn.Close()
		}
		return err == nil
	})
	return addr, stop
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting")
		}
		time.Sleep(20 * time.Millisecond)
	}
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
	}
	for i := 0; i < nodes; i++ {
		addr := freePort(t)
		// One public URL for all: it is the iss of every node's JWTs.
		args := []string{"serve", "--addr", addr, "--database-url", dbURL, "--log-level", "warn", "--public-url", "http://keyward.cluster.test"}
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
		waitFor(t, func() bool {
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

func (c *cluster) do(t *testing.T, node int, method, path, key string, body any) map[string]any {
	t.Helper()
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
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s on node %d: %d %s", method, path, node, resp.StatusCode, raw)
	}
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
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

// sharedLimit spends one org token's 5000 calls of this hour round-robin
// over the nodes: all 5000 pass and the 5001st, on any node, is refused.
func (c *cluster) sharedLimit(t *testing.T) {
	t.Helper()
	// A clock hour that ends mid-test would reset the count: start in a fresh one.
	if left := time.Until(time.Now().Truncate(time.Hour).Add(time.Hour)); left < 2*time.Minute {
		t.Logf("waiting %v for the next clock hour", left)
		time.Sleep(left + time.Second)
	}
	org := c.do(t, 0, "POST", "/v1/organizations", c.adminKey, map[string]string{"slug": "acme-" + strings.ToLower(credential.NewHexID("")[:6]), "name": "Acme"})["id"].(string)
	key := c.do(t, 0, "POST", "/mist/api/v1/orgs/"+org+"/apitokens", c.adminKey, map[string]any{"name": "busy", "privileges": []map[string]string{{"scope": "org", "role": "admin"}}})["key"].(string)

	var valid, refused, other atomic.Int64
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 24; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= 5000 {
					return
				}
				switch c.verify(t, int(i%nodes), key) {
				case "valid":
					valid.Add(1)
				case "rate_limited":
					refused.Add(1)
				default:
					other.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	last := c.verify(t, 1, key)
	t.Logf("hourly limit across %d nodes: %d of 5000 calls valid, %d refused, %d other; call 5001: %s", nodes, valid.Load(), refused.Load(), other.Load(), last)
	if valid.Load() != 5000 || last != "rate_limited" {
		t.Fatalf("want exactly 5000 valid and the 5001st rate_limited")
	}
}

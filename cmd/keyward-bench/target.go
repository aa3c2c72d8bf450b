package main

import (
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
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	readyTimeout = 10 * time.Second
	// stopTimeout exceeds keyward's own 15 s shutdown grace.
	stopTimeout = 20 * time.Second
	tokenTTL    = 86400 // seconds: outlives any run
)

// keywardProcess is a keyward serve started by the harness.
type keywardProcess struct {
	cmd      *exec.Cmd
	url      string
	adminKey string
	logPath  string
	exited   chan struct{} // closed once Wait has returned
	waitErr  error
}

// startKeyward builds (unless --keyward-bin) and starts keyward serve on a
// free port with its data in dir, and waits until it is ready.
func startKeyward(ctx context.Context, cfg config, dir string, client *http.Client, progress io.Writer) (*keywardProcess, error) {
	bin := cfg.keywardBin
	if bin == "" {
		bin = filepath.Join(dir, "keyward")
		fmt.Fprintln(progress, "building keyward …")
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/keyward/keyward/cmd/keyward")
		build.Stdout, build.Stderr = progress, progress
		if err := build.Run(); err != nil {
			return nil, fmt.Errorf("go build keyward: %w", err)
		}
	}
	adminKey := cfg.adminKey
	if adminKey == "" {
		out, err := exec.CommandContext(ctx, bin, "admin-key", "generate").Output()
		if err != nil {
			return nil, fmt.Errorf("%s admin-key generate: %w", bin, err)
		}
		adminKey = strings.TrimSpace(string(out))
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	logLevel := "warn"
	if cfg.pinned {
		logLevel = "info" // the default: the access log is part of what is measured
	}
	args := []string{"serve", "--addr", addr, "--data-dir", filepath.Join(dir, "data"), "--log-level", logLevel}
	if cfg.databaseURL != "" {
		args = append(args, "--database-url", cfg.databaseURL)
	}
	if cfg.masterKey != "" {
		args = append(args, "--master-key", cfg.masterKey)
	}
	if cfg.pprofAddr != "" {
		args = append(args, "--pprof-addr", cfg.pprofAddr)
	}
	logPath := filepath.Join(dir, "keyward.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child has its own descriptor
	cmd := exec.Command(bin, args...)
	if cfg.pinned && cfg.serverCPU != "" { // taskset execs keyward: the pid stays keyward's
		cmd = exec.Command("taskset", append([]string{"-c", cfg.serverCPU, bin}, args...)...)
	}
	cmd.Env = append(environWithoutKeyward(), "KEYWARD_BOOTSTRAP_ADMIN_KEY="+adminKey)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &keywardProcess{cmd: cmd, url: "http://" + addr, adminKey: adminKey, logPath: logPath, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	if err := p.awaitReady(ctx, client); err != nil {
		p.stop()
		return nil, err
	}
	fmt.Fprintf(progress, "keyward (pid %d) ready at %s\n", cmd.Process.Pid, p.url)
	return p, nil
}

// environWithoutKeyward drops KEYWARD_* variables: keyward reads every flag
// from them, and an exported KEYWARD_DATABASE_URL would silently move the
// benchmark to another store.
func environWithoutKeyward() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KEYWARD_") {
			env = append(env, kv)
		}
	}
	return env
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func (p *keywardProcess) awaitReady(ctx context.Context, client *http.Client) error {
	deadline := time.Now().Add(readyTimeout)
	poll := time.NewTicker(50 * time.Millisecond)
	defer poll.Stop()
	for {
		if p.ready(ctx, client) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("keyward not ready at %s/readyz after %s; its log:\n%s", p.url, readyTimeout, p.log())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.exited:
			return fmt.Errorf("keyward exited before it was ready (%v); its log:\n%s", p.waitErr, p.log())
		case <-poll.C:
		}
	}
}

func (p *keywardProcess) ready(ctx context.Context, client *http.Client) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url+"/readyz", nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func (p *keywardProcess) log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

// stop sends SIGTERM so keyward drains and closes its store, and kills it
// only if that takes longer than its own shutdown grace.
func (p *keywardProcess) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(stopTimeout):
		p.cmd.Process.Kill()
		<-p.exited
	}
}

func (p *keywardProcess) memory() (*memory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return nil, err
	}
	return parseProcStatus(string(b))
}

// parseProcStatus reads VmRSS and VmHWM ("VmRSS:	  51234 kB") from the
// text of /proc/<pid>/status.
func parseProcStatus(status string) (*memory, error) {
	var m memory
	fields := map[string]*int64{"VmRSS": &m.VmRSSKiB, "VmHWM": &m.VmHWMKiB}
	found := 0
	for line := range strings.Lines(status) {
		name, value, _ := strings.Cut(line, ":")
		dst, wanted := fields[name]
		if !wanted {
			continue
		}
		kib, unit, _ := strings.Cut(strings.TrimSpace(value), " ")
		n, err := strconv.ParseInt(kib, 10, 64)
		if err != nil || unit != "kB" {
			return nil, fmt.Errorf("/proc/<pid>/status: unexpected %s:%s", name, strings.TrimSpace(value))
		}
		*dst = n
		found++
	}
	if found != len(fields) {
		return nil, errors.New("/proc/<pid>/status has no VmRSS or VmHWM")
	}
	return &m, nil
}

// api is the target's HTTP API for setup.
type api struct {
	client  *http.Client
	baseURL string
}

// call sends a JSON request and decodes the answer into out, which must
// come with status want.
func (a api) call(ctx context.Context, method, path, bearer string, body any, want int, out any) error {
	var payload io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		payload = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.baseURL+path, payload)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+bearer)
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %d (want %d) %s", method, path, resp.StatusCode, want, bytes.TrimSpace(answer))
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(answer, out)
}

type machine struct {
	ID        string `json:"id"`
	SecretKey string `json:"secret_key"`
}

// setUp creates the machines and mints the tokens, and returns a cleanup
// that deletes the machines again.
func setUp(ctx context.Context, cfg config, target api, adminKey string, progress io.Writer) (tokens []string, cleanup func(), err error) {
	started := time.Now()
	machines := make([]machine, cfg.machines)
	cleanup = func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		for _, m := range machines {
			if m.ID == "" {
				continue
			}
			if err := target.call(ctx, http.MethodDelete, "/clerk/v1/machines/"+m.ID, adminKey, nil, http.StatusOK, nil); err != nil {
				fmt.Fprintln(progress, "keyward-bench: cleanup:", err)
			}
		}
	}
	for i := range machines {
		err := target.call(ctx, http.MethodPost, "/clerk/v1/machines", adminKey, map[string]string{"name": fmt.Sprintf("bench-%d", i)}, http.StatusOK, &machines[i])
		if err != nil {
			cleanup()
			return nil, nil, fmt.Errorf("create machine: %w", err)
		}
	}
	if tokens, err = mintTokens(ctx, target, machines, cfg.tokens, cfg.format); err != nil {
		cleanup()
		return nil, nil, err
	}
	fmt.Fprintf(progress, "created %d machines and minted %d %s tokens in %s\n", len(machines), len(tokens), cfg.format, time.Since(started).Round(time.Millisecond))
	return tokens, cleanup, nil
}

// mintTokens mints n tokens, token i with machine i mod len(machines), one
// goroutine per machine.
func mintTokens(ctx context.Context, target api, machines []machine, n int, format string) ([]string, error) {
	body := struct {
		TokenFormat string `json:"token_format,omitempty"` // omitted: the server's default, opaque
		Seconds     int    `json:"seconds_until_expiration"`
	}{Seconds: tokenTTL}
	if format == "jwt" {
		body.TokenFormat = "jwt"
	}
	// The first failure cancels the others, which would mostly repeat it.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var firstErr error
	var once sync.Once
	fail := func(err error) { once.Do(func() { firstErr = err; cancel() }) }
	tokens := make([]string, n)
	var wg sync.WaitGroup
	for m, mach := range machines {
		wg.Go(func() {
			for i := m; i < n; i += len(machines) {
				var minted struct {
					Token string `json:"token"`
				}
				if err := target.call(ctx, http.MethodPost, "/clerk/v1/m2m_tokens", mach.SecretKey, body, http.StatusCreated, &minted); err != nil {
					fail(fmt.Errorf("mint token with %s: %w", mach.ID, err))
					return
				}
				if minted.Token == "" {
					fail(fmt.Errorf("mint token with %s: the answer has no token", mach.ID))
					return
				}
				tokens[i] = minted.Token
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return tokens, nil
}

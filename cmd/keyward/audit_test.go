package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite" // to edit the database behind keyward's back

	"github.com/keyward/keyward/internal/credential"
)

// serveUntil runs `keyward serve` like startServe, and returns a stop
// function that shuts it down gracefully (flushing what it aggregated).
func serveUntil(t *testing.T, args ...string) (string, func()) {
	t.Helper()
	ready := make(chan string, 1)
	var readyOnly chan<- string = ready
	ctx, cancel := context.WithCancel(context.Background())
	root := newRootCommand(io.Discard, io.Discard)
	root.SetArgs(append([]string{"serve", "--addr", "127.0.0.1:0"}, args...))
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(withReady(ctx, readyOnly)) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve exited with %v", err)
		}
	}
	t.Cleanup(stop)
	select {
	case addr := <-ready:
		return "http://" + addr, stop
	case err := <-done:
		t.Fatalf("serve exited before it was ready: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("serve not ready after 10 s")
	}
	return "", nil
}

func TestServeAuditLogThrottleAndAuditVerify(t *testing.T) {
	dataDir := t.TempDir()
	logPath := filepath.Join(t.TempDir(), "audit.jsonl")
	preset := credential.MustGenerate(credential.KindAdminKey).Reveal()
	t.Setenv("KEYWARD_BOOTSTRAP_ADMIN_KEY", preset)
	url, stop := serveUntil(t, "--data-dir", dataDir, "--audit-log", logPath, "--auth-failure-limit", "3", "--auth-failure-window", "1h")

	req, _ := http.NewRequest("POST", url+"/clerk/v1/machines", strings.NewReader(`{"name":"worker"}`))
	req.Header.Set("Authorization", "Bearer "+preset)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("create machine: %v %v", resp, err)
	}
	resp.Body.Close()
	bogus := credential.MustGenerate(credential.KindAdminKey).Reveal()
	for i := range 3 {
		if got := get(t, url+"/v1/caller", bogus); got != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d, want 401", i+1, got)
		}
	}
	if got := get(t, url+"/v1/caller", bogus); got != http.StatusTooManyRequests {
		t.Fatalf("past --auth-failure-limit 3: %d, want 429", got)
	}
	stop()

	var actions []string
	for _, line := range strings.Split(strings.TrimSpace(readFile(t, logPath)), "\n") {
		var l struct {
			Action string `json:"action"`
			Count  int    `json:"count"`
		}
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("audit log line %q: %v", line, err)
		}
		actions = append(actions, fmt.Sprintf("%s×%d", l.Action, l.Count))
	}
	got := strings.Join(actions, " ")
	for _, want := range []string{"machine.create×1", "auth.refused×3", "auth.throttled×1"} {
		if !strings.Contains(got, want) {
			t.Errorf("audit log %q lacks %s", got, want)
		}
	}
	if strings.Contains(readFile(t, logPath), preset) {
		t.Error("the audit log holds the admin key")
	}

	out := run(t, "--data-dir", dataDir, "audit", "verify")
	if !strings.Contains(out, "ok") || strings.Contains(out, "BROKEN") {
		t.Fatalf("audit verify on an untouched store: %q", out)
	}

	// Edit one row in the database file.
	db, err := sql.Open("sqlite", filepath.Join(dataDir, "keyward.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var victim string
	if err := db.QueryRow(`SELECT id FROM audit_events WHERE action = 'machine.create'`).Scan(&victim); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE audit_events SET actor_id = 'nobody' WHERE id = ?`, victim); err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	root := newRootCommand(&stdout, io.Discard)
	root.SetArgs([]string{"--data-dir", dataDir, "audit", "verify"})
	err = root.ExecuteContext(context.Background())
	if err == nil || exitCode(err) == exitOK {
		t.Fatalf("audit verify after an edit: %v, want a non-zero exit", err)
	}
	if !regexp.MustCompile(`BROKEN at event ` + victim).MatchString(stdout.String()) {
		t.Errorf("audit verify output %q does not name the edited event %s", stdout.String(), victim)
	}
}

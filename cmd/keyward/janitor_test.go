package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/keyring"
)

func TestRetentionTakesDaysOrDurationsOrOff(t *testing.T) {
	cases := []struct {
		in   string
		want time.Duration
		bad  bool
	}{
		{"30d", 30 * 24 * time.Hour, false},
		{"720h", 720 * time.Hour, false},
		{"90m", 90 * time.Minute, false},
		{"off", 0, false},
		{"0", 0, false},
		{"30x", 0, true},
		{"d", 0, true},
		{"-1d", 0, true},
	}
	for _, c := range cases {
		var r retention
		err := r.Set(c.in)
		if (err != nil) != c.bad || (!c.bad && time.Duration(r) != c.want) {
			t.Errorf("Set(%q) = %v, %v; want %v (error: %v)", c.in, time.Duration(r), err, c.want, c.bad)
		}
	}
}

// The retention settings come from the config file and KEYWARD_* like
// every other flag, and serve says what its janitor will do.
func TestServeRunsTheJanitorWithRetentionFromFileAndEnv(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(dir, "keyward.yaml")
	writeFile(t, config, []byte("retention-credentials: 30d\njanitor-interval: 10m\nlog-format: json\n"))
	t.Setenv("KEYWARD_RETENTION_AUDIT", "365d")
	_, stderr := startServe(t, "--config", config, "--data-dir", filepath.Join(dir, "data"))
	for _, want := range []string{`"msg":"janitor on"`, `"retention_credentials":"30d"`, `"retention_audit":"365d"`, `"interval":"10m0s"`} {
		if !strings.Contains(stderr.String(), want) {
			t.Fatalf("serve's log lacks %s:\n%s", want, stderr)
		}
	}
}

func TestServeRefusesABadRetention(t *testing.T) {
	_, err := runKeyward(t, "serve", "--data-dir", t.TempDir(), "--retention-audit", "a year")
	if err == nil || !strings.Contains(err.Error(), "retention-audit") {
		t.Fatalf("serve --retention-audit 'a year': %v, want a refusal naming the flag", err)
	}
}

func TestAuditVerifyStartsFromThePruningCheckpoint(t *testing.T) {
	master, _ := keyring.GenerateMasterKey()
	dataDir := t.TempDir()
	cfg := &storeConfig{dataDir: dataDir, masterKey: master, redisPolicy: "local"}
	n, err := cfg.open(context.Background(), false, nodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	old := time.Now().Add(-400 * 24 * time.Hour)
	err = n.store.Update(ctx, func(tx authority.Tx) error {
		for i := range 3 {
			if _, err := tx.InsertAuditEvent(ctx, credential.AuditEvent{ID: fmt.Sprintf("aud_old_%d", i), InstanceID: "ins_x", At: old, Action: "x"}); err != nil {
				return err
			}
		}
		_, err := tx.InsertAuditEvent(ctx, credential.AuditEvent{ID: "aud_recent", InstanceID: "ins_x", At: time.Now(), Action: "x"})
		return err
	})
	if err == nil {
		_, err = n.auth.RunJanitor(ctx, authority.Retention{Audit: 365 * 24 * time.Hour})
	}
	n.Close()
	if err != nil {
		t.Fatal(err)
	}
	out, err := runKeyward(t, "audit", "verify", "--data-dir", dataDir, "--master-key", master, "--instance", "ins_x")
	if err != nil || !strings.Contains(out, "ins_x: ok, 1 events after the checkpoint at seq 3") {
		t.Fatalf("audit verify: %v\n%s", err, out)
	}
}

package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/client"
	"github.com/keyward/keyward/internal/credential"
)

// An edited audit row: keyward audit verify, run twice beside a running
// serve, queues one audit.chain_broken, which that serve delivers signed;
// a restarted serve's check at start finds the same break, logs it, and
// sends nothing more.
func TestAuditVerifySendsOneAuditChainBrokenThatServeDelivers(t *testing.T) {
	preset := credential.MustGenerate(credential.KindAdminKey).Reveal()
	t.Setenv("KEYWARD_BOOTSTRAP_ADMIN_KEY", preset)
	dataDir := t.TempDir()
	base, stop := serveUntil(t, "--data-dir", dataDir, "--webhook-allow-private", "--audit-check-interval", "off")
	url, got := hookReceiver(t)
	ctx := context.Background()
	kw := client.New(base, preset, client.WithRetries(0))
	hook, err := kw.CreateWebhook(ctx, client.WebhookParams{URL: url, Events: []string{credential.EventAuditChainBroken}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kw.CreateMachine(ctx, client.MachineParams{Name: "worker"}); err != nil {
		t.Fatal(err)
	}

	db, err := sql.Open("sqlite", filepath.Join(dataDir, "keyward.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var (
		victim, instanceID string
		seq                int64
	)
	if err := db.QueryRow(`SELECT id, instance_id, seq FROM audit_events WHERE action = 'machine.create'`).Scan(&victim, &instanceID, &seq); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE audit_events SET actor_id = 'nobody' WHERE id = ?`, victim); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		out, err := runKeyward(t, "--data-dir", dataDir, "audit", "verify", "--instance", instanceID)
		if exitCode(err) != exitFailure || !strings.Contains(out, "BROKEN at event "+victim) || strings.Contains(out, "warning") {
			t.Fatalf("audit verify: %v\n%s", err, out)
		}
	}
	select {
	case d := <-got:
		if err := client.VerifyWebhook(hook.Secret, d.headers, d.body, time.Now(), 0); err != nil {
			t.Fatalf("delivery %s: %v", d.body, err)
		}
		var e struct {
			Type       string `json:"type"`
			InstanceID string `json:"instance_id"`
			Detail     struct {
				Seq     int64  `json:"seq"`
				EventID string `json:"event_id"`
				FoundBy string `json:"found_by"`
			}
		}
		if err := json.Unmarshal(d.body, &e); err != nil || e.Type != credential.EventAuditChainBroken || e.InstanceID != instanceID ||
			e.Detail.Seq != seq || e.Detail.EventID != victim || e.Detail.FoundBy != "audit_verify" {
			t.Fatalf("delivery %s (%v), want %s at seq %d", d.body, err, credential.EventAuditChainBroken, seq)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no delivery within 30 s")
	}
	stop()

	_, stderr := startServe(t, "--data-dir", dataDir, "--webhook-allow-private")
	waitForLog(t, stderr, "audit chain broken", 1)
	var queued int
	if err := db.QueryRow(`SELECT COUNT(*) FROM webhook_events WHERE type = ?`, credential.EventAuditChainBroken).Scan(&queued); err != nil || queued != 1 {
		t.Fatalf("%d audit.chain_broken events queued (%v), want 1", queued, err)
	}
}

package sqlstore_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

// crashChildEnv names the database (a SQLite path or a PostgreSQL URL) a
// re-executed test binary writes to until it is killed.
const crashChildEnv = "KEYWARD_CRASH_CHILD_DB"

// TestAcknowledgedWritesSurviveKill runs a burst of concurrent Updates,
// group-committed, in a child process, kills it with SIGKILL mid-burst,
// and checks that every write the child was told had committed is in the
// database: an acknowledgement means the COMMIT, and its fsync, returned.
func TestAcknowledgedWritesSurviveKill(t *testing.T) {
	if dsn := os.Getenv(crashChildEnv); dsn != "" {
		writeUntilKilled(dsn)
		return
	}
	t.Run("sqlite", func(t *testing.T) {
		killMidBurst(t, filepath.Join(t.TempDir(), "keyward.db"))
	})
	t.Run("postgres", func(t *testing.T) {
		killMidBurst(t, testkit.PostgresURL(t))
	})
}

func killMidBurst(t *testing.T, path string) {
	s, err := sqlstore.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	in := credential.Instance{ID: "ins_crash", Name: "crash", CreatedAt: t0}
	update(t, s, func(tx authority.Tx) error { return tx.CreateInstance(context.Background(), in) })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(os.Args[0], "-test.run=^TestAcknowledgedWritesSurviveKill$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Every line is one acknowledged write; kill the child after 1500 of
	// them, with 32 writers still going, and read what it said before dying.
	const killAfter = 1500
	acked := map[string]bool{}
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		acked[lines.Text()] = true
		if len(acked) == killAfter {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		}
	}
	_ = cmd.Wait()
	if len(acked) < killAfter {
		t.Fatalf("the child acknowledged only %d writes before it ended", len(acked))
	}
	if state := cmd.ProcessState; state == nil || state.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("the child was not killed: %v", cmd.ProcessState)
	}

	s, err = sqlstore.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	stored := map[string]bool{}
	err = s.View(context.Background(), func(tx authority.Tx) error {
		creds, err := tx.ListCredentials(context.Background(), authority.CredentialFilter{InstanceID: in.ID})
		for _, c := range creds {
			stored[c.ID] = true
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	events, _ := listAudit(t, s, authority.AuditFilter{InstanceID: in.ID})
	withEvent := map[string]bool{}
	for _, e := range events {
		withEvent[e.TargetID] = true
	}
	lost := 0
	for id := range acked {
		if !stored[id] || !withEvent[id] {
			lost++
		}
	}
	for id := range stored {
		if !withEvent[id] {
			t.Errorf("credential %s is stored without the audit event of its transaction", id)
		}
	}
	t.Logf("killed after %d acknowledged writes; %d rows stored (the rest were in flight)", len(acked), len(stored))
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged writes are missing after kill -9", lost, len(acked))
	}
}

// writeUntilKilled is the child: 32 writers, each Update one credential
// and its audit event (as a token create), each acknowledged on stdout
// once Update has returned.
func writeUntilKilled(path string) {
	s, err := sqlstore.Open(context.Background(), path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 32 {
		wg.Go(func() {
			for i := 0; ; i++ {
				c := machineKey("ins_crash", fmt.Sprintf("writer-%d", w))
				c.ID = fmt.Sprintf("mk_%02d_%06d", w, i)
				err := s.Update(context.Background(), func(tx authority.Tx) error {
					if err := tx.InsertCredential(context.Background(), c); err != nil {
						return err
					}
					_, err := tx.InsertAuditEvent(context.Background(), credential.AuditEvent{
						ID: "aud_" + c.ID, InstanceID: "ins_crash", At: t0, TargetID: c.ID, Outcome: credential.OutcomeSuccess,
					})
					return err
				})
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(1)
				}
				mu.Lock()
				fmt.Fprintln(os.Stdout, c.ID) // unbuffered: one write(2) per acknowledgement
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

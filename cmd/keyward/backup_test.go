package main

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/keyring"
)

// runKeyward runs one keyward command in-process and returns its stdout.
func runKeyward(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	root := newRootCommand(&out, &out)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func TestBackupUnderWriteLoadRestoresEveryAcknowledgedCredential(t *testing.T) {
	master, err := keyring.GenerateMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	live, restored := filepath.Join(dir, "live"), filepath.Join(dir, "restored")
	ctx := context.Background()

	n, err := (&storeConfig{dataDir: live, masterKey: master, redisPolicy: "local"}).open(ctx, false, nodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	in, _, err := n.auth.CreateInstance(ctx, "prod")
	if err != nil {
		t.Fatal(err)
	}

	// A writer keeps creating admin keys until the backup has finished;
	// every key whose create returned is acknowledged.
	var (
		mu           sync.Mutex
		acknowledged []string
		stop         = make(chan struct{})
		warm         = make(chan struct{})
		done         = make(chan error, 1)
	)
	name := "load"
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			_, key, err := n.auth.CreateAdminKey(ctx, authority.Operator(in.ID), authority.CreateAdminKeyInput{Name: &name, Permissions: []string{string(credential.PermAll)}})
			if err != nil {
				done <- err
				return
			}
			mu.Lock()
			acknowledged = append(acknowledged, key.Reveal())
			mu.Unlock()
			if i == 20 {
				close(warm)
			}
		}
	}()
	select {
	case <-warm:
	case err := <-done:
		t.Fatalf("writer stopped before the backup: %v", err)
	}
	mu.Lock()
	before := append([]string(nil), acknowledged...)
	mu.Unlock()

	backup := filepath.Join(dir, "keyward.backup.db")
	_, backupErr := runKeyward(t, "backup", "--data-dir", live, "--master-key", master, "--out", backup)
	close(stop)
	if err := <-done; err != nil {
		t.Fatalf("writer: %v", err)
	}
	if backupErr != nil {
		t.Fatalf("backup: %v", backupErr)
	}
	fi, err := os.Stat(backup)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("backup file mode = %o, want 600", mode)
	}

	if _, err := runKeyward(t, "restore", "--data-dir", restored, "--from", backup); err != nil {
		t.Fatalf("restore: %v", err)
	}
	r, err := (&storeConfig{dataDir: restored, masterKey: master, redisPolicy: "local"}).open(ctx, false, nodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, key := range before {
		if _, err := r.auth.Authenticate(ctx, key); err != nil {
			t.Fatalf("a key acknowledged before the backup does not verify in the restored store: %v", err)
		}
	}
	if len(before) < 20 {
		t.Fatalf("only %d keys acknowledged before the backup", len(before))
	}
}

func TestRestoreRefusesANonEmptyDataDirUnlessForced(t *testing.T) {
	master, _ := keyring.GenerateMasterKey()
	dir := t.TempDir()
	live := filepath.Join(dir, "live")
	n, err := (&storeConfig{dataDir: live, masterKey: master, redisPolicy: "local"}).open(context.Background(), false, nodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := n.auth.CreateInstance(context.Background(), "prod"); err != nil {
		t.Fatal(err)
	}
	n.Close()
	backup := filepath.Join(dir, "b.db")
	if _, err := runKeyward(t, "backup", "--data-dir", live, "--master-key", master, "--out", backup); err != nil {
		t.Fatal(err)
	}
	if _, err := runKeyward(t, "backup", "--data-dir", live, "--master-key", master, "--out", backup); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("backup over an existing file: err = %v, want a refusal", err)
	}

	_, err = runKeyward(t, "restore", "--data-dir", live, "--from", backup)
	if err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("restore into a data dir holding a database: err = %v, want a refusal naming --force", err)
	}
	if _, err := runKeyward(t, "restore", "--data-dir", live, "--from", backup, "--force"); err != nil {
		t.Fatalf("restore --force: %v", err)
	}
	n, err = (&storeConfig{dataDir: live, masterKey: master, redisPolicy: "local"}).open(context.Background(), false, nodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ins, err := n.auth.ListInstances(context.Background())
	if err != nil || len(ins) != 1 || ins[0].Name != "prod" {
		t.Fatalf("restored instances = %v, %v; want the one backed up", ins, err)
	}
}

func TestRestoreRefusesAFileThatIsNotAKeywardDatabase(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(text, []byte("not a database at all, just some words"), 0o600); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other.db")
	db, err := sql.Open("sqlite", other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("CREATE TABLE t (x INTEGER)"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	for name, from := range map[string]string{"text": text, "foreign sqlite": other} {
		target := filepath.Join(dir, "data-"+strings.ReplaceAll(name, " ", "-"))
		_, err := runKeyward(t, "restore", "--data-dir", target, "--from", from)
		if err == nil || !strings.Contains(err.Error(), "not a") {
			t.Errorf("%s: err = %v, want a refusal", name, err)
		}
		if _, statErr := os.Stat(filepath.Join(target, sqliteFile)); statErr == nil {
			t.Errorf("%s: a refused restore left a database behind", name)
		}
	}
}

func TestBackupOnPostgresPointsAtPgDump(t *testing.T) {
	for _, cmd := range []string{"backup", "restore"} {
		flag := "--out"
		if cmd == "restore" {
			flag = "--from"
		}
		_, err := runKeyward(t, cmd, "--database-url", "postgres://nobody@127.0.0.1:1/none", "--master-key", "x", flag, "f")
		if err == nil || !strings.Contains(err.Error(), "pg_dump") {
			t.Errorf("%s on PostgreSQL: err = %v, want a pointer to pg_dump", cmd, err)
		}
	}
}

func TestExportThenImportIntoAnotherDataDirVerifiesTheKeys(t *testing.T) {
	master, _ := keyring.GenerateMasterKey()
	other, _ := keyring.GenerateMasterKey()
	dir := t.TempDir()
	src, dst, stranger := filepath.Join(dir, "src"), filepath.Join(dir, "dst"), filepath.Join(dir, "stranger")
	n, err := (&storeConfig{dataDir: src, masterKey: master, redisPolicy: "local"}).open(context.Background(), false, nodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, key, err := n.auth.CreateInstance(context.Background(), "prod")
	n.Close()
	if err != nil {
		t.Fatal(err)
	}
	dump := filepath.Join(dir, "keyward.jsonl")
	if _, err := runKeyward(t, "export", "--data-dir", src, "--master-key", master, "--out", dump); err != nil {
		t.Fatalf("export: %v", err)
	}
	b, err := os.ReadFile(dump)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), key.Reveal()) {
		t.Fatal("the export holds the admin key in plaintext")
	}
	if fi, _ := os.Stat(dump); fi.Mode().Perm() != 0o600 {
		t.Errorf("export file mode = %o, want 600", fi.Mode().Perm())
	}
	if _, err := runKeyward(t, "import", "--data-dir", stranger, "--master-key", other, "--from", dump); err == nil || !strings.Contains(err.Error(), "different master key") {
		t.Errorf("import under another master key: err = %v, want a refusal", err)
	}
	if _, err := runKeyward(t, "import", "--data-dir", dst, "--master-key", master, "--from", dump); err != nil {
		t.Fatalf("import: %v", err)
	}
	r, err := (&storeConfig{dataDir: dst, masterKey: master, redisPolicy: "local"}).open(context.Background(), false, nodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.auth.Authenticate(context.Background(), key.Reveal()); err != nil {
		t.Errorf("the exported admin key does not verify after import: %v", err)
	}
}

package auditlog_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/auditlog"
	"github.com/keyward/keyward/internal/credential"
)

func TestOpenAppendsWholeLinesToAPrivateFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	if err := os.WriteFile(path, []byte(`{"earlier":true}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	w, err := auditlog.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 8, 50
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			for j := range each {
				e := credential.AuditEvent{ID: fmt.Sprintf("aud_%d_%d", i, j), At: time.Unix(0, 0), Action: "machine.create",
					Detail: json.RawMessage(`{"name":"` + fmt.Sprint(j) + `"}`), Count: 1}
				if err := w.WriteAuditEvent(e); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v; want 0600", info.Mode().Perm(), err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lines := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var v map[string]any
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("line %d is not one JSON object (interleaved writes?): %q", lines+1, sc.Text())
		}
		lines++
	}
	if lines != 1+writers*each {
		t.Errorf("%d lines, want the earlier one and %d appended", lines, writers*each)
	}
}

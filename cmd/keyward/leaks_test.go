package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/credential"
)

// keyward scan prints where each checksum-valid secret is, its kind and
// display prefix, never the secret; a wrong checksum is not reported; it
// exits 1 when it found any.
func TestScanPrintsWhereButNeverTheSecret(t *testing.T) {
	pat, m2m := credential.MustGenerate(credential.KindPAT), credential.MustGenerate(credential.KindM2MToken)
	fake := m2m.Reveal()[:len(m2m.Reveal())-1] + "0"
	if fake == m2m.Reveal() {
		fake = m2m.Reveal()[:len(m2m.Reveal())-1] + "1"
	}
	dir := t.TempDir()
	leaky := filepath.Join(dir, ".env")
	if err := os.WriteFile(leaky, []byte("A=1\nTOKEN="+pat.Reveal()+"\nOLD="+fake+"\n  x: \""+m2m.Reveal()+"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	clean := filepath.Join(dir, "clean.txt")
	if err := os.WriteFile(clean, []byte("OLD="+fake+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	root := newRootCommand(&out, io.Discard)
	root.SetArgs([]string{"scan", leaky, clean})
	err := root.ExecuteContext(context.Background())
	if exitCode(err) != 1 {
		t.Errorf("exit code %d (%v), want 1", exitCode(err), err)
	}
	got := out.String()
	want := leaky + ":2:7\tpat\t" + pat.DisplayPrefix() + "…\n" + leaky + ":4:7\tm2m_token\t" + m2m.DisplayPrefix() + "…\n"
	if got != want {
		t.Errorf("scan printed %q, want %q", got, want)
	}
	for _, s := range []string{pat.Reveal(), m2m.Reveal(), fake} {
		if strings.Contains(got, s) {
			t.Error("scan printed a secret")
		}
	}

	out.Reset()
	root = newRootCommand(&out, io.Discard)
	root.SetArgs([]string{"scan", clean})
	if err := root.ExecuteContext(context.Background()); err != nil || out.Len() != 0 {
		t.Errorf("a file with no real secret: %v, printed %q", err, out.String())
	}
}

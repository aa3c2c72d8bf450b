package main

import (
	"context"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
)

// A first start that cannot bind its port must not spend the first-start
// admin key: the key is made and shown only once the listener is bound, so
// the next start (on a free port) still prints one.
func TestFirstStartOnABusyPortPrintsNoKeyAndKeepsItForTheNextStart(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() })
	dataDir := filepath.Join(t.TempDir(), "data")

	stderr := &syncBuffer{}
	root := newRootCommand(io.Discard, stderr)
	root.SetArgs([]string{"serve", "--addr", busy.Addr().String(), "--data-dir", dataDir})
	err = root.ExecuteContext(context.Background())
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("serve on a busy port: %v", err)
	}
	if strings.Contains(stderr.String(), "sk_live_") {
		t.Fatalf("a key was printed although serve could not start:\n%s", stderr)
	}

	_, stderr = startServe(t, "--data-dir", dataDir)
	if adminKeyLine.FindStringSubmatch(stderr.String()) == nil {
		t.Fatalf("the next start printed no first-start key:\n%s", stderr)
	}
}

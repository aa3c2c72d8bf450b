package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/client"
	"github.com/keyward/keyward/internal/credential"
)

// An event is in the outbox once its change commits: a kill -9 after the
// commit and before any delivery loses nothing, and the restarted server
// delivers it.
func TestAnEventCommittedBeforeAKill9IsDeliveredAfterTheRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs keyward")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "keyward")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	preset := credential.MustGenerate(credential.KindAdminKey).Reveal()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KEYWARD_") {
			env = append(env, kv)
		}
	}
	env = append(env, "KEYWARD_BOOTSTRAP_ADMIN_KEY="+preset)
	free := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}
	apiAddr, hookAddr := free(), free() // nothing listens at hookAddr yet: every delivery fails
	logs := &syncBuffer{}
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "serve", "--addr", apiAddr, "--data-dir", filepath.Join(dir, "data"), "--webhook-allow-private")
		cmd.Env, cmd.Stdout, cmd.Stderr = env, logs, logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ready := client.New("http://"+apiAddr, "")
		for deadline := time.Now().Add(30 * time.Second); ready.Ready(context.Background()) != nil; {
			if time.Now().After(deadline) {
				t.Fatalf("serve not ready:\n%s", logs.String())
			}
			time.Sleep(50 * time.Millisecond) // a process binding its port
		}
		return cmd
	}
	first := start()
	kw := client.New("http://"+apiAddr, preset, client.WithRetries(0))
	ctx := context.Background()
	hook, err := kw.CreateWebhook(ctx, client.WebhookParams{URL: "http://" + hookAddr + "/hook", Events: []string{"machine.created"}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := kw.CreateMachine(ctx, client.MachineParams{Name: "before-the-crash"})
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Process.Kill(); err != nil { // SIGKILL: no shutdown, no flush
		t.Fatal(err)
	}
	_ = first.Wait()

	got := make(chan []byte, 4)
	ln, err := net.Listen("tcp", hookAddr)
	if err != nil {
		t.Fatal(err)
	}
	receiver := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if client.VerifyWebhook(hook.Secret, r.Header, b, time.Now(), 0) == nil {
			got <- b
		}
	})}
	go receiver.Serve(ln)
	t.Cleanup(func() { receiver.Close() })
	second := start()
	t.Cleanup(func() {
		_ = second.Process.Signal(os.Interrupt)
		_ = second.Wait()
	})
	select {
	case b := <-got:
		if !strings.Contains(string(b), m.ID) || !strings.Contains(string(b), "machine.created") {
			t.Fatalf("delivered %s, want machine.created of %s", b, m.ID)
		}
	case <-time.After(60 * time.Second): // the first attempt's retry is due within ~6 s
		t.Fatalf("the event committed before the kill was not delivered after the restart:\n%s", logs.String())
	}
}

// Command webhook-receiver receives keyward's webhook deliveries: POST /
// checks each delivery's Standard Webhooks signature with
// client.VerifyWebhook before reading anything in it, prints the event as
// one line and answers 204; a delivery that does not verify gets 401
// (keyward retries it, then dead-letters it).
//
// It holds the endpoint's signing secret, shown once when the endpoint is
// created:
//
//	KEYWARD_ADMIN_KEY=sk_live_… keyward webhooks create http://127.0.0.1:8082/ --event '*'
//	KEYWARD_WEBHOOK_SECRET=whsec_… go run ./examples/webhook-receiver
//
// (keyward refuses to deliver to loopback and private addresses unless it
// runs with --webhook-allow-private.)
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/keyward/keyward/client"
)

func main() {
	addr := flag.String("addr", envOr("ADDR", "127.0.0.1:8082"), "listen address (env ADDR)")
	flag.Parse()
	secret := os.Getenv("KEYWARD_WEBHOOK_SECRET")
	if secret == "" {
		log.Fatal("set KEYWARD_WEBHOOK_SECRET to the endpoint's signing secret (whsec_…, shown once by keyward webhooks create)")
	}

	srv := &http.Server{Addr: *addr, Handler: Handler(secret, time.Now, os.Stdout), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	log.Printf("webhook-receiver listening on http://%s/", *addr)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

// Handler verifies each delivery's signature (under the endpoint's
// whsec_ secret, its timestamp within five minutes of now), then prints
// the event to out: id, type, target and detail. A delivery may come more
// than once: act on an event id once.
func Handler(secret string, now func() time.Time, out io.Writer) http.Handler {
	var mu sync.Mutex
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		if err := client.VerifyWebhook(secret, r.Header, body, now(), client.DefaultWebhookTolerance); err != nil {
			http.Error(w, "signature does not verify", http.StatusUnauthorized)
			return
		}
		var ev struct {
			ID     string                    `json:"id"`
			Type   string                    `json:"type"`
			Target struct{ Kind, ID string } `json:"target"`
			Detail json.RawMessage           `json:"detail"`
		}
		if err := json.Unmarshal(body, &ev); err != nil {
			http.Error(w, "not an event", http.StatusBadRequest)
			return
		}
		mu.Lock()
		fmt.Fprintf(out, "%s %s %s/%s %s\n", ev.ID, ev.Type, ev.Target.Kind, ev.Target.ID, ev.Detail)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

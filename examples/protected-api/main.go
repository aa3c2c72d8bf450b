// Command protected-api is a tiny API protected by keyward: GET /hello
// answers {"hello": <subject>, "kind": <kind>} to any valid keyward
// credential (M2M token, opaque or JWT; personal access token; org API
// token) and refuses everything else.
//
// It holds an admin key with only the verify permission:
//
//	keyward admin-keys create --name protected-api --permission verify
//	KEYWARD_URL=http://127.0.0.1:8080 KEYWARD_VERIFY_KEY=sk_live_… go run ./examples/protected-api
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/keyward/keyward/client"
)

func main() {
	addr := flag.String("addr", envOr("ADDR", "127.0.0.1:8081"), "listen address (env ADDR)")
	kwURL := flag.String("keyward-url", envOr("KEYWARD_URL", "http://127.0.0.1:8080"), "keyward's base URL (env KEYWARD_URL)")
	verifyKey := flag.String("keyward-verify-key", envOr("KEYWARD_VERIFY_KEY", os.Getenv("KEYWARD_ADMIN_KEY")),
		"an admin key holding the verify permission, which this API verifies credentials with (env KEYWARD_VERIFY_KEY)")
	flag.Parse()
	if *verifyKey == "" {
		log.Fatal("set KEYWARD_VERIFY_KEY (or --keyward-verify-key) to an admin key holding the verify permission (keyward admin-keys create --name protected-api --permission verify)")
	}

	srv := &http.Server{Addr: *addr, Handler: Handler(client.New(*kwURL, *verifyKey)), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	log.Printf("protected-api listening on http://%s/hello (keyward at %s)", *addr, *kwURL)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

// Handler is the API: GET /hello behind keyward's middleware.
func Handler(kw *client.Client, opts ...client.VerifierOption) http.Handler {
	protect := client.Middleware(client.NewVerifier(kw, opts...), client.WithRealm("protected-api"))
	mux := http.NewServeMux()
	mux.Handle("GET /hello", protect(http.HandlerFunc(hello)))
	return mux
}

func hello(w http.ResponseWriter, r *http.Request) {
	p, _ := client.PrincipalFrom(r.Context())
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"hello": p.Subject, "kind": p.Kind})
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

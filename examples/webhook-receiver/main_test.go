package main

import (
	"bytes"
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/keyward/keyward/internal/httpapi/apitest"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
	"github.com/keyward/keyward/internal/webhooksend"
)

// capture is what the receiver was sent last, and what it answered.
type capture struct {
	mu      sync.Mutex
	headers http.Header
	body    []byte
	status  int
}

// recording serves h and remembers the last request and answer.
func (c *capture) recording(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		c.mu.Lock()
		c.headers, c.body, c.status = r.Header.Clone(), body, rec.Code
		c.mu.Unlock()
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	})
}

// deliver runs keyward's dispatcher once, over real HTTP, as serve does
// with --webhook-allow-private (the receiver is on loopback).
func deliver(t *testing.T, e *apitest.Env) {
	t.Helper()
	if n, err := e.Auth.DeliverWebhooks(context.Background(), webhooksend.New(webhooksend.Options{AllowPrivate: true})); err != nil || n != 1 {
		t.Fatalf("DeliverWebhooks = %d, %v; want one delivery", n, err)
	}
}

func repost(t *testing.T, url string, headers http.Header, body []byte) int {
	t.Helper()
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	req.Header = headers.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// The receiver, registered as the README does, accepts a real delivery
// from keyward and prints it; it refuses the same delivery with its body
// changed, and a delivery signed under a secret it does not hold.
func TestTheReceiverAcceptsKeywardsDeliveriesAndRefusesTamperedOnes(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		e := apitest.Start(t, s)
		srv := httptest.NewUnstartedServer(nil)
		url := "http://" + srv.Listener.Addr().String() + "/"
		hook := e.Do(t, "POST", "/v1/webhooks", e.AdminKey, map[string]any{"url": url,
			"events": []string{"m2m_token.created", "api_key.revoked", "machine.created", "audit.chain_broken"}}).JSON(t)
		secret, id := hook["secret"].(string), hook["id"].(string)
		e.Remember(secret)
		if !strings.HasPrefix(secret, "whsec_") || !strings.HasPrefix(id, "wh_") {
			t.Fatalf("POST /v1/webhooks = %v", hook)
		}
		var out testkit.SyncBuffer
		var got capture
		srv.Config.Handler = got.recording(Handler(secret, e.Clock.Now, &out))
		srv.Start()
		t.Cleanup(srv.Close)

		machine := e.Do(t, "POST", "/clerk/v1/machines", e.AdminKey, map[string]any{"name": "worker"}).JSON(t)
		e.Remember(machine["secret_key"].(string))
		deliver(t, e)
		if got.status != http.StatusNoContent || !strings.Contains(out.String(), " machine.created machine/"+machine["id"].(string)+" ") {
			t.Fatalf("receiver answered %d and printed %q; want 204 and the machine.created line", got.status, out.String())
		}
		deliveries := e.Do(t, "GET", "/v1/webhooks/"+id+"/deliveries", e.AdminKey, nil).JSON(t)["data"].([]any)
		if d := deliveries[0].(map[string]any); d["status"] != "succeeded" {
			t.Fatalf("keyward's delivery log: %v, want succeeded", d)
		}

		// The same delivery again verifies (deduplicate by its id); with
		// one byte of its body changed, or without its signature, it does
		// not.
		if code := repost(t, url, got.headers, got.body); code != http.StatusNoContent {
			t.Errorf("the delivery re-sent as is: %d, want 204", code)
		}
		tampered := bytes.Replace(got.body, []byte(`"machine.created"`), []byte(`"machine.deleted"`), 1)
		if code := repost(t, url, got.headers, tampered); code != http.StatusUnauthorized {
			t.Errorf("a tampered body: %d, want 401", code)
		}
		unsigned := got.headers.Clone()
		unsigned.Del("webhook-signature")
		if code := repost(t, url, unsigned, got.body); code != http.StatusUnauthorized {
			t.Errorf("no signature: %d, want 401", code)
		}

		// keyward signs with a rotated secret the receiver does not hold:
		// refused, and keyward keeps the delivery for a retry.
		e.Remember(e.Do(t, "POST", "/v1/webhooks/"+id+"/rotate_secret", e.AdminKey, nil).JSON(t)["secret"].(string))
		printed := out.String()
		other := e.Do(t, "POST", "/clerk/v1/machines", e.AdminKey, map[string]any{"name": "other"}).JSON(t)
		e.Remember(other["secret_key"].(string))
		deliver(t, e)
		if got.status != http.StatusUnauthorized || out.String() != printed {
			t.Fatalf("a delivery under another secret: %d, printed %q; want 401 and nothing printed", got.status, strings.TrimPrefix(out.String(), printed))
		}
		deliveries = e.Do(t, "GET", "/v1/webhooks/"+id+"/deliveries", e.AdminKey, nil).JSON(t)["data"].([]any)
		if d := deliveries[0].(map[string]any); d["status"] != "pending" || d["last_status_code"] != float64(401) {
			t.Fatalf("keyward's delivery log: %v, want pending after a 401", d)
		}
	})
}

// The README shows Handler as it is in main.go, so the snippet a reader
// copies is the one this test runs.
func TestTheREADMEShowsThisHandler(t *testing.T) {
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "main.go", src, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	var handler string
	for _, d := range f.Decls {
		if fn, ok := d.(*ast.FuncDecl); ok && fn.Name.Name == "Handler" {
			handler = string(src[fset.Position(fn.Doc.Pos()).Offset:fset.Position(fn.End()).Offset])
		}
	}
	if handler == "" {
		t.Fatal("main.go has no documented func Handler")
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "```go\n"+handler+"\n```") {
		t.Errorf("README.md has no ```go block that is main.go's Handler, verbatim:\n%s", handler)
	}
}

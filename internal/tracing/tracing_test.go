package tracing_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/httpapi/apitest"
	"github.com/keyward/keyward/internal/testkit"
	"github.com/keyward/keyward/internal/tracing"
)

// An incoming traceparent: trace 4bf9…4736, parent span 00f0…02b7, sampled.
const (
	incomingTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	incomingSpanID  = "00f067aa0ba902b7"
	traceparent     = "00-" + incomingTraceID + "-" + incomingSpanID + "-01"
)

// serverSpans tells when a server span has ended: otelhttp ends it after
// the handler returns, which may be after the client has its answer.
type serverSpans struct {
	sdktrace.SpanProcessor
	ended chan struct{}
}

func (s serverSpans) OnEnd(span sdktrace.ReadOnlySpan) {
	s.SpanProcessor.OnEnd(span)
	if span.SpanKind() == trace.SpanKindServer {
		s.ended <- struct{}{}
	}
}

func (s serverSpans) wait(t *testing.T) {
	t.Helper()
	select {
	case <-s.ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the server span never ended")
	}
}

// recorded starts a server whose spans land in a SpanRecorder.
func recorded(t *testing.T, store authority.Store) (*apitest.Env, *tracetest.SpanRecorder, serverSpans) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	spans := serverSpans{SpanProcessor: rec, ended: make(chan struct{}, 16)}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	e := apitest.StartWith(t, store, apitest.Options{Tracing: tracing.New(tp)})
	return e, rec, spans
}

func stores(t *testing.T) map[string]func(*testing.T) authority.Store {
	return map[string]func(*testing.T) authority.Store{
		"sqlite":   func(t *testing.T) authority.Store { return testkit.OpenSQLite(t) },
		"postgres": func(t *testing.T) authority.Store { return testkit.OpenPostgres(t) },
	}
}

// TestVerifyOnACacheMissIsOneTraceUnderTheCaller checks the tree of a
// verify call: the server span is a child of the incoming traceparent,
// and on a cache miss each credential read (the admin key's, the verified
// token's) is a cache.fill span under it with its store read under that.
func TestVerifyOnACacheMissIsOneTraceUnderTheCaller(t *testing.T) {
	for name, open := range stores(t) {
		t.Run(name, func(t *testing.T) {
			e, rec, spans := recorded(t, open(t))
			rec.Reset() // the instance created at start
			unknown := credential.MustGenerate(credential.KindM2MToken).Reveal()
			resp := e.DoWith(t, "POST", "/v1/verify", map[string]string{"token": unknown},
				http.Header{"Authorization": {"Bearer " + e.AdminKey}, "Traceparent": {traceparent}})
			if resp.Status != http.StatusOK {
				t.Fatalf("verify: %d %s", resp.Status, resp.Body)
			}
			spans.wait(t)

			byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
			var server sdktrace.ReadOnlySpan
			for _, s := range rec.Ended() {
				if s.SpanContext().TraceID().String() != incomingTraceID {
					t.Errorf("span %q is in trace %s, not the caller's", s.Name(), s.SpanContext().TraceID())
				}
				byID[s.SpanContext().SpanID()] = s
				if s.SpanKind() == trace.SpanKindServer {
					server = s
				}
			}
			if server == nil {
				t.Fatalf("no server span among %v", names(rec.Ended()))
			}
			if server.Name() != "POST /v1/verify" || server.Parent().SpanID().String() != incomingSpanID || !server.Parent().IsRemote() {
				t.Fatalf("server span %q has parent %s (remote %v), want POST /v1/verify under %s",
					server.Name(), server.Parent().SpanID(), server.Parent().IsRemote(), incomingSpanID)
			}
			fills := 0
			for _, s := range rec.Ended() {
				switch s.Name() {
				case "cache.fill":
					fills++
					if s.Parent().SpanID() != server.SpanContext().SpanID() {
						t.Errorf("cache.fill is not a child of the server span")
					}
				case "store.credential_by_digest":
					if parent, ok := byID[s.Parent().SpanID()]; !ok || parent.Name() != "cache.fill" {
						t.Errorf("a store read is not under a cache fill")
					}
				}
			}
			if fills != 2 {
				t.Errorf("%d cache fills, want 2 (the admin key and the token): %v", fills, names(rec.Ended()))
			}
			if got := resp.Header.Get("X-Request-Id"); got == "" || !hasAttr(server, "keyward.request_id", got) {
				t.Errorf("the server span does not carry the request id %q", got)
			}

			// The same call again is served from the cache: no store read.
			rec.Reset()
			e.DoWith(t, "POST", "/v1/verify", map[string]string{"token": unknown},
				http.Header{"Authorization": {"Bearer " + e.AdminKey}})
			spans.wait(t)
			for _, s := range rec.Ended() {
				if strings.HasPrefix(s.Name(), "store.") || s.Name() == "cache.fill" {
					t.Errorf("a cache hit made a %s span", s.Name())
				}
				if s.SpanKind() == trace.SpanKindServer && s.Parent().IsValid() {
					t.Errorf("without a traceparent the server span has a parent %s", s.Parent().SpanID())
				}
			}
		})
	}
}

// TestSpansCarryNoSecret sends secrets every way a request can (bearer,
// body, query, a header) and looks for them in every span.
func TestSpansCarryNoSecret(t *testing.T) {
	e, rec, spans := recorded(t, testkit.OpenSQLite(t))
	machine := e.Do(t, "POST", "/clerk/v1/machines", e.AdminKey, map[string]string{"name": "worker"})
	spans.wait(t)
	secretKey, _ := machine.JSON(t)["secret_key"].(string)
	minted := e.Do(t, "POST", "/clerk/v1/m2m_tokens", secretKey, map[string]any{"seconds_until_expiration": 600})
	spans.wait(t)
	token, _ := minted.JSON(t)["token"].(string)
	if secretKey == "" || token == "" {
		t.Fatalf("no secret to look for: %s / %s", machine.Body, minted.Body)
	}
	e.DoWith(t, "POST", "/v1/verify?ticket=tkt_secretinthequery", map[string]string{"token": token},
		http.Header{"Authorization": {"Bearer " + e.AdminKey}, "X-Api-Key": {secretKey}, "Cookie": {"session=" + token}})
	spans.wait(t)
	// A failure path too: a bad bearer.
	e.Do(t, "POST", "/v1/verify", token+"x", map[string]string{"token": token})
	spans.wait(t)

	secrets := []string{e.AdminKey, secretKey, token, "tkt_secretinthequery", "Bearer"}
	if len(rec.Ended()) < 8 {
		t.Fatalf("only %d spans: %v", len(rec.Ended()), names(rec.Ended()))
	}
	for _, s := range rec.Ended() {
		text := s.Name() + " " + s.Status().Description
		for _, a := range s.Attributes() {
			text += " " + string(a.Key) + "=" + a.Value.String()
		}
		for _, ev := range s.Events() {
			text += " " + ev.Name
			for _, a := range ev.Attributes {
				text += " " + string(a.Key) + "=" + a.Value.String()
			}
		}
		for _, secret := range secrets {
			if strings.Contains(text, secret) {
				t.Errorf("span %q carries %q: %s", s.Name(), secret, text)
			}
		}
		if strings.Contains(strings.ToLower(text), "authorization") {
			t.Errorf("span %q names the Authorization header: %s", s.Name(), text)
		}
	}
}

// TestProbesAreNotTraced: load balancers poll them every few seconds.
func TestProbesAreNotTraced(t *testing.T) {
	e, rec, _ := recorded(t, testkit.OpenSQLite(t))
	rec.Reset()
	for _, path := range []string{"/healthz", "/readyz"} {
		if resp := e.Do(t, "GET", path, "", nil); resp.Status != http.StatusOK {
			t.Fatalf("%s: %d", path, resp.Status)
		}
	}
	for _, s := range rec.Ended() {
		if s.SpanKind() == trace.SpanKindServer {
			t.Errorf("a probe was traced: %s", s.Name())
		}
	}
}

// TestTracesReachAnOTLPCollectorFromTheEnvironment sets only the standard
// variables and checks that a verify call's trace arrives at an in-process
// OTLP/HTTP receiver, under the service name keyward.
func TestTracesReachAnOTLPCollectorFromTheEnvironment(t *testing.T) {
	var (
		mu       sync.Mutex
		received []*tracepb.ResourceSpans
	)
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "unexpected "+r.URL.Path, http.StatusNotFound)
			return
		}
		body, _ := io.ReadAll(r.Body)
		// ExportTraceServiceRequest is TracesData on the wire.
		var data tracepb.TracesData
		if err := proto.Unmarshal(body, &data); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		received = append(received, data.GetResourceSpans()...)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer collector.Close()
	for k, v := range map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": collector.URL, "OTEL_TRACES_EXPORTER": "", "OTEL_SDK_DISABLED": "",
		"OTEL_SERVICE_NAME": "", "OTEL_EXPORTER_OTLP_PROTOCOL": "", "OTEL_PROPAGATORS": "", "OTEL_TRACES_SAMPLER": "",
	} {
		t.Setenv(k, v)
	}
	tr, err := tracing.FromEnv(context.Background(), "v0.0.0-test")
	if err != nil || tr == nil {
		t.Fatalf("FromEnv with an endpoint: %v, %v", tr, err)
	}
	e := apitest.StartWith(t, testkit.OpenSQLite(t), apitest.Options{Tracing: tr})
	e.DoWith(t, "POST", "/v1/verify", map[string]string{"token": "kw_nothing"},
		http.Header{"Authorization": {"Bearer " + e.AdminKey}, "Traceparent": {traceparent}})
	// Shutdown exports what the batcher holds; the server span has ended
	// once it returns, since Close waits for the handler.
	e.Close()
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	found := false
	for _, rs := range received {
		service := ""
		for _, a := range rs.GetResource().GetAttributes() {
			if a.GetKey() == "service.name" {
				service = a.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				if s.GetName() == "POST /v1/verify" && bytes.Equal(s.GetParentSpanId(), mustHex(t, incomingSpanID)) &&
					bytes.Equal(s.GetTraceId(), mustHex(t, incomingTraceID)) {
					found = true
					if service != "keyward" {
						t.Errorf("service.name = %q, want keyward", service)
					}
				}
			}
		}
	}
	if !found {
		t.Fatalf("the verify call's server span did not reach the collector (%d resource spans)", len(received))
	}
}

func TestEnabledFollowsTheOTelVariables(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		on      bool
		wantErr bool
	}{
		{"off by default", nil, false, false},
		{"on with an endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, true, false},
		{"on with a traces endpoint", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, true, false},
		{"on with the otlp exporter named", map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, true, false},
		{"off with the none exporter", map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, false, false},
		{"off when the SDK is disabled", map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, false, false},
		{"refused: an exporter not built in", map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, false, true},
		{"refused: grpc", map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, false, true},
		{"http/protobuf accepted", map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			on, err := tracing.Enabled(func(k string) string { return tc.env[k] })
			if on != tc.on || (err != nil) != tc.wantErr {
				t.Fatalf("Enabled = %v, %v; want %v, error %v", on, err, tc.on, tc.wantErr)
			}
		})
	}
}

func names(spans []sdktrace.ReadOnlySpan) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name())
	}
	return out
}

func hasAttr(s sdktrace.ReadOnlySpan, key, value string) bool {
	for _, a := range s.Attributes() {
		if string(a.Key) == key && a.Value.AsString() == value {
			return true
		}
	}
	return false
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	if len(s) == 32 {
		id, err := trace.TraceIDFromHex(s)
		if err != nil {
			t.Fatal(err)
		}
		return id[:]
	}
	id, err := trace.SpanIDFromHex(s)
	if err != nil {
		t.Fatal(err)
	}
	return id[:]
}

// The span's client.address is the one --trusted-proxies vouches for, not
// whatever X-Forwarded-For a client sends.
func TestServerSpanClientAddressIgnoresAnUntrustedForwardedFor(t *testing.T) {
	e, rec, spans := recorded(t, testkit.OpenSQLite(t))
	e.DoWith(t, "GET", "/v1/caller", nil, http.Header{"Authorization": {"Bearer " + e.AdminKey}, "X-Forwarded-For": {"203.0.113.66"}})
	spans.wait(t)
	for _, s := range rec.Ended() {
		if s.SpanKind() != trace.SpanKindServer {
			continue
		}
		if hasAttr(s, "client.address", "203.0.113.66") || !hasAttr(s, "client.address", "127.0.0.1") {
			t.Errorf("server span client.address: %v", s.Attributes())
		}
		if !hasAttr(s, "http.route", "/v1/caller") || s.Name() != "GET /v1/caller" {
			t.Errorf("server span %q lacks its route: %v", s.Name(), s.Attributes())
		}
	}
}

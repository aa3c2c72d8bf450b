package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// clearOTelEnv unsets the variables that would change what a test of
// tracing sees.
func clearOTelEnv(t *testing.T) {
	for _, k := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_TRACES_EXPORTER",
		"OTEL_SDK_DISABLED", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_PROPAGATORS",
		"OTEL_SERVICE_NAME", "OTEL_TRACES_SAMPLER"} {
		t.Setenv(k, "")
	}
}

// TestServeExportsTracesWhenTheOTelVariablesSaySo runs keyward serve with
// only OTEL_EXPORTER_OTLP_ENDPOINT set: the caller's trace id is in the
// access log, the spans reach the collector by shutdown, and no secret
// goes with them.
func TestServeExportsTracesWhenTheOTelVariablesSaySo(t *testing.T) {
	var (
		mu      sync.Mutex
		batches [][]byte
	)
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/v1/traces" {
			mu.Lock()
			batches = append(batches, body)
			mu.Unlock()
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer collector.Close()
	clearOTelEnv(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)

	url, stderr, stop := startStoppable(t, "--data-dir", filepath.Join(t.TempDir(), "data"))
	m := adminKeyLine.FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("no admin key printed:\n%s", stderr)
	}
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	req, _ := http.NewRequest("GET", url+"/v1/caller", nil)
	req.Header.Set("Authorization", "Bearer "+m[1])
	req.Header.Set("Traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/caller: %v %v", resp, err)
	}
	resp.Body.Close()
	stop() // flushes the spans still batched

	logs := stderr.String()
	if !strings.Contains(logs, "tracing=true") || !strings.Contains(logs, "trace_id="+traceID) {
		t.Errorf("the log does not show tracing on and the caller's trace id:\n%s", logs)
	}
	mu.Lock()
	defer mu.Unlock()
	all := bytes.Join(batches, nil)
	if !bytes.Contains(all, []byte("GET /v1/caller")) || !bytes.Contains(all, []byte("keyward")) {
		t.Fatalf("the collector got no span of the request (%d batches)", len(batches))
	}
	if bytes.Contains(all, []byte(m[1])) || bytes.Contains(all, []byte("Bearer")) {
		t.Fatal("an exported span carries the admin key")
	}
}

func TestServeRefusesTracingItCannotDo(t *testing.T) {
	for _, tc := range []struct{ name, value, want string }{
		{"OTEL_TRACES_EXPORTER", "zipkin", "OTEL_TRACES_EXPORTER"},
		{"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", "http/protobuf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearOTelEnv(t)
			t.Setenv("OTEL_TRACES_EXPORTER", "otlp")
			t.Setenv(tc.name, tc.value)
			root := newRootCommand(io.Discard, io.Discard)
			root.SetArgs([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", filepath.Join(t.TempDir(), "data")})
			err := root.ExecuteContext(context.Background())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("serve with %s=%s: %v, want an error naming %s", tc.name, tc.value, err, tc.want)
			}
		})
	}
}

package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// keyward probe is a container's HEALTHCHECK: exit 0 only while the
// server answers /readyz with 200.
func TestProbeExitsZeroOnlyWhileTheServerIsReady(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" || r.Header.Get("Authorization") != "" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)

	for _, url := range []string{srv.URL + "/readyz", srv.URL} {
		if out, err := runKeyward(t, "probe", "--url", url); err != nil || !strings.Contains(out, "ready") {
			t.Fatalf("probe --url %s while ready: %q, %v", url, out, err)
		}
	}
	status = http.StatusServiceUnavailable
	if _, err := runKeyward(t, "probe", "--url", srv.URL+"/readyz"); err == nil || !strings.Contains(err.Error(), "not ready") {
		t.Fatalf("probe while unavailable: %v, want not ready", err)
	}
	srv.Close()
	if _, err := runKeyward(t, "probe", "--url", srv.URL+"/readyz", "--timeout", "1s"); err == nil {
		t.Fatal("probe of a stopped server succeeded")
	}
	if _, err := runKeyward(t, "probe", "--url", "ftp://x/readyz"); err == nil || !strings.Contains(err.Error(), "--url") {
		t.Fatalf("probe of a bad URL: %v, want a --url error", err)
	}
}

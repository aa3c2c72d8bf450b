package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime/debug"
	"testing"
)

func TestDescribeBuild(t *testing.T) {
	checkout := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/keyward/keyward", Version: "(devel)"},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "19b2813c0ffee0000000000000000000000000aa"},
			{Key: "vcs.time", Value: "2026-12-01T21:00:00Z"},
			{Key: "vcs.modified", Value: "false"},
		},
	}
	dirty := *checkout
	dirty.Settings = append([]debug.BuildSetting{}, checkout.Settings...)
	dirty.Settings[2].Value = "true"
	installed := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.4.0"}}
	tests := []struct {
		name    string
		release string
		info    *debug.BuildInfo
		want    string
	}{
		{"a checkout build names its revision and time", "", checkout, "(devel), revision 19b2813c0ffe, built from a commit of 2026-12-01T21:00:00Z, go1.26.8"},
		{"local changes are marked dirty", "", &dirty, "(devel), revision 19b2813c0ffe+dirty, built from a commit of 2026-12-01T21:00:00Z, go1.26.8"},
		{"go install of a tag prints the module version", "", installed, "v1.4.0, go1.26.8"},
		{"a release version set by ldflags wins", "v2.0.0", checkout, "v2.0.0, revision 19b2813c0ffe, built from a commit of 2026-12-01T21:00:00Z, go1.26.8"},
		{"no build info still prints something", "", nil, "(devel)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := describeBuild(tt.release, tt.info); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestProbe(t *testing.T) {
	ready := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(ready.Close)
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(down.Close)
	tests := []struct {
		name string
		url  string
		want int
	}{
		{"a ready server exits 0", ready.URL + "/readyz", exitOK},
		{"a server that is not ready exits non-zero", down.URL + "/readyz", exitFailure},
		{"nothing listening exits non-zero", "http://127.0.0.1:1/readyz", exitFailure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := newRootCommand(io.Discard, io.Discard)
			root.SetArgs([]string{"probe", "--url", tt.url, "--timeout", "2s"})
			if got := exitCode(root.ExecuteContext(context.Background())); got != tt.want {
				t.Fatalf("exit code %d, want %d", got, tt.want)
			}
		})
	}
}

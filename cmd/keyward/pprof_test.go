package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestPprofAddrRefusesAnythingButLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:6060", ":6060", "[::]:6060", "192.0.2.1:6060", "example.com:6060", "6060"} {
		if ln, err := listenPprof(addr); err == nil {
			ln.Close()
			t.Errorf("--pprof-addr %s accepted", addr)
		}
	}
	if ln, err := listenPprof(""); ln != nil || err != nil {
		t.Fatalf("no --pprof-addr: %v, %v; want off", ln, err)
	}
}

func TestPprofAddrServesProfilesOnLoopback(t *testing.T) {
	ln, err := listenPprof("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(pprofHandler())
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "goroutine profile") {
		t.Fatalf("pprof answered %d %.200s", resp.StatusCode, body)
	}
}

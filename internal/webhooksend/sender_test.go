package webhooksend_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync/atomic"
	"testing"

	"github.com/keyward/keyward/internal/webhooksend"
)

func TestSenderRefusesPrivateTargetsUnlessAllowed(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.Header.Get("webhook-id") != "evt_1" || r.Method != http.MethodPost {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	ctx := context.Background()
	headers := map[string]string{"webhook-id": "evt_1"}
	if status, err := webhooksend.New(webhooksend.Options{}).Send(ctx, srv.URL, headers, []byte("{}")); !errors.Is(err, webhooksend.ErrForbiddenAddress) || status != 0 {
		t.Fatalf("loopback target: %d, %v; want refused", status, err)
	}
	if hits.Load() != 0 {
		t.Fatal("the refused delivery reached the server")
	}
	allowed := webhooksend.New(webhooksend.Options{AllowPrivate: true})
	if status, err := allowed.Send(ctx, srv.URL, headers, []byte("{}")); err != nil || status != http.StatusNoContent {
		t.Fatalf("allowed: %d, %v", status, err)
	}
	if _, err := allowed.Send(ctx, "ftp://example.com/", headers, nil); err == nil {
		t.Fatal("an ftp URL was sent")
	}
}

func TestSenderFollowsNoRedirect(t *testing.T) {
	var followed atomic.Bool
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { followed.Store(true) }))
	defer target.Close()
	srv := httptest.NewServer(http.RedirectHandler(target.URL, http.StatusTemporaryRedirect))
	defer srv.Close()
	status, err := webhooksend.New(webhooksend.Options{AllowPrivate: true}).Send(context.Background(), srv.URL, nil, []byte("{}"))
	if err != nil || status != http.StatusTemporaryRedirect || followed.Load() {
		t.Fatalf("redirect: %d, %v, followed %v", status, err, followed.Load())
	}
}

func TestForbiddenRanges(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1": true, "10.1.2.3": true, "172.16.0.1": true, "192.168.1.1": true, "169.254.169.254": true,
		"100.64.0.1": true, "0.0.0.0": true, "::1": true, "fe80::1": true, "fd00::1": true, "::ffff:127.0.0.1": true,
		"224.0.0.1": true, "8.8.8.8": false, "2606:4700:4700::1111": false, "93.184.216.34": false,
	} {
		if got := webhooksend.Forbidden(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Forbidden(%s) = %v, want %v", addr, got, want)
		}
	}
}

package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward/client"
)

const secretKey = "sk_live_SECRETSECRETSECRET"

// fake serves handler and counts requests.
func fake(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func newClient(url string, opts ...client.Option) *client.Client {
	return client.New(url, secretKey, append([]client.Option{client.WithRetryBackoff(time.Millisecond)}, opts...)...)
}

func TestErrorsMatchTheirSentinel(t *testing.T) {
	sentinels := []error{client.ErrInvalid, client.ErrUnauthorized, client.ErrForbidden, client.ErrNotFound,
		client.ErrConflict, client.ErrRateLimited, client.ErrUnavailable, client.ErrServer}
	for status, want := range map[int]error{
		400: client.ErrInvalid, 413: client.ErrInvalid, 422: client.ErrInvalid, 401: client.ErrUnauthorized,
		403: client.ErrForbidden, 404: client.ErrNotFound, 409: client.ErrConflict, 429: client.ErrRateLimited,
		502: client.ErrUnavailable, 503: client.ErrUnavailable, 504: client.ErrUnavailable, 500: client.ErrServer,
	} {
		srv, _ := fake(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Request-Id", "req_hdr")
			w.WriteHeader(status)
			io.WriteString(w, `{"error":{"code":"some_code","message":"went wrong","param":"slug"},"request_id":"req_123"}`)
		})
		_, err := newClient(srv.URL, client.WithRetries(0)).GetOrganization(context.Background(), "acme")
		for _, s := range sentinels {
			if got := errors.Is(err, s); got != (s == want) {
				t.Errorf("status %d: errors.Is(err, %v) = %v", status, s, got)
			}
		}
		var apiErr *client.APIError
		if !errors.As(err, &apiErr) {
			t.Fatalf("status %d: %T is not *APIError", status, err)
		}
		if apiErr.Status != status || apiErr.Code != "some_code" || apiErr.Message != "went wrong" || apiErr.Param != "slug" || apiErr.RequestID != "req_123" {
			t.Errorf("status %d: %+v", status, apiErr)
		}
		if strings.Contains(err.Error(), secretKey) {
			t.Errorf("status %d: error leaks the key: %v", status, err)
		}
	}
}

func TestOAuthAndBareErrorBodies(t *testing.T) {
	srv, _ := fake(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/oauth/introspect" {
			w.WriteHeader(401)
			io.WriteString(w, `{"error":"invalid_client","error_description":"a valid admin or machine secret key is required"}`)
			return
		}
		w.WriteHeader(404)
	})
	c := newClient(srv.URL)
	_, err := c.Introspect(context.Background(), "mt_tokentokentoken")
	var apiErr *client.APIError
	if !errors.As(err, &apiErr) || apiErr.Code != "invalid_client" || !errors.Is(err, client.ErrUnauthorized) {
		t.Errorf("introspect: %v", err)
	}
	if strings.Contains(err.Error(), "mt_tokentokentoken") {
		t.Errorf("error leaks the token: %v", err)
	}
	err = c.DeleteOrganization(context.Background(), "x")
	if !errors.Is(err, client.ErrNotFound) || !errors.As(err, &apiErr) || apiErr.Code != "http_404" {
		t.Errorf("bare 404: %v", err)
	}
}

func TestRetriesOnlyIdempotentCalls(t *testing.T) {
	ctx := context.Background()
	calls := []struct {
		name      string
		call      func(*client.Client) error
		wantCalls int32
	}{
		{"GET", func(c *client.Client) error { _, err := c.ListOrganizations(ctx, client.Page{}); return err }, 3},
		// A verify (and an introspection, which decides as one) counts
		// against rate limits and takes credits: a 503 came from a server
		// that may have counted it, so it is not sent again.
		{"verify", func(c *client.Client) error { _, err := c.Verify(ctx, client.VerifyRequest{Token: "mt_x"}); return err }, 1},
		{"introspect", func(c *client.Client) error { _, err := c.Introspect(ctx, "mt_x"); return err }, 1},
		{"PUT", func(c *client.Client) error { _, err := c.SetScopes(ctx, []string{"read"}); return err }, 3},
		{"DELETE", func(c *client.Client) error { return c.DeleteOrganization(ctx, "acme") }, 3},
		{"create", func(c *client.Client) error {
			_, err := c.CreateOrganization(ctx, client.OrganizationParams{Slug: "acme", Name: "Acme"})
			return err
		}, 1},
		{"PATCH", func(c *client.Client) error {
			_, err := c.UpdateOrganization(ctx, "acme", client.OrganizationParams{Name: "A"})
			return err
		}, 1},
	}
	for _, tc := range calls {
		t.Run(tc.name, func(t *testing.T) {
			// Always 503: the call gives up after its attempts.
			srv, n := fake(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) })
			err := tc.call(newClient(srv.URL))
			if !errors.Is(err, client.ErrUnavailable) || n.Load() != tc.wantCalls {
				t.Errorf("err %v after %d calls, want ErrUnavailable after %d", err, n.Load(), tc.wantCalls)
			}
		})
	}

	t.Run("succeeds after a 503", func(t *testing.T) {
		srv, n := fake(t, func(w http.ResponseWriter, r *http.Request) {})
		srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if n.Add(1) == 1 {
				w.WriteHeader(503)
				return
			}
			io.WriteString(w, `{"kind":"admin_key","instance_id":"ins_1"}`)
		})
		res, err := newClient(srv.URL).Caller(ctx)
		if err != nil || res.Kind != "admin_key" || n.Load() != 2 {
			t.Errorf("%+v %v after %d calls", res, err, n.Load())
		}
	})

	t.Run("verify is not retried once the request may have been sent", func(t *testing.T) {
		// The connection drops after the server read the request: the
		// verify may have been counted, and is not sent again.
		srv, n := fake(t, func(w http.ResponseWriter, r *http.Request) {
			io.ReadAll(r.Body)
			conn, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			conn.Close()
		})
		_, err := newClient(srv.URL, client.WithRetries(5)).Verify(ctx, client.VerifyRequest{Token: "mt_x"})
		if !errors.Is(err, client.ErrUnavailable) || n.Load() != 1 {
			t.Errorf("err %v after %d requests, want ErrUnavailable after 1", err, n.Load())
		}
	})

	t.Run("verify is retried when the connection could not be made", func(t *testing.T) {
		srv, n := fake(t, func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"valid":true,"code":"valid","kind":"m2m_token"}`)
		})
		var dials atomic.Int32
		var d net.Dialer
		tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if dials.Add(1) == 1 {
				return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("connection refused")}
			}
			return d.DialContext(ctx, network, addr)
		}}
		t.Cleanup(tr.CloseIdleConnections)
		res, err := newClient(srv.URL, client.WithHTTPClient(&http.Client{Transport: tr})).Verify(ctx, client.VerifyRequest{Token: "mt_x"})
		if err != nil || !res.Valid || dials.Load() != 2 || n.Load() != 1 {
			t.Errorf("%+v %v after %d dials and %d requests, want valid after 2 and 1", res, err, dials.Load(), n.Load())
		}
	})

	t.Run("no retry on 500 or 4xx", func(t *testing.T) {
		for _, status := range []int{500, 400, 404} {
			srv, n := fake(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(status) })
			if _, err := newClient(srv.URL).ListOrganizations(ctx, client.Page{}); err == nil || n.Load() != 1 {
				t.Errorf("%d: %v after %d calls", status, err, n.Load())
			}
		}
	})

	t.Run("retries stop with the context", func(t *testing.T) {
		srv, n := fake(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) })
		c := client.New(srv.URL, secretKey, client.WithRetries(5), client.WithRetryBackoff(time.Hour))
		ctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := c.Caller(ctx)
		if !errors.Is(err, client.ErrUnavailable) || n.Load() != 1 || time.Since(start) > 5*time.Second {
			t.Errorf("%v after %d calls in %v", err, n.Load(), time.Since(start))
		}
	})
}

func TestNetworkErrorIsUnavailableWithoutSecrets(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	_, err := newClient(url).Verify(context.Background(), client.VerifyRequest{Token: "mt_SECRETTOKEN"})
	if !errors.Is(err, client.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if s := err.Error(); strings.Contains(s, secretKey) || strings.Contains(s, "mt_SECRETTOKEN") {
		t.Errorf("error leaks a secret: %s", s)
	}
}

func TestRequestsAndDecoding(t *testing.T) {
	srv, _ := fake(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+secretKey || r.Header.Get("User-Agent") != "test-agent" {
			w.WriteHeader(401)
			return
		}
		body, _ := io.ReadAll(r.Body)
		switch r.Method + " " + r.URL.Path {
		case "POST /v1/verify":
			var in map[string]any
			if json.Unmarshal(body, &in) != nil || in["token"] != "otk_x" || in["client_ip"] != "192.0.2.1" {
				w.WriteHeader(400)
				return
			}
			io.WriteString(w, `{"valid":false,"code":"rate_limited","kind":"org_token","id":"u1","subject":"org1",
				"privileges":[{"scope":"org","role":"admin"}],"expires_at":"2030-01-02T03:04:05.123Z",
				"ratelimit":{"limit":2,"remaining":0,"reset_at":"2030-01-01T01:00:00Z"}}`)
		case "POST /oauth/introspect":
			if r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" || string(body) != "token=mt_a%2Bb" {
				w.WriteHeader(400)
				return
			}
			io.WriteString(w, `{"active":true,"token_type":"Bearer","kind":"m2m_token","sub":"mch_1","jti":"mt_1","client_id":"mch_1","scope":"mch_2 mch_3","iat":10,"exp":20}`)
		case "GET /v1/audit_events":
			if r.URL.RawQuery != "action=machine.create&limit=5&offset=10&target_id=mch_1" {
				w.WriteHeader(400)
				return
			}
			io.WriteString(w, `{"data":[{"id":"ev_1","at":"2026-01-02T03:04:05Z","actor":{"kind":"admin_key","id":"key_1"},"action":"machine.create","target":{"kind":"machine","id":"mch_1"},"outcome":"success","detail":{}}],"total_count":11}`)
		case "PUT /v1/organizations/acme/workspaces/data/members/user 42":
			io.WriteString(w, `{"workspace_id":"ws_1","user_id":"user 42","role":"member"}`)
		default:
			w.WriteHeader(404)
		}
	})
	c := newClient(srv.URL, client.WithUserAgent("test-agent"))
	ctx := context.Background()

	res, err := c.Verify(ctx, client.VerifyRequest{Token: "otk_x", ClientIP: "192.0.2.1"})
	if err != nil || res.Valid || res.Code != client.CodeRateLimited || res.RateLimit == nil || res.RateLimit.Limit != 2 ||
		res.ExpiresAt == nil || res.ExpiresAt.Year() != 2030 || len(res.Privileges) != 1 || res.Privileges[0].Role != "admin" {
		t.Errorf("verify: %+v %v", res, err)
	}
	in, err := c.Introspect(ctx, "mt_a+b")
	if err != nil || !in.Active || in.Scope != "mch_2 mch_3" || in.ExpiresAt != 20 || in.ClientID != "mch_1" {
		t.Errorf("introspect: %+v %v", in, err)
	}
	ev, err := c.AuditEvents(ctx, client.AuditQuery{Action: "machine.create", TargetID: "mch_1", Limit: 5, Offset: 10})
	if err != nil || ev.TotalCount != 11 || len(ev.Events) != 1 || ev.Events[0].Target.ID != "mch_1" {
		t.Errorf("audit: %+v %v", ev, err)
	}
	m, err := c.PutMember(ctx, "acme", "data", "user 42", "member")
	if err != nil || m.UserID != "user 42" {
		t.Errorf("put member: %+v %v", m, err)
	}
	if _, err := c.GetWorkspace(ctx, "acme", ""); !errors.Is(err, client.ErrInvalid) {
		t.Errorf("empty workspace: %v", err)
	}
}

// TestWithTimeoutEndsAHangingCall checks a call to a server that never
// answers ends with a network error once WithTimeout's bound passes.
func TestWithTimeoutEndsAHangingCall(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	c := client.New(srv.URL, "sk_test", client.WithTimeout(50*time.Millisecond), client.WithRetries(0))
	if _, err := c.GetMachine(context.Background(), "mch_1"); !errors.Is(err, client.ErrUnavailable) {
		t.Fatalf("a hanging server: %v, want ErrUnavailable", err)
	}
}

// An update with an empty, non-nil SiteIDs sends "site_ids": [] (the
// sitegroup loses its sites); a nil one leaves them out.
func TestUpdateSitegroupSendsAnEmptySiteList(t *testing.T) {
	var bodies []string
	srv, _ := fake(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies = append(bodies, string(b))
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"g1","name":"g","site_ids":[]}`)
	})
	kw := newClient(srv.URL)
	for _, in := range []client.SitegroupParams{{Name: "g", SiteIDs: []string{}}, {Name: "g"}} {
		if _, err := kw.UpdateSitegroup(context.Background(), "org", "g1", in); err != nil {
			t.Fatal(err)
		}
	}
	if len(bodies) != 2 || bodies[0] != `{"name":"g","site_ids":[]}` || bodies[1] != `{"name":"g"}` {
		t.Errorf("bodies %q", bodies)
	}
}

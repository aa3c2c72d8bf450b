// Package client is the Go SDK for keyward's native API, and an HTTP
// middleware that protects an API with keyward-issued credentials.
//
// A Client talks to one keyward server with one key (the instance's admin
// key, or a machine secret key where the endpoint accepts one). Every call
// takes a context. Errors are *APIError values that match the sentinels
// ErrNotFound, ErrUnauthorized, … with errors.Is; a verification decision
// (valid or not) is never an error.
//
// Only the stdlib and go-jose (for offline JWT verification) are used.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultUserAgent is sent unless WithUserAgent says otherwise.
const DefaultUserAgent = "keyward-go"

// DefaultRetries is how many times an idempotent call is retried after a
// network error or a 502/503/504 answer (see WithRetries).
const DefaultRetries = 2

// maxResponse bounds how much of a response body the client reads.
const maxResponse = 8 << 20

// Client calls one keyward server. It is safe for concurrent use.
type Client struct {
	base      string
	key       string
	http      *http.Client
	timeout   time.Duration // of the default http.Client
	userAgent string
	retries   int
	backoff   time.Duration
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the http.Client used for every call (default: one
// with a 10 s timeout).
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.http = hc
		}
	}
}

// WithTimeout sets the timeout of each call made with the default
// http.Client (10 s); a client given by WithHTTPClient keeps its own.
func WithTimeout(d time.Duration) Option {
	return func(c *Client) {
		if d > 0 {
			c.timeout = d
		}
	}
}

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option {
	return func(c *Client) {
		if ua != "" {
			c.userAgent = ua
		}
	}
}

// WithRetries sets how many times an idempotent call (GET, PUT, DELETE,
// and the PATCHes that replace controls, roles and identities) is retried
// after a network error or a 502, 503 or 504. 0 disables retries; at most
// 5. Verify and Introspect are not idempotent: a verify counts against
// the credential's rate limits and takes its credits, so a retry after a
// lost answer could spend twice. They are retried only when the
// connection could not be made at all (the request never left the
// client), never after an answer or an error once it may have been sent.
// Other POSTs and PATCHes are never retried.
func WithRetries(n int) Option {
	return func(c *Client) { c.retries = min(max(n, 0), 5) }
}

// WithRetryBackoff sets the first retry's delay (default 100 ms); each
// later retry doubles it, capped at 2 s, with jitter.
func WithRetryBackoff(d time.Duration) Option {
	return func(c *Client) {
		if d > 0 {
			c.backoff = d
		}
	}
}

// New returns a client for the keyward at baseURL (e.g.
// "http://127.0.0.1:8080") authenticating with key (an admin key, or a
// machine secret key).
func New(baseURL, key string, opts ...Option) *Client {
	c := &Client{
		base:      strings.TrimRight(baseURL, "/"),
		key:       key,
		timeout:   10 * time.Second,
		userAgent: DefaultUserAgent,
		retries:   DefaultRetries,
		backoff:   100 * time.Millisecond,
	}
	for _, o := range opts {
		o(c)
	}
	if c.http == nil {
		c.http = &http.Client{Timeout: c.timeout}
	}
	return c
}

// BaseURL returns the server's base URL, without a trailing slash.
func (c *Client) BaseURL() string { return c.base }

// request is one API call.
type request struct {
	method     string
	path       string // with query, already escaped
	body       []byte
	form       bool // body is application/x-www-form-urlencoded
	idempotent bool // may be retried
	// retryUnsent: may be retried only after an error that shows the
	// request never reached the server (the dial failed); for a call that
	// is not idempotent, such as a verify that spends.
	retryUnsent bool
	noAuth      bool
}

// do sends req, retrying when allowed, and decodes a 2xx JSON answer into
// out (if not nil). Any other status is an *APIError.
func (c *Client) do(ctx context.Context, req request, out any) error {
	attempts := 1
	if req.idempotent || req.retryUnsent {
		attempts += c.retries
	}
	var lastErr error
	for i := 0; i < attempts; i++ {
		if i > 0 {
			if err := c.sleep(ctx, i); err != nil {
				return lastErr
			}
		}
		status, header, body, err := c.once(ctx, req)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			lastErr = &APIError{Status: 0, Code: "network_error", Message: sanitize(err, c.key)}
			lastErr.(*APIError).cause = err
			if !req.idempotent && !neverSent(err) {
				return lastErr
			}
			continue
		}
		if status >= 200 && status < 300 {
			if out == nil || len(bytes.TrimSpace(body)) == 0 {
				return nil
			}
			if err := json.Unmarshal(body, out); err != nil {
				return &APIError{Status: status, Code: "invalid_response", Message: "the response could not be decoded: " + err.Error()}
			}
			return nil
		}
		lastErr = parseError(status, header, body)
		if !req.idempotent || status != http.StatusBadGateway && status != http.StatusServiceUnavailable && status != http.StatusGatewayTimeout {
			return lastErr // an answer: the request reached a server
		}
	}
	return lastErr
}

// neverSent reports whether err, from http.Client.Do, shows that the
// request was not sent: the connection to the server (or its proxy)
// could not be dialled. Any later failure (TLS, a write, a reset, a
// timeout while waiting for the answer) may have come after the server
// read the request. (net/http itself resends a request whose reused
// connection closed before anything was written.)
func neverSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func (c *Client) once(ctx context.Context, req request) (int, http.Header, []byte, error) {
	var rd io.Reader
	if req.body != nil {
		rd = bytes.NewReader(req.body)
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, c.base+req.path, rd)
	if err != nil {
		return 0, nil, nil, err
	}
	if req.body != nil {
		if req.form {
			hr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		} else {
			hr.Header.Set("Content-Type", "application/json")
		}
	}
	hr.Header.Set("Accept", "application/json")
	hr.Header.Set("User-Agent", c.userAgent)
	if !req.noAuth && c.key != "" {
		hr.Header.Set("Authorization", "Bearer "+c.key)
	}
	resp, err := c.http.Do(hr)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return 0, nil, nil, err
	}
	return resp.StatusCode, resp.Header, body, nil
}

// sleep waits before retry i (1-based), or returns ctx's error.
func (c *Client) sleep(ctx context.Context, i int) error {
	d := c.backoff << (i - 1)
	d = min(d, 2*time.Second)
	d = d/2 + rand.N(d/2+1) // jitter in [d/2, d]
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// sanitize renders a transport error without anything secret in it: the
// key is only ever in a header, but be certain, and drop URL userinfo.
func sanitize(err error, secrets ...string) string {
	msg := err.Error()
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil {
			u.User = nil
			u.RawQuery = ""
			msg = fmt.Sprintf("%s %q: %v", ue.Op, u.String(), ue.Err)
		}
	}
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
		}
	}
	return msg
}

func jsonBody(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("client: marshal request: " + err.Error()) // only our own types are marshalled
	}
	return b
}

// seg escapes one path segment.
func seg(s string) string { return url.PathEscape(s) }

// Package webhooksend posts webhook deliveries for the authority's
// dispatcher (authority.WebhookSender), guarding against server-side
// request forgery: a target must be http or https, its address (every
// address its name resolves to, checked at connect time, so a DNS answer
// that changes between check and use cannot slip through) must not be
// loopback, private, link-local, unspecified, multicast, shared (CGNAT) or
// otherwise reserved unless AllowPrivate is set, no proxy is used, and
// redirects are not followed (a 3xx answer is a failed attempt).
package webhooksend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"

	"github.com/keyward/keyward/internal/authority"
)

// DefaultTimeout bounds one attempt, well inside authority.WebhookLease.
const DefaultTimeout = 10 * time.Second

// Options configure a Sender.
type Options struct {
	// AllowPrivate lets deliveries reach private, loopback and link-local
	// addresses (--webhook-allow-private; tests, and receivers on the
	// same network by the operator's choice).
	AllowPrivate bool
	Timeout      time.Duration // DefaultTimeout when 0
	UserAgent    string
}

// Sender is an authority.WebhookSender over HTTP.
type Sender struct {
	client *http.Client
	ua     string
}

var _ authority.WebhookSender = (*Sender)(nil)

// ErrForbiddenAddress is why a delivery to a refused address failed.
var ErrForbiddenAddress = errors.New("the webhook target resolves to a private, loopback or reserved address (see --webhook-allow-private)")

// New returns a Sender.
func New(o Options) *Sender {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.UserAgent == "" {
		o.UserAgent = "keyward-webhooks"
	}
	d := &net.Dialer{Timeout: o.Timeout, Control: func(_, address string, _ syscall.RawConn) error {
		if o.AllowPrivate {
			return nil
		}
		ap, err := netip.ParseAddrPort(address)
		if err != nil || Forbidden(ap.Addr()) {
			return ErrForbiddenAddress
		}
		return nil
	}}
	tr := &http.Transport{
		Proxy:                 nil, // the dialer must see the real target
		DialContext:           d.DialContext,
		TLSHandshakeTimeout:   o.Timeout,
		ResponseHeaderTimeout: o.Timeout,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &Sender{ua: o.UserAgent, client: &http.Client{Transport: tr, Timeout: o.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// reserved are ranges refused besides those netip classifies.
var reserved = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"), // shared address space (CGNAT)
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"), // NAT64 can reach IPv4 private space
	netip.MustParsePrefix("2001:db8::/32"),
}

// Forbidden reports whether a delivery may not reach addr (without
// AllowPrivate).
func Forbidden(addr netip.Addr) bool {
	addr = addr.Unmap()
	if !addr.IsValid() || addr.IsLoopback() || addr.IsPrivate() || addr.IsLinkLocalUnicast() || addr.IsLinkLocalMulticast() ||
		addr.IsInterfaceLocalMulticast() || addr.IsMulticast() || addr.IsUnspecified() {
		return true
	}
	for _, p := range reserved {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// Send posts body with headers; it answers the status, or an error when
// no answer came (the address refused, a timeout, a TLS failure).
func (s *Sender) Send(ctx context.Context, target string, headers map[string]string, body []byte) (int, error) {
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return 0, errors.New("the webhook URL is not http or https")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("User-Agent", s.ua)
	resp, err := s.client.Do(req)
	if err != nil {
		if errors.Is(err, ErrForbiddenAddress) {
			return 0, ErrForbiddenAddress
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is in the delivery log already
		}
		return 0, fmt.Errorf("no answer: %w", err)
	}
	// Drain a little so the connection can be reused; the body is not kept.
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode, nil
}

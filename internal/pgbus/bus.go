package pgbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keyward/keyward/internal/authority"
)

const (
	// DefaultChannel is the channel New uses when given none.
	DefaultChannel = "keyward_invalidate"
	// MaxPayload is the longest JSON payload published as it is; a longer
	// one is replaced by {"all":true}. NOTIFY refuses 8000 bytes or more.
	MaxPayload = 7900
	// maxChannel is the longest identifier PostgreSQL keeps (NAMEDATALEN-1);
	// LISTEN would truncate a longer one, and pg_notify refuse it.
	maxChannel = 63
)

// Timings of the listening connection and of publishes.
const (
	minBackoff     = 50 * time.Millisecond
	maxBackoff     = 2 * time.Second
	connectTimeout = 10 * time.Second
	pingEvery      = 15 * time.Second // ping an idle listening connection this often
	pingTimeout    = 5 * time.Second
	publishTimeout = 5 * time.Second // unless the caller's context ends sooner
	closeTimeout   = time.Second
	publishConns   = 4
	listenerName   = "keyward-pgbus" // application_name, unless the URL sets one
)

// ErrClosed is returned by Publish after Close.
var ErrClosed = errors.New("pgbus: bus closed")

// allPayload is what a too-long invalidation is replaced by.
const allPayload = `{"all":true}`

// Bus is authority.Bus over PostgreSQL LISTEN/NOTIFY; see the package
// documentation. Its methods are safe for concurrent use.
type Bus struct {
	url     string
	channel string
	onError atomic.Pointer[func(error)]

	mu     sync.Mutex
	pool   *pgxpool.Pool // for Publish, created on first use
	closed bool
}

var _ authority.Bus = (*Bus)(nil)

// New returns a Bus on the PostgreSQL server at url (a URL or key=value
// connection string, as pgx accepts) and the given channel, or
// DefaultChannel when channel is empty. It connects on first use: Publish
// through a small pool, Subscribe on its own connection.
func New(url string, channel string) *Bus {
	if channel == "" {
		channel = DefaultChannel
	}
	return &Bus{url: url, channel: channel}
}

// Channel returns the channel the Bus publishes on and listens to.
func (b *Bus) Channel() string { return b.channel }

// SetErrorHandler receives the errors Subscribe recovers from (a failed
// connect, a lost connection), for logging. It is called on Subscribe's
// goroutine and must not block.
func (b *Bus) SetErrorHandler(f func(error)) { b.onError.Store(&f) }

func (b *Bus) reportError(err error) {
	if f := b.onError.Load(); f != nil && *f != nil {
		(*f)(err)
	}
}

// checkChannel rejects a channel name LISTEN and pg_notify would not agree
// on.
func (b *Bus) checkChannel() error {
	switch {
	case len(b.channel) > maxChannel:
		return fmt.Errorf("pgbus: channel name longer than %d bytes", maxChannel)
	case strings.ContainsRune(b.channel, 0):
		return errors.New("pgbus: channel name holds a NUL byte")
	}
	return nil
}

// Publish sends inv to every node listening on the channel. It waits at
// most five seconds unless ctx ends sooner.
func (b *Bus) Publish(ctx context.Context, inv authority.Invalidation) error {
	if err := b.checkChannel(); err != nil {
		return err
	}
	payload, err := encode(inv)
	if err != nil {
		return err
	}
	pool, err := b.publisher()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	if _, err := pool.Exec(ctx, "SELECT pg_notify($1, $2)", b.channel, payload); err != nil {
		return fmt.Errorf("pgbus: publish: %w", err)
	}
	return nil
}

// encode returns inv as JSON, or {"all":true} when that is too long to
// notify.
func encode(inv authority.Invalidation) (string, error) {
	p, err := json.Marshal(inv)
	if err != nil {
		return "", fmt.Errorf("pgbus: encode invalidation: %w", err)
	}
	if len(p) > MaxPayload {
		return allPayload, nil
	}
	return string(p), nil
}

// decode reads a payload back. One it cannot read, sent by something else
// on the channel, drops everything: a missed invalidation is the only
// unsafe outcome.
func decode(payload string) authority.Invalidation {
	var inv authority.Invalidation
	if err := json.Unmarshal([]byte(payload), &inv); err != nil {
		return authority.Invalidation{All: true}
	}
	return inv
}

// publisher returns the publishing pool, creating it on first use.
func (b *Bus) publisher() (*pgxpool.Pool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	if b.pool != nil {
		return b.pool, nil
	}
	cfg, err := pgxpool.ParseConfig(b.url)
	if err != nil {
		return nil, fmt.Errorf("pgbus: %w", err)
	}
	cfg.MaxConns = publishConns
	cfg.MinConns = 0
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("pgbus: %w", err)
	}
	b.pool = pool
	return pool, nil
}

// Close closes the publishing pool; Publish fails afterwards. A running
// Subscribe is ended by its context, not by Close.
func (b *Bus) Close() {
	b.mu.Lock()
	pool := b.pool
	b.pool, b.closed = nil, true
	b.mu.Unlock()
	if pool != nil {
		pool.Close()
	}
}

// Subscribe listens on the channel and delivers each invalidation until ctx
// ends, reconnecting after failures; see the package documentation. It
// calls connected(true) each time LISTEN has succeeded and connected(false)
// each time that connection is then lost (not when ctx ends). It returns
// nil when ctx ends, or at once an error for a URL or channel that can
// never work.
func (b *Bus) Subscribe(ctx context.Context, deliver func(authority.Invalidation), connected func(bool)) error {
	if err := b.checkChannel(); err != nil {
		return err
	}
	cfg, err := pgx.ParseConfig(b.url)
	if err != nil {
		return fmt.Errorf("pgbus: %w", err)
	}
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = listenerName
	}
	listen := "LISTEN " + pgx.Identifier{b.channel}.Sanitize()

	backoff := minBackoff
	for {
		conn, err := b.listen(ctx, cfg, listen)
		if err == nil {
			since := time.Now()
			connected(true)
			err = receive(ctx, conn, deliver)
			closeConn(conn)
			if ctx.Err() != nil {
				return nil
			}
			connected(false)
			// A connection that lasted resets the backoff; one that fails
			// as soon as it is made keeps backing off.
			if time.Since(since) >= maxBackoff {
				backoff = minBackoff
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		b.reportError(err)
		// Wait between half the backoff and all of it, so nodes that lost
		// the server together do not reconnect in step.
		wait := backoff/2 + rand.N(backoff/2+1)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// listen connects and runs LISTEN.
func (b *Bus) listen(ctx context.Context, cfg *pgx.ConnConfig, listen string) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgbus: connect: %w", err)
	}
	if _, err := conn.Exec(ctx, listen); err != nil {
		closeConn(conn)
		return nil, fmt.Errorf("pgbus: listen: %w", err)
	}
	return conn, nil
}

// receive delivers notifications until the connection fails or ctx ends.
// An idle connection is pinged every pingEvery, so a dead one is noticed.
func receive(ctx context.Context, conn *pgx.Conn, deliver func(authority.Invalidation)) error {
	for {
		wctx, cancel := context.WithTimeout(ctx, pingEvery)
		n, err := conn.WaitForNotification(wctx)
		idle := wctx.Err() != nil
		cancel()
		if n != nil {
			deliver(decode(n.Payload))
		}
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return ctx.Err()
		case idle && !conn.IsClosed():
			pctx, cancel := context.WithTimeout(ctx, pingTimeout)
			err := conn.Ping(pctx)
			cancel()
			if err != nil && ctx.Err() == nil {
				return fmt.Errorf("pgbus: ping: %w", err)
			}
		default:
			return fmt.Errorf("pgbus: wait for notification: %w", err)
		}
	}
}

func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	conn.Close(ctx)
}

package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyward/keyward/internal/credential"
)

// A PostgreSQL server that stops answering without closing its
// connections (a hung host, a partition) would hold every call, and every
// pool connection, for as long as TCP takes to give up: minutes. A
// per-call deadline would also cut calls that are merely queued behind a
// burst, so instead a probe on a connection of its own asks the server
// every second. When two probes in a row go unanswered and no call got an
// answer meanwhile either (an overloaded server is slow, but answers
// someone), the store declares an outage: calls in flight are cancelled and
// new ones fail at once, all with CodeUnavailable, until a probe is
// answered again.
const (
	probeEvery    = time.Second
	probeTimeout  = 2 * time.Second
	probeFailures = 2 // consecutive unanswered probes that declare an outage
)

// errNotAnswering is the cause of the calls an outage cancels.
var errNotAnswering = errors.New("the database does not answer")

var errOutage = credential.Wrap(credential.CodeUnavailable, errNotAnswering, "database unreachable")

// outageWatch probes the database and cancels calls during an outage.
type outageWatch struct {
	probe *sql.DB // its own connections, so a busy pool never delays a probe

	answered atomic.Int64 // when a call last got an answer, Unix nanoseconds

	mu     sync.Mutex
	down   bool
	outage context.Context // cancelled when an outage is declared
	cancel context.CancelCauseFunc

	stop context.CancelFunc
	done chan struct{}
}

func startOutageWatch(probe *sql.DB) *outageWatch {
	probe.SetMaxOpenConns(2) // the watch, and Ping (the readiness check)
	ctx, stop := context.WithCancel(context.Background())
	w := &outageWatch{probe: probe, stop: stop, done: make(chan struct{})}
	w.outage, w.cancel = context.WithCancelCause(context.Background())
	go w.run(ctx)
	return w
}

func (w *outageWatch) run(ctx context.Context) {
	defer close(w.done)
	t := time.NewTicker(probeEvery)
	defer t.Stop()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		asked := time.Now().UnixNano()
		err := w.ping(ctx)
		switch {
		case err == nil:
			failures = 0
			w.setDown(false)
		case ctx.Err() != nil:
		case w.answered.Load() >= asked:
			failures = 0 // slow, not gone: calls still get answers
		default:
			failures++
			if failures >= probeFailures {
				w.setDown(true)
			}
		}
	}
}

// sawAnswer records that a call got an answer from the server.
func (w *outageWatch) sawAnswer() { w.answered.Store(time.Now().UnixNano()) }

func (w *outageWatch) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	return w.probe.PingContext(ctx)
}

func (w *outageWatch) setDown(down bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case down && !w.down:
		w.cancel(errNotAnswering) // every call in flight
	case !down && w.down:
		w.outage, w.cancel = context.WithCancelCause(context.Background())
	}
	w.down = down
}

// bind returns ctx, also cancelled if an outage is declared before release
// is called; during an outage it fails at once.
func (w *outageWatch) bind(ctx context.Context) (context.Context, func(), error) {
	w.mu.Lock()
	down, outage := w.down, w.outage
	w.mu.Unlock()
	if down {
		return nil, nil, errOutage
	}
	ctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(outage, func() { cancel(errNotAnswering) })
	return ctx, func() { stop(); cancel(nil) }, nil
}

func (w *outageWatch) isDown() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.down
}

// Close stops the probe and closes its connections.
func (w *outageWatch) Close() error {
	w.stop()
	<-w.done
	return w.probe.Close()
}

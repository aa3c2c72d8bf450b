package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"math"
	"sync/atomic"
	"time"

	"github.com/keyward/keyward/internal/authority"
)

// Expired windows are swept at most once per sweepEvery of the callers'
// clock, for each Limiter, and only once they ended at least sweepGrace
// before the sweeping call's window started, so a node whose clock lags
// another's by less than that keeps its windows.
const (
	sweepEvery = time.Minute
	sweepGrace = time.Minute
)

// Limiter returns an authority.Limiter whose windows live in the database,
// so every node sharing it shares the counts, or nil on SQLite: a SQLite
// store serves a single node, which keeps counting in memory
// (inmem.Limiter). Each call returns a new Limiter with its own sweep
// schedule; call it once and keep the result.
//
// Each Take is one atomic statement,
//
//	INSERT … ON CONFLICT (key, window_start) DO UPDATE SET count = count + 1
//	WHERE count < limit RETURNING count
//
// so concurrent calls on any number of nodes never admit more than limit in
// a window, and a refused call is not counted. A refused call returns no row
// and reports limit as the count, without a second round trip (the stored
// count can be higher only if limit was lowered within the window). A limit
// of zero or less admits and counts every call.
//
// Windows are rows keyed by key and start (in Unix milliseconds), so a new
// window starts at zero and a late call for an earlier window still counts
// against that window while its row exists. The caller's times are the only
// clock: at most once a minute of them, a Take also deletes the windows that
// ended more than a minute before its window started.
func (s *Store) Limiter() authority.Limiter {
	if s.d.name != "postgres" {
		return nil
	}
	l := &limiter{db: s.writer, d: s.d}
	l.nextSweep.Store(math.MinInt64)
	l.nextNamedSweep.Store(math.MinInt64)
	return l
}

// limiter is the PostgreSQL authority.Limiter; see Store.Limiter.
type limiter struct {
	db        *sql.DB
	d         *dialect
	nextSweep atomic.Int64 // Unix ms of the callers' clock when a sweep is next due

	nextNamedSweep atomic.Int64 // the same, for TakeAll's windows (limits.go)
}

var _ authority.Limiter = (*limiter)(nil)

const takeQuery = `INSERT INTO rate_windows (key, window_start, window_end, count) VALUES (?, ?, ?, 1)
	ON CONFLICT (key, window_start) DO UPDATE SET count = rate_windows.count + 1
	WHERE rate_windows.count < ?
	RETURNING count`

// Take admits one call against key in the window [start, end) if fewer than
// limit calls were admitted in it; see Store.Limiter.
func (l *limiter) Take(ctx context.Context, key string, limit int, start, end time.Time) (bool, int, error) {
	if err := ctx.Err(); err != nil {
		return false, 0, err
	}
	if !end.After(start) {
		return false, 0, errors.New("sqlstore: rate-limit window must end after it starts")
	}
	s, e := start.UnixMilli(), end.UnixMilli()
	if e <= s {
		e = s + 1 // a sub-millisecond window still ends after it starts
	}
	ceiling := int64(math.MaxInt64) // no limit: count < ceiling always holds
	if limit > 0 {
		ceiling = int64(limit)
	}

	var count int64
	err := l.db.QueryRowContext(ctx, l.d.rebind(takeQuery), key, s, e, ceiling).Scan(&count)
	admitted := true
	switch {
	case errors.Is(err, sql.ErrNoRows):
		// The row exists and is full: the update's WHERE refused the call.
		admitted, count = false, ceiling
	case err != nil:
		return false, 0, translate(err, "rate window")
	}
	l.sweep(ctx, s)
	return admitted, int(min(count, math.MaxInt)), nil
}

// sweep deletes the windows that ended sweepGrace before now, if a sweep is
// due; one caller of the Limiter wins the due sweep and the others carry on.
// It is opportunistic: a failure leaves the rows for the next sweep.
func (l *limiter) sweep(ctx context.Context, now int64) {
	due := l.nextSweep.Load()
	if now < due || !l.nextSweep.CompareAndSwap(due, now+sweepEvery.Milliseconds()) {
		return
	}
	_, _ = l.db.ExecContext(ctx, l.d.rebind("DELETE FROM rate_windows WHERE window_end < ?"),
		now-sweepGrace.Milliseconds())
}

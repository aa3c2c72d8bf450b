package sqlstore

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/keyward/keyward/internal/authority"
)

// takeAllAttempts bounds how often a TakeAll is retried after PostgreSQL
// aborted it as a deadlock victim or a serialization failure. The rows are
// locked in one global order, so neither is expected; the retry keeps a
// surprise from reaching a verify.
const takeAllAttempts = 3

// limitRow is one window row a TakeAll locks: a take's current window, or
// a sliding take's previous one.
type limitRow struct {
	key           string
	window, start int64 // Unix ms
	keepUntil     int64 // Unix ms
	take          int   // index into the takes
	prev          bool  // the take's previous window
}

// TakeAll counts the named limits takes at now, all or nothing (see
// authority.Limiter), in one transaction on the limit_windows table:
//
//  1. INSERT … VALUES (every window row, count 0) ON CONFLICT DO UPDATE
//     SET keep_until = GREATEST(…) RETURNING count. On a conflict
//     PostgreSQL locks the existing row and returns its latest committed
//     version, whatever the transaction's snapshot; a new row is locked by
//     being inserted. The rows are listed, and so locked, in one global
//     order (key bytewise, window length, window start; a take's previous
//     window before its current one), so two TakeAlls cannot deadlock.
//  2. Every take is checked against those counts (authority.LimitPlan.Fits).
//  3. Only if all fit and some cost is non-zero: one UPDATE adds each
//     cost to its current window, and the transaction commits. Otherwise
//     it rolls back and nothing (not even an empty row) is left.
//
// Every row a decision reads stays locked until the decision is committed
// or dropped, so concurrent TakeAlls on any number of nodes are
// serialised per row and never over-admit. A sliding take also locks its
// previous window, which a node whose clock lags could still be counting.
func (l *limiter) TakeAll(ctx context.Context, now time.Time, takes []authority.LimitTake) (bool, []authority.LimitState, error) {
	if err := ctx.Err(); err != nil {
		return false, nil, err
	}
	plans, err := authority.PlanLimits(now, takes)
	if err != nil {
		return false, nil, err
	}
	if len(takes) == 0 {
		return true, nil, nil
	}
	rows := make([]limitRow, 0, 2*len(takes))
	for i, t := range takes {
		p := plans[i]
		if p.Sliding {
			rows = append(rows, limitRow{t.Key, p.Window, p.PrevStart(), p.End(), i, true})
		}
		rows = append(rows, limitRow{t.Key, p.Window, p.Start, p.KeepUntil(), i, false})
	}
	slices.SortFunc(rows, func(a, b limitRow) int {
		return cmp.Or(strings.Compare(a.key, b.key), cmp.Compare(a.window, b.window), cmp.Compare(a.start, b.start))
	})

	var admitted bool
	cur, prev := make([]int64, len(takes)), make([]int64, len(takes))
	for attempt := 1; ; attempt++ {
		admitted, err = l.takeAll(ctx, takes, plans, rows, cur, prev)
		var pgErr *pgconn.PgError
		if attempt < takeAllAttempts && errors.As(err, &pgErr) &&
			(pgErr.Code == pgDeadlockDetected || pgErr.Code == pgSerializationFailure) && ctx.Err() == nil {
			continue
		}
		break
	}
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return false, nil, cerr
		}
		return false, nil, translate(err, "rate window")
	}
	l.sweepNamed(ctx, now.UnixMilli())
	return admitted, authority.LimitStates(now, takes, plans, cur, prev), nil
}

// takeAll is one attempt of TakeAll's transaction; it fills cur and prev
// with the counts after the call.
func (l *limiter) takeAll(ctx context.Context, takes []authority.LimitTake, plans []authority.LimitPlan, rows []limitRow, cur, prev []int64) (bool, error) {
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()

	var q strings.Builder
	args := make([]any, 0, 4*len(rows))
	q.WriteString("INSERT INTO limit_windows (key, window_ms, window_start, keep_until, count) VALUES ")
	for i, r := range rows {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(?, ?, ?, ?, 0)")
		args = append(args, r.key, r.window, r.start, r.keepUntil)
	}
	q.WriteString(` ON CONFLICT (key, window_ms, window_start) DO UPDATE
	SET keep_until = GREATEST(limit_windows.keep_until, EXCLUDED.keep_until)
	RETURNING key, window_ms, window_start, count`)
	res, err := tx.QueryContext(ctx, l.d.rebind(q.String()), args...)
	if err != nil {
		return false, err
	}
	n := 0
	for res.Next() {
		var (
			key           string
			window, start int64
			count         int64
		)
		if err := res.Scan(&key, &window, &start, &count); err != nil {
			res.Close()
			return false, err
		}
		// RETURNING does not promise the VALUES order: match by the key.
		i := slices.IndexFunc(rows, func(r limitRow) bool { return r.key == key && r.window == window && r.start == start })
		if i < 0 {
			res.Close()
			return false, errors.New("sqlstore: rate-limit upsert returned a row it was not given")
		}
		if r := rows[i]; r.prev {
			prev[r.take] = count
		} else {
			cur[r.take] = count
		}
		n++
	}
	if err := res.Close(); err != nil {
		return false, err
	}
	if err := res.Err(); err != nil {
		return false, err
	}
	if n != len(rows) {
		return false, errors.New("sqlstore: rate-limit upsert returned fewer rows than it was given")
	}

	costs := false
	for i, t := range takes {
		if !plans[i].Fits(t, cur[i], prev[i]) {
			return false, nil // rolled back: nothing counted, no row left
		}
		costs = costs || t.Cost > 0
	}
	if !costs {
		return true, nil
	}
	q.Reset()
	args = args[:0]
	q.WriteString("UPDATE limit_windows SET count = limit_windows.count + v.cost FROM (VALUES ")
	first := true
	for i, t := range takes {
		if t.Cost == 0 {
			continue
		}
		if !first {
			q.WriteString(", ")
		}
		first = false
		q.WriteString("(?::text, ?::bigint, ?::bigint, ?::bigint)")
		args = append(args, t.Key, plans[i].Window, plans[i].Start, t.Cost)
	}
	q.WriteString(`) AS v (key, window_ms, window_start, cost)
	WHERE limit_windows.key = v.key AND limit_windows.window_ms = v.window_ms AND limit_windows.window_start = v.window_start`)
	if _, err := tx.ExecContext(ctx, l.d.rebind(q.String()), args...); err != nil {
		return false, err
	}
	if err := tx.Commit(); err != nil {
		return false, err
	}
	for i, t := range takes {
		cur[i] += t.Cost
	}
	return true, nil
}

// sweepNamed deletes the named-limit windows no call can need any more
// (kept until sweepGrace before now), if a sweep is due; see sweep.
func (l *limiter) sweepNamed(ctx context.Context, now int64) {
	due := l.nextNamedSweep.Load()
	if now < due || !l.nextNamedSweep.CompareAndSwap(due, now+sweepEvery.Milliseconds()) {
		return
	}
	_, _ = l.db.ExecContext(ctx, l.d.rebind("DELETE FROM limit_windows WHERE keep_until < ?"),
		now-sweepGrace.Milliseconds())
}

package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
)

// sqlRunner is what a tx runs its statements on: its *sql.Tx, or in a
// PostgreSQL group commit the batch's pipelining connection (pgbatch.go).
type sqlRunner interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

// tx implements authority.Tx over one database transaction.
type tx struct {
	// sqlTx is the transaction, except in a PostgreSQL group commit,
	// which runs on pg instead.
	sqlTx *sql.Tx
	pg    *pgBatch
	d     *dialect
	// detached: the transaction is a group commit's, shared by several
	// callers, so a caller's cancellation must not reach the driver (on
	// SQLite an interrupted statement may roll back the whole
	// transaction, the other callers' writes with it).
	detached bool
	// prepared holds the statements prepared once on the transaction's
	// pool (SQLite only), by query text.
	prepared map[string]*sql.Stmt
	// chains holds a group commit's audit chain heads (nil outside one).
	chains *batchChains
	// batchCtx, in a PostgreSQL group commit, is the batch's own context,
	// which only an outage cancels: statements run under it instead of
	// under a caller's, which must not cut the others' writes.
	batchCtx context.Context
	// hold, in a PostgreSQL batch's pass without savepoints, holds new
	// credential and audit rows back (see held.go) and writes them
	// together before the next statement that could see them or the
	// COMMIT; flushFailed
	// records that writing them failed, which only a careful pass can
	// pin on a closure.
	hold            bool
	heldCredentials []credential.Credential
	heldAudit       []credential.AuditEvent
	flushFailed     bool
	// hooks, in a group commit's pass, hold the work its closures leave
	// for their commit or settlement (authority.RunHooks); nil elsewhere,
	// where every closure runs once and the work runs at once.
	hooks *passHooks
}

// passHooks is the work a pass's closures leave for later.
type passHooks struct {
	// beforeCommit is the BeforeCommit work waiting for the pass's end (or,
	// in a careful pass, for the end of the closure running now).
	beforeCommit []func() error
	// settled is the Settled work of the closure running now.
	settled []func()
}

var _ authority.RunHooks = (*tx)(nil)

// BeforeCommit implements authority.RunHooks.
func (t *tx) BeforeCommit(f func() error) error {
	if t.hooks == nil {
		return f()
	}
	t.hooks.beforeCommit = append(t.hooks.beforeCommit, f)
	return nil
}

// Settled implements authority.RunHooks.
func (t *tx) Settled(f func()) {
	if t.hooks == nil {
		f()
		return
	}
	t.hooks.settled = append(t.hooks.settled, f)
}

var _ authority.Tx = (*tx)(nil)

// runner is what the statements run on.
func (t *tx) runner() sqlRunner {
	if t.pg != nil {
		return t.pg
	}
	return t.sqlTx
}

// stmtCtx is the context statements run under.
func (t *tx) stmtCtx(ctx context.Context) context.Context {
	if t.detached {
		if t.batchCtx != nil {
			return t.batchCtx
		}
		return context.WithoutCancel(ctx)
	}
	return ctx
}

// SQLite parses a statement in about as long as it runs a small one, so
// the hot statements are prepared once per connection and reused: a
// statement prepared on the pool is bound to the transaction's connection
// by Tx.StmtContext, which prepares it there only the first time.

func (t *tx) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if err := t.flushHeldBefore(ctx, query); err != nil {
		return nil, err
	}
	ctx = t.stmtCtx(ctx)
	if st, ok := t.prepared[query]; ok && t.sqlTx != nil {
		return t.sqlTx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return t.runner().ExecContext(ctx, t.d.rebind(query), args...)
}

func (t *tx) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if err := t.flushHeldBefore(ctx, query); err != nil {
		return nil, err
	}
	ctx = t.stmtCtx(ctx)
	if st, ok := t.prepared[query]; ok && t.sqlTx != nil {
		return t.sqlTx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	return t.runner().QueryContext(ctx, t.d.rebind(query), args...)
}

func (t *tx) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	// A failed flush leaves the PostgreSQL transaction aborted, so the
	// query fails too, and its Row carries that error.
	_ = t.flushHeldBefore(ctx, query)
	ctx = t.stmtCtx(ctx)
	if st, ok := t.prepared[query]; ok && t.sqlTx != nil {
		return t.sqlTx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return t.runner().QueryRowContext(ctx, t.d.rebind(query), args...)
}

// prepare returns query as a statement of the transaction, reusing the
// connection's prepared one when there is one. Close it after use.
//
// The statement does not write held rows before each run, as exec does:
// its user runs it in a loop that holds none.
func (t *tx) prepare(ctx context.Context, query string) (*sql.Stmt, error) {
	if err := t.flushHeld(ctx, false); err != nil {
		return nil, err
	}
	if st, ok := t.prepared[query]; ok && t.sqlTx != nil {
		return t.sqlTx.StmtContext(ctx, st), nil
	}
	return t.runner().PrepareContext(ctx, t.d.rebind(query))
}

// execOne runs a statement that must touch a row, and reports CodeNotFound
// when it touched none.
func (t *tx) execOne(ctx context.Context, what, query string, args ...any) error {
	res, err := t.exec(ctx, query, args...)
	if err != nil {
		return translate(err, what)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return translate(err, what)
	}
	if n == 0 {
		return notFound(what)
	}
	return nil
}

// count runs a SELECT COUNT(*) query.
func (t *tx) count(ctx context.Context, what, query string, args ...any) (int, error) {
	var n int
	if err := t.queryRow(ctx, query, args...).Scan(&n); err != nil {
		return 0, translate(err, what)
	}
	return n, nil
}

// queryAll runs query and appends one scanned value per row.
func queryAll[T any](ctx context.Context, t *tx, what string, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := t.query(ctx, query, args...)
	if err != nil {
		return nil, translate(err, what)
	}
	defer rows.Close()
	var all []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, translate(err, what)
		}
		all = append(all, v)
	}
	if err := rows.Err(); err != nil {
		return nil, translate(err, what)
	}
	return all, nil
}

// scanner is what *sql.Row and *sql.Rows have in common.
type scanner interface {
	Scan(dest ...any) error
}

// millis is the stored form of a time: Unix milliseconds, or NULL for the
// zero time.
func millis(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

// timeScanner reads what millis wrote back into *t, in UTC.
type timeScanner struct{ t *time.Time }

func scanTime(t *time.Time) timeScanner { return timeScanner{t} }

func (s timeScanner) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*s.t = time.Time{}
	case int64:
		*s.t = time.UnixMilli(v).UTC()
	default:
		return fmt.Errorf("sqlstore: time column holds %T", src)
	}
	return nil
}

// placeholders returns "?, ?, ..." for n values.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// stringArgs converts ids to query arguments.
func stringArgs(ids []string) []any {
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	return args
}

// pageLimit maps "no limit" (≤ 0) to a LIMIT both engines accept.
func pageLimit(limit int) int64 {
	if limit <= 0 {
		return math.MaxInt64
	}
	return int64(limit)
}

// escapeLike makes s match itself literally in a LIKE pattern with
// ESCAPE '\'.
func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// asciiLower lowers the ASCII letters of s and leaves every other rune, as
// SQLite's LOWER does.
func asciiLower(s string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + ('a' - 'A')
		}
		return r
	}, s)
}

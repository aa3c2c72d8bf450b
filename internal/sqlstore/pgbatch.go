package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/keyward/keyward/internal/credential"
)

// A PostgreSQL group commit's transaction, pipelined. Every statement of a
// batch is a round trip, and the batch holds its instance's audit chain
// head, so the next batch waits for all of them: on a virtual machine each
// costs a wake-up of the server and of keyward, about a tenth of a
// millisecond or more each way. Of the five a batch of creates made (BEGIN,
// the head's read, the webhook endpoints' read, the held rows, COMMIT),
// two ride with another: BEGIN is sent with the head's read, the batch's
// first statement, and COMMIT with the held rows and chain heads, its
// last, when no BeforeCommit work (an audit log line) must come between
// them. Pipelined statements run as they would one after another; after
// one fails, PostgreSQL skips the rest up to the pipeline's end.
//
// The transaction runs on a connection taken from the pool (database/sql
// has no way to pipeline a *sql.Tx's statements), with BEGIN and COMMIT
// sent as statements: the batch must leave it idle, and rolls back or
// discards it otherwise (see close).
type pgBatch struct {
	conn *sql.Conn
	// ctx is what the batch's statements run under: the batch's own
	// context (cancelled in an outage), cancelled at close, which closes
	// any rows a closure left open so that the connection can be put back.
	ctx    context.Context
	cancel context.CancelFunc
	begun  bool
	// err is a BEGIN that failed: every later statement of the batch
	// fails with it rather than run outside the transaction.
	err error
	// answered is told when the server answered (the outage watch).
	answered func()
}

var _ sqlRunner = (*pgBatch)(nil)

func newPGBatch(ctx context.Context, db *sql.DB, answered func()) (*pgBatch, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	return &pgBatch{conn: conn, ctx: ctx, cancel: cancel, answered: answered}, nil
}

// begin sends BEGIN unless the transaction has begun.
func (b *pgBatch) begin(ctx context.Context) error {
	if b.err != nil || b.begun {
		return b.err
	}
	if _, err := b.conn.ExecContext(ctx, "BEGIN"); err != nil {
		b.err = err
		return err
	}
	b.begun = true
	b.answered()
	return nil
}

func (b *pgBatch) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if err := b.begin(ctx); err != nil {
		return nil, err
	}
	return b.conn.ExecContext(ctx, query, args...)
}

func (b *pgBatch) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if err := b.begin(ctx); err != nil {
		return nil, err
	}
	return b.conn.QueryContext(ctx, query, args...)
}

func (b *pgBatch) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if err := b.begin(ctx); err != nil {
		// A Row cannot be made with an error; this one fails with a
		// cancelled context's before it reaches the server.
		failed, cancel := context.WithCancel(ctx)
		cancel()
		return b.conn.QueryRowContext(failed, query, args...)
	}
	return b.conn.QueryRowContext(ctx, query, args...)
}

func (b *pgBatch) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	if err := b.begin(ctx); err != nil {
		return nil, err
	}
	return b.conn.PrepareContext(ctx, query)
}

// pgx runs f on the batch's pgx connection.
func (b *pgBatch) pgx(f func(*pgx.Conn) error) error {
	return b.conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("sqlstore: a PostgreSQL connection is a %T", dc)
		}
		return f(c.Conn())
	})
}

// beginReadingHead is BEGIN and query (the chain head's read, which
// scans into dest) in one round trip, when the transaction has not
// begun; begun reports whether it had (the caller then reads the head
// itself).
func (b *pgBatch) beginReadingHead(ctx context.Context, query string, instanceID string, dest ...any) (begun bool, err error) {
	if b.err != nil || b.begun {
		return true, b.err
	}
	err = b.pgx(func(c *pgx.Conn) error {
		var batch pgx.Batch
		batch.Queue("BEGIN")
		batch.Queue(query, instanceID)
		res := c.SendBatch(ctx, &batch)
		_, beginErr := res.Exec()
		readErr := res.QueryRow().Scan(dest...)
		closeErr := res.Close()
		if beginErr == nil {
			b.begun = true
			b.answered()
		} else {
			b.err = beginErr
			return beginErr
		}
		if errors.Is(readErr, pgx.ErrNoRows) {
			readErr = sql.ErrNoRows
		}
		return errors.Join(readErr, closeErr)
	})
	return false, err
}

// pgStatement is one statement of a pipeline, in PostgreSQL's placeholders.
type pgStatement struct {
	query string
	args  []any
}

// commitWith runs stmts and COMMIT in one round trip (with BEGIN first if
// the transaction has not begun). stmtErr is a statement that PostgreSQL
// refused: it skipped the rest, COMMIT with them, and nothing committed.
// Any other failure is commitErr, as is a COMMIT that rolled back (the
// transaction had failed): once the pipeline is sent, a broken connection
// or an outage may have cut it after COMMIT ran, so whether it committed
// is unknown, and the batch must not run again.
func (b *pgBatch) commitWith(ctx context.Context, stmts []pgStatement) (stmtErr, commitErr error) {
	if b.err != nil {
		return b.err, nil
	}
	err := b.pgx(func(c *pgx.Conn) error {
		var batch pgx.Batch
		if !b.begun {
			batch.Queue("BEGIN")
		}
		for _, s := range stmts {
			batch.Queue(s.query, s.args...)
		}
		batch.Queue("COMMIT")
		res := c.SendBatch(ctx, &batch)
		for range len(batch.QueuedQueries) - 1 {
			if _, err := res.Exec(); err != nil {
				if refused(err) {
					stmtErr = err
				} else {
					commitErr = err
				}
				return res.Close()
			}
		}
		tag, err := res.Exec()
		commitErr = committed(tag.String(), err)
		return res.Close()
	})
	if err != nil && stmtErr == nil {
		commitErr = errors.Join(commitErr, err)
	}
	if stmtErr == nil && commitErr == nil {
		b.answered()
	}
	return stmtErr, commitErr
}

// refused reports whether PostgreSQL answered a statement with an error
// (rather than the connection failing).
func refused(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr)
}

// commit sends COMMIT alone.
func (b *pgBatch) commit(ctx context.Context) error {
	if err := b.begin(ctx); err != nil {
		return err
	}
	return b.pgx(func(c *pgx.Conn) error {
		tag, err := c.Exec(ctx, "COMMIT")
		return committed(tag.String(), err)
	})
}

// committed is COMMIT's outcome: PostgreSQL answers the COMMIT of a
// failed transaction with ROLLBACK, and no error.
func committed(tag string, err error) error {
	if err == nil && tag == "ROLLBACK" {
		return credential.Errorf(credential.CodeInternal, "sqlstore: the transaction failed and was rolled back at COMMIT")
	}
	return err
}

// close returns the connection to the pool idle: a transaction left open
// (a failure, a batch with nothing to commit) is rolled back, and a
// connection that cannot be, or that an outage cut off (a ROLLBACK would
// wait for a server that does not answer), is discarded.
func (b *pgBatch) close() {
	outage := b.ctx.Err() != nil
	b.cancel()
	_ = b.pgx(func(c *pgx.Conn) error {
		pc := c.PgConn()
		if pc.IsClosed() {
			return driver.ErrBadConn
		}
		if pc.TxStatus() == 'I' {
			return nil
		}
		if outage {
			return driver.ErrBadConn
		}
		ctx, cancel := context.WithTimeout(context.Background(), pingTimeout)
		defer cancel()
		if _, err := pc.Exec(ctx, "ROLLBACK").ReadAll(); err != nil || pc.TxStatus() != 'I' {
			return driver.ErrBadConn
		}
		return nil
	})
	b.conn.Close()
}

package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"

	"github.com/keyward/keyward/internal/credential"
)

// SQLite result codes; modernc reports extended codes, whose low byte is
// the primary code.
const (
	sqliteBusy             = 5
	sqliteLocked           = 6
	sqliteConstraintFK     = 787
	sqliteConstraintPK     = 1555
	sqliteConstraintUnique = 2067
)

// PostgreSQL SQLSTATEs.
const (
	pgUniqueViolation           = "23505"
	pgForeignKeyViolation       = "23503"
	pgTooManyConnections        = "53300"
	pgDeadlockDetected          = "40P01"
	pgSerializationFailure      = "40001"
	pgConnectionClass           = "08"  // connection exception
	pgOperatorInterventionClass = "57P" // shutting down, starting up
)

// translate turns a database error into a *credential.Error. It is the only
// place that knows driver error types. what names the entity for the
// message; messages never carry values, so no secret or digest leaks.
func translate(err error, what string) error {
	var kwErr *credential.Error
	if err == nil || errors.As(err, &kwErr) {
		return err
	}
	if errors.Is(err, sql.ErrNoRows) {
		return notFound(what)
	}
	var liteErr *sqlite.Error
	if errors.As(err, &liteErr) {
		switch code := liteErr.Code(); {
		case code == sqliteConstraintUnique || code == sqliteConstraintPK:
			return credential.Errorf(credential.CodeConflict, "%s already exists", what)
		case code == sqliteConstraintFK:
			return credential.Errorf(credential.CodeNotFound, "%s refers to a missing row", what)
		case code&0xff == sqliteBusy || code&0xff == sqliteLocked:
			return credential.Wrap(credential.CodeUnavailable, err, "database busy")
		}
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == pgUniqueViolation:
			return credential.Errorf(credential.CodeConflict, "%s already exists", what)
		case pgErr.Code == pgForeignKeyViolation:
			return credential.Errorf(credential.CodeNotFound, "%s refers to a missing row", what)
		case strings.HasPrefix(pgErr.Code, pgConnectionClass),
			strings.HasPrefix(pgErr.Code, pgOperatorInterventionClass),
			pgErr.Code == pgTooManyConnections:
			return credential.Wrap(credential.CodeUnavailable, err, "database unreachable")
		}
	}
	if unreachable(err) {
		return credential.Wrap(credential.CodeUnavailable, err, "database unreachable")
	}
	return credential.Wrap(credential.CodeInternal, err, "database error")
}

// unreachable reports whether err says the database could not be reached or
// did not answer in time, rather than that the statement was wrong.
func unreachable(err error) bool {
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	return errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, context.DeadlineExceeded) ||
		errors.As(err, &connectErr) ||
		errors.As(err, &netErr) ||
		pgconn.Timeout(err)
}

func notFound(what string) error {
	return credential.Errorf(credential.CodeNotFound, "%s not found", what)
}

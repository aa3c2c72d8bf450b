// Package testkit gives tests a fresh store on each engine and a fake
// clock, so the same suite runs on SQLite always and on PostgreSQL when
// KEYWARD_TEST_DATABASE_URL names a server.
package testkit

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, for schema setup

	"github.com/keyward/keyward/internal/sqlstore"
)

// DatabaseURLEnv names the PostgreSQL server tests may use. Each test gets
// its own schema there, dropped when it ends.
const DatabaseURLEnv = "KEYWARD_TEST_DATABASE_URL"

// OpenSQLite returns a migrated store on a fresh file in t.TempDir(),
// closed when the test ends.
func OpenSQLite(t testing.TB) *sqlstore.Store {
	t.Helper()
	s, _ := OpenSQLiteAt(t)
	return s
}

// OpenSQLiteAt is OpenSQLite that also returns the database file's path.
func OpenSQLiteAt(t testing.TB) (*sqlstore.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keyward.db")
	s, err := sqlstore.OpenSQLite(context.Background(), path)
	if err != nil {
		t.Fatalf("open sqlite store: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close sqlite store: %v", err)
		}
	})
	return s, path
}

// OpenPostgres returns a migrated store in a fresh schema of the server
// named by KEYWARD_TEST_DATABASE_URL, and skips the test when it is unset.
// The schema is dropped when the test ends.
func OpenPostgres(t testing.TB) *sqlstore.Store {
	t.Helper()
	u := PostgresURL(t)
	s, err := sqlstore.OpenPostgres(context.Background(), u)
	if err != nil {
		t.Fatalf("open postgres store: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close postgres store: %v", err)
		}
	})
	return s
}

// PostgresURL returns the URL of a fresh, empty schema of the server named
// by KEYWARD_TEST_DATABASE_URL (for tests that start keyward itself on
// PostgreSQL), and skips the test when it is unset. The schema is dropped
// when the test ends, after the cleanups registered later.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv(DatabaseURLEnv)
	if base == "" {
		t.Skip(DatabaseURLEnv + " is not set; skipping the PostgreSQL store")
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", DatabaseURLEnv, err)
	}
	schema := "kw_t_" + randomHex(8)

	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	t.Cleanup(func() { admin.Close() })
	ctx := context.Background()
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		if _, err := admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})

	// pgx passes URL parameters it does not know to the server as runtime
	// parameters, so every connection works in the schema.
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// engines lists the engines in the order EachStore runs them.
var engines = []struct {
	name string
	open func(testing.TB) *sqlstore.Store
}{
	{"sqlite", OpenSQLite},
	{"postgres", OpenPostgres},
}

// Stores returns a store opener per engine name.
func Stores() map[string]func(testing.TB) *sqlstore.Store {
	m := make(map[string]func(testing.TB) *sqlstore.Store, len(engines))
	for _, e := range engines {
		m[e.name] = e.open
	}
	return m
}

// EachStore runs fn as the subtests "sqlite" and "postgres", each with a
// fresh store; the postgres one skips unless KEYWARD_TEST_DATABASE_URL is
// set.
func EachStore(t *testing.T, fn func(t *testing.T, s *sqlstore.Store)) {
	t.Helper()
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) { fn(t, e.open(t)) })
	}
}

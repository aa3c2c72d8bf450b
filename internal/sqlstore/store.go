package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/keyward/keyward/internal/authority"
)

//go:embed migrations
var migrations embed.FS

// Store is an authority.Store on SQLite or PostgreSQL.
type Store struct {
	writer *sql.DB // Update
	reader *sql.DB // View; the same pool as writer on PostgreSQL
	d      *dialect
	// watch cancels calls while PostgreSQL does not answer; nil on
	// SQLite, which waits only for its own file lock (busy_timeout).
	watch *outageWatch
	// committer batches Updates (group commit, see groupcommit.go).
	committer *groupCommitter
	// checkpoints, on SQLite, checkpoints the WAL off the writer's path
	// (checkpoint.go); nil on PostgreSQL.
	checkpoints *checkpointer
	// writerStmts and readerStmts are the hot statements prepared on each
	// SQLite pool (pgx caches prepared statements by itself).
	writerStmts, readerStmts map[string]*sql.Stmt
	// readGate admits View and CredentialByDigest to the read pool, and on
	// PostgreSQL also Update (one pool), first come first served.
	readGate fifoGate
}

// fifoGate admits at most cap(g) holders at once, in arrival order. It
// sits in front of a pool of as many connections: database/sql hands a
// freed connection to a random waiter, so under load some requests wait
// round after round, which put a tail of tens of milliseconds on cache
// misses; Go serves blocked channel senders in order.
type fifoGate chan struct{}

func (g fifoGate) enter(ctx context.Context) error {
	select {
	case g <- struct{}{}:
		return nil
	case <-ctx.Done():
		return translate(ctx.Err(), "transaction")
	}
}

func (g fifoGate) leave() { <-g }

// hotWrites and hotReads are the statements of token creation (and of
// every change: its webhook subscriptions), of the last-used flush and of
// the verify cache's miss path.
var (
	hotWrites = []string{insertCredential, touchCredential, insertAuditEvent, ensureChainHead, selectChainHead,
		updateChainHead, savepointBatched, releaseBatched, rollbackToBatched, listWebhooks}
	hotReads = []string{credentialByDigest, getMachine, scopedMachinesQuery(1)}
)

// prepareAll prepares queries on db.
func prepareAll(ctx context.Context, db *sql.DB, queries []string) (map[string]*sql.Stmt, error) {
	stmts := make(map[string]*sql.Stmt, len(queries))
	for _, q := range queries {
		st, err := db.PrepareContext(ctx, q)
		if err != nil {
			for _, st := range stmts {
				st.Close()
			}
			return nil, fmt.Errorf("sqlstore: prepare: %w", err)
		}
		stmts[q] = st
	}
	return stmts, nil
}

var _ authority.Store = (*Store)(nil)

// Open opens the store named by dsn and applies pending migrations. A dsn
// starting with postgres:// or postgresql:// is a PostgreSQL URL; anything
// else is a SQLite file path, optionally prefixed with file: (a path, not a
// URI: no query parameters).
func Open(ctx context.Context, dsn string) (*Store, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		return OpenPostgres(ctx, dsn)
	}
	return OpenSQLite(ctx, strings.TrimPrefix(dsn, "file:"))
}

// OpenSQLite opens (creating it, and its directory, if missing) the SQLite
// database at path and applies pending migrations.
func OpenSQLite(ctx context.Context, path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("sqlstore: create database directory: %w", err)
	}
	// SQLite would create the file world-readable; it holds digests and
	// sealed secrets, so create it private first. The WAL and shared-memory
	// files inherit its mode.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: create database file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("sqlstore: create database file: %w", err)
	}

	uri := "file:" + strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	// temp_store(MEMORY): a group commit runs each closure under a
	// savepoint, whose sub-journal would otherwise be a temporary file
	// written page by page; it is only ever read to roll a savepoint back.
	// wal_autocheckpoint and journal_size_limit: the checkpointer
	// (checkpoint.go) does most of the checkpoints' work off the writer.
	writer, err := sql.Open("sqlite", uri+"?_pragma=busy_timeout("+strconv.Itoa(sqliteBusyTimeoutMs)+")&_pragma=journal_mode(WAL)"+
		"&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)&_pragma=temp_store(MEMORY)&_txlock=immediate"+
		"&_pragma=wal_autocheckpoint("+strconv.Itoa(writerCheckpointPages)+")"+
		"&_pragma=journal_size_limit("+strconv.Itoa(walSizeLimit)+")")
	if err != nil {
		return nil, fmt.Errorf("sqlstore: open sqlite: %w", err)
	}
	// One writer connection: SQLite admits one writer at a time anyway, and
	// queueing in the pool is far cheaper than contending on the file lock.
	writer.SetMaxOpenConns(1)

	// cache_size(-1000), 1000 KiB, half SQLite's default: a reader serves
	// point lookups by a random digest, which its own cache cannot hold
	// for a large table (the OS page cache does), and modernc's allocator
	// charges each cached page about twice its size, outside the Go memory
	// limit: four readers at the default held ~16 MiB.
	reader, err := sql.Open("sqlite", uri+"?_pragma=busy_timeout("+strconv.Itoa(sqliteBusyTimeoutMs)+")&_pragma=query_only(1)&_pragma=cache_size(-1000)")
	if err != nil {
		writer.Close()
		return nil, fmt.Errorf("sqlstore: open sqlite: %w", err)
	}
	reader.SetMaxOpenConns(sqliteReaders)
	reader.SetMaxIdleConns(sqliteReaders)

	// synchronous(FULL): the checkpoint fsyncs the database file before
	// SQLite may write over the WAL frames it copied.
	checkpoints, err := sql.Open("sqlite", uri+"?_pragma=busy_timeout("+strconv.Itoa(sqliteBusyTimeoutMs)+")&_pragma=synchronous(FULL)&_pragma=cache_size(-256)")
	if err != nil {
		writer.Close()
		reader.Close()
		return nil, fmt.Errorf("sqlstore: open sqlite: %w", err)
	}
	checkpoints.SetMaxOpenConns(1)

	s := &Store{writer: writer, reader: reader, d: newSQLiteDialect(), readGate: make(fifoGate, sqliteReaders),
		checkpoints: newCheckpointer(checkpoints)}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	// Prepared after the migrations, which the statements' tables need.
	if s.writerStmts, err = prepareAll(ctx, writer, hotWrites); err != nil {
		s.Close()
		return nil, err
	}
	if s.readerStmts, err = prepareAll(ctx, reader, hotReads); err != nil {
		s.Close()
		return nil, err
	}
	s.committer = newGroupCommitter(writer, s.d, s.writerStmts, nil, s.checkpoints)
	return s, nil
}

// sqliteReaders is the size of the SQLite read pool: WAL readers run
// beside the writer and each other, and more connections than cores only
// add page caches.
const sqliteReaders = 4

// postgresMaxConns bounds one store's PostgreSQL connections.
const postgresMaxConns = 16

// Bounds on waiting for PostgreSQL (see also outage.go). A restarted
// server is reached again by the next call: broken pool connections are
// discarded as they are found.
const (
	// postgresConnectTimeout bounds one connection attempt, unless the URL
	// sets connect_timeout.
	postgresConnectTimeout = 10 * time.Second
	// pingTimeout bounds Ping, the readiness check.
	pingTimeout = 2 * time.Second
)

// OpenPostgres opens the PostgreSQL database at url and applies pending
// migrations. Runtime parameters such as search_path may be given in the
// URL's query.
func OpenPostgres(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		// pgx's message may quote the URL, password included.
		return nil, errors.New("sqlstore: open postgres: the database URL does not parse")
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = postgresConnectTimeout
	}
	db := stdlib.OpenDB(*cfg)
	// Bounded, so a burst of requests queues here instead of exhausting
	// the server's connection slots (100 by default, shared by every node).
	db.SetMaxOpenConns(postgresMaxConns)
	db.SetMaxIdleConns(postgresMaxConns)
	s := &Store{writer: db, reader: db, d: newPostgresDialect(), watch: startOutageWatch(stdlib.OpenDB(*cfg)), readGate: make(fifoGate, postgresMaxConns)}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	// Group commit here too: every audited change extends its instance's
	// hash chain under a lock on the chain head, so concurrent writes
	// queue on that lock one commit at a time; batched, they take it once
	// per batch and share one commit.
	s.committer = newGroupCommitter(db, s.d, nil, s.watch, nil)
	return s, nil
}

// migrate applies the pending migrations of the store's dialect. On
// PostgreSQL an advisory lock keeps replicas starting together from
// migrating one schema at once.
func (s *Store) migrate(ctx context.Context) error {
	dir, err := fs.Sub(migrations, "migrations/"+s.d.name)
	if err != nil {
		return fmt.Errorf("sqlstore: migrations: %w", err)
	}
	var opts []goose.ProviderOption
	if s.d.name == "postgres" {
		// One lock per schema, so stores in different schemas of one
		// database (tests, mostly) do not wait for each other. Poll for it
		// every second, for up to five minutes.
		var schema string
		if err := s.writer.QueryRowContext(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
			return fmt.Errorf("sqlstore: migrate postgres: %w", err)
		}
		id := fnv.New64a()
		id.Write([]byte("keyward migrations " + schema))
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(int64(id.Sum64())), lock.WithLockTimeout(1, 300))
		if err != nil {
			return fmt.Errorf("sqlstore: migration lock: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(s.d.goose, s.writer, dir, opts...)
	if err != nil {
		return fmt.Errorf("sqlstore: migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("sqlstore: migrate %s: %w", s.d.name, err)
	}
	return nil
}

// Dialect returns "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.d.name }

// Update runs fn in a read-write transaction and commits if fn returns nil.
// fn's error is returned unchanged, so domain errors pass through. A failed
// COMMIT is reported, never retried: the caller cannot know whether it took.
// Update returns only after the COMMIT has returned. Concurrent Updates
// share one transaction and one fsync (see groupCommitter), which is
// equivalent to running them one after another; fn may run more than once
// (see authority.Store), and must not call Update itself.
func (s *Store) Update(ctx context.Context, fn func(authority.Tx) error) error {
	if s.committer != nil {
		return s.committer.update(ctx, fn)
	}
	if err := s.readGate.enter(ctx); err != nil {
		return err
	}
	defer s.readGate.leave()
	return s.run(ctx, s.writer, nil, nil, fn)
}

// View runs fn in a read-only transaction.
func (s *Store) View(ctx context.Context, fn func(authority.Tx) error) error {
	if err := s.readGate.enter(ctx); err != nil {
		return err
	}
	defer s.readGate.leave()
	return s.run(ctx, s.reader, &s.d.readTx, s.readerStmts, fn)
}

func (s *Store) run(ctx context.Context, db *sql.DB, opts *sql.TxOptions, prepared map[string]*sql.Stmt, fn func(authority.Tx) error) error {
	if s.watch != nil {
		bound, release, err := s.watch.bind(ctx)
		if err != nil {
			return err
		}
		defer release()
		ctx = bound
	}
	sqlTx, err := db.BeginTx(ctx, opts)
	if err != nil {
		return s.outageOr(ctx, translate(err, "transaction"))
	}
	s.sawAnswer() // BEGIN is a round trip
	// Also releases the connection if fn panics; a no-op after Commit.
	defer sqlTx.Rollback()
	if err := fn(&tx{sqlTx: sqlTx, d: s.d, prepared: prepared}); err != nil {
		return s.outageOr(ctx, err)
	}
	if err := sqlTx.Commit(); err != nil {
		return s.outageOr(ctx, translate(err, "transaction"))
	}
	s.sawAnswer()
	return nil
}

func (s *Store) sawAnswer() {
	if s.watch != nil {
		s.watch.sawAnswer()
	}
}

// outageOr returns err, or CodeUnavailable when err came from a call the
// outage watch cancelled (database/sql then reports a rolled-back
// transaction or a canceled context, which say nothing of the cause).
func (s *Store) outageOr(ctx context.Context, err error) error {
	if err != nil && s.watch != nil && errors.Is(context.Cause(ctx), errNotAnswering) {
		return errOutage
	}
	return err
}

// Ping checks that the database answers, waiting at most two seconds. On
// PostgreSQL it asks on the outage watch's connections, so a pool busy
// with a burst of calls does not make a node look unready.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if s.watch != nil {
		if s.watch.isDown() {
			return errOutage
		}
		return translate(s.watch.probe.PingContext(ctx), "database")
	}
	if err := s.writer.PingContext(ctx); err != nil {
		return translate(err, "database")
	}
	return translate(s.reader.PingContext(ctx), "database")
}

// Close closes the store's pools.
// CommitCounts reports how many group-commit transactions have committed
// and how many Updates they carried: their ratio is the mean batch, the
// number of writes one fsync acknowledges.
func (s *Store) CommitCounts() (commits, writes int64) {
	if s.committer == nil {
		return 0, 0
	}
	return s.committer.batches.Load(), s.committer.closures.Load()
}

func (s *Store) Close() error {
	// The batch in flight finishes first, under a watch still running.
	if s.committer != nil {
		s.committer.close()
	}
	if s.watch != nil {
		s.watch.Close()
	}
	var errs []error
	if s.checkpoints != nil {
		errs = append(errs, s.checkpoints.close())
	}
	for _, st := range s.writerStmts {
		st.Close()
	}
	for _, st := range s.readerStmts {
		st.Close()
	}
	if s.reader == s.writer {
		return errors.Join(append(errs, s.writer.Close())...)
	}
	return errors.Join(append(errs, s.reader.Close(), s.writer.Close())...)
}

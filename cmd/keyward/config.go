package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/inmem"
	"github.com/keyward/keyward/internal/keyring"
	"github.com/keyward/keyward/internal/logging"
	"github.com/keyward/keyward/internal/metrics"
	"github.com/keyward/keyward/internal/pgbus"
	"github.com/keyward/keyward/internal/redisbus"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/tracing"
)

// storeConfig is what every command that opens the store needs.
type storeConfig struct {
	dataDir     string
	databaseURL string
	masterKey   string
	logFormat   string
	logLevel    string
	redisURL    string
	redisPolicy string
	issuer      string // set by serve from --public-url

	settings *settings
	level    *slog.LevelVar // the logger's level, changed by a reload
}

// secretFlags may also be read from a file named by KEYWARD_<NAME>_FILE.
var secretFlags = map[string]bool{"master-key": true, "new-master-key": true, "redis-url": true, "database-url": true}

func (c *storeConfig) addFlags(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.StringVar(&c.dataDir, "data-dir", "./keyward-data", "directory for the SQLite database and the generated master key")
	f.StringVar(&c.databaseURL, "database-url", "", "postgres://… to use PostgreSQL instead of SQLite (then --master-key is required)")
	f.StringVar(&c.masterKey, "master-key", "", "base64 of 32 random bytes (see: keyward master-key generate); default: generated into the data dir")
	f.StringVar(&c.logFormat, "log-format", "text", "log format: text or json")
	f.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.StringVar(&c.redisURL, "redis-url", "", "redis://host:port/db to share rate limits and invalidations between nodes through Redis")
	f.StringVar(&c.redisPolicy, "ratelimit-on-redis-error", "local", "when Redis is unreachable: local (count per node), open (admit) or closed (refuse)")
}

// envSecret reads a secret given only through the environment (NAME or the
// file named by NAME_FILE).
func envSecret(name string) (string, error) {
	if v, ok := os.LookupEnv(name); ok {
		return strings.TrimSpace(v), nil
	}
	if path, ok := os.LookupEnv(name + "_FILE"); ok {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("%s_FILE: %w", name, err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	return "", nil
}

func (c *storeConfig) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	c.level = new(slog.LevelVar)
	c.level.Set(level)
	return logging.New(w, c.logFormat, c.level)
}

func (c *storeConfig) postgres() bool {
	return strings.HasPrefix(c.databaseURL, "postgres://") || strings.HasPrefix(c.databaseURL, "postgresql://")
}

const (
	sqliteFile    = "keyward.db"
	masterKeyFile = "master.key"
)

// node is what one keyward process runs on: the authority over its store,
// and, on a shared store, the bus and limiter that join it to the others.
type node struct {
	auth    *authority.Authority
	store   *sqlstore.Store
	keys    *keyring.Keyring
	closers []func()
}

// Close releases what the node opened, the store last.
func (n *node) Close() {
	for i := len(n.closers) - 1; i >= 0; i-- {
		n.closers[i]()
	}
}

// nodeOptions are what serve adds to a node.
type nodeOptions struct {
	clock      authority.Clock
	metrics    *metrics.Metrics
	log        *slog.Logger
	cacheBytes int // 0: the default budget

	authFailureLimit  int // 0: the default; negative: off
	authFailureWindow time.Duration
	auditSink         authority.AuditSink
	auditLogRequired  bool
	tracing           *tracing.Tracing // nil: tracing off
	noAnalytics       bool             // serve --analytics=false
}

// Channel names for invalidations on each bus.
const (
	redisChannel    = "keyward:invalidate"
	postgresChannel = "keyward_invalidate"
)

// open opens the store and the keyring and returns a node over them.
// With generate, a SQLite deployment without a master key gets a new one
// written to the data dir (mode 0600); an existing database without its
// master key is refused rather than silently re-keyed.
//
// Several nodes share state through Redis when --redis-url is set
// (limits and invalidations), else through PostgreSQL (limits in a table,
// invalidations by LISTEN/NOTIFY); a SQLite node keeps both in memory.
func (c *storeConfig) open(ctx context.Context, generate bool, opts nodeOptions) (*node, error) {
	if c.databaseURL != "" && !c.postgres() {
		return nil, fmt.Errorf("--database-url must start with postgres:// (leave it empty for SQLite)")
	}
	master, _, err := c.resolveMasterKey(generate)
	if err != nil {
		return nil, err
	}
	return c.openWith(ctx, master, opts)
}

// openWith is open with the master key already resolved. It refuses a
// master key that does not match the store's key-check value.
func (c *storeConfig) openWith(ctx context.Context, master []byte, opts nodeOptions) (*node, error) {
	policy, err := redisbus.ParsePolicy(c.redisPolicy)
	if err != nil {
		return nil, fmt.Errorf("--ratelimit-on-redis-error: %w", err)
	}
	n, err := c.openStore(ctx, master, opts)
	if err != nil {
		return nil, err
	}
	cfg := opts.authorityConfig(n, c.issuer)
	if err := c.connectBus(ctx, n, &cfg, opts, policy); err != nil {
		n.Close()
		return nil, err
	}
	if opts.metrics != nil {
		cfg.Store, cfg.Observer = opts.metrics.Store(n.store), opts.metrics
		opts.metrics.CommitCounts(n.store.CommitCounts)
	}
	opts.tracing.Instrument(&cfg)
	n.auth = authority.New(cfg)
	if opts.log != nil || opts.metrics != nil {
		n.auth.SetPublishErrorHandler(opts.busErrorHandler("publish", "publish invalidation"))
	}
	return n, nil
}

// openStore opens the store and unlocks its keyring with master.
func (c *storeConfig) openStore(ctx context.Context, master []byte, opts nodeOptions) (*node, error) {
	n := &node{}
	var err error
	if c.postgres() {
		n.store, err = sqlstore.OpenPostgres(ctx, c.databaseURL)
	} else {
		n.store, err = sqlstore.OpenSQLite(ctx, filepath.Join(c.dataDir, sqliteFile))
	}
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	n.closers = append(n.closers, func() { n.store.Close() })
	keys, err := authority.UnlockKeyring(ctx, n.store, opts.clock, master)
	if err != nil {
		n.Close()
		if errors.Is(err, authority.ErrWrongMasterKey) || errors.Is(err, authority.ErrKeyringLost) {
			return nil, err
		}
		return nil, fmt.Errorf("open keyring: %w", err)
	}
	n.keys = keys
	return n, nil
}

// authorityConfig is the authority's configuration over n's store and
// keyring, with the in-memory limiter until a bus replaces it.
func (opts nodeOptions) authorityConfig(n *node, issuer string) authority.Config {
	cfg := authority.Config{Store: n.store, Keyring: n.keys, Clock: opts.clock, Issuer: issuer, Limiter: inmem.NewLimiter(), CacheBytes: opts.cacheBytes,
		AuthFailureLimit: opts.authFailureLimit, AuthFailureWindow: opts.authFailureWindow,
		AuditSink: opts.auditSink, AuditSinkRequired: opts.auditLogRequired, NoAnalytics: opts.noAnalytics}
	if opts.auditSink != nil && opts.log != nil {
		cfg.OnAuditSinkError = func(err error) { opts.log.Error("write audit log", "error", err.Error()) }
	}
	return cfg
}

// connectBus wires the shared limiter and invalidation bus: Redis when
// configured, else PostgreSQL's own; SQLite keeps the in-memory ones.
func (c *storeConfig) connectBus(ctx context.Context, n *node, cfg *authority.Config, opts nodeOptions, policy redisbus.Policy) error {
	switch {
	case c.redisURL != "":
		rdb, err := redisbus.Open(ctx, c.redisURL)
		if err != nil {
			return fmt.Errorf("--redis-url: %w", err)
		}
		n.closers = append(n.closers, func() { rdb.Close() })
		cfg.Limiter = redisbus.NewLimiter(rdb, cfg.Limiter, policy, opts.fallback("ratelimit"))
		cfg.Bus = redisbus.NewBus(rdb, redisChannel)
	case c.postgres():
		cfg.Limiter = n.store.Limiter()
		bus := pgbus.New(c.databaseURL, postgresChannel)
		bus.SetErrorHandler(opts.busErrorHandler("subscribe", "invalidation bus"))
		n.closers = append(n.closers, bus.Close)
		cfg.Bus = bus
	}
	return nil
}

// fallback reports a component going to its fallback and coming back.
func (opts nodeOptions) fallback(component string) func(bool) {
	return func(active bool) {
		if opts.metrics != nil {
			opts.metrics.Fallback(component, active)
		}
		if opts.log != nil && active {
			opts.log.Warn(component+" unavailable; falling back", "component", component)
		} else if opts.log != nil {
			opts.log.Info(component+" available again", "component", component)
		}
	}
}

// busErrorHandler counts a bus error under op and logs it as msg.
func (opts nodeOptions) busErrorHandler(op, msg string) func(error) {
	return func(err error) {
		if opts.metrics != nil {
			opts.metrics.BusError(op)
		}
		if opts.log != nil {
			opts.log.Warn(msg, "error", err.Error())
		}
	}
}

// resolveMasterKey returns the master key and, when it was read from (or
// generated into) the data dir, that file's path.
func (c *storeConfig) resolveMasterKey(generate bool) ([]byte, string, error) {
	if c.masterKey != "" {
		k, err := keyring.ParseMasterKey(c.masterKey)
		return k, "", err
	}
	if c.postgres() {
		return nil, "", errors.New("--master-key (or KEYWARD_MASTER_KEY / KEYWARD_MASTER_KEY_FILE) is required with PostgreSQL, since every node must share it; create one with `keyward master-key generate`")
	}
	path := filepath.Join(c.dataDir, masterKeyFile)
	b, err := os.ReadFile(path)
	if err == nil {
		k, err := keyring.ParseMasterKey(string(b))
		return k, path, err
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, "", fmt.Errorf("read master key: %w", err)
	}
	if _, err := os.Stat(filepath.Join(c.dataDir, sqliteFile)); err == nil {
		return nil, "", fmt.Errorf("%s exists but %s is missing: restore the master key or pass --master-key", filepath.Join(c.dataDir, sqliteFile), path)
	}
	if !generate {
		return nil, "", fmt.Errorf("no master key at %s: start `keyward serve` once, or pass --master-key", path)
	}
	encoded, err := keyring.GenerateMasterKey()
	if err != nil {
		return nil, "", err
	}
	if err := os.MkdirAll(c.dataDir, 0o700); err != nil {
		return nil, "", fmt.Errorf("create data dir: %w", err)
	}
	if err := writeKeyFile(path, encoded, os.O_EXCL); err != nil {
		return nil, "", err
	}
	k, err := keyring.ParseMasterKey(encoded)
	return k, path, err
}

// writeKeyFile writes a master key to path, readable by its owner only,
// and flushes it to disk. flag adds os.O_EXCL (never overwrite) or
// os.O_TRUNC.
func writeKeyFile(path, encoded string, flag int) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|flag, 0o600)
	if err != nil {
		return fmt.Errorf("write master key: %w", err)
	}
	if _, err := f.WriteString(encoded + "\n"); err != nil {
		f.Close()
		return fmt.Errorf("write master key: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write master key: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write master key: %w", err)
	}
	return nil
}

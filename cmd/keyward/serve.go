package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyward/keyward/internal/auditlog"
	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/httpapi"
	"github.com/keyward/keyward/internal/httpapi/wire"
	"github.com/keyward/keyward/internal/metrics"
)

type serveConfig struct {
	*storeConfig
	addr           string
	publicURL      string
	trustedProxies string

	auditLog          string
	auditLogRequired  bool
	authFailureLimit  int
	authFailureWindow time.Duration
}

type readyKey struct{}

// withReady returns a context under which serve sends its listening address
// to ready once it accepts connections (tests listen on port 0).
func withReady(ctx context.Context, ready chan<- string) context.Context {
	return context.WithValue(ctx, readyKey{}, ready)
}

func newServeCommand(store *storeConfig) *cobra.Command {
	cfg := &serveConfig{storeConfig: store}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the keyward server",
		Long: `Run the keyward server.

With no flags it listens on 127.0.0.1:8080 and keeps everything in ./keyward-data
(SQLite plus a generated master key). On first start it creates the default
instance and prints its admin key once to stderr; set KEYWARD_BOOTSTRAP_ADMIN_KEY
to choose that key instead.`,
		Example: `  keyward serve
  keyward serve --addr 0.0.0.0:8080 --data-dir /var/lib/keyward
  KEYWARD_MASTER_KEY_FILE=/run/secrets/mk keyward serve --database-url postgres://keyward@db/keyward`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return serve(cmd.Context(), cfg, cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVar(&cfg.addr, "addr", "127.0.0.1:8080", "address to listen on")
	cmd.Flags().StringVar(&cfg.trustedProxies, "trusted-proxies", "", "comma-separated CIDRs whose X-Forwarded-For is believed (none by default)")
	cmd.Flags().StringVar(&cfg.publicURL, "public-url", "", "the URL clients reach keyward at; the iss of its JWTs (default http://<addr>)")
	cmd.Flags().StringVar(&cfg.auditLog, "audit-log", "", "also write every audit event as one JSON line to this file (- for stdout)")
	cmd.Flags().BoolVar(&cfg.auditLogRequired, "audit-log-required", false, "fail (and commit nothing) a change or secret read whose event cannot be written to --audit-log")
	cmd.Flags().IntVar(&cfg.authFailureLimit, "auth-failure-limit", authority.DefaultAuthFailureLimit, "failed authentications per client address per --auth-failure-window before it gets 429 (0: no limit)")
	cmd.Flags().DurationVar(&cfg.authFailureWindow, "auth-failure-window", authority.DefaultAuthFailureWindow, "the fixed window failed authentications are counted in")
	return cmd
}

const shutdownGrace = 15 * time.Second

func serve(ctx context.Context, cfg *serveConfig, stderr io.Writer) (err error) {
	log, err := cfg.logger(stderr)
	if err != nil {
		return err
	}
	trusted, err := wire.ParseTrustedProxies(cfg.trustedProxies)
	if err != nil {
		return fmt.Errorf("--trusted-proxies: %w", err)
	}
	preset, err := envSecret("KEYWARD_BOOTSTRAP_ADMIN_KEY")
	if err != nil {
		return err
	}
	if cfg.publicURL == "" {
		cfg.publicURL = "http://" + cfg.addr
	}
	cfg.issuer = strings.TrimRight(cfg.publicURL, "/")
	if cfg.auditLogRequired && cfg.auditLog == "" {
		return errors.New("--audit-log-required needs --audit-log")
	}
	if cfg.authFailureLimit < 0 || cfg.authFailureWindow <= 0 {
		return errors.New("--auth-failure-limit must be ≥ 0 and --auth-failure-window > 0")
	}
	opts := nodeOptions{log: log, authFailureLimit: cfg.authFailureLimit, authFailureWindow: cfg.authFailureWindow,
		auditLogRequired: cfg.auditLogRequired}
	if opts.authFailureLimit == 0 {
		opts.authFailureLimit = -1 // authority: negative turns the throttle off
	}
	if cfg.auditLog != "" {
		sink, err := auditlog.Open(cfg.auditLog)
		if err != nil {
			return fmt.Errorf("--audit-log: %w", err)
		}
		defer sink.Close()
		opts.auditSink = sink
	}
	m := metrics.New()
	opts.metrics = m
	n, err := cfg.open(ctx, true, opts)
	if err != nil {
		return err
	}
	defer n.Close()
	auth, store := n.auth, n.store

	// Bind before the first-start key is made and shown: a port already in
	// use must not cost the operator a key printed once.
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	in, key, created, err := auth.Bootstrap(ctx, preset)
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	if created && preset == "" {
		// The one time this key is ever shown.
		fmt.Fprintf(stderr, "\nkeyward: created instance %s with this admin key (shown once; store it now):\n\n    %s\n\n", in.ID, key.Reveal())
		defer func() {
			if err != nil {
				fmt.Fprintf(stderr, "keyward: the admin key printed above is stored and stays valid; keep it for the next start\n")
			}
		}()
	} else if created {
		fmt.Fprintf(stderr, "keyward: created instance %s with the admin key from KEYWARD_BOOTSTRAP_ADMIN_KEY\n", in.ID)
	}
	srv := &http.Server{
		Handler:           httpapi.New(httpapi.Config{Authority: auth, Logger: log, TrustedProxies: trusted, PublicURL: cfg.issuer, Metrics: m}),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("keyward listening", "addr", ln.Addr().String(), "store", store.Dialect(), "version", versionString())
	if ready, ok := ctx.Value(readyKey{}).(chan<- string); ok {
		ready <- ln.Addr().String()
	}

	flushCtx, stopFlusher := context.WithCancel(context.WithoutCancel(ctx))
	flushed := make(chan struct{})
	go func() {
		defer close(flushed)
		auth.RunUsageFlusher(flushCtx, authority.UsageFlushInterval, func(err error) {
			log.Warn("flush last-used times", "error", err.Error())
		})
	}()
	// Runs after Shutdown has drained the requests: the final flush loses
	// no last-used time, then the store closes.
	defer func() { stopFlusher(); <-flushed }()

	busCtx, stopBus := context.WithCancel(context.WithoutCancel(ctx))
	busDone := make(chan struct{})
	go func() {
		defer close(busDone)
		_ = auth.RunBus(busCtx, func(connected bool) {
			m.Fallback("bus", !connected)
			if connected {
				log.Info("invalidation bus connected")
			} else {
				log.Warn("invalidation bus lost; cached credentials live at most " + authority.FallbackTTL.String() + " until it is back")
			}
		})
	}()
	defer func() { stopBus(); <-busDone }()

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		// Requests still running past the grace are cut off here, so none
		// outlives the store that the deferred calls close.
		_ = srv.Close()
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

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
	cacheBytes     int
	authzInstance  string
	authzHeader    string
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
	cmd.Flags().IntVar(&cfg.cacheBytes, "cache-bytes", authority.DefaultCacheBytes, "memory budget of the verify cache, in bytes (at least 1 MiB; about 650 bytes per cached credential)")
	cmd.Flags().StringVar(&cfg.authzInstance, "authz-instance", "", "the instance whose credentials GET /v1/authz (forward auth for gateways) accepts (default: the instance created at first start)")
	cmd.Flags().StringVar(&cfg.authzHeader, "authz-header", "", "the header GET /v1/authz reads the credential from, such as X-Api-Key (default: Authorization: Bearer)")
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
	if h := cfg.authzHeader; h != "" && !validHeaderName(h) {
		return fmt.Errorf("--authz-header: %q is not a header name", h)
	}
	preset, err := envSecret("KEYWARD_BOOTSTRAP_ADMIN_KEY")
	if err != nil {
		return err
	}
	if cfg.publicURL == "" {
		cfg.publicURL = "http://" + cfg.addr
	}
	cfg.issuer = strings.TrimRight(cfg.publicURL, "/")
	if cfg.cacheBytes < authority.MinCacheBytes {
		return fmt.Errorf("--cache-bytes: must be at least %d (1 MiB)", authority.MinCacheBytes)
	}
	m := metrics.New()
	n, err := cfg.open(ctx, true, nodeOptions{metrics: m, log: log, cacheBytes: cfg.cacheBytes})
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
	authzInstance := cfg.authzInstance
	if authzInstance == "" {
		authzInstance, err = auth.DefaultInstanceID(ctx)
	} else {
		_, err = auth.GatewayInstance(ctx, authzInstance)
	}
	if err != nil {
		return fmt.Errorf("--authz-instance: %w", err)
	}
	srv := &http.Server{
		Handler: httpapi.New(httpapi.Config{Authority: auth, Logger: log, TrustedProxies: trusted, PublicURL: cfg.issuer, Metrics: m,
			AuthzInstance: authzInstance, AuthzHeader: cfg.authzHeader}),
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

// validHeaderName reports whether s is an HTTP header field name (an RFC
// 9110 token).
func validHeaderName(s string) bool {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", c)) {
			return false
		}
	}
	return s != ""
}

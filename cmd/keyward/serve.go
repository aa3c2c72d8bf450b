package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyward/keyward/internal/auditlog"
	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/httpapi"
	"github.com/keyward/keyward/internal/httpapi/wire"
	"github.com/keyward/keyward/internal/logging"
	"github.com/keyward/keyward/internal/metrics"
)

type serveConfig struct {
	*storeConfig
	addr           string
	publicURL      string
	trustedProxies string
	cacheBytes     int
	pprofAddr      string
	tls            tlsFiles
	// reloadSettings reads the config file again (see settings.reload).
	reloadSettings func() (applied, restart []string, err error)

	auditLog          string
	auditLogRequired  bool
	authFailureLimit  int
	authFailureWindow time.Duration
	authzInstance     string
	authzHeader       string
	janitor           janitorConfig
}

type readyKey struct{}

type reloadedKey struct{}

// withReloaded returns a context under which serve sends the outcome of
// each SIGHUP reload to reloaded (tests wait for it).
func withReloaded(ctx context.Context, reloaded chan<- error) context.Context {
	return context.WithValue(ctx, reloadedKey{}, reloaded)
}

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
to choose that key instead.

Settings come from flags, then KEYWARD_<FLAG> variables, then the --config
YAML file, then the defaults. With --tls-cert and --tls-key it serves HTTPS
(TLS 1.2+). SIGHUP rereads the config file, the log level and the TLS files
(a bad new certificate keeps the old one) and never stops the server.`,
		Example: `  keyward serve
  keyward serve --addr 0.0.0.0:8080 --data-dir /var/lib/keyward
  KEYWARD_MASTER_KEY_FILE=/run/secrets/mk keyward serve --database-url postgres://keyward@db/keyward
  keyward serve --config /etc/keyward/keyward.yaml --tls-cert tls.crt --tls-key tls.key`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg.reloadSettings = func() ([]string, []string, error) { return store.settings.reload(cmd) }
			return serve(cmd.Context(), cfg, cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVar(&cfg.addr, "addr", "127.0.0.1:8080", "address to listen on")
	cmd.Flags().StringVar(&cfg.trustedProxies, "trusted-proxies", "", "comma-separated CIDRs whose X-Forwarded-For is believed (none by default)")
	cmd.Flags().IntVar(&cfg.cacheBytes, "cache-bytes", authority.DefaultCacheBytes, "memory budget of the verify cache, in bytes (at least 1 MiB; about 650 bytes per cached credential)")
	cmd.Flags().StringVar(&cfg.publicURL, "public-url", "", "the URL clients reach keyward at; the iss of its JWTs (default http://<addr>, https:// with --tls-cert)")
	cmd.Flags().StringVar(&cfg.tls.cert, "tls-cert", "", "PEM certificate chain to serve HTTPS with (TLS 1.2+); reread on SIGHUP")
	cmd.Flags().StringVar(&cfg.tls.key, "tls-key", "", "PEM private key of --tls-cert; reread on SIGHUP")
	cmd.Flags().StringVar(&cfg.tls.clientCA, "tls-client-ca", "", "PEM CA whose client certificates the native API (/v1/) requires; reread on SIGHUP")
	cmd.Flags().StringVar(&cfg.pprofAddr, "pprof-addr", "", "serve net/http/pprof on this loopback address (127.0.0.1:6060); off by default")
	cmd.Flags().StringVar(&cfg.auditLog, "audit-log", "", "also write every audit event as one JSON line to this file (- for stdout)")
	cmd.Flags().BoolVar(&cfg.auditLogRequired, "audit-log-required", false, "fail (and commit nothing) a change or secret read whose event cannot be written to --audit-log")
	cmd.Flags().IntVar(&cfg.authFailureLimit, "auth-failure-limit", authority.DefaultAuthFailureLimit, "failed authentications per client address per --auth-failure-window before it gets 429 (0: no limit)")
	cmd.Flags().DurationVar(&cfg.authFailureWindow, "auth-failure-window", authority.DefaultAuthFailureWindow, "the fixed window failed authentications are counted in")
	cmd.Flags().StringVar(&cfg.authzInstance, "authz-instance", "", "the instance whose credentials GET /v1/authz (forward auth for gateways) accepts (default: the instance created at first start)")
	cmd.Flags().StringVar(&cfg.authzHeader, "authz-header", "", "the header GET /v1/authz reads the credential from, such as X-Api-Key (default: Authorization: Bearer)")
	cfg.janitor.addFlags(cmd)
	return cmd
}

const shutdownGrace = 15 * time.Second

// logFlushInterval bounds how long a log line waits in memory: the access
// log is written in batches, not one write(2) per request.
const logFlushInterval = 100 * time.Millisecond

func serve(ctx context.Context, cfg *serveConfig, stderr io.Writer) (err error) {
	logOut := logging.NewBuffered(stderr)
	log, err := cfg.logger(logOut)
	if err != nil {
		return err
	}
	// Registered first, so it runs last: every line, the shutdown's
	// included, is written before serve returns.
	logCtx, stopLog := context.WithCancel(context.WithoutCancel(ctx))
	logDone := make(chan struct{})
	go func() { defer close(logDone); logOut.Run(logCtx, logFlushInterval) }()
	defer func() { stopLog(); <-logDone }()
	pprofLn, err := listenPprof(cfg.pprofAddr)
	if err != nil {
		return err
	}
	if pprofLn != nil {
		pprofSrv := &http.Server{Handler: pprofHandler(), ReadHeaderTimeout: 10 * time.Second}
		go pprofSrv.Serve(pprofLn)
		defer pprofSrv.Close()
		log.Info("pprof listening", "addr", pprofLn.Addr().String())
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
	// Registered first: from here on a SIGHUP reloads instead of killing.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var certs *certReloader
	if cfg.tls != (tlsFiles{}) {
		if certs, err = newCertReloader(cfg.tls); err != nil {
			return err
		}
	}
	if cfg.publicURL == "" {
		cfg.publicURL = "http://" + cfg.addr
		if certs != nil {
			cfg.publicURL = "https://" + cfg.addr
		}
	}
	cfg.issuer = strings.TrimRight(cfg.publicURL, "/")
	if cfg.cacheBytes < authority.MinCacheBytes {
		return fmt.Errorf("--cache-bytes: must be at least %d (1 MiB)", authority.MinCacheBytes)
	}
	if cfg.auditLogRequired && cfg.auditLog == "" {
		return errors.New("--audit-log-required needs --audit-log")
	}
	if cfg.authFailureLimit < 0 || cfg.authFailureWindow <= 0 {
		return errors.New("--auth-failure-limit must be ≥ 0 and --auth-failure-window > 0")
	}
	if err := cfg.janitor.check(); err != nil {
		return err
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
	opts.cacheBytes = cfg.cacheBytes
	setMemoryLimit(log, cfg.cacheBytes)
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
	authzInstance := cfg.authzInstance
	if authzInstance == "" {
		authzInstance, err = auth.DefaultInstanceID(ctx)
	} else {
		_, err = auth.GatewayInstance(ctx, authzInstance)
	}
	if err != nil {
		return fmt.Errorf("--authz-instance: %w", err)
	}
	api := httpapi.Config{Authority: auth, Logger: log, TrustedProxies: trusted, PublicURL: cfg.issuer, Metrics: m,
		AuthzInstance: authzInstance, AuthzHeader: cfg.authzHeader}
	if certs != nil {
		api.ClientCertRequired = certs.clientCertRequired
	}
	srv := &http.Server{
		Handler:           httpapi.New(api),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if certs != nil {
		srv.TLSConfig = certs.config()
	}
	stopHousekeeping, err := startHousekeeping(ctx, &cfg.janitor, auth, log)
	if err != nil {
		return err
	}
	defer stopHousekeeping()
	log.Info("keyward listening", "addr", ln.Addr().String(), "store", store.Dialect(), "tls", certs != nil, "version", versionString())
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
	go func() {
		if certs != nil {
			errc <- srv.ServeTLS(ln, "", "")
			return
		}
		errc <- srv.Serve(ln)
	}()
	reloaded, _ := ctx.Value(reloadedKey{}).(chan<- error)
wait:
	for {
		select {
		case err := <-errc:
			return err
		case <-hup:
			err := cfg.reload(log, certs)
			if reloaded != nil {
				select {
				case reloaded <- err:
				case <-ctx.Done():
				}
			}
		case <-ctx.Done():
			break wait
		}
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

// reload is what a SIGHUP does: read the config file again, apply the new
// log level, and serve the certificate files as they are now. Whatever
// fails is logged and leaves the old setting in force; the process goes on.
func (cfg *serveConfig) reload(log *slog.Logger, certs *certReloader) error {
	oldLevel, oldTLS := cfg.logLevel, cfg.tls // serveConfig shares its storeConfig: copy the values
	var errs []error
	applied, restart, err := cfg.reloadSettings()
	if err != nil {
		errs = append(errs, err)
	}
	for _, name := range restart {
		log.Warn("setting changed in the config file; restart needed to apply it", "setting", name)
	}
	if cfg.logLevel != oldLevel {
		var level slog.Level
		if err := level.UnmarshalText([]byte(cfg.logLevel)); err != nil {
			errs = append(errs, fmt.Errorf("log-level: %w", err))
			cfg.logLevel = oldLevel
		} else {
			cfg.level.Set(level)
		}
	}
	switch {
	case certs == nil && cfg.tls != (tlsFiles{}), certs != nil && (cfg.tls.cert == "" || cfg.tls.key == ""):
		log.Warn("setting changed in the config file; restart needed to apply it", "setting", "tls-cert")
		cfg.tls = oldTLS
	case certs != nil:
		if err := certs.reload(cfg.tls); err != nil {
			errs = append(errs, fmt.Errorf("%w; still serving %s", err, certs.current().cert))
			cfg.tls = certs.current()
		}
	}
	if err := errors.Join(errs...); err != nil {
		log.Error("reload failed; the previous settings stay in force", "error", err.Error())
		return err
	}
	log.Info("reloaded", "applied", strings.Join(applied, ","), "level", cfg.level.Level().String(), "tls", certs != nil)
	return nil
}

// listenPprof listens for the profiler on addr, which must be a loopback
// address: profiles show request paths and timings and cost CPU on demand,
// so they are never exposed beyond the machine. "" is off.
func listenPprof(addr string) (net.Listener, error) {
	if addr == "" {
		return nil, nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("--pprof-addr: %w", err)
	}
	ip, err := netip.ParseAddr(host)
	if host != "localhost" && (err != nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("--pprof-addr must be a loopback address (127.0.0.1:6060, [::1]:6060), not %q", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--pprof-addr: %w", err)
	}
	return ln, nil
}

// pprofHandler serves net/http/pprof's pages on their usual paths, on a mux
// of its own (never the API's, nor http.DefaultServeMux).
func pprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
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

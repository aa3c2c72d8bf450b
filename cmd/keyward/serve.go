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
	"go.opentelemetry.io/otel"

	"github.com/keyward/keyward/internal/auditlog"
	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/console"
	"github.com/keyward/keyward/internal/httpapi"
	"github.com/keyward/keyward/internal/httpapi/wire"
	"github.com/keyward/keyward/internal/logging"
	"github.com/keyward/keyward/internal/metrics"
	"github.com/keyward/keyward/internal/tracing"
)

type serveConfig struct {
	*storeConfig
	addr           string
	publicURL      string
	trustedProxies string
	cacheBytes     int
	analytics      bool
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
	console           bool
	janitor           janitorConfig
	webhooks          webhookConfig // webhooks.go
	leaks             leakConfig    // leaks.go
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
	cmd.Flags().BoolVar(&cfg.analytics, "analytics", true, "count every verification per credential, outcome and minute (GET /v1/analytics/verifications); flushed every 10 s")
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
	cmd.Flags().BoolVar(&cfg.console, "console", true, "serve the admin console at /console/ (sign in with an admin key)")
	cfg.janitor.addFlags(cmd)
	cfg.webhooks.addFlags(cmd)
	cfg.leaks.addFlags(cmd)
	return cmd
}

const shutdownGrace = 15 * time.Second

// logFlushInterval bounds how long a log line waits in memory: the access
// log is written in batches, not one write(2) per request.
const logFlushInterval = 100 * time.Millisecond

func serve(ctx context.Context, cfg *serveConfig, stderr io.Writer) error {
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
	stopPprof, err := startPprof(cfg.pprofAddr, log)
	if err != nil {
		return err
	}
	defer stopPprof()
	trusted, preset, err := cfg.serveInputs()
	if err != nil {
		return err
	}
	// Registered first: from here on a SIGHUP reloads instead of killing.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	certs, err := cfg.tlsAndPublicURL()
	if err != nil {
		return err
	}
	if err := cfg.checkServeLimits(); err != nil {
		return err
	}
	opts, closeOpts, err := cfg.serveNodeOptions(ctx, log)
	if err != nil {
		return err
	}
	defer closeOpts()
	setMemoryLimit(log, cfg.cacheBytes)
	n, err := cfg.open(ctx, true, opts)
	if err != nil {
		return err
	}
	defer n.Close()

	// Bind before the first-start key is made and shown: a port already in
	// use must not cost the operator a key printed once.
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	r := &serveRun{cfg: cfg, log: log, stderr: stderr, opts: opts, certs: certs, trusted: trusted, hup: hup, n: n, ln: ln}
	return r.bootstrapAndRun(ctx, preset)
}

// startPprof serves the profiler on addr when one is set; stop closes it.
func startPprof(addr string, log *slog.Logger) (stop func(), err error) {
	pprofLn, err := listenPprof(addr)
	if err != nil {
		return nil, err
	}
	if pprofLn == nil {
		return func() {}, nil
	}
	pprofSrv := &http.Server{Handler: pprofHandler(), ReadHeaderTimeout: 10 * time.Second}
	go pprofSrv.Serve(pprofLn)
	log.Info("pprof listening", "addr", pprofLn.Addr().String())
	return func() { pprofSrv.Close() }, nil
}

// serveInputs parses the trusted proxies, checks the authz header's name
// and reads the preset bootstrap admin key.
func (cfg *serveConfig) serveInputs() (trusted []netip.Prefix, preset string, err error) {
	trusted, err = wire.ParseTrustedProxies(cfg.trustedProxies)
	if err != nil {
		return nil, "", fmt.Errorf("--trusted-proxies: %w", err)
	}
	if h := cfg.authzHeader; h != "" && !validHeaderName(h) {
		return nil, "", fmt.Errorf("--authz-header: %q is not a header name", h)
	}
	preset, err = envSecret("KEYWARD_BOOTSTRAP_ADMIN_KEY")
	if err != nil {
		return nil, "", err
	}
	return trusted, preset, nil
}

// tlsAndPublicURL loads the certificates when TLS is on, and settles the
// public URL and the issuer from it.
func (cfg *serveConfig) tlsAndPublicURL() (*certReloader, error) {
	var certs *certReloader
	if cfg.tls != (tlsFiles{}) {
		var err error
		if certs, err = newCertReloader(cfg.tls); err != nil {
			return nil, err
		}
	}
	if cfg.publicURL == "" {
		cfg.publicURL = "http://" + cfg.addr
		if certs != nil {
			cfg.publicURL = "https://" + cfg.addr
		}
	}
	cfg.issuer = strings.TrimRight(cfg.publicURL, "/")
	return certs, nil
}

func (cfg *serveConfig) checkServeLimits() error {
	if cfg.cacheBytes < authority.MinCacheBytes {
		return fmt.Errorf("--cache-bytes: must be at least %d (1 MiB)", authority.MinCacheBytes)
	}
	if cfg.auditLogRequired && cfg.auditLog == "" {
		return errors.New("--audit-log-required needs --audit-log")
	}
	if cfg.authFailureLimit < 0 || cfg.authFailureWindow <= 0 {
		return errors.New("--auth-failure-limit must be ≥ 0 and --auth-failure-window > 0")
	}
	return cfg.janitor.check()
}

// serveNodeOptions opens the audit log, the metrics and the tracing the
// node runs with; closeAll closes them in the reverse order (the last
// spans flushed first, the audit log closed last).
func (cfg *serveConfig) serveNodeOptions(ctx context.Context, log *slog.Logger) (opts nodeOptions, closeAll func(), err error) {
	opts = nodeOptions{log: log, authFailureLimit: cfg.authFailureLimit, authFailureWindow: cfg.authFailureWindow,
		auditLogRequired: cfg.auditLogRequired}
	if opts.authFailureLimit == 0 {
		opts.authFailureLimit = -1 // authority: negative turns the throttle off
	}
	var closers []func()
	closeAll = func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	if cfg.auditLog != "" {
		sink, err := auditlog.Open(cfg.auditLog)
		if err != nil {
			return opts, nil, fmt.Errorf("--audit-log: %w", err)
		}
		closers = append(closers, func() { sink.Close() })
		opts.auditSink = sink
	}
	m := metrics.New()
	m.SetBuildInfo(buildInfo())
	opts.metrics = m
	// Tracing is off unless the standard OTEL_* variables ask for it.
	traces, err := tracing.FromEnv(ctx, shortVersion())
	if err != nil {
		closeAll()
		return opts, nil, err
	}
	if traces != nil {
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("export traces", "error", err.Error()) }))
		closers = append(closers, func() {
			flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = traces.Shutdown(flushCtx) // the last spans; a collector that is gone costs at most the timeout
		})
		opts.tracing = traces
	}
	opts.cacheBytes = cfg.cacheBytes
	opts.noAnalytics = !cfg.analytics
	return opts, closeAll, nil
}

// serveRun is a server past its setup: the node is open and the port
// bound.
type serveRun struct {
	cfg     *serveConfig
	log     *slog.Logger
	stderr  io.Writer
	opts    nodeOptions
	certs   *certReloader // nil: plain HTTP
	trusted []netip.Prefix
	hup     <-chan os.Signal
	n       *node
	ln      net.Listener
}

// bootstrapAndRun creates the instance on a first start, showing its
// admin key once, then serves.
func (r *serveRun) bootstrapAndRun(ctx context.Context, preset string) (err error) {
	in, key, created, err := r.n.auth.Bootstrap(ctx, preset)
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	if created && preset == "" {
		// The one time this key is ever shown.
		fmt.Fprintf(r.stderr, "\nkeyward: created instance %s with this admin key (shown once; store it now):\n\n    %s\n\n", in.ID, key.Reveal())
		defer func() {
			if err != nil {
				fmt.Fprintf(r.stderr, "keyward: the admin key printed above is stored and stays valid; keep it for the next start\n")
			}
		}()
	} else if created {
		fmt.Fprintf(r.stderr, "keyward: created instance %s with the admin key from KEYWARD_BOOTSTRAP_ADMIN_KEY\n", in.ID)
	}
	return r.run(ctx)
}

// run serves until ctx ends or the server fails, with the housekeeping,
// the usage flusher and the bus running beside it.
func (r *serveRun) run(ctx context.Context) error {
	authzInstance, err := r.authzInstance(ctx)
	if err != nil {
		return fmt.Errorf("--authz-instance: %w", err)
	}
	leaks, err := r.cfg.leaks.load(ctx, r.n.auth)
	if err != nil {
		return err
	}
	srv := r.httpServer(authzInstance, leaks)
	stopHousekeeping, err := startHousekeeping(ctx, &r.cfg.janitor, r.n.auth, r.log)
	if err != nil {
		return err
	}
	defer stopHousekeeping()
	r.log.Info("keyward listening", "addr", r.ln.Addr().String(), "store", r.n.store.Dialect(), "tls", r.certs != nil, "version", versionString(), "tracing", r.opts.tracing != nil)
	if ready, ok := ctx.Value(readyKey{}).(chan<- string); ok {
		ready <- r.ln.Addr().String()
	}
	// Runs after Shutdown has drained the requests: the final flush loses
	// no last-used time, then the store closes.
	stopFlusher := r.startUsageFlusher(ctx)
	defer stopFlusher()
	stopBus := r.startBus(ctx)
	defer stopBus()
	stopWebhooks := r.startWebhookDispatcher(ctx)
	defer stopWebhooks()
	return r.serveUntilDone(ctx, srv)
}

// authzInstance is the instance the gateway's authz endpoint serves: the
// one named by --authz-instance (which must exist), else the default.
func (r *serveRun) authzInstance(ctx context.Context) (string, error) {
	if id := r.cfg.authzInstance; id != "" {
		_, err := r.n.auth.GatewayInstance(ctx, id)
		return id, err
	}
	return r.n.auth.DefaultInstanceID(ctx)
}

func (r *serveRun) httpServer(authzInstance string, leaks httpapi.LeakReportConfig) *http.Server {
	api := httpapi.Config{Authority: r.n.auth, Logger: r.log, TrustedProxies: r.trusted, PublicURL: r.cfg.issuer, Metrics: r.opts.metrics,
		AuthzInstance: authzInstance, AuthzHeader: r.cfg.authzHeader, LeakReports: leaks}
	if r.certs != nil {
		api.ClientCertRequired = r.certs.clientCertRequired
	}
	if traces := r.opts.tracing; traces != nil {
		api.TracerProvider, api.Propagator = traces.Provider, traces.Propagator
	}
	handler := httpapi.New(api)
	if r.cfg.console {
		// The console calls the API through this same handler, in process.
		behindTLS := strings.HasPrefix(r.cfg.publicURL, "https://")
		handler = console.Mount(console.New(console.Config{API: handler, Logger: r.log, BehindTLS: behindTLS}), handler)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(r.log.Handler(), slog.LevelWarn),
	}
	if r.certs != nil {
		srv.TLSConfig = r.certs.config()
	}
	return srv
}

// startUsageFlusher writes last-used times and the verification counts
// in the background; stop runs the final flushes and waits for them.
func (r *serveRun) startUsageFlusher(ctx context.Context) (stop func()) {
	flushCtx, stopFlusher := context.WithCancel(context.WithoutCancel(ctx))
	flushed := make(chan struct{}, 2)
	go func() {
		defer func() { flushed <- struct{}{} }()
		r.n.auth.RunUsageFlusher(flushCtx, authority.UsageFlushInterval, func(err error) {
			r.log.Warn("flush last-used times", "error", err.Error())
		})
	}()
	go func() {
		defer func() { flushed <- struct{}{} }()
		r.n.auth.RunAnalyticsFlusher(flushCtx, authority.AnalyticsFlushInterval, func(err error) {
			r.log.Warn("flush verification counts", "error", err.Error())
		})
	}()
	return func() { stopFlusher(); <-flushed; <-flushed }
}

// startBus follows the invalidation bus in the background; stop waits for
// it to end.
func (r *serveRun) startBus(ctx context.Context) (stop func()) {
	busCtx, stopBus := context.WithCancel(context.WithoutCancel(ctx))
	busDone := make(chan struct{})
	go func() {
		defer close(busDone)
		_ = r.n.auth.RunBus(busCtx, func(connected bool) {
			r.opts.metrics.Fallback("bus", !connected)
			if connected {
				r.log.Info("invalidation bus connected")
			} else {
				r.log.Warn("invalidation bus lost; cached credentials live at most " + authority.FallbackTTL.String() + " until it is back")
			}
		})
	}()
	return func() { stopBus(); <-busDone }
}

// serveUntilDone serves on the bound listener, reloads on SIGHUP, and
// shuts down gracefully when ctx ends.
func (r *serveRun) serveUntilDone(ctx context.Context, srv *http.Server) error {
	errc := make(chan error, 1)
	go func() {
		if r.certs != nil {
			errc <- srv.ServeTLS(r.ln, "", "")
			return
		}
		errc <- srv.Serve(r.ln)
	}()
	reloaded, _ := ctx.Value(reloadedKey{}).(chan<- error)
wait:
	for {
		select {
		case err := <-errc:
			return err
		case <-r.hup:
			err := r.cfg.reload(r.log, r.certs)
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
	r.log.Info("shutting down")
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

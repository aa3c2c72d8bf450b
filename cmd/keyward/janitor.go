package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyward/keyward/internal/authority"
)

// retention is a flag value: a Go duration (720h) or whole days (30d); 0
// or "off" keeps everything.
type retention time.Duration

func (r *retention) String() string {
	d := time.Duration(*r)
	switch {
	case d == 0:
		return "off"
	case d%(24*time.Hour) == 0:
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	return d.String()
}

func (r *retention) Set(s string) error {
	s = strings.TrimSpace(s)
	if s == "" || s == "off" || s == "0" {
		*r = 0
		return nil
	}
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseInt(days, 10, 32)
		if err != nil {
			return errors.New("want a duration such as 30d or 720h, or off")
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return errors.New("want a duration such as 30d or 720h, or off")
		}
	}
	if d < 0 {
		return errors.New("must not be negative")
	}
	*r = retention(d)
	return nil
}

func (r *retention) Type() string { return "duration" }

// janitorConfig is serve's retention settings.
type janitorConfig struct {
	credentials, audit retention
	analytics          retention
	interval           time.Duration
	batch              int
	// chainCheck is how often every audit chain is verified (off: never).
	chainCheck retention
}

func (j *janitorConfig) addFlags(cmd *cobra.Command) {
	cmd.Flags().Var(&j.credentials, "retention-credentials", "delete expired and revoked credentials this long after they expired or were revoked (30d, 720h; off by default)")
	cmd.Flags().Var(&j.audit, "retention-audit", "delete audit events this long after they happened, keeping a checkpoint per chain (365d; off by default)")
	j.analytics = retention(authority.DefaultAnalyticsRetention)
	cmd.Flags().Var(&j.analytics, "retention-analytics", "delete verification counts this long after their minute (90d by default; off keeps them)")
	cmd.Flags().DurationVar(&j.interval, "janitor-interval", time.Hour, "how often the janitor runs when a retention is set (also once at start)")
	cmd.Flags().IntVar(&j.batch, "janitor-batch", authority.DefaultJanitorBatch, "rows the janitor deletes per transaction")
	j.chainCheck = retention(authority.DefaultAuditChainCheckInterval)
	cmd.Flags().Var(&j.chainCheck, "audit-check-interval", "verify every audit hash chain this often (also once at start) and send audit.chain_broken for a break (1d; off)")
}

func (j *janitorConfig) check() error {
	if j.interval <= 0 || j.batch <= 0 {
		return errors.New("--janitor-interval and --janitor-batch must be > 0")
	}
	return nil
}

// start runs the janitor beside the server when a retention is set, and
// returns the function that stops it (and waits for it).
func (j *janitorConfig) start(ctx context.Context, auth *authority.Authority, log *slog.Logger) func() {
	if j.credentials == 0 && j.audit == 0 && j.analytics == 0 {
		return func() {}
	}
	r := authority.Retention{Credentials: time.Duration(j.credentials), Audit: time.Duration(j.audit), Analytics: time.Duration(j.analytics), Batch: j.batch}
	log.Info("janitor on", "retention_credentials", j.credentials.String(), "retention_audit", j.audit.String(),
		"retention_analytics", j.analytics.String(), "interval", j.interval.String())
	jctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		auth.RunJanitorLoop(jctx, r, j.interval, func(rep authority.JanitorReport, err error) {
			if err != nil {
				log.Warn("janitor", "error", err.Error())
				return
			}
			if rep.Credentials > 0 || rep.AuditEvents > 0 || rep.VerificationCounts > 0 {
				log.Info("janitor deleted", "credentials", rep.Credentials, "audit_events", rep.AuditEvents, "verification_counts", rep.VerificationCounts)
			}
		})
	}()
	return func() { stop(); <-done }
}

// startHousekeeping starts serve's background upkeep beside the server:
// the janitor, and the reload of the foreign-key prefixes (the first one
// now, so a restarted node verifies imported keys from its first request).
// The returned function stops both and waits for them.
func startHousekeeping(ctx context.Context, j *janitorConfig, auth *authority.Authority, log *slog.Logger) (func(), error) {
	if err := auth.RefreshForeignPrefixes(ctx); err != nil {
		return nil, fmt.Errorf("load the imported key prefixes: %w", err)
	}
	pctx, stopPrefixes := context.WithCancel(context.WithoutCancel(ctx))
	prefixesDone := make(chan struct{})
	go func() {
		defer close(prefixesDone)
		auth.RunForeignPrefixRefresh(pctx, authority.ForeignPrefixRefreshInterval, func(err error) {
			log.Warn("reload the imported key prefixes", "error", err.Error())
		})
	}()
	stopJanitor := j.start(ctx, auth, log)
	stopChainCheck := j.startChainCheck(ctx, auth, log)
	return func() { stopJanitor(); stopChainCheck(); stopPrefixes(); <-prefixesDone }, nil
}

// startChainCheck verifies the audit chains every --audit-check-interval
// beside the server, logging each break (the authority sends it to the
// instance's endpoints as audit.chain_broken), and returns the function
// that stops it (and waits for it).
func (j *janitorConfig) startChainCheck(ctx context.Context, auth *authority.Authority, log *slog.Logger) func() {
	if j.chainCheck == 0 {
		return func() {}
	}
	cctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		auth.RunAuditChainCheck(cctx, time.Duration(j.chainCheck), func(broken []authority.ChainReport, err error) {
			for _, rep := range broken {
				log.Error("audit chain broken", "instance", rep.InstanceID, "seq", rep.Break.BrokenAt, "event_id", rep.Break.EventID, "reason", rep.Break.Reason)
			}
			if err != nil {
				log.Warn("audit chain check", "error", err.Error())
			}
		})
	}()
	return func() { stop(); <-done }
}

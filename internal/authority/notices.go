package authority

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyward/keyward/internal/credential"
)

// Notices: lifecycle events keyward emits on its own rather than for an
// audited change, with actor "system". The scanner (ScanNotices, every
// NoticeScanInterval in serve) emits
//
//   - credential.expiring once per credential and threshold (serve
//     --notify-expiring 7d,1d): for the smallest threshold whose window
//     (now, now+threshold] holds the expiry, so a credential made with
//     12 h to live hears of 1d, not of 7d as well;
//   - credential.expired once, when the expiry has passed (within
//     expiredLookback, so a first start does not announce every credential
//     that expired long ago);
//   - credential.unused once per credential and last use (--notify-unused
//     90d): no verification (last_used_at, or created_at when never used)
//     for that long; used again and then idle again, it is announced again.
//
// The verify path (controls.go) emits credential.rate_limit_exhausted once
// per named limit and window, credential.usage_exceeded once per credits
// pool and refill period (without a refill: until the credits are changed),
// and credential.credits_low once per pool and refill period when the
// remaining count falls below 10 % of the refill amount (without a refill:
// below NoticeConfig.CreditsLow, when set).
//
// Each notice is recorded in credential_notices (insert if absent) in the
// same transaction as its outbox row, so of several nodes and restarts
// exactly one sends it; nothing is written when no endpoint of the
// instance subscribes to the type. The verify path writes only on the
// first refusal of a window: an in-memory set of what this node sent
// answers the calls after it.

// Notice names, in credential_notices.notice.
const (
	noticeExpiring           = "expiring"
	noticeExpired            = "expired"
	noticeUnused             = "unused"
	noticeRateLimitExhausted = "rate_limit_exhausted"
	noticeCreditsLow         = "credits_low"
	noticeUsageExceeded      = "usage_exceeded"
)

// Notice is a credential_notices row: that notice Notice of the credential
// for Threshold was sent at SentAt. PruneAfter, when set, is when the
// occasion it stands for has passed and the row may be deleted.
type Notice struct {
	InstanceID   string
	CredentialID string
	Notice       string
	Threshold    string
	SentAt       time.Time
	PruneAfter   time.Time
}

// NoticeTx records sent notices and finds the credentials due one.
type NoticeTx interface {
	// InsertNotice records n unless a row of its key exists; it reports
	// whether it inserted (on PostgreSQL a concurrent insert of the same
	// key waits for the other transaction and then inserts nothing).
	InsertNotice(ctx context.Context, n Notice) (bool, error)
	// DeleteNotices forgets the credential's notices of the given names.
	DeleteNotices(ctx context.Context, instanceID, credentialID string, notices ...string) error
	// PruneNotices deletes up to limit rows whose PruneAfter is at or
	// before now; it returns how many went.
	PruneNotices(ctx context.Context, now time.Time, limit int) (int, error)
	// ExpiryCandidates returns up to limit unrevoked credentials of the
	// instance and kinds expiring in (from, to], earliest first, without a
	// notice named notice of threshold prefix + the expiry in Unix ms.
	ExpiryCandidates(ctx context.Context, instanceID, notice, prefix string, from, to time.Time, kinds []credential.Kind, limit int) ([]credential.Credential, error)
	// UnusedCandidates reads the next limit credentials of any instance
	// after the id after, in id order, and returns those of kinds that are
	// unrevoked, unexpired at now, last used (never used: created) at or
	// before cutoff and without a notice named notice of threshold prefix
	// + that time in Unix ms; and the last id read ("" when none was left).
	UnusedCandidates(ctx context.Context, after, notice, prefix string, cutoff, now time.Time, kinds []credential.Kind, limit int) ([]credential.Credential, string, error)
}

// NoticeConfig is what serve's --notify-* flags set.
type NoticeConfig struct {
	// Expiring are the thresholds before an expiry (7d, 1d); none: no
	// expiring notices. expired notices are always on.
	Expiring []time.Duration
	// Unused is how long without a verification makes a credential
	// unused; 0: no unused notices.
	Unused time.Duration
	// CreditsLow is the remaining count below which credits without a
	// refill rule are low (0: no credits_low for them). With a refill rule
	// the threshold is 10 % of its amount.
	CreditsLow int64
	// Batch bounds the credentials each check reads per pass
	// (DefaultNoticeBatch when 0).
	Batch int
}

const (
	// NoticeScanInterval is how often serve runs ScanNotices.
	NoticeScanInterval = time.Minute
	// DefaultNoticeBatch bounds each check of a pass.
	DefaultNoticeBatch = 500
	// expiredLookback is how long after an expiry the expired notice is
	// still sent (a scanner that was down catches up within it).
	expiredLookback = 7 * 24 * time.Hour
	// noticeMemory is how long this node trusts its own record of a
	// usage notice before asking the store again (so a top-up on another
	// node is heard within it).
	noticeMemory = time.Minute
	// maxNoticeMemory bounds the in-memory set; expired entries are swept
	// when it is reached.
	maxNoticeMemory = 1 << 16
	// noticePruneEvery is how often a scanner prunes the notices whose
	// occasion has passed.
	noticePruneEvery = time.Hour
	// noticeWriteTimeout bounds the verify path's notice write.
	noticeWriteTimeout = 2 * time.Second
	// refillPeriodBound outlasts any refill period (monthly), for pruning.
	refillPeriodBound = 32 * 24 * time.Hour
)

// noticeKinds are the long-lived kinds notices are about (M2M tokens and
// impersonation tickets live minutes: their expiry is no news).
var noticeKinds = []credential.Kind{credential.KindAPIKey, credential.KindPAT, credential.KindOrgToken,
	credential.KindMachineKey, credential.KindAdminKey}

// noticeActor is the actor of every notice.
const noticeActor credential.Kind = "system"

type noticeState struct {
	creditsLow atomic.Int64 // cfg.CreditsLow, read on the verify path
	mu         sync.Mutex
	cfg        NoticeConfig
	cursor     string               // UnusedCandidates' position
	pruned     time.Time            // the last prune of the passed notices
	sent       map[string]time.Time // usage notices this node sent: key → trusted until
}

// SetNotices configures the notices (serve's --notify-* flags).
func (a *Authority) SetNotices(cfg NoticeConfig) {
	cfg.Expiring = slices.Clone(cfg.Expiring)
	cfg.Expiring = slices.DeleteFunc(cfg.Expiring, func(d time.Duration) bool { return d <= 0 })
	slices.Sort(cfg.Expiring)
	cfg.Expiring = slices.Compact(cfg.Expiring)
	if cfg.Batch <= 0 {
		cfg.Batch = DefaultNoticeBatch
	}
	a.notices.mu.Lock()
	a.notices.cfg = cfg
	a.notices.mu.Unlock()
	a.notices.creditsLow.Store(cfg.CreditsLow)
}

func (a *Authority) noticeConfig() NoticeConfig {
	a.notices.mu.Lock()
	defer a.notices.mu.Unlock()
	cfg := a.notices.cfg
	if cfg.Batch <= 0 {
		cfg.Batch = DefaultNoticeBatch
	}
	return cfg
}

// FormatNoticeDuration writes a threshold as the flags take it: whole
// days as "7d", anything else as a Go duration.
func FormatNoticeDuration(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	return d.String()
}

// noticeDetail is a notice's detail: ids, kind, subject and the occasion,
// never a secret.
type noticeDetail struct {
	CredentialID string `json:"credential_id"`
	Kind         string `json:"kind"`
	Subject      string `json:"subject"`
	ExpiresAt    string `json:"expires_at,omitempty"`
	LastUsedAt   string `json:"last_used_at,omitempty"`
	Threshold    string `json:"threshold,omitempty"`
	RateLimit    string `json:"ratelimit,omitempty"`
	Reset        string `json:"reset,omitempty"`
	Remaining    *int64 `json:"remaining,omitempty"`
	Pool         string `json:"credits_owner,omitempty"` // the credential's id, or its identity's
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func credentialDetail(c credential.Credential) noticeDetail {
	return noticeDetail{CredentialID: c.ID, Kind: string(c.Kind), Subject: c.Subject, ExpiresAt: stamp(c.ExpiresAt)}
}

// noticeChange is a change made by keyward itself in one instance: it
// writes notices' outbox rows as writeEvent does for a use case.
func (a *Authority) noticeChange(ctx context.Context, tx Tx, instanceID string, now time.Time) *change {
	c := Caller{InstanceID: instanceID, Kind: noticeActor, CredentialID: "keyward"}
	return &change{Tx: tx, ctx: ctx, g: grant{a: a, caller: c, uc: "Notice", now: now}, now: now}
}

// sendNotice records n and, when it was not recorded yet, writes its
// event for hooks; it reports whether it did.
func (ch *change) sendNotice(n Notice, t string, c credential.Credential, detail noticeDetail, hooks []credential.Webhook) (bool, error) {
	inserted, err := ch.InsertNotice(ch.ctx, n)
	if err != nil || !inserted {
		return false, err
	}
	_, err = ch.writeEvent(t, string(c.Kind), c.ID, detail, hooks)
	return err == nil, err
}

// ScanNotices runs the time-driven checks once (expiring, expired,
// unused), each bounded by the configured batch, and, hourly, prunes the
// notices whose occasion has passed; it returns how many notices it sent.
func (a *Authority) ScanNotices(ctx context.Context) (int, error) {
	cfg := a.noticeConfig()
	now := a.clock.Now()
	var instances []credential.Instance
	if err := a.store.View(ctx, func(tx Tx) error {
		var err error
		instances, err = tx.ListInstances(ctx)
		return err
	}); err != nil {
		return 0, err
	}
	total := 0
	for _, in := range instances {
		n, err := a.scanExpiries(ctx, in.ID, cfg, now)
		total += n
		if err != nil {
			return total, err
		}
	}
	if cfg.Unused > 0 {
		n, err := a.scanUnused(ctx, cfg, now)
		total += n
		if err != nil {
			return total, err
		}
	}
	a.notices.mu.Lock()
	prune := a.notices.pruned.IsZero() || now.Sub(a.notices.pruned) >= noticePruneEvery
	if prune {
		a.notices.pruned = now
	}
	a.notices.mu.Unlock()
	if !prune {
		return total, nil
	}
	err := a.store.Update(ctx, func(tx Tx) error {
		_, err := tx.PruneNotices(ctx, now, DefaultJanitorBatch)
		return err
	})
	return total, err
}

// expiryBand is one expiring threshold's (or the expired) candidates.
type expiryBand struct {
	t, notice, label string
	due              []credential.Credential
	hooks            []credential.Webhook
}

// scanExpiries sends the instance's expiring notices, each credential in
// the band of the smallest threshold that holds its expiry, (now, now+d1],
// (now+d1, now+d2], …, and its expired notices, (now−expiredLookback,
// now]: one read for all bands, then one write per band that has work.
func (a *Authority) scanExpiries(ctx context.Context, instanceID string, cfg NoticeConfig, now time.Time) (int, error) {
	var bands []expiryBand
	err := a.store.View(ctx, func(tx Tx) error {
		bands = bands[:0]
		hooks, err := a.subscribersOf(ctx, tx, instanceID, credential.EventExpiring)
		if err != nil {
			return err
		}
		lower := now
		for _, d := range cfg.Expiring {
			if len(hooks) == 0 {
				break
			}
			b := expiryBand{t: credential.EventExpiring, notice: noticeExpiring, label: FormatNoticeDuration(d), hooks: hooks}
			if b.due, err = tx.ExpiryCandidates(ctx, instanceID, b.notice, b.label+"@", lower, now.Add(d), noticeKinds, cfg.Batch); err != nil {
				return err
			}
			bands = append(bands, b)
			lower = now.Add(d)
		}
		if hooks, err = a.subscribersOf(ctx, tx, instanceID, credential.EventExpired); err != nil || len(hooks) == 0 {
			return err
		}
		b := expiryBand{t: credential.EventExpired, notice: noticeExpired, hooks: hooks}
		if b.due, err = tx.ExpiryCandidates(ctx, instanceID, b.notice, "@", now.Add(-expiredLookback), now, noticeKinds, cfg.Batch); err != nil {
			return err
		}
		bands = append(bands, b)
		return nil
	})
	if err != nil {
		return 0, err
	}
	total := 0
	for _, b := range bands {
		if len(b.due) == 0 {
			continue
		}
		n, err := a.sendNotices(ctx, instanceID, now, b.due, func(c credential.Credential) (Notice, noticeDetail) {
			n := Notice{InstanceID: instanceID, CredentialID: c.ID, Notice: b.notice, Threshold: b.label + "@" + strconv.FormatInt(c.ExpiresAt.UnixMilli(), 10), SentAt: now}
			d := credentialDetail(c)
			d.Threshold = b.label
			return n, d
		}, b.t, b.hooks)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// sendNotices sends one notice per credential in one transaction.
func (a *Authority) sendNotices(ctx context.Context, instanceID string, now time.Time, due []credential.Credential,
	build func(credential.Credential) (Notice, noticeDetail), t string, hooks []credential.Webhook) (int, error) {
	sent := 0
	emitted := false
	err := a.store.Update(ctx, func(tx Tx) error {
		sent = 0
		ch := a.noticeChange(ctx, tx, instanceID, now)
		for _, c := range due {
			n, d := build(c)
			ok, err := ch.sendNotice(n, t, c, d, hooks)
			if err != nil {
				return err
			}
			if ok {
				sent++
			}
		}
		emitted = ch.emitted
		return nil
	})
	if err != nil {
		return 0, err
	}
	if emitted {
		a.wakeDispatcher()
	}
	return sent, nil
}

// scanUnused reads the next batch of credentials (all instances, in id
// order, from where the last pass stopped) and announces the unused ones.
func (a *Authority) scanUnused(ctx context.Context, cfg NoticeConfig, now time.Time) (int, error) {
	label := FormatNoticeDuration(cfg.Unused)
	prefix := label + "@"
	a.notices.mu.Lock()
	after := a.notices.cursor
	a.notices.mu.Unlock()
	byInstance := map[string][]credential.Credential{}
	hooksOf := map[string][]credential.Webhook{}
	var order []string
	var last string
	err := a.store.View(ctx, func(tx Tx) error {
		found, l, err := tx.UnusedCandidates(ctx, after, noticeUnused, prefix, now.Add(-cfg.Unused), now, noticeKinds, cfg.Batch)
		if err == nil && l == "" && after != "" { // past the end: start over
			found, l, err = tx.UnusedCandidates(ctx, "", noticeUnused, prefix, now.Add(-cfg.Unused), now, noticeKinds, cfg.Batch)
		}
		if err != nil {
			return err
		}
		last = l
		for _, c := range found {
			hooks, seen := hooksOf[c.InstanceID]
			if !seen {
				if hooks, err = a.subscribersOf(ctx, tx, c.InstanceID, credential.EventUnused); err != nil {
					return err
				}
				hooksOf[c.InstanceID] = hooks
				order = append(order, c.InstanceID)
			}
			if len(hooks) > 0 {
				byInstance[c.InstanceID] = append(byInstance[c.InstanceID], c)
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	total := 0
	for _, ins := range order {
		if len(byInstance[ins]) == 0 {
			continue
		}
		n, err := a.sendNotices(ctx, ins, now, byInstance[ins], func(c credential.Credential) (Notice, noticeDetail) {
			used := c.LastUsedAt
			if used.IsZero() {
				used = c.CreatedAt
			}
			d := credentialDetail(c)
			d.LastUsedAt, d.Threshold = stamp(c.LastUsedAt), label
			return Notice{InstanceID: ins, CredentialID: c.ID, Notice: noticeUnused, Threshold: prefix + strconv.FormatInt(used.UnixMilli(), 10), SentAt: now}, d
		}, credential.EventUnused, hooksOf[ins])
		total += n
		if err != nil {
			return total, err
		}
	}
	a.notices.mu.Lock()
	a.notices.cursor = last // "" at the end: the next pass starts over
	a.notices.mu.Unlock()
	return total, nil
}

// RunNoticeScanner runs ScanNotices every interval until ctx ends (the
// first pass at once); onError hears a failed pass.
func (a *Authority) RunNoticeScanner(ctx context.Context, interval time.Duration, onError func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := a.ScanNotices(ctx); err != nil && ctx.Err() == nil && onError != nil {
			onError(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// The verify path's notices.

// noteUsage sends a usage notice of c for one occasion (threshold) unless
// this node already has; pruneAfter is when the occasion passes. It never
// fails the verify: a failed write is forgotten, so a later call retries.
func (a *Authority) noteUsage(ctx context.Context, c credential.Credential, t, notice, threshold string, pruneAfter, now time.Time, detail noticeDetail) {
	key := c.ID + "\x00" + notice + "\x00" + threshold
	until := now.Add(noticeMemory)
	if !pruneAfter.IsZero() && pruneAfter.Before(until) {
		until = pruneAfter
	}
	st := &a.notices
	st.mu.Lock()
	if u, ok := st.sent[key]; ok && now.Before(u) {
		st.mu.Unlock()
		return
	}
	if st.sent == nil {
		st.sent = map[string]time.Time{}
	}
	if len(st.sent) >= maxNoticeMemory {
		for k, u := range st.sent {
			if !now.Before(u) {
				delete(st.sent, k)
			}
		}
	}
	st.sent[key] = until
	st.mu.Unlock()
	// Bounded, and not cut short by the caller going away: the verify
	// waits for this one write at most once per occasion.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), noticeWriteTimeout)
	defer cancel()
	if err := a.sendUsageNotice(ctx, c, t, Notice{InstanceID: c.InstanceID, CredentialID: c.ID, Notice: notice, Threshold: threshold,
		SentAt: now, PruneAfter: pruneAfter}, now, detail); err != nil {
		st.mu.Lock()
		delete(st.sent, key)
		st.mu.Unlock()
	}
}

func (a *Authority) sendUsageNotice(ctx context.Context, c credential.Credential, t string, n Notice, now time.Time, detail noticeDetail) error {
	hooks, ok := a.cachedSubscribers(c.InstanceID, t)
	if !ok {
		if err := a.store.View(ctx, func(tx Tx) error {
			var err error
			hooks, err = a.subscribersOf(ctx, tx, c.InstanceID, t)
			return err
		}); err != nil {
			return err
		}
	}
	if len(hooks) == 0 {
		return nil
	}
	_, err := a.sendNotices(ctx, c.InstanceID, now, []credential.Credential{c}, func(credential.Credential) (Notice, noticeDetail) { return n, detail }, t, hooks)
	return err
}

// noteRateLimited announces each named limit that refused the call, once
// per limit and window.
func (a *Authority) noteRateLimited(ctx context.Context, c credential.Credential, takes []LimitTake, names []string, states []LimitState, now time.Time) {
	for i, s := range states {
		if i >= len(takes) || s.Remaining >= takes[i].Cost {
			continue
		}
		w := takes[i].Window.Milliseconds()
		if w <= 0 {
			continue
		}
		start := now.UnixMilli() / w * w
		end := time.UnixMilli(start + w).UTC()
		d := credentialDetail(c)
		d.RateLimit, d.Reset = names[i], stamp(s.Reset)
		a.noteUsage(ctx, c, credential.EventRateLimitExhausted, noticeRateLimitExhausted, names[i]+"@"+strconv.FormatInt(start, 10), end, now, d)
	}
}

// noteCredits announces a pool's credits running low or refusing a call,
// once per pool and refill period (without a refill, until the credits
// are changed: ChangeCredits forgets the notices).
func (a *Authority) noteCredits(ctx context.Context, c credential.Credential, owner string, rule *CreditsRule, taken bool, remaining int64, now time.Time) {
	var threshold int64
	if rule != nil && rule.Interval != "" && rule.Amount > 0 {
		threshold = max(rule.Amount/10, 1)
	} else {
		threshold = a.notices.creditsLow.Load()
	}
	if taken && remaining >= threshold {
		return
	}
	period, prune := "topup", time.Time{}
	if b := rule.lastRefill(now); !b.IsZero() {
		period, prune = strconv.FormatInt(b.UnixMilli(), 10), b.Add(refillPeriodBound)
	}
	d := credentialDetail(c)
	d.Pool, d.Remaining = owner, &remaining
	t, notice := credential.EventCreditsLow, noticeCreditsLow
	if !taken {
		t, notice = credential.EventUsageExceeded, noticeUsageExceeded
	}
	a.noteUsage(ctx, c, t, notice, owner+"@"+period, prune, now, d)
}

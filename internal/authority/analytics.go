package authority

import (
	"cmp"
	"context"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyward/keyward/internal/credential"
)

// VerificationCount is how many verification decisions with one outcome a
// credential had in one minute. CredentialID is empty for the tokens no
// credential answers to (unknown, malformed, or not the caller's to see).
type VerificationCount struct {
	InstanceID   string
	CredentialID string
	Outcome      Reason
	// Minute is the start of the minute, in Unix milliseconds (UTC).
	Minute int64
	Count  int64
}

// countShards spreads the counters over independent locks: a verify takes
// one at random, so concurrent verifies rarely meet on one.
const countShards = 32

// verificationCounter aggregates verification decisions per (instance,
// credential, outcome, minute) in memory; the analytics flusher writes
// them in batches. A verify only bumps a map entry under one shard's lock:
// no allocation once the key exists in that shard for the minute.
//
// Its memory is bounded by traffic, not by the flush interval: each
// distinct credential verified is a key, so a load over many credentials
// (a million stored tokens, each used once) would otherwise hold every
// one of them for up to AnalyticsFlushInterval. Past maxPendingCounts new
// keys it asks the flusher for an early flush (full).
type verificationCounter struct {
	off     bool
	pending atomic.Int64 // keys added since the last take
	// maxPending overrides maxPendingCounts when set (a test lowers it).
	maxPending int64
	full       chan struct{} // buffered 1: a flush is due before the tick
	shards     [countShards]countShard
}

// maxPendingCounts is how many new keys the counter takes before it asks
// for an early flush: about a megabyte of map entries.
const maxPendingCounts = 8192

func (v *verificationCounter) init(off bool) {
	v.off, v.full = off, make(chan struct{}, 1)
}

type countShard struct {
	mu sync.Mutex
	m  map[countKey]int64
	_  [40]byte // keep shards on separate cache lines
}

type countKey struct {
	instance, credential string
	outcome              Reason
	minute               int64
}

func (v *verificationCounter) add(instanceID, credentialID string, outcome Reason, at time.Time) {
	if v.off {
		return
	}
	s := &v.shards[rand.Uint32()%countShards]
	k := countKey{instance: instanceID, credential: credentialID, outcome: outcome, minute: minuteOf(at)}
	s.mu.Lock()
	if s.m == nil {
		s.m = make(map[countKey]int64)
	}
	before := len(s.m)
	s.m[k]++
	grew := len(s.m) > before
	s.mu.Unlock()
	limit := cmp.Or(v.maxPending, maxPendingCounts)
	if grew && v.pending.Add(1)%limit == 0 { // a nil full (a zero counter) takes the default below
		select {
		case v.full <- struct{}{}:
		default: // a flush is already due
		}
	}
}

// minuteOf is the start of at's minute in Unix milliseconds.
func minuteOf(at time.Time) int64 {
	ms := at.UnixMilli()
	return ms - ms%60_000
}

// take returns the shards' maps of counts recorded since the previous
// take (a key may be in several) and empties the counter.
func (v *verificationCounter) take() []map[countKey]int64 {
	v.pending.Store(0) // keys added while this runs are counted again: an early flush may come sooner, never later
	var taken []map[countKey]int64
	for i := range v.shards {
		s := &v.shards[i]
		s.mu.Lock()
		m := s.m
		s.m = nil
		s.mu.Unlock()
		if len(m) > 0 {
			taken = append(taken, m)
		}
	}
	return taken
}

// restore puts back counts that were taken and not written.
func (v *verificationCounter) restore(counts []VerificationCount, taken []map[countKey]int64) {
	s := &v.shards[0]
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[countKey]int64)
	}
	n := len(counts)
	for _, c := range counts {
		s.m[countKey{instance: c.InstanceID, credential: c.CredentialID, outcome: c.Outcome, minute: c.Minute}] += c.Count
	}
	for _, m := range taken {
		for k, c := range m {
			s.m[k] += c
		}
		n += len(m)
	}
	v.pending.Add(int64(n))
}

// countCaller counts one authentication of a caller credential as a
// verification of it: machine keys, PATs and org tokens are used by
// authenticating. Admin keys are not counted: they drive the API (the
// console among it), and their calls are not usage of a protected API.
// A machine key counts under its machine's id: keys rotate, the machine
// stays, and its page charts them all.
func (a *Authority) countCaller(cred credential.Credential, outcome Reason, now time.Time) {
	switch cred.Kind {
	case credential.KindAdminKey:
		return
	case credential.KindMachineKey:
		a.counts.add(cred.InstanceID, cred.Subject, outcome, now)
		return
	}
	a.counts.add(cred.InstanceID, cred.ID, outcome, now)
}

// analyticsFlushChunk bounds the counts written in one transaction, as
// usageFlushChunk does for last-used times.
const analyticsFlushChunk = 256

// FlushVerificationCounts writes the verification counts recorded since
// the previous flush, adding them to the stored ones (count = count + new),
// in transactions of at most analyticsFlushChunk. Those not written, on a
// failure before they commit, are kept for the next flush.
//
// It walks the counter's shards as they were taken, a chunk at a time,
// never merging them into one map or one slice first: a flush after a
// burst holds tens of thousands of keys, and building those in one go
// held the processor of a one-core node for 17 ms (the cache-miss p99).
// A key counted in several shards is summed from all of them as it is
// reached, so a hot credential is still one upsert per flush.
func (a *Authority) FlushVerificationCounts(ctx context.Context) error {
	taken := a.counts.take()
	counts := func(yield func(VerificationCount) bool) {
		for i, m := range taken {
			for k, n := range m {
				delete(m, k)
				for _, later := range taken[i+1:] { // the key's counts in the other shards: one row, not one per shard
					if c, ok := later[k]; ok {
						n += c
						delete(later, k)
					}
				}
				if !yield(VerificationCount{InstanceID: k.instance, CredentialID: k.credential, Outcome: k.outcome, Minute: k.minute, Count: n}) {
					return
				}
			}
		}
	}
	failed, err := writeChunks(counts, analyticsFlushChunk, func(chunk []VerificationCount) error {
		return a.store.Update(ctx, func(tx Tx) error { return tx.AddVerificationCounts(ctx, chunk) })
	})
	if err != nil {
		a.counts.restore(failed, taken) // what was written is gone from taken
	}
	return err
}

// AnalyticsFlushInterval is how often RunAnalyticsFlusher writes the
// verification counts: a crash loses at most this much of them.
const AnalyticsFlushInterval = 10 * time.Second

// RunAnalyticsFlusher flushes the verification counts every interval, and
// sooner when the counter holds maxPendingCounts new keys, until ctx ends,
// then once more, so a graceful shutdown loses none. onError is told of
// failed flushes (which are retried on the next tick).
func (a *Authority) RunAnalyticsFlusher(ctx context.Context, interval time.Duration, onError func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	flush := func() {
		if err := a.FlushVerificationCounts(ctx); err != nil && onError != nil {
			onError(err)
		}
	}
	for {
		select {
		case <-t.C:
			flush()
		case <-a.counts.full:
			flush()
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalFlushTimeout)
			if err := a.FlushVerificationCounts(final); err != nil && onError != nil {
				onError(err)
			}
			cancel()
			return
		}
	}
}

// Granularity is the width of one bucket of a verification series.
type Granularity string

const (
	GranularityMinute Granularity = "minute"
	GranularityHour   Granularity = "hour"
	GranularityDay    Granularity = "day"
)

func (g Granularity) width() time.Duration {
	switch g {
	case GranularityMinute:
		return time.Minute
	case GranularityHour:
		return time.Hour
	case GranularityDay:
		return 24 * time.Hour
	}
	return 0
}

// MaxAnalyticsBuckets bounds the buckets one series may span.
const MaxAnalyticsBuckets = 1500

// DefaultAnalyticsWindow is the range of a series when from is not given.
const DefaultAnalyticsWindow = 24 * time.Hour

// VerificationsInput selects a series of the caller's instance's
// verification counts. Empty fields match everything; zero From and To
// mean the DefaultAnalyticsWindow up to now; an empty Granularity is an
// hour. IdentityID (idt_…) sums the counts of every credential linked to
// that identity now; it excludes CredentialID.
type VerificationsInput struct {
	CredentialID string
	IdentityID   string
	Outcome      string
	From, To     time.Time
	Granularity  Granularity
}

// VerificationQuery is what the store reads: counts of one instance with
// From <= minute < To, summed into buckets of Width milliseconds aligned
// to the Unix epoch (minutes, hours and UTC days).
type VerificationQuery struct {
	InstanceID string
	// CredentialIDs keeps the counts of these credentials, summed per
	// bucket and outcome; nil matches every credential, and an empty
	// non-nil slice none.
	CredentialIDs []string
	Outcome       Reason // "" matches every outcome
	From, To      int64  // Unix milliseconds
	Width         int64
}

// VerificationBucket is the count of one outcome in the bucket starting at
// Start (Unix milliseconds).
type VerificationBucket struct {
	Start   int64
	Outcome Reason
	Count   int64
}

// VerificationSeries is a series: its non-empty buckets in (Start,
// Outcome) order, and the range and width it covers (From aligned down to
// the granularity).
type VerificationSeries struct {
	Buckets     []VerificationBucket
	From, To    time.Time
	Granularity Granularity
}

// Outcomes lists the outcomes a verification is counted under.
func Outcomes() []Reason {
	return []Reason{ReasonValid, ReasonNotFound, ReasonExpired, ReasonRevoked, ReasonIPNotAllowed, ReasonInsufficientScope, ReasonRateLimited,
		ReasonInsufficientPermissions, ReasonUsageExceeded}
}

// Verifications returns the series of the caller's instance's
// verification counts: another instance's credential id finds nothing,
// and another instance's identity is not found, as an unknown one.
// Counts reach the store at the analytics flush, so the last flush
// interval may be missing.
func (a *Authority) Verifications(ctx context.Context, c Caller, in VerificationsInput) (VerificationSeries, error) {
	g, err := a.enter(ctx, c, "Verifications")
	if err != nil {
		return VerificationSeries{}, err
	}
	if in.Granularity == "" {
		in.Granularity = GranularityHour
	}
	width := in.Granularity.width()
	if width == 0 {
		return VerificationSeries{}, credential.ParamError(credential.CodeInvalid, "granularity", "must be minute, hour or day")
	}
	if in.IdentityID != "" && in.CredentialID != "" {
		return VerificationSeries{}, credential.ParamError(credential.CodeConstraint, "identity", "send credential_id or identity, not both")
	}
	outcome := Reason(in.Outcome)
	if in.Outcome != "" && !slices.Contains(Outcomes(), outcome) {
		return VerificationSeries{}, credential.ParamError(credential.CodeInvalid, "outcome", "must be one of valid, not_found, expired, revoked, ip_not_allowed, insufficient_scope, rate_limited, insufficient_permissions, usage_exceeded")
	}
	to := in.To
	if to.IsZero() {
		to = g.now
	}
	from := in.From
	if from.IsZero() {
		from = to.Add(-DefaultAnalyticsWindow)
	}
	from = from.UTC().Truncate(width) // time.Truncate works from the zero time; every width divides a UTC day
	if !to.After(from) {
		return VerificationSeries{}, credential.ParamError(credential.CodeInvalid, "to", "must be after from")
	}
	if buckets := (to.Sub(from) + width - 1) / width; buckets > MaxAnalyticsBuckets {
		return VerificationSeries{}, credential.ParamError(credential.CodeInvalid, "from",
			"from..to spans "+strconv.FormatInt(int64(buckets), 10)+" buckets of a "+string(in.Granularity)+"; at most "+strconv.Itoa(MaxAnalyticsBuckets)+" (narrow the range or widen the granularity)")
	}
	q := VerificationQuery{InstanceID: c.InstanceID, Outcome: outcome, From: from.UnixMilli(), To: to.UnixMilli(), Width: width.Milliseconds()}
	if in.CredentialID != "" {
		q.CredentialIDs = []string{in.CredentialID}
	}
	var out []VerificationBucket
	err = a.store.View(ctx, func(tx Tx) error {
		if in.IdentityID != "" {
			// The identity's credentials now, read in the same snapshot as
			// their counts. (A machine key would count under its machine's
			// id, countCaller; none links to an identity.)
			if _, err := tx.GetIdentity(ctx, c.InstanceID, in.IdentityID); credential.IsCode(err, credential.CodeNotFound) {
				return credential.ParamError(credential.CodeNotFound, "identity", "no identity was found with that id")
			} else if err != nil {
				return err
			}
			ids, err := tx.IdentityCredentials(ctx, c.InstanceID, in.IdentityID)
			if err != nil {
				return err
			}
			if len(ids) == 0 {
				return nil // an identity with no credentials counted nothing
			}
			q.CredentialIDs = ids
		}
		var err error
		out, err = tx.VerificationSeries(ctx, q)
		return err
	})
	if err != nil {
		return VerificationSeries{}, err
	}
	return VerificationSeries{Buckets: out, From: from, To: to.UTC(), Granularity: in.Granularity}, nil
}

// deleteOldVerificationCounts deletes the counts of minutes before cutoff,
// in batches.
func (a *Authority) deleteOldVerificationCounts(ctx context.Context, cutoff time.Time, batch int) (int, error) {
	total := 0
	for {
		var n int
		err := a.store.Update(ctx, func(tx Tx) error {
			var err error
			n, err = tx.DeleteVerificationCounts(ctx, cutoff.UnixMilli(), batch)
			return err
		})
		total += n
		if err != nil || n < batch {
			return total, err
		}
	}
}

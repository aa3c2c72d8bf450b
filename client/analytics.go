package client

import (
	"context"
	"net/url"
	"time"
)

// VerificationQuery selects a series of verification counts. Empty fields
// take the server's defaults: every credential and outcome, the 24 hours
// up to now, hourly buckets. IdentityID (idt_…) sums the counts of the
// credentials linked to that identity; it excludes CredentialID.
type VerificationQuery struct {
	CredentialID string
	IdentityID   string
	Outcome      string // valid, not_found, expired, revoked, ip_not_allowed, insufficient_scope, rate_limited, insufficient_permissions, usage_exceeded
	From, To     time.Time
	Granularity  string // minute, hour or day
}

// VerificationBucket is how many verifications had one outcome in the
// bucket starting at Start.
type VerificationBucket struct {
	Start   time.Time `json:"start"`
	Outcome string    `json:"outcome"`
	Count   int64     `json:"count"`
}

// VerificationSeries is the non-empty buckets of a range, in (Start,
// Outcome) order: a bucket missing from Buckets counted nothing.
type VerificationSeries struct {
	Buckets     []VerificationBucket `json:"data"`
	Granularity string               `json:"granularity"`
	From        time.Time            `json:"from"`
	To          time.Time            `json:"to"`
}

// Verifications reads the instance's verification counts (GET
// /v1/analytics/verifications, an admin key with analytics:read). Counts
// reach the server's store every 10 s, so the last seconds may be missing.
func (c *Client) Verifications(ctx context.Context, q VerificationQuery) (VerificationSeries, error) {
	v := url.Values{}
	for name, val := range map[string]string{"credential_id": q.CredentialID, "identity": q.IdentityID, "outcome": q.Outcome, "granularity": q.Granularity} {
		if val != "" {
			v.Set(name, val)
		}
	}
	if !q.From.IsZero() {
		v.Set("from", q.From.UTC().Format(time.RFC3339))
	}
	if !q.To.IsZero() {
		v.Set("to", q.To.UTC().Format(time.RFC3339))
	}
	path := "/v1/analytics/verifications"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var out VerificationSeries
	err := c.get(ctx, path, &out)
	return out, err
}

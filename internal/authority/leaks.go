package authority

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/keyward/keyward/internal/credential"
)

// Leak reports: a secret scanner (GitHub's secret-scanning partner
// program) reports keyward secrets it found in public. A report is for one
// instance; a secret of that instance is revoked (or, per policy, left live
// and flagged), audited as credential.leak with where it was found, and
// its lifecycle event "<kind>.leaked" goes through the outbox like any
// other. Anything else (a bad checksum, an unknown secret, a secret of
// another instance) is a false positive and touches nothing.

// LeakPolicy is what a found secret's credential undergoes.
type LeakPolicy string

const (
	// LeakRevoke revokes the credential at once (the default).
	LeakRevoke LeakPolicy = "revoke"
	// LeakQuarantine leaves it live, flagged by its audit and lifecycle
	// events only, for operators who must rotate on their own schedule.
	LeakQuarantine LeakPolicy = "quarantine"
)

// ParseLeakPolicy reads a policy; "" is LeakRevoke.
func ParseLeakPolicy(s string) (LeakPolicy, error) {
	switch LeakPolicy(s) {
	case "", LeakRevoke:
		return LeakRevoke, nil
	case LeakQuarantine:
		return LeakQuarantine, nil
	}
	return "", fmt.Errorf("unknown leak policy %q (want revoke or quarantine)", s)
}

// LeakReport is one reported match.
type LeakReport struct {
	Token  string // the matched text, possibly a secret
	Type   string // the scanner's name for the pattern
	URL    string // where it was found (may be empty)
	Source string // what it was found in ("content", "commit", …)
}

// LeakVerdict answers one report without repeating its secret: TokenHash
// is the SHA-256 (hex) of the token, the form GitHub's feedback accepts.
type LeakVerdict struct {
	TokenHash string
	Type      string
	Found     bool   // a live or revoked secret of the instance
	Kind      string // the found secret's kind ("" when not found)
	Outcome   string // "revoked", "quarantined" or "already_revoked" ("" when not found)
}

// Leak report limits.
const (
	MaxLeakReports   = 1000 // matches in one request
	maxLeakURL       = 2048
	maxLeakTypeField = 128
)

// KindSecretScanner is the caller kind of a signature-verified leak
// report: no credential of keyward's, so no prefix, and it may do nothing
// but report leaks.
const KindSecretScanner credential.Kind = "secret_scanner"

func secretScanner(instanceID string) Caller {
	return Caller{InstanceID: instanceID, Kind: KindSecretScanner, CredentialID: "secret_scanning"}
}

// ReportLeaks handles one leak report for instanceID ("" for the default
// instance, the one created at first start). The caller has been
// authenticated by the report's signature; this use case trusts nothing
// else about it. Each found credential is handled in its own change, so
// one failure does not undo the others' revocations.
func (a *Authority) ReportLeaks(ctx context.Context, instanceID string, policy LeakPolicy, reports []LeakReport) ([]LeakVerdict, error) {
	if instanceID == "" {
		var err error
		if instanceID, err = a.DefaultInstanceID(ctx); err != nil {
			return nil, err
		}
	}
	if len(reports) > MaxLeakReports {
		return nil, credential.Errorf(credential.CodeTooMany, "a leak report holds at most %d matches", MaxLeakReports)
	}
	c := secretScanner(instanceID)
	out := make([]LeakVerdict, len(reports))
	for i, r := range reports {
		v, err := a.ReportLeak(ctx, c, policy, r)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// ReportLeak handles one match for a signature-verified reporter (only
// ReportLeaks makes such a caller): a secret of the caller's instance is
// handled as policy says; anything else is a false positive (Found false)
// that reads at most one row and writes nothing.
func (a *Authority) ReportLeak(ctx context.Context, c Caller, policy LeakPolicy, r LeakReport) (LeakVerdict, error) {
	g, err := a.enter(ctx, c, "ReportLeak")
	if err != nil {
		return LeakVerdict{}, err
	}
	sum := sha256.Sum256([]byte(r.Token))
	v := LeakVerdict{TokenHash: hex.EncodeToString(sum[:]), Type: r.Type}
	if policy == "" {
		policy = LeakRevoke
	}
	secret, kind, err := credential.Parse(r.Token)
	if err != nil {
		return v, nil // not a keyward secret: no store read at all
	}
	d := a.keyring.Digest(secret)
	// A read first: an unknown secret (most of what a scanner sends is not
	// live) opens no write transaction.
	var (
		credID string
		found  bool
	)
	err = a.store.View(ctx, func(tx Tx) error {
		if kind == credential.KindActorTicket {
			t, err := tx.ActorTokenByDigest(ctx, d)
			if err == nil && t.InstanceID == c.InstanceID && t.Digest.Equal(d) {
				credID, found = t.ID, true
			}
			return ignoreNotFound(err)
		}
		cred, err := tx.CredentialByDigest(ctx, d)
		if err == nil && cred.InstanceID == c.InstanceID && cred.Kind == kind && cred.Digest.Equal(d) {
			credID, found = cred.ID, true
		}
		return ignoreNotFound(err)
	})
	if err != nil || !found {
		return v, err
	}
	target := credential.LeakTarget(kind)
	detail := map[string]string{"url": clip(r.URL, maxLeakURL), "source": clip(r.Source, maxLeakTypeField),
		"type": clip(r.Type, maxLeakTypeField), "policy": string(policy)}
	var outcome string
	err = g.mutate(ctx, func(tx *change) error {
		outcome = "quarantined"
		if kind == credential.KindActorTicket {
			if policy == LeakRevoke {
				ok, err := tx.TransitionActorToken(ctx, c.InstanceID, credID, credential.ActorPending, credential.ActorRevoked, tx.now, time.Time{})
				if err != nil {
					return err
				}
				outcome = "revoked"
				if !ok {
					outcome = "already_revoked" // accepted, expired or revoked: no longer usable as a ticket
				}
			}
		} else {
			cred, err := tx.GetCredential(ctx, c.InstanceID, credID)
			if err != nil {
				return err
			}
			switch {
			case cred.Revoked():
				outcome = "already_revoked"
			case policy == LeakRevoke:
				reason := clip("leaked: reported by secret scanning at "+r.URL, MaxRevocationReason)
				if err := tx.RevokeCredential(ctx, c.InstanceID, credID, tx.now, reason); err != nil {
					return err
				}
				tx.invalidate(cred.Digest)
				outcome = "revoked"
			}
		}
		detail["outcome"] = outcome
		return tx.audit("credential.leak", target, credID, detail)
	})
	if err != nil {
		return LeakVerdict{}, err
	}
	v.Found, v.Kind, v.Outcome = true, target, outcome
	return v, nil
}

func ignoreNotFound(err error) error {
	if credential.IsCode(err, credential.CodeNotFound) {
		return nil
	}
	return err
}

// clip bounds a reporter-supplied string kept in an audit event, cutting
// at a UTF-8 boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

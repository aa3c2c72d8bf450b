package console

import (
	"context"
	"time"

	"github.com/keyward/keyward/client"
)

// life is what every credential's detail shows of its life: who made it
// and when, when it was last used, when it expires and its state. Kind
// and ID name the credential for the usage spot beside it.
type life struct {
	Kind, ID string
	State    string
	Created  time.Time
	// CreatedBy is who made it: the API's own field when it has one, else
	// the actor of the credential's create event in the audit log
	// (CreatedByNote says why it is missing).
	CreatedBy, CreatedByNote string
	LastUsed                 *time.Time
	LastUsedNote             string // set when the server keeps no last use of the kind
	Expires                  *time.Time
	ExpiresNote              string // set to say why there is no expiry
	// Usage charts its verifications of the last 24 hours (nil: UsageNote
	// says why there is none).
	Usage     *usageChart
	UsageNote string
}

// withUsage gives l its verification chart, or the note why there is none.
func (c *Console) withUsage(ctx context.Context, s *session, kw *client.Client, l life) life {
	if l.Usage = c.usage(ctx, s, kw, l.ID, false); l.Usage == nil {
		l.UsageNote = "The usage chart needs analytics:read."
	}
	return l
}

// createdBy is the actor of the audit log's create event of target
// (action "machine.create" and so on), or a note why there is none.
func createdBy(ctx context.Context, s *session, kw *client.Client, action, target string) (by, note string) {
	if !s.Can("audit:read") {
		return "", "the audit log, which names the creator, needs audit:read"
	}
	page, err := kw.AuditEvents(ctx, client.AuditQuery{Action: action, TargetID: target, Limit: 1})
	if err != nil {
		return "", messageOf(err)
	}
	for _, e := range page.Events {
		if e.Outcome == "success" {
			return e.Actor.Kind + " " + e.Actor.ID, ""
		}
	}
	return "", "not in the audit log"
}

// state names a credential's state for its life.
func state(revoked, expired bool) string {
	switch {
	case revoked:
		return "revoked"
	case expired:
		return "expired"
	}
	return "live"
}

package console

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/keyward/keyward/client"
)

type auditData struct {
	Action, Target, Actor, Since, Until string
	Events                              []client.AuditEvent
	Total                               int
	Next                                string
	Chain                               string // what the page shows of the hash chain
	ChainOK                             bool
	Walked                              bool // filtered here over the newest events
}

// audit shows the audit log. The API filters by action and target; the
// actor and the time range are filtered here, over the newest
// auditWalkCap events.
func (c *Console) audit(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	q := r.URL.Query()
	d := auditData{Action: strings.TrimSpace(q.Get("action")), Target: strings.TrimSpace(q.Get("target")),
		Actor: strings.TrimSpace(q.Get("actor")), Since: q.Get("since"), Until: q.Get("until")}
	since, err := parseLocalTime(d.Since)
	if err != nil {
		return err
	}
	until, err := parseLocalTime(d.Until)
	if err != nil {
		return err
	}
	aq := client.AuditQuery{Action: d.Action, TargetID: d.Target, Limit: 50, Cursor: q.Get("cursor")}
	if d.Actor == "" && since.IsZero() && until.IsZero() {
		page, err := kw.AuditEvents(r.Context(), aq)
		if err != nil {
			return err
		}
		d.Events, d.Total = page.Events, page.TotalCount
		if page.NextCursor != "" {
			v := url.Values{"cursor": {page.NextCursor}}
			if d.Action != "" {
				v.Set("action", d.Action)
			}
			if d.Target != "" {
				v.Set("target", d.Target)
			}
			d.Next = Prefix + "audit?" + v.Encode()
		}
		if d.Action == "" && d.Target == "" {
			d.Chain, d.ChainOK = chainStatus(d.Events)
		}
	} else {
		d.Walked = true
		aq.Limit, aq.Cursor = 100, ""
		for n := 0; n < auditWalkCap; {
			page, err := kw.AuditEvents(r.Context(), aq)
			if err != nil {
				return err
			}
			stop := false
			for _, e := range page.Events {
				n++
				if !since.IsZero() && e.At.Before(since) {
					stop = true
					break
				}
				if !until.IsZero() && e.At.After(until) || d.Actor != "" && e.Actor.ID != d.Actor && e.CredentialID != d.Actor {
					continue
				}
				d.Events = append(d.Events, e)
			}
			if stop || page.NextCursor == "" {
				break
			}
			aq.Cursor = page.NextCursor
		}
		d.Total = len(d.Events)
	}
	return c.ok(w, r, s, "audit.html", "Audit log", "audit", d)
}

// parseLocalTime reads a datetime-local input ("2006-01-02T15:04", UTC);
// "" is the zero time.
func parseLocalTime(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", time.RFC3339} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, formError("Times are written 2006-01-02T15:04 (UTC).")
}

// chainStatus tells what a page of events, newest first and unfiltered,
// shows of the hash chain: each seq one below the one before, each event
// hashed. Recomputing the hashes is `keyward audit verify`'s job.
func chainStatus(events []client.AuditEvent) (string, bool) {
	if len(events) == 0 {
		return "", true
	}
	for i, e := range events {
		if e.Seq == 0 {
			return fmt.Sprintf("event %s was written before the chain existed (seq 0)", e.ID), true
		}
		if e.Hash == "" {
			return fmt.Sprintf("event %s (seq %d) carries no hash", e.ID, e.Seq), false
		}
		if i > 0 && events[i-1].Seq != e.Seq+1 {
			return fmt.Sprintf("a gap between seq %d and seq %d", e.Seq, events[i-1].Seq), false
		}
	}
	return fmt.Sprintf("seq %d to %d are contiguous and hashed", events[len(events)-1].Seq, events[0].Seq), true
}

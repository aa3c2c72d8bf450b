package console

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/keyward/keyward/client"
)

// countCap bounds how many items the overview walks to count a list
// with no total: past it the count reads "N+".
const countCap = 1000

type familyCount struct {
	Name, Link, Count string
	Note              string
}

type overviewData struct {
	Instance client.Instance
	Counts   []familyCount
	Chart    *usageChart // nil without analytics:read
	Recent   []client.AuditEvent
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	ctx := r.Context()
	d := overviewData{}
	if s.Can("instance:read") {
		in, err := kw.Instance(ctx)
		if err != nil {
			return err
		}
		d.Instance = in
	}
	d.Counts = append(d.Counts, c.countMachines(ctx, s, kw), c.countOrganizations(ctx, s, kw), c.countAdminKeys(ctx, s, kw))
	d.Chart = c.usage(ctx, s, kw, "", false)
	if s.Can("audit:read") {
		events, total, err := auditSince(ctx, kw, c.now().Add(-24*time.Hour))
		if err != nil {
			return err
		}
		d.Counts = append(d.Counts, familyCount{Name: "Audit events", Link: Prefix + "audit", Count: fmt.Sprint(total)})
		d.Recent = events[:min(len(events), 10)]
	} else {
		d.Counts = append(d.Counts, familyCount{Name: "Audit events", Count: "—", Note: "needs audit:read"})
	}
	return c.ok(w, r, s, "overview.html", "Overview", "overview", d)
}

func (c *Console) countMachines(ctx context.Context, s *session, kw *client.Client) familyCount {
	f := familyCount{Name: "Machines", Link: Prefix + "machines"}
	if !s.Can("machines:read") {
		f.Count, f.Note = "—", "needs machines:read"
		return f
	}
	n, more := 0, false
	for _, err := range client.Iterate(ctx, func(ctx context.Context, cursor string) (client.CursorPage[client.Machine], error) {
		return kw.ListMachines(ctx, client.MachineQuery{ListParams: client.ListParams{Limit: 100, Cursor: cursor}})
	}) {
		if err != nil {
			f.Count, f.Note = "?", messageOf(err)
			return f
		}
		if n++; n >= countCap {
			more = true
			break
		}
	}
	f.Count = fmt.Sprint(n)
	if more {
		f.Count += "+"
	}
	return f
}

func (c *Console) countOrganizations(ctx context.Context, s *session, kw *client.Client) familyCount {
	f := familyCount{Name: "Organizations", Link: Prefix + "organizations"}
	if !s.Can("organizations:read") {
		f.Count, f.Note = "—", "needs organizations:read"
		return f
	}
	list, err := kw.ListOrganizations(ctx, client.Page{Limit: 1})
	if err != nil {
		f.Count, f.Note = "?", messageOf(err)
		return f
	}
	f.Count = fmt.Sprint(list.TotalCount)
	return f
}

func (c *Console) countAdminKeys(ctx context.Context, s *session, kw *client.Client) familyCount {
	f := familyCount{Name: "Admin keys (live)", Link: Prefix + "admin_keys"}
	if !s.Can("admin_keys:read") {
		f.Count, f.Note = "—", "needs admin_keys:read"
		return f
	}
	keys, err := kw.ListAdminKeys(ctx)
	if err != nil {
		f.Count, f.Note = "?", messageOf(err)
		return f
	}
	live := 0
	for _, k := range keys {
		if !k.Revoked && (k.ExpiresAt == nil || k.ExpiresAt.After(c.now())) {
			live++
		}
	}
	f.Count = fmt.Sprint(live)
	return f
}

// auditSince reads the audit log, newest first, back to since (at most
// auditWalkCap events), and its total.
func auditSince(ctx context.Context, kw *client.Client, since time.Time) ([]client.AuditEvent, int, error) {
	var out []client.AuditEvent
	cursor, total := "", 0
	for len(out) < auditWalkCap {
		page, err := kw.AuditEvents(ctx, client.AuditQuery{Limit: 100, Cursor: cursor})
		if err != nil {
			return nil, 0, err
		}
		total = page.TotalCount
		for _, e := range page.Events {
			if e.At.Before(since) {
				return out, total, nil
			}
			out = append(out, e)
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	return out, total, nil
}

// auditWalkCap bounds how many events a page reads to filter or chart.
const auditWalkCap = 2000

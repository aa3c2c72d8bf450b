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
	Chart    *chart
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
	if s.Can("audit:read") {
		now := c.now()
		events, total, err := auditSince(ctx, kw, now.Add(-24*time.Hour))
		if err != nil {
			return err
		}
		d.Counts = append(d.Counts, familyCount{Name: "Audit events", Link: Prefix + "audit", Count: fmt.Sprint(total)})
		d.Chart = hourlyChart(events, now)
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

// chart is the overview's 24-hour bar chart, laid out here so the
// template only draws it.
type chart struct {
	Width, Height int
	Bars          []bar
	Ticks         []tick
	Max           int
	Success       int
	Denied        int
	Hours         []hourRow
}

type bar struct {
	X, Y, W, H int
	Class      string
	Label      string
}

type tick struct {
	X     int
	Label string
}

type hourRow struct {
	Hour            string
	Success, Denied int
}

// hourlyChart counts events per hour over the 24 hours before now, changes
// (success) and refusals (denied, weighted by the count each aggregated
// event stands for).
func hourlyChart(events []client.AuditEvent, now time.Time) *chart {
	const hours, colW, plotH, top = 24, 30, 120, 10
	var ok, denied [hours]int
	start := now.Truncate(time.Hour).Add(-(hours - 1) * time.Hour)
	for _, e := range events {
		if e.At.Before(start) {
			continue
		}
		slot := int(e.At.Sub(start) / time.Hour)
		if slot >= hours {
			continue
		}
		n := max(e.Count, 1)
		if e.Outcome == "success" {
			ok[slot] += n
		} else {
			denied[slot] += n
		}
	}
	ch := &chart{Width: hours * colW, Height: plotH + top + 20, Max: 1}
	for i := range hours {
		ch.Max = max(ch.Max, ok[i], denied[i])
		ch.Success += ok[i]
		ch.Denied += denied[i]
	}
	for i := range hours {
		at := start.Add(time.Duration(i) * time.Hour).UTC()
		label := at.Format("15:00")
		for j, v := range []int{ok[i], denied[i]} {
			h := v * plotH / ch.Max
			if v > 0 && h == 0 {
				h = 1
			}
			class, what := "ok", "changes"
			if j == 1 {
				class, what = "denied", "refusals"
			}
			ch.Bars = append(ch.Bars, bar{X: i*colW + 3 + j*12, Y: top + plotH - h, W: 11, H: h, Class: class,
				Label: fmt.Sprintf("%s UTC: %d %s", label, v, what)})
		}
		if i%6 == 0 {
			ch.Ticks = append(ch.Ticks, tick{X: i*colW + 3, Label: label})
		}
		ch.Hours = append(ch.Hours, hourRow{Hour: label, Success: ok[i], Denied: denied[i]})
	}
	return ch
}

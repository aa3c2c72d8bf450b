package console

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/keyward/keyward/client"
)

// usageChart is verifications per hour by outcome over the 24 hours
// before now (GET /v1/analytics/verifications), laid out here so the
// template only draws it: the overview's chart for the whole instance, and
// a small one per credential.
type usageChart struct {
	Width, Height int
	Base          int // the y of the axis
	TickY         int // the baseline of the hour labels
	Bars          []bar
	Ticks         []tick
	Max           int64 // the highest hour's count (at least 1: the scale)
	Peak          int64 // the highest hour's count, as shown
	Total         int64
	Outcomes      []outcomeTotal // the outcomes seen, valid first
	Hours         []usageHour
	Err           string
}

type outcomeTotal struct {
	Outcome string
	Class   string
	Count   int64
}

type usageHour struct {
	Hour   string
	Counts []int64 // in the order of Outcomes
}

// outcomeClass colours an outcome: valid, not found (an unknown or
// foreign token), and every refusal of a known credential.
func outcomeClass(outcome string) string {
	switch outcome {
	case "valid":
		return "ok"
	case "not_found":
		return "miss"
	}
	return "denied"
}

// outcomeOrder puts valid first, then the rest by name.
func outcomeOrder(a, b string) int {
	switch {
	case a == b:
		return 0
	case a == "valid":
		return -1
	case b == "valid":
		return 1
	case a < b:
		return -1
	}
	return 1
}

const usageHours = 24

// verificationChart lays out a series of hourly buckets; small is the
// per-credential sparkline.
func verificationChart(s client.VerificationSeries, now time.Time, small bool) *usageChart {
	colW, plotH, top := 30, 120, 10
	if small {
		colW, plotH, top = 6, 24, 1
	}
	start := now.UTC().Truncate(time.Hour).Add(-(usageHours - 1) * time.Hour)
	per := map[string]*[usageHours]int64{}
	var names []string
	for _, b := range s.Buckets {
		slot := int(b.Start.Sub(start) / time.Hour)
		if b.Start.Before(start) || slot >= usageHours {
			continue
		}
		if per[b.Outcome] == nil {
			per[b.Outcome] = &[usageHours]int64{}
			names = append(names, b.Outcome)
		}
		per[b.Outcome][slot] += b.Count
	}
	slices.SortFunc(names, outcomeOrder)
	ch := &usageChart{Width: usageHours * colW, Height: plotH + top + 20, Base: top + plotH, Max: 1}
	if small {
		ch.Height = plotH + top + 1
	}
	var sums [usageHours]int64
	for _, n := range names {
		t := outcomeTotal{Outcome: n, Class: outcomeClass(n)}
		for i, v := range per[n] {
			t.Count += v
			sums[i] += v
		}
		ch.Outcomes = append(ch.Outcomes, t)
		ch.Total += t.Count
	}
	for _, v := range sums {
		ch.Max, ch.Peak = max(ch.Max, v), max(ch.Peak, v)
	}
	ch.TickY = ch.Height - 5
	for i := range usageHours {
		label := start.Add(time.Duration(i) * time.Hour).Format("15:00")
		row := usageHour{Hour: label}
		y := ch.Base
		for _, n := range names {
			v := per[n][i]
			row.Counts = append(row.Counts, v)
			if v == 0 {
				continue
			}
			h := int(v * int64(plotH) / ch.Max)
			if h == 0 {
				h = 1
			}
			y -= h
			ch.Bars = append(ch.Bars, bar{X: i*colW + 1, Y: y, W: colW - 2, H: h, Class: outcomeClass(n),
				Label: fmt.Sprintf("%s UTC: %d %s", label, v, n)})
		}
		if !small && i%6 == 0 {
			ch.Ticks = append(ch.Ticks, tick{X: i*colW + 3, Label: label})
		}
		ch.Hours = append(ch.Hours, row)
	}
	return ch
}

// usage reads one credential's last 24 hours (all of the instance's when
// credentialID is ""), or nil when the key may not read analytics.
func (c *Console) usage(ctx context.Context, s *session, kw *client.Client, credentialID string, small bool) *usageChart {
	if !s.Can("analytics:read") {
		return nil
	}
	now := c.now()
	series, err := kw.Verifications(ctx, client.VerificationQuery{CredentialID: credentialID, Granularity: "hour",
		From: now.Add(-(usageHours - 1) * time.Hour), To: now})
	if err != nil {
		return &usageChart{Err: messageOf(err)}
	}
	return verificationChart(series, now, small)
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

// usages reads the small chart of each listed credential (nil without
// analytics:read): one call each, as the native API answers one series per
// call.
func usages[T any](c *Console, ctx context.Context, s *session, kw *client.Client, items []T, id func(T) string) map[string]*usageChart {
	if !s.Can("analytics:read") {
		return nil
	}
	out := make(map[string]*usageChart, len(items))
	for _, it := range items {
		out[id(it)] = c.usage(ctx, s, kw, id(it), true)
	}
	return out
}

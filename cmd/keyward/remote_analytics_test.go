package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
)

func TestRemoteAnalyticsVerifications(t *testing.T) {
	e := startRemote(t)
	for range 2 {
		e.env.Do(t, "POST", "/v1/verify", e.env.AdminKey, map[string]any{"token": "mt_not_ours"})
	}
	if err := e.env.Auth.FlushVerificationCounts(context.Background()); err != nil {
		t.Fatal(err)
	}
	out := e.ok("analytics", "verifications", "--outcome", "not_found").out
	if !strings.Contains(out, "OUTCOME") || !strings.Contains(out, "not_found") || !strings.Contains(out, " 2") {
		t.Fatalf("analytics verifications printed:\n%s", out)
	}
	var s struct {
		Data        []map[string]any `json:"data"`
		Granularity string           `json:"granularity"`
	}
	r := e.ok("analytics", "verifications", "--granularity", "day", "-o", "json")
	if err := json.Unmarshal([]byte(r.out), &s); err != nil || s.Granularity != "day" || len(s.Data) != 1 || s.Data[0]["count"] != float64(2) {
		t.Fatalf("-o json printed %s (%v)", r.out, err)
	}
	if r := e.run("analytics", "verifications", "--from", "yesterday"); r.code != exitUsage {
		t.Errorf("--from yesterday: exit %d:\n%s", r.code, r.all())
	}
	if r := e.run("analytics", "verifications", "--granularity", "week"); r.code == 0 || !strings.Contains(r.all(), "granularity") {
		t.Errorf("--granularity week: exit %d:\n%s", r.code, r.all())
	}
}

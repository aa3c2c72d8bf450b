package client_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keyward/keyward/client"
	"github.com/keyward/keyward/internal/httpapi/apitest"
	"github.com/keyward/keyward/internal/testkit"
)

func TestVerificationsAgainstKeyward(t *testing.T) {
	e := apitest.Start(t, testkit.OpenSQLite(t))
	ctx := context.Background()
	kw := client.New(e.URL, e.AdminKey)
	m := must(t, e.Do(t, "POST", "/clerk/v1/machines", e.AdminKey, map[string]any{"name": "worker"}), 200)
	tok := must(t, e.Do(t, "POST", "/clerk/v1/m2m_tokens", m["secret_key"].(string), map[string]any{}), 201)
	for range 3 {
		if _, err := kw.Verify(ctx, client.VerifyRequest{Token: tok["token"].(string)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Auth.FlushVerificationCounts(ctx); err != nil {
		t.Fatal(err)
	}
	s, err := kw.Verifications(ctx, client.VerificationQuery{CredentialID: tok["id"].(string), Granularity: "minute", From: e.Clock.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	minute := e.Clock.Now().UTC().Truncate(time.Minute)
	if s.Granularity != "minute" || len(s.Buckets) != 1 || !s.Buckets[0].Start.Equal(minute) || s.Buckets[0].Outcome != "valid" || s.Buckets[0].Count != 3 {
		t.Fatalf("series: %+v", s)
	}
	// The machine's key authenticated once, to mint.
	mk, err := kw.Verifications(ctx, client.VerificationQuery{Outcome: "valid", Granularity: "day"})
	if err != nil || len(mk.Buckets) != 1 || mk.Buckets[0].Count != 4 {
		t.Fatalf("the instance's valid verifications: %+v %v", mk, err)
	}
	_, err = kw.Verifications(ctx, client.VerificationQuery{Granularity: "week"})
	var apiErr *client.APIError
	if !errors.As(err, &apiErr) || apiErr.Param != "granularity" {
		t.Fatalf("granularity=week: %v", err)
	}
}

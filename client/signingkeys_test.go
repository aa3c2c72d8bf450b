package client_test

import (
	"context"
	"errors"
	"testing"

	"github.com/keyward/keyward/client"
	"github.com/keyward/keyward/internal/httpapi/apitest"
	"github.com/keyward/keyward/internal/testkit"
)

func TestSigningKeysListAndRotate(t *testing.T) {
	e := apitest.Start(t, testkit.OpenSQLite(t))
	ctx := context.Background()
	kw := client.New(e.URL, e.AdminKey, client.WithRetries(0))
	before, err := kw.SigningKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	k, err := kw.RotateSigningKey(ctx, "EdDSA")
	if err != nil || !k.Active || k.Algorithm != "EdDSA" || k.ID == "" || k.RetiredAt != nil {
		t.Fatalf("rotate: %+v %v", k, err)
	}
	after, err := kw.SigningKeys(ctx)
	if err != nil || len(after) != len(before)+1 {
		t.Fatalf("after rotate: %d keys (before %d) %v", len(after), len(before), err)
	}
	active := 0
	for _, s := range after {
		if s.Active {
			active++
			if s.ID != k.ID {
				t.Errorf("active key %s, want the new %s", s.ID, k.ID)
			}
		} else if s.RetiredAt == nil {
			t.Errorf("retired key %s without retired_at", s.ID)
		}
	}
	if active != 1 {
		t.Errorf("%d active keys", active)
	}
	if _, err := kw.RotateSigningKey(ctx, "HS256"); !errors.Is(err, client.ErrInvalid) {
		t.Errorf("a bad algorithm: %v", err)
	}
	ro, err := kw.CreateAdminKey(ctx, client.AdminKeyParams{Name: "reader", Permissions: []string{"instance:read"}})
	if err != nil {
		t.Fatal(err)
	}
	e.Remember(ro.Secret)
	rk := client.New(e.URL, ro.Secret, client.WithRetries(0))
	if _, err := rk.SigningKeys(ctx); err != nil {
		t.Errorf("instance:read lists: %v", err)
	}
	if _, err := rk.RotateSigningKey(ctx, ""); !errors.Is(err, client.ErrForbidden) {
		t.Errorf("instance:read rotates: %v", err)
	}
}

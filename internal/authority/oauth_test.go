package authority_test

import (
	"context"
	"slices"
	"testing"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

// A scope request narrows a token to some of the machine's scoped
// machines, each once, in the order asked; anything else is refused and
// mints nothing.
func TestCreateM2MTokenNarrowsToRequestedScopes(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		a := newAuthority(t, store)
		in, _, err := a.CreateInstance(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		op := authority.Operator(in.ID)
		machine := func(name string, scoped ...string) (credential.Machine, string) {
			t.Helper()
			m, secret, err := a.CreateMachine(ctx, op, authority.CreateMachineInput{Name: &name, ScopedMachines: scoped})
			if err != nil {
				t.Fatal(err)
			}
			return m, secret.Reveal()
		}
		x, _ := machine("x")
		y, _ := machine("y")
		z, _ := machine("z")
		client, secret := machine("client", x.ID, y.ID)
		caller, err := a.AuthenticateClient(ctx, client.ID, secret)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.AuthenticateClient(ctx, x.ID, secret); !credential.IsCode(err, credential.CodeUnauthenticated) {
			t.Fatalf("a secret presented with another machine's id: %v", err)
		}

		for _, tc := range []struct {
			name      string
			requested []string
			want      []string
		}{
			{"absent: all of them", nil, []string{x.ID, y.ID}},
			{"one", []string{y.ID}, []string{y.ID}},
			{"repeated and reordered", []string{y.ID, x.ID, y.ID}, []string{y.ID, x.ID}},
		} {
			for _, format := range []string{authority.FormatOpaque, authority.FormatJWT} {
				tok, err := a.CreateM2MToken(ctx, caller, authority.CreateM2MTokenInput{Format: format, Scopes: tc.requested})
				if err != nil || !slices.Equal(tok.Scopes, tc.want) {
					t.Errorf("%s (%s): scopes %v, %v; want %v", tc.name, format, tok.Scopes, err, tc.want)
				}
			}
		}
		_, before, err := a.ListM2MTokens(ctx, op, authority.ListM2MTokensInput{Subject: client.ID})
		if err != nil {
			t.Fatal(err)
		}
		_, err = a.CreateM2MToken(ctx, caller, authority.CreateM2MTokenInput{Scopes: []string{x.ID, z.ID}})
		if e := credential.AsError(err); e.Code != credential.CodeInvalid || e.Param != "scopes" {
			t.Fatalf("a machine it may not call: %v", err)
		}
		if _, after, _ := a.ListM2MTokens(ctx, op, authority.ListM2MTokensInput{Subject: client.ID}); after != before {
			t.Fatalf("a refused scope minted a token: %d → %d", before, after)
		}
	})
}

package authority

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/keyward/keyward/internal/credential"
)

// Client registry limits (the list's default page and keyward's bounds).
const (
	ClientListLimitDefault = 10
	ClientListLimitMax     = 1000
	MaxClientsPerUser      = 10000
)

// NewClient is a client document a surface has checked against its
// protocol's schema: the id it is registered under and the document as
// stored (opaque to the authority).
type NewClient struct {
	ClientID string
	Doc      json.RawMessage
}

// clientUser is the user a caller acts for on the client registry: a PAT
// needs keyward:clients; the admin key names the user in X-User-ID.
func (a *Authority) clientUser(ctx context.Context, c Caller) (string, error) {
	if c.Kind == credential.KindPAT && !slices.Contains(c.Scopes, ScopeClients) {
		return "", a.forbid(ctx, c, "scope_required", credential.Errorf(credential.CodeForbidden, "the client registry needs the keyward:clients scope"))
	}
	return a.actingUser(ctx, c)
}

// CreateClient registers a client for the acting user. decode reads and
// checks the surface's document; it runs after authorization, so a caller
// without the permission learns nothing about the document's rules.
func (a *Authority) CreateClient(ctx context.Context, c Caller, decode func() (NewClient, error)) (string, error) {
	g, err := a.enter(ctx, c, "CreateClient")
	if err != nil {
		return "", err
	}
	user, err := a.clientUser(ctx, c)
	if err != nil {
		return "", err
	}
	in, err := decode()
	if err != nil {
		return "", err
	}
	clientID, stored := in.ClientID, in.Doc
	err = g.mutate(ctx, func(tx *change) error {
		existing, err := tx.ListClients(ctx, c.InstanceID, user)
		if err != nil {
			return err
		}
		if len(existing) >= MaxClientsPerUser {
			return credential.Errorf(credential.CodeTooMany, "a user can register at most %d clients", MaxClientsPerUser)
		}
		err = tx.InsertClient(ctx, credential.Client{InstanceID: c.InstanceID, UserID: user, ClientID: clientID, Doc: stored, CreatedAt: tx.now})
		if credential.IsCode(err, credential.CodeConflict) {
			return credential.ParamError(credential.CodeConflict, "client_id", "a client with this id is already registered")
		}
		if err != nil {
			return err
		}
		return tx.audit("client.create", "client", clientID, map[string]string{"user_id": user})
	})
	return clientID, err
}

// GetClient returns one of the acting user's clients.
func (a *Authority) GetClient(ctx context.Context, c Caller, clientID string) (credential.Client, error) {
	if _, err := a.enter(ctx, c, "GetClient"); err != nil {
		return credential.Client{}, err
	}
	user, err := a.clientUser(ctx, c)
	if err != nil {
		return credential.Client{}, err
	}
	var cl credential.Client
	err = a.store.View(ctx, func(tx Tx) error {
		var err error
		cl, err = tx.GetClient(ctx, c.InstanceID, user, clientID)
		return err
	})
	return cl, err
}

// DeleteClient removes one of the acting user's clients.
func (a *Authority) DeleteClient(ctx context.Context, c Caller, clientID string) error {
	g, err := a.enter(ctx, c, "DeleteClient")
	if err != nil {
		return err
	}
	user, err := a.clientUser(ctx, c)
	if err != nil {
		return err
	}
	return g.mutate(ctx, func(tx *change) error {
		if err := tx.DeleteClient(ctx, c.InstanceID, user, clientID); err != nil {
			if credential.IsCode(err, credential.CodeNotFound) {
				return credential.ParamError(credential.CodeNotFound, "client_id", "no client with this id")
			}
			return err
		}
		return tx.audit("client.delete", "client", clientID, map[string]string{"user_id": user})
	})
}

// ListClients returns a page of the acting user's clients that keep
// accepts, in a stable order (registration time, then client_id). Paging
// applies after the filter.
func (a *Authority) ListClients(ctx context.Context, c Caller, keep func(credential.Client) (bool, error), limit, offset *int64) ([]credential.Client, error) {
	if _, err := a.enter(ctx, c, "ListClients"); err != nil {
		return nil, err
	}
	user, err := a.clientUser(ctx, c)
	if err != nil {
		return nil, err
	}
	l, o, err := page(limit, offset, ClientListLimitDefault, ClientListLimitMax)
	if err != nil {
		return nil, err
	}
	var all []credential.Client
	err = a.store.View(ctx, func(tx Tx) error {
		var err error
		all, err = tx.ListClients(ctx, c.InstanceID, user)
		return err
	})
	if err != nil {
		return nil, err
	}
	var out []credential.Client
	skipped := 0
	for _, cl := range all {
		ok, err := keep(cl)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		if skipped < o {
			skipped++
			continue
		}
		if len(out) == l {
			break
		}
		out = append(out, cl)
	}
	return out, nil
}

// ClientTokenLifetime is how long Freezer's client may reuse the answer of
// a Keystone token check before it asks again. keyward checks the token on
// every registry call regardless, so a revoked token stops at once.
const ClientTokenLifetime = time.Hour

// ClientIdentity is what a Keystone token check answers for the client
// registry: the user the token acts as.
type ClientIdentity struct {
	Caller    Caller
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// errAdminKeyNeedsUser refuses the admin key where no X-User-ID can name
// the user it acts for (Freezer's client never sends one).
var errAdminKeyNeedsUser = credential.Errorf(credential.CodeUnauthenticated,
	"the admin key acts only for the user named in X-User-ID, and none was sent; use a personal access token with the keyward:clients scope")

// IdentifyClientUser answers the Keystone token check Freezer's client
// makes before its calls. Only a credential that is its own user qualifies:
// a PAT (its scopes are checked by each registry call, as Keystone leaves
// authorization to the service). The admin key is refused with a clear
// error, and anything else with the one unauthenticated answer.
func (a *Authority) IdentifyClientUser(ctx context.Context, token string) (ClientIdentity, error) {
	c, err := a.authenticate(ctx, token, func(c Caller) error {
		switch {
		case c.Kind == credential.KindAdminKey:
			return errAdminKeyNeedsUser
		case c.Kind != credential.KindPAT:
			return a.wrongKind(ctx, c)
		}
		return nil
	})
	if err != nil {
		return ClientIdentity{}, err
	}
	now := a.clock.Now()
	expires := now.Add(ClientTokenLifetime)
	if !c.ExpiresAt.IsZero() && c.ExpiresAt.Before(expires) {
		expires = c.ExpiresAt // the answer never outlives the PAT it describes
	}
	return ClientIdentity{Caller: c, IssuedAt: now, ExpiresAt: expires}, nil
}

package authority

import (
	"context"
	"sync"

	"github.com/keyward/keyward/internal/credential"
)

// gatewayCaller is the party a forward-auth gateway verifies as: an admin
// key of the instance the operator bound the endpoint to that holds the
// verify permission and nothing else. It is never the result of
// authentication, so no handler holds it; only VerifyForGateway builds
// it, and it is used for nothing but Verify.
func gatewayCaller(instanceID string) Caller {
	return Caller{InstanceID: instanceID, Kind: credential.KindAdminKey, CredentialID: "gateway",
		Permissions: []credential.Permission{credential.PermVerify}}
}

// VerifyForGateway verifies a credential a gateway forwarded (nginx
// auth_request, Traefik ForwardAuth, Caddy forward_auth, Envoy ext_authz)
// through the one verify pipeline, on behalf of instanceID ("" for the
// default instance, the one created at first start).
//
// The gateway presents no key of its own: the answer concerns only the
// credential in the request, and tells its presenter no more than that
// credential already lets it learn (its subject, kind and scopes). A
// credential of another instance is not_found, as for any caller of this
// instance.
func (a *Authority) VerifyForGateway(ctx context.Context, instanceID string, in VerifyInput) (VerifyResult, error) {
	if instanceID == "" {
		var err error
		if instanceID, err = a.DefaultInstanceID(ctx); err != nil {
			return VerifyResult{}, err
		}
	}
	return a.Verify(ctx, gatewayCaller(instanceID), in)
}

// defaultInstance remembers the default instance's id once found:
// instances are never deleted, so it cannot change.
type defaultInstance struct {
	mu sync.Mutex
	id string
}

// DefaultInstanceID returns the id of the oldest instance, the one
// created at first start.
func (a *Authority) DefaultInstanceID(ctx context.Context) (string, error) {
	a.defaultInstance.mu.Lock()
	defer a.defaultInstance.mu.Unlock()
	if a.defaultInstance.id != "" {
		return a.defaultInstance.id, nil
	}
	all, err := a.ListInstances(ctx) // oldest first
	if err != nil {
		return "", err
	}
	if len(all) == 0 {
		return "", credential.Errorf(credential.CodeNotFound, "there is no instance yet")
	}
	a.defaultInstance.id = all[0].ID
	return all[0].ID, nil
}

// GatewayInstance checks that id names an instance, for a server that
// binds its forward-auth endpoint to one at start.
func (a *Authority) GatewayInstance(ctx context.Context, id string) (credential.Instance, error) {
	var in credential.Instance
	err := a.store.View(ctx, func(tx Tx) error {
		var err error
		in, err = tx.GetInstance(ctx, id)
		return err
	})
	if credential.IsCode(err, credential.CodeNotFound) {
		return in, credential.Errorf(credential.CodeNotFound, "no instance has the id %q", id)
	}
	return in, err
}

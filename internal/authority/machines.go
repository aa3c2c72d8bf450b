package authority

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keyward/keyward/internal/credential"
)

// Machine limits, as Clerk's Backend API sets them.
const (
	MachineNameMax          = 255
	MaxScopedMachines       = 150
	DefaultTokenTTL         = 3600
	MaxTokenTTL             = 315360000 // ten years
	MaxPreviousTokenTTL     = 28800     // eight hours
	MachineListLimitDefault = 10
	MachineListLimitMax     = 500
)

// CreateMachineInput is what creating a machine takes. Nil means absent.
type CreateMachineInput struct {
	Name            *string
	ScopedMachines  []string
	DefaultTokenTTL *int64
}

// UpdateMachineInput changes only the fields that are set.
type UpdateMachineInput struct {
	Name            *string
	DefaultTokenTTL *int64
}

// ListMachinesInput selects a page of machines. Nil Limit and Offset take
// their defaults; OrderBy is "name" or "created_at" with an optional + or -
// (default "-created_at").
type ListMachinesInput struct {
	Limit   *int64
	Offset  *int64
	Query   string
	OrderBy string
}

// CreateMachine creates a machine, its scopes and its first secret key, and
// returns the secret: the create response is where it is handed out.
func (a *Authority) CreateMachine(ctx context.Context, c Caller, in CreateMachineInput) (credential.Machine, credential.Secret, error) {
	g, err := a.enter(ctx, c, "CreateMachine")
	if err != nil {
		return credential.Machine{}, credential.Secret{}, err
	}
	if in.Name == nil {
		return credential.Machine{}, credential.Secret{}, credential.ParamError(credential.CodeMissing, "name", "is missing")
	}
	if err := validateMachineName(*in.Name); err != nil {
		return credential.Machine{}, credential.Secret{}, err
	}
	ttl := int64(DefaultTokenTTL)
	if in.DefaultTokenTTL != nil {
		if err := validateTokenTTL(*in.DefaultTokenTTL); err != nil {
			return credential.Machine{}, credential.Secret{}, err
		}
		ttl = *in.DefaultTokenTTL
	}
	if len(in.ScopedMachines) > MaxScopedMachines {
		return credential.Machine{}, credential.Secret{}, credential.ParamError(credential.CodeTooMany, "scoped_machines", fmt.Sprintf("should not exceed %d items", MaxScopedMachines))
	}
	scoped := dedupe(in.ScopedMachines)

	secret, err := credential.Generate(credential.KindMachineKey)
	if err != nil {
		return credential.Machine{}, credential.Secret{}, err
	}
	now := g.now
	m := credential.Machine{
		ID:              credential.NewID(credential.PrefixMachine, now),
		InstanceID:      c.InstanceID,
		Name:            *in.Name,
		DefaultTokenTTL: ttl,
		CreatedAt:       now,
		UpdatedAt:       now,
	}
	key, err := a.newMachineKey(m, secret, now)
	if err != nil {
		return credential.Machine{}, credential.Secret{}, err
	}
	err = g.mutate(ctx, func(tx *change) error {
		targets, err := tx.MachinesByID(ctx, c.InstanceID, scoped)
		if err != nil {
			return err
		}
		if missing := firstMissing(scoped, targets); missing != "" {
			return credential.ParamError(credential.CodeInvalid, "scoped_machines", "no machine was found with "+describeID(missing))
		}
		if err := tx.InsertMachine(ctx, m); err != nil {
			return err
		}
		for _, to := range scoped {
			s := credential.MachineScope{InstanceID: c.InstanceID, FromMachineID: m.ID, ToMachineID: to, CreatedAt: now}
			if err := tx.InsertMachineScope(ctx, s); err != nil {
				return err
			}
		}
		if err := tx.InsertCredential(ctx, key); err != nil {
			return err
		}
		m.ScopedMachines = orderLike(scoped, targets)
		return tx.audit("machine.create", "machine", m.ID, map[string]any{"name": m.Name, "scoped_machines": scoped})
	})
	if err != nil {
		return credential.Machine{}, credential.Secret{}, err
	}
	return m, secret, nil
}

// newMachineKey builds the stored form of a machine secret key: digested
// for lookup, and sealed under the row id so it stays retrievable.
func (a *Authority) newMachineKey(m credential.Machine, secret credential.Secret, now time.Time) (credential.Credential, error) {
	cred := a.newCredential(credential.NewID(credential.PrefixMachineKey, now), m.InstanceID, credential.KindMachineKey, secret, m.ID, now)
	sealed, err := a.keyring.Seal([]byte(secret.Reveal()), []byte(cred.ID))
	if err != nil {
		return cred, credential.Wrap(credential.CodeInternal, err, "seal machine secret key")
	}
	cred.Sealed = sealed
	return cred, nil
}

// GetMachine returns a machine of the caller's instance with its scoped
// machines.
func (a *Authority) GetMachine(ctx context.Context, c Caller, id string) (credential.Machine, error) {
	if _, err := a.enter(ctx, c, "GetMachine"); err != nil {
		return credential.Machine{}, err
	}
	var m credential.Machine
	err := a.store.View(ctx, func(tx Tx) error {
		var err error
		m, err = a.loadMachine(ctx, tx, c.InstanceID, id)
		return err
	})
	return m, err
}

func (a *Authority) loadMachine(ctx context.Context, tx MachineTx, instanceID, id string) (credential.Machine, error) {
	m, err := tx.GetMachine(ctx, instanceID, id)
	if err != nil {
		return m, machineNotFound(err, id)
	}
	scoped, err := tx.ScopedMachines(ctx, instanceID, []string{id})
	if err != nil {
		return m, err
	}
	m.ScopedMachines = scoped[id]
	return m, nil
}

// ListMachines returns a page of the caller's machines and the total count.
func (a *Authority) ListMachines(ctx context.Context, c Caller, in ListMachinesInput) ([]credential.Machine, int, error) {
	if _, err := a.enter(ctx, c, "ListMachines"); err != nil {
		return nil, 0, err
	}
	limit, offset, err := page(in.Limit, in.Offset, MachineListLimitDefault, MachineListLimitMax)
	if err != nil {
		return nil, 0, err
	}
	f := MachineFilter{InstanceID: c.InstanceID, Query: in.Query, OrderBy: OrderByCreatedAt, Descending: true, Limit: limit, Offset: offset}
	if in.OrderBy != "" {
		field, desc := strings.TrimLeft(in.OrderBy, "+-"), strings.HasPrefix(in.OrderBy, "-")
		if len(in.OrderBy)-len(field) > 1 || (field != string(OrderByName) && field != string(OrderByCreatedAt)) {
			return nil, 0, credential.ParamError(credential.CodeInvalid, "order_by", "must be name or created_at, optionally prefixed with + or -")
		}
		f.OrderBy, f.Descending = MachineOrder(field), desc
	}
	var (
		machines []credential.Machine
		total    int
	)
	err = a.store.View(ctx, func(tx Tx) error {
		var err error
		machines, total, err = tx.ListMachines(ctx, f)
		if err != nil || len(machines) == 0 {
			return err
		}
		ids := make([]string, len(machines))
		for i, m := range machines {
			ids[i] = m.ID
		}
		scoped, err := tx.ScopedMachines(ctx, c.InstanceID, ids)
		for i := range machines {
			machines[i].ScopedMachines = scoped[machines[i].ID]
		}
		return err
	})
	return machines, total, err
}

// UpdateMachine changes a machine's name and default token TTL. Scopes do
// not change here.
func (a *Authority) UpdateMachine(ctx context.Context, c Caller, id string, in UpdateMachineInput) (credential.Machine, error) {
	g, err := a.enter(ctx, c, "UpdateMachine")
	if err != nil {
		return credential.Machine{}, err
	}
	if in.Name != nil {
		if err := validateMachineName(*in.Name); err != nil {
			return credential.Machine{}, err
		}
	}
	if in.DefaultTokenTTL != nil {
		if err := validateTokenTTL(*in.DefaultTokenTTL); err != nil {
			return credential.Machine{}, err
		}
	}
	var m credential.Machine
	err = g.mutate(ctx, func(tx *change) error {
		var err error
		if m, err = a.loadMachine(ctx, tx, c.InstanceID, id); err != nil {
			return err
		}
		changed := map[string]any{}
		if in.Name != nil {
			m.Name, changed["name"] = *in.Name, *in.Name
		}
		if in.DefaultTokenTTL != nil {
			m.DefaultTokenTTL, changed["default_token_ttl"] = *in.DefaultTokenTTL, *in.DefaultTokenTTL
			tx.invalidateAll() // the lifetime cached for minting
		}
		m.UpdatedAt = tx.now
		if err := tx.UpdateMachine(ctx, m); err != nil {
			return err
		}
		return tx.audit("machine.update", "machine", id, changed)
	})
	return m, err
}

// DeleteMachine deletes a machine, every scope to and from it, and its
// secret keys, which stop authenticating at once; its M2M tokens and the
// API keys it owns are revoked.
func (a *Authority) DeleteMachine(ctx context.Context, c Caller, id string) error {
	return a.mutate(ctx, c, "DeleteMachine", func(tx *change) error {
		if err := tx.DeleteMachine(ctx, c.InstanceID, id); err != nil {
			return machineNotFound(err, id)
		}
		if _, err := tx.DeleteCredentials(ctx, c.InstanceID, credential.KindMachineKey, id); err != nil {
			return err
		}
		// Its keys held its controls; its credits are its own row.
		if err := tx.DeleteCredits(ctx, c.InstanceID, id); err != nil && !credential.IsCode(err, credential.CodeNotFound) {
			return err
		}
		// What the machine minted, and the API keys it owns, die with it.
		revoked, err := tx.RevokeCredentialsOf(ctx, c.InstanceID, credential.KindM2MToken, id, tx.now, "machine deleted")
		if err != nil {
			return err
		}
		keys, err := tx.RevokeCredentialsOf(ctx, c.InstanceID, credential.KindAPIKey, id, tx.now, "machine deleted")
		if err != nil {
			return err
		}
		tx.invalidateAll()
		return tx.audit("machine.delete", "machine", id, map[string]int{"m2m_tokens_revoked": revoked, "api_keys_revoked": keys})
	})
}

// MachineSecretKey returns a machine's current secret key: the one
// documented exception to "shown once" (Clerk's get-secret-key).
func (a *Authority) MachineSecretKey(ctx context.Context, c Caller, id string) (credential.Secret, error) {
	var key credential.Credential
	// A read that returns a secret is audited like a change: no secret
	// leaves without its record.
	err := a.mutate(ctx, c, "MachineSecretKey", func(tx *change) error {
		if _, err := tx.GetMachine(ctx, c.InstanceID, id); err != nil {
			return machineNotFound(err, id)
		}
		var err error
		if key, err = currentMachineKey(ctx, tx, c.InstanceID, id); err != nil {
			return err
		}
		return tx.audit("machine.secret_key.read", "machine", id, map[string]string{"secret_key_id": key.ID})
	})
	if err != nil {
		return credential.Secret{}, err
	}
	plain, err := a.keyring.Open(key.Sealed, []byte(key.ID))
	if err != nil {
		return credential.Secret{}, credential.Wrap(credential.CodeInternal, err, "open machine secret key")
	}
	secret, _, err := credential.Parse(string(plain))
	if err != nil {
		return credential.Secret{}, credential.Wrap(credential.CodeInternal, err, "stored machine secret key is malformed")
	}
	return secret, nil
}

// RotateMachineSecretKey issues a new secret key for a machine. The key
// that was current keeps authenticating for previousTTL seconds (0: not at
// all). Only one previous key is kept: a second rotation inside a grace
// window ends the older previous key at once, and the grace goes to the
// key that was current until now.
func (a *Authority) RotateMachineSecretKey(ctx context.Context, c Caller, id string, previousTTL *int64) (credential.Secret, error) {
	g, err := a.enter(ctx, c, "RotateMachineSecretKey")
	if err != nil {
		return credential.Secret{}, err
	}
	if previousTTL == nil {
		return credential.Secret{}, credential.ParamError(credential.CodeMissing, "previous_token_ttl", "is missing")
	}
	if *previousTTL < 0 || *previousTTL > MaxPreviousTokenTTL {
		return credential.Secret{}, credential.ParamError(credential.CodeInvalid, "previous_token_ttl", fmt.Sprintf("must be between 0 and %d", MaxPreviousTokenTTL))
	}
	secret, err := credential.Generate(credential.KindMachineKey)
	if err != nil {
		return credential.Secret{}, err
	}
	err = g.mutate(ctx, func(tx *change) error {
		m, err := tx.LockMachine(ctx, c.InstanceID, id) // against a concurrent controls change
		if err != nil {
			return machineNotFound(err, id)
		}
		keys, err := tx.ListCredentials(ctx, CredentialFilter{InstanceID: c.InstanceID, Kind: credential.KindMachineKey, Subject: id})
		if err != nil {
			return err
		}
		now := tx.now
		var ctl *Controls // the machine's controls, held by its newest key, go to the new one
		if newest, ok := newestKey(keys); ok {
			attrs, err := parseTokenAttrs(newest)
			if err != nil {
				return err
			}
			ctl = attrs.Controls
		}
		for _, k := range keys {
			switch {
			case k.Revoked():
			case !k.ExpiresAt.IsZero(): // an older previous key: its grace ends now
				err = tx.RevokeCredential(ctx, c.InstanceID, k.ID, now, "superseded by a later rotation")
			case *previousTTL == 0:
				err = tx.RevokeCredential(ctx, c.InstanceID, k.ID, now, "rotated")
			default:
				err = tx.SetCredentialExpiry(ctx, c.InstanceID, k.ID, now.Add(time.Duration(*previousTTL)*time.Second), now)
			}
			if err != nil {
				return err
			}
		}
		key, err := a.newMachineKey(m, secret, now)
		if err != nil {
			return err
		}
		if err := tx.InsertCredential(ctx, key); err != nil {
			return err
		}
		if ctl != nil {
			if err := writeControls(ctx, tx, key, ctl, now); err != nil {
				return err
			}
		}
		tx.invalidateAll()
		return tx.audit("machine.secret_key.rotate", "machine", id, map[string]int64{"previous_token_ttl": *previousTTL})
	})
	if err != nil {
		return credential.Secret{}, err
	}
	return secret, nil
}

// currentMachineKey is the machine's one key that is neither revoked nor
// in a grace window.
func currentMachineKey(ctx context.Context, tx CredentialTx, instanceID, machineID string) (credential.Credential, error) {
	keys, err := tx.ListCredentials(ctx, CredentialFilter{InstanceID: instanceID, Kind: credential.KindMachineKey, Subject: machineID})
	if err != nil {
		return credential.Credential{}, err
	}
	for _, k := range keys {
		if !k.Revoked() && k.ExpiresAt.IsZero() {
			return k, nil
		}
	}
	// Every key revoked (a leak report, say): there is nothing to show
	// until a rotation issues a new one.
	return credential.Credential{}, credential.Errorf(credential.CodeNotFound,
		"machine %.64s has no current secret key (it was revoked); rotate the secret key to issue a new one", machineID)
}

// CreateMachineScope lets machine from access machine to.
func (a *Authority) CreateMachineScope(ctx context.Context, c Caller, from, to string) (credential.MachineScope, error) {
	g, err := a.enter(ctx, c, "CreateMachineScope")
	if err != nil {
		return credential.MachineScope{}, err
	}
	if to == "" {
		return credential.MachineScope{}, credential.ParamError(credential.CodeMissing, "to_machine_id", "is missing")
	}
	if to == from {
		return credential.MachineScope{}, credential.ParamError(credential.CodeInvalid, "to_machine_id", "a machine cannot be scoped to itself")
	}
	s := credential.MachineScope{InstanceID: c.InstanceID, FromMachineID: from, ToMachineID: to, CreatedAt: g.now}
	err = g.mutate(ctx, func(tx *change) error {
		if _, err := tx.GetMachine(ctx, c.InstanceID, from); err != nil {
			return machineNotFound(err, from)
		}
		if _, err := tx.GetMachine(ctx, c.InstanceID, to); err != nil {
			if credential.IsCode(err, credential.CodeNotFound) {
				return credential.ParamError(credential.CodeInvalid, "to_machine_id", "no machine was found with "+describeID(to))
			}
			return err
		}
		if _, err := tx.GetMachineScope(ctx, c.InstanceID, from, to); err == nil {
			return credential.Errorf(credential.CodeConflict, "machine %s is already scoped to %s", from, to)
		} else if !credential.IsCode(err, credential.CodeNotFound) {
			return err
		}
		n, err := tx.CountMachineScopes(ctx, c.InstanceID, from)
		if err != nil {
			return err
		}
		if n >= MaxScopedMachines {
			return credential.ParamError(credential.CodeTooMany, "to_machine_id", fmt.Sprintf("a machine can have at most %d scopes", MaxScopedMachines))
		}
		if err := tx.InsertMachineScope(ctx, s); err != nil {
			return err
		}
		tx.invalidateAll()
		return tx.audit("machine.scope.create", "machine", from, map[string]string{"to_machine_id": to})
	})
	return s, err
}

// DeleteMachineScope removes the scope from → to.
func (a *Authority) DeleteMachineScope(ctx context.Context, c Caller, from, to string) error {
	return a.mutate(ctx, c, "DeleteMachineScope", func(tx *change) error {
		if _, err := tx.GetMachine(ctx, c.InstanceID, from); err != nil {
			return machineNotFound(err, from)
		}
		if err := tx.DeleteMachineScope(ctx, c.InstanceID, from, to); err != nil {
			if credential.IsCode(err, credential.CodeNotFound) {
				return credential.Errorf(credential.CodeNotFound, "machine %s is not scoped to %s", from, describeID(to))
			}
			return err
		}
		tx.invalidateAll()
		return tx.audit("machine.scope.delete", "machine", from, map[string]string{"to_machine_id": to})
	})
}

func validateMachineName(name string) error {
	switch n := utf8.RuneCountInString(name); {
	case strings.TrimSpace(name) == "":
		return credential.ParamError(credential.CodeMissing, "name", "is missing")
	case n > MachineNameMax:
		return credential.ParamError(credential.CodeTooLong, "name", fmt.Sprintf("must be at most %d characters", MachineNameMax))
	}
	return nil
}

func validateTokenTTL(ttl int64) error {
	if ttl < 1 || ttl > MaxTokenTTL {
		return credential.ParamError(credential.CodeInvalid, "default_token_ttl", fmt.Sprintf("must be between 1 and %d", MaxTokenTTL))
	}
	return nil
}

// machineNotFound gives a store's not-found Clerk's wording for machines.
func machineNotFound(err error, id string) error {
	if credential.IsCode(err, credential.CodeNotFound) {
		return credential.Errorf(credential.CodeNotFound, "no machine was found with %s", describeID(id))
	}
	return err
}

// describeID echoes an id back in an error only when it has a machine id's
// shape, so a secret pasted into the wrong field never returns in a
// response or a log line.
func describeID(id string) string {
	if credential.ValidID(credential.PrefixMachine, id) {
		return "id " + id
	}
	return "that id"
}

func dedupe(ids []string) []string {
	seen := make(map[string]bool, len(ids))
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

func firstMissing(ids []string, found []credential.Machine) string {
	have := make(map[string]bool, len(found))
	for _, m := range found {
		have[m.ID] = true
	}
	for _, id := range ids {
		if !have[id] {
			return id
		}
	}
	return ""
}

func orderLike(ids []string, ms []credential.Machine) []credential.Machine {
	byID := make(map[string]credential.Machine, len(ms))
	for _, m := range ms {
		byID[m.ID] = m
	}
	out := make([]credential.Machine, 0, len(ids))
	for _, id := range ids {
		out = append(out, byID[id])
	}
	return out
}

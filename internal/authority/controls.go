package authority

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unsafe"

	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/permquery"
)

// Controls at verify time: what a credential of any kind that verifies
// (API keys, M2M tokens, PATs, org tokens, and machines for their secret
// keys) may carry beside its state, and what Verify applies after the
// state rules passed, in this order:
//
//  1. permissions: the verify's query (permquery) must hold for the
//     credential's permissions ∪ its roles' (a role unknown at verify time
//     grants nothing); refused → insufficient_permissions, naming the
//     missing ones;
//  2. named rate limits, all or nothing through Limiter.TakeAll (a call
//     refused by one counts against none), an org token's Mist hourly
//     limit among them (hourlyTake); refused → rate_limited;
//  3. credits, taken by one conditional UPDATE in the store (CreditSpender),
//     with the refill applied in the same statement once a boundary passed;
//     refused → usage_exceeded. A call refused for its credits has counted
//     against its rate limits (limits are cheap and counted first, as a
//     credit taken could not be given back atomically).
//
// A credential presented to keyward itself as a caller (an org token on
// the Mist surface, a machine secret key, a PAT) is held to the same
// controls as a verify naming none (admitCaller), refused with a 429.
//
// The controls are kept in the credential's attrs under "controls" and so
// ride in its cache entry (a nil pointer for a credential without any, so
// that one pays nothing); the credits' remaining count changes on every
// verify and lives in its own table.
const (
	// MaxMetaBytes bounds meta, as compact JSON.
	MaxMetaBytes = 4096
	// MaxControlPermissions and MaxControlRoles bound the lists.
	MaxControlPermissions = 100
	MaxControlRoles       = 50
	// MaxNamedLimits bounds the named rate limits of one credential, and
	// of one identity: a credential's and its identity's together fit one
	// TakeAll (MaxLimitTakes; checked at compile time below).
	MaxNamedLimits = 16
	// MaxLimitNameBytes bounds a limit's or a role's name.
	MaxLimitNameBytes = 64
	// MaxCredits bounds a credit count or amount.
	MaxCredits = 1 << 50
)

// A verify takes the credential's limits, its identity's and an org
// token's hourly limit in one TakeAll: this fails to compile if they
// could exceed MaxLimitTakes.
var _ [MaxLimitTakes - 2*MaxNamedLimits - 1]struct{}

// Controls are a credential's controls, as stored in its attrs.
type Controls struct {
	Meta        json.RawMessage `json:"meta,omitempty"`
	Permissions []string        `json:"permissions,omitempty"`
	Roles       []string        `json:"roles,omitempty"`
	RateLimits  []NamedLimit    `json:"ratelimits,omitempty"`
	// Credits is set when the credential has a credits row; it holds the
	// refill rule (the remaining count lives in the credits table).
	Credits *CreditsRule `json:"credits,omitempty"`
	// IdentityID links the credential to an identity (identities.go),
	// whose limits and credits it shares.
	IdentityID string `json:"identity_id,omitempty"`
}

func (c *Controls) empty() bool {
	return c == nil || (len(c.Meta) == 0 && len(c.Permissions) == 0 && len(c.Roles) == 0 && len(c.RateLimits) == 0 && c.Credits == nil && c.IdentityID == "")
}

// bytes is what the controls hold, for the cache budget.
func (c *Controls) bytes() int {
	if c == nil {
		return 0
	}
	n := int(unsafe.Sizeof(*c)) + cap(c.Meta) + stringsBytes(c.Permissions) + stringsBytes(c.Roles) + len(c.IdentityID)
	for _, l := range c.RateLimits {
		n += int(unsafe.Sizeof(l)) + len(l.Name) + len(l.Algorithm)
	}
	if c.Credits != nil {
		n += int(unsafe.Sizeof(*c.Credits)) + len(c.Credits.Interval)
	}
	return n
}

// NamedLimit is one named rate limit: at most Limit units per Duration
// milliseconds. AutoApply limits apply to a verify that names none.
type NamedLimit struct {
	Name      string         `json:"name"`
	Limit     int64          `json:"limit"`
	Duration  int64          `json:"duration"`
	Algorithm LimitAlgorithm `json:"algorithm"`
	AutoApply bool           `json:"auto_apply,omitempty"`
}

// CreditsRule is how a credential's credits refill: to Amount (Unkey's
// semantics: the remaining count is set, not raised) at every boundary of
// Interval, 00:00 UTC daily or on DayOfMonth (1–31, clamped to the month's
// last day; default 1) monthly. Interval "" never refills.
type CreditsRule struct {
	Amount     int64  `json:"amount,omitempty"`
	Interval   string `json:"interval,omitempty"`
	DayOfMonth int    `json:"day_of_month,omitempty"`
}

// Credits is a credential's credits as the native API shows them.
type Credits struct {
	Remaining int64
	Refill    *CreditsRule
}

// ControlsView is a credential's controls as every surface shows them.
type ControlsView struct {
	CredentialID string
	Meta         json.RawMessage
	Permissions  []string
	Roles        []string
	RateLimits   []NamedLimit
	Credits      *Credits
	IdentityID   string
}

// ControlsInput changes a credential's controls: each field that is set
// replaces what is stored (nil leaves it; an empty value clears it).
type ControlsInput struct {
	Meta        json.RawMessage // JSON null clears
	Permissions *[]string
	Roles       *[]string
	RateLimits  *[]NamedLimit
	// Credits sets the credits (remaining and refill); SetCredits with a
	// nil Credits removes them.
	SetCredits bool
	Credits    *CreditsInput
	// IdentityID links the credential to an identity ("" unlinks it).
	IdentityID *string
}

// CreditsInput is {remaining, refill}.
type CreditsInput struct {
	Remaining int64
	Refill    *CreditsRule
}

func (in ControlsInput) isZero() bool {
	return in.Meta == nil && in.Permissions == nil && in.Roles == nil && in.RateLimits == nil && !in.SetCredits && in.IdentityID == nil
}

// validateControls checks every field of in and normalizes it (meta
// compacted, lists deduplicated); nothing is written before it passed.
func validateControls(in ControlsInput) (ControlsInput, error) {
	if in.Meta != nil {
		m, err := normalizeMeta(in.Meta)
		if err != nil {
			return in, err
		}
		in.Meta = m
		if m == nil {
			in.Meta = json.RawMessage{} // set, and cleared
		}
	}
	if in.Permissions != nil {
		p, err := validatePermissionNames("permissions", *in.Permissions, MaxControlPermissions)
		if err != nil {
			return in, err
		}
		in.Permissions = &p
	}
	if in.Roles != nil {
		r, err := validateRoleNames("roles", *in.Roles)
		if err != nil {
			return in, err
		}
		in.Roles = &r
	}
	if in.RateLimits != nil {
		if err := validateNamedLimits(*in.RateLimits); err != nil {
			return in, err
		}
	}
	if in.SetCredits && in.Credits != nil {
		if err := validateCredits(*in.Credits); err != nil {
			return in, err
		}
	}
	return in, nil
}

func normalizeMeta(raw json.RawMessage) (json.RawMessage, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, credential.ParamError(credential.CodeWrongType, "meta", "must be a JSON object")
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, credential.ParamError(credential.CodeWrongType, "meta", "must be a JSON object")
	}
	if buf.Len() > MaxMetaBytes {
		return nil, credential.ParamError(credential.CodeTooLong, "meta", fmt.Sprintf("must be at most %d bytes of JSON, got %d", MaxMetaBytes, buf.Len()))
	}
	if len(obj) == 0 {
		return nil, nil
	}
	return buf.Bytes(), nil
}

// validPermissionName reports whether s is one permission name of the
// query language: a query of that one name, printing as itself.
func validPermissionName(s string) bool {
	q, err := permquery.Parse(s)
	return err == nil && q.String() == s
}

func validatePermissionNames(param string, names []string, most int) ([]string, error) {
	if len(names) > most {
		return nil, credential.ParamError(credential.CodeTooMany, param, fmt.Sprintf("at most %d, got %d", most, len(names)))
	}
	for i, n := range names {
		if !validPermissionName(n) {
			return nil, credential.ParamError(credential.CodeInvalid, fmt.Sprintf("%s[%d]", param, i),
				fmt.Sprintf("%q is not a permission name (1 to %d of A-Z a-z 0-9 . _ - : * /, not AND or OR)", n, permquery.MaxNameBytes))
		}
	}
	out := dedupe(names)
	if out == nil {
		out = []string{}
	}
	return out, nil
}

// validRoleName: the permission-name characters, at most MaxLimitNameBytes.
func validRoleName(s string) bool { return len(s) <= MaxLimitNameBytes && validPermissionName(s) }

func validateRoleNames(param string, names []string) ([]string, error) {
	if len(names) > MaxControlRoles {
		return nil, credential.ParamError(credential.CodeTooMany, param, fmt.Sprintf("at most %d, got %d", MaxControlRoles, len(names)))
	}
	for i, n := range names {
		if !validRoleName(n) {
			return nil, credential.ParamError(credential.CodeInvalid, fmt.Sprintf("%s[%d]", param, i), fmt.Sprintf("%q is not a role name", n))
		}
	}
	out := dedupe(names)
	if out == nil {
		out = []string{}
	}
	return out, nil
}

func validateNamedLimits(ls []NamedLimit) error {
	if len(ls) > MaxNamedLimits {
		return credential.ParamError(credential.CodeTooMany, "ratelimits", fmt.Sprintf("at most %d rate limits, got %d", MaxNamedLimits, len(ls)))
	}
	takes := make([]LimitTake, len(ls))
	for i, l := range ls {
		if l.Name == "" || len(l.Name) > MaxLimitNameBytes || strings.ContainsAny(l.Name, " \t\r\n") {
			return credential.ParamError(credential.CodeInvalid, fmt.Sprintf("ratelimits[%d].name", i), fmt.Sprintf("must be 1 to %d bytes without whitespace", MaxLimitNameBytes))
		}
		if l.Name == OrgTokenHourlyLimitName { // reported beside them, for an org token
			return credential.ParamError(credential.CodeInvalid, fmt.Sprintf("ratelimits[%d].name", i), fmt.Sprintf("%q is reserved for an org token's hourly limit", l.Name))
		}
		for j := range i {
			if ls[j].Name == l.Name {
				return credential.ParamError(credential.CodeConstraint, fmt.Sprintf("ratelimits[%d].name", i), fmt.Sprintf("limit %q appears twice", l.Name))
			}
		}
		takes[i] = LimitTake{Key: l.Name, Limit: l.Limit, Cost: 1, Window: time.Duration(l.Duration) * time.Millisecond, Algorithm: l.Algorithm}
		if l.Duration < 0 || l.Duration > int64(MaxLimitWindow/time.Millisecond) {
			takes[i].Window = 0
		}
	}
	if _, err := PlanLimits(time.Unix(0, 0), takes); err != nil {
		e := credential.AsError(err)
		param := strings.Replace(strings.Replace(e.Param, "limits[", "ratelimits[", 1), ".window", ".duration", 1)
		return credential.ParamError(e.Code, param, strings.ReplaceAll(e.Message, "window", "duration (ms)"))
	}
	return nil
}

func validateCredits(c CreditsInput) error {
	if c.Remaining < 0 || c.Remaining > MaxCredits {
		return credential.ParamError(credential.CodeInvalid, "credits.remaining", fmt.Sprintf("must be between 0 and %d", int64(MaxCredits)))
	}
	if r := c.Refill; r != nil {
		switch {
		case r.Interval != "daily" && r.Interval != "monthly":
			return credential.ParamError(credential.CodeInvalid, "credits.refill.interval", `must be "daily" or "monthly"`)
		case r.Amount < 1 || r.Amount > MaxCredits:
			return credential.ParamError(credential.CodeInvalid, "credits.refill.amount", fmt.Sprintf("must be between 1 and %d", int64(MaxCredits)))
		case r.DayOfMonth != 0 && (r.Interval != "monthly" || r.DayOfMonth < 1 || r.DayOfMonth > 31):
			return credential.ParamError(credential.CodeInvalid, "credits.refill.day_of_month", "must be 1 to 31, and only with a monthly interval")
		}
	}
	return nil
}

// lastRefill is the latest refill boundary at or before now (UTC), or the
// zero time for a rule that never refills.
func (r *CreditsRule) lastRefill(now time.Time) time.Time {
	if r == nil || r.Interval == "" {
		return time.Time{}
	}
	now = now.UTC()
	y, m, d := now.Date()
	if r.Interval == "daily" {
		return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	}
	day := max(r.DayOfMonth, 1)
	at := func(y int, m time.Month) time.Time {
		last := time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
		return time.Date(y, m, min(day, last), 0, 0, 0, 0, time.UTC)
	}
	if b := at(y, m); !b.After(now) {
		return b
	}
	return at(y, m-1)
}

// CreditsRow is a credits row: Owner is a credential's id.
type CreditsRow struct {
	InstanceID   string
	OwnerID      string
	Remaining    int64
	RefillAmount int64
	RefilledAt   time.Time
	UpdatedAt    time.Time
}

// CreditSpender is implemented by a Store that takes credits in one
// statement outside any explicit transaction, the verify path's one write:
//
//	UPDATE credits SET remaining = base − cost … WHERE … AND base >= cost
//
// where base is refill_amount when refillBoundary is set and the row was
// last refilled before it, else remaining (the refill and the take are one
// atomic step, so concurrent verifies on any number of nodes never take
// more than there is). It reports whether the cost was taken and the
// remaining count after the call (as read, when refused); CodeNotFound
// when the owner has no credits row.
type CreditSpender interface {
	SpendCredits(ctx context.Context, instanceID, ownerID string, cost int64, refillBoundary, now time.Time) (taken bool, remaining int64, err error)
	// RefundCredits adds back what a SpendCredits took, when a later
	// control (the identity's credits) refused the call.
	RefundCredits(ctx context.Context, instanceID, ownerID string, amount int64) error
}

// RoleTx reads and writes the instance's roles and the credits rows.
type RoleTx interface {
	// InsertRole stores a role; CodeConflict when the name is taken.
	InsertRole(ctx context.Context, r Role) error
	GetRole(ctx context.Context, instanceID, name string) (Role, error)
	// ListRoles returns the instance's roles by name.
	ListRoles(ctx context.Context, instanceID string) ([]Role, error)
	// UpdateRole writes permissions and updated_at; CodeNotFound if none.
	UpdateRole(ctx context.Context, r Role) error
	DeleteRole(ctx context.Context, instanceID, name string) error

	// PutCredits inserts or replaces a credits row.
	PutCredits(ctx context.Context, row CreditsRow) error
	GetCredits(ctx context.Context, instanceID, ownerID string) (CreditsRow, error)
	// AddCredits adds delta to remaining, clamped at 0 and MaxCredits,
	// returning the row after; CodeNotFound if none.
	AddCredits(ctx context.Context, instanceID, ownerID string, delta int64, at time.Time) (CreditsRow, error)
	DeleteCredits(ctx context.Context, instanceID, ownerID string) error
}

// Role is a named set of permissions of one instance.
type Role struct {
	InstanceID  string
	Name        string
	Permissions []string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// controlledKind is the kind an id's shape names: ak_ API keys, mt_ M2M
// tokens, pt_ PATs, mch_ machines (their secret keys), and anything else
// an org token (a UUID). The credential is then loaded and must be of
// that kind.
func controlledKind(id string) credential.Kind {
	switch {
	case strings.HasPrefix(id, credential.PrefixAPIKey):
		return credential.KindAPIKey
	case strings.HasPrefix(id, "mt_"):
		return credential.KindM2MToken
	case strings.HasPrefix(id, PrefixPAT):
		return credential.KindPAT
	case strings.HasPrefix(id, credential.PrefixMachine):
		return credential.KindMachineKey
	}
	return credential.KindOrgToken
}

var errCredentialNotFound = credential.Errorf(credential.CodeNotFound, "no credential was found with that id")

// controlTarget is what a controls change addresses: the credentials that
// carry the controls, and the owner their credits, limits and identity
// link are kept under. For most kinds that is one credential, its own
// owner; a machine's controls are carried by every live secret key of it
// (a rotation's previous key keeps authenticating in its grace window)
// and by its newest key whatever its state (retention keeps that one), and
// owned by the machine, so they outlive a rotation and a revoked key.
type controlTarget struct {
	kind  credential.Kind
	owner string
	creds []credential.Credential
	ctl   *Controls // as stored on creds[0]
}

// controlOwner is whom a credential's controls count against: the
// machine for a machine secret key, the credential itself otherwise.
func controlOwner(cred credential.Credential) string {
	if cred.Kind == credential.KindMachineKey {
		return cred.Subject
	}
	return cred.ID
}

// loadControlTarget loads what id addresses in the caller's instance;
// anything else (another instance, another kind, a machine without any
// key) is the same not found.
func loadControlTarget(ctx context.Context, tx Tx, instanceID, id string, forUpdate bool) (controlTarget, error) {
	kind := controlledKind(id)
	if kind != credential.KindMachineKey {
		cred, attrs, err := controlledCredential(ctx, tx, instanceID, id, kind, forUpdate)
		if err != nil {
			return controlTarget{}, err
		}
		return controlTarget{kind: kind, owner: cred.ID, creds: []credential.Credential{cred}, ctl: attrs.Controls}, nil
	}
	if !credential.ValidID(credential.PrefixMachine, id) {
		return controlTarget{}, errCredentialNotFound
	}
	// For a change, the machine's row is held for the rest of the
	// transaction: a controls change and a rotation of one machine run one
	// after the other, so neither writes controls the other has not seen.
	getMachine := tx.GetMachine
	if forUpdate {
		getMachine = tx.LockMachine
	}
	if _, err := getMachine(ctx, instanceID, id); credential.IsCode(err, credential.CodeNotFound) {
		return controlTarget{}, errCredentialNotFound
	} else if err != nil {
		return controlTarget{}, err
	}
	keys, err := tx.ListCredentials(ctx, CredentialFilter{InstanceID: instanceID, Kind: credential.KindMachineKey, Subject: id})
	if err != nil {
		return controlTarget{}, err
	}
	newest, ok := newestKey(keys)
	if !ok {
		return controlTarget{}, errCredentialNotFound
	}
	// Every live key carries the controls, and so does the newest key
	// whatever its state: a rotation copies them from it, so they outlive
	// a key revoked outside a rotation (a leak report).
	t := controlTarget{kind: credential.KindMachineKey, owner: id, creds: []credential.Credential{newest}}
	for _, k := range keys {
		if !k.Revoked() && k.ID != newest.ID {
			t.creds = append(t.creds, k)
		}
	}
	attrs, err := parseTokenAttrs(newest)
	t.ctl = attrs.Controls
	return t, err
}

// newestKey is the machine key created last (ids break a tie), whatever
// its state: the one that holds the machine's controls.
func newestKey(keys []credential.Credential) (credential.Credential, bool) {
	var newest credential.Credential
	for _, k := range keys {
		if newest.ID == "" || k.CreatedAt.After(newest.CreatedAt) || (k.CreatedAt.Equal(newest.CreatedAt) && k.ID > newest.ID) {
			newest = k
		}
	}
	return newest, newest.ID != ""
}

// machineControlsError refuses the controls a machine's keys cannot use:
// they authenticate to keyward, where no permission query is asked, and
// a machine is the platform's own, not a customer's.
func machineControlsError(in ControlsInput) error {
	for _, f := range []struct {
		param string
		set   bool
	}{{"permissions", in.Permissions != nil}, {"roles", in.Roles != nil}, {"identity_id", in.IdentityID != nil}} {
		if f.set {
			return credential.ParamError(credential.CodeInvalid, f.param, "a machine's controls are meta, ratelimits and credits")
		}
	}
	return nil
}

// controlledCredential loads a credential of the caller's instance and of
// kind; anything else is the same not found.
func controlledCredential(ctx context.Context, tx CredentialTx, instanceID, id string, kind credential.Kind, lock bool) (credential.Credential, tokenAttrs, error) {
	get := tx.GetCredential
	if lock {
		// Held for the rest of a change: two controls changes of one
		// credential (on two nodes) run one after the other, so neither
		// writes back controls without the other's.
		get = tx.LockCredential
	}
	cred, err := get(ctx, instanceID, id)
	switch {
	case credential.IsCode(err, credential.CodeNotFound), err == nil && cred.Kind != kind:
		return credential.Credential{}, tokenAttrs{}, errCredentialNotFound
	case err != nil:
		return cred, tokenAttrs{}, err
	}
	attrs, err := parseTokenAttrs(cred)
	return cred, attrs, err
}

// SetCredentialControls changes a credential's controls: meta,
// permissions, roles (each must exist), named rate limits and credits.
// The credential's cached entry is dropped on every node.
func (a *Authority) SetCredentialControls(ctx context.Context, c Caller, id string, in ControlsInput) (ControlsView, error) {
	g, err := a.enterControls(ctx, c, "SetCredentialControls", id, true)
	if err != nil {
		return ControlsView{}, err
	}
	if in, err = validateControls(in); err != nil {
		return ControlsView{}, err
	}
	if controlledKind(id) == credential.KindMachineKey {
		if err := machineControlsError(in); err != nil {
			return ControlsView{}, err
		}
	}
	var view ControlsView
	err = g.mutate(ctx, func(tx *change) error {
		t, err := loadControlTarget(ctx, tx, c.InstanceID, id, true)
		if err != nil {
			return err
		}
		ctl, err := applyControls(ctx, tx, c.InstanceID, t.owner, t.ctl, in, tx.now)
		if err != nil {
			return err
		}
		for _, cred := range t.creds {
			if err := writeControls(ctx, tx, cred, ctl, tx.now); err != nil {
				return err
			}
			tx.invalidate(cred.Digest)
		}
		if view, err = controlsView(ctx, tx, t.owner, c.InstanceID, ctl); err != nil {
			return err
		}
		return tx.audit("credential.controls", auditKind(t.kind), t.owner, controlsAudit(ctl))
	})
	return view, err
}

// enterControls enters a controls use case. A machine's controls also
// need the machines permission (read, or write for a change): they can
// throttle every call of the machine's keys, so whoever sets them must
// be allowed to manage the machine.
func (a *Authority) enterControls(ctx context.Context, c Caller, uc useCase, id string, write bool) (grant, error) {
	g, err := a.enter(ctx, c, uc)
	if err != nil || controlledKind(id) != credential.KindMachineKey {
		return g, err
	}
	p := credential.Machines.Read()
	if write {
		p = credential.Machines.Write()
	}
	return g, a.authorize(ctx, c, p)
}

// auditKind is the audit log's target type of a controls target: a
// machine's are the machine's.
func auditKind(k credential.Kind) string {
	if k == credential.KindMachineKey {
		return "machine"
	}
	return string(k)
}

// GetCredentialControls returns a credential's controls.
func (a *Authority) GetCredentialControls(ctx context.Context, c Caller, id string) (ControlsView, error) {
	if _, err := a.enterControls(ctx, c, "GetCredentialControls", id, false); err != nil {
		return ControlsView{}, err
	}
	var view ControlsView
	err := a.store.View(ctx, func(tx Tx) error {
		t, err := loadControlTarget(ctx, tx, c.InstanceID, id, false)
		if err != nil {
			return err
		}
		view, err = controlsView(ctx, tx, t.owner, c.InstanceID, t.ctl)
		return err
	})
	return view, err
}

func controlsAudit(ctl *Controls) map[string]any {
	if ctl == nil {
		return map[string]any{}
	}
	d := map[string]any{"permissions": ctl.Permissions, "roles": ctl.Roles, "ratelimits": len(ctl.RateLimits), "meta_bytes": len(ctl.Meta)}
	if ctl.Credits != nil {
		d["credits"] = true
	}
	if ctl.IdentityID != "" {
		d["identity_id"] = ctl.IdentityID
	}
	return d
}

// applyControls merges in into the stored controls inside tx: roles must
// exist, credits rows are written. It returns the controls to store (nil
// when none is left).
func applyControls(ctx context.Context, tx Tx, instanceID, ownerID string, old *Controls, in ControlsInput, now time.Time) (*Controls, error) {
	var ctl Controls
	if old != nil {
		ctl = *old
	}
	if in.Meta != nil {
		ctl.Meta = nil
		if len(in.Meta) > 0 {
			ctl.Meta = in.Meta
		}
	}
	if in.Permissions != nil {
		ctl.Permissions = *in.Permissions
	}
	if in.Roles != nil {
		for i, name := range *in.Roles {
			if _, err := tx.GetRole(ctx, instanceID, name); credential.IsCode(err, credential.CodeNotFound) {
				return nil, credential.ParamError(credential.CodeInvalid, fmt.Sprintf("roles[%d]", i), fmt.Sprintf("no role named %q in this instance", name))
			} else if err != nil {
				return nil, err
			}
		}
		ctl.Roles = *in.Roles
	}
	if in.RateLimits != nil {
		ctl.RateLimits = *in.RateLimits
	}
	if in.IdentityID != nil {
		if id := *in.IdentityID; id != "" {
			if _, err := tx.GetIdentity(ctx, instanceID, id); credential.IsCode(err, credential.CodeNotFound) {
				return nil, credential.ParamError(credential.CodeInvalid, "identity_id", "no identity with that id in this instance")
			} else if err != nil {
				return nil, err
			}
		}
		if err := tx.LinkIdentity(ctx, instanceID, ownerID, *in.IdentityID); err != nil {
			return nil, err
		}
		ctl.IdentityID = *in.IdentityID
	}
	if in.SetCredits {
		if in.Credits == nil {
			ctl.Credits = nil
			if err := tx.DeleteCredits(ctx, instanceID, ownerID); err != nil && !credential.IsCode(err, credential.CodeNotFound) {
				return nil, err
			}
		} else {
			rule := CreditsRule{}
			row := CreditsRow{InstanceID: instanceID, OwnerID: ownerID, Remaining: in.Credits.Remaining, RefilledAt: now, UpdatedAt: now}
			if r := in.Credits.Refill; r != nil {
				rule = *r
				row.RefillAmount = r.Amount
			}
			ctl.Credits = &rule
			if err := tx.PutCredits(ctx, row); err != nil {
				return nil, err
			}
		}
	}
	if len(ctl.Permissions) == 0 {
		ctl.Permissions = nil
	}
	if len(ctl.Roles) == 0 {
		ctl.Roles = nil
	}
	if len(ctl.RateLimits) == 0 {
		ctl.RateLimits = nil
	}
	if ctl.empty() {
		return nil, nil
	}
	return &ctl, nil
}

// writeControls stores ctl under "controls" in the credential's attrs,
// keeping every other attribute as it is.
func writeControls(ctx context.Context, tx Tx, cred credential.Credential, ctl *Controls, now time.Time) error {
	m := map[string]json.RawMessage{}
	if len(cred.Attrs) > 0 {
		if err := json.Unmarshal(cred.Attrs, &m); err != nil {
			return credential.Wrap(credential.CodeInternal, err, "decode attributes of "+cred.ID)
		}
	}
	if ctl == nil {
		delete(m, "controls")
	} else {
		raw, err := json.Marshal(ctl)
		if err != nil {
			return credential.Wrap(credential.CodeInternal, err, "encode controls")
		}
		m["controls"] = raw
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return credential.Wrap(credential.CodeInternal, err, "encode attributes")
	}
	return tx.UpdateCredentialAttrs(ctx, cred.InstanceID, cred.ID, raw, now)
}

func controlsView(ctx context.Context, tx Tx, id, instanceID string, ctl *Controls) (ControlsView, error) {
	v := ControlsView{CredentialID: id, Permissions: []string{}, Roles: []string{}, RateLimits: []NamedLimit{}}
	if ctl == nil {
		return v, nil
	}
	v.Meta, v.IdentityID = ctl.Meta, ctl.IdentityID
	if ctl.Permissions != nil {
		v.Permissions = ctl.Permissions
	}
	if ctl.Roles != nil {
		v.Roles = ctl.Roles
	}
	if ctl.RateLimits != nil {
		v.RateLimits = ctl.RateLimits
	}
	if ctl.Credits != nil {
		row, err := tx.GetCredits(ctx, instanceID, id)
		if err != nil && !credential.IsCode(err, credential.CodeNotFound) {
			return v, err
		}
		v.Credits = &Credits{Remaining: row.Remaining}
		if ctl.Credits.Interval != "" {
			r := *ctl.Credits
			v.Credits.Refill = &r
		}
	}
	return v, nil
}

// CreditsOp is what ChangeCredits does: set, increment or decrement.
type CreditsOp string

// ChangeCredits sets, increments or decrements a credential's remaining
// credits (it must have credits). Nothing is cached to drop: verifies read
// the count from the store.
func (a *Authority) ChangeCredits(ctx context.Context, c Caller, id string, op CreditsOp, amount *int64) (Credits, error) {
	g, err := a.enterControls(ctx, c, "ChangeCredits", id, true)
	if err != nil {
		return Credits{}, err
	}
	switch {
	case op != "set" && op != "increment" && op != "decrement":
		return Credits{}, credential.ParamError(credential.CodeInvalid, "op", `must be "set", "increment" or "decrement"`)
	case amount == nil:
		return Credits{}, credential.ParamError(credential.CodeMissing, "amount", "is missing")
	case *amount < 0 || *amount > MaxCredits:
		return Credits{}, credential.ParamError(credential.CodeInvalid, "amount", fmt.Sprintf("must be between 0 and %d", int64(MaxCredits)))
	}
	var out Credits
	err = g.mutate(ctx, func(tx *change) error {
		t, err := loadControlTarget(ctx, tx, c.InstanceID, id, true)
		if err != nil {
			return err
		}
		if t.ctl == nil || t.ctl.Credits == nil {
			return credential.ParamError(credential.CodeInvalid, "credential_id", "the credential has no credits: set them with PATCH /v1/credentials/{credential_id}/controls")
		}
		var row CreditsRow
		switch op {
		case "set":
			row, err = tx.GetCredits(ctx, c.InstanceID, t.owner)
			if err == nil {
				row.Remaining, row.UpdatedAt = *amount, tx.now
				err = tx.PutCredits(ctx, row)
			}
		case "increment":
			row, err = tx.AddCredits(ctx, c.InstanceID, t.owner, *amount, tx.now)
		default:
			row, err = tx.AddCredits(ctx, c.InstanceID, t.owner, -*amount, tx.now)
		}
		if err != nil {
			return err
		}
		// Changed credits may run out again: announce it again.
		for _, cred := range t.creds {
			if err := tx.DeleteNotices(ctx, c.InstanceID, cred.ID, noticeCreditsLow, noticeUsageExceeded); err != nil {
				return err
			}
		}
		out = Credits{Remaining: row.Remaining}
		if t.ctl.Credits.Interval != "" {
			r := *t.ctl.Credits
			out.Refill = &r
		}
		return tx.audit("credential.credits", auditKind(t.kind), t.owner, map[string]any{"op": op, "amount": *amount, "remaining": row.Remaining})
	})
	return out, err
}

// Roles.

func roleView(r Role) Role {
	if r.Permissions == nil {
		r.Permissions = []string{}
	}
	return r
}

// CreateRole adds a role to the caller's instance.
func (a *Authority) CreateRole(ctx context.Context, c Caller, name string, permissions []string) (Role, error) {
	g, err := a.enter(ctx, c, "CreateRole")
	if err != nil {
		return Role{}, err
	}
	if name == "" {
		return Role{}, credential.ParamError(credential.CodeMissing, "name", "is missing")
	}
	if !validRoleName(name) {
		return Role{}, credential.ParamError(credential.CodeInvalid, "name", fmt.Sprintf("%q is not a role name (1 to %d of A-Z a-z 0-9 . _ - : * /)", name, MaxLimitNameBytes))
	}
	perms, err := validatePermissionNames("permissions", permissions, MaxControlPermissions)
	if err != nil {
		return Role{}, err
	}
	r := Role{InstanceID: c.InstanceID, Name: name, Permissions: perms, CreatedAt: g.now, UpdatedAt: g.now}
	err = g.mutate(ctx, func(tx *change) error {
		if err := tx.InsertRole(ctx, r); err != nil {
			if credential.IsCode(err, credential.CodeConflict) {
				return credential.ParamError(credential.CodeConflict, "name", fmt.Sprintf("a role named %q exists", name))
			}
			return err
		}
		return tx.audit("role.create", "role", name, map[string]any{"permissions": perms})
	})
	return roleView(r), err
}

// ListRoles lists the instance's roles by name.
func (a *Authority) ListRoles(ctx context.Context, c Caller) ([]Role, error) {
	if _, err := a.enter(ctx, c, "ListRoles"); err != nil {
		return nil, err
	}
	var out []Role
	err := a.store.View(ctx, func(tx Tx) error {
		var err error
		out, err = tx.ListRoles(ctx, c.InstanceID)
		return err
	})
	for i := range out {
		out[i] = roleView(out[i])
	}
	if out == nil {
		out = []Role{}
	}
	return out, err
}

var errRoleNotFound = credential.Errorf(credential.CodeNotFound, "no role was found with that name")

// GetRole returns one role.
func (a *Authority) GetRole(ctx context.Context, c Caller, name string) (Role, error) {
	if _, err := a.enter(ctx, c, "GetRole"); err != nil {
		return Role{}, err
	}
	var r Role
	err := a.store.View(ctx, func(tx Tx) error {
		var err error
		r, err = tx.GetRole(ctx, c.InstanceID, name)
		return err
	})
	if credential.IsCode(err, credential.CodeNotFound) {
		return Role{}, errRoleNotFound
	}
	return roleView(r), err
}

// UpdateRole replaces a role's permissions. Every cached credential is
// dropped: any of them may hold the role.
func (a *Authority) UpdateRole(ctx context.Context, c Caller, name string, permissions []string) (Role, error) {
	g, err := a.enter(ctx, c, "UpdateRole")
	if err != nil {
		return Role{}, err
	}
	if permissions == nil {
		return Role{}, credential.ParamError(credential.CodeMissing, "permissions", "is missing")
	}
	perms, err := validatePermissionNames("permissions", permissions, MaxControlPermissions)
	if err != nil {
		return Role{}, err
	}
	var r Role
	err = g.mutate(ctx, func(tx *change) error {
		old, err := tx.GetRole(ctx, c.InstanceID, name)
		if credential.IsCode(err, credential.CodeNotFound) {
			return errRoleNotFound
		} else if err != nil {
			return err
		}
		r = old
		r.Permissions, r.UpdatedAt = perms, tx.now
		if err := tx.UpdateRole(ctx, r); err != nil {
			return err
		}
		tx.invalidateAll()
		return tx.audit("role.update", "role", name, map[string]any{"permissions": perms})
	})
	return roleView(r), err
}

// DeleteRole deletes a role; credentials that name it keep the name,
// which grants nothing until a role of that name exists again.
func (a *Authority) DeleteRole(ctx context.Context, c Caller, name string) error {
	return a.mutate(ctx, c, "DeleteRole", func(tx *change) error {
		if err := tx.DeleteRole(ctx, c.InstanceID, name); credential.IsCode(err, credential.CodeNotFound) {
			return errRoleNotFound
		} else if err != nil {
			return err
		}
		tx.invalidateAll()
		return tx.audit("role.delete", "role", name, map[string]any{})
	})
}

// Verify time.

// LimitUse names a limit a verify applies and its cost.
type LimitUse struct {
	Name string
	Cost int64
}

// NamedLimitState is a named limit's state after a verify.
type NamedLimitState struct {
	Name      string
	Limit     int64
	Remaining int64
	Reset     time.Time
}

// asksControls reports whether the verify input names any control.
func (in *VerifyInput) asksControls() bool {
	return !in.Permissions.IsZero() || in.RateLimits != nil || in.CreditCost != nil
}

// verifyControls applies the credential's controls to a result that
// passed the state rules (see the package comment above). hourly, for an
// org token, is Mist's hourly limit, taken in the same TakeAll as the
// named limits; its state is reported as r.RateLimit.
func (a *Authority) verifyControls(ctx context.Context, e cacheEntry, in VerifyInput, hourly *LimitTake, now time.Time, r *VerifyResult) error {
	ctl := e.attrs.Controls
	if ctl != nil {
		r.Meta, r.Permissions, r.Roles = ctl.Meta, ctl.Permissions, ctl.Roles
	}
	if !r.Valid {
		return nil
	}
	if !in.Permissions.IsZero() {
		held, err := a.heldPermissions(ctx, e.cred.InstanceID, ctl, now)
		if err != nil {
			return err
		}
		if !in.Permissions.Eval(held) {
			r.Valid, r.Reason = false, ReasonInsufficientPermissions
			r.MissingPermissions = in.Permissions.Missing(held)
			return nil
		}
	}
	var ident cachedIdentity
	if ctl != nil && ctl.IdentityID != "" {
		var err error
		if ident, err = a.verifyIdentity(ctx, e.cred.InstanceID, ctl.IdentityID, now); err != nil {
			return err
		}
		if ident.found {
			r.IdentityID, r.ExternalID = ctl.IdentityID, ident.externalID
		}
	}
	if err := a.verifyLimits(ctx, e, ctl, ident, in, hourly, now, r); err != nil || !r.Valid {
		return err
	}
	// Credits: the credential's, then its identity's; a refusal by the
	// identity's gives the credential's back.
	type pool struct {
		owner string
		rule  *CreditsRule
	}
	var pools []pool
	if ctl != nil && ctl.Credits != nil {
		pools = append(pools, pool{controlOwner(e.cred), ctl.Credits})
	}
	if ident.found && ident.credits != nil {
		pools = append(pools, pool{ctl.IdentityID, ident.credits})
	}
	if len(pools) == 0 {
		if in.CreditCost != nil && *in.CreditCost > 0 {
			return credential.ParamError(credential.CodeInvalid, "credits", "the credential has no credits")
		}
		return nil
	}
	cost := int64(1)
	if in.CreditCost != nil {
		cost = *in.CreditCost
	}
	spender, ok := a.store.(CreditSpender)
	if !ok {
		return credential.Errorf(credential.CodeInternal, "the store cannot take credits")
	}
	for i, p := range pools {
		taken, remaining, err := spender.SpendCredits(ctx, e.cred.InstanceID, p.owner, cost, p.rule.lastRefill(now), now)
		if credential.IsCode(err, credential.CodeNotFound) {
			taken, remaining, err = false, 0, nil
		}
		if err != nil {
			return err
		}
		a.noteCredits(ctx, e.cred, p.owner, p.rule, taken, remaining, now) // notices.go
		if i == 0 || r.Credits == nil || remaining < *r.Credits {
			r.Credits = &remaining // the tighter pool's count
		}
		if !taken {
			r.Valid, r.Reason = false, ReasonUsageExceeded
			if i > 0 && cost > 0 {
				if err := spender.RefundCredits(ctx, e.cred.InstanceID, pools[0].owner, cost); err != nil {
					return err
				}
			}
			return nil
		}
	}
	return nil
}

func (a *Authority) verifyLimits(ctx context.Context, e cacheEntry, ctl *Controls, ident cachedIdentity, in VerifyInput, hourly *LimitTake, now time.Time, r *VerifyResult) error {
	// The credential's limits, then its identity's under names the
	// credential does not use (a credential's limit overrides its
	// identity's of the same name); counted per credential or identity.
	var limits []NamedLimit
	var owners []string
	if ctl != nil {
		limits = ctl.RateLimits
		for range limits {
			owners = append(owners, "cred/"+controlOwner(e.cred))
		}
	}
	if ident.found {
		for _, l := range ident.limits {
			if !slices.ContainsFunc(limits, func(m NamedLimit) bool { return m.Name == l.Name }) {
				limits = append(limits, l)
				owners = append(owners, "ident/"+ctl.IdentityID)
			}
		}
	}
	var takes []LimitTake
	var names []string
	add := func(j int, cost int64) {
		l := limits[j]
		takes = append(takes, LimitTake{Key: owners[j] + "/" + l.Name, Limit: l.Limit, Cost: cost,
			Window: time.Duration(l.Duration) * time.Millisecond, Algorithm: l.Algorithm})
		names = append(names, l.Name)
	}
	if in.RateLimits == nil {
		for j, l := range limits {
			if l.AutoApply {
				add(j, 1)
			}
		}
	} else {
		for i, u := range in.RateLimits {
			j := slices.IndexFunc(limits, func(l NamedLimit) bool { return l.Name == u.Name })
			if j < 0 {
				return credential.ParamError(credential.CodeInvalid, fmt.Sprintf("ratelimits[%d].name", i), fmt.Sprintf("the credential has no rate limit named %q", u.Name))
			}
			if slices.Contains(names, u.Name) {
				return credential.ParamError(credential.CodeConstraint, fmt.Sprintf("ratelimits[%d].name", i), fmt.Sprintf("limit %q appears twice", u.Name))
			}
			add(j, u.Cost)
		}
	}
	if hourly != nil { // last, so an invalid take's index is the verify's
		takes, names = append(takes, *hourly), append(names, OrgTokenHourlyLimitName)
	}
	if len(takes) == 0 {
		return nil
	}
	admitted, states, err := a.limiter.TakeAll(ctx, now, takes)
	if err != nil {
		if e := credential.AsError(err); e.Param != "" {
			return credential.ParamError(e.Code, strings.Replace(e.Param, "limits[", "ratelimits[", 1), e.Message)
		}
		return err
	}
	if !admitted {
		r.Valid, r.Reason = false, ReasonRateLimited
		a.noteRateLimited(ctx, e.cred, takes, names, states, now) // notices.go
	}
	if hourly != nil {
		s := states[len(states)-1]
		r.RateLimit = &RateLimit{Limit: int(s.Limit), Remaining: int(s.Remaining), ResetAt: s.Reset, ResetIn: s.Reset.Sub(now)}
		states = states[:len(states)-1]
	}
	if len(states) > 0 {
		r.Limits = make([]NamedLimitState, len(states))
		for i, s := range states {
			r.Limits[i] = NamedLimitState{Name: names[i], Limit: s.Limit, Remaining: s.Remaining, Reset: s.Reset}
		}
	}
	return nil
}

// OrgTokenHourlyLimitName names Mist's hourly limit of an org token where
// it is reported beside the named limits (a ratelimit.exhausted event).
const OrgTokenHourlyLimitName = "org_token_hourly"

// hourlyTake is an org token's Mist hourly limit as a named limit: a
// fixed clock-hour window (windows align to the epoch) of the instance's
// org_token_hourly_limit, cost 1, counted under its own key, apart from
// every named limit's.
func (a *Authority) hourlyTake(ctx context.Context, cred credential.Credential) (*LimitTake, error) {
	limit, err := a.orgTokenLimit(ctx, cred.InstanceID)
	if err != nil {
		return nil, err
	}
	return &LimitTake{Key: "org_token/" + cred.ID, Limit: int64(limit), Cost: 1, Window: time.Hour, Algorithm: LimitFixed}, nil
}

// admitCaller holds a credential presented to keyward itself (an org
// token on the Mist surface, a machine secret key or a PAT as a caller)
// to its controls as a verify naming none would be: its auto-apply
// limits and its identity's at cost 1 (with hourly, an org token's, in
// the same TakeAll), then a credit. The result's Reason says why it was
// refused.
func (a *Authority) admitCaller(ctx context.Context, e cacheEntry, hourly *LimitTake, now time.Time) (VerifyResult, error) {
	r := VerifyResult{Valid: true, Reason: ReasonValid}
	err := a.verifyControls(ctx, e, VerifyInput{}, hourly, now, &r)
	return r, err
}

// refuseCaller counts a caller its controls refused (admitCaller) and
// returns its error.
func (a *Authority) refuseCaller(cred credential.Credential, r VerifyResult, now time.Time) *credential.Error {
	if r.Reason == ReasonRateLimited {
		a.observer.RateLimited(cred.Kind)
	}
	a.countCaller(cred, r.Reason, now)
	return callerRefused(r, now)
}

// callerRefused is the error a refused caller gets: 429, with when to
// retry for a rate limit.
func callerRefused(r VerifyResult, now time.Time) *credential.Error {
	if r.Reason == ReasonUsageExceeded {
		return credential.Errorf(credential.CodeRateLimited, "usage exceeded: the credential has no credits left")
	}
	err := credential.Errorf(credential.CodeRateLimited, "rate limit reached")
	err.RetryAfter = retryIn(r, now)
	return err
}

// retryIn is how long a call refused for its rate limits should wait:
// until the last of its exhausted limits resets (0 when none is, or for
// any other refusal: waiting does not bring credits back).
func retryIn(r VerifyResult, now time.Time) time.Duration {
	if r.Reason != ReasonRateLimited {
		return 0
	}
	var last time.Time
	for _, l := range r.Limits {
		if l.Remaining == 0 && l.Reset.After(last) {
			last = l.Reset
		}
	}
	if r.RateLimit != nil && r.RateLimit.Remaining == 0 && r.RateLimit.ResetAt.After(last) {
		last = r.RateLimit.ResetAt
	}
	if !last.After(now) {
		return 0
	}
	return last.Sub(now)
}

// heldPermissions is the credential's permissions ∪ its roles'.
func (a *Authority) heldPermissions(ctx context.Context, instanceID string, ctl *Controls, now time.Time) (func(string) bool, error) {
	if ctl == nil {
		return func(string) bool { return false }, nil
	}
	names := slices.Clone(ctl.Permissions)
	for _, role := range ctl.Roles {
		perms, err := a.rolePermissions(ctx, instanceID, role, now)
		if err != nil {
			return nil, err
		}
		names = append(names, perms...)
	}
	return permquery.Holding(names...), nil
}

// rolePermissions reads a role's permissions through the cache (every role
// change invalidates everything, which empties it).
func (a *Authority) rolePermissions(ctx context.Context, instanceID, name string, now time.Time) ([]string, error) {
	ref := roleRef{instanceID, name}
	if p, ok := a.cache.role(ref, now); ok {
		return p, nil
	}
	epoch := a.cache.currentEpoch()
	var perms []string
	err := a.store.View(ctx, func(tx Tx) error {
		r, err := tx.GetRole(ctx, instanceID, name)
		if credential.IsCode(err, credential.CodeNotFound) {
			return nil // an unknown role grants nothing
		}
		perms = r.Permissions
		return err
	})
	if err != nil {
		return nil, err
	}
	a.cache.fillRole(ref, cachedRole{perms: perms, expires: now.Add(a.cache.positiveLifetime()).UnixNano()}, epoch)
	return perms, nil
}

type roleRef struct{ instanceID, name string }

type cachedRole struct {
	perms   []string
	expires int64
}

func (c *credentialCache) role(ref roleRef, now time.Time) ([]string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.roles[ref]
	return r.perms, ok && now.UnixNano() < r.expires
}

func (c *credentialCache) fillRole(ref roleRef, r cachedRole, epoch uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch != epoch {
		return
	}
	if len(c.roles) >= maxMachineProfiles {
		clear(c.roles)
	}
	c.roles[ref] = r
}

// metaMatches reports whether ctl's meta has every key of want with its
// value: a JSON string equal to it, or any other JSON value whose compact
// text is it (meta.count=3, meta.beta=true).
func metaMatches(ctl *Controls, want map[string]string) bool {
	if len(want) == 0 {
		return true
	}
	if ctl == nil || len(ctl.Meta) == 0 {
		return false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(ctl.Meta, &m) != nil {
		return false
	}
	for k, v := range want {
		raw, ok := m[k]
		if !ok {
			return false
		}
		var s string
		if json.Unmarshal(raw, &s) == nil {
			if s != v {
				return false
			}
		} else if string(raw) != v {
			return false
		}
	}
	return true
}

// controlsParam names the first control in, for an error about them all.
func controlsParam(in ControlsInput) string {
	switch {
	case in.Meta != nil:
		return "meta"
	case in.Permissions != nil:
		return "permissions"
	case in.Roles != nil:
		return "roles"
	case in.RateLimits != nil:
		return "ratelimits"
	}
	return "credits"
}

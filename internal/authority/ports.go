package authority

import (
	"context"
	"encoding/json"
	"time"

	"github.com/keyward/keyward/internal/credential"
)

// Clock is the authority's only source of time, so tests never sleep.
type Clock interface {
	Now() time.Time
}

// SystemClock reads the wall clock.
type SystemClock struct{}

func (SystemClock) Now() time.Time { return time.Now() }

// Store persists everything the authority manages. Every call is atomic:
// Update runs fn in one read-write transaction and commits only if fn
// returns nil; View runs fn in a read-only one. Methods of Tx must only be
// used inside fn. Update may run fn more than once, even after a run that
// succeeded (its transaction was rolled back and run again), so fn starts
// from nothing each time and leaves its results only in variables it sets.
//
// Store errors are *credential.Error values: CodeNotFound for a missing row,
// CodeConflict for a uniqueness violation, CodeUnavailable when the
// database is busy or unreachable, CodeInternal otherwise.
type Store interface {
	Update(ctx context.Context, fn func(Tx) error) error
	View(ctx context.Context, fn func(Tx) error) error
	Ping(ctx context.Context) error
	Close() error
}

// RunHooks is implemented by the Tx of a store that may run an Update
// closure more than once. Work outside the database that a closure does
// (an audit log line, a refusal counted) goes through it, so it is not
// repeated for runs that are undone. The work runs on the store's writer
// (the group committer): it must not block, nor call Update.
type RunHooks interface {
	// BeforeCommit runs f once the closure's writes are in, before the
	// transaction commits (or now, where closures run once); its error (or
	// panic) fails the closure. f runs for a run meant to commit, never
	// for one already undone; but the transaction can still fail after f,
	// at its COMMIT or before it (a savepoint, an outage, or another
	// closure's f failing, which makes the batch run again), so f may have
	// run for a run that did not commit: never the reverse.
	BeforeCommit(f func() error) error
	// Settled runs f once what becomes of the closure is settled, for its
	// last run only, whether that commits or fails.
	Settled(f func())
}

// DigestReader is implemented by a Store that reads one credential by its
// digest in a single statement, outside any explicit transaction: the
// credential cache's miss path, the one read on the verify path. It
// answers as Tx.CredentialByDigest does. A Store without it is read with
// View.
type DigestReader interface {
	CredentialByDigest(ctx context.Context, d credential.Digest) (credential.Credential, error)
}

// Tx is the set of operations available inside a transaction. Every
// method that reads or writes tenant data takes the instance id and bounds
// its SQL by it: a row of another instance is CodeNotFound.
type Tx interface {
	InstanceTx
	CredentialTx
	SigningKeyTx
	MachineTx
	OrganizationTx
	WorkspaceTx
	ActorTokenTx
	ClientTx
	KeyringTx
	AuditTx
	ForeignKeyTx
	AnalyticsTx
	WebhookTx // webhooks.go
	NoticeTx  // notices.go
	RoleTx
	IdentityTx
}

// InstanceTx reads and writes instances and their settings.
type InstanceTx interface {
	// Instances.
	CreateInstance(ctx context.Context, in credential.Instance) error
	GetInstance(ctx context.Context, id string) (credential.Instance, error)
	ListInstances(ctx context.Context) ([]credential.Instance, error)
	// UpdateInstance writes the instance's name and settings
	// (OrgTokenHourlyLimit, Scopes, PATMaxLifetime).
	UpdateInstance(ctx context.Context, in credential.Instance) error
}

// CredentialTx reads and writes credentials: every bearer secret, one table.
type CredentialTx interface {
	// Credentials (every bearer secret, one table).
	InsertCredential(ctx context.Context, c credential.Credential) error
	// CredentialByDigest finds a credential of any instance by its digest;
	// the caller must check kind, instance and state.
	CredentialByDigest(ctx context.Context, d credential.Digest) (credential.Credential, error)
	GetCredential(ctx context.Context, instanceID, id string) (credential.Credential, error)
	// LockCredential is GetCredential that also holds the credential's row
	// until the transaction ends, so two read-modify-writes of it (a
	// controls change, on two nodes) run one after the other.
	LockCredential(ctx context.Context, instanceID, id string) (credential.Credential, error)
	ListCredentials(ctx context.Context, f CredentialFilter) ([]credential.Credential, error)
	// RevokeCredential sets revoked_at and the reason on a credential that is
	// not yet revoked; CodeNotFound if there is none.
	RevokeCredential(ctx context.Context, instanceID, id string, at time.Time, reason string) error
	// SetCredentialExpiry sets expires_at (and updated_at to at).
	SetCredentialExpiry(ctx context.Context, instanceID, id string, expiresAt, at time.Time) error
	// SetCredentialSubject moves a credential to another subject (and sets
	// updated_at to at); CodeNotFound if there is none.
	SetCredentialSubject(ctx context.Context, instanceID, id, subject string, at time.Time) error
	// DeleteCredentials deletes every credential of kind whose subject is
	// subject, returning how many went.
	DeleteCredentials(ctx context.Context, instanceID string, kind credential.Kind, subject string) (int, error)
	// DeleteCredential deletes one credential; CodeNotFound if none.
	DeleteCredential(ctx context.Context, instanceID, id string) error
	// UpdateCredentialAttrs replaces attrs and sets updated_at.
	UpdateCredentialAttrs(ctx context.Context, instanceID, id string, attrs json.RawMessage, at time.Time) error
	// RevokeMatching revokes every unrevoked credential matching q's
	// InstanceID, Kind, Subject and ParentID (empty Subject or ParentID
	// match all), returning how many it revoked.
	RevokeMatching(ctx context.Context, q CredentialQuery, at time.Time, reason string) (int, error)
	// RevokeCredentialsOf revokes every unrevoked credential of kind whose
	// subject is subject, returning how many it revoked.
	RevokeCredentialsOf(ctx context.Context, instanceID string, kind credential.Kind, subject string, at time.Time, reason string) (int, error)
	// PageCredentials returns one page of credentials, newest first
	// (created_at DESC, id DESC), and the total count of matches.
	PageCredentials(ctx context.Context, q CredentialQuery) ([]credential.Credential, int, error)
	// TouchCredentials records last-used times in one statement per usage,
	// never moving a last_used_at backwards (max semantics), so batches from
	// several nodes coalesce without lost updates. Unknown ids are ignored.
	TouchCredentials(ctx context.Context, usages []Usage) error

	// SetCredentialSearchDigest records a credential's search digest when
	// it has none yet (credentials made before search digests existed).
	SetCredentialSearchDigest(ctx context.Context, instanceID, id string, d credential.Digest) error
	// CredentialBySearchDigest finds the instance's credential whose search
	// digest is d; CodeNotFound if none.
	CredentialBySearchDigest(ctx context.Context, instanceID string, d credential.Digest) (credential.Credential, error)

	// DeleteLapsedCredentials deletes up to limit credentials that expired
	// at or before expiredBefore, or were revoked at or before
	// revokedBefore (a zero time skips that test), returning how many went.
	DeleteLapsedCredentials(ctx context.Context, expiredBefore, revokedBefore time.Time, limit int) (int, error)
}

// SigningKeyTx reads and writes the instances' JWT signing keys.
type SigningKeyTx interface {
	// Signing keys (JWT), per instance.
	InsertSigningKey(ctx context.Context, k credential.SigningKey) error
	// ListSigningKeys returns the instance's signing keys, newest first.
	ListSigningKeys(ctx context.Context, instanceID string) ([]credential.SigningKey, error)
	// GetSigningKey returns one key of the instance by its kid.
	GetSigningKey(ctx context.Context, instanceID, kid string) (credential.SigningKey, error)
	// RetireSigningKeys sets retired_at on every key of the instance that is
	// not yet retired.
	RetireSigningKeys(ctx context.Context, instanceID string, at time.Time) error
	// ExtendSigningKey raises the key's tokens_expire_at to expiresAt if it
	// is later (max semantics); CodeNotFound for an unknown kid.
	ExtendSigningKey(ctx context.Context, instanceID, kid string, expiresAt time.Time) error
}

// MachineTx reads and writes machines and the scopes between them.
type MachineTx interface {
	// Machines.
	InsertMachine(ctx context.Context, m credential.Machine) error
	// GetMachine returns the machine without its scoped machines.
	GetMachine(ctx context.Context, instanceID, id string) (credential.Machine, error)
	// LockMachine is GetMachine that also holds the machine's row until
	// the transaction ends, against a concurrent change of its keys.
	LockMachine(ctx context.Context, instanceID, id string) (credential.Machine, error)
	// MachinesByID returns those of ids that exist in the instance.
	MachinesByID(ctx context.Context, instanceID string, ids []string) ([]credential.Machine, error)
	// ListMachines returns one page and the total count of matches.
	ListMachines(ctx context.Context, f MachineFilter) ([]credential.Machine, int, error)
	// UpdateMachine writes name, default_token_ttl and updated_at.
	UpdateMachine(ctx context.Context, m credential.Machine) error
	// DeleteMachine deletes the machine and every scope to or from it.
	DeleteMachine(ctx context.Context, instanceID, id string) error

	// Machine scopes.
	InsertMachineScope(ctx context.Context, s credential.MachineScope) error
	DeleteMachineScope(ctx context.Context, instanceID, fromID, toID string) error
	GetMachineScope(ctx context.Context, instanceID, fromID, toID string) (credential.MachineScope, error)
	CountMachineScopes(ctx context.Context, instanceID, fromID string) (int, error)
	// ScopedMachines returns, for each of fromIDs, the machines it is scoped
	// to, ordered by scope creation.
	ScopedMachines(ctx context.Context, instanceID string, fromIDs []string) (map[string][]credential.Machine, error)
}

// OrganizationTx reads and writes organizations, their sites and sitegroups.
type OrganizationTx interface {
	// Organizations. Slugs are unique per instance (CodeConflict).
	InsertOrganization(ctx context.Context, o credential.Organization) error
	GetOrganization(ctx context.Context, instanceID, id string) (credential.Organization, error)
	GetOrganizationBySlug(ctx context.Context, instanceID, slug string) (credential.Organization, error)
	// ListOrganizations returns a page ordered by created_at, id, and the total.
	ListOrganizations(ctx context.Context, instanceID string, limit, offset int) ([]credential.Organization, int, error)
	// UpdateOrganization writes slug, name and updated_at.
	UpdateOrganization(ctx context.Context, o credential.Organization) error
	// DeleteOrganization deletes the organization with its sites and
	// sitegroups.
	DeleteOrganization(ctx context.Context, instanceID, id string) error

	// Sites and sitegroups, always within one organization.
	InsertSite(ctx context.Context, s credential.Site) error
	GetSite(ctx context.Context, instanceID, orgID, id string) (credential.Site, error)
	ListSites(ctx context.Context, instanceID, orgID string) ([]credential.Site, error)
	UpdateSite(ctx context.Context, s credential.Site) error // name, updated_at
	// DeleteSite deletes the site and removes it from its sitegroups.
	DeleteSite(ctx context.Context, instanceID, orgID, id string) error
	// InsertSitegroup stores the sitegroup and its sites, which must be
	// sites of the same organization (CodeNotFound otherwise).
	InsertSitegroup(ctx context.Context, g credential.Sitegroup) error
	GetSitegroup(ctx context.Context, instanceID, orgID, id string) (credential.Sitegroup, error)
	ListSitegroups(ctx context.Context, instanceID, orgID string) ([]credential.Sitegroup, error)
	// UpdateSitegroup writes name, updated_at and replaces the site set.
	UpdateSitegroup(ctx context.Context, g credential.Sitegroup) error
	DeleteSitegroup(ctx context.Context, instanceID, orgID, id string) error
}

// WorkspaceTx reads and writes workspaces and their members.
type WorkspaceTx interface {
	// Workspaces, within one organization; slugs unique per organization.
	InsertWorkspace(ctx context.Context, w credential.Workspace) error
	GetWorkspace(ctx context.Context, instanceID, orgID, id string) (credential.Workspace, error)
	GetWorkspaceBySlug(ctx context.Context, instanceID, orgID, slug string) (credential.Workspace, error)
	// FindWorkspace finds a workspace of any organization of the instance
	// by its id.
	FindWorkspace(ctx context.Context, instanceID, id string) (credential.Workspace, error)
	ListWorkspaces(ctx context.Context, instanceID, orgID string) ([]credential.Workspace, error)
	UpdateWorkspace(ctx context.Context, w credential.Workspace) error // slug, name, updated_at
	// DeleteWorkspace deletes the workspace and its memberships.
	DeleteWorkspace(ctx context.Context, instanceID, orgID, id string) error

	// Workspace members.
	// PutMember inserts the membership or changes its role (keeping
	// created_at); the workspace must exist in the instance.
	PutMember(ctx context.Context, m credential.Member) error
	GetMember(ctx context.Context, instanceID, workspaceID, userID string) (credential.Member, error)
	// ListMembers returns a workspace's members ordered by user id.
	ListMembers(ctx context.Context, instanceID, workspaceID string) ([]credential.Member, error)
	DeleteMember(ctx context.Context, instanceID, workspaceID, userID string) error
}

// ActorTokenTx reads and writes actor tokens and impersonation sessions.
type ActorTokenTx interface {
	// Actor tokens (impersonation tickets).
	InsertActorToken(ctx context.Context, t credential.ActorToken) error
	GetActorToken(ctx context.Context, instanceID, id string) (credential.ActorToken, error)
	// ActorTokenByDigest finds a ticket of any instance by its digest.
	ActorTokenByDigest(ctx context.Context, d credential.Digest) (credential.ActorToken, error)
	// ListActorTokens returns a page, newest first (created_at DESC, id
	// DESC), and the total; empty userID or status match all.
	ListActorTokens(ctx context.Context, instanceID, userID, status string, limit, offset int) ([]credential.ActorToken, int, error)
	// TransitionActorToken moves a token from status from to status to in
	// one conditional UPDATE, and only if it is still unexpired at
	// notExpiredAt when that is set; it reports whether exactly one row
	// changed. This is what makes a ticket single-use under concurrency.
	TransitionActorToken(ctx context.Context, instanceID, id, from, to string, at, notExpiredAt time.Time) (bool, error)

	// Impersonation sessions.
	InsertImpersonationSession(ctx context.Context, s credential.ImpersonationSession) error
	GetImpersonationSession(ctx context.Context, instanceID, id string) (credential.ImpersonationSession, error)
	// RevokeImpersonationSession sets revoked_at if not yet set;
	// CodeNotFound when there is no such unrevoked session.
	RevokeImpersonationSession(ctx context.Context, instanceID, id string, at time.Time) error
}

// ClientTx reads and writes the client registry.
type ClientTx interface {
	// Clients (Freezer), owned by one user of one instance.
	// InsertClient fails with CodeConflict when the user already has a
	// client with that client_id.
	InsertClient(ctx context.Context, c credential.Client) error
	GetClient(ctx context.Context, instanceID, userID, clientID string) (credential.Client, error)
	// ListClients returns all of the user's clients ordered by created_at,
	// then client_id.
	ListClients(ctx context.Context, instanceID, userID string) ([]credential.Client, error)
	DeleteClient(ctx context.Context, instanceID, userID, clientID string) error
}

// KeyringTx reads and writes the store's wrapped data keys.
type KeyringTx interface {
	// Keyring: the store's one row of wrapped data keys.
	// GetKeyring returns it; CodeNotFound before the first start.
	GetKeyring(ctx context.Context) (StoredKeyring, error)
	// InsertKeyring stores the first keyring; CodeConflict if there is one.
	InsertKeyring(ctx context.Context, k StoredKeyring) error
	// ReplaceKeyring overwrites the keyring whose key-check value is
	// keyCheck; CodeNotFound when the stored one has another (a concurrent
	// rotation came first).
	ReplaceKeyring(ctx context.Context, keyCheck []byte, k StoredKeyring) error
	// SampleSealed returns one sealed value of any instance (a credential's
	// or a signing key's) with the row id it is bound to; CodeNotFound if
	// the store holds none.
	SampleSealed(ctx context.Context) (rowID string, sealed []byte, err error)
}

// AuditTx appends to and reads the audit trail and its hash chains.
type AuditTx interface {
	// Audit.
	// InsertAuditEvent appends e to its instance's hash chain: it sets Seq,
	// PrevHash and Hash (e.ChainHash(PrevHash)) and returns the stored
	// event. Appends to one instance's chain are serialized until the
	// transaction ends, so concurrent writers never fork it.
	InsertAuditEvent(ctx context.Context, e credential.AuditEvent) (credential.AuditEvent, error)
	// ListAuditEvents returns one page, newest first, and the total count.
	ListAuditEvents(ctx context.Context, f AuditFilter) ([]credential.AuditEvent, int, error)
	// ChainEvents returns up to limit chained events of the instance with
	// Seq > afterSeq, in Seq order.
	ChainEvents(ctx context.Context, instanceID string, afterSeq int64, limit int) ([]credential.AuditEvent, error)
	// AuditChainHead returns the instance's last chained Seq and Hash (0
	// and "" when none).
	AuditChainHead(ctx context.Context, instanceID string) (int64, string, error)
	// AuditChains lists the instance ids that have a chain, "" (host-wide
	// events) included.
	AuditChains(ctx context.Context) ([]string, error)
	// LockAuditCheckpoint returns the instance's chain head and pruning
	// checkpoint, locking the head for the rest of the transaction (as
	// InsertAuditEvent does), so two pruners never race on one chain.
	// CodeNotFound when the instance has no chain.
	LockAuditCheckpoint(ctx context.Context, instanceID string) (AuditCheckpoint, error)
	// AuditCheckpoint reads the checkpoint without locking (zero when none).
	AuditCheckpoint(ctx context.Context, instanceID string) (AuditCheckpoint, error)
	// SetAuditCheckpoint records that the chain's events up to and
	// including cp.Seq are pruned.
	SetAuditCheckpoint(ctx context.Context, instanceID string, cp AuditCheckpoint) error
	// DeleteChainEvents deletes the instance's chained events with
	// afterSeq < seq <= throughSeq, returning how many went.
	DeleteChainEvents(ctx context.Context, instanceID string, afterSeq, throughSeq int64) (int, error)
	// DeleteUnchainedEvents deletes up to limit events of the instance
	// that stand outside its chain (seq 0, written before chains existed)
	// at or before before.
	DeleteUnchainedEvents(ctx context.Context, instanceID string, before time.Time, limit int) (int, error)
}

// ForeignKeyTx reads and writes keys imported by their foreign hash.
type ForeignKeyTx interface {
	// Foreign keys (imported by their hash).
	// InsertForeignHMACKey stores k, or finds the instance's key with the
	// same fingerprint; it returns the id of the stored one.
	InsertForeignHMACKey(ctx context.Context, k ForeignHMACKey) (string, error)
	// ForeignHMACKeys returns the instance's foreign HMAC keys.
	ForeignHMACKeys(ctx context.Context, instanceID string) ([]ForeignHMACKey, error)
	// InsertForeignHash stores an imported key's hash; CodeConflict when
	// the instance already holds one with the same lookup.
	InsertForeignHash(ctx context.Context, h ForeignHash) error
	// ForeignHashByLookup finds the instance's foreign hash whose lookup
	// (SHA-256 or HMAC) is lookup; CodeNotFound if none.
	ForeignHashByLookup(ctx context.Context, instanceID string, lookup []byte) (ForeignHash, error)
	// ForeignHashesByStart returns up to limit bcrypt hashes of the
	// instance whose start is one of starts.
	ForeignHashesByStart(ctx context.Context, instanceID string, starts []string, limit int) ([]ForeignHash, error)
	// InsertForeignPrefix records that the instance imported keys under
	// prefix (once; a second time changes nothing).
	InsertForeignPrefix(ctx context.Context, instanceID, prefix string, at time.Time) error
	// ForeignPrefixes lists, by instance, the foreign prefixes keys were
	// imported under, re-keyed or not.
	ForeignPrefixes(ctx context.Context) (map[string][]string, error)
	// DeleteUnusedForeignHMACKeys deletes the foreign HMAC keys no foreign
	// hash refers to, last imported at or before before.
	DeleteUnusedForeignHMACKeys(ctx context.Context, before time.Time) (int, error)
	// RekeyForeignCredential deletes the credential's foreign hash and, if
	// this call deleted it, sets the credential's digest and search digest
	// (and updated_at), and deletes the foreign HMAC key it was found with
	// if no other hash needs it and it is older than ForeignHMACKeyGrace;
	// it reports whether it did. A concurrent call that
	// comes second finds no hash and changes nothing.
	RekeyForeignCredential(ctx context.Context, instanceID, id string, digest, search credential.Digest, at time.Time) (bool, error)
}

// AnalyticsTx reads and writes the per-minute verification counts.
type AnalyticsTx interface {
	// AddVerificationCounts adds each count to its (instance, credential,
	// outcome, minute) row, creating it at zero when missing (count =
	// count + new), so batches from several nodes add up.
	AddVerificationCounts(ctx context.Context, counts []VerificationCount) error
	// VerificationSeries sums the instance's counts matching q into
	// buckets, returning the non-empty ones in (Start, Outcome) order.
	VerificationSeries(ctx context.Context, q VerificationQuery) ([]VerificationBucket, error)
	// DeleteVerificationCounts deletes up to limit counts of minutes before
	// before (Unix milliseconds), returning how many went.
	DeleteVerificationCounts(ctx context.Context, before int64, limit int) (int, error)
}

// AuditCheckpoint is where a pruned chain now starts: the seq and hash of
// the last pruned event, and a MAC over them under a key derived from the
// keyring. Head* are the chain head, read with it.
type AuditCheckpoint struct {
	Seq      int64
	Hash     string
	MAC      string
	HeadSeq  int64
	HeadHash string
}

// CredentialFilter selects credentials of one instance. Empty fields match
// everything.
type CredentialFilter struct {
	InstanceID string
	Kind       credential.Kind
	Subject    string
}

// CredentialQuery selects a page of one instance's credentials of one kind.
// Revoked and Expired filter by state when set: nil matches both states.
// A credential is expired at Now when expires_at is set and <= Now; Now is
// required when Expired is set.
type CredentialQuery struct {
	InstanceID string
	Kind       credential.Kind
	Subject    string // empty matches every subject
	ParentID   string // empty matches every parent
	Revoked    *bool
	Expired    *bool
	Now        time.Time
	// ExpiresAfter, when set, keeps only credentials whose expires_at is set
	// and strictly after it.
	ExpiresAfter time.Time
	Limit        int // 0 means no limit
	Offset       int
}

// Usage is one observed use of a credential.
type Usage struct {
	InstanceID   string
	CredentialID string
	At           time.Time
}

// MachineOrder is a sortable machine field.
type MachineOrder string

const (
	OrderByCreatedAt MachineOrder = "created_at"
	OrderByName      MachineOrder = "name"
)

// MachineFilter selects a page of one instance's machines. Query matches a
// machine id exactly or a name as a case-insensitive substring (LIKE
// wildcards in it are literal). Names order case-insensitively (ASCII),
// then by exact name; ties break by id.
type MachineFilter struct {
	InstanceID string
	Query      string
	OrderBy    MachineOrder
	Descending bool
	Limit      int
	Offset     int
}

// AuditFilter selects a page of one instance's audit events, newest first.
type AuditFilter struct {
	InstanceID string
	Action     string
	TargetID   string
	// CredentialID, when set, keeps the events the credential did
	// (CredentialID) or that were done to it (TargetID).
	CredentialID string
	Limit        int
	Offset       int
}

// Limiter counts calls in fixed windows. Take admits one call against key
// in the window [start, end) if fewer than limit calls were admitted in it,
// and returns whether it did and the window's count after the call. Only
// admitted calls count. Windows are keyed by key and start, so a new
// window begins at zero.
//
// TakeAll counts named limits, all or nothing: it admits the call only if
// every take fits its limit at now, and then counts each take's Cost
// against its key; otherwise it counts nothing anywhere. It returns each
// take's state after the call, in the order of takes. Its counters are
// keyed by (Key, Window) and are apart from Take's, so a key may be used
// by both. The algorithms, the arithmetic every adapter shares and the
// input rules are in limits.go (PlanLimits, LimitPlan); an adapter must
// validate with PlanLimits before it counts anything and compute the
// states with LimitStates, so all adapters answer alike. An empty takes
// is admitted with no states. The error is the context's, an invalid
// take's (*LimitError), or the adapter's.
type Limiter interface {
	Take(ctx context.Context, key string, limit int, start, end time.Time) (admitted bool, count int, err error)
	TakeAll(ctx context.Context, now time.Time, takes []LimitTake) (admitted bool, states []LimitState, err error)
}

// LimitAlgorithm is how a named limit counts: LimitFixed or LimitSliding.
type LimitAlgorithm string

const (
	// LimitFixed counts in windows of Window aligned to the Unix epoch
	// (a clock hour for one hour); a window starts at zero.
	LimitFixed LimitAlgorithm = "fixed"
	// LimitSliding counts the current fixed window plus the previous
	// one weighted by the share of it still inside the sliding span of
	// one Window ending at now (the two-window approximation).
	LimitSliding LimitAlgorithm = "sliding"
)

// LimitTake is one named limit a call is counted against: at most Limit
// units per Window, the call costing Cost units (0 reads the state
// without counting).
type LimitTake struct {
	Key       string
	Limit     int64
	Cost      int64
	Window    time.Duration
	Algorithm LimitAlgorithm
}

// LimitState is a named limit's state after a TakeAll: its Limit, the
// units still Remaining (never negative), and Reset, when a fixed
// window ends or, for a sliding limit, when its count next drops by at
// least one unit (see LimitPlan.State).
type LimitState struct {
	Limit, Remaining int64
	Reset            time.Time
}

// Invalidation tells every node to drop cached credentials: the given
// digests, or everything when All is set.
type Invalidation struct {
	Digests []credential.Digest `json:"digests,omitempty"`
	All     bool                `json:"all,omitempty"`
}

// Bus carries invalidations between the nodes that share a store. A change
// is published after it commits; every node (the publisher included)
// receives it.
type Bus interface {
	Publish(ctx context.Context, inv Invalidation) error
	// Subscribe delivers invalidations to deliver until ctx ends,
	// reconnecting after failures. It calls connected(true) whenever a
	// subscription is (re-)established and connected(false) when it is
	// lost, so the caller can shorten cache lifetimes meanwhile. It returns
	// when ctx ends.
	Subscribe(ctx context.Context, deliver func(Invalidation), connected func(bool)) error
}

// Observer receives what the authority measures; the metrics adapter
// implements it. Calls must be cheap and must not block.
type Observer interface {
	// Verified records one verification decision.
	Verified(kind credential.Kind, reason Reason, took time.Duration)
	// CacheLookup records a credential-cache lookup.
	CacheLookup(hit bool)
	// RateLimited records a call refused by a rate limit.
	RateLimited(kind credential.Kind)
	// AuthFailed records one refused authentication to keyward itself;
	// throttled is set when the address was over its failure budget and
	// the credential was not even looked at.
	AuthFailed(throttled bool)
}

// Tracer marks a step of a use case as a span of the request's trace (the
// OpenTelemetry adapter implements it). Start begins a span named name as
// a child of ctx's and returns the context carrying it; end finishes it,
// recording err when it is not nil. Names and errors never hold a secret.
type Tracer interface {
	Start(ctx context.Context, name string) (_ context.Context, end func(err error))
}

// AuditSink receives every audit event after the store has sealed it into
// its chain (Seq and Hash set): the --audit-log file. An event never holds
// a secret. Calls must be safe for concurrent use.
type AuditSink interface {
	WriteAuditEvent(e credential.AuditEvent) error
}

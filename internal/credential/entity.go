package credential

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"
)

// Digest is the HMAC-SHA256 of a secret under the server pepper: what the
// store keeps instead of the secret, and the key it is looked up by.
type Digest [32]byte

// Equal compares two digests in constant time.
func (d Digest) Equal(o Digest) bool { return hmac.Equal(d[:], o[:]) }

// Instance is a tenant. Every other entity belongs to exactly one.
type Instance struct {
	ID        string
	Name      string
	CreatedAt time.Time
	// OrgTokenHourlyLimit is how many calls one org token may make per
	// clock hour; 0 means DefaultOrgTokenHourlyLimit.
	OrgTokenHourlyLimit int
	// Scopes is the instance's PAT scope catalogue; nil means
	// DefaultScopes.
	Scopes []string
	// PATMaxLifetime bounds a personal access token's lifetime in seconds:
	// 0 means DefaultPATMaxLifetime, a negative value means no maximum
	// (tokens may then also never expire).
	PATMaxLifetime int64
	// ImpersonationRedirectURL is where an accepted actor ticket sends the
	// browser, with the session token in the URL fragment; "" answers JSON.
	ImpersonationRedirectURL string
}

// DefaultScopes is the scope catalogue of a new instance.
var DefaultScopes = []string{"read", "write"}

// DefaultPATMaxLifetime is one year, in seconds.
const DefaultPATMaxLifetime = 365 * 24 * 3600

// Workspace is the unit PATs can be bound to, inside an organization.
type Workspace struct {
	ID         string // a UUID
	InstanceID string
	OrgID      string
	Slug       string // unique in the organization
	Name       string
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Workspace member roles.
const (
	MemberOwner  = "owner"
	MemberAdmin  = "admin"
	MemberMember = "member"
)

// Member is a user's role in a workspace.
type Member struct {
	InstanceID  string
	WorkspaceID string
	UserID      string
	Role        string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// DefaultOrgTokenHourlyLimit is Mist's limit: 5000 calls per token per
// clock hour.
const DefaultOrgTokenHourlyLimit = 5000

// Organization groups sites and owns org API tokens.
type Organization struct {
	ID         string // a UUID
	InstanceID string
	Slug       string // unique in the instance
	Name       string
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Site is a place within an organization.
type Site struct {
	ID         string // a UUID
	InstanceID string
	OrgID      string
	Name       string
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Sitegroup is a named set of sites of one organization.
type Sitegroup struct {
	ID         string // a UUID
	InstanceID string
	OrgID      string
	Name       string
	SiteIDs    []string // sorted
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Credential is one bearer secret of any kind, as stored: never the secret,
// only its digest and display prefix. Zero times mean "not set".
type Credential struct {
	ID               string
	InstanceID       string
	Kind             Kind
	Digest           Digest
	DisplayPrefix    string
	Subject          string // whom the credential speaks for: a machine id, a user id, an org id
	ParentID         string // what it is bound within, if anything: a PAT's workspace, an API key's type
	ExpiresAt        time.Time
	RevokedAt        time.Time
	RevocationReason string
	LastUsedAt       time.Time
	CreatedAt        time.Time
	UpdatedAt        time.Time
	// Sealed is the AES-256-GCM ciphertext of the secret, for the kinds
	// that must stay retrievable (machine secret keys, API keys, M2M tokens
	// minted for reuse). Nil for the rest.
	Sealed []byte
	// Attrs holds kind-specific attributes as JSON.
	Attrs json.RawMessage
	// SearchDigest is HMAC(search key, SHA-256(secret)), so an operator
	// holding a leaked secret's SHA-256 can find the credential (and its
	// audit trail) without keyward storing a plain SHA-256. Zero when not
	// yet known (a credential made before it existed gets it on its next
	// successful use).
	SearchDigest Digest
}

// Revoked reports whether the credential has been revoked.
func (c Credential) Revoked() bool { return !c.RevokedAt.IsZero() }

// ExpiredAt reports whether the credential has expired at now. A credential
// is valid while now < ExpiresAt.
func (c Credential) ExpiredAt(now time.Time) bool { return Expired(c.ExpiresAt, now) }

// Expired is the one expiry rule: a credential (or a JWT, a ticket, a
// session) that expires at expiresAt is valid while now < expiresAt; the
// zero time never expires.
func Expired(expiresAt, now time.Time) bool {
	return !expiresAt.IsZero() && !now.Before(expiresAt)
}

// ActiveAt reports whether the credential is neither revoked nor expired.
func (c Credential) ActiveAt(now time.Time) bool { return !c.Revoked() && !c.ExpiredAt(now) }

// Machine is a service identity (Clerk's machine).
type Machine struct {
	ID              string
	InstanceID      string
	Name            string
	DefaultTokenTTL int64 // seconds
	CreatedAt       time.Time
	UpdatedAt       time.Time
	// ScopedMachines are the machines this machine may access, one level
	// deep (their own ScopedMachines are not loaded).
	ScopedMachines []Machine
}

// MachineScope lets FromMachineID access ToMachineID. Scopes are one-way.
type MachineScope struct {
	InstanceID    string
	FromMachineID string
	ToMachineID   string
	CreatedAt     time.Time
}

// AuditEvent records one mutation (or one refused authentication) with who
// did it, to what, and how it ended. It never holds a secret.
type AuditEvent struct {
	ID         string
	InstanceID string
	At         time.Time
	ActorKind  string // admin_key, machine_key, operator, ...
	ActorID    string
	Action     string // e.g. machine.create
	TargetKind string
	TargetID   string
	RequestID  string
	Outcome    string // success, denied
	Detail     json.RawMessage
	// ClientIP is the address the request came from ("" when unknown: an
	// operator command, or an aggregate of refusals from many addresses).
	ClientIP string
	// CredentialID is the credential the actor authenticated with ("" for
	// the operator; "unknown" for a refused secret that matched nothing).
	CredentialID string
	// Count is how many occurrences the event stands for: 1, or more for an
	// aggregate of refusals.
	Count int
	// Seq, PrevHash and Hash chain the instance's events (set by the store
	// when the event is appended): Hash = ChainHash(PrevHash). Seq 0 marks
	// an event written before the chain existed.
	Seq      int64
	PrevHash string
	Hash     string
}

// ChainHash returns the hex SHA-256 over prev (the previous event's hash,
// "" for the first) and a canonical encoding of every field of e except
// Hash itself: a JSON array in a fixed order, times in Unix milliseconds,
// Detail as stored. Changing any stored field changes the hash.
func (e AuditEvent) ChainHash(prev string) string {
	detail := e.Detail
	if len(detail) == 0 {
		detail = json.RawMessage("{}")
	}
	fields := []any{
		"keyward/audit/v1", prev, e.Seq, e.ID, e.InstanceID, e.At.UnixMilli(), e.ActorKind, e.ActorID,
		e.Action, e.TargetKind, e.TargetID, e.RequestID, e.Outcome, string(detail), e.ClientIP,
		e.CredentialID, e.Count,
	}
	b, err := json.Marshal(fields)
	if err != nil { // unreachable: every field is a string or a number
		panic(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Audit outcomes.
const (
	OutcomeSuccess = "success"
	OutcomeDenied  = "denied"
)

// SigningKey is one of an instance's JWT signing keys. The private key is
// stored sealed (PKCS#8 DER under AES-256-GCM, bound to the kid); the
// public key is published in the JWKS until every token it signed has
// expired.
type SigningKey struct {
	ID         string // the JWT kid
	InstanceID string
	Algorithm  string // RS256 or EdDSA
	PublicKey  []byte // PKIX DER
	Sealed     []byte // sealed PKCS#8 DER private key
	CreatedAt  time.Time
	// RetiredAt is when a newer key replaced this one; zero while it signs.
	RetiredAt time.Time
	// TokensExpireAt is the latest expiry of any token this key signed.
	TokensExpireAt time.Time
}

// Published reports whether the key belongs in the JWKS at now: while it
// signs, and after that until the last token it signed has expired.
func (k SigningKey) Published(now time.Time) bool {
	return k.RetiredAt.IsZero() || now.Before(k.TokensExpireAt)
}

// Actor token statuses (Clerk's).
const (
	ActorPending  = "pending"
	ActorAccepted = "accepted"
	ActorRevoked  = "revoked"
)

// ActorToken is a one-time impersonation ticket: an actor may act as the
// user once the ticket is redeemed. The ticket secret itself is stored as
// its digest only.
type ActorToken struct {
	ID                 string // act_ + 27 base62
	InstanceID         string
	UserID             string
	Actor              json.RawMessage // the actor object as given; has "sub"
	Status             string
	Digest             Digest
	ExpiresAt          time.Time // of the ticket
	SessionMaxDuration int64     // seconds
	CreatedAt          time.Time
	UpdatedAt          time.Time
}

// ImpersonationSession is what redeeming an actor token starts.
type ImpersonationSession struct {
	ID           string // sess_ + 27 base62
	InstanceID   string
	ActorTokenID string
	UserID       string
	Actor        json.RawMessage
	StartedAt    time.Time
	ExpiresAt    time.Time
	RevokedAt    time.Time
}

// Client is a host or agent a user registered (OpenStack Freezer's
// client): its document is kept as given, with a uuid.
type Client struct {
	InstanceID string
	UserID     string
	ClientID   string
	Doc        json.RawMessage // the client-info object, uuid included
	CreatedAt  time.Time
}

package credential

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Webhooks: an instance's endpoints receive lifecycle events, signed as
// the Standard Webhooks specification says (https://www.standardwebhooks.com):
// headers webhook-id, webhook-timestamp (Unix seconds) and
// webhook-signature "v1,<base64 HMAC-SHA256 of id.timestamp.body>", the
// key being the endpoint's signing secret, "whsec_" + base64 of 32 random
// bytes.

// WebhookSecretPrefix starts every webhook signing secret.
const WebhookSecretPrefix = "whsec_"

// PrefixWebhook, PrefixWebhookEvent and PrefixWebhookDelivery start the ids
// of endpoints, events (the webhook-id header) and delivery attempts.
const (
	PrefixWebhook         = "wh_"
	PrefixWebhookEvent    = "evt_"
	PrefixWebhookDelivery = "whd_"
)

// Webhook is one endpoint of an instance. Sealed is its signing secret
// sealed under the keyring (with the endpoint id as associated data); it
// never leaves the authority in plain except in the create and rotate
// answers.
type Webhook struct {
	ID          string
	InstanceID  string
	URL         string
	Description string
	Events      []string // event types, or "*" for every type
	Sealed      []byte
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Subscribes reports whether the endpoint wants events of type t.
func (w Webhook) Subscribes(t string) bool {
	return slices.Contains(w.Events, EventAll) || slices.Contains(w.Events, t)
}

// EventAll subscribes an endpoint to every event type.
const EventAll = "*"

// EventPing is the type of the test event POST /v1/webhooks/{id}/test
// sends; no change emits it, and no subscription is needed for it.
const EventPing = "webhook.ping"

// Notices: event types keyward emits on its own (actor "system"), not for
// an audited change: the scanner's expiring, expired and unused, and the
// verify path's rate_limit_exhausted, credits_low and usage_exceeded.
const (
	EventExpiring           = "credential.expiring"
	EventExpired            = "credential.expired"
	EventUnused             = "credential.unused"
	EventRateLimitExhausted = "credential.rate_limit_exhausted"
	EventCreditsLow         = "credential.credits_low"
	EventUsageExceeded      = "credential.usage_exceeded"
)

// EventAuditChainBroken is sent, actor "system", when keyward finds an
// instance's audit hash chain broken (the janitor's pruning, keyward audit
// verify, the scheduled check in serve): once per instance and break. It
// is not an audit event itself: appending to a broken chain would move a
// truncated tail's break.
const EventAuditChainBroken = "audit.chain_broken"

// eventVerbs maps the verb of an audit action (its last dot-separated
// part) to the past tense of its event type. Actions whose verb is not
// here (secret reads: "*.secret_key.read", "api_key.secret_read"; a
// reused token, "m2m_token.reuse"; a test ping) emit no event: they change
// nothing about a credential's lifecycle, and telling a third party that
// a secret was read is the audit log's job.
var eventVerbs = map[string]string{
	"create": "created",
	"update": "updated",
	"delete": "deleted",
	"revoke": "revoked",
	"rotate": "rotated",
	"put":    "updated", // a workspace member added or changed
	"remove": "deleted", // a workspace member removed
	"import": "imported",
	"rekey":  "rekeyed",
}

// eventOfAction names the events of actions whose last part is a noun,
// not a verb.
var eventOfAction = map[string]string{
	"credential.controls": "credential.controls.updated",
	"credential.credits":  "credential.credits.updated",
}

// EventType maps an audit action ("machine.secret_key.rotate") to the
// lifecycle event it emits ("machine.secret_key.rotated"), or reports
// false when the action emits none.
func EventType(action string) (string, bool) {
	if t, ok := eventOfAction[action]; ok {
		return t, true
	}
	i := strings.LastIndexByte(action, '.')
	if i <= 0 {
		return "", false
	}
	past, ok := eventVerbs[action[i+1:]]
	if !ok {
		return "", false
	}
	return action[:i+1] + past, true
}

// EventTypeFor is EventType for an action on a target of targetKind: an
// action every kind shares whose event is named by the kind
// (PerKindEvent: "credential.leak") emits "<targetKind>.<past>"
// ("m2m_token.leaked"), so subscribers choose by kind.
func EventTypeFor(action, targetKind string) (string, bool) {
	if past, ok := perKindEvents[action]; ok && targetKind != "" {
		return targetKind + "." + past, true
	}
	return EventType(action)
}

// perKindEvents are the shared actions whose events carry the target's
// kind, and their past tense.
var perKindEvents = map[string]string{"credential.leak": "leaked"}

// PerKindEvent reports whether action's event is named by its target's
// kind (see EventTypeFor).
func PerKindEvent(action string) bool {
	_, ok := perKindEvents[action]
	return ok
}

// LeakableKinds are the kinds a leak report can find: every kind with a
// secret prefix. Each has its "<target>.leaked" event type (LeakTarget).
var LeakableKinds = []Kind{KindAdminKey, KindMachineKey, KindAPIKey, KindM2MToken, KindOrgToken, KindPAT, KindActorTicket}

// LeakTarget is the target kind of a leaked secret's audit and lifecycle
// events: the kind itself, but "actor_token" for an actor ticket, as its
// other events name it.
func LeakTarget(k Kind) string {
	if k == KindActorTicket {
		return "actor_token"
	}
	return string(k)
}

// EventTypes lists every event type a change can emit, for validating a
// subscription and for the documentation. TestEveryAuditActionHasAnEvent
// checks it against the actions the use cases record.
var EventTypes = []string{
	"actor_token.created", "actor_token.revoked",
	"admin_key.created", "admin_key.revoked",
	"api_key.created", "api_key.updated", "api_key.deleted", "api_key.revoked",
	"client.created", "client.deleted",
	"credential.controls.updated", "credential.credits.updated",
	EventExpiring, EventExpired, EventUnused, EventRateLimitExhausted, EventCreditsLow, EventUsageExceeded, // notices (no audit action)
	"identity.created", "identity.updated", "identity.deleted",
	"impersonation_session.revoked",
	"instance.updated",
	"m2m_token.created", "m2m_token.revoked",
	"machine.created", "machine.updated", "machine.deleted",
	"machine.scope.created", "machine.scope.deleted", "machine.secret_key.rotated",
	"org_token.created", "org_token.updated", "org_token.deleted",
	"organization.created", "organization.updated", "organization.deleted",
	"pat.created", "pat.updated", "pat.revoked",
	"role.created", "role.updated", "role.deleted",
	"scopes.updated",
	"signing_key.rotated",
	"site.created", "site.updated", "site.deleted",
	"sitegroup.created", "sitegroup.updated", "sitegroup.deleted",
	"webhook.created", "webhook.updated", "webhook.deleted", "webhook.secret.rotated",
	"workspace.created", "workspace.updated", "workspace.deleted",
	"workspace.member.updated", "workspace.member.deleted",
	// credential.leak, named by the leaked secret's kind (EventTypeFor).
	"admin_key.leaked", "machine_key.leaked", "api_key.leaked", "m2m_token.leaked", "org_token.leaked", "pat.leaked", "actor_token.leaked",
	EventAuditChainBroken, // a notice of the instance's audit chain (no audit action)
}

// KnownEventType reports whether t may be subscribed to.
func KnownEventType(t string) bool { return t == EventAll || slices.Contains(EventTypes, t) }

// webhookSecretBytes is the signing key's length (Standard Webhooks asks
// for 24 to 64 bytes).
const webhookSecretBytes = 32

// NewWebhookSecret returns a new signing secret, "whsec_" + base64 of 32
// random bytes.
func NewWebhookSecret() (Secret, error) {
	var raw [webhookSecretBytes]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return Secret{}, Wrap(CodeInternal, err, "read random bytes")
	}
	return Secret{value: WebhookSecretPrefix + base64.StdEncoding.EncodeToString(raw[:])}, nil
}

// WebhookSecret wraps a signing secret opened from its sealed form.
func WebhookSecret(plain string) Secret { return Secret{value: plain} }

// WebhookKey returns the HMAC key of a signing secret: the base64 after
// "whsec_".
func WebhookKey(s Secret) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s.value, WebhookSecretPrefix))
	if err != nil || len(key) == 0 {
		return nil, Errorf(CodeInternal, "malformed webhook signing secret")
	}
	return key, nil
}

// SignWebhook returns the webhook-signature header value for a message:
// "v1," + base64(HMAC-SHA256(key, id + "." + timestamp + "." + body)).
func SignWebhook(key []byte, id string, at time.Time, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(strconv.FormatInt(at.Unix(), 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Delivery states.
const (
	DeliveryPending   = "pending"   // due at NextAttemptAt
	DeliverySucceeded = "succeeded" // a 2xx answer
	DeliveryDead      = "dead"      // retried for the whole retry window; dead-lettered
)

// WebhookEvent is one lifecycle event in the outbox; Payload is its JSON,
// as delivered.
type WebhookEvent struct {
	ID         string
	InstanceID string
	Type       string
	OrderKey   string // target kind + "/" + id: deliveries of one key go in order
	Payload    []byte
	OccurredAt time.Time
}

// WebhookDelivery is one event on its way to one endpoint.
type WebhookDelivery struct {
	ID            string
	InstanceID    string
	WebhookID     string
	EventID       string
	EventType     string
	OrderKey      string
	Seq           int64 // the outbox order
	State         string
	Attempts      int
	NextAttemptAt time.Time // pending only
	LeasedUntil   time.Time
	LastStatus    int    // the last answer's HTTP status (0: none)
	LastError     string // why the last attempt failed (never a secret)
	LastLatency   time.Duration
	CreatedAt     time.Time
	LastAttemptAt time.Time
	DeliveredAt   time.Time
}

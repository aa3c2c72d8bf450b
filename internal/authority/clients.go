package authority

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward/internal/credential"
)

// Client registry limits (Freezer's list limit, and keyward's bounds).
const (
	ClientListLimitDefault = 10
	ClientListLimitMax     = 1000
	MaxClientsPerUser      = 10000
	MaxClientDocBytes      = 64 << 10
)

// Freezer's enums for the supported_* lists.
var clientEnums = map[string][]string{
	"supported_actions":  {"backup", "restore", "info", "admin", "exec"},
	"supported_modes":    {"fs", "mongo", "mysql", "sqlserver", "cinder", "glance", "cindernative", "nova"},
	"supported_storages": {"local", "swift", "ssh", "s3", "ftp", "ftps"},
	"supported_engines":  {"tar", "rsync", "rsyncv2", "nova", "osbrick", "glance"},
}

var (
	projectPattern = regexp.MustCompile(`^[\w-]+$`)
	labelPattern   = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)
)

// validFQDN reports whether s is a host name: dot-separated labels of
// letters, digits and inner hyphens, 63 characters each, 253 in all (a
// trailing dot allowed).
func validFQDN(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if !labelPattern.MatchString(label) {
			return false
		}
	}
	return true
}

// validClientID is Freezer's ^(?:([\w\-]+)_)?<fqdn>$: an optional
// "<project>_" prefix, then a host name (which holds no underscore).
func validClientID(id string) bool {
	host := id
	if i := strings.LastIndexByte(id, '_'); i >= 0 {
		if !projectPattern.MatchString(id[:i]) {
			return false
		}
		host = id[i+1:]
	}
	return validFQDN(host)
}

// schemaError is a violation of Freezer's client schema: 400 with the
// failing rule as the description.
func schemaError(format string, args ...any) error {
	return credential.Errorf(credential.CodeInvalid, format, args...)
}

// validateClientDoc checks a client document against Freezer's schema and
// returns it with a uuid (32 hex, generated when absent).
func validateClientDoc(doc map[string]json.RawMessage) (string, error) {
	var clientID string
	raw, ok := doc["client_id"]
	if !ok {
		return "", schemaError("'client_id' is a required property")
	}
	if json.Unmarshal(raw, &clientID) != nil {
		return "", schemaError("client_id: %s is not of type 'string'", truncate(string(raw)))
	}
	if !validClientID(clientID) {
		return "", schemaError("client_id: %q does not match ^(?:([\\w\\-]+)_)?<fqdn>$", truncate(clientID))
	}
	for _, field := range []string{"hostname", "description", "uuid"} {
		v, ok := doc[field]
		if !ok {
			continue
		}
		var s string
		if json.Unmarshal(v, &s) != nil {
			return "", schemaError("%s: %s is not of type 'string'", field, truncate(string(v)))
		}
		if field == "hostname" && !validFQDN(s) {
			return "", schemaError("hostname: %q is not a valid host name", truncate(s))
		}
	}
	for field, allowed := range clientEnums {
		v, ok := doc[field]
		if !ok {
			continue
		}
		var list []string
		if json.Unmarshal(v, &list) != nil {
			return "", schemaError("%s: %s is not an array of strings", field, truncate(string(v)))
		}
		for _, item := range list {
			if !slices.Contains(allowed, item) {
				return "", schemaError("%s: %q is not one of %v", field, truncate(item), allowed)
			}
		}
	}
	if v, ok := doc["is_central"]; ok {
		var b bool
		if json.Unmarshal(v, &b) != nil {
			return "", schemaError("is_central: %s is not of type 'boolean'", truncate(string(v)))
		}
	}
	if _, ok := doc["uuid"]; !ok {
		u := uuid.New()
		doc["uuid"], _ = json.Marshal(hex.EncodeToString(u[:]))
	}
	return clientID, nil
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// clientUser is the user a caller acts for on the client registry: a PAT
// needs keyward:clients; the admin key names the user in X-User-ID.
func (a *Authority) clientUser(ctx context.Context, c Caller) (string, error) {
	if c.Kind == credential.KindPAT && !slices.Contains(c.Scopes, ScopeClients) {
		return "", a.forbid(ctx, c, "scope_required", credential.Errorf(credential.CodeForbidden, "the client registry needs the keyward:clients scope"))
	}
	return a.actingUser(ctx, c)
}

// CreateClient registers a client for the acting user; the document is
// kept as given (unknown fields included) plus a uuid.
func (a *Authority) CreateClient(ctx context.Context, c Caller, body []byte) (string, error) {
	if err := a.enter(ctx, c, "CreateClient"); err != nil {
		return "", err
	}
	user, err := a.clientUser(ctx, c)
	if err != nil {
		return "", err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return "", credential.Errorf(credential.CodeMissing, "Missing request body")
	}
	if len(body) > MaxClientDocBytes {
		return "", credential.Errorf(credential.CodeTooLarge, "the client document is larger than %d bytes", MaxClientDocBytes)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil || doc == nil {
		return "", schemaError("the client document must be a JSON object")
	}
	clientID, err := validateClientDoc(doc)
	if err != nil {
		return "", err
	}
	stored, err := json.Marshal(doc)
	if err != nil {
		return "", credential.Wrap(credential.CodeInternal, err, "encode client")
	}
	err = a.store.Update(ctx, func(tx Tx) error {
		existing, err := tx.ListClients(ctx, c.InstanceID, user)
		if err != nil {
			return err
		}
		if len(existing) >= MaxClientsPerUser {
			return credential.Errorf(credential.CodeTooMany, "a user can register at most %d clients", MaxClientsPerUser)
		}
		err = tx.InsertClient(ctx, credential.Client{InstanceID: c.InstanceID, UserID: user, ClientID: clientID, Doc: stored, CreatedAt: a.clock.Now()})
		if credential.IsCode(err, credential.CodeConflict) {
			return credential.Errorf(credential.CodeConflict, "Client already registered with ID %s", clientID)
		}
		if err != nil {
			return err
		}
		return a.audit(ctx, tx, c, "client.create", "client", clientID, map[string]string{"user_id": user})
	})
	return clientID, err
}

// GetClient returns one of the acting user's clients.
func (a *Authority) GetClient(ctx context.Context, c Caller, clientID string) (credential.Client, error) {
	if err := a.enter(ctx, c, "GetClient"); err != nil {
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
	if err := a.enter(ctx, c, "DeleteClient"); err != nil {
		return err
	}
	user, err := a.clientUser(ctx, c)
	if err != nil {
		return err
	}
	return a.store.Update(ctx, func(tx Tx) error {
		if err := tx.DeleteClient(ctx, c.InstanceID, user, clientID); err != nil {
			if credential.IsCode(err, credential.CodeNotFound) {
				return credential.Errorf(credential.CodeNotFound, "No Client found with ID:%s", clientID)
			}
			return err
		}
		return a.audit(ctx, tx, c, "client.delete", "client", clientID, map[string]string{"user_id": user})
	})
}

// ClientSearch is Freezer's search option: a client matches every pair in
// Match and no pair in MatchNot. A key compares for equality wherever it
// occurs in the client entry (nested objects included; an array matches
// when one of its items is equal); the key "_all" matches a
// case-insensitive substring of any text value.
type ClientSearch struct {
	Match    []map[string]json.RawMessage `json:"match"`
	MatchNot []map[string]json.RawMessage `json:"match_not"`
}

// ParseClientSearch decodes the search option sent in a list request's
// body; an empty body is no search.
func ParseClientSearch(body []byte) (ClientSearch, error) {
	var s ClientSearch
	if len(bytes.TrimSpace(body)) == 0 {
		return s, nil
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return s, credential.Errorf(credential.CodeMalformed, "the search option must be a JSON object")
	}
	for k := range top {
		if k != "match" && k != "match_not" {
			return s, schemaError("search: unknown option %q (use match and match_not)", truncate(k))
		}
	}
	if err := json.Unmarshal(body, &s); err != nil {
		return s, schemaError("search: match and match_not must be lists of {key: value} objects")
	}
	for _, pairs := range [][]map[string]json.RawMessage{s.Match, s.MatchNot} {
		for _, p := range pairs {
			if len(p) != 1 {
				return s, schemaError("search: each match entry must hold exactly one key")
			}
		}
	}
	return s, nil
}

// Matches reports whether a client entry satisfies the search.
func (s ClientSearch) Matches(entry any) bool {
	for _, p := range s.Match {
		if !pairMatches(entry, p) {
			return false
		}
	}
	for _, p := range s.MatchNot {
		if pairMatches(entry, p) {
			return false
		}
	}
	return true
}

func pairMatches(entry any, pair map[string]json.RawMessage) bool {
	for key, raw := range pair {
		var want any
		if json.Unmarshal(raw, &want) != nil {
			return false
		}
		if key == "_all" {
			text, ok := want.(string)
			return ok && containsText(entry, strings.ToLower(text))
		}
		return hasKeyEqual(entry, key, want)
	}
	return false
}

// hasKeyEqual looks for key at any depth with a value equal to want.
func hasKeyEqual(v any, key string, want any) bool {
	switch t := v.(type) {
	case map[string]any:
		for k, child := range t {
			if k == key && valueEquals(child, want) {
				return true
			}
			if hasKeyEqual(child, key, want) {
				return true
			}
		}
	case []any:
		for _, child := range t {
			if hasKeyEqual(child, key, want) {
				return true
			}
		}
	}
	return false
}

func valueEquals(got, want any) bool {
	if list, ok := got.([]any); ok {
		if _, wantList := want.([]any); !wantList {
			for _, item := range list {
				if jsonEqual(item, want) {
					return true
				}
			}
			return false
		}
	}
	return jsonEqual(got, want)
}

func jsonEqual(x, y any) bool {
	a, errA := json.Marshal(x)
	b, errB := json.Marshal(y)
	return errA == nil && errB == nil && bytes.Equal(a, b)
}

func containsText(v any, needle string) bool {
	switch t := v.(type) {
	case string:
		return strings.Contains(strings.ToLower(t), needle)
	case map[string]any:
		for _, child := range t {
			if containsText(child, needle) {
				return true
			}
		}
	case []any:
		for _, child := range t {
			if containsText(child, needle) {
				return true
			}
		}
	}
	return false
}

// ListClients returns a page of the acting user's clients that match the
// search, in a stable order (registration time, then client_id). Paging
// applies after the search.
func (a *Authority) ListClients(ctx context.Context, c Caller, search ClientSearch, limit, offset *int64) ([]credential.Client, error) {
	if err := a.enter(ctx, c, "ListClients"); err != nil {
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
		var entry any
		if err := json.Unmarshal(ClientEntry(cl), &entry); err != nil {
			return nil, credential.Wrap(credential.CodeInternal, err, fmt.Sprintf("stored client %s", cl.ClientID))
		}
		if !search.Matches(entry) {
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

// ClientEntry is Freezer's ClientEntry: {"client": {…}, "user_id": …}.
func ClientEntry(cl credential.Client) json.RawMessage {
	b, _ := json.Marshal(struct {
		Client json.RawMessage `json:"client"`
		UserID string          `json:"user_id"`
	}{cl.Doc, cl.UserID})
	return b
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
	c, err := a.Authenticate(ctx, token)
	switch {
	case err != nil:
		return ClientIdentity{}, err
	case c.Kind == credential.KindAdminKey:
		return ClientIdentity{}, errAdminKeyNeedsUser
	case c.Kind != credential.KindPAT:
		return ClientIdentity{}, errUnauthenticated
	}
	now := a.clock.Now()
	expires := now.Add(ClientTokenLifetime)
	if !c.ExpiresAt.IsZero() && c.ExpiresAt.Before(expires) {
		expires = c.ExpiresAt // the answer never outlives the PAT it describes
	}
	return ClientIdentity{Caller: c, IssuedAt: now, ExpiresAt: expires}, nil
}

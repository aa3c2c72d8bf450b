package freezer

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
)

// MaxClientDocBytes bounds one client document.
const MaxClientDocBytes = 64 << 10

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

// decodeClient reads a client document: it is kept as given (unknown
// fields included) plus a uuid.
func decodeClient(body []byte) (authority.NewClient, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return authority.NewClient{}, credential.Errorf(credential.CodeMissing, "Missing request body")
	}
	if len(body) > MaxClientDocBytes {
		return authority.NewClient{}, credential.Errorf(credential.CodeTooLarge, "the client document is larger than %d bytes", MaxClientDocBytes)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil || doc == nil {
		return authority.NewClient{}, schemaError("the client document must be a JSON object")
	}
	clientID, err := validateClientDoc(doc)
	if err != nil {
		return authority.NewClient{}, err
	}
	stored, err := json.Marshal(doc)
	if err != nil {
		return authority.NewClient{}, credential.Wrap(credential.CodeInternal, err, "encode client")
	}
	return authority.NewClient{ClientID: clientID, Doc: stored}, nil
}

// validateClientDoc checks a client document against Freezer's schema and
// gives it a uuid (32 hex, generated when absent).
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

// clientSearch is Freezer's search option: a client matches every pair in
// Match and no pair in MatchNot. A key compares for equality wherever it
// occurs in the client entry (nested objects included; an array matches
// when one of its items is equal); the key "_all" matches a
// case-insensitive substring of any text value.
type clientSearch struct {
	Match    []map[string]json.RawMessage `json:"match"`
	MatchNot []map[string]json.RawMessage `json:"match_not"`
}

// parseClientSearch decodes the search option sent in a list request's
// body; an empty body is no search.
func parseClientSearch(body []byte) (clientSearch, error) {
	var s clientSearch
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

// keeps reports whether a stored client's entry satisfies the search (the
// filter the authority applies before paging).
func (s clientSearch) keeps(cl credential.Client) (bool, error) {
	var entry any
	if err := json.Unmarshal(clientEntry(cl), &entry); err != nil {
		return false, credential.Wrap(credential.CodeInternal, err, fmt.Sprintf("stored client %s", cl.ClientID))
	}
	return s.matches(entry), nil
}

// matches reports whether a client entry satisfies the search.
func (s clientSearch) matches(entry any) bool {
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
		return PairMatches(entry, key, want)
	}
	return false
}

// PairMatches is the rule of one search pair against a decoded client
// entry: key equals want wherever it occurs (an array matches when one of
// its items is equal), or, for the key "_all", want is a case-insensitive
// substring of any text value. The CLI filters with it too.
func PairMatches(entry any, key string, want any) bool {
	if key == "_all" {
		text, ok := want.(string)
		return ok && containsText(entry, strings.ToLower(text))
	}
	return hasKeyEqual(entry, key, want)
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

// clientEntry is Freezer's ClientEntry: {"client": {…}, "user_id": …}.
func clientEntry(cl credential.Client) json.RawMessage {
	b, _ := json.Marshal(struct {
		Client json.RawMessage `json:"client"`
		UserID string          `json:"user_id"`
	}{cl.Doc, cl.UserID})
	return b
}

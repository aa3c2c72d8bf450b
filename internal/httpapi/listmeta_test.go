package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/keyward/keyward/internal/httpapi/apitest"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

// metaListKind is one native credential list that filters on meta: setup
// makes five credentials of the kind and returns their ids and the list's
// path.
type metaListKind struct {
	name  string
	paged bool // the list takes limit and cursor
	setup func(t *testing.T, e *apitest.Env) (ids []string, list string)
	// schema is the list answer's schema in openapi.json ("" for the
	// identity's credentials, whose schema is inline in its operation).
	schema string
	// one, when the kind answers with one item (its get, or else its
	// update or revoke answer), returns that answer for id.
	one func(t *testing.T, e *apitest.Env, list, id string) map[string]any
}

func metaListKinds() []metaListKind {
	const n = 5
	return []metaListKind{
		{name: "api_keys", paged: true, setup: func(t *testing.T, e *apitest.Env) ([]string, string) {
			var ids []string
			for i := range n {
				k := mustDo(t, e, "POST", "/v1/api_keys", e.AdminKey, map[string]any{"name": fmt.Sprintf("key%d", i), "subject": permAPIKeySubject}, 201)
				e.Remember(k["secret"].(string))
				ids = append(ids, k["id"].(string))
			}
			return ids, "/v1/api_keys?subject=" + permAPIKeySubject
		}, schema: "NativeAPIKeyList", one: func(t *testing.T, e *apitest.Env, _, id string) map[string]any {
			return mustDo(t, e, "GET", "/v1/api_keys/"+id, e.AdminKey, nil, http.StatusOK)
		}},
		{name: "m2m_tokens", paged: true, setup: func(t *testing.T, e *apitest.Env) ([]string, string) {
			m := mustDo(t, e, "POST", "/v1/machines", e.AdminKey, map[string]any{"name": "minter"}, 201)
			key := m["secret_key"].(string)
			e.Remember(key)
			var ids []string
			for i := range n {
				tok := mustDo(t, e, "POST", "/v1/m2m_tokens", key, map[string]any{"claims": map[string]any{"n": i}}, 201)
				e.Remember(tok["token"].(string))
				ids = append(ids, tok["id"].(string))
			}
			return ids, "/v1/machines/" + m["id"].(string) + "/m2m_tokens"
		}, schema: "NativeM2MTokenList", one: func(t *testing.T, e *apitest.Env, _, id string) map[string]any {
			return mustDo(t, e, "POST", "/v1/m2m_tokens/"+id+"/revoke", e.AdminKey, map[string]any{}, http.StatusOK)
		}},
		{name: "pats", paged: true, setup: func(t *testing.T, e *apitest.Env) ([]string, string) {
			var ids []string
			for i := range n {
				p := mustDo(t, e, "POST", "/v1/users/"+familyUser+"/pats", e.AdminKey, map[string]any{"name": fmt.Sprintf("p%d", i)}, 201)
				e.Remember(p["token"].(string))
				ids = append(ids, p["id"].(string))
			}
			return ids, "/v1/users/" + familyUser + "/pats"
		}, schema: "NativePATList", one: func(t *testing.T, e *apitest.Env, list, id string) map[string]any {
			return mustDo(t, e, "PATCH", list+"/"+id, e.AdminKey, map[string]any{"description": "renamed"}, http.StatusOK)
		}},
		{name: "org_tokens", paged: true, setup: func(t *testing.T, e *apitest.Env) ([]string, string) {
			org := mustDo(t, e, "POST", "/v1/organizations", e.AdminKey, map[string]any{"slug": "acme", "name": "Acme"}, 201)["id"].(string)
			var ids []string
			for i := range n {
				tok := mustDo(t, e, "POST", "/v1/organizations/"+org+"/tokens", e.AdminKey,
					map[string]any{"name": fmt.Sprintf("t%d", i), "privileges": []map[string]string{{"scope": "org", "role": "read"}}}, 201)
				e.Remember(tok["key"].(string))
				ids = append(ids, tok["id"].(string))
			}
			return ids, "/v1/organizations/" + org + "/tokens"
		}, schema: "NativeOrgTokenList", one: func(t *testing.T, e *apitest.Env, list, id string) map[string]any {
			return mustDo(t, e, "GET", list+"/"+id, e.AdminKey, nil, http.StatusOK)
		}},
		{name: "identity_credentials", setup: func(t *testing.T, e *apitest.Env) ([]string, string) {
			ident := mustDo(t, e, "POST", "/v1/identities", e.AdminKey, map[string]any{"external_id": "customer-1"}, 201)["id"].(string)
			var ids []string
			for i := range n {
				k := mustDo(t, e, "POST", "/v1/api_keys", e.AdminKey, map[string]any{"name": fmt.Sprintf("key%d", i), "subject": permAPIKeySubject, "identity_id": ident}, 201)
				e.Remember(k["secret"].(string))
				ids = append(ids, k["id"].(string))
			}
			// A credential of the instance not linked to the identity, with
			// the same meta, is never listed.
			other := mustDo(t, e, "POST", "/v1/api_keys", e.AdminKey, map[string]any{"name": "unlinked", "subject": permAPIKeySubject}, 201)
			e.Remember(other["secret"].(string))
			mustDo(t, e, "PATCH", "/v1/credentials/"+other["id"].(string)+"/controls", e.AdminKey, map[string]any{"meta": map[string]any{"plan": "pro", "count": 3}}, 200)
			return ids, "/v1/identities/" + ident + "/credentials"
		}},
	}
}

// listIDs GETs a list (with query q) and returns its ids and next cursor.
func listIDs(t *testing.T, e *apitest.Env, list, q string) ([]string, string) {
	t.Helper()
	sep := "?"
	if strings.Contains(list, "?") {
		sep = "&"
	}
	body := mustDo(t, e, "GET", list+sep+q, e.AdminKey, nil, http.StatusOK)
	var ids []string
	for _, it := range body["data"].([]any) {
		ids = append(ids, it.(map[string]any)["id"].(string))
	}
	next, _ := body["next_cursor"].(string)
	return ids, next
}

func sortedIDs(ids []string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}

// Every native credential list filters on ?meta.<key>=<value>: every key
// must match, a string value as a string, another value by its JSON text;
// the filter applies before the page, so the page and its cursor count
// matches only; more than ten filters is a 400 naming the first key past
// the bound.
func TestListsFilterByMeta(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		for _, k := range metaListKinds() {
			t.Run(k.name, func(t *testing.T) {
				e := apitest.Start(t, s)
				ids, list := k.setup(t, e)
				// Three pro (count 3), two free (count 4).
				var pro, free []string
				for i, id := range ids {
					meta := map[string]any{"plan": "pro", "count": 3, "beta": true}
					if i%2 == 1 {
						meta = map[string]any{"plan": "free", "count": 4}
					}
					mustDo(t, e, "PATCH", "/v1/credentials/"+id+"/controls", e.AdminKey, map[string]any{"meta": meta}, http.StatusOK)
					if i%2 == 1 {
						free = append(free, id)
					} else {
						pro = append(pro, id)
					}
				}
				for _, c := range []struct {
					name, q string
					want    []string
				}{
					{"string_value_matches", "meta.plan=pro", pro},
					{"other_string_value_matches", "meta.plan=free", free},
					{"no_credential_matches", "meta.plan=enterprise", nil},
					{"unknown_key_matches_none", "meta.region=eu", nil},
					{"number_matches_by_its_text", "meta.count=3", pro},
					{"boolean_matches_by_its_text", "meta.beta=true", pro},
					{"string_does_not_match_a_number", "meta.plan=3", nil},
					{"every_key_must_match", "meta.plan=pro&meta.count=4", nil},
					{"two_keys_both_match", "meta.plan=free&meta.count=4", free},
					{"no_filter_lists_all", "", ids},
				} {
					t.Run(c.name, func(t *testing.T) {
						got, next := listIDs(t, e, list, c.q)
						if !slices.Equal(sortedIDs(got), sortedIDs(c.want)) || next != "" {
							t.Fatalf("?%s: %v (next %q), want %v", c.q, got, next, c.want)
						}
					})
				}
				if k.paged {
					t.Run("filtered_pages_count_matches_only", func(t *testing.T) {
						first, next := listIDs(t, e, list, "meta.plan=pro&limit=2")
						if len(first) != 2 || next == "" {
							t.Fatalf("first page: %v, next %q; want 2 and a cursor", first, next)
						}
						second, last := listIDs(t, e, list, "meta.plan=pro&limit=2&cursor="+url.QueryEscape(next))
						if len(second) != 1 || last != "" {
							t.Fatalf("second page: %v, next %q; want the last match and no cursor", second, last)
						}
						if got := append(first, second...); !slices.Equal(sortedIDs(got), sortedIDs(pro)) {
							t.Fatalf("pages %v, want %v", got, pro)
						}
						// Exactly a page of matches: no cursor after it.
						if got, next := listIDs(t, e, list, "meta.plan=free&limit=2"); len(got) != 2 || next != "" {
							t.Fatalf("a full last page: %v, next %q", got, next)
						}
					})
				}
				t.Run("too_many_filters_is_400", func(t *testing.T) {
					var q []string
					for i := range 11 {
						q = append(q, fmt.Sprintf("meta.k%02d=v", i))
					}
					sep := "?"
					if strings.Contains(list, "?") {
						sep = "&"
					}
					r := e.Do(t, "GET", list+sep+strings.Join(q, "&"), e.AdminKey, nil)
					errObj, _ := r.JSON(t)["error"].(map[string]any)
					if r.Status != http.StatusBadRequest || errObj["param"] != "meta.k10" {
						t.Fatalf("11 filters: %d %s, want 400 naming meta.k10", r.Status, r.Body)
					}
					if _, next := listIDs(t, e, list, strings.Join(q[:10], "&")); next != "" {
						t.Fatalf("10 filters: next %q", next)
					}
				})
			})
		}
	})
}

// listSchema is the openapi.json schema of a kind's list answer.
func listSchema(t *testing.T, doc *openapi3.T, k metaListKind) *openapi3.Schema {
	t.Helper()
	if k.schema != "" {
		ref := doc.Components.Schemas[k.schema]
		if ref == nil || ref.Value == nil {
			t.Fatalf("openapi.json has no schema %s", k.schema)
		}
		return ref.Value
	}
	op := doc.Paths.Find("/v1/identities/{identity_id}/credentials").Get
	return op.Responses.Status(http.StatusOK).Value.Content.Get("application/json").Schema.Value
}

// metaOf is an item's meta, which every native item shows: the object,
// or {} when the credential has none (never absent, never null).
func metaOf(t *testing.T, what string, item map[string]any) map[string]any {
	t.Helper()
	m, ok := item["meta"].(map[string]any)
	if !ok {
		t.Fatalf("%s: meta is %#v, want an object: %v", what, item["meta"], item)
	}
	return m
}

// Every native credential list shows each credential's meta, as the API
// key items do: the object set in its controls, or {} when it has none;
// so do the kind's one-item answers. The list answers match openapi.json
// and show no secret.
func TestListsShowMeta(t *testing.T) {
	doc, _ := loadOpenAPI(t)
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		for _, k := range metaListKinds() {
			t.Run(k.name, func(t *testing.T) {
				e := apitest.Start(t, s)
				ids, list := k.setup(t, e)
				with, without := ids[0], ids[1]
				want := map[string]any{"plan": "pro", "count": float64(3), "tags": []any{"a", "b"}, "nested": map[string]any{"beta": true}}
				mustDo(t, e, "PATCH", "/v1/credentials/"+with+"/controls", e.AdminKey, map[string]any{"meta": want}, http.StatusOK)
				// Meta set and then cleared shows as none.
				cleared := ids[2]
				mustDo(t, e, "PATCH", "/v1/credentials/"+cleared+"/controls", e.AdminKey, map[string]any{"meta": map[string]any{"plan": "free"}}, http.StatusOK)
				mustDo(t, e, "PATCH", "/v1/credentials/"+cleared+"/controls", e.AdminKey, map[string]any{"meta": nil}, http.StatusOK)

				sep := "?"
				if strings.Contains(list, "?") {
					sep = "&"
				}
				for _, q := range []string{"", "meta.plan=pro"} {
					r := e.Do(t, "GET", list+sep+q, e.AdminKey, nil)
					if r.Status != http.StatusOK {
						t.Fatalf("list ?%s: %d %s", q, r.Status, r.Body)
					}
					for _, secret := range e.Secrets() {
						if strings.Contains(string(r.Body), secret) {
							t.Fatalf("list ?%s shows a secret: %s", q, r.Body)
						}
					}
					var body any
					if err := json.Unmarshal(r.Body, &body); err != nil {
						t.Fatal(err)
					}
					if err := listSchema(t, doc, k).VisitJSON(body); err != nil {
						t.Errorf("list ?%s does not match openapi.json: %v", q, err)
					}
					items := map[string]map[string]any{}
					for _, it := range body.(map[string]any)["data"].([]any) {
						items[it.(map[string]any)["id"].(string)] = it.(map[string]any)
					}
					if got := metaOf(t, "the item with meta", items[with]); !reflect.DeepEqual(got, want) {
						t.Errorf("list ?%s: meta %v, want %v", q, got, want)
					}
					if q != "" {
						if len(items) != 1 {
							t.Errorf("list ?%s: %d items, want the one with meta", q, len(items))
						}
						continue
					}
					for _, id := range []string{without, cleared} {
						if got := metaOf(t, "an item without meta", items[id]); len(got) != 0 {
							t.Errorf("%s: meta %v, want {}", id, got)
						}
					}
				}
				if k.one != nil {
					if got := metaOf(t, "the one-item answer", k.one(t, e, list, with)); !reflect.DeepEqual(got, want) {
						t.Errorf("one-item answer: meta %v, want %v", got, want)
					}
					if got := metaOf(t, "the one-item answer", k.one(t, e, list, without)); len(got) != 0 {
						t.Errorf("one-item answer without meta: %v, want {}", got)
					}
				}
			})
		}
	})
}

// The create answers show meta too: an M2M token minted with meta shows
// it (as an API key created with meta does); one minted without, a JWT,
// a PAT and an org token (created without controls) show {}.
func TestCreateAnswersShowMeta(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		e := apitest.Start(t, s)
		m := mustDo(t, e, "POST", "/v1/machines", e.AdminKey, map[string]any{"name": "minter"}, 201)
		key := m["secret_key"].(string)
		e.Remember(key)
		want := map[string]any{"plan": "pro", "count": float64(3)}
		tok := mustDo(t, e, "POST", "/v1/m2m_tokens", key, map[string]any{"meta": want}, 201)
		e.Remember(tok["token"].(string))
		if got := metaOf(t, "mint with meta", tok); !reflect.DeepEqual(got, want) {
			t.Errorf("mint with meta: %v, want %v", got, want)
		}
		k := mustDo(t, e, "POST", "/v1/api_keys", e.AdminKey, map[string]any{"name": "key", "subject": permAPIKeySubject, "meta": want}, 201)
		e.Remember(k["secret"].(string))
		if got := metaOf(t, "API key with meta", k); !reflect.DeepEqual(got, want) {
			t.Errorf("API key created with meta: %v, want %v", got, want)
		}
		org := mustDo(t, e, "POST", "/v1/organizations", e.AdminKey, map[string]any{"slug": "acme", "name": "Acme"}, 201)["id"].(string)
		for _, c := range []struct {
			name, path, key, secret string
			body                    map[string]any
		}{
			{"opaque M2M", "/v1/m2m_tokens", key, "token", map[string]any{}},
			{"JWT M2M", "/v1/m2m_tokens", key, "token", map[string]any{"token_format": "jwt"}},
			{"PAT", "/v1/users/" + familyUser + "/pats", e.AdminKey, "token", map[string]any{"name": "p"}},
			{"org token", "/v1/organizations/" + org + "/tokens", e.AdminKey, "key", map[string]any{"name": "t", "privileges": []map[string]string{{"scope": "org", "role": "read"}}}},
		} {
			got := mustDo(t, e, "POST", c.path, c.key, c.body, 201)
			e.Remember(got[c.secret].(string))
			if meta := metaOf(t, c.name, got); len(meta) != 0 {
				t.Errorf("%s created without meta: %v, want {}", c.name, meta)
			}
		}
	})
}

// The vendor surfaces keep their JSON: the same credentials, with meta
// set, show no meta (nor its values) in Clerk's M2M token list, revoke
// and verify answers, Spatio's PAT list and Mist's API token list and
// read.
func TestVendorSurfacesShowNoMeta(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		e := apitest.Start(t, s)
		meta := map[string]any{"meta": map[string]any{"plan": "meta-plan-marker"}}
		tag := func(id string) {
			t.Helper()
			mustDo(t, e, "PATCH", "/v1/credentials/"+id+"/controls", e.AdminKey, meta, http.StatusOK)
		}
		m := mustDo(t, e, "POST", "/v1/machines", e.AdminKey, map[string]any{"name": "minter"}, 201)
		key := m["secret_key"].(string)
		e.Remember(key)
		tok := mustDo(t, e, "POST", "/v1/m2m_tokens", key, meta, 201)
		e.Remember(tok["token"].(string))
		p := mustDo(t, e, "POST", "/v1/users/"+familyUser+"/pats", e.AdminKey, map[string]any{"name": "p"}, 201)
		e.Remember(p["token"].(string))
		tag(p["id"].(string))
		org := mustDo(t, e, "POST", "/v1/organizations", e.AdminKey, map[string]any{"slug": "acme", "name": "Acme"}, 201)["id"].(string)
		ot := mustDo(t, e, "POST", "/v1/organizations/"+org+"/tokens", e.AdminKey,
			map[string]any{"name": "t", "privileges": []map[string]string{{"scope": "org", "role": "read"}}}, 201)
		e.Remember(ot["key"].(string))
		tag(ot["id"].(string))

		bearerKey := http.Header{"Authorization": {"Bearer " + e.AdminKey}}
		for _, c := range []struct {
			name, method, path string
			body               any
			header             http.Header
			id                 string // the answer shows it
		}{
			{"Clerk M2M list", "GET", "/clerk/v1/m2m_tokens?subject=" + m["id"].(string), nil, bearerKey, tok["id"].(string)},
			{"Clerk M2M verify", "POST", "/clerk/v1/m2m_tokens/verify", map[string]any{"token": tok["token"]}, bearerKey, tok["id"].(string)},
			{"Clerk M2M revoke", "POST", "/clerk/v1/m2m_tokens/" + tok["id"].(string) + "/revoke", map[string]any{}, bearerKey, tok["id"].(string)},
			{"Spatio PAT list", "GET", "/spatio/v1/tokens", nil, http.Header{"Authorization": {"Bearer " + e.AdminKey}, "X-User-ID": {familyUser}}, p["id"].(string)},
			{"Mist token list", "GET", "/mist/api/v1/orgs/" + org + "/apitokens", nil, http.Header{"Authorization": {"Token " + e.AdminKey}}, ot["id"].(string)},
			{"Mist token read", "GET", "/mist/api/v1/orgs/" + org + "/apitokens/" + ot["id"].(string), nil, http.Header{"Authorization": {"Token " + e.AdminKey}}, ot["id"].(string)},
		} {
			r := e.DoWith(t, c.method, c.path, c.body, c.header)
			if r.Status != http.StatusOK || !strings.Contains(string(r.Body), c.id) {
				t.Fatalf("%s: %d %s, want 200 showing %s", c.name, r.Status, r.Body, c.id)
			}
			if strings.Contains(string(r.Body), `"meta"`) || strings.Contains(string(r.Body), "meta-plan-marker") {
				t.Errorf("%s shows meta: %s", c.name, r.Body)
			}
		}
	})
}

package httpapi_test

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

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
		}},
		{name: "pats", paged: true, setup: func(t *testing.T, e *apitest.Env) ([]string, string) {
			var ids []string
			for i := range n {
				p := mustDo(t, e, "POST", "/v1/users/"+familyUser+"/pats", e.AdminKey, map[string]any{"name": fmt.Sprintf("p%d", i)}, 201)
				e.Remember(p["token"].(string))
				ids = append(ids, p["id"].(string))
			}
			return ids, "/v1/users/" + familyUser + "/pats"
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

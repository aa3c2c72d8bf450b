package clerk_test

import (
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/keyward/keyward/internal/httpapi/apitest"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

// TestMachineQueryMatchesWildcardsLiterally: the machine list's query is a
// case-insensitive substring of the name (or an exact id). LIKE's % and _
// and the escape character itself must match only themselves, on both
// stores: query=% once looked like it matched every machine.
func TestMachineQueryMatchesWildcardsLiterally(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := apitest.Start(t, store)
		for _, name := range []string{"alpha", "b_c", "50% off", `back\slash`, "abc", "A%B_C"} {
			if resp := e.Do(t, "POST", "/clerk/v1/machines", e.AdminKey, map[string]string{"name": name}); resp.Status != http.StatusOK {
				t.Fatalf("create %q: %d %s", name, resp.Status, resp.Body)
			} else {
				e.Remember(resp.JSON(t)["secret_key"].(string))
			}
		}
		for _, tc := range []struct {
			query string
			want  []string
		}{
			{"%", []string{"50% off", "A%B_C"}},
			{"_", []string{"b_c", "A%B_C"}},
			{`\`, []string{`back\slash`}},
			{`\%`, nil},
			{"a%c", nil},
			{"a_c", nil},
			{"b_c", []string{"b_c", "A%B_C"}},
			{"%b_", []string{"A%B_C"}},
			{"%%", nil},
			{"B", []string{"b_c", `back\slash`, "abc", "A%B_C"}},
		} {
			t.Run(tc.query, func(t *testing.T) {
				resp := e.Do(t, "GET", "/clerk/v1/machines?limit=100&query="+url.QueryEscape(tc.query), e.AdminKey, nil)
				if resp.Status != http.StatusOK {
					t.Fatalf("%d %s", resp.Status, resp.Body)
				}
				var got []string
				for _, m := range resp.JSON(t)["data"].([]any) {
					got = append(got, m.(map[string]any)["name"].(string))
				}
				slices.Sort(got)
				want := slices.Clone(tc.want)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Fatalf("query %q matched %q, want %q", tc.query, got, want)
				}
				if total := resp.JSON(t)["total_count"]; total != float64(len(want)) {
					t.Fatalf("query %q: total_count %v, want %d", tc.query, total, len(want))
				}
			})
		}
	})
}

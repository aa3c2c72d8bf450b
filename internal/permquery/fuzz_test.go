package permquery

import (
	"errors"
	"hash/fnv"
	"slices"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics, that a refusal is a
// *SyntaxError pointing into the query, and that an accepted query
// round-trips through String and answers Eval and Missing consistently.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"", " ", "a", "dns.read AND (dns.write OR admin)", "a OR b AND c", "(a OR b) AND c",
		"a and b Or c", "((a))", "(a)or(b)and(c)", "ANDROID AND or.read", "system:admin.* AND /api/v1/xxx",
		"a AND", "AND a", "a b", "(a", "a)", "()", "a $", "café", "a\xffb",
		strings.Repeat("(", MaxDepth+1) + "a" + strings.Repeat(")", MaxDepth+1),
		strings.Repeat("a OR ", MaxTerms) + "a",
		strings.Repeat("n", MaxNameBytes+1),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := Parse(s)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Pos < 0 || se.Pos > len(s) || se.Msg == "" || se.Code == "" || !q.IsZero() {
				t.Fatalf("Parse(%q) = %v, %#v", s, q, err)
			}
			return
		}
		if q.IsZero() {
			t.Fatalf("Parse(%q) accepted the zero Query", s)
		}
		canon := q.String()
		r, err := Parse(canon)
		if err != nil || !r.Equal(q) || r.String() != canon {
			t.Fatalf("Parse(%q).String() = %q, which parses to %v, %v; want an equal query", s, canon, r, err)
		}
		names := q.Names()
		if len(names) == 0 || len(names) > MaxTerms {
			t.Fatalf("Parse(%q).Names() = %q", s, names)
		}
		// Hold about half the names, chosen by a hash so the choice
		// varies with the input.
		held := func(n string) bool {
			h := fnv.New32a()
			h.Write([]byte(s))
			h.Write([]byte(n))
			return h.Sum32()%2 == 0
		}
		ok, missing := q.Eval(held), q.Missing(held)
		if (len(missing) == 0) != ok {
			t.Fatalf("%q: Eval %v, Missing %q", s, ok, missing)
		}
		for _, m := range missing {
			if held(m) {
				t.Fatalf("%q: Missing %q names the held %q", s, missing, m)
			}
		}
		if !q.Eval(func(n string) bool { return held(n) || slices.Contains(missing, n) }) {
			t.Fatalf("%q: adding Missing %q does not satisfy it", s, missing)
		}
	})
}

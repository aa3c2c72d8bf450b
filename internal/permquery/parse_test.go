package permquery

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseAccepts(t *testing.T) {
	for _, tc := range []struct {
		name, query, canonical string
	}{
		{"a single name is itself", "dns.read", "dns.read"},
		{"the issue's example keeps its parentheses", "dns.read AND (dns.write OR admin)", "dns.read AND (dns.write OR admin)"},
		{"AND binds tighter than OR", "a OR b AND c", "a OR b AND c"},
		{"AND binds tighter than OR on the left too", "a AND b OR c", "a AND b OR c"},
		{"parentheses override precedence", "(a OR b) AND c", "(a OR b) AND c"},
		{"operators in any case", "a and b Or c aNd d", "a AND b OR c AND d"},
		{"nested ANDs flatten", "(a AND b) AND (c AND d)", "a AND b AND c AND d"},
		{"nested ORs flatten", "a OR (b OR (c OR d))", "a OR b OR c OR d"},
		{"redundant parentheses vanish", "((a))", "a"},
		{"an AND inside an OR needs no parentheses", "(a AND b) OR c", "a AND b OR c"},
		{"parentheses need no spaces", "(a)or(b)and(c)", "a OR b AND c"},
		{"whitespace of every kind separates", " \ta\r\nAND\n\tb ", "a AND b"},
		{"every name character is allowed", "Az09._-:*/ AND system:admin.* AND /api/v1/xxx", "Az09._-:*/ AND system:admin.* AND /api/v1/xxx"},
		{"a name may contain an operator word", "ANDROID AND oracle OR or.read AND and_x", "ANDROID AND oracle OR or.read AND and_x"},
		{"names are case sensitive and kept", "Dns.Read OR dns.read", "Dns.Read OR dns.read"},
		{"a repeated name stays", "a AND a", "a AND a"},
		{"the deepest nesting allowed", strings.Repeat("(", MaxDepth) + "a" + strings.Repeat(")", MaxDepth), "a"},
		{"the most names allowed", strings.TrimSuffix(strings.Repeat("a OR ", MaxTerms), " OR "), strings.TrimSuffix(strings.Repeat("a OR ", MaxTerms), " OR ")},
		{"the longest name allowed", strings.Repeat("n", MaxNameBytes), strings.Repeat("n", MaxNameBytes)},
		{"whitespace does not count towards the length", strings.Repeat("x", MaxNameBytes) + strings.Repeat(" ", MaxQueryBytes-MaxNameBytes), strings.Repeat("x", MaxNameBytes)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, err := Parse(tc.query)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.query, err)
			}
			if got := q.String(); got != tc.canonical {
				t.Errorf("String() = %q, want %q", got, tc.canonical)
			}
			r, err := Parse(q.String())
			if err != nil || !r.Equal(q) {
				t.Errorf("Parse(String()) = %v, %v; want an equal query", r, err)
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	long := strings.Repeat("abcdefghij AND ", 80) + "a" // 80 names, 1041 bytes besides spaces
	longPos := 0                                        // where its 1001st byte besides spaces is
	for n := 0; n <= MaxSignificantBytes; longPos++ {
		if long[longPos] != ' ' {
			n++
		}
	}
	longPos--
	for _, tc := range []struct {
		name, query string
		code        Code
		pos         int
		msg         string // a part of the message
	}{
		{"the empty query is empty", "", CodeEmpty, 0, "at least one permission"},
		{"a blank query is empty", " \t\n ", CodeEmpty, 0, "empty"},
		{"a trailing AND dangles", "a AND", CodeExpectedOperand, 5, `after "AND", found the end of the query`},
		{"a trailing OR dangles", "a or ", CodeExpectedOperand, 5, `after "or"`},
		{"a leading operator has no left operand", "AND a", CodeExpectedOperand, 0, "cannot start with an operator"},
		{"two operators in a row", "a OR AND b", CodeExpectedOperand, 5, `after "OR", found operator "AND"`},
		{"an operator before ')'", "(a AND) OR b", CodeExpectedOperand, 6, `found ')'`},
		{"an operator after '('", "(OR a)", CodeExpectedOperand, 1, `after "("`},
		{"two names without an operator", "a b", CodeExpectedOperator, 2, `found permission "b"`},
		{"an operator glued to a name makes two names", "a ANDb", CodeExpectedOperator, 2, `"ANDb"`},
		{"a name before '('", "a (b)", CodeExpectedOperator, 2, "'('"},
		{"two names inside parentheses", "(a b)", CodeExpectedOperator, 3, "expected AND, OR or ')'"},
		{"an unclosed '('", "(a AND b", CodeUnbalanced, 8, "missing ')' to close the '(' at position 0"},
		{"a lone '('", "a AND (", CodeUnbalanced, 7, "position 6"},
		{"a stray ')'", "a)", CodeUnbalanced, 1, "unmatched ')'"},
		{"a leading ')'", ")a", CodeUnbalanced, 0, "unmatched ')'"},
		{"one ')' too many", "(a OR b))", CodeUnbalanced, 8, "unmatched"},
		{"empty parentheses", "a AND ()", CodeEmptyParens, 6, "empty parentheses"},
		{"a bad ASCII character", "a AND b$c", CodeBadCharacter, 7, `'$'`},
		{"a quote", `"a"`, CodeBadCharacter, 0, `'"'`},
		{"an ampersand is no operator", "a && b", CodeBadCharacter, 2, `'&'`},
		{"a comma is no separator", "a,b", CodeBadCharacter, 1, `','`},
		{"a non-ASCII letter is named whole", "a OR café", CodeBadCharacter, 8, `'é'`},
		{"a byte that is not UTF-8", "a\xffb", CodeBadCharacter, 1, "0xFF is not valid UTF-8"},
		{"a NUL", "a\x00", CodeBadCharacter, 1, `'\x00'`},
		{"a vertical tab is not whitespace", "a\vb", CodeBadCharacter, 1, `'\v'`},
		{"too long in all", strings.Repeat(" ", MaxQueryBytes) + "a", CodeTooLong, MaxQueryBytes, "longer than the limit of 2048"},
		{"too long besides whitespace", long, CodeTooLong, longPos, "more than 1000 bytes"},
		{"too deep", strings.Repeat("(", MaxDepth+1) + "a" + strings.Repeat(")", MaxDepth+1), CodeTooDeep, MaxDepth, "deeper than 16"},
		{"too many names", strings.Repeat("a OR ", MaxTerms) + "a", CodeTooManyTerms, 5 * MaxTerms, "more than 100 permissions"},
		{"a name too long", "a OR " + strings.Repeat("n", MaxNameBytes+1), CodeNameTooLong, 5, "129 bytes"},
		{"a lexical error after a syntax one is not reached", "a b $", CodeExpectedOperator, 2, "found permission"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, err := Parse(tc.query)
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%.40q) = %v, %v; want a *SyntaxError", tc.query, q, err)
			}
			if se.Code != tc.code || se.Pos != tc.pos || !strings.Contains(se.Error(), tc.msg) {
				t.Errorf("Parse(%.40q) = %v (code %s, pos %d); want code %s, pos %d, a message with %q", tc.query, se, se.Code, se.Pos, tc.code, tc.pos, tc.msg)
			}
			if !q.IsZero() {
				t.Errorf("a refused query is %v, want the zero Query", q)
			}
		})
	}
}

func TestEvalAndMissing(t *testing.T) {
	for _, tc := range []struct {
		name, query string
		held        []string
		ok          bool
		missing     []string
	}{
		{"a held name holds", "a", []string{"a"}, true, nil},
		{"a name not held is missing", "a", nil, false, []string{"a"}},
		{"names are case sensitive", "a", []string{"A"}, false, []string{"a"}},
		{"a star is literal, not a wildcard", "dns.*", []string{"dns.read"}, false, []string{"dns.*"}},
		{"a held star holds itself", "dns.*", []string{"dns.*"}, true, nil},
		{"AND needs every operand", "a AND b AND c", []string{"b"}, false, []string{"a", "c"}},
		{"OR needs one operand", "a OR b", []string{"b"}, true, nil},
		{"OR names the first alternative on a tie", "a OR b", nil, false, []string{"a"}},
		{"OR names the alternative needing fewest", "a AND b AND c OR d AND e", nil, false, []string{"d", "e"}},
		{"OR counts what is already held", "a AND b AND c OR d AND e", []string{"a", "b"}, false, []string{"c"}},
		{"the issue's example, holding read", "dns.read AND (dns.write OR admin)", []string{"dns.read"}, false, []string{"dns.write"}},
		{"the issue's example, holding admin", "dns.read AND (dns.write OR admin)", []string{"admin"}, false, []string{"dns.read"}},
		{"the issue's example, holding read and admin", "dns.read AND (dns.write OR admin)", []string{"dns.read", "admin"}, true, nil},
		{"a name missing twice is named once", "a AND (a OR b) AND a", nil, false, []string{"a"}},
		{"names come in query order", "(z OR y) AND x AND (w AND v)", nil, false, []string{"z", "x", "w", "v"}},
		{"repeats may make the answer larger than needed", "(a AND b) OR (a AND c)", nil, false, []string{"a", "b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, err := Parse(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			held := Holding(tc.held...)
			if got := q.Eval(held); got != tc.ok {
				t.Errorf("Eval = %v, want %v", got, tc.ok)
			}
			if got := q.Missing(held); !slices.Equal(got, tc.missing) {
				t.Errorf("Missing = %q, want %q", got, tc.missing)
			}
		})
	}
}

func TestZeroQueryHoldsForNobody(t *testing.T) {
	var q Query
	if !q.IsZero() || q.Eval(func(string) bool { return true }) || q.Missing(Holding()) != nil || q.String() != "" || q.Names() != nil {
		t.Errorf("zero Query: IsZero %v, Eval(all) %v, Missing %q, String %q, Names %q", q.IsZero(), q.Eval(func(string) bool { return true }), q.Missing(Holding()), q, q.Names())
	}
	r, _ := Parse("a")
	if q.Equal(r) || r.Equal(q) || !q.Equal(Query{}) {
		t.Error("the zero Query equals only itself")
	}
}

func TestNamesAreDistinctInQueryOrder(t *testing.T) {
	q, err := Parse("b AND (a OR b) AND c OR a")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := q.Names(), []string{"b", "a", "c"}; !slices.Equal(got, want) {
		t.Errorf("Names = %q, want %q", got, want)
	}
}

func TestEqualComparesTrees(t *testing.T) {
	parse := func(s string) Query {
		q, err := Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return q
	}
	for _, tc := range []struct {
		a, b  string
		equal bool
	}{
		{"a AND b", "(a) and (b)", true},
		{"(a AND b) AND c", "a AND (b AND c)", true},
		{"a AND b", "b AND a", false}, // order is kept: the canonical form is the query as written
		{"a OR b AND c", "(a OR b) AND c", false},
		{"a", "a AND a", false},
	} {
		if got := parse(tc.a).Equal(parse(tc.b)); got != tc.equal {
			t.Errorf("%q.Equal(%q) = %v, want %v", tc.a, tc.b, got, tc.equal)
		}
	}
}

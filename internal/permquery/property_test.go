package permquery

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// The property test checks Parse, Eval, Missing and String against a
// reference built without the package: random binary trees over a small
// alphabet, written out as text in random spellings (operator case,
// whitespace, redundant parentheses), and evaluated by plain recursion.

// alphabet holds the names the trees use: few, so that every held set can
// be tried, and some that look like operators or hold odd characters.
var alphabet = []string{"a", "b", "dns.read", "ANDROID", "or.x", "x:*/y"}

type tree struct {
	name string // a leaf when l is nil
	and  bool
	l, r *tree
}

func (t *tree) eval(held map[string]bool) bool {
	switch {
	case t.l == nil:
		return held[t.name]
	case t.and:
		return t.l.eval(held) && t.r.eval(held)
	default:
		return t.l.eval(held) || t.r.eval(held)
	}
}

func (t *tree) leaves(out []string) []string {
	if t.l == nil {
		return append(out, t.name)
	}
	return t.r.leaves(t.l.leaves(out))
}

func genTree(rng *rand.Rand, depth int) *tree {
	if depth == 0 || rng.IntN(3) == 0 {
		return &tree{name: alphabet[rng.IntN(len(alphabet))]}
	}
	return &tree{and: rng.IntN(2) == 0, l: genTree(rng, depth-1), r: genTree(rng, depth-1)}
}

// prec is how tightly a tree's top binds: OR 1, AND 2, a name 3.
func (t *tree) prec() int {
	switch {
	case t.l == nil:
		return 3
	case t.and:
		return 2
	default:
		return 1
	}
}

// tokens writes t as the tokens of a query, parenthesising a child that
// binds more loosely than its parent and, now and then, one that need not.
func (t *tree) tokens(rng *rand.Rand, out []string) []string {
	if t.l == nil {
		return append(out, t.name)
	}
	word := "OR"
	if t.and {
		word = "AND"
	}
	var op []byte
	for _, c := range []byte(word) {
		if rng.IntN(2) == 0 {
			c += 'a' - 'A'
		}
		op = append(op, c)
	}
	child := func(c *tree, out []string) []string {
		if c.prec() < t.prec() || rng.IntN(6) == 0 {
			return append(c.tokens(rng, append(out, "(")), ")")
		}
		return c.tokens(rng, out)
	}
	out = child(t.l, out)
	out = append(out, string(op))
	return child(t.r, out)
}

func render(rng *rand.Rand, toks []string) string {
	spaces := []string{" ", "  ", "\t", "\n", "\r\n"}
	var b strings.Builder
	for i, tok := range toks {
		if i > 0 {
			word := func(s string) bool { return s != "(" && s != ")" }
			if word(toks[i-1]) && word(tok) || rng.IntN(2) == 0 {
				b.WriteString(spaces[rng.IntN(len(spaces))])
			}
		}
		b.WriteString(tok)
	}
	return b.String()
}

// minAdditions is, by brute force, the size of the smallest set of names
// whose addition to held satisfies t.
func minAdditions(t *tree, held map[string]bool) int {
	var absent []string
	for _, n := range alphabet {
		if !held[n] {
			absent = append(absent, n)
		}
	}
	best := len(absent) + 1
	for mask := 0; mask < 1<<len(absent); mask++ {
		h := clone(held)
		size := 0
		for i, n := range absent {
			if mask&(1<<i) != 0 {
				h[n] = true
				size++
			}
		}
		if size < best && t.eval(h) {
			best = size
		}
	}
	return best
}

func clone(m map[string]bool) map[string]bool {
	out := make(map[string]bool, len(m)+len(alphabet))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func TestParseEvalMissingAgreeWithBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(18, 2026))
	cases := 2000
	if testing.Short() {
		cases = 500
	}
	readOnce := 0
	for range cases {
		tr := genTree(rng, 1+rng.IntN(6))
		query := render(rng, tr.tokens(rng, nil))
		q, err := Parse(query)
		if err != nil {
			t.Fatalf("Parse(%q): %v", query, err)
		}

		canon := q.String()
		r, err := Parse(canon)
		if err != nil || !r.Equal(q) || r.String() != canon {
			t.Fatalf("Parse(%q).String() = %q, which parses to %v, %v; want an equal query", query, canon, r, err)
		}

		leaves := tr.leaves(nil)
		distinct := slices.Compact(slices.Sorted(slices.Values(leaves)))
		once := len(distinct) == len(leaves)
		if once {
			readOnce++
		}
		if names := slices.Sorted(slices.Values(q.Names())); !slices.Equal(names, distinct) {
			t.Fatalf("%q: Names = %q, want %q", query, q.Names(), distinct)
		}

		for mask := 0; mask < 1<<len(alphabet); mask++ {
			held := map[string]bool{}
			for i, n := range alphabet {
				if mask&(1<<i) != 0 {
					held[n] = true
				}
			}
			has := func(n string) bool { return held[n] }
			want := tr.eval(held)
			if got := q.Eval(has); got != want {
				t.Fatalf("%q holding %v: Eval = %v, the reference says %v", query, held, got, want)
			}
			missing := q.Missing(has)
			if (len(missing) == 0) != want {
				t.Fatalf("%q holding %v: Missing = %q while Eval is %v", query, held, missing, want)
			}
			with := clone(held)
			for i, m := range missing {
				if held[m] || slices.Contains(missing[:i], m) || !slices.Contains(distinct, m) {
					t.Fatalf("%q holding %v: Missing = %q names %q held, twice or not in the query", query, held, missing, m)
				}
				with[m] = true
			}
			if !tr.eval(with) || !q.Eval(func(n string) bool { return with[n] }) {
				t.Fatalf("%q holding %v: adding Missing = %q does not satisfy it", query, held, missing)
			}
			if min := minAdditions(tr, held); len(missing) < min || once && len(missing) != min {
				t.Fatalf("%q holding %v: Missing = %q, the fewest additions are %d (read-once: %v)", query, held, missing, min, once)
			}
			if !slices.Equal(missing, q.Missing(has)) {
				t.Fatalf("%q holding %v: Missing is not deterministic", query, held)
			}
		}
	}
	t.Logf("%d random queries, %d of them read-once, each against all %d held sets", cases, readOnce, 1<<len(alphabet))
	if readOnce < cases/10 {
		t.Errorf("only %d of %d queries were read-once: the minimality check barely ran", readOnce, cases)
	}
}

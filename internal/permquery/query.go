package permquery

import (
	"slices"
	"strings"
)

// Limits on a query, checked by Parse; doc.go says where they come from.
const (
	MaxQueryBytes       = 2048 // bytes in all, whitespace included
	MaxSignificantBytes = 1000 // bytes that are not whitespace
	MaxTerms            = 100  // permission names, counting repeats
	MaxNameBytes        = 128  // bytes of one permission name
	MaxDepth            = 16   // nesting of parentheses
)

type op uint8

const (
	opName op = iota
	opAnd
	opOr
)

// node is one node of a parsed query: a name, or an AND or OR of two or
// more operands, none of them of the node's own operator (Parse flattens).
type node struct {
	op   op
	name string
	kids []*node
}

// Query is a parsed permission query. Its zero value is no query at all:
// it holds for nobody (Eval is false), it misses nothing and prints as "".
// A Query is immutable and safe for concurrent use.
type Query struct {
	root *node
}

// IsZero reports whether q is the zero Query, not the result of a Parse.
func (q Query) IsZero() bool { return q.root == nil }

// Eval reports whether a credential holding the permissions for which
// held is true satisfies q. The zero Query is satisfied by nobody.
func (q Query) Eval(held func(name string) bool) bool {
	if q.root == nil {
		return false
	}
	return q.root.eval(held)
}

func (n *node) eval(held func(string) bool) bool {
	switch n.op {
	case opName:
		return held(n.name)
	case opAnd:
		for _, k := range n.kids {
			if !k.eval(held) {
				return false
			}
		}
		return true
	default:
		for _, k := range n.kids {
			if k.eval(held) {
				return true
			}
		}
		return false
	}
}

// Missing names permissions that, added to those held, make Eval true:
// none when it already is. For AND it is the missing names of every
// operand; for OR those of the operand that needs the fewest, the first
// on a tie. Each name appears once, in the order of its first appearance
// in the query. See the package documentation on minimality.
func (q Query) Missing(held func(name string) bool) []string {
	if q.root == nil {
		return nil
	}
	return q.root.missing(held)
}

func (n *node) missing(held func(string) bool) []string {
	switch n.op {
	case opName:
		if held(n.name) {
			return nil
		}
		return []string{n.name}
	case opAnd:
		var out []string
		for _, k := range n.kids {
			for _, m := range k.missing(held) {
				if !slices.Contains(out, m) {
					out = append(out, m)
				}
			}
		}
		return out
	default:
		var best []string
		for i, k := range n.kids {
			m := k.missing(held)
			if len(m) == 0 {
				return nil
			}
			if i == 0 || len(m) < len(best) {
				best = m
			}
		}
		return best
	}
}

// Names lists the distinct permission names q mentions, in the order of
// their first appearance: the ones a verifier needs to know about.
func (q Query) Names() []string {
	var out []string
	var walk func(*node)
	walk = func(n *node) {
		if n.op == opName {
			if !slices.Contains(out, n.name) {
				out = append(out, n.name)
			}
			return
		}
		for _, k := range n.kids {
			walk(k)
		}
	}
	if q.root != nil {
		walk(q.root)
	}
	return out
}

// Equal reports whether q and r are the same query: the same tree, names
// and operands in the same order (as their String forms are equal).
func (q Query) Equal(r Query) bool {
	if q.root == nil || r.root == nil {
		return q.root == r.root
	}
	return q.root.equal(r.root)
}

func (n *node) equal(m *node) bool {
	if n.op != m.op || n.name != m.name || len(n.kids) != len(m.kids) {
		return false
	}
	for i := range n.kids {
		if !n.kids[i].equal(m.kids[i]) {
			return false
		}
	}
	return true
}

// String is q's canonical form, which Parse reads back to an equal Query:
// "AND" and "OR" in upper case with one space either side, parentheses
// only around an OR that is an operand of AND.
func (q Query) String() string {
	if q.root == nil {
		return ""
	}
	var b strings.Builder
	q.root.write(&b)
	return b.String()
}

func (n *node) write(b *strings.Builder) {
	if n.op == opName {
		b.WriteString(n.name)
		return
	}
	sep := " OR "
	if n.op == opAnd {
		sep = " AND "
	}
	for i, k := range n.kids {
		if i > 0 {
			b.WriteString(sep)
		}
		paren := n.op == opAnd && k.op == opOr
		if paren {
			b.WriteByte('(')
		}
		k.write(b)
		if paren {
			b.WriteByte(')')
		}
	}
}

// Holding is the held function of a credential holding exactly names.
func Holding(names ...string) func(string) bool {
	set := make(map[string]struct{}, len(names))
	for _, n := range names {
		set[n] = struct{}{}
	}
	return func(name string) bool {
		_, ok := set[name]
		return ok
	}
}

package permquery

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Parse reads a permission query (grammar in the package documentation).
// Every refusal is a *SyntaxError saying what is wrong and where.
//
// Work and memory are linear in the query, which is at most MaxQueryBytes
// long; the parser recurses at most MaxDepth levels of parentheses deep.
func Parse(query string) (Query, error) {
	if len(query) > MaxQueryBytes {
		return Query{}, errorf(CodeTooLong, MaxQueryBytes, "query is %d bytes, longer than the limit of %d", len(query), MaxQueryBytes)
	}
	significant := 0
	for i := 0; i < len(query); i++ {
		if isSpace(query[i]) {
			continue
		}
		if significant++; significant > MaxSignificantBytes {
			return Query{}, errorf(CodeTooLong, i, "query has more than %d bytes besides whitespace", MaxSignificantBytes)
		}
	}
	if significant == 0 {
		return Query{}, errorf(CodeEmpty, 0, "query is empty: it must name at least one permission")
	}
	p := parser{lex: lexer{in: query}}
	if err := p.advance(); err != nil {
		return Query{}, err
	}
	root, err := p.or(0, "")
	if err != nil {
		return Query{}, err
	}
	switch p.tok.kind {
	case tEOF:
		return Query{root: root}, nil
	case tRParen:
		return Query{}, errorf(CodeUnbalanced, p.tok.pos, "unmatched ')'")
	default:
		return Query{}, errorf(CodeExpectedOperator, p.tok.pos, "expected AND, OR or the end of the query, found %s", p.tok)
	}
}

type tokKind uint8

const (
	tEOF tokKind = iota
	tName
	tAnd
	tOr
	tLParen
	tRParen
)

type token struct {
	kind tokKind
	pos  int
	text string
}

func (t token) String() string {
	switch t.kind {
	case tEOF:
		return "the end of the query"
	case tName:
		return fmt.Sprintf("permission %q", t.text)
	case tAnd, tOr:
		return fmt.Sprintf("operator %q", t.text)
	default:
		return fmt.Sprintf("'%s'", t.text)
	}
}

type lexer struct {
	in  string
	pos int
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func isNameChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '.' || c == '_' || c == '-' || c == ':' || c == '*' || c == '/'
}

func (l *lexer) next() (token, *SyntaxError) {
	for l.pos < len(l.in) && isSpace(l.in[l.pos]) {
		l.pos++
	}
	start := l.pos
	if start == len(l.in) {
		return token{kind: tEOF, pos: start}, nil
	}
	switch c := l.in[start]; {
	case c == '(':
		l.pos++
		return token{kind: tLParen, pos: start, text: "("}, nil
	case c == ')':
		l.pos++
		return token{kind: tRParen, pos: start, text: ")"}, nil
	case isNameChar(c):
		for l.pos < len(l.in) && isNameChar(l.in[l.pos]) {
			l.pos++
		}
		text := l.in[start:l.pos]
		switch {
		case strings.EqualFold(text, "AND"):
			return token{kind: tAnd, pos: start, text: text}, nil
		case strings.EqualFold(text, "OR"):
			return token{kind: tOr, pos: start, text: text}, nil
		case len(text) > MaxNameBytes:
			return token{}, errorf(CodeNameTooLong, start, "permission name is %d bytes, longer than the limit of %d", len(text), MaxNameBytes)
		}
		return token{kind: tName, pos: start, text: text}, nil
	default:
		const allowed = "permission names hold only ASCII letters, digits and . _ - : * /"
		r, size := utf8.DecodeRuneInString(l.in[start:])
		if r == utf8.RuneError && size <= 1 {
			return token{}, errorf(CodeBadCharacter, start, "byte 0x%02X is not valid UTF-8; %s", c, allowed)
		}
		return token{}, errorf(CodeBadCharacter, start, "character %q is not allowed; %s", r, allowed)
	}
}

type parser struct {
	lex   lexer
	tok   token // the current token, not yet consumed
	terms int
}

func (p *parser) advance() error {
	t, err := p.lex.next()
	if err != nil {
		return err
	}
	p.tok = t
	return nil
}

// or parses or = and *( OR and ) at the given depth of parentheses;
// after is the token before it ("" at the start, "(" or an operator), for
// messages.
func (p *parser) or(depth int, after string) (*node, error) {
	first, err := p.and(depth, after)
	if err != nil || p.tok.kind != tOr {
		return first, err
	}
	n := &node{op: opOr}
	n.add(first)
	for p.tok.kind == tOr {
		after := p.tok.text
		if err := p.advance(); err != nil {
			return nil, err
		}
		k, err := p.and(depth, after)
		if err != nil {
			return nil, err
		}
		n.add(k)
	}
	return n, nil
}

func (p *parser) and(depth int, after string) (*node, error) {
	first, err := p.primary(depth, after)
	if err != nil || p.tok.kind != tAnd {
		return first, err
	}
	n := &node{op: opAnd}
	n.add(first)
	for p.tok.kind == tAnd {
		after := p.tok.text
		if err := p.advance(); err != nil {
			return nil, err
		}
		k, err := p.primary(depth, after)
		if err != nil {
			return nil, err
		}
		n.add(k)
	}
	return n, nil
}

// add appends k as an operand of n, flattening an operand of n's own
// operator: (a AND b) AND c is a AND b AND c.
func (n *node) add(k *node) {
	if k.op == n.op {
		n.kids = append(n.kids, k.kids...)
		return
	}
	n.kids = append(n.kids, k)
}

func (p *parser) primary(depth int, after string) (*node, error) {
	t := p.tok
	switch t.kind {
	case tName:
		if p.terms++; p.terms > MaxTerms {
			return nil, errorf(CodeTooManyTerms, t.pos, "query names more than %d permissions", MaxTerms)
		}
		if err := p.advance(); err != nil {
			return nil, err
		}
		return &node{op: opName, name: t.text}, nil
	case tLParen:
		if depth >= MaxDepth {
			return nil, errorf(CodeTooDeep, t.pos, "parentheses nest deeper than %d", MaxDepth)
		}
		if err := p.advance(); err != nil {
			return nil, err
		}
		switch p.tok.kind {
		case tRParen:
			return nil, errorf(CodeEmptyParens, t.pos, "empty parentheses: they must hold a permission or an expression")
		case tEOF:
			return nil, errorf(CodeUnbalanced, p.tok.pos, "missing ')' to close the '(' at position %d", t.pos)
		}
		n, err := p.or(depth+1, "(")
		if err != nil {
			return nil, err
		}
		switch p.tok.kind {
		case tRParen:
		case tEOF:
			return nil, errorf(CodeUnbalanced, p.tok.pos, "missing ')' to close the '(' at position %d", t.pos)
		default:
			return nil, errorf(CodeExpectedOperator, p.tok.pos, "expected AND, OR or ')', found %s", p.tok)
		}
		if err := p.advance(); err != nil {
			return nil, err
		}
		return n, nil
	case tRParen:
		if after == "" {
			return nil, errorf(CodeUnbalanced, t.pos, "unmatched ')'")
		}
	}
	// An operator, a ')' or the end where an operand belongs.
	if after == "" {
		return nil, errorf(CodeExpectedOperand, t.pos, "expected a permission or '(', found %s: a query cannot start with an operator", t)
	}
	return nil, errorf(CodeExpectedOperand, t.pos, "expected a permission or '(' after %q, found %s", after, t)
}

package permquery

import "fmt"

// Code classifies a [SyntaxError].
type Code string

// The codes of a [SyntaxError].
const (
	CodeEmpty            Code = "empty"             // no permission at all
	CodeTooLong          Code = "too_long"          // over MaxQueryBytes or MaxSignificantBytes
	CodeTooManyTerms     Code = "too_many_terms"    // over MaxTerms names
	CodeTooDeep          Code = "too_deep"          // parentheses nested over MaxDepth
	CodeNameTooLong      Code = "name_too_long"     // a name over MaxNameBytes
	CodeBadCharacter     Code = "bad_character"     // a character no token may hold
	CodeExpectedOperand  Code = "expected_operand"  // a dangling operator, or an operator first
	CodeExpectedOperator Code = "expected_operator" // two operands with no operator between
	CodeUnbalanced       Code = "unbalanced"        // a '(' never closed or a ')' never opened
	CodeEmptyParens      Code = "empty_parens"      // "()"
)

// SyntaxError is why Parse refused a query: what (Code and Msg) and where
// (Pos, the 0-based byte offset in the query at which the problem was
// found; len(query) when it is the end of the query).
type SyntaxError struct {
	Code Code
	Pos  int
	Msg  string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("permission query: %s (at position %d)", e.Msg, e.Pos)
}

func errorf(code Code, pos int, format string, args ...any) *SyntaxError {
	return &SyntaxError{Code: code, Pos: pos, Msg: fmt.Sprintf(format, args...)}
}

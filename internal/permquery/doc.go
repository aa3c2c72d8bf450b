// Package permquery is the language of a verify's required_permissions: a
// boolean query over permission names, such as
//
//	dns.read AND (dns.write OR admin)
//
// that a credential's held permissions (direct or through its roles) must
// satisfy, and the names to report with insufficient_permissions when they
// do not. It is pure (standard library only, no I/O) and knows nothing of
// where permissions are stored.
//
// The package is not called permission because credential.Permission (internal/credential)
// already names an admin key's rights ("machines:read"); this one holds
// the free-form permissions users put on the credentials keyward issues.
//
// # Grammar
//
// The grammar is Unkey's, from the verifyKey v2 "permissions" field, read
// in github.com/unkeyed/unkey at commit fc99b6b9 (2026-08-21): the lexer
// and the recursive-descent parser in pkg/rbac/lexer.go and
// pkg/rbac/parser.go, their documentation in pkg/rbac/doc.go and
// pkg/rbac/rbac.go (ParseQuery), the request schema
// svc/api/openapi/spec/paths/v2/keys/verifyKey/V2KeysVerifyKeyRequestBody.yaml
// and docs/product/errors/user/bad_request/permissions_query_syntax_error.mdx:
//
//	query   = or
//	or      = and *( OR and )
//	and     = primary *( AND primary )
//	primary = name / "(" or ")"
//	name    = 1*( ALPHA / DIGIT / "." / "_" / "-" / ":" / "*" / "/" )
//	AND     = "AND", in any case ("and", "And", …)
//	OR      = "OR", in any case
//
// In words:
//
//   - A name is a maximal run of name characters; one that equals AND or
//     OR in any case is the operator, so "and" cannot be a permission but
//     "ANDROID" and "or.read" are. Names are compared exactly (case
//     sensitive). "*" is a literal character, not a wildcard: "dns.*"
//     is held only by a credential holding the permission "dns.*".
//   - AND binds tighter than OR: "a OR b AND c" is "a OR (b AND c)".
//     Parentheses group; empty parentheses are an error.
//   - Space, tab, CR and LF separate tokens and are otherwise ignored. An
//     operator must be separated from a neighbouring name by whitespace or
//     a parenthesis ("a ANDb" is the two names "a" and "ANDb").
//   - The name characters are the lexer's (isValidPermissionChar, the
//     regular expression [a-zA-Z0-9_:\-\.\*\/]+); Unkey's error page lists
//     only letters, digits, '.', '_' and '-', but its parser and tests
//     ("system:admin.* AND api_v2-test:*", "/api/v1/xxx") accept the rest.
//   - Positions in errors are 0-based byte offsets, as Unkey's are.
//
// Where this package departs from Unkey, and why:
//
//   - Letters and digits are ASCII only. Unkey tests each byte with
//     unicode.IsLetter(rune(b)), which accepts some bytes of a UTF-8
//     sequence (0xC3 reads as 'Ã') and refuses others, so non-ASCII names
//     half-work there; its permission slugs are ASCII
//     (^[a-zA-Z0-9_:\-\.\*]+$, createPermission) anyway. Here any
//     non-ASCII character is a bad_character error naming that character.
//   - Limits (Unkey enforces only the 1000-character request field):
//     at most [MaxSignificantBytes] (1000, Unkey's maxLength) bytes that
//     are not whitespace, at most [MaxQueryBytes] (2048) bytes in all, at
//     most [MaxTerms] (100, the limit Unkey documents but does not check)
//     permission names, each at most [MaxNameBytes] (128, Unkey's
//     permission slug column) bytes, and parentheses nested at most
//     [MaxDepth] (16, Unkey has none) deep. The length limit ignores
//     whitespace so that the canonical form, which may add spaces around
//     operators ("(a)or(b)" is "a OR b"), always parses again; every
//     query Unkey accepts within its 1000 characters and these limits is
//     accepted here.
//
// # Evaluation and missing permissions
//
// [Query.Eval] answers whether a set of held permissions satisfies the
// query. [Query.Missing] names permissions that, added to the held ones,
// would satisfy it: for AND, the missing names of every operand; for OR,
// those of the operand that needs the fewest additions, the first such
// operand on a tie. Names are listed once each, in the order they first
// appear in the query. The answer is empty exactly when Eval is true, and
// it is the smallest possible one when no name occurs twice in the query;
// when names repeat ("(a AND b) OR (a AND c)" holding nothing), it is a
// deterministic sufficient set, not always a minimum one (that is a
// hitting-set problem, not worth solving at verify time).
//
// Unkey, by contrast, answers with a message naming the first missing
// operand of an AND and every operand of an OR.
//
// [Query.String] is the canonical form: operators in upper case, one space
// around each, parentheses only where an OR is an operand of AND, nested
// operators of the same kind flattened ("(a AND b) AND c" is
// "a AND b AND c"). Parse(q.String()) is equal to q.
package permquery

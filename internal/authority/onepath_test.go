package authority_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// systemWrites are the functions that open a write transaction without a
// caller's use case: housekeeping the authority does on its own behalf.
// Each says why it is not a use case.
var systemWrites = map[string]string{
	"Bootstrap":                   "tenancy: the operator's first instance, before any caller exists",
	"CreateInstance":              "tenancy: the operator's shell command, before any caller exists",
	"fillSearchDigest":            "a credential's first use fills its missing search digest",
	"FlushUsage":                  "last-used times, coalesced off the verify path",
	"FlushRefusals":               "refusals are recorded in their own transaction: the use case never ran",
	"RunJanitor":                  "the janitor's retention",
	"FlushVerificationCounts":     "verification counts, aggregated off the verify path",
	"deleteOldVerificationCounts": "the janitor's retention of verification counts",
	"pruneChain":                  "the janitor's retention and its signed checkpoint",
	"createFirstSigningKey":       "a signing key made on first need",
	"RotateMasterKey":             "the operator's rotate-master-key command re-seals under a new key",
	"ImportForeignKeys":           "the operator's import-keys command",
	"verifyForeign":               "an imported key is re-keyed on its first verify",
	"RedeemTicket":                "the sign-in ticket is its own authorization: its holder has no Caller",
	"DeliverWebhooks":             "the webhook dispatcher's claims and outcomes",
	"PruneWebhookLog":             "the webhook delivery log's retention",
	"ScanNotices":                 "the notice scanner prunes the notices whose occasion has passed",
	"sendNotices":                 "notices keyward sends on its own (expiring, unused, usage): no caller asked",
	"reportChainBreak":            "audit.chain_broken, sent by keyward on finding a broken chain: no caller asked, and an audit event would extend the broken chain",
}

// TestEveryWriteGoesThroughMutate keeps authorization, one instant, the
// audit event and invalidation on one path: outside mutation.go, only the
// listed housekeeping functions open a write transaction themselves.
func TestEveryWriteGoesThroughMutate(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") || path == "mutation.go" {
			continue
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				sel, ok := n.(*ast.SelectorExpr)
				if !ok || sel.Sel.Name != "Update" {
					return true
				}
				if inner, ok := sel.X.(*ast.SelectorExpr); ok && inner.Sel.Name == "store" {
					seen[fn.Name.Name] = true
					if _, allowed := systemWrites[fn.Name.Name]; !allowed {
						t.Errorf("%s: %s opens a write transaction itself; a use case writes through mutate", fset.Position(sel.Pos()), fn.Name.Name)
					}
				}
				return true
			})
		}
	}
	for name := range systemWrites {
		if !seen[name] {
			t.Errorf("systemWrites names %s, which opens no write transaction: remove it", name)
		}
	}
}

package credential_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"testing"

	"github.com/keyward/keyward/internal/credential"
)

// TestCodesListsEveryCode keeps Codes complete: every constant of type
// Code declared in the package is in the list, once, so a new code cannot
// escape the surfaces' table tests.
func TestCodesListsEveryCode(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "error.go", nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	var declared []string
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			v := spec.(*ast.ValueSpec)
			if typ, ok := v.Type.(*ast.Ident); ok && typ.Name == "Code" {
				for _, name := range v.Names {
					declared = append(declared, name.Name)
				}
			}
		}
	}
	if len(declared) == 0 {
		t.Fatal("found no Code constants in error.go")
	}
	codes := credential.Codes()
	if len(codes) != len(declared) {
		t.Errorf("Codes() has %d codes, error.go declares %d: %v", len(codes), len(declared), declared)
	}
	for i, c := range codes {
		if slices.Contains(codes[:i], c) {
			t.Errorf("Codes() lists %q twice", c)
		}
	}
}

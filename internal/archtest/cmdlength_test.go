package archtest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// maxCommandFunc bounds a function in cmd/: a command is built from the
// SDK and the leaf helper, and one that grows past this has started doing
// work that belongs in a package.
const maxCommandFunc = 60

func TestNoFunctionInCmdIsLongerThan60Lines(t *testing.T) {
	root := filepath.Join("..", "..", "cmd")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			if n := fset.Position(fn.End()).Line - fset.Position(fn.Pos()).Line + 1; n > maxCommandFunc {
				t.Errorf("%s: %s is %d lines; split it (at most %d)", fset.Position(fn.Pos()), fn.Name.Name, n, maxCommandFunc)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

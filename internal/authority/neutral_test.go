package authority_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// vendorName matches a vendor surface's name. Comments may say which
// vendor a rule comes from; code (identifiers and string literals) may not.
var vendorName = regexp.MustCompile(`Clerk|Mist|Spatio|Freezer|clerk|spatio|freezer|\bmist`)

// TestCoreCodeNamesNoVendor keeps the core neutral: every vendor's JSON,
// wording and quirks live in its package under internal/httpapi, so no
// identifier or string in the authority or the domain names a vendor, and
// the authority imports no surface.
func TestCoreCodeNamesNoVendor(t *testing.T) {
	for _, dir := range []string{".", "../credential"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		if len(files) == 0 {
			t.Fatalf("no Go files in %s", dir)
		}
		for _, path := range files {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution) // comments are not kept
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range f.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				if strings.Contains(p, "/internal/httpapi") || vendorName.MatchString(p) {
					t.Errorf("%s imports %s: the core must not depend on a surface", path, p)
				}
			}
			ast.Inspect(f, func(n ast.Node) bool {
				var text string
				switch x := n.(type) {
				case *ast.Ident:
					text = x.Name
				case *ast.BasicLit:
					if x.Kind == token.STRING {
						text = x.Value
					}
				}
				if text != "" && vendorName.MatchString(text) {
					t.Errorf("%s: %s names a vendor; move it to the vendor's package (or into a comment)", fset.Position(n.Pos()), text)
				}
				return true
			})
		}
	}
}

package archtest

import (
	"bufio"
	"bytes"
	"maps"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/keyward/keyward"

// The groups of packages the arrows are drawn between, by import path
// below the module.
var (
	// adapters implement the authority's ports (or observe it) and are
	// wired together by cmd alone. internal/logging is not one: it
	// implements no port, and the HTTP middleware writes its access log
	// lines (logging.Request) as any code may use slog.
	adapters = []string{
		"internal/sqlstore", "internal/inmem", "internal/redisbus", "internal/pgbus",
		"internal/auditlog", "internal/metrics", "internal/webhooksend",
	}
	// vendors are the vendor surfaces, one package each.
	vendors = []string{
		"internal/httpapi/clerk", "internal/httpapi/mist",
		"internal/httpapi/spatio", "internal/httpapi/freezer",
	}
	// testSupport is code for tests only: it may open real adapters.
	testSupport = []string{"internal/testkit", "internal/httpapi/apitest"}
)

// rules are the arrows, checked on every package's non-test imports
// (tests may reach across, to test a real pair).
var rules = []struct {
	name  string
	from  func(pkg string) bool
	allow func(pkg, imp string) bool // imp is a module package
}{
	{
		"credential is the pure domain vocabulary: it imports nothing of the module",
		under("internal/credential"),
		func(_, _ string) bool { return false },
	},
	{
		"client, the public SDK, imports nothing internal",
		under("client"),
		func(_, imp string) bool { return under("client")(imp) },
	},
	{
		"the authority imports only the domain and its own libraries, no adapter and no surface",
		under("internal/authority"),
		func(_, imp string) bool {
			return under("internal/authority", "internal/credential", "internal/keyring", "internal/signing", "internal/permquery")(imp)
		},
	},
	{
		"an adapter imports no other adapter, no surface and no test kit",
		under(adapters...),
		func(pkg, imp string) bool {
			return under(pkg)(imp) || !under(adapters...)(imp) && !under("internal/httpapi", "cmd")(imp) && !under(testSupport...)(imp)
		},
	},
	{
		"a vendor surface imports no other vendor, not the router and no adapter",
		under(vendors...),
		func(pkg, imp string) bool {
			return under(pkg, "internal/httpapi/wire", "internal/authority", "internal/credential", "internal/signing")(imp)
		},
	},
	{
		"the HTTP surfaces import no adapter: cmd hands them the authority",
		func(pkg string) bool { return under("internal/httpapi")(pkg) && !under(testSupport...)(pkg) },
		func(_, imp string) bool { return !under(adapters...)(imp) && !under("cmd")(imp) },
	},
	{
		"only cmd and the test kits import adapters",
		func(pkg string) bool {
			return !under("cmd")(pkg) && !under(testSupport...)(pkg) && !under(adapters...)(pkg)
		},
		func(_, imp string) bool { return !under(adapters...)(imp) },
	},
}

// stdRules are standard-library imports a layer must not have.
var stdRules = []struct {
	name   string
	from   func(pkg string) bool
	denied []string
}{
	{"the authority speaks no HTTP and no SQL", under("internal/authority"), []string{"net/http", "database/sql"}},
	{"the domain speaks no HTTP and no SQL", under("internal/credential"), []string{"net/http", "database/sql"}},
}

func TestImportsPointInward(t *testing.T) {
	pkgs := modulePackages(t)
	if len(pkgs) < 10 {
		t.Fatalf("go list found %d packages; the module has more", len(pkgs))
	}
	for _, v := range violations(pkgs) {
		t.Error(v)
	}
}

// TestEveryRuleCatchesAWrongArrow feeds the rules an import graph with one
// wrong arrow at a time, so a rule loosened by mistake is noticed.
func TestEveryRuleCatchesAWrongArrow(t *testing.T) {
	for _, tc := range []struct{ from, imp string }{
		{"internal/credential", module + "/internal/authority"},
		{"client", module + "/internal/credential"},
		{"internal/authority", module + "/internal/sqlstore"},
		{"internal/authority", module + "/internal/httpapi/clerk"},
		{"internal/authority", module + "/internal/httpapi/wire"},
		{"internal/authority", "net/http"},
		{"internal/authority", "database/sql"},
		{"internal/credential", "net/http"},
		{"internal/redisbus", module + "/internal/inmem"},
		{"internal/sqlstore", module + "/internal/httpapi"},
		{"internal/pgbus", module + "/internal/testkit"},
		{"internal/httpapi/clerk", module + "/internal/httpapi/mist"},
		{"internal/httpapi/freezer", module + "/internal/httpapi"},
		{"internal/httpapi/spatio", module + "/internal/sqlstore"},
		{"internal/httpapi", module + "/internal/inmem"},
		{"internal/keyring", module + "/internal/sqlstore"},
	} {
		got := violations(map[string][]string{tc.from: {tc.imp}})
		if len(got) == 0 {
			t.Errorf("%s importing %s passes the rules; it must not", tc.from, tc.imp)
		}
	}
	if got := violations(map[string][]string{"cmd/keyward": {module + "/internal/sqlstore", module + "/internal/httpapi"}}); len(got) != 0 {
		t.Errorf("cmd wiring adapters and surfaces is refused: %v", got)
	}
}

// violations returns one line per import of pkgs (relative path → import
// paths) that breaks a rule.
func violations(pkgs map[string][]string) []string {
	var out []string
	for _, pkg := range slices.Sorted(maps.Keys(pkgs)) {
		for _, imp := range pkgs[pkg] {
			rel, ok := strings.CutPrefix(imp, module+"/")
			if !ok {
				for _, r := range stdRules {
					if r.from(pkg) && slices.Contains(r.denied, imp) {
						out = append(out, pkg+" imports "+imp+": "+r.name)
					}
				}
				continue
			}
			for _, r := range rules {
				if r.from(pkg) && !r.allow(pkg, rel) {
					out = append(out, pkg+" imports "+rel+": "+r.name)
				}
			}
		}
	}
	return out
}

// TestTheGroupsExist keeps the rules honest: a renamed package would
// otherwise drop out of them silently.
func TestTheGroupsExist(t *testing.T) {
	pkgs := modulePackages(t)
	groups := slices.Concat(adapters, vendors, testSupport,
		[]string{"internal/credential", "internal/authority", "internal/httpapi", "internal/httpapi/wire", "client"})
	for _, g := range groups {
		if _, ok := pkgs[g]; !ok {
			t.Errorf("%s is named by the arrows but is not a package of the module", g)
		}
	}
}

// modulePackages returns every package of the module (relative import
// path) with its non-test imports, from go list.
func modulePackages(t *testing.T) map[string][]string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "./...")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	pkgs := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		rel, ok := strings.CutPrefix(fields[0], module+"/")
		if !ok {
			t.Fatalf("go list named %s, outside module %s", fields[0], module)
		}
		pkgs[rel] = fields[1:]
	}
	return pkgs
}

// under returns a test of whether a relative import path is one of roots
// or inside one.
func under(roots ...string) func(string) bool {
	return func(pkg string) bool {
		for _, r := range roots {
			if pkg == r || strings.HasPrefix(pkg, r+"/") {
				return true
			}
		}
		return false
	}
}

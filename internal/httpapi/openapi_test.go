package httpapi_test

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/keyward/keyward/internal/httpapi"
	"github.com/keyward/keyward/internal/httpapi/apitest"
	"github.com/keyward/keyward/internal/testkit"
)

// openapiRoute serves the document itself; the document must describe it
// whether or not Routes() lists it yet.
const openapiRoute = "GET /openapi.json"

func loadOpenAPI(t *testing.T) (*openapi3.T, []byte) {
	t.Helper()
	raw, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := openapi3.NewLoader().LoadFromData(raw)
	if err != nil {
		t.Fatalf("openapi.json does not load: %v", err)
	}
	return doc, raw
}

func TestOpenAPIDocumentValidates(t *testing.T) {
	doc, _ := loadOpenAPI(t)
	if err := doc.Validate(t.Context()); err != nil {
		t.Fatalf("openapi.json is not a valid OpenAPI document: %v", err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi = %q, want 3.1.0", doc.OpenAPI)
	}
	for _, name := range []string{"bearer", "mistToken"} {
		if doc.Components.SecuritySchemes[name] == nil {
			t.Errorf("security scheme %s is missing", name)
		}
	}
}

// surfaceTag is the tag an operation on path must carry.
func surfaceTag(path string) string {
	for prefix, tag := range map[string]string{"/clerk/": "clerk", "/mist/": "mist", "/spatio/v1/": "spatio", "/freezer/": "freezer"} {
		if strings.HasPrefix(path, prefix) {
			return tag
		}
	}
	return "native"
}

// responseKey is what OpenAPI allows as a key of an operation's responses.
var responseKey = regexp.MustCompile(`^([1-5]([0-9]{2}|XX)|default)$`)

var pathParam = regexp.MustCompile(`\{([^}]*)\}`)

// placeholders are the wildcard names of a path, as ServeMux reads them.
func placeholders(path string) []string {
	var names []string
	for _, m := range pathParam.FindAllStringSubmatch(path, -1) {
		if name := strings.TrimSuffix(m[1], "..."); name != "$" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

func pathParams(params ...openapi3.Parameters) []string {
	var names []string
	for _, ps := range params {
		for _, p := range ps {
			if p.Value != nil && p.Value.In == openapi3.ParameterInPath {
				names = append(names, p.Value.Name)
			}
		}
	}
	slices.Sort(names)
	return names
}

// TestOpenAPIRouteParity keeps the document and the router in step: every
// route with a method is documented, and every documented operation is
// routed, with the same path parameters.
func TestOpenAPIRouteParity(t *testing.T) {
	doc, _ := loadOpenAPI(t)

	registered := map[string]bool{openapiRoute: true}
	for _, pattern := range httpapi.Routes() {
		if method, path, ok := strings.Cut(pattern, " "); ok {
			// A trailing-slash alias (".../clients/{$}", for clients that
			// call that form) is the same operation as the path without it.
			registered[method+" "+strings.TrimSuffix(path, "/{$}")] = true
		} // a bare path is a catch-all answering 404: not an operation
	}

	documented := map[string]bool{}
	operationIDs := map[string]string{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			route := method + " " + path
			documented[route] = true
			if got, want := pathParams(item.Parameters, op.Parameters), placeholders(path); !slices.Equal(got, want) {
				t.Errorf("%s: path parameters %v, want %v", route, got, want)
			}
			if op.OperationID == "" || op.Summary == "" {
				t.Errorf("%s: operationId and summary are required", route)
			}
			if prev, dup := operationIDs[op.OperationID]; dup {
				t.Errorf("%s: operationId %q is also used by %s", route, op.OperationID, prev)
			}
			operationIDs[op.OperationID] = route
			if want := surfaceTag(path); !slices.Equal(op.Tags, []string{want}) {
				t.Errorf("%s: tags %v, want [%s]", route, op.Tags, want)
			}
			if op.Description == "" {
				t.Errorf("%s: a description is required (the lint step warns without one)", route)
			}
			if op.Responses == nil || op.Responses.Len() == 0 {
				t.Errorf("%s: no responses", route)
			}
			for code := range op.Responses.Map() {
				if !responseKey.MatchString(code) {
					t.Errorf("%s: response key %q is not 1XX-5XX or default; describe a non-standard status (Freezer's 753) in an x- extension", route, code)
				}
			}
		}
	}

	var undocumented, unrouted []string
	for route := range registered {
		if !documented[route] {
			undocumented = append(undocumented, route)
		}
	}
	for route := range documented {
		if !registered[route] {
			unrouted = append(unrouted, route)
		}
	}
	slices.Sort(undocumented)
	slices.Sort(unrouted)
	var msg strings.Builder
	if len(undocumented) > 0 {
		fmt.Fprintf(&msg, "registered (httpapi.Routes() or %q) but missing from openapi.json:\n\t%s\n", openapiRoute, strings.Join(undocumented, "\n\t"))
	}
	if len(unrouted) > 0 {
		fmt.Fprintf(&msg, "in openapi.json but not a registered route:\n\t%s\n", strings.Join(unrouted, "\n\t"))
	}
	if msg.Len() > 0 {
		t.Fatal(msg.String())
	}
	t.Logf("%d paths, %d operations documented", doc.Paths.Len(), len(documented))
}

// TestOpenAPIServed fetches the document from a running server. Until GET
// /openapi.json is routed, the test is skipped.
func TestOpenAPIServed(t *testing.T) {
	_, raw := loadOpenAPI(t)
	e := apitest.Start(t, testkit.OpenSQLite(t))
	resp := e.Do(t, "GET", "/openapi.json", "", nil)
	if resp.Status == http.StatusNotFound && !slices.Contains(httpapi.Routes(), openapiRoute) {
		t.Skip(openapiRoute + " is not routed yet")
	}
	if resp.Status != http.StatusOK {
		t.Fatalf("GET /openapi.json: %d %s", resp.Status, resp.Body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	if !bytes.Equal(resp.Body, raw) {
		t.Errorf("served document differs from openapi.json (%d bytes served, %d on disk)", len(resp.Body), len(raw))
	}
	if _, err := openapi3.NewLoader().LoadFromData(resp.Body); err != nil {
		t.Errorf("served document does not load: %v", err)
	}
}

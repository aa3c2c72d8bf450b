package mist_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/keyward/keyward/internal/httpapi/mist"
	"github.com/keyward/keyward/internal/testkit"
)

// mistSpec is Mist's own OpenAPI document for org API tokens (API 2509.1.1,
// from Mist-Automation-Programmability/mist_openapi, cut to these paths),
// read from the project's shared reference folder.
const mistSpec = "mist-org-apitokens.json"

// TestMain checks every response of the Mist surface that any test in this
// package receives against Mist's OpenAPI document: the requests go through
// http.DefaultClient (apitest's), whose transport validates each response
// of a route the document describes and turns a mismatch into a request
// error, so the test that made the call fails at that call.
func TestMain(m *testing.M) {
	path, ok, err := testkit.VendorSpec(mistSpec)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if !ok {
		fmt.Fprintf(os.Stderr, "mist: %s not found beside the repository (../shared/reference/specs); responses are not validated against it\n", mistSpec)
		os.Exit(m.Run())
	}
	check, err := newSpecCheck(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	http.DefaultClient.Transport = check
	code := m.Run()
	if testing.Verbose() {
		fmt.Printf("Mist responses validated against %s: %d, as %s\n", mistSpec, check.count, strings.Join(check.pairs(), ", "))
	}
	if code == 0 && !testing.Short() {
		if missing := check.unvalidated(); len(missing) > 0 {
			fmt.Fprintf(os.Stderr, "Mist responses never validated against %s: %v\n", mistSpec, missing)
			code = 1
		}
	}
	os.Exit(code)
}

// mustValidate is what the package's tests must have produced at least
// once: each operation's success and its documented refusals.
var mustValidate = []string{
	"listOrgApiTokens 200", "createOrgApiToken 200", "getOrgApiToken 200", "updateOrgApiToken 200", "deleteOrgApiToken 200",
	"createOrgApiToken 400", "listOrgApiTokens 401", "createOrgApiToken 403", "getOrgApiToken 404", "listOrgApiTokens 429",
}

type specCheck struct {
	router routers.Router
	next   http.RoundTripper

	mu    sync.Mutex
	seen  map[string]bool // "operationId status"
	count int
}

func newSpecCheck(path string) (*specCheck, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	// The document says 3.1 but uses 3.0's nullable: read it as the 3.0
	// document it is, or every null created_by/last_used would fail.
	raw = bytes.Replace(raw, []byte(`"openapi": "3.1.0"`), []byte(`"openapi": "3.0.3"`), 1)
	doc, err := openapi3.NewLoader().LoadFromData(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	// Mist's own PUT example sends a readOnly org_id; examples are not what
	// is checked here.
	router, err := legacy.NewRouter(doc, openapi3.DisableExamplesValidation())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &specCheck{router: router, next: http.DefaultTransport, seen: map[string]bool{}}, nil
}

func (c *specCheck) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(req)
	if err != nil || !strings.HasPrefix(req.URL.Path, mist.Prefix+"/") {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))

	// Mist's document has the paths keyward serves under /mist.
	asMist := req.Clone(req.Context())
	asMist.URL.Path = strings.TrimPrefix(req.URL.Path, mist.Prefix)
	asMist.URL.RawPath = ""
	route, params, err := c.router.FindRoute(asMist)
	if err != nil {
		return resp, nil // not a route Mist's document describes (the surface's 404 catch-all)
	}
	input := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: asMist, PathParams: params, Route: route},
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	input.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), input); err != nil {
		return nil, fmt.Errorf("the response does not match Mist's OpenAPI document (%s %d): %v\nbody: %s",
			route.Operation.OperationID, resp.StatusCode, err, body)
	}
	c.mu.Lock()
	c.seen[fmt.Sprintf("%s %d", route.Operation.OperationID, resp.StatusCode)] = true
	c.count++
	c.mu.Unlock()
	return resp, nil
}

func (c *specCheck) pairs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for pair := range c.seen {
		out = append(out, pair)
	}
	slices.Sort(out)
	return out
}

func (c *specCheck) unvalidated() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var missing []string
	for _, want := range mustValidate {
		if !c.seen[want] {
			missing = append(missing, want)
		}
	}
	slices.Sort(missing)
	return missing
}

// TestSpecCheckRefusesWhatMistWouldNotSend keeps the check honest: a
// response that breaks the document is refused.
func TestSpecCheckRefusesWhatMistWouldNotSend(t *testing.T) {
	path, ok, err := testkit.VendorSpec(mistSpec)
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		t.Skip(mistSpec + " not found beside the repository")
	}
	check, err := newSpecCheck(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		status int
		body   string
	}{
		{"a list that is not an array", 200, `{"tokens":[]}`},
		{"a token with a string created_time", 200, `[{"id":"8e3bd1b4-4c66-4c1f-9c1e-2b2f0d8b0f1a","name":"a","created_time":"now","privileges":[{"scope":"org","role":"read"}]}]`},
		{"a status Mist does not document", 418, `{"detail":"teapot"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check.next = roundTripFunc(func(*http.Request) (*http.Response, error) {
				return &http.Response{StatusCode: tc.status, Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(tc.body))}, nil
			})
			req, _ := http.NewRequest("GET", "http://keyward.test/mist/api/v1/orgs/8e3bd1b4-4c66-4c1f-9c1e-2b2f0d8b0f1a/apitokens", nil)
			if _, err := check.RoundTrip(req); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

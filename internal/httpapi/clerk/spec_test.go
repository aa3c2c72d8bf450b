package clerk_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/httpapi/apitest"
	"github.com/keyward/keyward/internal/testkit"
)

// clerkSpec is Clerk's published Backend API for the machine-auth family
// (machines, M2M tokens, API keys, actor tokens), read from the project's
// shared reference folder (never copied into the repository).
const clerkSpec = "clerk-bapi-machine-auth.yml"

var (
	specOnce   sync.Once
	specPath   string
	specRouter routers.Router // nil when the document is not beside the repository
	specErr    error
)

func loadSpecRouter() (routers.Router, error) {
	specOnce.Do(func() {
		path, ok, err := testkit.VendorSpec(clerkSpec)
		if err != nil || !ok {
			specErr = err
			if err == nil {
				fmt.Fprintf(os.Stderr, "clerk: %s not found beside the repository (../shared/reference/specs); responses are not validated against it\n", clerkSpec)
			}
			return
		}
		specPath = path
		doc, err := openapi3.NewLoader().LoadFromFile(path)
		if err != nil {
			specErr = err
			return
		}
		if err = doc.Validate(context.Background()); err != nil {
			specErr = err
			return
		}
		doc.Servers = openapi3.Servers{{URL: "http://clerk.test"}}
		specRouter, specErr = legacy.NewRouter(doc)
	})
	return specRouter, specErr
}

// validated records each operation of Clerk's document that some test's
// response was checked against ("POST /api_keys"), for TestMain.
var validated sync.Map

// TestMain fails a full run of the package in which some operation of
// Clerk's document never had a response checked: every one is served by
// keyward, so every one must be exercised.
func TestMain(m *testing.M) {
	code := m.Run()
	router, _ := loadSpecRouter()
	if code != 0 || router == nil || testing.Short() || flag.Lookup("test.run").Value.String() != "" {
		os.Exit(code)
	}
	doc, err := openapi3.NewLoader().LoadFromFile(specPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var missing []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			if _, ok := validated.Load(method + " " + path); !ok {
				missing = append(missing, method+" "+path)
			}
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		fmt.Fprintf(os.Stderr, "operations of %s no test response was checked against: %v\n", clerkSpec, missing)
		os.Exit(1)
	}
	os.Exit(code)
}

// start is apitest.Start with every response of the Clerk surface checked
// against Clerk's spec: a response that does not match fails the test.
// Operations the spec does not describe (keyward's additions, such as
// listing actor tokens) and paths outside /clerk are not checked.
func start(t *testing.T, store authority.Store) *apitest.Env {
	t.Helper()
	router, err := loadSpecRouter()
	if err != nil {
		t.Fatalf("load %s: %v", clerkSpec, err)
	}
	if router == nil {
		return apitest.Start(t, store)
	}
	return apitest.StartWith(t, store, apitest.Options{Wrap: func(next http.Handler) http.Handler {
		return specValidator(t.Errorf, func(op string) { validated.Store(op, true) }, router, next)
	}})
}

// clerkPath returns the spec path of a request to the Clerk surface, with
// the /clerk/v1 or unversioned /clerk prefix removed.
func clerkPath(p string) (string, bool) {
	for _, prefix := range []string{"/clerk/v1/", "/clerk/"} {
		if rest, ok := strings.CutPrefix(p, prefix); ok {
			return "/" + rest, true
		}
	}
	return "", false
}

func specValidator(report func(format string, args ...any), record func(operation string), router routers.Router, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqBody, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(reqBody))
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())

		path, ok := clerkPath(r.URL.Path)
		if !ok {
			return
		}
		specReq := r.Clone(context.Background())
		specReq.URL.Scheme, specReq.URL.Host, specReq.Host, specReq.URL.Path = "http", "clerk.test", "clerk.test", path
		specReq.URL.RawPath = ""
		specReq.Body = io.NopCloser(bytes.NewReader(reqBody))
		route, params, err := router.FindRoute(specReq)
		if err != nil {
			return // not an operation Clerk's spec describes
		}
		in := &openapi3filter.RequestValidationInput{Request: specReq, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
		err = openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
			RequestValidationInput: in,
			Status:                 rec.Code,
			Header:                 rec.Header(),
			Body:                   io.NopCloser(bytes.NewReader(rec.Body.Bytes())),
			Options:                &openapi3filter.Options{MultiError: true},
		})
		if err == nil && rec.Code >= 400 && route.Operation.Responses.Status(rec.Code) == nil {
			// A status Clerk's spec does not list for the operation still
			// owes Clerk's error envelope.
			err = clerkErrorEnvelope(rec.Body.Bytes())
		}
		if err == nil {
			record(strings.ToUpper(route.Method) + " " + route.Path)
		}
		if err != nil {
			report("%s %s → %d does not match Clerk's spec (%s %s): %v\nbody: %s",
				r.Method, r.URL.Path, rec.Code, strings.ToUpper(route.Method), route.Path, err, rec.Body.Bytes())
		}
	})
}

// clerkErrorEnvelope checks body against Clerk's ClerkErrors schema:
// {"errors":[{"message","long_message","code",...}],...}.
func clerkErrorEnvelope(body []byte) error {
	var env struct {
		Errors []map[string]any `json:"errors"`
	}
	if err := json.Unmarshal(body, &env); err != nil || len(env.Errors) == 0 {
		return fmt.Errorf("not Clerk's error envelope (errors is required)")
	}
	for _, e := range env.Errors {
		for _, field := range []string{"message", "long_message", "code"} {
			if _, ok := e[field].(string); !ok {
				return fmt.Errorf("error item without a string %s", field)
			}
		}
	}
	return nil
}

// TestSpecValidatorCatchesMismatches keeps the check honest: a response
// that breaks Clerk's schema is reported, one that keeps it is not, and
// both the versioned and the unversioned paths are checked.
func TestSpecValidatorCatchesMismatches(t *testing.T) {
	router, err := loadSpecRouter()
	if err != nil {
		t.Fatal(err)
	}
	if router == nil {
		t.Skip(clerkSpec + " not found beside the repository")
	}
	for _, tc := range []struct {
		name, path, body string
		reports          int
	}{
		{"a machine without its required fields", "/clerk/v1/machines/mch_2xhFjEI5X2qWRvtV13BzSj8H6Dk", `{"object":"machine"}`, 1},
		{"an API key with a field Clerk forbids", "/clerk/api_keys/ak_3beecc9c60adb5f9b850e91a8ee1e992", `{"object":"api_key","id":"ak_3beecc9c60adb5f9b850e91a8ee1e992","type":"api_key","subject":"user_2xhFjEI5X2qWRvtV13BzSj8H6Dk","name":"key","claims":null,"scopes":[],"revoked":false,"revocation_reason":null,"expired":false,"expiration":null,"created_by":null,"last_used_at":null,"created_at":1,"updated_at":1,"extra":1}`, 1},
		{"a well-formed API key", "/clerk/api_keys/ak_3beecc9c60adb5f9b850e91a8ee1e992", `{"object":"api_key","id":"ak_3beecc9c60adb5f9b850e91a8ee1e992","type":"api_key","subject":"user_2xhFjEI5X2qWRvtV13BzSj8H6Dk","name":"key","claims":null,"scopes":[],"revoked":false,"revocation_reason":null,"expired":false,"expiration":null,"created_by":null,"last_used_at":null,"created_at":1,"updated_at":1}`, 0},
		{"a path outside the spec", "/clerk/v1/actor_tokens", `{"nonsense":true}`, 0},
		{"an unlisted error status without Clerk's envelope", "/clerk/api_keys/ak_3beecc9c60adb5f9b850e91a8ee1e992?status=418", `{"error":"teapot"}`, 1},
		{"an unlisted error status in Clerk's envelope", "/clerk/api_keys/ak_3beecc9c60adb5f9b850e91a8ee1e992?status=418", `{"errors":[{"code":"x","message":"m","long_message":"l"}]}`, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var reports []string
			h := specValidator(func(format string, args ...any) { reports = append(reports, format) }, func(string) {}, router,
				http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "application/json")
					if r.URL.Query().Get("status") == "418" {
						w.WriteHeader(http.StatusTeapot)
					}
					_, _ = io.WriteString(w, tc.body)
				}))
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", tc.path, nil))
			if len(reports) != tc.reports {
				t.Fatalf("%d reports, want %d", len(reports), tc.reports)
			}
		})
	}
}

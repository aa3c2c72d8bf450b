package httpapi

import (
	_ "embed"
	"net/http"
)

// openapiDocument is the OpenAPI 3.1 description of every route; its test
// keeps it in step with Routes().
//
//go:embed openapi.json
var openapiDocument []byte

// openapi serves the OpenAPI document.
func (n *native) openapi(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(openapiDocument)
}

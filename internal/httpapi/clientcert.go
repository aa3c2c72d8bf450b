package httpapi

import (
	"net/http"
	"strings"

	"github.com/keyward/keyward/internal/credential"
)

// requireClientCert refuses a native API request (under /v1/) that came
// without a client certificate verified against the configured CA, while
// required says one is configured. Ticket acceptance stays open: invitees
// hold no client certificate. Probes, metrics, discovery and the vendor
// surfaces are outside /v1/ and unaffected.
func requireClientCert(next http.Handler, required func() bool, n *native) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if required() && strings.HasPrefix(r.URL.Path, "/v1/") && !strings.HasPrefix(r.URL.Path, "/v1/tickets/") &&
			(r.TLS == nil || len(r.TLS.VerifiedChains) == 0) {
			n.writeError(w, r, credential.Errorf(credential.CodeUnauthenticated, "a client certificate signed by the configured client CA is required"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

package httpapi

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/httpapi/clerk"
	"github.com/keyward/keyward/internal/httpapi/freezer"
	"github.com/keyward/keyward/internal/httpapi/mist"
	"github.com/keyward/keyward/internal/httpapi/spatio"
	"github.com/keyward/keyward/internal/httpapi/wire"
)

// TestEverySurfaceMapsEveryCode renders an error of every code in every
// surface's envelope: only internal and unavailable may answer 5xx, and
// every answer is JSON. A new code a surface's table forgets is a failure
// here, not a 500 in production.
func TestEverySurfaceMapsEveryCode(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	surfaces := map[string]wire.ErrorWriter{
		"native":  (&native{log: log}).writeError,
		"clerk":   clerk.Errors(log),
		"mist":    mist.Errors(log),
		"spatio":  spatio.Errors(log),
		"freezer": freezer.Errors(log),
	}
	for name, writeError := range surfaces {
		for _, code := range credential.Codes() {
			rec := httptest.NewRecorder()
			writeError(rec, httptest.NewRequest(http.MethodGet, "/", nil), &credential.Error{Code: code, Message: "m"})
			serverSide := code == credential.CodeInternal || code == credential.CodeUnavailable
			if got := rec.Code; (got >= 500 && got < 600) != serverSide {
				t.Errorf("%s maps %s to %d", name, code, got)
			}
			if !json.Valid(rec.Body.Bytes()) {
				t.Errorf("%s's answer to %s is not JSON: %s", name, code, rec.Body)
			}
		}
	}
}

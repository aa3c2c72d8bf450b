package httpapi

import (
	"net/http"
	"time"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/httpapi/wire"
)

func (n *native) registerAnalytics(mux wire.Router) {
	mux.Handle("GET /v1/analytics/verifications", n.Authenticated(n.verificationCounts))
}

type verificationBucketJSON struct {
	Start   string `json:"start"`
	Outcome string `json:"outcome"`
	Count   int64  `json:"count"`
}

// verificationCounts answers GET /v1/analytics/verifications
// ?credential_id=&identity=&outcome=&from=&to=&granularity=minute|hour|day
// with the non-empty buckets, as Unkey's analytics answers rows: the
// client fills the empty ones, so the answer grows with the data, not with
// the range. identity (idt_…) sums its credentials' counts.
func (n *native) verificationCounts(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	q := r.URL.Query()
	in := authority.VerificationsInput{CredentialID: q.Get("credential_id"), IdentityID: q.Get("identity"), Outcome: q.Get("outcome"),
		Granularity: authority.Granularity(q.Get("granularity"))}
	for _, p := range []struct {
		name string
		to   *time.Time
	}{{"from", &in.From}, {"to", &in.To}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return credential.ParamError(credential.CodeInvalid, p.name, "must be an RFC 3339 time, e.g. 2026-01-02T03:00:00Z")
			}
			*p.to = t
		}
	}
	s, err := n.auth.Verifications(r.Context(), c, in)
	if err != nil {
		return err
	}
	data := make([]verificationBucketJSON, len(s.Buckets))
	for i, b := range s.Buckets {
		data[i] = verificationBucketJSON{Start: time.UnixMilli(b.Start).UTC().Format(time.RFC3339), Outcome: string(b.Outcome), Count: b.Count}
	}
	wire.WriteJSON(w, http.StatusOK, map[string]any{
		"data": data, "granularity": s.Granularity,
		"from": s.From.UTC().Format(time.RFC3339), "to": s.To.UTC().Format(time.RFC3339),
	})
	return nil
}

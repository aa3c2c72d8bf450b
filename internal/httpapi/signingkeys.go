package httpapi

import (
	"net/http"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/httpapi/wire"
)

// signingKeyJSON is a JWT signing key's public facts (never key material;
// the public keys are in the JWKS).
type signingKeyJSON struct {
	ID        string `json:"id"` // the JWT kid
	Algorithm string `json:"algorithm"`
	Active    bool   `json:"active"` // it signs new tokens
	CreatedAt string `json:"created_at"`
	// RetiredAt is when a newer key replaced it; PublishedUntil when the
	// last token it signed expires (it leaves the JWKS then).
	RetiredAt      *string `json:"retired_at"`
	PublishedUntil *string `json:"published_until"`
}

func toSigningKey(k credential.SigningKey) signingKeyJSON {
	out := signingKeyJSON{ID: k.ID, Algorithm: k.Algorithm, Active: k.RetiredAt.IsZero(), CreatedAt: rfc3339(k.CreatedAt),
		RetiredAt: optionalTime(k.RetiredAt)}
	if !out.Active {
		out.PublishedUntil = optionalTime(k.TokensExpireAt)
	}
	return out
}

// listSigningKeys lists the instance's JWT signing keys (instance:read),
// as `keyward signing-key list` does on the local store.
func (n *native) listSigningKeys(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	keys, err := n.auth.SigningKeys(r.Context(), c)
	data := make([]signingKeyJSON, 0, len(keys))
	for _, k := range keys {
		data = append(data, toSigningKey(k))
	}
	return respond(w, http.StatusOK, map[string]any{"data": data, "total_count": len(data)}, err)
}

// rotateSigningKey makes a new key the instance's signing key
// (instance:write): {"algorithm": "RS256" | "EdDSA"}, optional.
func (n *native) rotateSigningKey(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	f, err := wire.ReadForm(r, "algorithm")
	var alg string
	if err == nil {
		alg, err = f.Text("algorithm")
	}
	var k credential.SigningKey
	if err == nil {
		k, err = n.auth.RotateSigningKey(r.Context(), c, alg)
	}
	return respond(w, http.StatusOK, toSigningKey(k), err)
}

package wire

import (
	"github.com/go-jose/go-jose/v4"

	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/signing"
)

// JWKS renders signing keys as a JSON Web Key Set: public parameters only.
func JWKS(keys []credential.SigningKey) (jose.JSONWebKeySet, error) {
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(keys))}
	for _, k := range keys {
		jwk, err := signing.JWK(k.ID, k.Algorithm, k.PublicKey)
		if err != nil {
			return set, credential.Wrap(credential.CodeInternal, err, "render JWKS")
		}
		set.Keys = append(set.Keys, jwk)
	}
	return set, nil
}

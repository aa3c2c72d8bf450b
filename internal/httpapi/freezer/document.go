package freezer

import "github.com/keyward/keyward/internal/authority"

// DecodeClient reads a client-info document as Freezer registers it
// (checked against Freezer's schema, kept as given plus a uuid), for the
// native API, which registers the same documents.
func DecodeClient(body []byte) (authority.NewClient, error) { return decodeClient(body) }

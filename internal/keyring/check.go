package keyring

import (
	"crypto/hmac"
	"crypto/sha256"
)

// exportCheckLabel names what ExportCheck is for, so the value is useful
// for nothing else.
const exportCheckLabel = "keyward export master-key check v1"

// ExportCheck is a keyed hash that names the master key without revealing
// it: an export carries it so that an import under a different master key
// (whose digests would never match, whose sealed values would never open)
// is refused before anything is written.
func (k *Keyring) ExportCheck() []byte {
	m := hmac.New(sha256.New, k.pepper)
	m.Write([]byte(exportCheckLabel))
	return m.Sum(nil)
}

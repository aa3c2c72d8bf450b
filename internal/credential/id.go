package credential

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"sync"
	"time"
)

// ID prefixes. IDs never share a secret's shape: a secret is prefix + 49
// characters, an ID prefix + 27 (or 32 hex for M2M tokens and API keys, as
// Clerk's are).
const (
	PrefixInstance   = "ins_"
	PrefixMachine    = "mch_"
	PrefixAdminKey   = "key_" // the id of an admin key credential
	PrefixMachineKey = "msk_" // the id of a machine secret key credential
	PrefixAPIKey     = "ak_"  // a Clerk API key's id: ak_ + 32 hex, as Clerk's are
	PrefixAudit      = "aud_"
	PrefixRequest    = "req_"
)

// NewID returns prefix + 27 base62 characters: a 48-bit millisecond time
// followed by 112 random bits, so IDs sort by creation time. Within one
// process IDs are strictly increasing: an ID made in the same millisecond as
// the previous one (or with a clock that went back) takes the previous time
// and random part plus one, as monotonic ULIDs do.
func NewID(prefix string, now time.Time) string {
	var b [20]byte
	ms := uint64(now.UnixMilli())
	idState.Lock()
	if ms <= idState.ms {
		ms = idState.ms
		b = idState.last
		increment(b[6:])
	} else if _, err := rand.Read(b[6:]); err != nil {
		idState.Unlock()
		panic("credential: crypto/rand failed: " + err.Error())
	}
	binary.BigEndian.PutUint16(b[0:2], uint16(ms>>32))
	binary.BigEndian.PutUint32(b[2:6], uint32(ms))
	idState.ms, idState.last = ms, b
	idState.Unlock()
	var out [64]byte // one allocation: the string
	return string(appendBase62(append(out[:0], prefix...), b[:], 27))
}

var idState struct {
	sync.Mutex
	ms   uint64
	last [20]byte
}

// increment adds one to a big-endian number in place (wrapping, which at
// 112 bits does not happen in practice).
func increment(b []byte) {
	for i := len(b) - 1; i >= 0; i-- {
		b[i]++
		if b[i] != 0 {
			return
		}
	}
}

// NewTimeHexID returns prefix + 32 lowercase hex characters: the
// creation time in milliseconds (12 characters, so ids sort by creation)
// and 80 bits of randomness. Ids of credentials made by the thousand (M2M
// tokens, API keys) are the primary key of their table: in creation order
// each insert lands on the index's last page instead of a random one.
func NewTimeHexID(prefix string, now time.Time) string {
	var b [16]byte
	ms := uint64(now.UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	if _, err := rand.Read(b[6:]); err != nil {
		panic("credential: crypto/rand failed: " + err.Error())
	}
	return prefix + hex.EncodeToString(b[:])
}

// NewHexID returns prefix + 32 lowercase hex characters of randomness.
func NewHexID(prefix string) string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("credential: crypto/rand failed: " + err.Error())
	}
	return prefix + hex.EncodeToString(b[:])
}

// ValidID reports whether s is prefix followed by exactly 27 base62
// characters, the shape NewID produces.
func ValidID(prefix, s string) bool {
	if len(s) != len(prefix)+27 || s[:len(prefix)] != prefix {
		return false
	}
	for i := len(prefix); i < len(s); i++ {
		if !isBase62(s[i]) {
			return false
		}
	}
	return true
}

// ValidHexID reports whether s is prefix followed by exactly 32 lowercase
// or uppercase hex characters, the shape NewHexID produces.
func ValidHexID(prefix, s string) bool {
	if len(s) != len(prefix)+32 || s[:len(prefix)] != prefix {
		return false
	}
	for i := len(prefix); i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

package credential

import "encoding/binary"

// appendBase62 appends the width-digit base62 encoding of the big-endian
// number b (at most 32 bytes) without math/big, so ids cost no
// allocation beyond dst.
func appendBase62(dst, b []byte, width int) []byte {
	var limbs [8]uint32 // big-endian
	if len(b) > 4*len(limbs) {
		b = b[len(b)-4*len(limbs):]
	}
	var padded [32]byte
	copy(padded[len(padded)-len(b):], b)
	for i := range limbs {
		limbs[i] = binary.BigEndian.Uint32(padded[4*i:])
	}
	// Divide by 62⁵ (< 2³²) per pass: five digits from each remainder.
	const chunk = 62 * 62 * 62 * 62 * 62
	start := len(dst)
	dst = append(dst, make([]byte, width)...)
	for i := width - 1; i >= 0; {
		var rem uint64
		for j := range limbs {
			cur := rem<<32 | uint64(limbs[j])
			limbs[j] = uint32(cur / chunk)
			rem = cur % chunk
		}
		for k := 0; k < 5 && i >= 0; k++ {
			dst[start+i] = base62Alphabet[rem%62]
			rem /= 62
			i--
		}
	}
	return dst
}

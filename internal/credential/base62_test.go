package credential

import "testing"

func FuzzAppendBase62MatchesMathBig(f *testing.F) {
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 27)
	f.Add([]byte{}, 5)
	f.Add([]byte{1, 2, 3}, 2) // wider than width: the low digits
	f.Fuzz(func(t *testing.T, b []byte, width int) {
		if len(b) > 32 || width < 0 || width > 64 {
			return
		}
		if got, want := string(appendBase62(nil, b, width)), encodeBase62(b, width); got != want {
			t.Fatalf("appendBase62(%x, %d) = %s, math/big gives %s", b, width, got, want)
		}
	})
}

package credential

import (
	"strings"
	"testing"
	"time"
)

func TestTimeHexIDsSortByCreationAndKeepClerksShape(t *testing.T) {
	t0 := time.UnixMilli(1_800_000_000_000)
	prev := ""
	seen := map[string]bool{}
	for i := range 1000 {
		id := NewTimeHexID("mt_", t0.Add(time.Duration(i/10)*time.Millisecond))
		if len(id) != len("mt_")+32 || strings.Trim(id[3:], "0123456789abcdef") != "" {
			t.Fatalf("%q is not mt_ + 32 lowercase hex", id)
		}
		if i%10 == 0 && id <= prev {
			t.Fatalf("%q (a later millisecond) sorts before %q", id, prev)
		}
		if seen[id] {
			t.Fatalf("%q made twice", id)
		}
		seen[id], prev = true, id
	}
}

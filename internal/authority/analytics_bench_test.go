package authority

import (
	"testing"
	"time"
)

// BenchmarkCountVerification is what counting adds to one verify: one
// shard lock and one map increment, no allocation once the minute's key
// exists.
func BenchmarkCountVerification(b *testing.B) {
	var v verificationCounter
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			v.add("ins_0EDbcLbk1SltCdSbg3TLsnq29zh", "mt_0EDbcLbk1SltCdSbg3TLsnq29zh", ReasonValid, at)
		}
	})
}

package permquery

import (
	"strings"
	"testing"
)

// The cost a verify pays: parsing the example, and the largest
// query the limits allow, and answering Missing for it.
func BenchmarkParse(b *testing.B) {
	largest := strings.Repeat("(", MaxDepth) + strings.TrimSuffix(strings.Repeat("abcdef AND ", MaxTerms-1), " AND ") + strings.Repeat(")", MaxDepth) + " OR z"
	for _, bc := range []struct{ name, query string }{
		{"example", "dns.read AND (dns.write OR admin)"},
		{"largest", largest},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Parse(bc.query); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	q, err := Parse(largest)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("missing-largest", func(b *testing.B) {
		b.ReportAllocs()
		held := Holding() // nothing held: every alternative is costed
		for b.Loop() {
			q.Missing(held)
		}
	})
}

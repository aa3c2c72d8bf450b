package sqlstore

import "testing"

func TestRebind(t *testing.T) {
	tests := []struct {
		name, query, want string
	}{
		{"no placeholders", "SELECT 1", "SELECT 1"},
		{"numbered in order", "SELECT a FROM t WHERE b = ? AND c IN (?, ?)", "SELECT a FROM t WHERE b = $1 AND c IN ($2, $3)"},
		{"placeholder at the end", "LIMIT ?", "LIMIT $1"},
	}
	postgres, sqlite := newPostgresDialect(), newSQLiteDialect()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for range 2 { // the second call is served from the cache
				if got := postgres.rebind(tc.query); got != tc.want {
					t.Errorf("postgres rebind(%q) = %q, want %q", tc.query, got, tc.want)
				}
			}
			if got := sqlite.rebind(tc.query); got != tc.query {
				t.Errorf("sqlite rebind(%q) = %q, want it unchanged", tc.query, got)
			}
		})
	}
}

func TestEscapeLike(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"50%", `50\%`},
		{"a_b", `a\_b`},
		{`c:\dir`, `c:\\dir`},
	}
	for _, tc := range tests {
		if got := escapeLike(tc.in); got != tc.want {
			t.Errorf("escapeLike(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestASCIILower(t *testing.T) {
	if got, want := asciiLower("ÉLAN Über"), "Élan Über"; got != want {
		t.Errorf("asciiLower = %q, want %q (only ASCII letters fold, as SQLite's LOWER)", got, want)
	}
}

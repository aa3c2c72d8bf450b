package credential

import (
	"regexp"
	"strings"
)

// Secret scanning: every keyward secret is its kind's prefix, a 43-character
// base62 body and a 6-character base62 checksum, so a regular expression
// finds candidates and Parse (the CRC32) keeps only real ones. The same
// expressions are the rules of scanning/gitleaks.toml and the README's
// table; scanning/ tests that gitleaks, filtered by Parse, finds exactly
// what FindSecrets finds.

// ScanPattern is the regular expression (RE2, as Go and gitleaks take it)
// matching a candidate secret with the given prefix: the prefix at a word
// boundary, then exactly 49 base62 characters, then a word boundary.
func ScanPattern(prefix string) string {
	return `\b` + regexp.QuoteMeta(prefix) + `[0-9A-Za-z]{49}\b`
}

// ScanPrefixes lists the distinct secret prefixes, each once (machine keys
// and API keys share ak_), in the order of the prefix table.
func ScanPrefixes() []string {
	var out []string
	for _, p := range prefixes {
		if !containsString(out, p.prefix) {
			out = append(out, p.prefix)
		}
	}
	return out
}

// KindsOfPrefix lists the kinds that issue secrets with prefix.
func KindsOfPrefix(prefix string) []Kind {
	var out []Kind
	for _, p := range prefixes {
		if p.prefix == prefix {
			out = append(out, p.kind)
		}
	}
	return out
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

var scanRE = func() *regexp.Regexp {
	alts := make([]string, 0, len(prefixes))
	for _, p := range ScanPrefixes() {
		alts = append(alts, regexp.QuoteMeta(p))
	}
	return regexp.MustCompile(`\b(?:` + strings.Join(alts, "|") + `)[0-9A-Za-z]{49}\b`)
}()

// Found is a checksum-valid keyward secret found in a text. Its Secret
// redacts itself when printed; Secret.DisplayPrefix is what may be shown.
type Found struct {
	Kind   Kind
	Secret Secret
	Offset int // byte offset in the text
	Line   int // 1-based line number
	Column int // 1-based byte column
}

// FindSecrets returns every well-formed keyward secret in text (known
// prefix at a word boundary, exact length, base62, matching checksum), in
// the order they occur. Candidates whose checksum is wrong (typos,
// examples, other vendors' tokens that look alike) are not returned.
func FindSecrets(text string) []Found {
	var out []Found
	line, lineStart, scanned := 1, 0, 0
	for _, m := range scanRE.FindAllStringIndex(text, -1) {
		s, kind, err := Parse(text[m[0]:m[1]])
		if err != nil {
			continue
		}
		for i := scanned; i < m[0]; i++ {
			if text[i] == '\n' {
				line, lineStart = line+1, i+1
			}
		}
		scanned = m[0]
		out = append(out, Found{Kind: kind, Secret: s, Offset: m[0], Line: line, Column: m[0] - lineStart + 1})
	}
	return out
}

package main

import (
	"strings"

	"github.com/spf13/pflag"
)

// metaFilter is the --meta KEY=VALUE flag of the credential lists (M2M
// tokens, PATs, org tokens, an identity's credentials): the server keeps
// the credentials whose meta has every KEY with its VALUE.
type metaFilter struct {
	pairs []string
	m     map[string]string
}

func (f *metaFilter) flags(fs *pflag.FlagSet) {
	fs.StringArrayVar(&f.pairs, "meta", nil, "only credentials whose meta has KEY with VALUE, as KEY=VALUE (repeatable, at most 10, every one must match; a number or true/false matches its JSON text)")
}

// check parses the pairs; the value is everything after the first '='.
func (f *metaFilter) check() error {
	f.m = nil
	for _, p := range f.pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return usageErrorf("--meta %q must be KEY=VALUE, e.g. --meta plan=pro", p)
		}
		if _, dup := f.m[k]; dup {
			return usageErrorf("--meta %s is given twice", k)
		}
		if f.m == nil {
			f.m = map[string]string{}
		}
		f.m[k] = v
	}
	return nil
}

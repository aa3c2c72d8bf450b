package authority

import (
	"context"
	"fmt"
	"slices"

	"github.com/keyward/keyward/internal/credential"
)

// Meta filters of the native credential lists (API keys, M2M tokens, PATs,
// org tokens, an identity's credentials): ?meta.<key>=<value> keeps the
// credentials whose meta has every key with its value (metaMatches).

// MaxMetaFilters bounds the meta keys one list may filter on.
const MaxMetaFilters = 10

// checkMetaFilter refuses more than MaxMetaFilters keys, naming the first
// key past the bound (in key order) as meta.<key>.
func checkMetaFilter(meta map[string]string) error {
	if len(meta) <= MaxMetaFilters {
		return nil
	}
	keys := make([]string, 0, len(meta))
	for k := range meta {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return credential.ParamError(credential.CodeInvalid, "meta."+keys[MaxMetaFilters],
		fmt.Sprintf("at most %d meta filters (%d sent)", MaxMetaFilters, len(meta)))
}

// pageCredentials reads q's credentials as views. With keep set (a filter
// the store cannot apply: names and meta live in attrs) it reads every
// match of q unpaged, keeps those keep accepts, and cuts q's page out of
// them, so the total (and the cursor after the page) counts kept ones
// only; without keep the store pages. A q.Limit of 0 is the whole list.
func pageCredentials[T any](ctx context.Context, tx CredentialTx, q CredentialQuery, keep func(tokenAttrs) bool,
	view func(credential.Credential, tokenAttrs) T) ([]T, int, error) {
	limit, offset := q.Limit, q.Offset
	if keep != nil {
		q.Limit, q.Offset = 0, 0
	}
	creds, total, err := tx.PageCredentials(ctx, q)
	if err != nil {
		return nil, 0, err
	}
	out := make([]T, 0, len(creds))
	for _, cred := range creds {
		attrs, err := parseTokenAttrs(cred)
		if err != nil {
			return nil, 0, err
		}
		if keep != nil && !keep(attrs) {
			continue
		}
		out = append(out, view(cred, attrs))
	}
	if keep == nil {
		return out, total, nil
	}
	total = len(out)
	end := total
	if limit > 0 {
		end = min(offset+limit, total)
	}
	return out[min(offset, total):end], total, nil
}

// metaKeep is the filter of a list that filters on meta only: nil (the
// store pages) when meta is empty.
func metaKeep(meta map[string]string) func(tokenAttrs) bool {
	if len(meta) == 0 {
		return nil
	}
	return func(a tokenAttrs) bool { return metaMatches(a.Controls, meta) }
}

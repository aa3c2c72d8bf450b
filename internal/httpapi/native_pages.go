package httpapi

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"

	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/httpapi/wire"
)

// Cursor pagination of the native lists: ?limit (1..100, default 20) and
// ?cursor (opaque, from the previous page's next_cursor). Each list
// answers {"data": [...], "next_cursor": "…" | null}; null is the last
// page. The cursor encodes a position in the list's order; clients must
// not build or read it, so its encoding may change.
const (
	nativePageDefault = 20
	nativePageMax     = 100
	cursorPrefix      = "o:"
)

// cursorPage is one page request: where it starts and how many it holds.
type cursorPage struct {
	offset int64
	limit  int64
}

// readCursorPage reads limit and cursor; a bad value is a 400 naming the
// parameter.
func readCursorPage(r *http.Request) (cursorPage, error) {
	p := cursorPage{limit: nativePageDefault}
	q := r.URL.Query()
	if v := q.Get("limit"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return p, credential.ParamError(credential.CodeWrongType, "limit", "must be an integer")
		}
		if n < 1 || n > nativePageMax {
			return p, credential.ParamError(credential.CodeInvalid, "limit", "must be between 1 and "+strconv.Itoa(nativePageMax))
		}
		p.limit = n
	}
	if v := q.Get("cursor"); v != "" {
		off, ok := decodeCursor(v)
		if !ok {
			return p, credential.ParamError(credential.CodeInvalid, "cursor", "is not a cursor this server issued")
		}
		p.offset = off
	}
	return p, nil
}

func encodeCursor(offset int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + strconv.FormatInt(offset, 10)))
}

func decodeCursor(s string) (int64, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return 0, false
	}
	digits, ok := strings.CutPrefix(string(raw), cursorPrefix)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || n < 1 || strconv.FormatInt(n, 10) != digits {
		return 0, false
	}
	return n, true
}

// limitOffset are the page's bounds as the authority's list inputs take
// them.
func (p cursorPage) limitOffset() (limit, offset *int64) {
	l, o := p.limit, p.offset
	return &l, &o
}

// next is the cursor after a page of got items out of total, or nil at
// the end.
func (p cursorPage) next(got, total int) *string {
	end := p.offset + int64(got)
	if got == 0 || end >= int64(total) {
		return nil
	}
	s := encodeCursor(end)
	return &s
}

// pageOf cuts the page out of a list the authority returns whole.
func pageOf[T any](all []T, p cursorPage) ([]T, *string) {
	if p.offset >= int64(len(all)) {
		return []T{}, nil
	}
	end := min(p.offset+p.limit, int64(len(all)))
	return all[p.offset:end], p.next(int(end-p.offset), len(all))
}

// metaQuery reads a list's meta filters, ?meta.<key>=<value> (the first
// value of a repeated key; an empty key is ignored), or nil. The
// authority bounds them (MaxMetaFilters) and applies them.
func metaQuery(r *http.Request) map[string]string {
	var meta map[string]string
	for name, vs := range r.URL.Query() {
		if key, ok := strings.CutPrefix(name, "meta."); ok && key != "" && len(vs) > 0 {
			if meta == nil {
				meta = map[string]string{}
			}
			meta[key] = vs[0]
		}
	}
	return meta
}

// pageJSON is the body of every cursor-paginated native list.
type pageJSON[T any] struct {
	Data       []T     `json:"data"`
	NextCursor *string `json:"next_cursor"`
}

func mapPage[S, T any](items []S, next *string, to func(S) T) pageJSON[T] {
	data := make([]T, len(items))
	for i, it := range items {
		data[i] = to(it)
	}
	return pageJSON[T]{Data: data, NextCursor: next}
}

// offsetPage reads the lists that predate cursors (organizations, audit
// events): limit and offset as before, or cursor in place of offset.
func offsetPage(r *http.Request) (limit, offset *int64, err error) {
	if limit, offset, err = wire.Page(r); err != nil {
		return nil, nil, err
	}
	if v := r.URL.Query().Get("cursor"); v != "" {
		if offset != nil {
			return nil, nil, credential.ParamError(credential.CodeConstraint, "cursor", "send cursor or offset, not both")
		}
		off, ok := decodeCursor(v)
		if !ok {
			return nil, nil, credential.ParamError(credential.CodeInvalid, "cursor", "is not a cursor this server issued")
		}
		offset = &off
	}
	return limit, offset, nil
}

// nextAfter is the cursor after got items starting at offset (nil: 0) out
// of total, or nil at the end.
func nextAfter(offset *int64, got, total int) *string {
	var start int64
	if offset != nil && *offset > 0 {
		start = *offset
	}
	return cursorPage{offset: start}.next(got, total)
}

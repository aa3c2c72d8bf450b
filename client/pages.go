package client

import (
	"context"
	"iter"
	"net/url"
	"strconv"
)

// ListParams selects one page of a cursor-paginated list. Limit 0 takes
// the server's default (20; at most 100). Cursor is "" for the first page,
// then the previous page's NextCursor; it is opaque.
type ListParams struct {
	Limit  int
	Cursor string
}

// maxPage is the largest page the server gives, for the calls that walk a
// whole list.
const maxPage = 100

// CursorPage is one page of a native list. NextCursor is "" on the last
// page.
type CursorPage[T any] struct {
	Data       []T    `json:"data"`
	NextCursor string `json:"next_cursor"`
}

// ListFunc fetches the page that starts at cursor ("" for the first).
type ListFunc[T any] func(ctx context.Context, cursor string) (CursorPage[T], error)

// Iterate walks every item of a list, page by page, until the last page
// or the first error (yielded once, with the zero item):
//
//	for m, err := range client.Iterate(ctx, func(ctx context.Context, cursor string) (client.CursorPage[client.Machine], error) {
//		return kw.ListMachines(ctx, client.MachineQuery{ListParams: client.ListParams{Cursor: cursor}})
//	}) { … }
func Iterate[T any](ctx context.Context, list ListFunc[T]) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		cursor := ""
		for {
			page, err := list(ctx, cursor)
			if err != nil {
				var zero T
				yield(zero, err)
				return
			}
			for _, item := range page.Data {
				if !yield(item, nil) {
					return
				}
			}
			if page.NextCursor == "" || page.NextCursor == cursor {
				return
			}
			cursor = page.NextCursor
		}
	}
}

// All collects every item of a list.
func All[T any](ctx context.Context, list ListFunc[T]) ([]T, error) {
	var out []T
	for item, err := range Iterate(ctx, list) {
		if err != nil {
			return out, err
		}
		out = append(out, item)
	}
	return out, nil
}

// MaxMetaFilters is how many meta keys one list may filter on (the
// server answers a 400 naming meta.<key> past it).
const MaxMetaFilters = 10

// addMeta adds a list's meta filters to v: each becomes
// ?meta.<key>=<value>, and a credential is listed when its meta has every
// key with the value (a JSON string equal to it, or another JSON value
// whose compact text is it: "3", "true").
func addMeta(v url.Values, meta map[string]string) url.Values {
	if len(meta) == 0 {
		return v
	}
	if v == nil {
		v = url.Values{}
	}
	for k, val := range meta {
		v.Set("meta."+k, val)
	}
	return v
}

// listQuery adds p's limit and cursor to v and encodes it.
func listQuery(v url.Values, p ListParams) string {
	if v == nil {
		v = url.Values{}
	}
	if p.Limit > 0 {
		v.Set("limit", strconv.Itoa(p.Limit))
	}
	if p.Cursor != "" {
		v.Set("cursor", p.Cursor)
	}
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}

// listPage GETs one page of path.
func listPage[T any](ctx context.Context, c *Client, path string, v url.Values, p ListParams) (CursorPage[T], error) {
	var out CursorPage[T]
	err := c.get(ctx, path+listQuery(v, p), &out)
	return out, err
}

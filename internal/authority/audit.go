package authority

import (
	"context"
	"fmt"

	"github.com/keyward/keyward/internal/credential"
)

// Audit list limits.
const (
	AuditListLimitDefault = 20
	AuditListLimitMax     = 200
)

// ListAuditEventsInput selects a page of audit events. Nil Limit and Offset
// take their defaults; empty filters match everything.
type ListAuditEventsInput struct {
	Action   string
	TargetID string
	Limit    *int64
	Offset   *int64
}

// ListAuditEvents returns a page of the caller's instance's audit events,
// newest first, and the total count.
func (a *Authority) ListAuditEvents(ctx context.Context, c Caller, in ListAuditEventsInput) ([]credential.AuditEvent, int, error) {
	if err := a.enter(ctx, c, "ListAuditEvents"); err != nil {
		return nil, 0, err
	}
	limit, offset, err := page(in.Limit, in.Offset, AuditListLimitDefault, AuditListLimitMax)
	if err != nil {
		return nil, 0, err
	}
	f := AuditFilter{InstanceID: c.InstanceID, Action: in.Action, TargetID: in.TargetID, Limit: limit, Offset: offset}
	var (
		out   []credential.AuditEvent
		total int
	)
	err = a.store.View(ctx, func(tx Tx) error {
		var err error
		out, total, err = tx.ListAuditEvents(ctx, f)
		return err
	})
	return out, total, err
}

// maxOffset bounds offsets so they fit every engine's integer.
const maxOffset = 1 << 31

// page checks limit (1..max, default def) and offset (0..maxOffset,
// default 0).
func page(limit, offset *int64, def, max int) (int, int, error) {
	l, o := def, 0
	if limit != nil {
		if *limit < 1 || *limit > int64(max) {
			return 0, 0, credential.ParamError(credential.CodeInvalid, "limit", fmt.Sprintf("must be between 1 and %d", max))
		}
		l = int(*limit)
	}
	if offset != nil {
		if *offset < 0 || *offset > maxOffset {
			return 0, 0, credential.ParamError(credential.CodeInvalid, "offset", "must be greater than or equal to 0")
		}
		o = int(*offset)
	}
	return l, o, nil
}

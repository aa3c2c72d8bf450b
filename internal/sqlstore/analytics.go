package sqlstore

import (
	"cmp"
	"context"
	"slices"
	"strings"

	"github.com/keyward/keyward/internal/authority"
)

const addVerificationCount = `INSERT INTO verification_counts (instance_id, credential_id, outcome, minute, count)
	VALUES (?, ?, ?, ?, ?)
	ON CONFLICT (instance_id, credential_id, outcome, minute) DO UPDATE SET count = verification_counts.count + excluded.count`

// AddVerificationCounts runs one prepared upsert per count, in key order
// whatever the order of counts: on PostgreSQL, concurrent batches from
// several nodes then lock their rows in one order and cannot deadlock.
func (t *tx) AddVerificationCounts(ctx context.Context, counts []authority.VerificationCount) error {
	sorted := make([]authority.VerificationCount, 0, len(counts))
	for _, c := range counts {
		if c.Count > 0 {
			sorted = append(sorted, c)
		}
	}
	if len(sorted) == 0 {
		return nil
	}
	slices.SortFunc(sorted, func(a, b authority.VerificationCount) int {
		return cmp.Or(strings.Compare(a.InstanceID, b.InstanceID), strings.Compare(a.CredentialID, b.CredentialID),
			strings.Compare(string(a.Outcome), string(b.Outcome)), cmp.Compare(a.Minute, b.Minute))
	})
	ctx = t.stmtCtx(ctx)
	stmt, err := t.prepare(ctx, addVerificationCount)
	if err != nil {
		return translate(err, "verification count")
	}
	defer stmt.Close()
	for i, c := range sorted {
		if _, err := stmt.ExecContext(ctx, c.InstanceID, c.CredentialID, string(c.Outcome), c.Minute, c.Count); err != nil {
			return translate(err, "verification count")
		}
		yieldEvery(i)
	}
	return translate(stmt.Close(), "verification count")
}

// VerificationSeries sums in the database: buckets are aligned to the Unix
// epoch by integer division, which both dialects do on BIGINT.
func (t *tx) VerificationSeries(ctx context.Context, q authority.VerificationQuery) ([]authority.VerificationBucket, error) {
	if q.Width <= 0 {
		q.Width = 60_000
	}
	query := `SELECT (minute / ?) * ? AS bucket, outcome, CAST(SUM(count) AS BIGINT) FROM verification_counts
		WHERE instance_id = ? AND minute >= ? AND minute < ?`
	args := []any{q.Width, q.Width, q.InstanceID, q.From, q.To}
	if q.CredentialID != "" {
		query += ` AND credential_id = ?`
		args = append(args, q.CredentialID)
	}
	if q.Outcome != "" {
		query += ` AND outcome = ?`
		args = append(args, string(q.Outcome))
	}
	query += ` GROUP BY 1, 2 ORDER BY 1, 2`
	rows, err := t.query(ctx, query, args...)
	if err != nil {
		return nil, translate(err, "verification count")
	}
	defer rows.Close()
	var out []authority.VerificationBucket
	for rows.Next() {
		var b authority.VerificationBucket
		var outcome string
		if err := rows.Scan(&b.Start, &outcome, &b.Count); err != nil {
			return nil, translate(err, "verification count")
		}
		b.Outcome = authority.Reason(outcome)
		out = append(out, b)
	}
	return out, translate(rows.Err(), "verification count")
}

// DeleteVerificationCounts deletes one bounded batch through the index on
// minute; rows another node deleted first just make the batch smaller.
func (t *tx) DeleteVerificationCounts(ctx context.Context, before int64, limit int) (int, error) {
	res, err := t.exec(ctx, `DELETE FROM verification_counts WHERE (instance_id, credential_id, outcome, minute) IN
		(SELECT instance_id, credential_id, outcome, minute FROM verification_counts WHERE minute < ? LIMIT ?)`, before, limit)
	if err != nil {
		return 0, translate(err, "verification count")
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

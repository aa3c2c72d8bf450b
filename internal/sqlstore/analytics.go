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
		t.yieldEvery(i, len(sorted))
	}
	return translate(stmt.Close(), "verification count")
}

// maxSeriesIDs bounds the credential ids bound in one series statement
// (SQLite's default limit of variables is 32766, PostgreSQL's 65535).
const maxSeriesIDs = 500

// VerificationSeries sums in the database: buckets are aligned to the Unix
// epoch by integer division, which both dialects do on BIGINT. Several
// credential ids are one credential_id IN (…), in chunks of maxSeriesIDs
// whose buckets are summed here.
func (t *tx) VerificationSeries(ctx context.Context, q authority.VerificationQuery) ([]authority.VerificationBucket, error) {
	if q.Width <= 0 {
		q.Width = 60_000
	}
	if q.CredentialIDs == nil {
		return t.verificationSeries(ctx, q, nil)
	}
	if len(q.CredentialIDs) <= maxSeriesIDs {
		if len(q.CredentialIDs) == 0 {
			return nil, nil
		}
		return t.verificationSeries(ctx, q, q.CredentialIDs)
	}
	type key struct {
		start   int64
		outcome authority.Reason
	}
	sums := map[key]int64{}
	for ids := range slices.Chunk(q.CredentialIDs, maxSeriesIDs) {
		part, err := t.verificationSeries(ctx, q, ids)
		if err != nil {
			return nil, err
		}
		for _, b := range part {
			sums[key{b.Start, b.Outcome}] += b.Count
		}
	}
	out := make([]authority.VerificationBucket, 0, len(sums))
	for k, n := range sums {
		out = append(out, authority.VerificationBucket{Start: k.start, Outcome: k.outcome, Count: n})
	}
	slices.SortFunc(out, func(a, b authority.VerificationBucket) int {
		return cmp.Or(cmp.Compare(a.Start, b.Start), strings.Compare(string(a.Outcome), string(b.Outcome)))
	})
	return out, nil
}

// verificationSeries is one statement of VerificationSeries: every
// credential when ids is nil, else those.
func (t *tx) verificationSeries(ctx context.Context, q authority.VerificationQuery, ids []string) ([]authority.VerificationBucket, error) {
	query := `SELECT (minute / ?) * ? AS bucket, outcome, CAST(SUM(count) AS BIGINT) FROM verification_counts
		WHERE instance_id = ? AND minute >= ? AND minute < ?`
	args := []any{q.Width, q.Width, q.InstanceID, q.From, q.To}
	switch len(ids) {
	case 0:
	case 1:
		query += ` AND credential_id = ?`
		args = append(args, ids[0])
	default:
		query += ` AND credential_id IN (?` + strings.Repeat(`, ?`, len(ids)-1) + `)`
		for _, id := range ids {
			args = append(args, id)
		}
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

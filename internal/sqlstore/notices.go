package sqlstore

import (
	"context"
	"strings"
	"time"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
)

// InsertNotice records a notice unless it is recorded already (one
// statement, so of two nodes inserting the same row one inserts and the
// other, on PostgreSQL, waits for it and then does nothing).
func (t *tx) InsertNotice(ctx context.Context, n authority.Notice) (bool, error) {
	res, err := t.exec(ctx, `INSERT INTO credential_notices (instance_id, credential_id, notice, threshold, sent_at, prune_after)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		n.InstanceID, n.CredentialID, n.Notice, n.Threshold, millis(n.SentAt), millis(n.PruneAfter))
	if err != nil {
		return false, translate(err, "credential notice")
	}
	k, err := res.RowsAffected()
	if err != nil {
		return false, translate(err, "credential notice")
	}
	return k == 1, nil
}

func (t *tx) DeleteNotices(ctx context.Context, instanceID, credentialID string, notices ...string) error {
	if len(notices) == 0 {
		return nil
	}
	args := []any{instanceID, credentialID}
	for _, n := range notices {
		args = append(args, n)
	}
	_, err := t.exec(ctx, `DELETE FROM credential_notices WHERE instance_id = ? AND credential_id = ? AND notice IN (`+
		placeholders(len(notices))+`)`, args...)
	return translate(err, "credential notice")
}

func (t *tx) PruneNotices(ctx context.Context, now time.Time, limit int) (int, error) {
	res, err := t.exec(ctx, `DELETE FROM credential_notices WHERE (instance_id, credential_id, notice, threshold) IN (
		SELECT instance_id, credential_id, notice, threshold FROM credential_notices
		WHERE prune_after IS NOT NULL AND prune_after <= ? LIMIT ?)`, now.UnixMilli(), limit)
	if err != nil {
		return 0, translate(err, "credential notice")
	}
	n, err := res.RowsAffected()
	return int(n), translate(err, "credential notice")
}

// prefixedColumns qualifies each column of a column list with p.
func prefixedColumns(cols, p string) string {
	parts := strings.Split(cols, ",")
	for i := range parts {
		parts[i] = p + strings.TrimSpace(parts[i])
	}
	return strings.Join(parts, ", ")
}

func kindArgs(kinds []credential.Kind) []any {
	out := make([]any, len(kinds))
	for i, k := range kinds {
		out[i] = string(k)
	}
	return out
}

// noticeAbsent is true of a credential c with no notice ? whose threshold
// is ? followed by the decimal of the column that follows.
const noticeAbsent = `NOT EXISTS (SELECT 1 FROM credential_notices n WHERE n.instance_id = c.instance_id AND n.credential_id = c.id
	AND n.notice = ? AND n.threshold = CAST(? AS TEXT) || CAST(%s AS TEXT))`

// ExpiryCandidates uses credentials_expires_at: the credentials of the
// instance that expire in (from, to], oldest expiry first.
func (t *tx) ExpiryCandidates(ctx context.Context, instanceID, notice, prefix string, from, to time.Time, kinds []credential.Kind, limit int) ([]credential.Credential, error) {
	args := append([]any{from.UnixMilli(), to.UnixMilli(), instanceID}, kindArgs(kinds)...)
	args = append(args, notice, prefix, limit)
	cols := prefixedColumns(credentialColumns, "c.")
	return queryAll(ctx, t, "credential", scanCredential, `SELECT `+cols+` FROM credentials c
		WHERE c.expires_at > ? AND c.expires_at <= ? AND c.instance_id = ? AND c.revoked_at IS NULL
		AND c.kind IN (`+placeholders(len(kinds))+`) AND `+strings.Replace(noticeAbsent, "%s", "c.expires_at", 1)+`
		ORDER BY c.expires_at, c.id LIMIT ?`, args...)
}

// UnusedCandidates reads up to limit credentials after the cursor in id
// order (the primary key) and keeps the live ones last used (or created,
// never used) at or before cutoff with no unused notice for that time.
func (t *tx) UnusedCandidates(ctx context.Context, after, notice, prefix string, cutoff, now time.Time, kinds []credential.Kind, limit int) ([]credential.Credential, string, error) {
	var last string
	if err := t.queryRow(ctx, `SELECT COALESCE(MAX(id), '') FROM (SELECT id FROM credentials WHERE id > ? ORDER BY id LIMIT ?) s`,
		after, limit).Scan(&last); err != nil {
		return nil, "", translate(err, "credential")
	}
	if last == "" {
		return nil, "", nil
	}
	args := append([]any{after, last, cutoff.UnixMilli(), now.UnixMilli()}, kindArgs(kinds)...)
	args = append(args, notice, prefix)
	cols := prefixedColumns(credentialColumns, "c.")
	out, err := queryAll(ctx, t, "credential", scanCredential, `SELECT `+cols+` FROM credentials c
		WHERE c.id > ? AND c.id <= ? AND COALESCE(c.last_used_at, c.created_at) <= ? AND c.revoked_at IS NULL
		AND (c.expires_at IS NULL OR c.expires_at > ?) AND c.kind IN (`+placeholders(len(kinds))+`)
		AND `+strings.Replace(noticeAbsent, "%s", "COALESCE(c.last_used_at, c.created_at)", 1)+` ORDER BY c.id`, args...)
	return out, last, err
}

// NoticeCount returns how many notices are recorded (for tests).
func (s *Store) NoticeCount(ctx context.Context) (int, error) {
	var n int
	if err := s.reader.QueryRowContext(ctx, `SELECT COUNT(*) FROM credential_notices`).Scan(&n); err != nil {
		return 0, translate(err, "credential notice")
	}
	return n, nil
}

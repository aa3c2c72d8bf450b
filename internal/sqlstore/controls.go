package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
)

func (t *tx) InsertRole(ctx context.Context, r authority.Role) error {
	perms, err := json.Marshal(r.Permissions)
	if err != nil {
		return translate(err, "role")
	}
	_, err = t.exec(ctx, `INSERT INTO roles (instance_id, name, permissions, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`,
		r.InstanceID, r.Name, string(perms), millis(r.CreatedAt), millis(r.UpdatedAt))
	return translate(err, "role")
}

const roleColumns = `instance_id, name, permissions, created_at, updated_at`

func scanRole(s interface{ Scan(...any) error }) (authority.Role, error) {
	var r authority.Role
	var perms string
	if err := s.Scan(&r.InstanceID, &r.Name, &perms, scanTime(&r.CreatedAt), scanTime(&r.UpdatedAt)); err != nil {
		return r, err
	}
	if err := json.Unmarshal([]byte(perms), &r.Permissions); err != nil {
		return r, credential.Wrap(credential.CodeInternal, err, "decode role permissions")
	}
	return r, nil
}

func (t *tx) GetRole(ctx context.Context, instanceID, name string) (authority.Role, error) {
	r, err := scanRole(t.queryRow(ctx, `SELECT `+roleColumns+` FROM roles WHERE instance_id = ? AND name = ?`, instanceID, name))
	return r, translate(err, "role")
}

func (t *tx) ListRoles(ctx context.Context, instanceID string) ([]authority.Role, error) {
	rows, err := t.query(ctx, `SELECT `+roleColumns+` FROM roles WHERE instance_id = ? ORDER BY name`, instanceID)
	if err != nil {
		return nil, translate(err, "roles")
	}
	defer rows.Close()
	var out []authority.Role
	for rows.Next() {
		r, err := scanRole(rows)
		if err != nil {
			return nil, translate(err, "roles")
		}
		out = append(out, r)
	}
	return out, translate(rows.Err(), "roles")
}

func (t *tx) UpdateRole(ctx context.Context, r authority.Role) error {
	perms, err := json.Marshal(r.Permissions)
	if err != nil {
		return translate(err, "role")
	}
	return t.execOne(ctx, "role", `UPDATE roles SET permissions = ?, updated_at = ? WHERE instance_id = ? AND name = ?`,
		string(perms), millis(r.UpdatedAt), r.InstanceID, r.Name)
}

func (t *tx) DeleteRole(ctx context.Context, instanceID, name string) error {
	return t.execOne(ctx, "role", `DELETE FROM roles WHERE instance_id = ? AND name = ?`, instanceID, name)
}

func (t *tx) PutCredits(ctx context.Context, r authority.CreditsRow) error {
	_, err := t.exec(ctx, `INSERT INTO credits (instance_id, owner_id, remaining, refill_amount, refilled_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (instance_id, owner_id) DO UPDATE SET remaining = excluded.remaining,
			refill_amount = excluded.refill_amount, refilled_at = excluded.refilled_at, updated_at = excluded.updated_at`,
		r.InstanceID, r.OwnerID, r.Remaining, r.RefillAmount, r.RefilledAt.UnixMilli(), r.UpdatedAt.UnixMilli())
	return translate(err, "credits")
}

const creditsColumns = `instance_id, owner_id, remaining, refill_amount, refilled_at, updated_at`

func scanCredits(s interface{ Scan(...any) error }) (authority.CreditsRow, error) {
	var r authority.CreditsRow
	err := s.Scan(&r.InstanceID, &r.OwnerID, &r.Remaining, &r.RefillAmount, scanTime(&r.RefilledAt), scanTime(&r.UpdatedAt))
	return r, err
}

func (t *tx) GetCredits(ctx context.Context, instanceID, ownerID string) (authority.CreditsRow, error) {
	r, err := scanCredits(t.queryRow(ctx, `SELECT `+creditsColumns+` FROM credits WHERE instance_id = ? AND owner_id = ?`, instanceID, ownerID))
	return r, translate(err, "credits")
}

func (t *tx) AddCredits(ctx context.Context, instanceID, ownerID string, delta int64, at time.Time) (authority.CreditsRow, error) {
	if err := t.execOne(ctx, "credits", `UPDATE credits SET remaining = CASE WHEN remaining + ? < 0 THEN 0 WHEN remaining + ? > ? THEN ? ELSE remaining + ? END,
		updated_at = ? WHERE instance_id = ? AND owner_id = ?`,
		delta, delta, int64(authority.MaxCredits), int64(authority.MaxCredits), delta, at.UnixMilli(), instanceID, ownerID); err != nil {
		return authority.CreditsRow{}, err
	}
	return t.GetCredits(ctx, instanceID, ownerID)
}

func (t *tx) DeleteCredits(ctx context.Context, instanceID, ownerID string) error {
	return t.execOne(ctx, "credits", `DELETE FROM credits WHERE instance_id = ? AND owner_id = ?`, instanceID, ownerID)
}

// spendCredits is the verify path's one write: the refill (when the row
// was last refilled before the boundary, $1 > 0) and the take in one
// conditional UPDATE, so concurrent verifies on every node sharing the
// database never take more than there is.
const spendCredits = `UPDATE credits SET
	remaining = (CASE WHEN refilled_at < ? THEN refill_amount ELSE remaining END) - ?,
	refilled_at = CASE WHEN refilled_at < ? THEN ? ELSE refilled_at END
	WHERE instance_id = ? AND owner_id = ? AND (CASE WHEN refilled_at < ? THEN refill_amount ELSE remaining END) >= ?
	RETURNING remaining`

// SpendCredits implements authority.CreditSpender, on the writer pool
// outside any explicit transaction (one statement is atomic on its own).
func (s *Store) SpendCredits(ctx context.Context, instanceID, ownerID string, cost int64, boundary, now time.Time) (bool, int64, error) {
	b := int64(-1 << 62) // no refill: no row was refilled before this
	if !boundary.IsZero() {
		b = boundary.UnixMilli()
	}
	var remaining int64
	err := s.writer.QueryRowContext(ctx, s.d.rebind(spendCredits), b, cost, b, now.UnixMilli(), instanceID, ownerID, b, cost).Scan(&remaining)
	if err == nil {
		return true, remaining, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return false, 0, s.outageOr(ctx, translate(err, "credits"))
	}
	// Refused (or no row): report what is left, refill included.
	var refill, refilled int64
	err = s.reader.QueryRowContext(ctx, s.d.rebind(`SELECT remaining, refill_amount, refilled_at FROM credits WHERE instance_id = ? AND owner_id = ?`),
		instanceID, ownerID).Scan(&remaining, &refill, &refilled)
	if err != nil {
		return false, 0, s.outageOr(ctx, translate(err, "credits"))
	}
	if refilled < b {
		remaining = refill
	}
	return false, remaining, nil
}

var _ authority.CreditSpender = (*Store)(nil)

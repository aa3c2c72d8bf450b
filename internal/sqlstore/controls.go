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

// RefundCredits gives back credits a verify took when a later control
// refused it (one atomic increment).
func (s *Store) RefundCredits(ctx context.Context, instanceID, ownerID string, amount int64) error {
	_, err := s.writer.ExecContext(ctx, s.d.rebind(`UPDATE credits SET remaining = remaining + ? WHERE instance_id = ? AND owner_id = ?`), amount, instanceID, ownerID)
	return s.outageOr(ctx, translate(err, "credits"))
}

const identityColumns = `id, instance_id, external_id, meta, ratelimits, credits, created_at, updated_at`

func identityArgs(i authority.Identity) ([]any, error) {
	limits, err := json.Marshal(i.RateLimits)
	if err != nil {
		return nil, err
	}
	if i.RateLimits == nil {
		limits = []byte("[]")
	}
	credits := ""
	if i.Credits != nil {
		b, err := json.Marshal(i.Credits)
		if err != nil {
			return nil, err
		}
		credits = string(b)
	}
	return []any{i.ID, i.InstanceID, i.ExternalID, jsonText(i.Meta), string(limits), credits, millis(i.CreatedAt), millis(i.UpdatedAt)}, nil
}

func scanIdentity(s interface{ Scan(...any) error }) (authority.Identity, error) {
	var i authority.Identity
	var meta, limits, credits string
	if err := s.Scan(&i.ID, &i.InstanceID, &i.ExternalID, &meta, &limits, &credits, scanTime(&i.CreatedAt), scanTime(&i.UpdatedAt)); err != nil {
		return i, err
	}
	if meta != "{}" {
		i.Meta = json.RawMessage(meta)
	}
	if err := json.Unmarshal([]byte(limits), &i.RateLimits); err != nil {
		return i, credential.Wrap(credential.CodeInternal, err, "decode identity ratelimits")
	}
	if len(i.RateLimits) == 0 {
		i.RateLimits = nil
	}
	if credits != "" {
		i.Credits = new(authority.CreditsRule)
		if err := json.Unmarshal([]byte(credits), i.Credits); err != nil {
			return i, credential.Wrap(credential.CodeInternal, err, "decode identity credits")
		}
	}
	return i, nil
}

func (t *tx) InsertIdentity(ctx context.Context, i authority.Identity) error {
	args, err := identityArgs(i)
	if err != nil {
		return translate(err, "identity")
	}
	_, err = t.exec(ctx, `INSERT INTO identities (`+identityColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, args...)
	return translate(err, "identity")
}

func (t *tx) UpdateIdentity(ctx context.Context, i authority.Identity) error {
	args, err := identityArgs(i)
	if err != nil {
		return translate(err, "identity")
	}
	return t.execOne(ctx, "identity", `UPDATE identities SET external_id = ?, meta = ?, ratelimits = ?, credits = ?, updated_at = ? WHERE instance_id = ? AND id = ?`,
		args[2], args[3], args[4], args[5], args[7], i.InstanceID, i.ID)
}

func (t *tx) GetIdentity(ctx context.Context, instanceID, id string) (authority.Identity, error) {
	i, err := scanIdentity(t.queryRow(ctx, `SELECT `+identityColumns+` FROM identities WHERE instance_id = ? AND id = ?`, instanceID, id))
	return i, translate(err, "identity")
}

func (t *tx) ListIdentities(ctx context.Context, instanceID, externalID string, limit, offset int) ([]authority.Identity, int, error) {
	where, args := ` WHERE instance_id = ?`, []any{instanceID}
	if externalID != "" {
		where, args = where+` AND external_id = ?`, append(args, externalID)
	}
	total, err := t.count(ctx, "identities", `SELECT COUNT(*) FROM identities`+where, args...)
	if err != nil {
		return nil, 0, err
	}
	rows, err := t.query(ctx, `SELECT `+identityColumns+` FROM identities`+where+` ORDER BY created_at, id LIMIT ? OFFSET ?`, append(args, limit, offset)...)
	if err != nil {
		return nil, 0, translate(err, "identities")
	}
	defer rows.Close()
	var out []authority.Identity
	for rows.Next() {
		i, err := scanIdentity(rows)
		if err != nil {
			return nil, 0, translate(err, "identities")
		}
		out = append(out, i)
	}
	return out, total, translate(rows.Err(), "identities")
}

func (t *tx) DeleteIdentity(ctx context.Context, instanceID, id string) error {
	if _, err := t.exec(ctx, `DELETE FROM identity_credentials WHERE instance_id = ? AND identity_id = ?`, instanceID, id); err != nil {
		return translate(err, "identity")
	}
	return t.execOne(ctx, "identity", `DELETE FROM identities WHERE instance_id = ? AND id = ?`, instanceID, id)
}

func (t *tx) LinkIdentity(ctx context.Context, instanceID, credentialID, identityID string) error {
	if _, err := t.exec(ctx, `DELETE FROM identity_credentials WHERE instance_id = ? AND credential_id = ?`, instanceID, credentialID); err != nil {
		return translate(err, "identity link")
	}
	if identityID == "" {
		return nil
	}
	_, err := t.exec(ctx, `INSERT INTO identity_credentials (instance_id, credential_id, identity_id) VALUES (?, ?, ?)`, instanceID, credentialID, identityID)
	return translate(err, "identity link")
}

func (t *tx) IdentityCredentials(ctx context.Context, instanceID, identityID string) ([]string, error) {
	rows, err := t.query(ctx, `SELECT credential_id FROM identity_credentials WHERE instance_id = ? AND identity_id = ? ORDER BY credential_id`, instanceID, identityID)
	if err != nil {
		return nil, translate(err, "identity credentials")
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, translate(err, "identity credentials")
		}
		out = append(out, id)
	}
	return out, translate(rows.Err(), "identity credentials")
}

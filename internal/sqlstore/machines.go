package sqlstore

import (
	"context"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
)

const machineColumns = `id, instance_id, name, default_token_ttl, created_at, updated_at`

func scanMachine(s scanner) (credential.Machine, error) {
	var m credential.Machine
	err := s.Scan(&m.ID, &m.InstanceID, &m.Name, &m.DefaultTokenTTL, scanTime(&m.CreatedAt), scanTime(&m.UpdatedAt))
	return m, err
}

func (t *tx) InsertMachine(ctx context.Context, m credential.Machine) error {
	_, err := t.exec(ctx, `INSERT INTO machines (`+machineColumns+`) VALUES (?, ?, ?, ?, ?, ?)`,
		m.ID, m.InstanceID, m.Name, m.DefaultTokenTTL, millis(m.CreatedAt), millis(m.UpdatedAt))
	return translate(err, "machine")
}

const getMachine = `SELECT ` + machineColumns + ` FROM machines WHERE instance_id = ? AND id = ?`

func (t *tx) GetMachine(ctx context.Context, instanceID, id string) (credential.Machine, error) {
	m, err := scanMachine(t.queryRow(ctx, getMachine, instanceID, id))
	return m, translate(err, "machine")
}

// LockMachine is GetMachine that also locks the row until the
// transaction ends (FOR NO KEY UPDATE on PostgreSQL: it does not block a
// machine_scopes insert's key-share lock; SQLite has a single writer), so
// two changes of one machine's keys run one after the other.
func (t *tx) LockMachine(ctx context.Context, instanceID, id string) (credential.Machine, error) {
	query := getMachine
	if t.d.name == "postgres" {
		query += " FOR NO KEY UPDATE"
	}
	m, err := scanMachine(t.queryRow(ctx, query, instanceID, id))
	return m, translate(err, "machine")
}

// MachinesByID returns the machines ordered by id.
func (t *tx) MachinesByID(ctx context.Context, instanceID string, ids []string) ([]credential.Machine, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	return queryAll(ctx, t, "machine", scanMachine, `SELECT `+machineColumns+` FROM machines
		WHERE instance_id = ? AND id IN (`+placeholders(len(ids))+`) ORDER BY id`,
		append([]any{instanceID}, stringArgs(ids)...)...)
}

// ListMachines reads the page and the total in one transaction, so on
// either engine they come from one snapshot. A Limit ≤ 0 means no limit.
func (t *tx) ListMachines(ctx context.Context, f authority.MachineFilter) ([]credential.Machine, int, error) {
	var orderBy string
	switch f.OrderBy {
	case authority.OrderByCreatedAt, "":
		orderBy = "created_at"
	case authority.OrderByName:
		// Case-insensitive as people read names (LOWER folds ASCII the
		// same on both engines under COLLATE "C"), then by exact name.
		orderBy = "LOWER(name)" + dir(f.Descending) + ", name"
	default:
		return nil, 0, credential.Errorf(credential.CodeInvalid, "cannot order machines by %q", f.OrderBy)
	}
	direction := dir(f.Descending)

	where, args := "instance_id = ?", []any{f.InstanceID}
	if f.Query != "" {
		// The pattern is lowered here, ASCII only, as LOWER(name) is on both
		// engines (see the migrations); LOWER(?) would fold more on PostgreSQL.
		where += ` AND (id = ? OR LOWER(name) LIKE ? ESCAPE '\')`
		args = append(args, f.Query, "%"+escapeLike(asciiLower(f.Query))+"%")
	}
	total, err := t.count(ctx, "machine", `SELECT COUNT(*) FROM machines WHERE `+where, args...)
	if err != nil {
		return nil, 0, err
	}
	page, err := queryAll(ctx, t, "machine", scanMachine, `SELECT `+machineColumns+` FROM machines
		WHERE `+where+` ORDER BY `+orderBy+direction+`, id`+direction+` LIMIT ? OFFSET ?`,
		append(args, pageLimit(f.Limit), max(f.Offset, 0))...)
	return page, total, err
}

func dir(descending bool) string {
	if descending {
		return " DESC"
	}
	return " ASC"
}

func (t *tx) UpdateMachine(ctx context.Context, m credential.Machine) error {
	return t.execOne(ctx, "machine", `UPDATE machines SET name = ?, default_token_ttl = ?, updated_at = ?
		WHERE instance_id = ? AND id = ?`,
		m.Name, m.DefaultTokenTTL, millis(m.UpdatedAt), m.InstanceID, m.ID)
}

// DeleteMachine leaves the scopes to ON DELETE CASCADE.
func (t *tx) DeleteMachine(ctx context.Context, instanceID, id string) error {
	return t.execOne(ctx, "machine", `DELETE FROM machines WHERE instance_id = ? AND id = ?`, instanceID, id)
}

const scopeColumns = `instance_id, from_machine_id, to_machine_id, created_at`

// InsertMachineScope inserts the scope only if both machines belong to its
// instance (the foreign keys alone would accept another instance's
// machine); CodeNotFound otherwise.
func (t *tx) InsertMachineScope(ctx context.Context, s credential.MachineScope) error {
	return t.execOne(ctx, "machine scope", `INSERT INTO machine_scopes (`+scopeColumns+`)
		SELECT ?, ?, ?, CAST(? AS BIGINT)
		WHERE EXISTS (SELECT 1 FROM machines WHERE instance_id = ? AND id = ?)
		  AND EXISTS (SELECT 1 FROM machines WHERE instance_id = ? AND id = ?)`,
		s.InstanceID, s.FromMachineID, s.ToMachineID, millis(s.CreatedAt),
		s.InstanceID, s.FromMachineID, s.InstanceID, s.ToMachineID)
}

func (t *tx) DeleteMachineScope(ctx context.Context, instanceID, fromID, toID string) error {
	return t.execOne(ctx, "machine scope", `DELETE FROM machine_scopes
		WHERE instance_id = ? AND from_machine_id = ? AND to_machine_id = ?`, instanceID, fromID, toID)
}

func (t *tx) GetMachineScope(ctx context.Context, instanceID, fromID, toID string) (credential.MachineScope, error) {
	var s credential.MachineScope
	err := t.queryRow(ctx, `SELECT `+scopeColumns+` FROM machine_scopes
		WHERE instance_id = ? AND from_machine_id = ? AND to_machine_id = ?`, instanceID, fromID, toID).
		Scan(&s.InstanceID, &s.FromMachineID, &s.ToMachineID, scanTime(&s.CreatedAt))
	return s, translate(err, "machine scope")
}

func (t *tx) CountMachineScopes(ctx context.Context, instanceID, fromID string) (int, error) {
	return t.count(ctx, "machine scope",
		`SELECT COUNT(*) FROM machine_scopes WHERE instance_id = ? AND from_machine_id = ?`, instanceID, fromID)
}

// scopedMachinesQuery reads the scoped machines of n machines.
func scopedMachinesQuery(n int) string {
	return `SELECT s.from_machine_id, m.id, m.instance_id, m.name, m.default_token_ttl, m.created_at, m.updated_at
		FROM machine_scopes s JOIN machines m ON m.id = s.to_machine_id
		WHERE s.instance_id = ? AND m.instance_id = ? AND s.from_machine_id IN (` + placeholders(n) + `)
		ORDER BY s.created_at, m.id`
}

// ScopedMachines reads the scopes of every fromID in one query. A fromID
// without scopes has no key in the result.
func (t *tx) ScopedMachines(ctx context.Context, instanceID string, fromIDs []string) (map[string][]credential.Machine, error) {
	scoped := make(map[string][]credential.Machine)
	if len(fromIDs) == 0 {
		return scoped, nil
	}
	type scopedMachine struct {
		from string
		m    credential.Machine
	}
	rows, err := queryAll(ctx, t, "machine scope", func(s scanner) (scopedMachine, error) {
		var sm scopedMachine
		err := s.Scan(&sm.from, &sm.m.ID, &sm.m.InstanceID, &sm.m.Name, &sm.m.DefaultTokenTTL,
			scanTime(&sm.m.CreatedAt), scanTime(&sm.m.UpdatedAt))
		return sm, err
	}, scopedMachinesQuery(len(fromIDs)), append([]any{instanceID, instanceID}, stringArgs(fromIDs)...)...)
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		scoped[r.from] = append(scoped[r.from], r.m)
	}
	return scoped, nil
}

package sqlstore

import (
	"context"

	"github.com/keyward/keyward/internal/credential"
)

const instanceColumns = `id, name, created_at, org_token_hourly_limit`

func scanInstance(s scanner) (credential.Instance, error) {
	var in credential.Instance
	err := s.Scan(&in.ID, &in.Name, scanTime(&in.CreatedAt), &in.OrgTokenHourlyLimit)
	return in, err
}

func (t *tx) CreateInstance(ctx context.Context, in credential.Instance) error {
	_, err := t.exec(ctx, `INSERT INTO instances (`+instanceColumns+`) VALUES (?, ?, ?, ?)`,
		in.ID, in.Name, millis(in.CreatedAt), in.OrgTokenHourlyLimit)
	return translate(err, "instance")
}

func (t *tx) GetInstance(ctx context.Context, id string) (credential.Instance, error) {
	in, err := scanInstance(t.queryRow(ctx, `SELECT `+instanceColumns+` FROM instances WHERE id = ?`, id))
	return in, translate(err, "instance")
}

func (t *tx) ListInstances(ctx context.Context) ([]credential.Instance, error) {
	return queryAll(ctx, t, "instance", scanInstance,
		`SELECT `+instanceColumns+` FROM instances ORDER BY created_at, id`)
}

// UpdateInstance leaves created_at as it was.
func (t *tx) UpdateInstance(ctx context.Context, in credential.Instance) error {
	return t.execOne(ctx, "instance", `UPDATE instances SET name = ?, org_token_hourly_limit = ? WHERE id = ?`,
		in.Name, in.OrgTokenHourlyLimit, in.ID)
}

package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/keyward/keyward/internal/credential"
)

const instanceColumns = `id, name, created_at, org_token_hourly_limit, scopes, pat_max_lifetime, impersonation_redirect_url`

func scanInstance(s scanner) (credential.Instance, error) {
	var in credential.Instance
	err := s.Scan(&in.ID, &in.Name, scanTime(&in.CreatedAt), &in.OrgTokenHourlyLimit,
		scanStrings(&in.Scopes), &in.PATMaxLifetime, &in.ImpersonationRedirectURL)
	return in, err
}

// stringsJSON is the stored form of a list of strings: a JSON array, or
// NULL for a nil list. An empty list is stored as [], so it reads back
// empty rather than nil.
func stringsJSON(list []string) (any, error) {
	if list == nil {
		return nil, nil
	}
	b, err := json.Marshal(list)
	if err != nil {
		return nil, credential.Wrap(credential.CodeInternal, err, "encode list")
	}
	return string(b), nil
}

// stringsScanner reads what stringsJSON wrote back into *list.
type stringsScanner struct{ list *[]string }

func scanStrings(list *[]string) stringsScanner { return stringsScanner{list} }

func (s stringsScanner) Scan(src any) error {
	var doc []byte
	switch v := src.(type) {
	case nil:
		*s.list = nil
		return nil
	case string:
		doc = []byte(v)
	case []byte:
		doc = v
	default:
		return fmt.Errorf("sqlstore: list column holds %T", src)
	}
	// Unmarshal makes [] an empty, non-nil slice (and a JSON null nil).
	var list []string
	if err := json.Unmarshal(doc, &list); err != nil {
		return fmt.Errorf("sqlstore: list column: %w", err)
	}
	*s.list = list
	return nil
}

// CreateInstance stores nil Scopes as NULL and any other list, even an
// empty one, as a JSON array.
func (t *tx) CreateInstance(ctx context.Context, in credential.Instance) error {
	scopes, err := stringsJSON(in.Scopes)
	if err != nil {
		return err
	}
	_, err = t.exec(ctx, `INSERT INTO instances (`+instanceColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		in.ID, in.Name, millis(in.CreatedAt), in.OrgTokenHourlyLimit, scopes, in.PATMaxLifetime, in.ImpersonationRedirectURL)
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

// UpdateInstance leaves created_at as it was, and stores Scopes as
// CreateInstance does.
func (t *tx) UpdateInstance(ctx context.Context, in credential.Instance) error {
	scopes, err := stringsJSON(in.Scopes)
	if err != nil {
		return err
	}
	return t.execOne(ctx, "instance", `UPDATE instances
		SET name = ?, org_token_hourly_limit = ?, scopes = ?, pat_max_lifetime = ?, impersonation_redirect_url = ?
		WHERE id = ?`,
		in.Name, in.OrgTokenHourlyLimit, scopes, in.PATMaxLifetime, in.ImpersonationRedirectURL, in.ID)
}

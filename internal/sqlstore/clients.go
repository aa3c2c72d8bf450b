package sqlstore

import (
	"context"
	"encoding/json"

	"github.com/keyward/keyward/internal/credential"
)

// Clients (OpenStack Freezer's). A client carries its instance and user,
// and every query matches both, so a client of another user or instance is
// not found; the same client_id may be used by each. The document is
// stored as the JSON text it was given and read back byte for byte; a nil
// document is stored as the empty object, as credential attrs are.
// Deleting an instance leaves its clients to ON DELETE CASCADE.

const clientColumns = `instance_id, user_id, client_id, doc, created_at`

func scanClient(s scanner) (credential.Client, error) {
	var (
		c   credential.Client
		doc string
	)
	err := s.Scan(&c.InstanceID, &c.UserID, &c.ClientID, &doc, scanTime(&c.CreatedAt))
	if err != nil {
		return c, err
	}
	c.Doc = json.RawMessage(doc)
	return c, nil
}

// InsertClient reports CodeConflict for a client_id the user already has,
// and CodeNotFound for a missing instance.
func (t *tx) InsertClient(ctx context.Context, c credential.Client) error {
	_, err := t.exec(ctx, `INSERT INTO clients (`+clientColumns+`) VALUES (?, ?, ?, ?, ?)`,
		c.InstanceID, c.UserID, c.ClientID, jsonText(c.Doc), millis(c.CreatedAt))
	return translate(err, "client")
}

func (t *tx) GetClient(ctx context.Context, instanceID, userID, clientID string) (credential.Client, error) {
	c, err := scanClient(t.queryRow(ctx, `SELECT `+clientColumns+` FROM clients
		WHERE instance_id = ? AND user_id = ? AND client_id = ?`, instanceID, userID, clientID))
	return c, translate(err, "client")
}

// ListClients orders by created_at, then client_id in byte order (the
// column's collation on PostgreSQL). An unknown user has no clients.
func (t *tx) ListClients(ctx context.Context, instanceID, userID string) ([]credential.Client, error) {
	return queryAll(ctx, t, "client", scanClient, `SELECT `+clientColumns+` FROM clients
		WHERE instance_id = ? AND user_id = ? ORDER BY created_at, client_id`, instanceID, userID)
}

func (t *tx) DeleteClient(ctx context.Context, instanceID, userID, clientID string) error {
	return t.execOne(ctx, "client", `DELETE FROM clients WHERE instance_id = ? AND user_id = ? AND client_id = ?`,
		instanceID, userID, clientID)
}

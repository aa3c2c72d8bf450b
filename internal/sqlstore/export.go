package sqlstore

import (
	"bufio"
	"context"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// exportTables are the tables an export carries, parents before children so
// an import satisfies every foreign key in order. rate_windows is left out:
// its counters are transient and rebuild themselves. audit_chain_heads
// travels with the events, so the chain goes on where the export left it,
// and with its pruning checkpoint. Imported keys not yet re-keyed keep
// their foreign hashes (and the sealed foreign HMAC keys), so they still
// verify after an import. verification_counts (usage analytics) travel
// too: they are the instances' history, not a transient counter.
var exportTables = []string{
	"keyring", "instances", "verification_counts", "machines", "machine_scopes", "credentials", "foreign_key_prefixes", "foreign_hmac_keys", "foreign_key_hashes",
	"audit_events", "audit_chain_heads", "signing_keys",
	"organizations", "sites", "sitegroups", "sitegroup_sites", "workspaces", "workspace_members",
	"actor_tokens", "impersonation_sessions", "clients", "roles", "credits", "identities", "identity_credentials",
	"webhooks", // endpoints travel (their secrets sealed, like the machines'); their outbox and deliveries do not
}

// exportOrder orders the rows of a table so a row that references another
// of the same table (a credential's parent) comes after it.
var exportOrder = map[string]string{"credentials": " ORDER BY created_at, id", "audit_events": " ORDER BY at, id"}

// ExportFormat names the export's line format.
const ExportFormat = "keyward-export"

// ExportHeader is the first line of an export.
type ExportHeader struct {
	Type           string `json:"type"` // "header"
	Format         string `json:"format"`
	Version        int    `json:"version"`
	Dialect        string `json:"dialect"`
	MasterKeyCheck string `json:"master_key_check"` // base64 of keyring.ExportCheck
}

// exportLine is one row: its table as type, and its columns. A blob column
// (digest, sealed value) is {"base64": "..."}; a plaintext secret is never
// in a row, since the store holds none.
type exportLine struct {
	Type string                     `json:"type"`
	Row  map[string]json.RawMessage `json:"row"`
}

type blobValue struct {
	Base64 string `json:"base64"`
}

// Export writes every row of the store as JSON lines, after a header
// naming the master key by check (a keyed hash of it, never the key). It
// reads one snapshot, so the export is consistent while others write.
func (s *Store) Export(ctx context.Context, w io.Writer, check []byte) (int, error) {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	if err := enc.Encode(ExportHeader{Type: "header", Format: ExportFormat, Version: 1, Dialect: s.d.name,
		MasterKeyCheck: base64.StdEncoding.EncodeToString(check)}); err != nil {
		return 0, fmt.Errorf("sqlstore: export: %w", err)
	}
	tx, err := s.reader.BeginTx(ctx, &s.d.readTx)
	if err != nil {
		return 0, translate(err, "export")
	}
	defer tx.Rollback()
	n := 0
	for _, table := range exportTables {
		rows, err := tx.QueryContext(ctx, "SELECT * FROM "+table+exportOrder[table])
		if err != nil {
			return n, fmt.Errorf("sqlstore: export %s: %w", table, err)
		}
		cols, err := rows.Columns()
		if err != nil {
			rows.Close()
			return n, fmt.Errorf("sqlstore: export %s: %w", table, err)
		}
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				rows.Close()
				return n, fmt.Errorf("sqlstore: export %s: %w", table, err)
			}
			line := exportLine{Type: table, Row: make(map[string]json.RawMessage, len(cols))}
			for i, c := range cols {
				var v any = vals[i]
				if b, ok := v.([]byte); ok {
					v = blobValue{Base64: base64.StdEncoding.EncodeToString(b)}
				}
				raw, err := json.Marshal(v)
				if err != nil {
					rows.Close()
					return n, fmt.Errorf("sqlstore: export %s.%s: %w", table, c, err)
				}
				line.Row[c] = raw
			}
			if err := enc.Encode(line); err != nil {
				rows.Close()
				return n, fmt.Errorf("sqlstore: export: %w", err)
			}
			n++
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return n, fmt.Errorf("sqlstore: export %s: %w", table, err)
		}
	}
	return n, bw.Flush()
}

// ErrImportMasterKey refuses an export made under another master key.
var ErrImportMasterKey = errors.New("sqlstore: import: the export was made under a different master key; its digests and sealed values are useless here (pass the master key of the store it came from)")

// Import reads an export and inserts its rows in one transaction, skipping
// rows whose key already exists, so importing the same file twice changes
// nothing. It refuses an export whose master-key check differs from check,
// and a line naming an unknown table or column, before committing anything.
func (s *Store) Import(ctx context.Context, r io.Reader, check []byte) (inserted, skipped int, err error) {
	dec := json.NewDecoder(bufio.NewReader(r))
	dec.UseNumber()
	var h ExportHeader
	if err := dec.Decode(&h); err != nil || h.Type != "header" || h.Format != ExportFormat {
		return 0, 0, errors.New("sqlstore: import: the file does not start with a keyward export header")
	}
	if h.Version != 1 {
		return 0, 0, fmt.Errorf("sqlstore: import: export format version %d is not supported (want 1)", h.Version)
	}
	got, err := base64.StdEncoding.DecodeString(h.MasterKeyCheck)
	if err != nil {
		return 0, 0, ErrImportMasterKey
	}
	// Same data keys: every digest and sealed value carries over as is.
	// Otherwise the export's keyring line may still adopt its data keys
	// (adoptKeyring), or the import is refused.
	sameKeys := subtle.ConstantTimeCompare(got, check) == 1
	known := make(map[string]bool, len(exportTables))
	for _, t := range exportTables {
		known[t] = true
	}
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return 0, 0, translate(err, "import")
	}
	defer tx.Rollback()
	columns := map[string]map[string]bool{}
	for lineNo := 2; ; lineNo++ {
		var line exportLine
		if err := dec.Decode(&line); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return 0, 0, fmt.Errorf("sqlstore: import: line %d: %w", lineNo, err)
		}
		if !known[line.Type] {
			return 0, 0, fmt.Errorf("sqlstore: import: line %d: unknown type %q", lineNo, line.Type)
		}
		if line.Type == "keyring" {
			if sameKeys {
				skipped++
				continue
			}
			if err := s.adoptKeyring(ctx, tx, line.Row); err != nil {
				return 0, 0, err
			}
			sameKeys = true
			inserted++
			continue
		}
		if !sameKeys {
			return 0, 0, ErrImportMasterKey
		}
		cols, ok := columns[line.Type]
		if !ok {
			if cols, err = tableColumns(ctx, tx, line.Type); err != nil {
				return 0, 0, err
			}
			columns[line.Type] = cols
		}
		names := make([]string, 0, len(line.Row))
		args := make([]any, 0, len(line.Row))
		for name, raw := range line.Row {
			// Only columns the target has reach the SQL text.
			if !cols[name] {
				return 0, 0, fmt.Errorf("sqlstore: import: line %d: %s has no column %q", lineNo, line.Type, name)
			}
			v, err := importValue(raw)
			if err != nil {
				return 0, 0, fmt.Errorf("sqlstore: import: line %d: %s: %w", lineNo, name, err)
			}
			names, args = append(names, name), append(args, v)
		}
		if len(names) == 0 {
			return 0, 0, fmt.Errorf("sqlstore: import: line %d: empty row", lineNo)
		}
		if line.Type == "webhooks" && s.d.name == "postgres" {
			if err := s.lockChainForWebhook(ctx, tx, names, args); err != nil {
				return 0, 0, fmt.Errorf("sqlstore: import: line %d: %w", lineNo, err)
			}
		}
		q := "INSERT INTO " + line.Type + " (" + strings.Join(names, ", ") + ") VALUES (" +
			strings.TrimSuffix(strings.Repeat("?, ", len(names)), ", ") + ") ON CONFLICT DO NOTHING"
		res, err := tx.ExecContext(ctx, s.d.rebind(q), args...)
		if err != nil {
			return 0, 0, fmt.Errorf("sqlstore: import: line %d (%s): %w", lineNo, line.Type, err)
		}
		if n, _ := res.RowsAffected(); n > 0 {
			inserted++
		} else {
			skipped++
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, 0, translate(err, "import")
	}
	return inserted, skipped, nil
}

func tableColumns(ctx context.Context, tx interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, table string) (map[string]bool, error) {
	rows, err := tx.QueryContext(ctx, "SELECT * FROM "+table+" WHERE 1 = 0")
	if err != nil {
		return nil, fmt.Errorf("sqlstore: import %s: %w", table, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, fmt.Errorf("sqlstore: import %s: %w", table, err)
	}
	m := make(map[string]bool, len(cols))
	for _, c := range cols {
		m[c] = true
	}
	return m, nil
}

// importValue turns an exported column back into a driver value.
func importValue(raw json.RawMessage) (any, error) {
	var v any
	d := json.NewDecoder(strings.NewReader(string(raw)))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	switch x := v.(type) {
	case nil, string:
		return x, nil
	case json.Number:
		return x.Int64()
	case map[string]any:
		s, ok := x["base64"].(string)
		if !ok || len(x) != 1 {
			return nil, errors.New("want a string, an integer, null or {\"base64\": …}")
		}
		return base64.StdEncoding.DecodeString(s)
	}
	return nil, errors.New("want a string, an integer, null or {\"base64\": …}")
}

// adoptKeyring makes an empty store take the exported keyring row: the
// source's data keys wrapped under a master key, which must be the one this
// store runs under (same key-check value). A store that opened itself for
// the import generated its own random data keys; no digest of the source
// would match them. A store that already holds instances is refused, since
// its own rows would stop verifying.
func (s *Store) adoptKeyring(ctx context.Context, tx *sql.Tx, row map[string]json.RawMessage) error {
	vals := map[string]any{}
	for _, c := range []string{"key_check", "wrapped_keys", "origin", "created_at", "rotated_at"} {
		raw, ok := row[c]
		if !ok {
			return fmt.Errorf("sqlstore: import: keyring line lacks %s", c)
		}
		v, err := importValue(raw)
		if err != nil {
			return fmt.Errorf("sqlstore: import: keyring %s: %w", c, err)
		}
		vals[c] = v
	}
	var current []byte
	err := tx.QueryRowContext(ctx, "SELECT key_check FROM keyring WHERE id = 1").Scan(&current)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return translate(err, "import")
	}
	exported, _ := vals["key_check"].([]byte)
	if current != nil && subtle.ConstantTimeCompare(current, exported) != 1 {
		return ErrImportMasterKey
	}
	var instances int
	if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM instances").Scan(&instances); err != nil {
		return translate(err, "import")
	}
	if instances > 0 {
		return errors.New("sqlstore: import: the export's data keys differ from this store's, which already holds instances; import into an empty store, or into the store the export came from")
	}
	q := "INSERT INTO keyring (id, key_check, wrapped_keys, origin, created_at, rotated_at) VALUES (1, ?, ?, ?, ?, ?) " +
		"ON CONFLICT (id) DO UPDATE SET key_check = excluded.key_check, wrapped_keys = excluded.wrapped_keys, " +
		"origin = excluded.origin, created_at = excluded.created_at, rotated_at = excluded.rotated_at"
	_, err = tx.ExecContext(ctx, s.d.rebind(q), vals["key_check"], vals["wrapped_keys"], vals["origin"], vals["created_at"], vals["rotated_at"])
	return translate(err, "import")
}

// lockChainForWebhook locks the audit chain head of the instance a
// webhook row belongs to, as an audited webhook change does: a group
// commit on another node reuses its read of an instance's endpoints while
// it holds that lock (see ListWebhooks), so an endpoint must not commit
// under it. (On SQLite the import's write lock already excludes a batch.
// The row's insert changes the instance's webhook generation, by
// trigger, which ends later batches' reuse.)
func (s *Store) lockChainForWebhook(ctx context.Context, sqlTx *sql.Tx, names []string, args []any) error {
	i := slices.Index(names, "instance_id")
	if i < 0 {
		return errors.New("webhooks row has no instance_id")
	}
	id, ok := args[i].(string)
	if !ok {
		return errors.New("webhooks row has a non-text instance_id")
	}
	_, err := (&tx{sqlTx: sqlTx, d: s.d}).chainHead(ctx, id)
	return err
}

package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ErrBackupNeedsSQLite is returned by Backup on PostgreSQL, whose own tools
// (pg_dump) take a consistent online copy.
var ErrBackupNeedsSQLite = errors.New("sqlstore: backup copies a SQLite store; back PostgreSQL up with pg_dump")

// migrationsTable is goose's bookkeeping table; a file without it is not a
// keyward database.
const migrationsTable = "goose_db_version"

// Backup writes a consistent copy of the SQLite store to path, which must
// not exist yet; the file is created with mode 0600 since it holds digests
// and sealed secrets. VACUUM INTO reads inside one read transaction, so the
// copy is a snapshot even while other connections (or processes) write, and
// it does not hold the write lock. The copy is written next to path and
// renamed into place, so path never names a half-written file.
func (s *Store) Backup(ctx context.Context, path string) error {
	if s.d.name != "sqlite" {
		return ErrBackupNeedsSQLite
	}
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("sqlstore: backup: %s already exists; choose a new file", path)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("sqlstore: backup: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".partial-*")
	if err != nil {
		return fmt.Errorf("sqlstore: backup: %w", err)
	}
	tmpName := tmp.Name()
	// CreateTemp makes the file 0600 and empty, which VACUUM INTO accepts.
	if err := tmp.Close(); err != nil {
		os.Remove(tmpName)
		return fmt.Errorf("sqlstore: backup: %w", err)
	}
	// The writer connection: the readers are query_only, which refuses
	// VACUUM. VACUUM INTO only reads this database, so writers queue behind
	// it for no longer than the copy takes.
	if _, err := s.writer.ExecContext(ctx, "VACUUM INTO ?", tmpName); err != nil {
		os.Remove(tmpName)
		return fmt.Errorf("sqlstore: backup: %w", err)
	}
	if err := os.Chmod(tmpName, 0o600); err != nil {
		os.Remove(tmpName)
		return fmt.Errorf("sqlstore: backup: %w", err)
	}
	if err := os.Rename(tmpName, path); err != nil {
		os.Remove(tmpName)
		return fmt.Errorf("sqlstore: backup: %w", err)
	}
	return nil
}

// CheckSQLiteBackup reports the schema version of the keyward SQLite
// database at path, or an error saying why the file is not one.
func CheckSQLiteBackup(ctx context.Context, path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: restore: %w", err)
	}
	header := make([]byte, 16)
	_, err = io.ReadFull(f, header)
	f.Close()
	if err != nil || string(header) != "SQLite format 3\x00" {
		return 0, fmt.Errorf("sqlstore: restore: %s is not a SQLite database", path)
	}
	uri := "file:" + strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path) + "?mode=ro&_pragma=query_only(1)"
	db, err := sql.Open("sqlite", uri)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: restore: %w", err)
	}
	defer db.Close()
	var version sql.NullInt64
	err = db.QueryRowContext(ctx, "SELECT max(version_id) FROM "+migrationsTable+" WHERE is_applied").Scan(&version)
	if err != nil || !version.Valid || version.Int64 < 1 {
		return 0, fmt.Errorf("sqlstore: restore: %s is a SQLite database but not a keyward one (no migrations table)", path)
	}
	var ok string
	if err := db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&ok); err != nil || ok != "ok" {
		return 0, fmt.Errorf("sqlstore: restore: %s fails SQLite's integrity check", path)
	}
	if latest := latestMigration("sqlite"); version.Int64 > latest {
		return 0, fmt.Errorf("sqlstore: restore: %s has schema version %d, newer than this binary's %d; restore with the keyward that made it", path, version.Int64, latest)
	}
	return version.Int64, nil
}

// RestoreSQLite copies the keyward SQLite backup at from to the database
// file at to, replacing it (and its WAL) only when force is set. The copy
// lands under a temporary name first, so a failed restore leaves the old
// database untouched. No store may have the target open.
func RestoreSQLite(ctx context.Context, from, to string, force bool) error {
	if _, err := CheckSQLiteBackup(ctx, from); err != nil {
		return err
	}
	if fi, err := os.Stat(to); err == nil && fi.Size() > 0 && !force {
		return fmt.Errorf("sqlstore: restore: %s already holds a database; pass --force to replace it", to)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
		return fmt.Errorf("sqlstore: restore: %w", err)
	}
	src, err := os.Open(from)
	if err != nil {
		return fmt.Errorf("sqlstore: restore: %w", err)
	}
	defer src.Close()
	tmp, err := os.CreateTemp(filepath.Dir(to), "."+filepath.Base(to)+".restoring-*")
	if err != nil {
		return fmt.Errorf("sqlstore: restore: %w", err)
	}
	tmpName := tmp.Name()
	_, err = io.Copy(tmp, src)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmpName)
		return fmt.Errorf("sqlstore: restore: %w", err)
	}
	// A WAL left by the old database would be replayed over the restored
	// one; it belongs to the file being replaced.
	for _, suffix := range []string{"-wal", "-shm"} {
		if err := os.Remove(to + suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
			os.Remove(tmpName)
			return fmt.Errorf("sqlstore: restore: %w", err)
		}
	}
	if err := os.Rename(tmpName, to); err != nil {
		os.Remove(tmpName)
		return fmt.Errorf("sqlstore: restore: %w", err)
	}
	return nil
}

// latestMigration is the highest migration number embedded for dialect.
func latestMigration(dialect string) int64 {
	entries, _ := fs.ReadDir(migrations, "migrations/"+dialect)
	var latest int64
	for _, e := range entries {
		var n int64
		if _, err := fmt.Sscanf(e.Name(), "%d_", &n); err == nil && n > latest {
			latest = n
		}
	}
	return latest
}

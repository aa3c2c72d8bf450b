package sqlstore

import "context"

// RowCount counts every row of table, whatever its instance, so tests can
// see what a cascade left behind where no Tx method reads.
func RowCount(ctx context.Context, s *Store, table string) (int, error) {
	var n int
	err := s.reader.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table).Scan(&n)
	return n, err
}

// Exec runs a statement on the writer outside any Tx, as someone editing
// the database behind keyward's back would.
func Exec(ctx context.Context, s *Store, query string, args ...any) error {
	_, err := s.writer.ExecContext(ctx, s.d.rebind(query), args...)
	return err
}

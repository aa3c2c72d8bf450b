package sqlstore

import "context"

// RowCount counts every row of table, whatever its instance, so tests can
// see what a cascade left behind where no Tx method reads.
func RowCount(ctx context.Context, s *Store, table string) (int, error) {
	var n int
	err := s.reader.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table).Scan(&n)
	return n, err
}

package sqlstore

import (
	"database/sql"
	"strconv"
	"strings"
	"sync"

	"github.com/pressly/goose/v3"
)

// dialect holds what really differs between the engines; everything else is
// shared SQL.
type dialect struct {
	name   string        // "sqlite" or "postgres", also the migrations directory
	goose  goose.Dialect // how goose records applied migrations
	dollar bool          // placeholders are $1..$n rather than ?
	// readTx starts View transactions. PostgreSQL needs repeatable read for
	// a page and its total count to come from one snapshot; a SQLite read
	// transaction always is one.
	readTx  sql.TxOptions
	rebinds sync.Map // query → rebound query
}

func newSQLiteDialect() *dialect {
	return &dialect{name: "sqlite", goose: goose.DialectSQLite3, readTx: sql.TxOptions{ReadOnly: true}}
}

func newPostgresDialect() *dialect {
	return &dialect{
		name:   "postgres",
		goose:  goose.DialectPostgres,
		dollar: true,
		readTx: sql.TxOptions{ReadOnly: true, Isolation: sql.LevelRepeatableRead},
	}
}

// rebind turns the ? placeholders of query into $1..$n when the dialect
// needs it. Queries hold no ? inside string literals.
func (d *dialect) rebind(query string) string {
	if !d.dollar {
		return query
	}
	if q, ok := d.rebinds.Load(query); ok {
		return q.(string)
	}
	var b strings.Builder
	n := 0
	for _, part := range strings.SplitAfter(query, "?") {
		if p, ok := strings.CutSuffix(part, "?"); ok {
			n++
			b.WriteString(p + "$" + strconv.Itoa(n))
		} else {
			b.WriteString(part)
		}
	}
	d.rebinds.Store(query, b.String())
	return b.String()
}

package sqlite

import (
	"context"
	"fmt"
	"strconv"

	"github.com/creditkit/credits"
	"github.com/creditkit/credits/sqlstore/internal/core"
)

// ReadFeed reads the entries after cursor in rowid order: SQLite has one
// writer at a time, so rowids are given in commit order and a later read
// never finds an entry behind one it returned. A cursor is a rowid.
func (d *driver) ReadFeed(ctx context.Context, db core.Querier, cursor string, limit int) ([]credits.FeedItem, error) {
	var after int64
	if cursor != "" {
		n, err := strconv.ParseInt(cursor, 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%w: feed cursor %q", credits.ErrInvalidRequest, cursor)
		}
		after = n
	}
	rows, err := db.QueryContext(ctx, fmt.Sprintf("SELECT e.rowid, %s FROM %s e WHERE e.rowid > ?1 ORDER BY e.rowid LIMIT ?2",
		core.EntryColumns("e"), d.q.entries), after, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: feed: %w", err)
	}
	defer rows.Close()
	var out []credits.FeedItem
	var derr error
	err = core.ScanRows(rows, 1+len(core.Entries.Columns), func(vals []any) {
		e, err := core.DecodeEntry(vals[1:])
		if err != nil && derr == nil {
			derr = err
		}
		id, _ := vals[0].(int64)
		out = append(out, credits.FeedItem{Cursor: strconv.FormatInt(id, 10), Entry: e})
	})
	if err == nil {
		err = derr
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: feed: %w", err)
	}
	return out, nil
}

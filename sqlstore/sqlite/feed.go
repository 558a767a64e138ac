package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/creditkit/credits"
	"github.com/creditkit/credits/sqlstore/internal/core"
)

// ReadFeed reads the entries after cursor in rowid order: SQLite has one
// writer at a time, so rowids are given in commit order and a later read
// never finds an entry behind one it returned. A cursor names the last
// entry read by its key ("<seq>|<account>"), which the primary key turns
// into its rowid at each read: VACUUM may renumber the rowids of a table
// without an INTEGER PRIMARY KEY (keeping their order), and a stored
// cursor must survive it.
func (d *driver) ReadFeed(ctx context.Context, db core.Querier, cursor string, limit int) ([]credits.FeedItem, error) {
	var after int64
	if cursor != "" {
		seq, account, ok := strings.Cut(cursor, "|")
		n, err := strconv.ParseInt(seq, 10, 64)
		if !ok || err != nil || n < 1 {
			return nil, fmt.Errorf("%w: feed cursor %q", credits.ErrInvalidRequest, cursor)
		}
		err = db.QueryRowContext(ctx, fmt.Sprintf("SELECT rowid FROM %s WHERE account = ?1 AND seq = ?2", d.q.entries), account, n).Scan(&after)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("%w: feed cursor %q names no entry", credits.ErrInvalidRequest, cursor)
		}
		if err != nil {
			return nil, fmt.Errorf("sqlstore: feed: %w", err)
		}
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
		out = append(out, credits.FeedItem{Cursor: strconv.FormatInt(e.Seq, 10) + "|" + e.Account, Entry: e})
	})
	if err == nil {
		err = derr
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: feed: %w", err)
	}
	return out, nil
}

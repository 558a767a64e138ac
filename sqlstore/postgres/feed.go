package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"

	"github.com/creditkit/credits"
	"github.com/creditkit/credits/sqlstore/internal/core"
)

// The feed on PostgreSQL.
//
// A transaction may commit after another that wrote later, so no number
// taken when an entry is written says "everything before me is
// committed". The reader compares transaction snapshots instead
// (pg_current_snapshot: the transactions committed at an instant). Each
// entry keeps the ID of the transaction that wrote it (entries.xid, NULL
// for entries written before schema v8). A cursor names a window: the
// entries of the transactions visible in snapshot "to" and not in
// snapshot "from", read in (account, seq) order from "after". A
// transaction still open when "to" was taken is not in the window; it is
// in a later one, whatever its ID. Each account's entries come in Seq
// order: a transaction that wrote an account's entry after another's
// commit is visible in every snapshot that shows the later one.
//
// The first window ("" cursor) is everything visible in the first
// snapshot, with the entries written before schema v8, read through the
// primary key. Later windows are usually a few transactions, found through
// the index on xid (from "from"'s xmin).
//
// A cursor is "<from>|<to>|<seq>|<account>": from and to are snapshots in
// their text form (to empty: take a new one; from empty: the first
// window), account and seq the last entry read in the window (seq 0:
// none). The account is last, so that it may contain "|".

type feedCursor struct {
	from, to string
	account  string
	seq      int64
}

func parseFeedCursor(s string) (feedCursor, error) {
	if s == "" {
		return feedCursor{}, nil
	}
	parts := strings.SplitN(s, "|", 4)
	if len(parts) != 4 {
		return feedCursor{}, fmt.Errorf("%w: feed cursor %q", credits.ErrInvalidRequest, s)
	}
	seq, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil || seq < 0 || !snapshotText(parts[0]) || !snapshotText(parts[1]) {
		return feedCursor{}, fmt.Errorf("%w: feed cursor %q", credits.ErrInvalidRequest, s)
	}
	return feedCursor{from: parts[0], to: parts[1], seq: seq, account: parts[3]}, nil
}

func (c feedCursor) String() string {
	return c.from + "|" + c.to + "|" + strconv.FormatInt(c.seq, 10) + "|" + c.account
}

// snapshotText reports whether s is empty or a snapshot's text form
// ("xmin:xmax:xip,…").
func snapshotText(s string) bool {
	return strings.Trim(s, "0123456789:,") == "" && (s == "" || strings.Count(s, ":") == 2)
}

func (d *driver) ReadFeed(ctx context.Context, db core.Querier, cursor string, limit int) ([]credits.FeedItem, error) {
	c, err := parseFeedCursor(cursor)
	if err != nil {
		return nil, err
	}
	entries := d.q.names.Table("entries")
	// At most a few windows per call: the current one to its end, then
	// the next (an empty window moves on at once).
	for range 3 {
		if c.to == "" {
			// A new snapshot; and a check that the IDs the entries and
			// the cursor carry are this cluster's: after a dump and
			// restore into another cluster they are not (its counter
			// starts lower), and the windows would skip entries silently.
			var sane bool
			if err := db.QueryRowContext(ctx, fmt.Sprintf(
				"SELECT s::text, coalesce((SELECT max(xid) FROM %s) < pg_snapshot_xmax(s), true) AND ($1 = '' OR pg_snapshot_xmax($1::pg_snapshot) <= pg_snapshot_xmax(s)) FROM pg_current_snapshot() s",
				entries), c.from).Scan(&c.to, &sane); err != nil {
				return nil, fmt.Errorf("sqlstore: feed snapshot: %w", err)
			}
			if !sane {
				return nil, fmt.Errorf("sqlstore: feed: the entries or the cursor carry transaction IDs ahead of this database's (was it restored from a dump into another cluster? see the schema v8 migration's note)")
			}
		}
		var query string
		args := []any{c.to, c.account, c.seq, limit}
		if c.from == "" {
			// The first window: everything visible in "to", and the
			// entries from before the feed, in primary key order.
			query = fmt.Sprintf("SELECT %s FROM %s e WHERE (e.account, e.seq) > ($2, $3) AND (e.xid IS NULL OR pg_visible_in_snapshot(e.xid, $1::pg_snapshot)) ORDER BY e.account, e.seq LIMIT $4",
				core.EntryColumns("e"), entries)
		} else {
			// What "from" does not show is what started at or after its
			// xmax, or was in progress then (its xip): two lookups on the
			// xid index, kept apart (MATERIALIZED) so that the planner
			// never trades them for a walk of the primary key.
			cols := core.EntryColumns("e")
			query = fmt.Sprintf(`WITH w AS MATERIALIZED (
SELECT %[1]s FROM %[2]s e WHERE e.xid >= pg_snapshot_xmax($5::pg_snapshot) AND e.xid < pg_snapshot_xmax($1::pg_snapshot) AND pg_visible_in_snapshot(e.xid, $1::pg_snapshot)
UNION ALL
SELECT %[1]s FROM %[2]s e WHERE e.xid = ANY(ARRAY(SELECT pg_snapshot_xip($5::pg_snapshot))) AND pg_visible_in_snapshot(e.xid, $1::pg_snapshot))
SELECT * FROM w WHERE (w.account, w.seq) > ($2, $3) ORDER BY w.account, w.seq LIMIT $4`, cols, entries)
			args = append(args, c.from)
		}
		rows, err := db.QueryContext(ctx, query, args...)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: feed: %w", err)
		}
		out, err := scanFeed(rows, c)
		if err != nil {
			return nil, err
		}
		if len(out) > 0 {
			return out, nil
		}
		// The window is read: the next starts where it ended.
		c = feedCursor{from: c.to}
	}
	return nil, nil
}

func scanFeed(rows *sql.Rows, c feedCursor) ([]credits.FeedItem, error) {
	defer rows.Close()
	var out []credits.FeedItem
	var derr error
	err := core.ScanRows(rows, len(core.Entries.Columns), func(vals []any) {
		e, err := core.DecodeEntry(vals)
		if err != nil && derr == nil {
			derr = err
		}
		c.account, c.seq = e.Account, e.Seq
		out = append(out, credits.FeedItem{Cursor: c.String(), Entry: e})
	})
	if err == nil {
		err = derr
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: feed: %w", err)
	}
	return out, nil
}

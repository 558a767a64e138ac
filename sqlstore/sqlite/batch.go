package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/creditkit/credits/sqlstore/internal/core"
)

// A batch runs on the store's one connection in a write transaction
// (BEGIN IMMEDIATE), its statements prepared once: modernc parses a
// statement's SQL on every call otherwise, which was a third of a batch's
// time. In-process, a statement costs no round trip, so rows are written
// with plain parameters: updates row by row, inserts in multi-row chunks.

// driver is the SQLite side of the store.
type driver struct {
	db *sql.DB
	q  queries

	mu       sync.Mutex
	prepared map[string]*sql.Stmt
}

func newDriver(db *sql.DB, n core.Names) *driver {
	return &driver{db: db, q: newQueries(n), prepared: map[string]*sql.Stmt{}}
}

// queries are the store's statements, written once from the descriptors.
type queries struct {
	lock, holds, buckets, records string
	entries                       string // the entries table, for the feed
	// updates[i] updates one row of part i (the updated parts); inserts[i][j]
	// inserts insertChunks[j] rows of part i (the others).
	updates [core.NumParts]string
	inserts [core.NumParts][]string
}

// insertChunks are the numbers of rows inserted by one statement: a
// batch's rows go in chunks of these sizes, largest first.
var insertChunks = []int{16, 4, 1}

func newQueries(n core.Names) queries {
	accounts, buckets, holds := n.Table("accounts"), n.Table("buckets"), n.Table("holds")
	var q queries
	q.entries = n.Table("entries")
	// The write transaction holds the database's one write lock: the
	// accounts need no row lock.
	q.lock = fmt.Sprintf("SELECT %s FROM %s a WHERE %s ORDER BY a.id", core.Columns("a", &core.Accounts.Schema), accounts, in("a.id", "?1"))
	named := in("h.id", "?2") + " AND " + in("h.account", "?1")
	due := in("h.account", "?1") + " AND " + core.DueHold("h", "?3")
	q.holds = fmt.Sprintf("SELECT %[1]s FROM %[2]s h WHERE %[3]s\nUNION ALL\nSELECT %[1]s FROM %[2]s h WHERE %[4]s", core.Columns("h", &core.Holds.Schema), holds, named, due)
	portions := "SELECT json_extract(p.value, '$.bucket') FROM %s h, json_each(h.portions) p WHERE %s"
	q.buckets = strings.Join([]string{
		fmt.Sprintf("SELECT %s FROM %s b WHERE %s AND %s", core.Columns("b", &core.Buckets.Schema), buckets, in("b.account", "?1"), core.LiveBucket("b")),
		fmt.Sprintf("SELECT %s FROM %s b WHERE b.id IN (%s)", core.Columns("b", &core.Buckets.Schema), buckets, fmt.Sprintf(portions, holds, named)),
		fmt.Sprintf("SELECT %s FROM %s b WHERE b.id IN (%s)", core.Columns("b", &core.Buckets.Schema), buckets, fmt.Sprintf(portions, holds, due)),
		fmt.Sprintf("SELECT %s FROM %s b WHERE %s AND %s", core.Columns("b", &core.Buckets.Schema), buckets, in("b.id", "?4"), in("b.account", "?1")),
	}, "\nUNION ALL\n")
	q.records = fmt.Sprintf("SELECT %s FROM json_each(?1) k JOIN %s r ON r.account = json_extract(k.value, '$[0]') AND r.key = json_extract(k.value, '$[1]')",
		core.Columns("r", &core.Records.Schema), n.Table("records"))

	for i, part := range core.Parts {
		table, names := n.Table(part.Table.Name), part.Table.Names
		if part.Update {
			ps := make([]string, len(names)-1)
			for j := range ps {
				ps[j] = param(j + 2)
			}
			q.updates[i] = fmt.Sprintf("UPDATE %s SET (%s) = (%s) WHERE %s = ?1", table, strings.Join(names[1:], ", "), strings.Join(ps, ", "), names[0])
			if i == core.PartAccounts {
				// The version the row replaces: always the one loaded, under
				// the write lock (a check, not a guard).
				q.updates[i] += fmt.Sprintf(" AND version = %s - 1", param(core.VersionColumn+1))
			}
			continue
		}
		for _, rows := range insertChunks {
			vals := make([]string, rows)
			for r := range vals {
				ps := make([]string, len(names))
				for j := range ps {
					ps[j] = param(r*len(names) + j + 1)
				}
				vals[r] = "(" + strings.Join(ps, ", ") + ")"
			}
			q.inserts[i] = append(q.inserts[i], fmt.Sprintf("INSERT INTO %s (%s) VALUES %s", table, strings.Join(names, ", "), strings.Join(vals, ", ")))
		}
	}
	return q
}

// in is the condition "expr is one of the JSON list param".
func in(expr, p string) string { return expr + " IN (SELECT value FROM json_each(" + p + "))" }

func jsonList(xs []string) string {
	if xs == nil {
		return "[]"
	}
	b, _ := json.Marshal(xs)
	return string(b)
}

// Prepare prepares the store's statements, once the tables exist (the
// store calls it after migrating or checking the schema, when no
// transaction holds the one connection); a statement that does not prepare
// runs unprepared.
func (d *driver) Prepare(ctx context.Context) {
	all := []string{d.q.lock, d.q.holds, d.q.buckets, d.q.records}
	for i := range core.Parts {
		all = append(all, d.q.inserts[i]...)
		if d.q.updates[i] != "" {
			all = append(all, d.q.updates[i])
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, q := range all {
		if d.prepared[q] != nil {
			continue
		}
		if st, err := d.db.PrepareContext(ctx, q); err == nil {
			d.prepared[q] = st
		}
	}
}

// stmt returns the prepared statement of query, or nil.
func (d *driver) stmt(query string) *sql.Stmt {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.prepared[query]
}

// Close closes the prepared statements.
func (d *driver) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for q, st := range d.prepared {
		_ = st.Close()
		delete(d.prepared, q)
	}
}

// sqliteTx is a batch's transaction: the store's own, or the caller's.
type sqliteTx struct {
	d      *driver
	tx     *sql.Tx
	joined bool
	done   bool
}

func (d *driver) Begin(ctx context.Context, db *sql.DB, _ bool) (core.Tx, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	return &sqliteTx{d: d, tx: tx}, nil
}

func (d *driver) Join(tx *sql.Tx) core.Tx { return &sqliteTx{d: d, tx: tx, joined: true} }

func (t *sqliteTx) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := t.d.stmt(query); st != nil {
		return t.tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	return t.tx.QueryContext(ctx, query, args...)
}

func (t *sqliteTx) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := t.d.stmt(query); st != nil {
		return t.tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return t.tx.ExecContext(ctx, query, args...)
}

func (t *sqliteTx) Load(ctx context.Context, a core.LoadArgs, l *core.Load, _ bool) error {
	pairs := make([][2]string, len(a.Keys))
	for i := range a.Keys {
		pairs[i] = [2]string{a.KeyAccounts[i], a.Keys[i]}
	}
	pairsJSON, err := json.Marshal(pairs)
	if err != nil {
		return err
	}
	accounts, holds := jsonList(a.Accounts), jsonList(a.Holds)
	for _, r := range []struct {
		what string
		sql  string
		args []any
		row  func([]any)
		n    int
	}{
		{"accounts", t.d.q.lock, []any{accounts}, l.Account, len(core.Accounts.Columns)},
		{"holds", t.d.q.holds, []any{accounts, holds, a.Due}, l.Hold, len(core.Holds.Columns)},
		{"buckets", t.d.q.buckets, []any{accounts, holds, a.Due, jsonList(a.Buckets)}, l.Bucket, len(core.Buckets.Columns)},
		{"records", t.d.q.records, []any{string(pairsJSON)}, l.Record, len(core.Records.Columns)},
	} {
		if err := t.rows(ctx, r.sql, r.args, r.n, r.row); err != nil {
			return core.Transient("load "+r.what, err)
		}
	}
	return nil
}

func (t *sqliteTx) rows(ctx context.Context, query string, args []any, n int, row func([]any)) error {
	rows, err := t.query(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	return core.ScanRows(rows, n, row)
}

func (t *sqliteTx) Write(ctx context.Context, w *core.Writes) error {
	for i, rows := range w {
		if core.Parts[i].Update { // one row at a time
			for _, vals := range rows {
				res, err := t.exec(ctx, t.d.q.updates[i], vals...)
				if err != nil {
					return writeError(err)
				}
				if n, err := res.RowsAffected(); err != nil || n != 1 {
					return fmt.Errorf("sqlstore: write: %s row %v changed under the write lock (%d rows, %v)", core.Parts[i].Table.Name, vals[0], n, err)
				}
			}
			continue
		}
		for j, n := range insertChunks {
			for ; len(rows) >= n; rows = rows[n:] {
				var args []any
				for _, vals := range rows[:n] {
					args = append(args, vals...)
				}
				if _, err := t.exec(ctx, t.d.q.inserts[i][j], args...); err != nil {
					return writeError(err)
				}
			}
		}
	}
	return nil
}

// writeError is a write statement's error: transient unless SQLite
// refused the row (a violated constraint is refused again on every retry).
func writeError(err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_CONSTRAINT {
		return fmt.Errorf("sqlstore: write refused: %w", err)
	}
	return core.Transient("write", err)
}

func (t *sqliteTx) Commit(context.Context) error {
	if t.joined {
		return nil
	}
	t.done = true
	return t.tx.Commit()
}

func (t *sqliteTx) Rollback() {
	if !t.joined && !t.done {
		_ = t.tx.Rollback()
	}
}

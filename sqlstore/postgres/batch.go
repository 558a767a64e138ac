package postgres

import (
	"context"
	"database/sql"
	sqldriver "database/sql/driver"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/creditkit/credits/sqlstore/internal/core"
)

// A batch's transaction, pipelined through pgx: Load sends BEGIN, the lock
// and the loads in one round trip (the loads, statements of their own after
// the lock, see every change committed before it was granted); Commit sends
// the write with COMMIT in the second. Inside the caller's transaction
// (WithTx) the same statements run one by one.

// pgTx is a batch's transaction on a connection of the store's pool.
type pgTx struct {
	d        *driver
	conn     *sql.Conn
	readOnly bool
	inTx     bool
	write    string
	args     []any
}

func (d *driver) Begin(ctx context.Context, db *sql.DB, readOnly bool) (core.Tx, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	return &pgTx{d: d, conn: conn, readOnly: readOnly}, nil
}

// on runs f on the pgx connection; a connection f leaves closed is
// dropped from the pool.
func (t *pgTx) on(f func(pc *pgx.Conn) error) error {
	var ferr error
	err := t.conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			ferr = fmt.Errorf("sqlstore/postgres: not a pgx connection: %T", dc)
			return nil
		}
		pc := sc.Conn()
		ferr = f(pc)
		if pc.IsClosed() {
			t.inTx = false
			return sqldriver.ErrBadConn // database/sql drops the connection
		}
		return nil
	})
	if ferr == nil && err != nil && !errors.Is(err, sqldriver.ErrBadConn) {
		ferr = err
	}
	return ferr
}

func (t *pgTx) Load(ctx context.Context, a core.LoadArgs, l *core.Load, lock bool) error {
	return t.on(func(pc *pgx.Conn) error {
		var b pgx.Batch
		begin := "BEGIN"
		if t.readOnly {
			begin = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
		}
		b.Queue(begin)
		reads := t.d.loads(a, l, lock)
		for _, r := range reads {
			b.Queue(r.sql, r.args...)
		}
		if t.readOnly {
			b.Queue("COMMIT") // a snapshot: nothing to keep open
		}
		br := pc.SendBatch(ctx, &b)
		t.inTx = !t.readOnly
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			return core.Transient("begin", err)
		}
		for _, r := range reads {
			if err := readRows(br, r); err != nil {
				_ = br.Close()
				return core.Transient("load "+r.what, err)
			}
		}
		if err := br.Close(); err != nil {
			return core.Transient("load", err)
		}
		return nil
	})
}

// load is one statement of a batch's load.
type load struct {
	what string
	sql  string
	args []any
	row  func(vals []any)
	n    int // columns
}

func (d *driver) loads(a core.LoadArgs, l *core.Load, lock bool) []load {
	accounts := d.q.view
	if lock {
		accounts = d.q.lock
	}
	return []load{
		{"accounts", accounts, []any{a.Accounts}, l.Account, len(core.Accounts.Columns)},
		{"holds", d.q.holds, []any{a.Accounts, a.Holds, a.Due}, l.Hold, len(core.Holds.Columns)},
		{"buckets", d.q.buckets, []any{a.Accounts, a.Holds, a.Due, a.Buckets}, l.Bucket, len(core.Buckets.Columns)},
		{"records", d.q.records, []any{a.KeyAccounts, a.Keys}, l.Record, len(core.Records.Columns)},
	}
}

// readRows reads the next result of a batch, a query, row by row.
func readRows(br pgx.BatchResults, r load) error {
	rs, err := br.Query()
	if err != nil {
		return err
	}
	defer rs.Close()
	return core.ScanRows(rs, r.n, r.row)
}

func (t *pgTx) Write(_ context.Context, w *core.Writes) error {
	t.write, t.args = t.d.write(w, false, nil, 0)
	return nil
}

func (t *pgTx) Commit(ctx context.Context) error {
	return t.on(func(pc *pgx.Conn) error {
		var b pgx.Batch
		if t.write != "" {
			b.Queue(t.write, t.args...)
		}
		b.Queue("COMMIT")
		br := pc.SendBatch(ctx, &b)
		if t.write != "" {
			if _, err := br.Exec(); err != nil {
				_ = br.Close()
				// The server answers the write and the COMMIT together:
				// only the server refusing the write says that nothing was
				// committed. A lost connection or a timeout here may have
				// come after the commit.
				var pe *pgconn.PgError
				if errors.As(err, &pe) {
					// A data exception or a violated constraint (classes 22,
					// 23) is refused again on every retry.
					class := pe.Code[:min(2, len(pe.Code))]
					return core.WroteNothing(err, class != "22" && class != "23")
				}
				return err
			}
		}
		_, err := br.Exec()
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			t.inTx = false
		}
		return err
	})
}

func (t *pgTx) Rollback() {
	if t.inTx {
		_ = t.on(func(pc *pgx.Conn) error {
			// Whatever went wrong, leave the connection outside a
			// transaction; a connection that cannot is closed, and
			// database/sql drops it.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, err := pc.Exec(ctx, "ROLLBACK"); err != nil {
				_ = pc.Close(ctx)
			}
			t.inTx = false
			return nil
		})
	}
	_ = t.conn.Close()
}

// joinedTx runs a batch's statements in the caller's transaction.
type joinedTx struct {
	d  *driver
	tx *sql.Tx
}

func (d *driver) Join(tx *sql.Tx) core.Tx { return &joinedTx{d: d, tx: tx} }

func (j *joinedTx) Load(ctx context.Context, a core.LoadArgs, l *core.Load, lock bool) error {
	for _, r := range j.d.loads(a, l, lock) {
		if err := queryRows(ctx, j.tx, r); err != nil {
			return fmt.Errorf("sqlstore: load %s: %w", r.what, err)
		}
	}
	return nil
}

func queryRows(ctx context.Context, q core.Querier, r load) error {
	rows, err := q.QueryContext(ctx, r.sql, r.args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	return core.ScanRows(rows, r.n, r.row)
}

func (j *joinedTx) Write(ctx context.Context, w *core.Writes) error {
	query, args := j.d.write(w, false, nil, 0)
	if _, err := j.tx.ExecContext(ctx, query, args...); err != nil {
		return fmt.Errorf("sqlstore: write: %w", err)
	}
	return nil
}

func (j *joinedTx) Commit(context.Context) error { return nil }
func (j *joinedTx) Rollback()                    {}

// WriteGuarded implements core.Guarded: the batch's write as one
// autocommit statement (see driver.write).
func (d *driver) WriteGuarded(ctx context.Context, db *sql.DB, w *core.Writes, known []string, due int64) (bool, error) {
	query, args := d.write(w, true, known, due)
	_, err := db.ExecContext(ctx, query, args...)
	var se sqlState
	if errors.As(err, &se) && se.SQLState() == "22012" {
		return false, nil // a guard did not hold: the statement wrote nothing
	}
	return err == nil, err
}

// Refused implements core.Guarded: an error the server reported for the
// statement. A FATAL or PANIC one ends the session and may come after the
// statement committed (a backend terminated just then), so it says
// nothing, as a lost connection does not.
func (d *driver) Refused(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Severity != "FATAL" && pe.Severity != "PANIC"
}

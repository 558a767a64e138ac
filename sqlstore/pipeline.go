package sqlstore

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/creditkit/credits"
)

// On PostgreSQL a batch takes two round trips, pipelined through pgx: one
// sends BEGIN, the query that locks the batch's accounts and the query that
// loads their state, and reads both results; the other sends the write
// and COMMIT. (The load runs after the lock, in a statement of its own, so
// it sees every change committed before the lock was granted.)

// runBatchPipelined runs the batch as runBatch does, on a pgx connection;
// ok is false when the connection is not one (an application's *sql.DB on
// another driver), and runBatch then uses database/sql.
func (s *Store) runBatchPipelined(ctx context.Context, live []*pending) (err error, ok bool) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("sqlstore: connect: %w: %w", credits.ErrTransient, err), true
	}
	defer conn.Close()
	ok = true
	rawErr := conn.Raw(func(dc any) error {
		sc, isPgx := dc.(*stdlib.Conn)
		if !isPgx {
			ok = false
			return nil
		}
		pc := sc.Conn()
		err = s.pipelined(ctx, pc, live)
		if pc.IsClosed() {
			return driver.ErrBadConn // database/sql drops the connection
		}
		return nil
	})
	if err == nil && rawErr != nil && !errors.Is(rawErr, driver.ErrBadConn) {
		err = fmt.Errorf("sqlstore: %w: %w", credits.ErrTransient, rawErr)
	}
	return err, ok
}

func (s *Store) pipelined(ctx context.Context, pc *pgx.Conn, live []*pending) (err error) {
	qs := queriesOf(live)
	states, accounts := newStates(qs)
	inTx := false
	defer func() {
		if inTx && !pc.IsClosed() {
			// Whatever went wrong, leave the connection outside a
			// transaction; a connection that cannot is closed, and
			// database/sql drops it.
			rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, err := pc.Exec(rctx, "ROLLBACK"); err != nil {
				_ = pc.Close(rctx)
			}
		}
	}()

	var b pgx.Batch
	b.Queue("BEGIN")
	b.Queue(s.q.lockAccounts, jsonList(accounts))
	b.Queue(s.q.load, loadArgs(qs)...)
	br := pc.SendBatch(ctx, &b)
	inTx = true
	ld := loader{states: states}
	if _, err := br.Exec(); err != nil {
		_ = br.Close()
		return fmt.Errorf("sqlstore: begin: %w: %w", credits.ErrTransient, err)
	}
	if err := readRows(br, func(r pgx.Rows) error {
		var raw string
		err := r.Scan(&raw)
		ld.row("a", raw)
		return err
	}); err != nil {
		_ = br.Close()
		return fmt.Errorf("sqlstore: lock accounts: %w: %w", credits.ErrTransient, err)
	}
	if err := readRows(br, func(r pgx.Rows) error {
		var kind, raw string
		err := r.Scan(&kind, &raw)
		ld.row(kind, raw)
		return err
	}); err != nil {
		_ = br.Close()
		return fmt.Errorf("sqlstore: load: %w: %w", credits.ErrTransient, err)
	}
	if err := br.Close(); err != nil {
		return fmt.Errorf("sqlstore: load: %w: %w", credits.ErrTransient, err)
	}
	if ld.d.err != nil {
		return ld.d.err
	}

	rows, err := applyAll(live, states)
	if err != nil || rows == nil {
		return err
	}
	query, args, err := s.pgWrite(rows)
	if err != nil {
		return err
	}
	if err := s.fault(false); err != nil {
		return commitError(err)
	}
	var w pgx.Batch
	w.Queue(query, args...)
	w.Queue("COMMIT")
	br = pc.SendBatch(ctx, &w)
	if _, err := br.Exec(); err != nil {
		_ = br.Close()
		// The server answers the write and the COMMIT together: only the
		// server refusing the write says that nothing was committed. A
		// lost connection or a timeout here may have come after the
		// commit.
		var pe *pgconn.PgError
		if errors.As(err, &pe) {
			return fmt.Errorf("sqlstore: write: %w: %w", credits.ErrTransient, err)
		}
		if pc.IsClosed() {
			inTx = false
		}
		return commitError(err)
	}
	_, err = br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if pc.IsClosed() {
			inTx = false
		}
		return commitError(err) // it may or may not have committed
	}
	inTx = false
	if err := s.fault(true); err != nil {
		return commitError(err)
	}
	return nil
}

// readRows reads the next result of a batch, a query, row by row.
func readRows(br pgx.BatchResults, row func(pgx.Rows) error) error {
	rs, err := br.Query()
	if err != nil {
		return err
	}
	defer rs.Close()
	for rs.Next() {
		if err := row(rs); err != nil {
			return err
		}
	}
	return rs.Err()
}

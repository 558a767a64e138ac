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

// On PostgreSQL a batch whose accounts are not all kept (see runBatchKept)
// takes two round trips, pipelined through pgx: one
// sends BEGIN, the query that locks the batch's accounts and the queries
// that load their holds, buckets and records, and reads their results; the
// other sends the write and COMMIT. (The loads run after the lock, in
// statements of their own, so they see every change committed before the
// lock was granted.) Rows come back as typed columns in pgx's binary
// format, one statement per kind of row: no JSON to build or parse.

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
	states, _ := newStates(qs)
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

	args := loadArgs(qs) // account IDs, hold IDs, due, [account, key] pairs
	var b pgx.Batch
	b.Queue("BEGIN")
	b.Queue(s.q.typedLock, args[0])
	b.Queue(s.q.typedHolds, args[0], args[1], args[2])
	b.Queue(s.q.typedBuckets, args[0], args[1], args[2])
	b.Queue(s.q.typedRecords, args[3])
	br := pc.SendBatch(ctx, &b)
	inTx = true
	ld := loader{states: states}
	if _, err := br.Exec(); err != nil {
		_ = br.Close()
		return fmt.Errorf("sqlstore: begin: %w: %w", credits.ErrTransient, err)
	}
	var (
		a  accountRow
		h  holdRow
		bk bucketRow
		rc recordRow
	)
	for _, read := range []struct {
		what string
		dest []any
		add  func()
	}{
		{"lock accounts", a.dest(), func() { ld.account(&a) }},
		{"load holds", h.dest(), func() { ld.hold(&h) }},
		{"load buckets", bk.dest(), func() { ld.bucket(&bk) }},
		{"load records", rc.dest(), func() { ld.record(&rc) }},
	} {
		if err := readRows(br, func(r pgx.Rows) error {
			if err := r.Scan(read.dest...); err != nil {
				return err
			}
			read.add()
			return nil
		}); err != nil {
			_ = br.Close()
			return fmt.Errorf("sqlstore: %s: %w: %w", read.what, credits.ErrTransient, err)
		}
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
	for account, st := range states {
		s.kept.put(account, st)
	}
	if err := s.fault(true); err != nil {
		return commitError(err)
	}
	return nil
}

// runBatchKept runs a batch whose accounts' states are all kept (see "Kept
// states" in statecache.go) in one round trip: it applies the operations to
// the kept states and writes all their changes in one guarded autocommit
// statement. done is false when it wrote nothing and the batch is to run
// on read states (an account is not kept, or a kept state turned out
// stale, or an operation is not to be trusted on it); otherwise err is
// what runBatch returns.
func (s *Store) runBatchKept(ctx context.Context, live []*pending) (err error, done bool) {
	if s.kept == nil {
		return nil, false
	}
	byAccount := map[string][]credits.Query{}
	var accounts []string
	for _, p := range live {
		if _, ok := byAccount[p.q.Account]; !ok {
			accounts = append(accounts, p.q.Account)
		}
		byAccount[p.q.Account] = append(byAccount[p.q.Account], p.q)
	}
	states := make(map[string]*credits.State, len(accounts))
	writes := make([]guarded, len(accounts))
	for i, a := range accounts {
		st, known, ok := s.kept.get(a, byAccount[a])
		if !ok {
			return nil, false
		}
		seen := st.Account.Clone()
		states[a], writes[i] = st, guarded{seen: &seen, known: known}
	}
	s.kept.ran()
	var rows changeRows
	for _, p := range live {
		// Whatever goes wrong on a kept state (a panic, a change that
		// cannot be stored too) runs again on a read state: a record might
		// answer it there.
		ch, err := p.call(states[p.q.Account])
		if !trusted(p.q, ch, err) {
			s.kept.drop(p.q.Account, false)
			return nil, false
		}
		p.err = nil
		if err := rows.add(p.q.Account, ch); err != nil {
			s.kept.drop(p.q.Account, false)
			return nil, false
		}
	}
	for i, a := range accounts {
		writes[i].final = states[a].Account
	}
	dropAll := func(stale bool) {
		for _, a := range accounts {
			s.kept.drop(a, stale)
		}
	}
	if err := s.fault(false); err != nil {
		dropAll(false)
		return commitError(err), true
	}
	wrote, err := s.writeGuarded(ctx, writes, &rows, latestDue(queriesOf(live)))
	if err != nil {
		dropAll(false)
		if refused(err) {
			return nil, false // nothing written: run again on read states
		}
		return commitError(err), true // it may or may not have taken effect
	}
	if !wrote {
		dropAll(false)
		s.kept.stale.Add(1)
		return nil, false
	}
	for _, a := range accounts {
		s.kept.put(a, states[a])
	}
	if err := s.fault(true); err != nil {
		return commitError(err), true
	}
	return nil, true
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

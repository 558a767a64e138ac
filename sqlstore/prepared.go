package sqlstore

import (
	"context"
	"database/sql"
)

// On SQLite every statement the store runs often is prepared once: modernc
// parses a statement's SQL on every call otherwise, which was a third of a
// batch's time. (pgx prepares and caches statements per connection on its
// own.)

// prepare prepares the store's fixed statements on SQLite, once the tables
// exist; a statement that does not prepare (tables not migrated yet) runs
// unprepared.
func (s *Store) prepare(ctx context.Context) {
	if s.dialect != SQLite {
		return
	}
	s.prepMu.Lock()
	defer s.prepMu.Unlock()
	old := s.prepped.Load()
	next := map[string]*sql.Stmt{}
	if old != nil {
		for q, st := range *old {
			next[q] = st
		}
	}
	all := []string{s.q.lockAccounts, s.q.load, s.q.view, s.q.holdAccount, s.q.exists, s.q.accountIDs}
	for i := range rowKinds {
		all = append(all, s.q.rowInserts[i]...)
		if s.q.rowUpdates[i] != "" {
			all = append(all, s.q.rowUpdates[i])
		}
	}
	for _, q := range all {
		if next[q] != nil {
			continue
		}
		if st, err := s.db.PrepareContext(ctx, q); err == nil {
			next[q] = st
		}
	}
	s.prepped.Store(&next)
}

// closePrepared closes the prepared statements.
func (s *Store) closePrepared() {
	s.prepMu.Lock()
	defer s.prepMu.Unlock()
	if m := s.prepped.Swap(nil); m != nil {
		for _, st := range *m {
			_ = st.Close()
		}
	}
}

// on returns ex running the store's prepared statements where it has them.
func (s *Store) on(ex execer) execer {
	m := s.prepped.Load()
	if m == nil {
		return ex
	}
	return &preparedExecer{ex: ex, stmts: *m}
}

type preparedExecer struct {
	ex    execer
	stmts map[string]*sql.Stmt
}

// stmt returns the prepared statement of query, bound to the transaction
// when ex is one.
func (p *preparedExecer) stmt(ctx context.Context, query string) *sql.Stmt {
	st := p.stmts[query]
	if st == nil {
		return nil
	}
	if tx, ok := p.ex.(*sql.Tx); ok {
		return tx.StmtContext(ctx, st)
	}
	return st
}

func (p *preparedExecer) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := p.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return p.ex.ExecContext(ctx, query, args...)
}

func (p *preparedExecer) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := p.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return p.ex.QueryContext(ctx, query, args...)
}

func (p *preparedExecer) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := p.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return p.ex.QueryRowContext(ctx, query, args...)
}

package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/creditkit/credits"
)

// WithTx returns a credits.Store that runs every operation inside tx, a
// transaction the application began on the same database and owns: the
// ledger's writes commit or roll back with the application's own. Use it
// with credits.Ledger.WithStore:
//
//	tx, _ := db.BeginTx(ctx, nil)
//	res, err := ledger.WithStore(store.WithTx(tx)).Reserve(ctx, req)
//	// … insert the job row in tx …
//	tx.Commit()
//
// The returned store never commits, rolls back or retries: a collision or
// an error is the caller's to handle (on PostgreSQL, a failed statement
// aborts tx). The ledger's OnLowBalance hook runs before the caller
// commits. On SQLite, tx must be a write transaction (the DSN's
// _txlock=immediate, as Open sets).
func (s *Store) WithTx(tx *sql.Tx) credits.Store { return &txStore{s: s, tx: tx} }

type txStore struct {
	s  *Store
	tx *sql.Tx
}

func (t *txStore) Update(ctx context.Context, q credits.Query, apply func(*credits.State) (*credits.Change, error)) error {
	_, err := t.s.updateIn(ctx, t.tx, q, apply)
	return err
}

func (t *txStore) View(ctx context.Context, q credits.Query) (*credits.State, error) {
	return t.s.view(ctx, t.tx, q)
}

func (t *txStore) HoldAccount(ctx context.Context, holdID string) (string, error) {
	return t.s.holdAccount(ctx, t.tx, holdID)
}

func (t *txStore) Entries(ctx context.Context, f credits.EntryFilter) ([]credits.Entry, error) {
	return t.s.entries(ctx, t.tx, f)
}

func (t *txStore) DueAccounts(ctx context.Context, now time.Time, limit int) ([]string, error) {
	return t.s.dueAccounts(ctx, t.tx, now, limit)
}

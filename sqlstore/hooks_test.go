package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/creditkit/credits/sqlstore"
	"github.com/creditkit/credits/sqlstore/internal/core"
	"github.com/creditkit/credits/sqlstore/postgres"
	"github.com/creditkit/credits/sqlstore/sqlite"
)

// batcher makes a store a storetest.Batcher: the state machine then runs
// batches of a known order, through core's test hooks.
type batcher struct{ *sqlstore.Store }

func (b batcher) HoldBatches()   { core.PauseBatches(b.Store, true) }
func (b batcher) ResumeBatches() { core.PauseBatches(b.Store, false) }
func (b batcher) Queued() int    { return b.Stats().Queued }

// placeholder returns the store's i-th query parameter.
func placeholder(s *sqlstore.Store) func(int) string {
	return func(i int) string {
		if s.Dialect() == "postgres" {
			return fmt.Sprintf("$%d", i)
		}
		return fmt.Sprintf("?%d", i)
	}
}

// openUnchecked is Open with NoMigrate and without the schema check: for
// tests that build an older schema with core.MigrateTo.
func openUnchecked(ctx context.Context, dsn string, opts sqlstore.Options) (*sqlstore.Store, error) {
	opts.NoMigrate = true
	core.SkipSchemaCheck(&opts)
	return sqlstore.Open(ctx, dsn, &opts)
}

// newOn is New of the dialect's package, on the application's own db.
func newOn(ctx context.Context, db *sql.DB, dialect string, opts *sqlstore.Options) (*sqlstore.Store, error) {
	if dialect == "postgres" {
		return postgres.New(ctx, db, opts)
	}
	return sqlite.New(ctx, db, opts)
}

// Package sqlstore is the SQL [credits.Store]: PostgreSQL (the production
// store, any number of application servers on one database) in package
// [github.com/creditkit/credits/sqlstore/postgres], through pgx, and SQLite
// (the embedded default, pure Go, no cgo) in package
// [github.com/creditkit/credits/sqlstore/sqlite], through modernc.org/sqlite.
// Import the one you use: a program that imports only postgres links no
// SQLite, and one that imports only sqlite links no pgx. Both return the
// same *Store type. This package's [Open] picks the database from a DSN,
// and so links both.
//
// # One executor
//
// Every operation runs as a batch through the same steps, whether alone,
// grouped with concurrent operations (group commit: Options.NoGroupCommit
// turns it off), or inside the caller's transaction ([Store.WithTx]): lock
// the batch's accounts (PostgreSQL: their rows, in ID order; SQLite: the
// write lock) and load their state, apply every operation in Go (the
// ledger's rules are all in package credits), write the merged changes
// (PostgreSQL: one statement), commit once, then answer each caller. On PostgreSQL a batch whose accounts'
// states the store kept from its last write of them skips the load and
// writes in one statement guarded by each account's version (see
// Options.KeptStates).
//
// Failures: a collision (serialization failure, deadlock, two processes
// creating one account) runs the batch again; a failure before the commit
// runs its operations again one by one, so one bad operation fails alone;
// a failed or unconfirmed commit fails every operation of the batch with an
// error wrapping [credits.ErrTransient], and a retry with the same
// idempotency key takes effect exactly once.
//
// # Schema and migrations
//
// Each database's schema is embedded in its package and versioned. Open
// migrates it (New when Options.Migrate), each version in its own
// transaction with its version row; migrating twice is a no-op, a database
// newer than the code is refused ([ErrSchemaTooNew]), concurrent migrators
// take turns, and a store that does not migrate refuses an older schema
// ([ErrSchemaOutdated]). Amounts are integer millicredits, times integer
// Unix nanoseconds; CHECK constraints refuse a negative remainder or a
// non-positive grant; history entries cannot be updated or deleted.
package sqlstore

import (
	"context"
	"strings"

	"github.com/creditkit/credits/sqlstore/internal/core"
	"github.com/creditkit/credits/sqlstore/postgres"
	"github.com/creditkit/credits/sqlstore/sqlite"
)

// Store is a credits.Store on a SQL database, PostgreSQL or SQLite.
type Store = core.Store

// Options configures a Store (see the fields for what applies to which
// database). A nil *Options means every default.
type Options = core.Options

// Stats are a store's group-commit counters (see Store.Stats).
type Stats = core.Stats

// The errors of the stores.
var (
	// ErrClosed is returned by operations started after Close.
	ErrClosed = core.ErrClosed
	// ErrSchemaTooNew: the database's schema is newer than the code.
	ErrSchemaTooNew = core.ErrSchemaTooNew
	// ErrSchemaOutdated: the database's schema is older than the code and
	// the store does not migrate.
	ErrSchemaOutdated = core.ErrSchemaOutdated
)

// Open opens the database dsn names — a "postgres://" or "postgresql://"
// URL with [postgres.Open], anything else (a "file:" URI, a path,
// ":memory:") with [sqlite.Open] — and migrates it unless opts.NoMigrate.
func Open(ctx context.Context, dsn string, opts *Options) (*Store, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		return postgres.Open(ctx, dsn, opts)
	}
	return sqlite.Open(ctx, dsn, opts)
}

// Package postgres is the PostgreSQL [credits.Store]: the production store,
// any number of application servers on one database, through pgx
// (github.com/jackc/pgx/v5 and its database/sql driver). It links no
// SQLite.
//
//	store, err := postgres.Open(ctx, "postgres://user@host/db?sslmode=disable", nil)
//
// or, on an *sql.DB the application opened with pgx's driver, [New].
//
// Every operation runs as a batch through one executor: alone, grouped
// with concurrent operations into one transaction (group commit), or
// inside the application's own transaction ([Store.WithTx]). A batch
// takes two pipelined round trips — BEGIN, the accounts locked in ID order
// and their state loaded as typed columns; then the write (one statement,
// its rows as typed arrays) and COMMIT — or one when its accounts' states
// are kept from the batch that last wrote them: one autocommit statement
// guarded by each account's version (see Options.KeptStates). The package
// documentation of sqlstore describes the guarantees.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/creditkit/credits/sqlstore/internal/core"
)

// Store is the PostgreSQL store (the same type as sqlite.Store and
// sqlstore.Store).
type Store = core.Store

// Options configures a Store. A nil *Options means every default; on
// PostgreSQL, Committers defaults to 2 and KeptStates to 1024.
type Options = core.Options

// Stats are a store's group-commit counters (see Store.Stats).
type Stats = core.Stats

// The errors of the store.
var (
	ErrClosed         = core.ErrClosed
	ErrSchemaTooNew   = core.ErrSchemaTooNew
	ErrSchemaOutdated = core.ErrSchemaOutdated
)

// Open opens the PostgreSQL database named by dsn (a "postgres://" or
// "postgresql://" URL, or pgx's key=value form) with pgx, adds the session
// settings of [DSN], and migrates the schema unless opts.NoMigrate. Close
// closes the database.
func Open(ctx context.Context, dsn string, opts *Options) (*Store, error) {
	db, err := sql.Open("pgx", DSN(dsn))
	if err != nil {
		return nil, fmt.Errorf("sqlstore: open: %w", err)
	}
	// A small pool: more connections than cores only queue on locks.
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(16)
	var o Options
	if opts != nil {
		o = *opts
	}
	o.Migrate = !o.NoMigrate
	s, err := newStore(ctx, db, o, true)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

// New returns a Store on db, which the application opened with pgx's
// database/sql driver (sql.Open("pgx", DSN(dsn)), or stdlib.OpenDB). It
// migrates the schema only when opts.Migrate; otherwise it refuses a
// schema that is not the code's. Close does not close db.
//
// Another driver (lib/pq, or pgx wrapped by an instrumenting driver) is
// refused: the store pipelines a batch's statements on pgx's connection
// and sends its rows as typed arrays in pgx's binary format.
func New(ctx context.Context, db *sql.DB, opts *Options) (*Store, error) {
	if _, ok := db.Driver().(*stdlib.Driver); !ok {
		return nil, fmt.Errorf("sqlstore/postgres: the *sql.DB uses the driver %T; the store needs pgx's (sql.Open(\"pgx\", dsn) with github.com/jackc/pgx/v5/stdlib, or stdlib.OpenDB): it pipelines statements on pgx's connection and sends typed arrays", db.Driver())
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	return newStore(ctx, db, o, false)
}

func newStore(ctx context.Context, db *sql.DB, o Options, owned bool) (*Store, error) {
	names, err := core.Resolve(&o, 2, true)
	if err != nil {
		return nil, err
	}
	return core.New(ctx, db, newDriver(names), names, o, owned)
}

// DSN returns dsn with the session settings the store wants, unless the
// DSN sets them otherwise (Open applies it; an application that opens its
// own *sql.DB for New should too): statements are planned once per
// connection (they are prepared and reused), and sequential scans are
// discouraged, because every statement the store runs is an index lookup
// by design and a plan made while a table was still small must not stay a
// full scan once it has grown.
func DSN(dsn string) string {
	for _, param := range []string{"plan_cache_mode=force_generic_plan", "enable_seqscan=off"} {
		name := param[:strings.IndexByte(param, '=')]
		if strings.Contains(dsn, name) {
			continue
		}
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		dsn += sep + param
	}
	return dsn
}

// driver is the PostgreSQL side of the store.
type driver struct {
	q          queries
	statements statementCache
}

func newDriver(n core.Names) *driver { return &driver{q: newQueries(n)} }

func (d *driver) Name() string { return "postgres" }

// sqlState is what pgx's *pgconn.PgError (and lib/pq's error) offer.
type sqlState interface{ SQLState() string }

// Collided reports a serialization failure, a deadlock, or a unique
// violation (two creations of one account raced).
func (d *driver) Collided(err error) bool {
	var se sqlState
	if errors.As(err, &se) {
		switch se.SQLState() {
		case "40001", "40P01", "23505":
			return true
		}
	}
	return false
}

func (d *driver) Reads() core.Reads {
	return core.Reads{
		HoldAccount: d.q.holdAccount, Exists: d.q.exists, DueAccounts: d.q.dueAccounts, Entries: d.q.entries,
		Param: param,
		List:  func(xs []string) any { return xs },
		In:    func(expr, p string) string { return expr + " = ANY(" + p + "::text[])" },
	}
}

func (d *driver) Migrations() core.Migrations {
	return core.Migrations{
		FS: migrations,
		Lock: func(ctx context.Context, tx *sql.Tx, n core.Names) error {
			h := fnv.New64a()
			h.Write([]byte("credits-migrate:" + n.Table("schema_versions")))
			_, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", int64(h.Sum64()))
			return err
		},
		TableExists: "SELECT count(*) FROM pg_catalog.pg_class WHERE oid = to_regclass($1)",
		Param:       param,
	}
}

func param(i int) string { return fmt.Sprintf("$%d", i) }

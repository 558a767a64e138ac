// Package postgres is the PostgreSQL [credits.Store]: the production store,
// any number of application servers on one database, through pgx
// (github.com/jackc/pgx/v5 and its database/sql driver). It links no
// SQLite.
//
//	store, err := postgres.Open(ctx, "postgres://user@host/db?sslmode=disable", nil)
//
// or, on an *sql.DB the application opened with pgx's driver, [New].
//
// A batch takes two pipelined round trips (lock and load; write and
// COMMIT), or one on kept states. The package documentation of sqlstore
// describes the guarantees.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"sync"

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
	return core.New(ctx, db, opts, true, database)
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
	return core.New(ctx, db, opts, false, database)
}

var database = core.Database{Committers: 2, Schemas: true, Driver: func(n core.Names) core.Driver { return newDriver(n) }}

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
	statements sync.Map // shape → the write statement
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

func (d *driver) Syntax() core.Syntax {
	return core.Syntax{Param: param, List: func(xs []string) any { return xs }, In: func(expr, p string) string { return expr + " = ANY(" + p + "::text[])" }}
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
	}
}

func param(i int) string { return fmt.Sprintf("$%d", i) }

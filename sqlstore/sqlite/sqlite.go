// Package sqlite is the SQLite [credits.Store], the embedded default:
// modernc.org/sqlite, pure Go, no cgo, zero set-up. It links no pgx.
//
//	store, err := sqlite.Open(ctx, "file:credits.db", nil) // a file (WAL)
//	store, err := sqlite.Open(ctx, ":memory:", nil)        // in memory
//
// or, on an *sql.DB the application opened with modernc's driver, [New].
//
// SQLite has one writer: every operation runs as a batch through one
// executor (alone, grouped with concurrent operations into one
// transaction, or inside the application's own transaction with
// [Store.WithTx]) on a single connection, its statements prepared once.
// The package documentation of sqlstore describes the guarantees.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/creditkit/credits/sqlstore/internal/core"
)

// Store is the SQLite store (the same type as postgres.Store and
// sqlstore.Store).
type Store = core.Store

// Options configures a Store. A nil *Options means every default; on
// SQLite, Committers defaults to 1 (one writer), Schema must be empty and
// no states are kept.
type Options = core.Options

// Stats are a store's group-commit counters (see Store.Stats).
type Stats = core.Stats

// The errors of the store.
var (
	ErrClosed         = core.ErrClosed
	ErrSchemaTooNew   = core.ErrSchemaTooNew
	ErrSchemaOutdated = core.ErrSchemaOutdated
)

// Open opens the SQLite database named by dsn — a "file:" URI, a path or
// ":memory:" — with the settings of [DSN] and one connection, and migrates
// the schema unless opts.NoMigrate. Close closes the database.
func Open(ctx context.Context, dsn string, opts *Options) (*Store, error) {
	db, err := sql.Open("sqlite", DSN(dsn))
	if err != nil {
		return nil, fmt.Errorf("sqlstore: open: %w", err)
	}
	// One connection: SQLite has one writer, and ":memory:" is one
	// database per connection.
	db.SetMaxOpenConns(1)
	return core.New(ctx, db, opts, true, database(db))
}

// New returns a Store on db, which the application opened with
// modernc.org/sqlite's driver ("sqlite"), with "_txlock=immediate" in the
// DSN and one open connection, as Open does (see [DSN]). It migrates the
// schema only when opts.Migrate; otherwise it refuses a schema that is not
// the code's. Close does not close db.
func New(ctx context.Context, db *sql.DB, opts *Options) (*Store, error) {
	if _, ok := db.Driver().(*sqlite.Driver); !ok {
		return nil, fmt.Errorf("sqlstore/sqlite: the *sql.DB uses the driver %T; the store needs modernc.org/sqlite's (sql.Open(\"sqlite\", sqlite.DSN(dsn)))", db.Driver())
	}
	return core.New(ctx, db, opts, false, database(db))
}

func database(db *sql.DB) core.Database {
	return core.Database{Committers: 1, Driver: func(n core.Names) core.Driver { return newDriver(db, n) }}
}

// DSN adds what the ledger needs to a SQLite DSN: write transactions that
// begin IMMEDIATE (so two writers never deadlock upgrading a read lock; only
// this DSN parameter does it with modernc's driver, which ignores
// sql.TxOptions), a busy timeout, foreign keys, full durability unless the
// DSN sets synchronous, and WAL for files.
func DSN(dsn string) string {
	file := dsn
	if !strings.HasPrefix(file, "file:") {
		file = "file:" + file
	}
	sep := "?"
	if strings.Contains(file, "?") {
		sep = "&"
	}
	params := []string{"_txlock=immediate", "_pragma=busy_timeout(10000)", "_pragma=foreign_keys(1)"}
	if !strings.Contains(dsn, "synchronous") {
		params = append(params, "_pragma=synchronous(FULL)")
	}
	if !strings.Contains(dsn, ":memory:") && !strings.Contains(dsn, "journal_mode") {
		params = append(params, "_pragma=journal_mode(WAL)")
	}
	return file + sep + strings.Join(params, "&")
}

func (d *driver) Name() string { return "sqlite" }

// Collided reports a busy or locked database. (Writers begin IMMEDIATE and
// load under the write lock: no two creations of an account can race.)
func (d *driver) Collided(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return true
		}
	}
	return false
}

func (d *driver) Syntax() core.Syntax {
	return core.Syntax{Param: param, List: func(xs []string) any { return jsonList(xs) }, In: in}
}

func (d *driver) Migrations() core.Migrations {
	return core.Migrations{
		FS:          migrations,
		TableExists: "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
	}
}

func param(i int) string { return fmt.Sprintf("?%d", i) }

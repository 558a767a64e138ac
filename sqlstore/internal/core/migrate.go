package core

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"time"
)

// Migrations are a database's embedded, versioned schema migrations and
// what running them needs.
type Migrations struct {
	// FS holds the migrations, NNN_name.sql, numbered from 001 without gaps.
	// In their SQL, {{t}} is the qualified table prefix and {{n}} the bare
	// one (for names of indexes and triggers).
	FS fs.FS
	// Lock makes concurrent migrators take turns, inside tx (PostgreSQL:
	// an advisory lock; SQLite's write transaction already does).
	Lock func(ctx context.Context, tx *sql.Tx, n Names) error
	// TableExists counts the tables named $1 (the versions table, its
	// qualified name).
	TableExists string
}

type migration struct {
	version int
	name    string
	sql     string
}

// list returns the migrations in order. The bundle is part of the binary:
// a malformed one is a programming error, so it panics.
func (m Migrations) list() []migration {
	names, err := fs.Glob(m.FS, "*.sql")
	if err != nil || len(names) == 0 {
		panic("sqlstore: no embedded migrations")
	}
	var out []migration
	for i, name := range names {
		n, err := strconv.Atoi(strings.SplitN(path.Base(name), "_", 2)[0])
		if err != nil || n != i+1 {
			panic(fmt.Sprintf("sqlstore: migration %s is out of sequence (want version %d)", name, i+1))
		}
		body, err := fs.ReadFile(m.FS, name)
		if err != nil {
			panic(err)
		}
		out = append(out, migration{version: n, name: path.Base(name), sql: string(body)})
	}
	return out
}

// SchemaVersion is the schema version this code writes and expects.
func (s *Store) SchemaVersion() int { return len(s.driver.Migrations().list()) }

// Migrate brings the database's schema to the version of this code. Each
// version is applied in its own transaction together with its version row;
// a database already current is left alone; a database newer than the code
// is refused with [ErrSchemaTooNew]. Concurrent Migrate calls from several
// processes are safe: they take turns (an advisory lock on PostgreSQL, the
// write lock on SQLite) and all but the first find nothing to do.
func (s *Store) Migrate(ctx context.Context) error {
	return s.migrateTo(ctx, s.SchemaVersion())
}

// MigrateTo applies the migrations up to version v only, as an older
// release of the code did: tests build older schemas with it.
func MigrateTo(ctx context.Context, s *Store, v int) error { return s.migrateTo(ctx, v) }

func (s *Store) migrateTo(ctx context.Context, v int) error {
	if s.names.Schema != "" {
		_, err := s.db.ExecContext(ctx, `CREATE SCHEMA IF NOT EXISTS "`+s.names.Schema+`"`)
		if err != nil && !s.driver.Collided(err) { // two processes creating it at once: fine
			return fmt.Errorf("sqlstore: create schema: %w", err)
		}
	}
	m := s.driver.Migrations()
	all := m.list()[:v]
	for {
		done, err := s.migrateStep(ctx, m, all)
		if err != nil {
			return err
		}
		if done {
			s.prepare(ctx)
			return nil
		}
	}
}

// migrateStep applies the next missing migration, if any, in one transaction.
func (s *Store) migrateStep(ctx context.Context, m Migrations, all []migration) (done bool, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("sqlstore: migrate: %w", err)
	}
	defer func() {
		if err != nil || done {
			_ = tx.Rollback()
		}
	}()
	if m.Lock != nil {
		if err := m.Lock(ctx, tx, s.names); err != nil {
			return false, fmt.Errorf("sqlstore: migrate lock: %w", err)
		}
	}
	versions := s.names.Table("schema_versions")
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(
		"CREATE TABLE IF NOT EXISTS %s (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)", versions)); err != nil {
		return false, fmt.Errorf("sqlstore: migrate: %w", err)
	}
	var current sql.NullInt64
	if err := tx.QueryRowContext(ctx, "SELECT max(version) FROM "+versions).Scan(&current); err != nil {
		return false, fmt.Errorf("sqlstore: migrate: %w", err)
	}
	switch v := int(current.Int64); {
	case v > len(m.list()):
		return false, fmt.Errorf("%w: the database is at version %d, this code knows %d", ErrSchemaTooNew, v, len(m.list()))
	case v >= len(all):
		return true, nil
	default:
		next := all[v]
		body := strings.NewReplacer("{{t}}", s.names.Prefix, "{{n}}", s.names.Raw).Replace(next.sql)
		if _, err := tx.ExecContext(ctx, body); err != nil {
			return false, fmt.Errorf("sqlstore: migration %s: %w", next.name, err)
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("INSERT INTO %s (version, name, applied_at) VALUES (%s, %s, %s)",
			versions, s.syntax.Param(1), s.syntax.Param(2), s.syntax.Param(3)), next.version, next.name, time.Now().UnixNano()); err != nil {
			return false, fmt.Errorf("sqlstore: migration %s: %w", next.name, err)
		}
		if err := tx.Commit(); err != nil {
			return false, fmt.Errorf("sqlstore: migration %s: commit: %w", next.name, err)
		}
		s.log.InfoContext(ctx, "sqlstore: migrated", "version", next.version, "name", next.name)
		return false, nil
	}
}

// Version reads the database's schema version (0 before any migration).
func (s *Store) Version(ctx context.Context) (int, error) {
	var v sql.NullInt64
	err := s.db.QueryRowContext(ctx, "SELECT max(version) FROM "+s.names.Table("schema_versions")).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: schema version: %w", err)
	}
	return int(v.Int64), nil
}

// checkSchema refuses a database whose schema is not the code's, for a
// store that does not migrate: it never runs on an older schema.
func (s *Store) checkSchema(ctx context.Context) error {
	latest := s.SchemaVersion()
	v, err := s.Version(ctx)
	if err != nil {
		// Only a missing version table means "never migrated"; any other
		// failure (a timeout, a permission) is reported as it is.
		var n int
		if xerr := s.db.QueryRowContext(ctx, s.driver.Migrations().TableExists, s.names.Table("schema_versions")).Scan(&n); xerr != nil || n > 0 {
			return err
		}
		return fmt.Errorf("%w: the database has no schema version (no migration ran): call Store.Migrate, or open without Options.NoMigrate", ErrSchemaOutdated)
	}
	switch {
	case v < latest:
		return fmt.Errorf("%w: the database is at version %d, this code needs %d: call Store.Migrate, or open without Options.NoMigrate", ErrSchemaOutdated, v, latest)
	case v > latest:
		return fmt.Errorf("%w: the database is at version %d, this code knows %d", ErrSchemaTooNew, v, latest)
	}
	return nil
}

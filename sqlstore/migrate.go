package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"hash/fnv"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"time"
)

//go:embed migrations/*/*.sql
var migrationFS embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the dialect's embedded migrations in order. The bundle
// is part of the binary: a malformed one is a programming error, so it
// panics.
func (d Dialect) migrations() []migration {
	dir := path.Join("migrations", string(d))
	names, err := fs.Glob(migrationFS, dir+"/*.sql")
	if err != nil || len(names) == 0 {
		panic(fmt.Sprintf("sqlstore: no embedded migrations for %s", d))
	}
	var out []migration
	for i, name := range names {
		base := path.Base(name)
		n, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil || n != i+1 {
			panic(fmt.Sprintf("sqlstore: migration %s is out of sequence (want version %d)", name, i+1))
		}
		body, err := migrationFS.ReadFile(name)
		if err != nil {
			panic(err)
		}
		out = append(out, migration{version: n, name: base, sql: string(body)})
	}
	return out
}

// SchemaVersion is the schema version this code writes and expects.
func (s *Store) SchemaVersion() int { return len(s.dialect.migrations()) }

// Migrate brings the database's schema to the version of this code. Each
// version is applied in its own transaction together with its version row;
// a database already current is left alone; a database newer than the code
// is refused with [ErrSchemaTooNew]. Concurrent Migrate calls from several
// processes are safe: they take turns (an advisory lock on PostgreSQL, the
// write lock on SQLite) and all but the first find nothing to do.
func (s *Store) Migrate(ctx context.Context) error {
	if s.opts.Schema != "" {
		_, err := s.db.ExecContext(ctx, `CREATE SCHEMA IF NOT EXISTS "`+s.opts.Schema+`"`)
		if err != nil && !s.dialect.retryable(err) { // two processes creating it at once: fine
			return fmt.Errorf("sqlstore: create schema: %w", err)
		}
	}
	all := s.dialect.migrations()
	for {
		done, err := s.migrateStep(ctx, all)
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
func (s *Store) migrateStep(ctx context.Context, all []migration) (done bool, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("sqlstore: migrate: %w", err)
	}
	defer func() {
		if err != nil || done {
			rollback(tx)
		}
	}()
	if s.dialect == Postgres {
		h := fnv.New64a()
		h.Write([]byte("credits-migrate:" + s.t.versions))
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", int64(h.Sum64())); err != nil {
			return false, fmt.Errorf("sqlstore: migrate lock: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(
		"CREATE TABLE IF NOT EXISTS %s (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)", s.t.versions)); err != nil {
		return false, fmt.Errorf("sqlstore: migrate: %w", err)
	}
	var current sql.NullInt64
	if err := tx.QueryRowContext(ctx, "SELECT max(version) FROM "+s.t.versions).Scan(&current); err != nil {
		return false, fmt.Errorf("sqlstore: migrate: %w", err)
	}
	latest := len(all)
	switch v := int(current.Int64); {
	case v > latest:
		return false, fmt.Errorf("%w: the database is at version %d, this code knows %d", ErrSchemaTooNew, v, latest)
	case v == latest:
		return true, nil
	default:
		m := all[v]
		body := m.sql
		if s.dialect == Postgres {
			body = strings.ReplaceAll(body, "{{n}}", s.opts.TablePrefix)
		}
		body = strings.ReplaceAll(body, "{{t}}", strings.TrimSuffix(s.t.accounts, "accounts"))
		if _, err := tx.ExecContext(ctx, body); err != nil {
			return false, fmt.Errorf("sqlstore: migration %s: %w", m.name, err)
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("INSERT INTO %s (version, name, applied_at) VALUES (%s, %s, %s)",
			s.t.versions, s.dialect.placeholder(1), s.dialect.placeholder(2), s.dialect.placeholder(3)),
			m.version, m.name, time.Now().UnixNano()); err != nil {
			return false, fmt.Errorf("sqlstore: migration %s: %w", m.name, err)
		}
		if err := tx.Commit(); err != nil {
			return false, fmt.Errorf("sqlstore: migration %s: commit: %w", m.name, err)
		}
		s.log.InfoContext(ctx, "sqlstore: migrated", "version", m.version, "name", m.name)
		return false, nil
	}
}

// Version reads the database's schema version (0 before any migration).
func (s *Store) Version(ctx context.Context) (int, error) {
	var v sql.NullInt64
	err := s.db.QueryRowContext(ctx, "SELECT max(version) FROM "+s.t.versions).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: schema version: %w", err)
	}
	return int(v.Int64), nil
}

// Package sqlstore is a [credits.Store] on database/sql, for SQLite (the
// embedded default: modernc.org/sqlite, pure Go, no cgo) and PostgreSQL (the
// production store: github.com/jackc/pgx/v5, any number of application
// servers on one database).
//
// # Opening
//
// One line, from a DSN:
//
//	store, err := sqlstore.Open(ctx, "file:credits.db", nil)                    // SQLite file (WAL)
//	store, err := sqlstore.Open(ctx, ":memory:", nil)                           // SQLite in memory
//	store, err := sqlstore.Open(ctx, "postgres://user@host/db?sslmode=disable", nil)
//
// or on an *sql.DB the application already has, with [New]. Open migrates
// the schema; New does when Options.Migrate is set.
//
// # Schema and migrations
//
// The schema is embedded and versioned per dialect. [Store.Migrate] applies
// what is missing, each version in its own transaction with its version
// row; it is a no-op on a current database, refuses a database newer than
// the code ([ErrSchemaTooNew]), and is safe to run from several processes at
// once (an advisory lock on PostgreSQL, BEGIN IMMEDIATE on SQLite). Tables
// carry a prefix (default "credits_") and, on PostgreSQL, may live in their
// own schema, so they sit beside the application's own. Amounts are integer
// millicredits, times integer Unix nanoseconds; CHECK constraints refuse a
// negative remainder or a non-positive grant, and history entries cannot be
// updated or deleted (a trigger refuses it).
//
// # Concurrency: group commit
//
// Concurrent operations share transactions. [Store.Update] queues its
// operation on one of the store's committers (an account always on the same
// one) and waits; a committer takes whatever is waiting, up to
// Options.MaxBatch, locks the batch's accounts in ID order, loads their
// state in one query, applies every operation in arrival order in Go,
// writes all the changes with set-based statements, commits once and then
// answers each caller with its own result. An operation that fails leaves
// the shared state untouched and changes no other operation's result.
// Collisions (serialization failures, deadlocks, two processes creating one
// account) rerun the batch; a failed or unconfirmed commit fails each of its
// operations with an error wrapping [credits.ErrTransient], and a retry with
// the same idempotency key takes effect exactly once. [Store.Stats] reports
// batch sizes and commit times. Options.NoGroupCommit runs each operation
// in a transaction of its own.
//
// # Kept states
//
// On PostgreSQL a store keeps the state it last wrote for up to
// Options.KeptStates accounts (the account row, its live buckets and the
// open holds it knows of, no records), so that the next lone operation, or
// batch whose accounts are all kept, skips reading them: it applies to the
// kept states and writes in one autocommit statement that takes effect only
// if every account is still as kept (the same account row, Seq included,
// and no open hold due that the state lacks) and every idempotency key is
// new (the records' primary key); all or nothing. Otherwise nothing is
// written and the operations read their accounts and run again, so any
// number of processes may write the same accounts. An operation that fails
// on a kept state, or writes no record under its key, runs again on a read
// state too: a record might have answered it.
//
// # The caller's transaction
//
// [Store.WithTx] runs ledger operations inside a transaction the application
// owns, so that, say, a hold and the job row that needs it commit together
// or not at all. See the example.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	_ "modernc.org/sqlite"           // registers the "sqlite" driver

	"github.com/creditkit/credits"
)

// Options configures a Store. A nil *Options means every default.
type Options struct {
	// TablePrefix starts every table name. Empty means "credits_". Lower
	// case letters, digits and underscores only.
	TablePrefix string
	// Schema, on PostgreSQL, is the schema the tables live in (created if
	// missing). Empty means the connection's search_path.
	Schema string
	// Migrate, for New, applies the embedded migrations before returning.
	// Open always migrates unless NoMigrate is set. A store that does not
	// migrate checks the schema's version instead and refuses an older one
	// with ErrSchemaOutdated (a newer one with ErrSchemaTooNew).
	Migrate   bool
	NoMigrate bool
	// skipSchemaCheck: tests that build an old schema by hand.
	skipSchemaCheck bool
	// MaxAttempts bounds the tries of one operation that collides with
	// another (serialization failure, deadlock). Zero means 8.
	MaxAttempts int
	// NoOptimistic turns off, on PostgreSQL, the optimistic first attempt
	// (read, apply, write-if-unchanged: two round trips) and kept states,
	// so that every operation locks its account rows in a transaction.
	NoOptimistic bool
	// NoGroupCommit runs every operation in a transaction of its own, on
	// the caller's goroutine, instead of grouping concurrent operations
	// into shared transactions (see "Group commit" in the package
	// documentation).
	NoGroupCommit bool
	// Committers is how many transactions run batches at once; an account
	// always goes to the same one. Fewer committers make larger batches;
	// more run more batches side by side: measure with examples/loadtest
	// -committers on your database. Zero means 2 on PostgreSQL (the best of
	// 1, 2, 4, 8 and 16 on the 2-core machine of the README's figures) and
	// 1 on SQLite (one writer).
	Committers int
	// KeptStates is how many accounts' states a PostgreSQL store keeps
	// after writing them, so that the next operation on them skips reading
	// them: one round trip instead of two for a lone operation, and for a
	// batch whose accounts are all kept (see "Kept states" above). Their
	// write takes effect only if the accounts are still as kept, and
	// otherwise reads and runs again, so other processes may write the same
	// accounts. A kept account costs about 1 KB, plus its live buckets and
	// open holds (at most 64 of them, 16 per account on average across the
	// store); past that, accounts are dropped at random. Zero means 1024;
	// negative keeps none. SQLite, PostgreSQL through a driver other than
	// pgx, and a store with NoOptimistic keep none.
	KeptStates int
	// MaxBatch caps the operations of one transaction. Zero means 64.
	MaxBatch int
	// CommitTimeout bounds a batch's transaction, which runs on no
	// caller's context. Zero means 30 seconds.
	CommitTimeout time.Duration
	// Logger receives debug lines (one per batch, and every retry). Nil
	// means discard.
	Logger *slog.Logger
}

// contention remembers the accounts whose optimistic writes lost a race
// lately, so that the next operations on a hot account go straight to the
// locking path instead of wasting two round trips each.
type contention struct {
	mu    sync.Mutex
	skips map[string]int // account → operations left to send to the locking path
}

// contentionSkips is how many operations on an account that just collided
// skip the optimistic attempt.
const contentionSkips = 64

func (c *contention) skip(account string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.skips[account]
	if !ok {
		return false
	}
	if n <= 1 {
		delete(c.skips, account)
	} else {
		c.skips[account] = n - 1
	}
	return true
}

func (c *contention) collided(account string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.skips == nil {
		c.skips = map[string]int{}
	}
	if len(c.skips) < 100_000 { // bounded: past that, collisions just cost two round trips
		c.skips[account] = contentionSkips
	}
}

// Store is a credits.Store on a SQL database. It is safe for concurrent use.
type Store struct {
	closed    atomic.Bool
	group     *group
	contended contention
	kept      *stateCache // nil: none (SQLite, or Options.KeptStates < 0)
	// commitFault, set by tests, fails a commit (see fault).
	commitFault func(committed bool) error
	statements  sync.Map // statementKey → the write statement of that shape
	prepMu      sync.Mutex
	prepped     atomic.Pointer[map[string]*sql.Stmt] // SQLite: prepared statements by query
	db          *sql.DB
	owned       bool // Open made db: Close closes it
	dialect     Dialect
	t           tables
	q           queries
	opts        Options
	log         *slog.Logger
}

var _ credits.Store = (*Store)(nil)

var identRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,40}$`)

// ErrSchemaTooNew is returned when the database's schema is newer than this
// code knows: upgrade the code, never the other way round.
var ErrSchemaTooNew = errors.New("sqlstore: database schema is newer than this version of the code")

// ErrSchemaOutdated is returned by a store that does not migrate (New
// without Options.Migrate, Open with Options.NoMigrate) on a database whose
// schema is older than the code: it never runs on it. Migrate brings it up
// to date.
var ErrSchemaOutdated = errors.New("sqlstore: database schema is older than this version of the code")

// Open opens the database named by dsn — a "postgres://" or
// "postgresql://" URL for PostgreSQL; a "file:" URI, a path or ":memory:" for
// SQLite — sets it up for the ledger, and migrates it unless
// opts.NoMigrate. Close closes it.
func Open(ctx context.Context, dsn string, opts *Options) (*Store, error) {
	var (
		db      *sql.DB
		dialect Dialect
		err     error
	)
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		dialect = Postgres
		db, err = sql.Open("pgx", PostgresDSN(dsn))
		if err == nil {
			// A small pool: more connections than cores only queue on locks.
			db.SetMaxOpenConns(16)
			db.SetMaxIdleConns(16)
		}
	} else {
		dialect = SQLite
		db, err = sql.Open("sqlite", sqliteDSN(dsn))
		if err == nil {
			// One connection: SQLite has one writer, and ":memory:" is one
			// database per connection.
			db.SetMaxOpenConns(1)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: open: %w", err)
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	o.Migrate = !o.NoMigrate
	s, err := New(ctx, db, dialect, &o)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	s.owned = true
	return s, nil
}

// PostgresDSN returns dsn with the session settings the store wants, unless
// the DSN sets them otherwise (Open applies it; an application that opens
// its own *sql.DB for New should too): statements are planned once per connection (they are prepared
// and reused; re-planning their JSON and CTEs on every call costs more than
// running them), and sequential scans are discouraged, because every
// statement the store runs is an index lookup by design and a plan made
// while a table was still small must not stay a full scan once it has grown.
func PostgresDSN(dsn string) string {
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

// sqliteDSN adds what the ledger needs to a SQLite DSN: write transactions
// that begin IMMEDIATE (so two writers never deadlock upgrading a read
// lock), a busy timeout, WAL for files, and full durability.
func sqliteDSN(dsn string) string {
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

// New returns a Store on db, an *sql.DB of the given dialect opened by the
// application ("sqlite" driver from modernc.org/sqlite, or "pgx" from
// github.com/jackc/pgx/v5/stdlib). For SQLite, open it with
// "_txlock=immediate" in the DSN and one open connection, as Open does.
// Close does not close db.
func New(ctx context.Context, db *sql.DB, dialect Dialect, opts *Options) (*Store, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if dialect != SQLite && dialect != Postgres {
		return nil, fmt.Errorf("sqlstore: unknown dialect %q", dialect)
	}
	if o.TablePrefix == "" {
		o.TablePrefix = "credits_"
	}
	if !identRE.MatchString(o.TablePrefix) {
		return nil, fmt.Errorf("sqlstore: table prefix %q: want lower-case letters, digits and underscores", o.TablePrefix)
	}
	if o.Schema != "" && (dialect != Postgres || !identRE.MatchString(o.Schema)) {
		return nil, fmt.Errorf("sqlstore: schema %q: only on PostgreSQL, lower-case letters, digits and underscores", o.Schema)
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 8
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Committers <= 0 {
		o.Committers = 2
		if dialect == SQLite {
			o.Committers = 1
		}
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 64
	}
	if o.CommitTimeout <= 0 {
		o.CommitTimeout = 30 * time.Second
	}
	qual := o.TablePrefix
	if o.Schema != "" {
		qual = `"` + o.Schema + `".` + o.TablePrefix
	}
	t := tables{
		accounts: qual + "accounts", buckets: qual + "buckets", holds: qual + "holds",
		entries: qual + "entries", records: qual + "records", versions: qual + "schema_versions",
	}
	s := &Store{db: db, dialect: dialect, t: t, q: dialect.queries(t), opts: o, log: o.Logger}
	s.group = newGroup(s, o.Committers)
	if dialect == Postgres && o.KeptStates == 0 {
		o.KeptStates, s.opts.KeptStates = 1024, 1024
	}
	if _, pgx := db.Driver().(*stdlib.Driver); dialect == Postgres && pgx && !o.NoOptimistic {
		// Kept states need pgx's errors to tell a refused write (nothing
		// written: read and run again) from a lost one.
		s.kept = newStateCache(o.KeptStates)
	}
	if err := db.PingContext(ctx); err != nil {
		return nil, fmt.Errorf("sqlstore: connect: %w", err)
	}
	if o.Migrate {
		if err := s.Migrate(ctx); err != nil {
			return nil, err
		}
	} else if !o.skipSchemaCheck {
		if err := s.checkSchema(ctx); err != nil {
			return nil, err
		}
	}
	s.prepare(ctx)
	return s, nil
}

// checkSchema refuses a database whose schema is not the code's, for a
// store that does not migrate: it never runs on an older schema.
func (s *Store) checkSchema(ctx context.Context) error {
	latest := s.SchemaVersion()
	v, err := s.Version(ctx)
	if err != nil {
		// Only a missing version table means "never migrated"; any other
		// failure (a timeout, a permission) is reported as it is.
		if exists, xerr := s.versionTableExists(ctx); xerr != nil || exists {
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

// versionTableExists reports whether the schema version table exists.
func (s *Store) versionTableExists(ctx context.Context) (bool, error) {
	var n int
	var err error
	if s.dialect == Postgres {
		err = s.db.QueryRowContext(ctx, "SELECT count(*) FROM pg_catalog.pg_class WHERE oid = to_regclass($1)", s.t.versions).Scan(&n)
	} else {
		err = s.db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", s.t.versions).Scan(&n)
	}
	return n > 0, err
}

// Options returns the options the store runs with, defaults resolved.
func (s *Store) Options() Options { return s.opts }

// TableName returns the full name of one of the store's tables ("accounts",
// "buckets", "holds", "entries", "records") as SQL should write it: with its
// prefix and, on PostgreSQL, its schema. Reports can join on it.
func (s *Store) TableName(table string) string {
	return strings.TrimSuffix(s.t.accounts, "accounts") + table
}

// DB returns the database the store runs on.
func (s *Store) DB() *sql.DB { return s.db }

// Dialect returns the store's SQL dialect.
func (s *Store) Dialect() Dialect { return s.dialect }

// Close makes later calls fail with [ErrClosed], waits for the operations
// already queued to be committed and answered, and closes the database if
// Open opened it (which waits for the statements under way).
func (s *Store) Close() error {
	s.closed.Store(true)
	s.group.close()
	s.closePrepared()
	if s.owned {
		return s.db.Close()
	}
	return nil
}

// execer is what both *sql.DB-backed transactions and a caller's *sql.Tx offer.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Update implements credits.Store. Unless Options.NoGroupCommit, the
// operation joins a batch (see "Group commit" in the package
// documentation). If ctx ends while the operation still waits for a
// batch, it is removed and Update returns ctx's error; once a committer
// has taken it, Update returns what the batch's commit decided, whatever
// ctx does meanwhile. An operation that finds its committer idle runs at
// once, on the caller's goroutine and under ctx, as with NoGroupCommit.
func (s *Store) Update(ctx context.Context, q credits.Query, apply func(*credits.State) (*credits.Change, error)) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if s.opts.NoGroupCommit {
		return s.updateAlone(ctx, q, apply)
	}
	return s.updateGrouped(ctx, q, apply)
}

// updateAlone runs one operation in a transaction of its own. On
// PostgreSQL it first tries the optimistic path: read the account's state
// in one statement, apply, and write the change in one autocommit
// statement that takes effect only if the account row has not moved on
// (two round trips). When it has (another operation on the same account
// came first), or on SQLite, the operation runs in a transaction that
// locks the account row first, retried on collisions.
func (s *Store) updateAlone(ctx context.Context, q credits.Query, apply func(*credits.State) (*credits.Change, error)) error {
	if s.dialect == Postgres && !s.opts.NoOptimistic && !s.contended.skip(q.Account) {
		done, err := s.updateOptimistic(ctx, q, apply)
		if done || (err != nil && !s.dialect.retryable(err)) {
			return err
		}
		s.contended.collided(q.Account)
		s.log.DebugContext(ctx, "sqlstore: optimistic write lost a race; locking", "account", q.Account)
	}
	var err error
	for attempt := 1; ; attempt++ {
		err = s.updateOnce(ctx, q, apply)
		if err == nil || !s.dialect.retryable(err) || attempt >= s.opts.MaxAttempts {
			return err
		}
		s.log.DebugContext(ctx, "sqlstore: retrying a colliding transaction", "account", q.Account, "attempt", attempt, "err", err)
		if !sleep(ctx, backoff(attempt)) {
			return errors.Join(ctx.Err(), err)
		}
	}
}

// updateOptimistic reports whether it applied the operation (or apply
// refused it); false means the account moved on between the read and the
// write, and nothing was written. When the account's state is kept (see
// "Kept states" in statecache.go) it first runs on that state, without
// reading; if that state turns out stale, it reads and runs again.
func (s *Store) updateOptimistic(ctx context.Context, q credits.Query, apply func(*credits.State) (*credits.Change, error)) (bool, error) {
	if st, known, ok := s.kept.get(q.Account, []credits.Query{q}); ok {
		s.kept.ran()
		if done, err := s.applyGuarded(ctx, q, apply, st, known, true); done || err != nil {
			// An error here is a write whose outcome is unknown: running
			// it again could apply it twice.
			return true, err
		}
	}
	st, err := s.view(ctx, s.db, q)
	if err != nil {
		return false, err
	}
	return s.applyGuarded(ctx, q, apply, st, openHolds(st), false)
}

// openHolds are the IDs of the open holds of a loaded state.
func openHolds(st *credits.State) []string {
	ids := []string{}
	for id, h := range st.Holds {
		if h.Status == credits.HoldOpen {
			ids = append(ids, id)
		}
	}
	return ids
}

// applyGuarded applies the operation to st, read or kept, and writes its
// change guarded by what st saw (see writeGuarded). done is false when
// nothing was written and the operation is to run again: on a read state
// under a lock, on a kept one on a read state.
func (s *Store) applyGuarded(ctx context.Context, q credits.Query, apply func(*credits.State) (*credits.Change, error), st *credits.State, known []string, kept bool) (done bool, err error) {
	// What the snapshot saw, before apply folds its change into st.
	var seen *credits.Account
	if st.Account != nil {
		a := st.Account.Clone()
		seen = &a
	}
	ch, err := apply(st)
	if kept && !trusted(q, ch, err) {
		s.kept.drop(q.Account, false)
		return false, nil
	}
	if err != nil || ch == nil {
		return true, err
	}
	if err := ctx.Err(); err != nil {
		return true, err
	}
	var rows changeRows
	if err := rows.add(q.Account, ch); err != nil {
		if kept {
			s.kept.drop(q.Account, false)
			return false, nil // on a read state, a record might answer it
		}
		return true, err
	}
	final := ch.Account
	switch {
	case ch.AccountCreated:
		seen = nil
	case seen == nil:
		return false, nil
	case final == nil:
		final = seen // a change without balances (a recorded refusal) still checks the row
	}
	if final == nil {
		return false, nil
	}
	wrote, err := s.writeGuarded(ctx, []guarded{{seen: seen, final: final, known: known}}, &rows, latestDue([]credits.Query{q}))
	if err != nil {
		s.kept.drop(q.Account, false)
		if kept && refused(err) {
			return false, nil // nothing written: run again on a read state
		}
		return false, fmt.Errorf("sqlstore: write: %w: %w", credits.ErrTransient, err)
	}
	if !wrote {
		s.kept.drop(q.Account, true)
		return false, nil
	}
	s.kept.put(q.Account, st)
	if err := s.fault(true); err != nil {
		return true, fmt.Errorf("sqlstore: commit: %w: %w", credits.ErrTransient, err)
	}
	return true, nil
}

// refused reports whether err says the server refused an autocommit
// statement, so that nothing of it was written: an error the server
// reported for the statement. A FATAL or PANIC one ends the session and may
// come after the statement committed (a backend terminated just then), so
// it says nothing, as a lost connection does not.
func refused(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Severity != "FATAL" && pe.Severity != "PANIC"
}

// guarded is one account of a guarded write: final is its row after the
// operations, seen the row they ran on (nil: final is a new account,
// created only if absent; then it is the write's only account) and known
// the open holds their state had.
type guarded struct {
	seen, final *credits.Account
	known       []string
}

// guardRow is how a guard travels to the server (see queries.guardUpdate):
// the account row as the state saw it, and the open holds it had.
type guardRow struct {
	accountRow
	Known []string `json:"known"`
}

// writeGuarded writes rows and the accounts' final rows in one autocommit
// statement that takes effect only if every account is still as its
// operations saw it: the same row (Seq, members, every column), and no
// open hold due by due other than the known ones (or, for a new account,
// if it is still absent). It reports whether it wrote; an error may come before or after
// the statement took effect, except a *pgconn.PgError, which says the
// server refused it and nothing was written.
func (s *Store) writeGuarded(ctx context.Context, accounts []guarded, rows *changeRows, due int64) (bool, error) {
	args, err := rows.guardedJSON()
	if err != nil {
		return false, err
	}
	var e encoder
	guard := s.q.guardUpdate
	finals := make([]accountRow, len(accounts))
	guards := make([]guardRow, 0, len(accounts))
	for i, a := range accounts {
		finals[i] = e.account(a.final)
		if a.seen == nil {
			if len(accounts) != 1 {
				return false, errors.New("sqlstore: internal error: an account created in a guarded write of several")
			}
			guard = s.q.guardCreate
			continue
		}
		guards = append(guards, guardRow{accountRow: e.account(a.seen), Known: emptyIfNil(a.known)})
	}
	guardArg, finalArg := e.json(guards), e.json(finals)
	if e.err != nil {
		return false, e.err
	}
	query := s.statement(guard, args)
	var wrote int
	err = s.db.QueryRowContext(ctx, query, guardArg, finalArg, len(accounts), args[0], args[1], args[2], args[3], args[4], args[5], due).Scan(&wrote)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "22012" {
		return false, nil // a guard did not hold: the statement wrote nothing
	}
	if err != nil {
		return false, err
	}
	return wrote == len(accounts), nil
}

// latestDue is the latest Due of the queries in Unix nanoseconds (the
// smallest int64 when none has one).
func latestDue(qs []credits.Query) int64 {
	due := int64(math.MinInt64)
	for _, q := range qs {
		if q.Due.IsZero() {
			continue
		}
		if n, err := nanos(q.Due); err == nil && n > due {
			due = n
		}
	}
	return due
}

func (s *Store) updateOnce(ctx context.Context, q credits.Query, apply func(*credits.State) (*credits.Change, error)) (err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: begin: %w: %w", credits.ErrTransient, err)
	}
	defer func() {
		if err != nil {
			rollback(tx)
		}
	}()
	changed, err := s.updateIn(ctx, s.on(tx), q, apply)
	if err != nil {
		return err
	}
	if !changed {
		rollback(tx)
		return nil
	}
	if err := s.fault(false); err != nil {
		return fmt.Errorf("sqlstore: commit: %w: %w", credits.ErrTransient, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: commit: %w: %w", credits.ErrTransient, err)
	}
	if err := s.fault(true); err != nil {
		return fmt.Errorf("sqlstore: commit: %w: %w", credits.ErrTransient, err)
	}
	return nil
}

// rollback rolls back even when the operation's context was cancelled.
func rollback(tx *sql.Tx) {
	_ = tx.Rollback() // database/sql rolls back on its own context; ErrTxDone is fine
}

// updateIn runs one operation inside tx and reports whether it wrote.
func (s *Store) updateIn(ctx context.Context, tx execer, q credits.Query, apply func(*credits.State) (*credits.Change, error)) (bool, error) {
	states, err := s.lockAndLoad(ctx, tx, []credits.Query{q})
	if err != nil {
		return false, err
	}
	ch, err := apply(states[q.Account])
	if err != nil || ch == nil {
		return false, err
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	var rows changeRows
	if err := rows.add(q.Account, ch); err != nil {
		return false, err
	}
	return true, s.write(ctx, tx, &rows)
}

// lockAndLoad locks the accounts the queries name, in ID order, and loads
// the state they name: one State per account, shared by that account's
// queries (the union of what they name).
func (s *Store) lockAndLoad(ctx context.Context, tx execer, qs []credits.Query) (map[string]*credits.State, error) {
	states, accounts := newStates(qs)
	rows, err := tx.QueryContext(ctx, s.q.lockAccounts, jsonList(accounts))
	if err != nil {
		return nil, fmt.Errorf("sqlstore: lock accounts: %w: %w", credits.ErrTransient, err)
	}
	ld := loader{states: states}
	for rows.Next() {
		var raw string
		if err := rows.Scan(&raw); err != nil {
			rows.Close()
			return nil, fmt.Errorf("sqlstore: lock accounts: %w: %w", credits.ErrTransient, err)
		}
		ld.row("a", raw)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: lock accounts: %w: %w", credits.ErrTransient, err)
	}
	if ld.d.err != nil {
		return nil, ld.d.err
	}
	// Only accounts that exist have anything more to load.
	existing := make([]credits.Query, 0, len(qs))
	for _, q := range qs {
		if states[q.Account].Account != nil {
			existing = append(existing, q)
		}
	}
	if len(existing) > 0 {
		if err := s.loadInto(ctx, tx, existing, states, s.q.load); err != nil {
			return nil, err
		}
	}
	return states, nil
}

// newStates returns an empty State for each account the queries name, and
// those accounts, sorted.
func newStates(qs []credits.Query) (map[string]*credits.State, []string) {
	states := make(map[string]*credits.State, len(qs))
	var accounts []string
	for _, q := range qs {
		if states[q.Account] == nil {
			states[q.Account] = newState()
			accounts = append(accounts, q.Account)
		}
	}
	slices.Sort(accounts)
	return states, accounts
}

func newState() *credits.State {
	return &credits.State{Buckets: map[string]*credits.Bucket{}, Holds: map[string]*credits.Hold{}, Records: map[string]*credits.Record{}}
}

// loadArgs are the arguments of a load or view query for the queries:
// their accounts, the holds they name, the latest Due and their
// [account, key] pairs.
func loadArgs(qs []credits.Query) []any {
	var (
		accounts, holds []string
		pairs           [][2]string
		due             any
		latest          time.Time
		seen            = map[string]bool{}
	)
	for _, q := range qs {
		if !seen[q.Account] {
			seen[q.Account] = true
			accounts = append(accounts, q.Account)
		}
		holds = append(holds, q.Holds...)
		for _, k := range q.Keys {
			pairs = append(pairs, [2]string{q.Account, k})
		}
		if q.Due.After(latest) {
			latest = q.Due
		}
	}
	if !latest.IsZero() {
		if n, err := nanos(latest); err == nil {
			due = n
		}
	}
	var e encoder
	return []any{jsonList(accounts), jsonList(holds), due, e.json(emptyIfNil(pairs))}
}

func jsonList(xs []string) string {
	var e encoder
	if xs == nil {
		return "[]"
	}
	return e.json(xs)
}

// loadInto runs a load (or view) query for the queries and adds its rows
// to the states of their accounts.
func (s *Store) loadInto(ctx context.Context, tx execer, qs []credits.Query, states map[string]*credits.State, query string) error {
	rows, err := tx.QueryContext(ctx, query, loadArgs(qs)...)
	if err != nil {
		return fmt.Errorf("sqlstore: load: %w: %w", credits.ErrTransient, err)
	}
	defer rows.Close()
	ld := loader{states: states}
	for rows.Next() {
		var kind, raw string
		if err := rows.Scan(&kind, &raw); err != nil {
			return fmt.Errorf("sqlstore: load: %w: %w", credits.ErrTransient, err)
		}
		ld.row(kind, raw)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlstore: load: %w: %w", credits.ErrTransient, err)
	}
	return ld.d.err
}

// loader adds the rows a lock or load query returns (kind "a", "h", "b"
// or "r", and the row as JSON) to the states of their accounts.
type loader struct {
	states map[string]*credits.State
	d      decoder
}

// row adds a row a load returned as JSON, of the kind it says.
func (l *loader) row(kind, raw string) {
	switch kind {
	case "a":
		var r accountRow
		l.d.json(raw, &r)
		l.account(&r)
	case "h":
		var r holdRow
		l.d.json(raw, &r)
		l.hold(&r)
	case "b":
		var r bucketRow
		l.d.json(raw, &r)
		l.bucket(&r)
	case "r":
		var r recordRow
		l.d.json(raw, &r)
		l.record(&r)
	}
}

func (l *loader) account(r *accountRow) {
	if st := l.states[r.ID]; st != nil {
		st.Account = l.d.account(r)
	}
}

func (l *loader) hold(r *holdRow) {
	if st := l.states[r.Account]; st != nil {
		h := l.d.hold(r)
		st.Holds[h.ID] = h
	}
}

func (l *loader) bucket(r *bucketRow) {
	if st := l.states[r.Account]; st != nil {
		b := l.d.bucket(r)
		st.Buckets[b.ID] = b
	}
}

func (l *loader) record(r *recordRow) {
	if st := l.states[r.Account]; st != nil {
		rec := l.d.record(r)
		st.Records[rec.Key] = rec
	}
}

type statementKey struct {
	guard string
	parts uint16 // bit i: part i has rows
}

// statement returns the optimistic path's write statement for the guard
// and the parts of a change set that have rows, built once per shape.
func (s *Store) statement(guard string, rows []string) string {
	key := statementKey{guard: guard}
	for i, r := range rows {
		if r != "[]" && r != "{}" {
			key.parts |= 1 << i
		}
	}
	if q, ok := s.statements.Load(key); ok {
		return q.(string)
	}
	q := guardedStatement(s.q.guardedArgs, guard, s.q.guardedParts, func(i int) bool { return key.parts&(1<<i) != 0 })
	s.statements.Store(key, q)
	return q
}

// write persists the rows inside a transaction: one statement over typed
// arrays on PostgreSQL; on SQLite (in-process, where a statement costs no
// round trip) prepared statements, updates row by row and inserts in
// multi-row chunks.
func (s *Store) write(ctx context.Context, tx execer, rows *changeRows) error {
	if s.dialect == Postgres {
		query, args, err := s.pgWrite(rows)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, query, args...); err != nil {
			return fmt.Errorf("sqlstore: write: %w: %w", credits.ErrTransient, err)
		}
		return nil
	}
	for i, rows := range rows.rowValues() {
		if rowKinds[i].update { // one row at a time
			for _, vals := range rows {
				if _, err := tx.ExecContext(ctx, s.q.rowUpdates[i], vals...); err != nil {
					return fmt.Errorf("sqlstore: write: %w: %w", credits.ErrTransient, err)
				}
			}
			continue
		}
		for j, n := range insertChunks {
			for ; len(rows) >= n; rows = rows[n:] {
				var args []any
				for _, vals := range rows[:n] {
					args = append(args, vals...)
				}
				if _, err := tx.ExecContext(ctx, s.q.rowInserts[i][j], args...); err != nil {
					return fmt.Errorf("sqlstore: write: %w: %w", credits.ErrTransient, err)
				}
			}
		}
	}
	return nil
}

// View implements credits.Store: one statement, so one consistent snapshot.
func (s *Store) View(ctx context.Context, q credits.Query) (*credits.State, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	return s.view(ctx, s.on(s.db), q)
}

func (s *Store) view(ctx context.Context, db execer, q credits.Query) (*credits.State, error) {
	states := map[string]*credits.State{q.Account: newState()}
	if err := s.loadInto(ctx, db, []credits.Query{q}, states, s.q.view); err != nil {
		return nil, err
	}
	return states[q.Account], nil
}

// HoldAccount implements credits.Store.
func (s *Store) HoldAccount(ctx context.Context, holdID string) (string, error) {
	if s.closed.Load() {
		return "", ErrClosed
	}
	return s.holdAccount(ctx, s.on(s.db), holdID)
}

func (s *Store) holdAccount(ctx context.Context, db execer, holdID string) (string, error) {
	var id string
	err := db.QueryRowContext(ctx, s.q.holdAccount, holdID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("%w: %q", credits.ErrUnknownHold, holdID)
	}
	if err != nil {
		return "", fmt.Errorf("sqlstore: hold account: %w", err)
	}
	return id, nil
}

// Entries implements credits.Store.
func (s *Store) Entries(ctx context.Context, f credits.EntryFilter) ([]credits.Entry, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	return s.entries(ctx, s.on(s.db), f)
}

func (s *Store) entries(ctx context.Context, db execer, f credits.EntryFilter) ([]credits.Entry, error) {
	p := s.dialect.placeholder
	args := []any{f.Account, f.AfterSeq}
	where := []string{"e.account = " + p(1), "e.seq > " + p(2)}
	if !f.Since.IsZero() {
		n, err := nanos(f.Since)
		if err != nil {
			return nil, err
		}
		args = append(args, n)
		where = append(where, "e.at >= "+p(len(args)))
	}
	if !f.Until.IsZero() {
		n, err := nanos(f.Until)
		if err != nil {
			return nil, err
		}
		args = append(args, n)
		where = append(where, "e.at < "+p(len(args)))
	}
	if len(f.Types) > 0 {
		types := make([]string, len(f.Types))
		for i, t := range f.Types {
			types[i] = string(t)
		}
		args = append(args, jsonList(types))
		where = append(where, s.dialect.inList("e.type", p(len(args))))
	}
	query := fmt.Sprintf("SELECT %s FROM %s e WHERE %s ORDER BY e.seq", s.dialect.rowJSON("e", entryColumns), s.t.entries, strings.Join(where, " AND "))
	if f.Limit > 0 {
		args = append(args, f.Limit)
		query += " LIMIT " + p(len(args))
	}
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: entries: %w", err)
	}
	defer rows.Close()
	var out []credits.Entry
	var d decoder
	for rows.Next() {
		var raw string
		if err := rows.Scan(&raw); err != nil {
			return nil, fmt.Errorf("sqlstore: entries: %w", err)
		}
		var r entryRow
		d.json(raw, &r)
		out = append(out, d.entry(&r))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: entries: %w", err)
	}
	if d.err != nil {
		return nil, d.err
	}
	if len(out) == 0 {
		var one int
		switch err := db.QueryRowContext(ctx, s.q.exists, f.Account).Scan(&one); {
		case errors.Is(err, sql.ErrNoRows):
			return nil, fmt.Errorf("%w: %q", credits.ErrUnknownAccount, f.Account)
		case err != nil:
			return nil, fmt.Errorf("sqlstore: entries: %w", err)
		}
	}
	return out, nil
}

// DueAccounts implements credits.Store.
func (s *Store) DueAccounts(ctx context.Context, now time.Time, limit int) ([]string, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	return s.dueAccounts(ctx, s.on(s.db), now, limit)
}

func (s *Store) dueAccounts(ctx context.Context, db execer, now time.Time, limit int) ([]string, error) {
	n, err := nanos(now)
	if err != nil {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, s.q.accountIDs, n, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: due accounts: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("sqlstore: due accounts: %w", err)
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

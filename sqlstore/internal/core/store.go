// Package core is the driver-free part of the SQL stores: the executor that
// runs every write (lock → load → apply → write), group commit, kept
// states, change merging, the table descriptors and the migration runner.
// The postgres and sqlite packages add what differs by database (see
// [Driver]); applications use those.
package core

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

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
	// MaxAttempts bounds the runs of a batch that collides with another
	// transaction (serialization failure, deadlock). Zero means 8. A batch
	// that fails otherwise runs its operations one by one, each with a
	// budget of its own.
	MaxAttempts int
	// NoGroupCommit runs every operation in a transaction of its own, on
	// the caller's goroutine, instead of grouping concurrent operations
	// into shared transactions.
	NoGroupCommit bool
	// Committers is how many transactions run batches at once; an account
	// always goes to the same one. Zero means 2 on PostgreSQL and 1 on
	// SQLite (one writer).
	Committers int
	// KeptStates is how many accounts' states a PostgreSQL store keeps
	// after writing them, so that the next batch on them skips reading
	// them (one round trip instead of two). Zero means 1024; negative
	// keeps none. SQLite keeps none.
	KeptStates int
	// MaxBatch caps the operations of one transaction. Zero means 64.
	MaxBatch int
	// CommitTimeout bounds a batch a committer runs on no caller's
	// context. Zero means 30 seconds.
	CommitTimeout time.Duration
	// Logger receives debug lines (one per batch, and every retry). Nil
	// means discard.
	Logger *slog.Logger

	skipSchemaCheck bool // tests that build an older schema by hand
}

// SkipSchemaCheck makes a store opened with o run on whatever schema it
// finds: for tests that build an older schema with [MigrateTo].
func SkipSchemaCheck(o *Options) { o.skipSchemaCheck = true }

// Driver is what a database adds to the driver-free store: its statements
// and how it sends them.
type Driver interface {
	// Name is "postgres" or "sqlite".
	Name() string
	// Begin starts a transaction on db for a batch (readOnly: for View,
	// a consistent snapshot that locks nothing).
	Begin(ctx context.Context, db *sql.DB, readOnly bool) (Tx, error)
	// Join runs a batch's statements inside the caller's transaction.
	Join(tx *sql.Tx) Tx
	// Collided reports whether err says a transaction collided with
	// another one (serialization failure, deadlock, two creations of one
	// account): the batch may run again.
	Collided(err error) bool
	// Syntax is how the database writes parameters and lists.
	Syntax() Syntax
	// Migrations are the database's schema migrations.
	Migrations() Migrations
}

// The rules a load states in SQL, written once for both databases (the Go
// side of each is in the root package: Hold.DueAt, Bucket.Live,
// Bucket.DueAt, Account.RenewsAt).

// DueHold is the condition "the hold aliased h is open and due by the
// instant param (Unix nanoseconds)".
func DueHold(h, param string) string {
	return h + ".status = 'open' AND " + h + ".deadline <= " + param
}

// LiveBucket is the condition "the bucket aliased b still holds credits",
// through the flag its indexes look at.
func LiveBucket(b string) string { return b + ".live = 1" }

// DueBucket is the condition "the bucket aliased b is live and expires by
// the instant param".
func DueBucket(b, param string) string {
	return LiveBucket(b) + " AND " + b + ".expires_at IS NOT NULL AND " + b + ".expires_at <= " + param
}

// DueWarning is the condition "the bucket aliased b is live, expires by
// the instant param (now plus the warning lead) and was not warned yet"
// (Bucket.WarningDueAt); its first terms are buckets_due's predicate.
func DueWarning(b, param string) string {
	return DueBucket(b, param) + " AND " + b + ".warned_at IS NULL"
}

// DueRenewal is the condition "the account aliased a renews its allowance
// by the instant param" (Account.RenewsAt set and at or before it). Its
// first term is the predicate of the partial index accounts_renews.
func DueRenewal(a, param string) string {
	return a + ".renews_at IS NOT NULL AND " + a + ".renews_at <= " + param
}

// Tx is one transaction of a batch.
type Tx interface {
	// Load loads the state of args' accounts (after locking their rows,
	// in ID order, when lock) into l.
	Load(ctx context.Context, args LoadArgs, l *Load, lock bool) error
	// Write writes w. A driver may send it with the commit.
	Write(ctx context.Context, w *Writes) error
	// Commit commits the transaction (nothing, when joined). An error may
	// come after the commit took effect.
	Commit(ctx context.Context) error
	// Rollback ends the transaction if it is still open (nothing, when
	// joined); it runs even when ctx has ended.
	Rollback()
}

// Guarded is what a driver that supports kept states adds (PostgreSQL).
type Guarded interface {
	// WriteGuarded writes w in one autocommit statement that takes effect
	// only if every account of PartAccounts still has the version its row
	// replaces and has no open hold due by due other than the known ones.
	// It reports whether it wrote; an error for which Refused is true
	// wrote nothing, any other may have come after the write took effect.
	WriteGuarded(ctx context.Context, db *sql.DB, w *Writes, known []string, due int64) (bool, error)
	// Refused reports whether err says the server refused a statement,
	// so that nothing of it was written.
	Refused(err error) bool
}

// Querier is what *sql.DB and *sql.Tx offer.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Syntax is how a database writes what the shared statements need.
type Syntax struct {
	Param func(i int) string              // the i-th parameter, from 1
	List  func([]string) any              // a list of strings as one parameter
	In    func(expr, param string) string // "expr is one of the list param"
}

// reads are the statements of the reads that take one statement.
type reads struct {
	holdAccount, exists, dueAccounts, entries, buckets string
}

func newReads(n Names, x Syntax) reads {
	accounts, holds, buckets := n.Table("accounts"), n.Table("holds"), n.Table("buckets")
	return reads{
		holdAccount: fmt.Sprintf("SELECT account FROM %s WHERE id = %s", holds, x.Param(1)),
		exists:      fmt.Sprintf("SELECT 1 FROM %s WHERE id = %s", accounts, x.Param(1)),
		// The accounts with a due hold, a due bucket, a due renewal or a
		// due expiry warning, each branch through its partial index
		// (holds_due, buckets_due twice, accounts_renews), an account found
		// by several once. $3 is now plus the warning lead (the smallest
		// int64 when there is none).
		dueAccounts: fmt.Sprintf("SELECT account FROM (SELECT h.account FROM %s h WHERE %s UNION SELECT b.account FROM %s b WHERE %s UNION SELECT a.id FROM %s a WHERE %s UNION SELECT b.account FROM %s b WHERE %s) due ORDER BY account LIMIT %s",
			holds, DueHold("h", x.Param(1)), buckets, DueBucket("b", x.Param(1)), accounts, DueRenewal("a", x.Param(1)), buckets, DueWarning("b", x.Param(3)), x.Param(2)),
		entries: fmt.Sprintf("SELECT %s FROM %s e", Columns("e", &Entries.Schema), n.Table("entries")),
		// Through the index buckets_account (account, seq, id).
		buckets: fmt.Sprintf("SELECT %s FROM %s b WHERE b.account = %s AND (b.seq, b.id) > (%s, %s)",
			Columns("b", &Buckets.Schema), buckets, x.Param(1), x.Param(2), x.Param(3)),
	}
}

// ErrClosed is returned by operations started after Close.
var ErrClosed = errors.New("sqlstore: store closed")

// ErrSchemaTooNew is returned when the database's schema is newer than this
// code knows: upgrade the code, never the other way round.
var ErrSchemaTooNew = errors.New("sqlstore: database schema is newer than this version of the code")

// ErrSchemaOutdated is returned by a store that does not migrate on a
// database whose schema is older than the code: it never runs on it.
var ErrSchemaOutdated = errors.New("sqlstore: database schema is older than this version of the code")

// Store is a credits.Store on a SQL database. It is safe for concurrent use.
type Store struct {
	closed      atomic.Bool
	group       *group
	kept        *keptStates                // nil: none
	commitFault func(committed bool) error // tests: see fault
	db          *sql.DB
	owned       bool // Open made db: Close closes it
	driver      Driver
	guarded     Guarded // nil: no kept states
	reads       reads
	syntax      Syntax
	names       Names
	opts        Options
	log         *slog.Logger
}

var (
	_ credits.Store     = (*Store)(nil)
	_ credits.FeedStore = (*Store)(nil)
)

// Names are the table names as SQL writes them: prefixed and, on
// PostgreSQL, schema-qualified.
type Names struct {
	Prefix string // the qualified prefix: `"billing".credits_`
	Raw    string // the prefix alone: credits_
	Schema string
}

// Table is the qualified name of a table ("accounts", …).
func (n Names) Table(name string) string { return n.Prefix + name }

// Database is what New needs of a driver package.
type Database struct {
	Committers int  // the default of Options.Committers
	Schemas    bool // Options.Schema applies
	// Driver returns the driver for the resolved table names.
	Driver func(Names) Driver
}

var identRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,40}$`)

// New returns a Store on db with opts (nil: every default) and migrates or
// checks the schema. owned (Open opened db) means Close closes db, the
// store migrates unless NoMigrate, and db is closed if New fails.
func New(ctx context.Context, db *sql.DB, opts *Options, owned bool, d Database) (*Store, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if owned {
		o.Migrate = !o.NoMigrate
	}
	s, err := newStore(ctx, db, o, owned, d)
	if err != nil && owned {
		_ = db.Close()
	}
	return s, err
}

func newStore(ctx context.Context, db *sql.DB, o Options, owned bool, d Database) (*Store, error) {
	if o.TablePrefix == "" {
		o.TablePrefix = "credits_"
	}
	if !identRE.MatchString(o.TablePrefix) {
		return nil, fmt.Errorf("sqlstore: table prefix %q: want lower-case letters, digits and underscores", o.TablePrefix)
	}
	if o.Schema != "" && (!d.Schemas || !identRE.MatchString(o.Schema)) {
		return nil, fmt.Errorf("sqlstore: schema %q: only on PostgreSQL, lower-case letters, digits and underscores", o.Schema)
	}
	o.MaxAttempts = or(o.MaxAttempts, 8)
	o.Committers = or(o.Committers, d.Committers)
	o.MaxBatch = or(o.MaxBatch, 64)
	o.CommitTimeout = or(o.CommitTimeout, 30*time.Second)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	names := Names{Prefix: o.TablePrefix, Raw: o.TablePrefix, Schema: o.Schema}
	if o.Schema != "" {
		names.Prefix = `"` + o.Schema + `".` + o.TablePrefix
	}
	driver := d.Driver(names)
	s := &Store{db: db, owned: owned, driver: driver, reads: newReads(names, driver.Syntax()), syntax: driver.Syntax(), names: names, opts: o, log: o.Logger}
	s.group = newGroup(s, o.Committers)
	if g, ok := driver.(Guarded); ok && o.KeptStates >= 0 {
		s.opts.KeptStates = or(o.KeptStates, 1024)
		s.guarded, s.kept = g, newKeptStates(s.opts.KeptStates)
	} else {
		s.opts.KeptStates = -1
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

// prepare lets a driver prepare its statements once the tables exist.
func (s *Store) prepare(ctx context.Context) {
	if p, ok := s.driver.(interface{ Prepare(context.Context) }); ok {
		p.Prepare(ctx)
	}
}

// or is v, or def when v is not positive.
func or[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// Options returns the options the store runs with, defaults resolved.
func (s *Store) Options() Options { return s.opts }

// Dialect returns the store's database: "postgres" or "sqlite".
func (s *Store) Dialect() string { return s.driver.Name() }

// TableName returns the full name of one of the store's tables ("accounts",
// "buckets", "holds", "entries", "records") as SQL should write it: with its
// prefix and, on PostgreSQL, its schema. Reports can join on it.
func (s *Store) TableName(table string) string { return s.names.Table(table) }

// DB returns the database the store runs on.
func (s *Store) DB() *sql.DB { return s.db }

// Close makes later calls fail with [ErrClosed], waits for the operations
// already queued to be committed and answered, and closes the database if
// Open opened it (which waits for the statements under way).
func (s *Store) Close() error {
	s.closed.Store(true)
	s.group.close()
	if c, ok := s.driver.(interface{ Close() }); ok {
		c.Close()
	}
	if s.owned {
		return s.db.Close()
	}
	return nil
}

// View implements credits.Store: the state as one consistent snapshot.
func (s *Store) View(ctx context.Context, q credits.Query) (*credits.State, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	tx, err := s.driver.Begin(ctx, s.db, true)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: view: %w", err)
	}
	defer tx.Rollback()
	return s.view(ctx, tx, q)
}

func (s *Store) view(ctx context.Context, tx Tx, q credits.Query) (*credits.State, error) {
	args := NewLoadArgs([]credits.Query{q})
	l := NewLoad(args.Accounts)
	if err := tx.Load(ctx, args, l, false); err != nil {
		return nil, fmt.Errorf("sqlstore: view: %w", err)
	}
	if err := l.Err(); err != nil {
		return nil, err
	}
	return l.States[q.Account], nil
}

// HoldAccount implements credits.Store.
func (s *Store) HoldAccount(ctx context.Context, holdID string) (string, error) {
	if s.closed.Load() {
		return "", ErrClosed
	}
	return s.holdAccount(ctx, s.db, holdID)
}

func (s *Store) holdAccount(ctx context.Context, db Querier, holdID string) (string, error) {
	var id string
	err := db.QueryRowContext(ctx, s.reads.holdAccount, holdID).Scan(&id)
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
	return s.entries(ctx, s.db, f)
}

func (s *Store) entries(ctx context.Context, db Querier, f credits.EntryFilter) ([]credits.Entry, error) {
	r, x := s.reads, s.syntax
	args := []any{f.Account, f.AfterSeq}
	where := []string{"e.account = " + x.Param(1), "e.seq > " + x.Param(2)}
	for _, bound := range []struct {
		t  time.Time
		op string
	}{{f.Since, ">="}, {f.Until, "<"}} {
		if bound.t.IsZero() {
			continue
		}
		n, err := Nanos(bound.t)
		if err != nil {
			return nil, err
		}
		args = append(args, n)
		where = append(where, "e.at "+bound.op+" "+x.Param(len(args)))
	}
	if f.BeforeSeq > 0 {
		args = append(args, f.BeforeSeq)
		where = append(where, "e.seq < "+x.Param(len(args)))
	}
	if len(f.Types) > 0 {
		types := make([]string, len(f.Types))
		for i, t := range f.Types {
			types[i] = string(t)
		}
		args = append(args, x.List(types))
		where = append(where, x.In("e.type", x.Param(len(args))))
	}
	query := r.entries + " WHERE " + strings.Join(where, " AND ") + " ORDER BY e.seq"
	if f.Newest {
		query += " DESC"
	}
	if f.Limit > 0 {
		args = append(args, f.Limit)
		query += " LIMIT " + x.Param(len(args))
	}
	return readAccountRows(ctx, s, db, Entries, "entries", f.Account, query, args)
}

// readAccountRows runs query, a read of one account's rows of table t, and
// decodes them; no row at all is an error wrapping ErrUnknownAccount when
// the account does not exist.
func readAccountRows[R any](ctx context.Context, s *Store, db Querier, t *Table[R], what, account, query string, args []any) ([]R, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: %s: %w", what, err)
	}
	defer rows.Close()
	var out []R
	var cd codec
	err = ScanRows(rows, len(t.Columns), func(vals []any) { out = append(out, t.decode(vals, &cd)) })
	if err = cmp.Or(err, cd.err); err != nil {
		return nil, fmt.Errorf("sqlstore: %s: %w", what, err)
	}
	if len(out) == 0 {
		if err := s.exists(ctx, db, account); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Buckets implements credits.Store.
func (s *Store) Buckets(ctx context.Context, f credits.BucketFilter) ([]credits.Bucket, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	return s.buckets(ctx, s.db, f)
}

func (s *Store) buckets(ctx context.Context, db Querier, f credits.BucketFilter) ([]credits.Bucket, error) {
	query, args := s.reads.buckets, []any{f.Account, f.AfterSeq, f.AfterID}
	if f.LiveOnly {
		query += " AND " + LiveBucket("b")
	}
	if f.RestoredFrom != "" {
		args = append(args, f.RestoredFrom)
		query += " AND b.restored_from = " + s.syntax.Param(len(args))
	}
	query += " ORDER BY b.seq, b.id"
	if f.Limit > 0 {
		args = append(args, f.Limit)
		query += " LIMIT " + s.syntax.Param(len(args))
	}
	return readAccountRows(ctx, s, db, Buckets, "buckets", f.Account, query, args)
}

// exists returns nil when the account exists, or an error wrapping
// credits.ErrUnknownAccount.
func (s *Store) exists(ctx context.Context, db Querier, account string) error {
	var one int
	switch err := db.QueryRowContext(ctx, s.reads.exists, account).Scan(&one); {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%w: %q", credits.ErrUnknownAccount, account)
	case err != nil:
		return fmt.Errorf("sqlstore: %w", err)
	}
	return nil
}

// DueAccounts implements credits.Store.
func (s *Store) DueAccounts(ctx context.Context, now time.Time, warn time.Duration, limit int) ([]string, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	return s.dueAccounts(ctx, s.db, now, warn, limit)
}

func (s *Store) dueAccounts(ctx context.Context, db Querier, now time.Time, warn time.Duration, limit int) ([]string, error) {
	n, err := Nanos(now)
	if err != nil {
		return nil, err
	}
	warnBy := int64(math.MinInt64)
	if warn > 0 {
		if warnBy, err = Nanos(now.Add(warn)); err != nil {
			return nil, err
		}
	}
	rows, err := db.QueryContext(ctx, s.reads.dueAccounts, n, limit, warnBy)
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
// An operation runs through the same lock → load → apply → write code as
// any other, as a batch of one, and never commits, rolls back or retries:
// a collision or an error is the caller's to handle (on PostgreSQL, a
// failed statement aborts tx). The ledger does not call its OnLowBalance
// hook for it (the store is a credits.CommitsLater: tx may roll back); the
// balance_low entry and the feed report it once tx commits. On SQLite, tx must be a write transaction (the DSN's
// _txlock=immediate, as Open sets).
func (s *Store) WithTx(tx *sql.Tx) credits.Store {
	return &txStore{s: s, tx: s.driver.Join(tx), sqlTx: tx}
}

type txStore struct {
	s     *Store
	tx    Tx
	sqlTx *sql.Tx
}

// CommitsLater implements credits.CommitsLater: the caller commits.
func (t *txStore) CommitsLater() bool { return true }

func (t *txStore) Update(ctx context.Context, q credits.Query, apply func(*credits.State) (*credits.Change, error)) error {
	p := &pending{ctx: ctx, q: q, apply: apply}
	_, err := t.s.write(ctx, t.tx, []*pending{p})
	switch {
	case errors.Is(err, errRestart): // answered early: a panic, or a change that cannot be stored
		return p.result()
	case err != nil:
		return err
	}
	return p.err
}

func (t *txStore) View(ctx context.Context, q credits.Query) (*credits.State, error) {
	return t.s.view(ctx, t.tx, q)
}

func (t *txStore) HoldAccount(ctx context.Context, holdID string) (string, error) {
	return t.s.holdAccount(ctx, t.sqlTx, holdID)
}

func (t *txStore) Entries(ctx context.Context, f credits.EntryFilter) ([]credits.Entry, error) {
	return t.s.entries(ctx, t.sqlTx, f)
}

func (t *txStore) Buckets(ctx context.Context, f credits.BucketFilter) ([]credits.Bucket, error) {
	return t.s.buckets(ctx, t.sqlTx, f)
}

func (t *txStore) DueAccounts(ctx context.Context, now time.Time, warn time.Duration, limit int) ([]string, error) {
	return t.s.dueAccounts(ctx, t.sqlTx, now, warn, limit)
}

package sqlstore_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creditkit/credits"
	"github.com/creditkit/credits/sqlstore"
	"github.com/creditkit/credits/storetest"
)

// postgresDSN returns the test database's DSN from CREDITS_TEST_POSTGRES.
// Without it the test is skipped with a message, except under CI=true,
// where a missing database is a failure.
func postgresDSN(t testing.TB) string {
	dsn := os.Getenv("CREDITS_TEST_POSTGRES")
	if dsn == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("CREDITS_TEST_POSTGRES is not set: the PostgreSQL tests must run in CI")
		}
		t.Skip("CREDITS_TEST_POSTGRES is not set: skipping the PostgreSQL tests (set it to a postgres:// DSN to run them)")
	}
	return dsn
}

func randomName(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// newPostgres opens a store in a schema of its own, dropped at the end.
func newPostgres(t testing.TB) *sqlstore.Store {
	return newPostgresWith(t, sqlstore.Options{})
}

// newPostgresWith opens a store with opts in a schema of its own.
func newPostgresWith(t testing.TB, opts sqlstore.Options) *sqlstore.Store {
	dsn := postgresDSN(t)
	schema := randomName("credits_test_")
	opts.Schema = schema
	ctx := context.Background()
	s, err := sqlstore.Open(ctx, dsn, &opts)
	if err != nil {
		t.Fatalf("open PostgreSQL: %v", err)
	}
	t.Cleanup(func() {
		_, _ = s.DB().ExecContext(context.Background(), `DROP SCHEMA "`+schema+`" CASCADE`)
		_ = s.Close()
	})
	return s
}

// newPostgresConn is a plain connection pool to the test database.
func newPostgresConn(t testing.TB) *sql.DB {
	db, err := sql.Open("pgx", postgresDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func newSQLiteFile(t testing.TB) *sqlstore.Store {
	path := filepath.Join(t.TempDir(), "credits.db")
	s, err := sqlstore.Open(context.Background(), "file:"+path, nil)
	if err != nil {
		t.Fatalf("open SQLite: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func newSQLiteMemory(t testing.TB) *sqlstore.Store {
	s, err := sqlstore.Open(context.Background(), ":memory:", nil)
	if err != nil {
		t.Fatalf("open SQLite: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// The configurations that select a different code path of the store, each
// run through the whole conformance suite on every database:
//
//   - GroupCommit: operations queue on the committers and share batches
//     (on PostgreSQL, batches on kept states too): the default;
//   - NoGroupCommit: every operation a batch of one on its caller's
//     goroutine and context;
//   - NoKeptStates (PostgreSQL): every batch locks and loads its accounts;
//   - WithTx: every operation inside a transaction of the caller's
//     (Store.WithTx), whose statements run one by one.
var configs = []struct {
	name   string
	opts   sqlstore.Options
	withTx bool
	pgOnly bool
}{
	{name: "GroupCommit"},
	{name: "NoGroupCommit", opts: sqlstore.Options{NoGroupCommit: true}},
	{name: "NoKeptStates", opts: sqlstore.Options{KeptStates: -1}, pgOnly: true},
	{name: "WithTx", withTx: true},
}

// conformance runs the suite on stores open makes, in each configuration.
func conformance(t *testing.T, pg bool, open func(t *testing.T, opts sqlstore.Options) *sqlstore.Store) {
	for _, c := range configs {
		if c.pgOnly && !pg {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) credits.Store {
				s := open(t, c.opts)
				switch {
				case c.withTx:
					return &callerTx{Store: s}
				case c.opts.NoGroupCommit:
					return noBatcher{s, s}
				}
				return batching(t, s)
			})
		})
	}
}

func TestConformanceSQLiteMemory(t *testing.T) {
	t.Parallel()
	conformance(t, false, func(t *testing.T, opts sqlstore.Options) *sqlstore.Store {
		return openSQLiteWith(t, ":memory:", opts)
	})
}

// A SQLite file differs from memory by its DSN only (WAL, durability), not
// by a code path: it runs the default configuration, the others run on
// memory.
func TestConformanceSQLiteFile(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) credits.Store {
		return batching(t, openSQLiteWith(t, "file:"+filepath.Join(t.TempDir(), "credits.db"), sqlstore.Options{}))
	})
}

func TestConformancePostgres(t *testing.T) {
	postgresDSN(t)
	t.Parallel()
	conformance(t, true, func(t *testing.T, opts sqlstore.Options) *sqlstore.Store { return newPostgresWith(t, opts) })
}

func openSQLiteWith(t testing.TB, dsn string, opts sqlstore.Options) *sqlstore.Store {
	s, err := sqlstore.Open(context.Background(), dsn, &opts)
	if err != nil {
		t.Fatalf("open SQLite: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// callerTx runs every operation in a transaction of its own that it
// begins, hands to the store through WithTx, and commits, as an
// application does: a collision is the caller's to retry, and it does.
type callerTx struct{ *sqlstore.Store }

func (c *callerTx) Update(ctx context.Context, q credits.Query, apply func(*credits.State) (*credits.Change, error)) error {
	for attempt := 1; ; attempt++ {
		tx, err := c.DB().BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("%w: %w", credits.ErrTransient, err)
		}
		err = c.WithTx(tx).Update(ctx, q, apply)
		if err == nil {
			if err = tx.Commit(); err != nil {
				return fmt.Errorf("%w: commit: %w", credits.ErrTransient, err)
			}
			return nil
		}
		_ = tx.Rollback()
		var se interface{ SQLState() string }
		if attempt < 8 && errors.As(err, &se) && (se.SQLState() == "40001" || se.SQLState() == "40P01" || se.SQLState() == "23505") {
			continue
		}
		return err
	}
}

func (c *callerTx) View(ctx context.Context, q credits.Query) (*credits.State, error) {
	var st *credits.State
	err := c.inTx(ctx, func(s credits.Store) (err error) { st, err = s.View(ctx, q); return err })
	return st, err
}

func (c *callerTx) HoldAccount(ctx context.Context, id string) (string, error) {
	var a string
	err := c.inTx(ctx, func(s credits.Store) (err error) { a, err = s.HoldAccount(ctx, id); return err })
	return a, err
}

func (c *callerTx) Entries(ctx context.Context, f credits.EntryFilter) ([]credits.Entry, error) {
	var es []credits.Entry
	err := c.inTx(ctx, func(s credits.Store) (err error) { es, err = s.Entries(ctx, f); return err })
	return es, err
}

func (c *callerTx) DueAccounts(ctx context.Context, now time.Time, warn time.Duration, limit int) ([]string, error) {
	var ids []string
	err := c.inTx(ctx, func(s credits.Store) (err error) { ids, err = s.DueAccounts(ctx, now, warn, limit); return err })
	return ids, err
}

// inTx runs a read inside a transaction of the caller's.
func (c *callerTx) inTx(ctx context.Context, read func(credits.Store) error) error {
	tx, err := c.DB().BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	return read(c.WithTx(tx))
}

// batching checks, at the end of a state machine or concurrency test, that
// the store did run operations in shared batches: the suite then covered
// group commit, not only batches of one.
func batching(t *testing.T, s *sqlstore.Store) batcher {
	if strings.Contains(t.Name(), "/StateMachine") || strings.Contains(t.Name(), "/Concurrency") || strings.Contains(t.Name(), "/Faults/Concurrent") {
		t.Cleanup(func() {
			st := s.Stats()
			t.Logf("group commit: %d operations in %d batches, largest %d, sizes %v; %d runs on a kept state, %d of them stale", st.Operations, st.Batches, st.MaxBatch, st.BatchSizes, st.KeptRuns, st.KeptStale)
			if st.MaxBatch < 2 {
				t.Errorf("no operations shared a batch: %+v", st)
			}
		})
	}
	return batcher{s}
}

// TestMain: under the race detector the rapid state machines run 20 checks
// instead of rapid's default 100 (an explicit -rapid.checks is left alone).
// modernc's SQLite is C translated to Go and runs some thirty times slower
// there, and the sequential state machine is not where races hide (the
// concurrency, fault and kill tests are); CI runs the state machines on
// SQLite and PostgreSQL in full, and deeper, without -race. It is set once
// here because the conformance tests run in parallel.
func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "rapid.checks" })
	if raceBuild && !set {
		_ = flag.Set("rapid.checks", "20")
	}
	os.Exit(m.Run())
}

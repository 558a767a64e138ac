package sqlstore_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

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

func TestConformanceSQLiteMemory(t *testing.T) {
	fewerChecksUnderRace(t)
	storetest.Run(t, func(t *testing.T) credits.Store { return newSQLiteMemory(t) })
}

func TestConformanceSQLiteFile(t *testing.T) {
	fewerChecksUnderRace(t)
	storetest.Run(t, func(t *testing.T) credits.Store { return batching(t, newSQLiteFile(t)) })
}

// batching checks, at the end of a state machine or concurrency test, that
// the store did run operations in shared batches: the suite then covered
// group commit, not only batches of one.
func batching(t *testing.T, s *sqlstore.Store) *sqlstore.Store {
	if strings.Contains(t.Name(), "/StateMachine") || strings.Contains(t.Name(), "/Concurrency") || strings.Contains(t.Name(), "/Faults/Concurrent") {
		t.Cleanup(func() {
			st := s.Stats()
			t.Logf("group commit: %d operations in %d batches, largest %d, sizes %v; %d runs on a kept state, %d of them stale", st.Operations, st.Batches, st.MaxBatch, st.BatchSizes, st.KeptRuns, st.KeptStale)
			if st.MaxBatch < 2 {
				t.Errorf("no operations shared a batch: %+v", st)
			}
		})
	}
	return s
}

// fewerChecksUnderRace: modernc's SQLite is C translated to Go, and under
// the race detector it runs some thirty times slower, while the detector
// has nothing to find inside the database engine (our own code is raced on
// memstore and PostgreSQL). So under -race the SQLite state machine runs 20
// checks instead of rapid's default 100; CI runs it in full (and deeper)
// without -race. An explicit -rapid.checks is left alone.
func fewerChecksUnderRace(t *testing.T) {
	if !raceBuild {
		return
	}
	f := flag.Lookup("rapid.checks")
	if f == nil || f.Value.String() != f.DefValue {
		return
	}
	_ = f.Value.Set("20")
	t.Cleanup(func() { _ = f.Value.Set(f.DefValue) })
}

func TestConformancePostgres(t *testing.T) {
	postgresDSN(t)
	storetest.Run(t, func(t *testing.T) credits.Store { return batching(t, newPostgres(t)) })
}

// Without group commit, every PostgreSQL operation first tries the
// optimistic path (read, apply, write guarded by the account row), which
// within one store group commit only takes when the account's committer
// is idle. Writes computed on a stale load, and a hot account's retries.
func TestOptimisticPostgres(t *testing.T) {
	postgresDSN(t)
	newStore := func(t *testing.T) credits.Store {
		return noBatcher{newPostgresWith(t, sqlstore.Options{NoGroupCommit: true})}
	}
	t.Run("StaleLoads", func(t *testing.T) { storetest.RunStaleLoads(t, newStore) })
	t.Run("Concurrency", func(t *testing.T) { storetest.RunConcurrency(t, newStore, 64) })
}

package sqlstore_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/creditkit/credits"
	"github.com/creditkit/credits/sqlstore"
	"github.com/creditkit/credits/sqlstore/internal/core"
	"github.com/creditkit/credits/sqlstore/postgres"
	"github.com/creditkit/credits/storetest"
)

// dialects runs f on a fresh SQLite file and on PostgreSQL (in a schema
// of its own). open reopens the same database as a second "process".
func dialects(t *testing.T, f func(t *testing.T, s *sqlstore.Store, open func() *sqlstore.Store)) {
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "credits.db")
		open := func() *sqlstore.Store {
			s, err := sqlstore.Open(context.Background(), "file:"+path, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		}
		f(t, open(), open)
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := postgresDSN(t)
		first := newPostgres(t)
		open := func() *sqlstore.Store {
			s, err := sqlstore.Open(context.Background(), dsn, &sqlstore.Options{Schema: schemaOf(first)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		}
		f(t, first, open)
	})
}

func schemaOf(s *sqlstore.Store) string { return s.Options().Schema }

func TestMigrate(t *testing.T) {
	dialects(t, func(t *testing.T, s *sqlstore.Store, open func() *sqlstore.Store) {
		ctx := context.Background()
		v, err := s.Version(ctx)
		if err != nil || v != s.SchemaVersion() {
			t.Fatalf("after Open: version %d (%v), want %d", v, err, s.SchemaVersion())
		}
		if err := s.Migrate(ctx); err != nil {
			t.Fatalf("migrating twice: %v", err)
		}
		if v2, _ := s.Version(ctx); v2 != v {
			t.Fatalf("a second Migrate changed the version: %d → %d", v, v2)
		}
		// Many processes opening (and migrating) at once.
		var wg sync.WaitGroup
		for range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				o := open()
				if err := o.Migrate(ctx); err != nil {
					t.Errorf("concurrent migrate: %v", err)
				}
			}()
		}
		wg.Wait()
		// A database from a newer version of the code is refused.
		if err := core.SetVersionForTest(ctx, s, s.SchemaVersion()+1); err != nil {
			t.Fatal(err)
		}
		if err := s.Migrate(ctx); !errors.Is(err, sqlstore.ErrSchemaTooNew) {
			t.Fatalf("Migrate on a newer schema: %v, want ErrSchemaTooNew", err)
		}
	})
}

func TestHistoryIsAppendOnly(t *testing.T) {
	dialects(t, func(t *testing.T, s *sqlstore.Store, _ func() *sqlstore.Store) {
		h := storetest.NewHarness(t, s, nil)
		h.Account(t, credits.CreateAccountRequest{ID: "a"})
		ctx := context.Background()
		table := s.TableName("entries")
		if _, err := s.DB().ExecContext(ctx, "UPDATE "+table+" SET amount = 1"); err == nil {
			t.Fatal("the database let an entry be updated")
		}
		if _, err := s.DB().ExecContext(ctx, "DELETE FROM "+table); err == nil {
			t.Fatal("the database let an entry be deleted")
		}
		if n := len(h.History(t, "a")); n != 1 {
			t.Fatalf("entries: %d", n)
		}
	})
}

func TestSchemaRefusesBadRows(t *testing.T) {
	dialects(t, func(t *testing.T, s *sqlstore.Store, _ func() *sqlstore.Store) {
		h := storetest.NewHarness(t, s, nil)
		h.Account(t, credits.CreateAccountRequest{ID: "a"})
		ctx := context.Background()
		for _, q := range []string{
			"UPDATE " + s.TableName("buckets") + " SET remaining = -1",
			"UPDATE " + s.TableName("buckets") + " SET amount = 0",
			"UPDATE " + s.TableName("accounts") + " SET available = -5",
		} {
			if _, err := s.DB().ExecContext(ctx, q); err == nil {
				t.Errorf("the schema accepted %q", q)
			}
		}
	})
}

// alternating spreads calls over two stores on one database: two pools, as
// two application servers would have.
type alternating struct {
	stores [2]credits.Store
	n      atomic.Uint64
}

func (a *alternating) next() credits.Store { return a.stores[a.n.Add(1)%2] }
func (a *alternating) Update(ctx context.Context, q credits.Query, f func(*credits.State) (*credits.Change, error)) error {
	return a.next().Update(ctx, q, f)
}
func (a *alternating) View(ctx context.Context, q credits.Query) (*credits.State, error) {
	return a.next().View(ctx, q)
}
func (a *alternating) HoldAccount(ctx context.Context, id string) (string, error) {
	return a.next().HoldAccount(ctx, id)
}
func (a *alternating) Entries(ctx context.Context, f credits.EntryFilter) ([]credits.Entry, error) {
	return a.next().Entries(ctx, f)
}
func (a *alternating) Buckets(ctx context.Context, f credits.BucketFilter) ([]credits.Bucket, error) {
	return a.next().Buckets(ctx, f)
}
func (a *alternating) DueAccounts(ctx context.Context, now time.Time, warn time.Duration, limit int) ([]string, error) {
	return a.next().DueAccounts(ctx, now, warn, limit)
}

// 64 goroutines on one hot account through two separate pools.
func TestTwoAppServers(t *testing.T) {
	dialects(t, func(t *testing.T, s *sqlstore.Store, open func() *sqlstore.Store) {
		storetest.RunConcurrency(t, func(t *testing.T) credits.Store {
			return &alternating{stores: [2]credits.Store{s, open()}}
		}, 64)
	})
}

// The state machine on two app servers: on PostgreSQL each keeps the
// states it wrote last, which the other's writes make stale; every such
// write must be refused and run again on a read state.
func TestStateMachineTwoAppServers(t *testing.T) {
	postgresDSN(t)
	var first, other *sqlstore.Store
	storetest.RunStateMachine(t, func(t *testing.T) credits.Store {
		first = newPostgres(t)
		o, err := sqlstore.Open(context.Background(), postgresDSN(t), &sqlstore.Options{Schema: schemaOf(first)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = o.Close() })
		other = o
		return &alternating{stores: [2]credits.Store{first, other}}
	})
	st1, st2 := first.Stats(), other.Stats()
	t.Logf("kept-state runs %d / %d, stale %d / %d", st1.KeptRuns, st2.KeptRuns, st1.KeptStale, st2.KeptStale)
	if st1.KeptStale+st2.KeptStale == 0 {
		t.Error("no write on a kept state was found stale: the test did not cover the guard")
	}
}

// A process that dies between Reserve and Capture: the reservation is
// whole (committed) or absent (its transaction never committed), and its
// deadline gives the credits back to a later process.
func TestCrashBetweenReserveAndCapture(t *testing.T) {
	dialects(t, func(t *testing.T, s *sqlstore.Store, open func() *sqlstore.Store) {
		ctx := context.Background()
		h := storetest.NewHarness(t, s, nil) // 50 signup credits
		h.Account(t, credits.CreateAccountRequest{ID: "a"})
		q := h.Quote(t, credits.QuoteRequest{Tool: "video", Resolution: "720p", Duration: 5 * time.Second})

		// 1. Committed, then the worker dies: nothing captures it.
		res, err := h.Ledger.Reserve(ctx, credits.ReserveRequest{Account: "a", Quote: q, Key: "job-1", TTL: 10 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		// 2. Abandoned mid-transaction: the reserve ran in a transaction
		// that is never committed (the process died before COMMIT).
		tx, err := s.DB().BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.Ledger.WithStore(s.WithTx(tx)).Reserve(ctx, credits.ReserveRequest{Account: "a", Quote: h.Quote(t, credits.QuoteRequest{Tool: "image"}), Key: "job-2"}); err != nil {
			t.Fatal(err)
		}
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
		// A new process: the first hold is whole, the second absent.
		later := open()
		h2 := storetest.NewHarness(t, later, nil)
		h2.Clock.Set(h.Clock.Now())
		b := h2.Balance(t, "a")
		if b.Held != q.Total || b.Available != credits.Whole(10) {
			t.Fatalf("after the crash: %+v", b)
		}
		storetest.CheckInvariants(t, h2, "a")
		// The deadline passes; a sweep in the new process releases it.
		h2.Clock.Set(res.Hold.Deadline)
		r, err := h2.Ledger.Sweep(ctx)
		if err != nil || r.HoldsExpired != 1 {
			t.Fatalf("sweep: %+v %v", r, err)
		}
		if b := h2.Balance(t, "a"); b.Held.IsPositive() || b.Available != credits.Whole(50) {
			t.Fatalf("after the deadline: %+v", b)
		}
		storetest.CheckInvariants(t, h2, "a")
	})
}

// The backend serving a transaction is killed mid-flight: the operation is
// not half-written, the pool reconnects, and a retry with the same key
// has exactly one effect.
func TestPostgresBackendKilled(t *testing.T) {
	postgresDSN(t)
	s := newPostgres(t)
	ctx := context.Background()
	h := storetest.NewHarness(t, s, nil)
	h.Account(t, credits.CreateAccountRequest{ID: "a"})
	tx, err := s.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	if err := tx.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	q := h.Quote(t, credits.QuoteRequest{Tool: "image"})
	req := credits.ChargeRequest{Account: "a", Quote: q, Key: "img-1"}
	if _, err := h.Ledger.WithStore(s.WithTx(tx)).Charge(ctx, req); err != nil {
		t.Fatal(err)
	}
	killer := newPostgresConn(t)
	if _, err := killer.ExecContext(ctx, "SELECT pg_terminate_backend($1)", pid); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err == nil {
		t.Fatal("commit on a killed backend succeeded")
	}
	if b := h.Balance(t, "a"); b.Spent.IsPositive() {
		t.Fatalf("a charge whose transaction died was stored: %+v", b)
	}
	// The application retries: one effect.
	for range 2 {
		if _, err := h.Ledger.Charge(ctx, req); err != nil {
			t.Fatalf("retry after the kill: %v", err)
		}
	}
	if b := h.Balance(t, "a"); b.Spent != q.Total {
		t.Fatalf("after the retries: %+v", b)
	}
	storetest.CheckInvariants(t, h, "a")
}

// The caller's transaction: the ledger's writes commit or roll back with
// the application's own rows.
func TestWithTx(t *testing.T) {
	dialects(t, func(t *testing.T, s *sqlstore.Store, _ func() *sqlstore.Store) {
		ctx := context.Background()
		h := storetest.NewHarness(t, s, nil)
		h.Account(t, credits.CreateAccountRequest{ID: "a"})
		jobs := s.TableName("test_jobs")
		if _, err := s.DB().ExecContext(ctx, "CREATE TABLE "+jobs+" (id TEXT PRIMARY KEY, hold TEXT NOT NULL)"); err != nil {
			t.Fatal(err)
		}
		q := h.Quote(t, credits.QuoteRequest{Tool: "image"})
		for i, commit := range []bool{false, true} {
			tx, err := s.DB().BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			res, err := h.Ledger.WithStore(s.WithTx(tx)).Reserve(ctx, credits.ReserveRequest{Account: "a", Quote: q, Key: fmt.Sprint("job-", i)})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.ExecContext(ctx, "INSERT INTO "+jobs+" (id, hold) VALUES ("+placeholder(s)(1)+", "+placeholder(s)(2)+")", fmt.Sprint("job-", i), res.Hold.ID); err != nil {
				t.Fatal(err)
			}
			if commit {
				err = tx.Commit()
			} else {
				err = tx.Rollback()
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		var n int
		if err := s.DB().QueryRowContext(ctx, "SELECT count(*) FROM "+jobs).Scan(&n); err != nil || n != 1 {
			t.Fatalf("job rows: %d %v", n, err)
		}
		if b := h.Balance(t, "a"); b.Held != q.Total {
			t.Fatalf("held %s, want one hold of %s", b.Held, q.Total)
		}
		storetest.CheckInvariants(t, h, "a")
	})
}

// Several processes migrating a new database at the same moment: one
// applies each version, the others wait and find nothing to do.
func TestConcurrentFirstMigration(t *testing.T) {
	ctx := context.Background()
	run := func(t *testing.T, dsn string, opts *sqlstore.Options, cleanup func(*sqlstore.Store)) {
		var wg sync.WaitGroup
		stores := make([]*sqlstore.Store, 6)
		for i := range stores {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, err := sqlstore.Open(ctx, dsn, opts)
				if err != nil {
					t.Errorf("open %d: %v", i, err)
					return
				}
				stores[i] = s
			}()
		}
		wg.Wait()
		for _, s := range stores {
			if s == nil {
				continue
			}
			if v, err := s.Version(ctx); err != nil || v != s.SchemaVersion() {
				t.Errorf("version %d %v", v, err)
			}
		}
		if stores[0] != nil {
			cleanup(stores[0])
		}
		for _, s := range stores {
			if s != nil {
				_ = s.Close()
			}
		}
	}
	t.Run("sqlite", func(t *testing.T) {
		run(t, "file:"+filepath.Join(t.TempDir(), "new.db"), nil, func(*sqlstore.Store) {})
	})
	t.Run("postgres", func(t *testing.T) {
		schema := randomName("credits_test_")
		run(t, postgresDSN(t), &sqlstore.Options{Schema: schema}, func(s *sqlstore.Store) {
			_, _ = s.DB().ExecContext(ctx, `DROP SCHEMA "`+schema+`" CASCADE`)
		})
	})
}

// A database an older release made (schema v1, with data) upgrades in
// place: v2's bucket flag is derived from the rows, and the ledger carries
// on with them.
func TestMigrateFromV1(t *testing.T) {
	run := func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		if err := core.MigrateTo(ctx, s, 1); err != nil {
			t.Fatal(err)
		}
		p := placeholder(s)
		now := storetest.Epoch.UnixNano()
		exec := func(q string, args ...any) {
			t.Helper()
			if _, err := s.DB().ExecContext(ctx, q, args...); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		// An account with a live grant of 30 credits and an expired one of 10.
		exec("INSERT INTO "+s.TableName("accounts")+" (id, created_at, team, members, low_balance_threshold, available, held, granted, spent, expired, seq, metadata) VALUES ('a', "+p(1)+", 0, 'null', 0, 30000, 0, 40000, 0, 10000, 3, 'null')", now)
		exec("INSERT INTO "+s.TableName("buckets")+" (id, account, kind, amount, remaining, expired, expires_at, created_at, seq, restored_from, note) VALUES ('b1', 'a', 'purchase', 30000, 30000, 0, NULL, "+p(1)+", 1, '', ''), ('b2', 'a', 'promo', 10000, 0, 10000, "+p(1)+", "+p(1)+", 2, '', '')", now)
		exec("INSERT INTO "+s.TableName("entries")+" (account, seq, type, amount, available, held, at, hold, bucket, kind, tool, member, key, note) VALUES ('a', 1, 'grant', 30000, 30000, 0, "+p(1)+", '', 'b1', 'purchase', '', '', '', ''), ('a', 2, 'grant', 10000, 40000, 0, "+p(1)+", '', 'b2', 'promo', '', '', '', ''), ('a', 3, 'expiry', 10000, 30000, 0, "+p(1)+", '', 'b2', 'promo', '', '', '', '')", now)
		// v1 → v2; the step's rolling upgrade (v1 servers still writing) is
		// checked at v2, whose triggers serve it.
		if err := core.MigrateTo(ctx, s, 2); err != nil {
			t.Fatalf("migrate v1 → v2: %v", err)
		}
		rows, err := s.DB().QueryContext(ctx, "SELECT id, live FROM "+s.TableName("buckets")+" ORDER BY id")
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int{}
		for rows.Next() {
			var id string
			var live int
			if err := rows.Scan(&id, &live); err != nil {
				t.Fatal(err)
			}
			got[id] = live
		}
		rows.Close()
		if got["b1"] != 1 || got["b2"] != 0 {
			t.Fatalf("live flags after the migration: %v, want b1 live, b2 not", got)
		}
		// A server still on v1 (it does not know the column) writes during
		// a rolling upgrade: the flag stays right.
		if s.Dialect() == "postgres" {
			// v1 inserted whole rows from JSON: the new column comes as NULL.
			exec("INSERT INTO " + s.TableName("buckets") + " SELECT * FROM jsonb_populate_recordset(NULL::" + s.TableName("buckets") + `, '[{"id":"v1","account":"x","kind":"promo","amount":5000,"remaining":5000,"expired":0,"expires_at":null,"created_at":1,"seq":1,"restored_from":"","note":""}]')`)
		} else {
			exec("INSERT INTO " + s.TableName("buckets") + " (id, account, kind, amount, remaining, expired, expires_at, created_at, seq, restored_from, note) VALUES ('v1', 'x', 'promo', 5000, 5000, 0, NULL, 1, 1, '', '')")
		}
		exec("UPDATE " + s.TableName("buckets") + " SET remaining = 0 WHERE id = 'v1'")
		exec("UPDATE " + s.TableName("buckets") + " SET remaining = 1000 WHERE id = 'v1'")
		var live int
		if err := s.DB().QueryRowContext(ctx, "SELECT live FROM "+s.TableName("buckets")+" WHERE id = 'v1'").Scan(&live); err != nil || live != 1 {
			t.Fatalf("a bucket a v1 server wrote with credits: live = %d (%v), want 1", live, err)
		}
		exec("UPDATE " + s.TableName("buckets") + " SET remaining = 0 WHERE id = 'v1'")
		if err := s.DB().QueryRowContext(ctx, "SELECT live FROM "+s.TableName("buckets")+" WHERE id = 'v1'").Scan(&live); err != nil || live != 0 {
			t.Fatalf("a bucket a v1 server emptied: live = %d (%v), want 0", live, err)
		}

		// v2 → v3: accounts get the version the store owns; the step's
		// rolling upgrade (v2 servers still writing) is checked at v3.
		if err := core.MigrateTo(ctx, s, 3); err != nil {
			t.Fatalf("migrate v2 → v3: %v", err)
		}
		if v, err := s.Version(ctx); err != nil || v != 3 {
			t.Fatalf("version %d (%v), want 3", v, err)
		}
		version := func(id string) int64 {
			t.Helper()
			var v int64
			if err := s.DB().QueryRowContext(ctx, "SELECT version FROM "+s.TableName("accounts")+" WHERE id = "+p(1), id).Scan(&v); err != nil {
				t.Fatal(err)
			}
			return v
		}
		if v := version("a"); v != 0 {
			t.Fatalf("an account from before v3 has version %d, want 0", v)
		}
		// A server still on v2 (it does not know the column) writes an
		// account during the rolling upgrade: on PostgreSQL a whole row from
		// JSON (the column comes as NULL), on SQLite with its columns named.
		if s.Dialect() == "postgres" {
			exec("INSERT INTO " + s.TableName("accounts") + " SELECT * FROM jsonb_populate_recordset(NULL::" + s.TableName("accounts") + `, '[{"id":"v2","created_at":1,"team":0,"members":"null","low_balance_threshold":0,"available":0,"held":0,"granted":0,"spent":0,"expired":0,"seq":0,"metadata":"null"}]')`)
			// Its UPDATE moves the version (a trigger), so a state another
			// server kept from before it is refused.
			exec("UPDATE " + s.TableName("accounts") + " SET low_balance_threshold = 5000 WHERE id = 'a'")
			if v := version("a"); v != 1 {
				t.Fatalf("an UPDATE that leaves the version out: version %d, want 1", v)
			}
		} else {
			exec("INSERT INTO " + s.TableName("accounts") + " (id, created_at, team, members, low_balance_threshold, available, held, granted, spent, expired, seq, metadata) VALUES ('v2', 1, 0, 'null', 0, 0, 0, 0, 0, 0, 0, 'null')")
		}
		if v := version("v2"); v != 0 {
			t.Fatalf("an account a v2 server created: version %d, want 0", v)
		}

		// v3 → current (v5: accounts and entries get a plan).
		if err := s.Migrate(ctx); err != nil {
			t.Fatalf("migrate v3 → v%d: %v", s.SchemaVersion(), err)
		}
		if v, err := s.Version(ctx); err != nil || v != s.SchemaVersion() {
			t.Fatalf("version %d (%v), want %d", v, err, s.SchemaVersion())
		}
		checkPlansFromV4(ctx, t, s)

		h := storetest.NewHarness(t, s, nil)
		q := h.Quote(t, credits.QuoteRequest{Tool: "image"})
		res, err := h.Ledger.Charge(ctx, credits.ChargeRequest{Account: "a", Quote: q, Key: "after-upgrade"})
		if err != nil || res.Available != credits.Whole(23) {
			t.Fatalf("charge after the upgrade: %+v %v", res, err)
		}
		storetest.CheckInvariants(t, h, "a")
	}
	t.Run("sqlite", func(t *testing.T) {
		s, err := openUnchecked(context.Background(), "file:"+filepath.Join(t.TempDir(), "v1.db"), sqlstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		run(t, s)
	})
	t.Run("postgres", func(t *testing.T) {
		schema := randomName("credits_test_")
		s, err := openUnchecked(context.Background(), postgresDSN(t), sqlstore.Options{Schema: schema})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_, _ = s.DB().ExecContext(context.Background(), `DROP SCHEMA IF EXISTS "`+schema+`" CASCADE`)
			_ = s.Close()
		})
		if _, err := s.DB().ExecContext(context.Background(), `CREATE SCHEMA "`+schema+`"`); err != nil {
			t.Fatal(err)
		}
		run(t, s)
	})
}

// checkPlansFromV4 checks, on a database just migrated to v5, that every
// account and entry reads the plan "" (none) and every account the
// allowance null and no renewal (renews_at NULL), and that a server still
// running the previous release during the rolling deploy — it names the
// columns it writes, which do not include v5's (core.Accounts and
// core.Entries without them) — creates rows that read the same, and
// updates an account row without losing the plan, allowance and renewal a
// current server gave it.
func checkPlansFromV4(ctx context.Context, t *testing.T, s *sqlstore.Store) {
	t.Helper()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := s.DB().ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// count counts the rows of table by the value of expr.
	count := func(table, expr string) map[string]int {
		t.Helper()
		rows, err := s.DB().QueryContext(ctx, "SELECT "+expr+", count(*) FROM "+s.TableName(table)+" GROUP BY 1")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[string]int{}
		for rows.Next() {
			var v string
			var n int
			if err := rows.Scan(&v, &n); err != nil {
				t.Fatal(err)
			}
			out[v] = n
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	// The v5 columns of each table, as every row written without them
	// must read them.
	v5 := map[string][][2]string{
		"accounts": {{"plan", ""}, {"allowance", "null"}, {"renews_at IS NULL", "true"}, {"limits", "null"}},
		"entries":  {{"plan", ""}},
	}
	checkDefaults := func(when string) {
		t.Helper()
		for table, cols := range v5 {
			for _, c := range cols {
				expr := c[0]
				if strings.HasSuffix(expr, "IS NULL") {
					expr = "CASE WHEN " + expr + " THEN 'true' ELSE 'false' END"
				}
				if got := count(table, expr); len(got) != 1 || got[c[1]] == 0 {
					t.Fatalf("%s %s, rows by %s: %v, want every one %q", table, when, c[0], got, c[1])
				}
			}
		}
	}
	checkDefaults("after the migration to v5")

	// The previous release's statements: its descriptors' columns, which
	// are this release's without v5's (ADD COLUMN appends them, in the
	// order the migration adds them) and any later migration's.
	v4 := func(names []string, added ...string) []string {
		t.Helper()
		i := slices.Index(names, "plan")
		if i < 0 || len(names) < i+len(added) || !slices.Equal(names[i:i+len(added)], added) {
			t.Fatalf("the columns of %v from plan on are not the ones v5 adds, %v, next", names, added)
		}
		return names[:i]
	}
	accountCols, entryCols := v4(core.Accounts.Names, "plan", "allowance", "renews_at", "limits"), v4(core.Entries.Names, "plan")
	p := placeholder(s)
	params := func(n int) string {
		ps := make([]string, n)
		for i := range ps {
			ps[i] = p(i + 1)
		}
		return strings.Join(ps, ", ")
	}
	exec("INSERT INTO "+s.TableName("accounts")+" ("+strings.Join(accountCols, ", ")+") VALUES ("+params(len(accountCols))+")",
		"v4", 1, 0, "null", 0, 0, 0, 0, 0, 0, 1, "null", 1)
	exec("INSERT INTO "+s.TableName("entries")+" ("+strings.Join(entryCols, ", ")+") VALUES ("+params(len(entryCols))+")",
		"v4", 1, "grant", 0, 0, 0, 1, "", "", "", "", "", "", "")
	checkDefaults("after a previous-release server inserted rows")

	// A current server puts "v2" on a plan with an allowance that renews
	// at renews; the previous release then writes the row, as it does
	// (every column it knows but the key).
	renews := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	allowance := &credits.AllowanceState{Period: credits.PeriodMonth, Anchor: renews.AddDate(0, -2, 0), Index: 1,
		Granted: credits.Whole(100), Buckets: []string{"bkt_1", "bkt_2"}}
	js, err := json.Marshal(allowance)
	if err != nil {
		t.Fatal(err)
	}
	exec("UPDATE "+s.TableName("accounts")+" SET plan = 'pro', allowance = "+p(1)+", renews_at = "+p(2)+" WHERE id = 'v2'", string(js), renews.UnixNano())
	set := make([]string, len(accountCols)-1)
	for i, c := range accountCols[1:] {
		set[i] = c + " = " + p(i+2)
	}
	exec("UPDATE "+s.TableName("accounts")+" SET "+strings.Join(set, ", ")+" WHERE id = "+p(1),
		"v2", 1, 0, "null", 0, 0, 0, 0, 0, 0, 0, "null", 7)
	var v2, v4Account, v4Entry string
	if err := s.DB().QueryRowContext(ctx, "SELECT (SELECT plan FROM "+s.TableName("accounts")+" WHERE id = 'v2'), (SELECT plan FROM "+
		s.TableName("accounts")+" WHERE id = 'v4'), (SELECT plan FROM "+s.TableName("entries")+" WHERE account = 'v4')").Scan(&v2, &v4Account, &v4Entry); err != nil {
		t.Fatal(err)
	}
	if v2 != "pro" || v4Account != "" || v4Entry != "" {
		t.Fatalf("rows a previous-release server wrote: plan of the account it updated %q (want \"pro\"), of the account and entry it inserted %q, %q (want \"\")", v2, v4Account, v4Entry)
	}
	// What the store reads of them: the account the previous release
	// created has no allowance and no renewal, the one it updated keeps
	// both, and only that one is due for renewal at renews.
	for id, want := range map[string]credits.Account{"v4": {}, "v2": {Plan: "pro", Allowance: allowance, RenewsAt: renews}} {
		st, err := s.View(ctx, credits.Query{Account: id})
		if err != nil || st.Account == nil {
			t.Fatalf("View %s: %+v %v", id, st, err)
		}
		got := credits.Account{Plan: st.Account.Plan, Allowance: st.Account.Allowance, RenewsAt: st.Account.RenewsAt}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("account %s, written by a previous-release server, reads (-want +got):\n%s", id, d)
		}
	}
	for at, want := range map[time.Time][]string{renews.Add(-1): nil, renews: {"v2"}} {
		due, err := s.DueAccounts(ctx, at, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		// "a" has nothing due (its live bucket never expires).
		if !slices.Equal(due, want) {
			t.Errorf("DueAccounts(%s) = %v, want %v", at, due, want)
		}
	}
}

// A store that does not migrate never runs on a schema that is not the
// code's: an empty database and an older schema are refused with
// ErrSchemaOutdated (and left as they were), a newer one with
// ErrSchemaTooNew; after Migrate it opens.
func TestNoMigrateRefusesOtherSchemas(t *testing.T) {
	check := func(t *testing.T, dsn string, opts sqlstore.Options) {
		ctx := context.Background()
		noMigrate := opts
		noMigrate.NoMigrate = true
		if _, err := sqlstore.Open(ctx, dsn, &noMigrate); !errors.Is(err, sqlstore.ErrSchemaOutdated) {
			t.Fatalf("NoMigrate on an empty database: %v, want ErrSchemaOutdated", err)
		}
		old, err := openUnchecked(ctx, dsn, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer old.Close()
		// New on the application's own *sql.DB, without Migrate: the same.
		if _, err := newOn(ctx, old.DB(), old.Dialect(), &opts); !errors.Is(err, sqlstore.ErrSchemaOutdated) {
			t.Fatalf("New without Migrate on an empty database: %v, want ErrSchemaOutdated", err)
		}
		if _, err := old.Version(ctx); err == nil {
			t.Fatal("the refused open created the schema")
		}
		if opts.Schema != "" {
			if _, err := old.DB().ExecContext(ctx, `CREATE SCHEMA "`+opts.Schema+`"`); err != nil {
				t.Fatal(err)
			}
		}
		if err := core.MigrateTo(ctx, old, 1); err != nil {
			t.Fatal(err)
		}
		_, err = sqlstore.Open(ctx, dsn, &noMigrate)
		if !errors.Is(err, sqlstore.ErrSchemaOutdated) || !strings.Contains(err.Error(), "version 1") {
			t.Fatalf("NoMigrate on a v1 database: %v, want ErrSchemaOutdated naming version 1", err)
		}
		if v, _ := old.Version(ctx); v != 1 {
			t.Fatalf("the refused open changed the version to %d", v)
		}
		if err := old.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		s, err := sqlstore.Open(ctx, dsn, &noMigrate)
		if err != nil {
			t.Fatalf("NoMigrate on a current database: %v", err)
		}
		_ = s.Close()
		if err := core.SetVersionForTest(ctx, old, old.SchemaVersion()+1); err != nil {
			t.Fatal(err)
		}
		if _, err := sqlstore.Open(ctx, dsn, &noMigrate); !errors.Is(err, sqlstore.ErrSchemaTooNew) {
			t.Fatalf("NoMigrate on a newer database: %v, want ErrSchemaTooNew", err)
		}
	}
	t.Run("sqlite", func(t *testing.T) {
		check(t, "file:"+filepath.Join(t.TempDir(), "old.db"), sqlstore.Options{})
	})
	t.Run("postgres", func(t *testing.T) {
		schema := randomName("credits_test_")
		t.Cleanup(func() {
			_, _ = newPostgresConn(t).ExecContext(context.Background(), `DROP SCHEMA IF EXISTS "`+schema+`" CASCADE`)
		})
		check(t, postgresDSN(t), sqlstore.Options{Schema: schema})
	})
}

// A kept state knows only the open holds its account's last load brought
// (the due ones and the ones named): a hold that another server made, not
// due then, can fall due while the state is kept. The kept write must be
// refused (no open hold may be due that the state does not have), and the
// charge run again on a read state that expires the hold first — here,
// only the expired hold's credits pay for the charge.
func TestKeptStateUnknownHoldFallsDue(t *testing.T) {
	postgresDSN(t)
	a := newPostgres(t)
	b, err := sqlstore.Open(context.Background(), postgresDSN(t), &sqlstore.Options{Schema: schemaOf(a)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	h := storetest.NewHarness(t, a, func(c *credits.Config) { c.Signup = credits.Reward{} })
	lb, err := credits.NewLedger(b, &credits.Config{Now: h.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := h.Ctx
	h.Account(t, credits.CreateAccountRequest{ID: "acct"})
	if _, err := h.Ledger.Grant(ctx, credits.GrantRequest{Account: "acct", Amount: credits.Whole(70), Kind: credits.KindPurchase, Key: "g"}); err != nil {
		t.Fatal(err)
	}
	// An image costs 7.
	eight := h.Quote(t, credits.QuoteRequest{Tool: "image", Images: 8})
	one := h.Quote(t, credits.QuoteRequest{Tool: "image"})
	seven := h.Quote(t, credits.QuoteRequest{Tool: "image", Images: 7})
	if eight.Total != credits.Whole(56) || one.Total != credits.Whole(7) {
		t.Fatalf("quotes %s and %s, want 56 and 7", eight.Total, one.Total)
	}
	// The other server holds 56 for a minute.
	if _, err := lb.Reserve(ctx, credits.ReserveRequest{Account: "acct", Quote: eight, TTL: time.Minute, Key: "hold"}); err != nil {
		t.Fatal(err)
	}
	// This server reads the account (the hold is not due: not loaded),
	// charges 7 and keeps the state; 7 are left.
	if _, err := h.Ledger.Charge(ctx, credits.ChargeRequest{Account: "acct", Quote: one, Key: "c1"}); err != nil {
		t.Fatal(err)
	}
	before := a.Stats()
	h.Clock.Advance(2 * time.Minute)
	// 7 available, 56 held past their deadline: 49 can be charged only
	// once the hold has expired.
	if _, err := h.Ledger.Charge(ctx, credits.ChargeRequest{Account: "acct", Quote: seven, Key: "c2"}); err != nil {
		t.Fatalf("charge of 49 after the 56 held fell due: %v", err)
	}
	after := a.Stats()
	if after.KeptRuns == before.KeptRuns || after.KeptStale == before.KeptStale {
		t.Fatalf("the charge did not run on the kept state and find it stale: %+v → %+v", before, after)
	}
	hist := h.History(t, "acct")
	if n := len(hist); n < 2 || hist[n-2].Type != credits.EntryHoldExpired || hist[n-1].Type != credits.EntryCharge {
		t.Fatalf("history ends %+v, want the hold's expiry then the charge", hist[max(0, len(hist)-2):])
	}
	if bal := h.Balance(t, "acct"); bal.Available != credits.Whole(14) || !bal.Held.IsZero() {
		t.Fatalf("balance %+v, want 14 available, none held", bal)
	}
	storetest.CheckInvariants(t, h, "acct")
}

// A batch on several kept accounts writes all of them or none: when one
// account's kept state is stale (another server changed its members, which
// moves no Seq, so nothing else of the write collides), the whole guarded
// write is refused — the fresh account's charges too — and the batch runs
// again on read states; every charge then takes effect once, and is no
// replay.
func TestKeptBatchAllOrNothing(t *testing.T) {
	postgresDSN(t)
	a := newPostgresWith(t, sqlstore.Options{Committers: 1}) // x and y in one batch
	b, err := sqlstore.Open(context.Background(), postgresDSN(t), &sqlstore.Options{Schema: schemaOf(a)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	h := storetest.NewHarness(t, a, nil)
	lb, err := credits.NewLedger(b, &credits.Config{Now: h.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := h.Ctx
	q := h.Quote(t, credits.QuoteRequest{Tool: "image"})
	for _, id := range []string{"x", "y"} {
		h.Account(t, credits.CreateAccountRequest{ID: id, Team: true, Members: []string{"m"}})
		if _, err := h.Ledger.Grant(ctx, credits.GrantRequest{Account: id, Amount: credits.Whole(100), Kind: credits.KindPurchase, Key: "g"}); err != nil {
			t.Fatal(err)
		}
		// A charge of this server's: its state is kept.
		if _, err := h.Ledger.Charge(ctx, credits.ChargeRequest{Account: id, Member: "m", Quote: q, Key: "first"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := lb.UpdateMembers(ctx, credits.MembersRequest{Account: "y", Add: []string{"n"}}); err != nil {
		t.Fatal(err)
	}
	before := a.Stats()
	core.PauseBatches(a, true)
	var wg sync.WaitGroup
	for i, id := range []string{"x", "y", "x", "y"} {
		wg.Go(func() {
			res, err := h.Ledger.Charge(ctx, credits.ChargeRequest{Account: id, Member: "m", Quote: q, Key: fmt.Sprint("batch", i)})
			if err != nil || res.Replayed {
				// A replay would mean a refused guarded write had written
				// part of the batch, which its rerun then found recorded.
				t.Errorf("charge %d on %s: replayed %v, %v", i, id, res.Replayed, err)
			}
		})
		waitQueued(t, a, i+1)
	}
	core.PauseBatches(a, false)
	wg.Wait()
	after := a.Stats()
	if after.KeptRuns-before.KeptRuns != 1 || after.KeptStale-before.KeptStale != 1 || after.MaxBatch < 4 {
		t.Fatalf("want one batch of 4 on kept states, found stale: %+v → %+v", before, after)
	}
	for id, charges := range map[string]int{"x": 3, "y": 3} {
		want, _ := q.Total.Mul(int64(charges))
		if bal := h.Balance(t, id); bal.Spent != want {
			t.Errorf("%s: spent %s, want %d charges, %s", id, bal.Spent, charges, want)
		}
		n := 0
		for _, e := range h.History(t, id) {
			if e.Type == credits.EntryCharge {
				n++
			}
		}
		if n != charges {
			t.Errorf("%s: %d charge entries, want %d", id, n, charges)
		}
		storetest.CheckInvariants(t, h, id)
	}
	// Both are kept again: the next batch on them runs without reading.
	before = a.Stats()
	core.PauseBatches(a, true)
	for i, id := range []string{"x", "y"} {
		wg.Go(func() {
			if _, err := h.Ledger.Charge(ctx, credits.ChargeRequest{Account: id, Member: "m", Quote: q, Key: fmt.Sprint("again", i)}); err != nil {
				t.Errorf("charge on %s: %v", id, err)
			}
		})
		waitQueued(t, a, i+1)
	}
	core.PauseBatches(a, false)
	wg.Wait()
	if after := a.Stats(); after.KeptRuns-before.KeptRuns != 1 || after.KeptStale != before.KeptStale {
		t.Fatalf("want one batch on kept states, not stale: %+v → %+v", before, after)
	}
}

// otherConnector makes a pgx connection pool look like another driver's.
type otherConnector struct{ driver.Connector }
type otherDriver struct{ driver.Driver }

func (c otherConnector) Driver() driver.Driver { return otherDriver{c.Connector.Driver()} }

// postgres.New takes a *sql.DB on pgx's driver only, and says so for any
// other (here a pgx pool dressed as another driver, as an instrumenting
// wrapper would be): the store pipelines on pgx's connection and sends
// typed arrays. On pgx it keeps states unless told KeptStates: -1.
func TestPostgresNewNeedsPgx(t *testing.T) {
	dsn := postgres.DSN(postgresDSN(t))
	for _, tc := range []struct {
		other bool
		kept  int
	}{{false, 0}, {true, 0}, {false, -1}} {
		conn, err := stdlib.GetDefaultDriver().(driver.DriverContext).OpenConnector(dsn)
		if err != nil {
			t.Fatal(err)
		}
		var db *sql.DB
		if tc.other {
			db = sql.OpenDB(otherConnector{conn})
		} else {
			db = sql.OpenDB(conn)
		}
		schema := randomName("credits_test_")
		t.Cleanup(func() {
			_, _ = db.ExecContext(context.Background(), `DROP SCHEMA IF EXISTS "`+schema+`" CASCADE`)
			_ = db.Close()
		})
		s, err := postgres.New(context.Background(), db, &sqlstore.Options{Schema: schema, Migrate: true, KeptStates: tc.kept})
		if tc.other {
			if err == nil || !strings.Contains(err.Error(), "pgx") {
				t.Fatalf("New on another driver: %v, want a refusal that names pgx", err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		h := storetest.NewHarness(t, s, nil)
		h.Account(t, credits.CreateAccountRequest{ID: "a"})
		q := h.Quote(t, credits.QuoteRequest{Tool: "image"})
		for i := range 3 {
			if _, err := h.Ledger.Charge(h.Ctx, credits.ChargeRequest{Account: "a", Quote: q, Key: fmt.Sprint(i)}); err != nil {
				t.Fatal(err)
			}
		}
		if kept := s.Stats().KeptRuns; (kept > 0) != (tc.kept >= 0) {
			t.Errorf("KeptStates %d: %d runs on kept states", tc.kept, kept)
		}
		storetest.CheckInvariants(t, h, "a")
	}
}

// The guard compares the whole account row, not only what the ledger
// changes with an entry: a change made outside the ledger (here an
// operator's UPDATE of the low-balance threshold, which moves no Seq) is not
// overwritten by a write computed on a state kept from before it.
func TestKeptStateSeesOutsideChanges(t *testing.T) {
	s := newPostgres(t)
	h := storetest.NewHarness(t, s, nil)
	ctx := h.Ctx
	h.Account(t, credits.CreateAccountRequest{ID: "a"})
	q := h.Quote(t, credits.QuoteRequest{Tool: "image"})
	if _, err := h.Ledger.Charge(ctx, credits.ChargeRequest{Account: "a", Quote: q, Key: "c1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB().ExecContext(ctx, "UPDATE "+s.TableName("accounts")+" SET low_balance_threshold = 12345 WHERE id = 'a'"); err != nil {
		t.Fatal(err)
	}
	before := s.Stats()
	if _, err := h.Ledger.Charge(ctx, credits.ChargeRequest{Account: "a", Quote: q, Key: "c2"}); err != nil {
		t.Fatal(err)
	}
	if after := s.Stats(); after.KeptRuns == before.KeptRuns || after.KeptStale == before.KeptStale {
		t.Fatalf("the charge did not run on the kept state and find it stale: %+v → %+v", before, after)
	}
	threshold := storedThreshold(t, s, "a")
	if threshold != 12345 {
		t.Fatalf("threshold %d after a charge on a state kept from before the UPDATE, want 12345", threshold)
	}
	storetest.CheckInvariants(t, h, "a")
}

package sqlstore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/creditkit/credits"
	"github.com/creditkit/credits/sqlstore"
	"github.com/creditkit/credits/storetest"
)

// testdata/v2-quickstart.db is a SQLite database written by the release
// before the per-driver packages (schema v2): `go run ./examples/quickstart
// -db file:…` at commit 7025ea4. Opening it migrates it to the current
// schema with every row intact: the same balance, history and holds, and
// the ledger goes on writing it.
func TestUpgradeFromPreviousRelease(t *testing.T) {
	ctx := context.Background()
	raw, err := os.ReadFile("testdata/v2-quickstart.db")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "v2.db")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	old, err := openUnchecked(ctx, "file:"+path, sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := old.Version(ctx); err != nil || v != 2 {
		t.Fatalf("the fixture is at version %d (%v), want 2", v, err)
	}
	// What the v2 code wrote, read as rows (the current code does not run
	// on a v2 schema).
	dump := func(s *sqlstore.Store, query string) string {
		t.Helper()
		rows, err := s.DB().QueryContext(ctx, query)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		cols, _ := rows.Columns()
		var out []string
		for rows.Next() {
			vals, dest := make([]any, len(cols)), make([]any, len(cols))
			for i := range vals {
				dest[i] = &vals[i]
			}
			if err := rows.Scan(dest...); err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprint(vals...))
		}
		return strings.Join(out, "\n")
	}
	tables := map[string]string{}
	for _, table := range []string{"entries", "buckets", "holds", "records"} {
		tables[table] = dump(old, "SELECT * FROM "+old.TableName(table)+" ORDER BY 1, 2")
	}
	accountCols := "id, created_at, team, members, low_balance_threshold, available, held, granted, spent, expired, seq, metadata"
	tables["accounts"] = dump(old, "SELECT "+accountCols+" FROM "+old.TableName("accounts")+" ORDER BY id")
	if !strings.Contains(tables["accounts"], "alice") || strings.Count(tables["entries"], "\n") < 5 {
		t.Fatalf("the fixture has no story to upgrade: %q", tables)
	}
	_ = old.Close()

	s, err := sqlstore.Open(ctx, "file:"+path, nil)
	if err != nil {
		t.Fatalf("open (migrating v2 → current): %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if v, err := s.Version(ctx); err != nil || v != s.SchemaVersion() {
		t.Fatalf("version %d (%v) after Open, want %d", v, err, s.SchemaVersion())
	}
	for table, want := range tables {
		query := "SELECT * FROM " + s.TableName(table) + " ORDER BY 1, 2"
		if table == "accounts" {
			query = "SELECT " + accountCols + " FROM " + s.TableName(table) + " ORDER BY id"
		}
		if got := dump(s, query); got != want {
			t.Errorf("%s after the upgrade:\n%s\nbefore:\n%s", table, got, want)
		}
	}
	h := storetest.NewHarness(t, s, nil)
	wantBalance := h.Balance(t, "alice")
	storetest.CheckInvariants(t, h, "alice")
	q := h.Quote(t, credits.QuoteRequest{Tool: "image"})
	want, err := wantBalance.Available.Sub(q.Total)
	if err != nil {
		t.Fatal(err)
	}
	res, err := h.Ledger.Charge(ctx, credits.ChargeRequest{Account: "alice", Quote: q, Key: "after-upgrade"})
	if err != nil || res.Available != want {
		t.Fatalf("charge after the upgrade: %+v %v", res, err)
	}
	storetest.CheckInvariants(t, h, "alice")
}

package sqlstore_test

import (
	"context"
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
	path := copyFixture(t, "v2-quickstart.db")
	tables := dumpTables(ctx, t, "file:"+path, sqlstore.Options{}, 2)
	if !strings.Contains(tables["accounts"], "alice") || strings.Count(tables["entries"], "\n") < 5 {
		t.Fatalf("the fixture has no story to upgrade: %q", tables)
	}

	s, err := sqlstore.Open(ctx, "file:"+path, nil)
	if err != nil {
		t.Fatalf("open (migrating v2 → current): %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	for table, rows := range dumpTables(ctx, t, "file:"+path, sqlstore.Options{}, s.SchemaVersion()) {
		if rows != tables[table] {
			t.Errorf("%s after the upgrade:\n%s\nbefore:\n%s", table, rows, tables[table])
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

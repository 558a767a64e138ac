package sqlstore_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/creditkit/credits"
	"github.com/creditkit/credits/sqlstore"
	"github.com/creditkit/credits/sqlstore/internal/core"
)

// The table descriptors (core.Accounts, …), which drive every statement of
// both databases, match the migrated schema of each: the same columns in
// the same order, of the same type, NULL only where the descriptor says.
// A column added to a migration and not to its descriptor, or the other
// way round, fails here.
func TestDescriptorsMatchSchema(t *testing.T) {
	dialects(t, func(t *testing.T, s *sqlstore.Store, _ func() *sqlstore.Store) {
		for _, table := range core.AllTables {
			got := schemaColumns(t, s, table.Name)
			if table.Name == "entries" && s.Dialect() == "postgres" {
				// The transaction that wrote each entry, for the feed: the
				// column's default fills it, no statement names it.
				got = slices.DeleteFunc(got, func(c string) bool { return strings.HasPrefix(c, "xid ") })
			}
			var want []string
			for i, name := range table.Names {
				want = append(want, name+" "+[...]string{core.Text: "text", core.Int: "integer not null", core.NullInt: "integer null"}[table.Kinds[i]])
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s: the schema has\n\t%v\nthe descriptor says\n\t%v", table.Name, got, want)
			}
		}
	})
}

// schemaColumns lists a table's columns as "name type", the type written
// as the descriptors' kinds are: "text" (never NULL in these tables),
// "integer not null" or "integer null".
func schemaColumns(t *testing.T, s *sqlstore.Store, table string) []string {
	t.Helper()
	ctx := context.Background()
	query, args := "SELECT name, type, \"notnull\" = 1 FROM pragma_table_info(?1)", []any{s.TableName(table)}
	if s.Dialect() == "postgres" {
		query = "SELECT column_name, data_type, is_nullable = 'NO' FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position"
		args = []any{s.Options().Schema, s.Options().TablePrefix + table}
	}
	rows, err := s.DB().QueryContext(ctx, query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name, typ string
		var notNull bool
		if err := rows.Scan(&name, &typ, &notNull); err != nil {
			t.Fatal(err)
		}
		switch typ = strings.ToLower(typ); typ {
		case "bigint", "integer":
			typ = "integer null"
			if notNull {
				typ = "integer not null"
			}
		case "text":
			if !notNull {
				typ = "text null"
			}
		}
		out = append(out, fmt.Sprint(name, " ", typ))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatalf("no columns found for %s", table)
	}
	return out
}

// An account's plan (Account.Plan), its place in the plan's allowance
// schedule (Account.Allowance) and its next renewal (Account.RenewsAt),
// and the plan an "account" entry records (Entry.Plan), are persisted
// (schema v5): written when the account is created and when its row is
// updated, and read back by View and Entries. The account is created on a
// plan by one store, moved to another plan by a second store on the same
// database (a batch that loads the account), then off any plan (no
// allowance, no renewal) by the first again (on PostgreSQL first on the
// state the first store kept, which the second store's write made stale,
// so the guarded write is refused and the batch loads and runs again),
// then onto plans twice more by the first (on PostgreSQL on the states it
// kept, fresh: the last write's apply is given the allowance the one before
// left, from the kept state), and both stores read what the last write
// left.
func TestPlansRoundTrip(t *testing.T) {
	dialects(t, func(t *testing.T, s *sqlstore.Store, open func() *sqlstore.Store) {
		ctx := context.Background()
		other := open()
		at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
		var want credits.Account
		var history []credits.Entry
		// allowance is the allowance state and renewal of the seq-th write,
		// to plan: none off any plan; otherwise each write's own, its times
		// to the nanosecond.
		allowance := func(plan string, seq int64) (*credits.AllowanceState, time.Time) {
			if plan == "" {
				return nil, time.Time{}
			}
			anchor := at.Add(time.Duration(seq)*time.Hour + 123456789)
			return &credits.AllowanceState{Period: credits.PeriodMonth, Anchor: anchor, Index: seq, Granted: credits.Whole(seq * 100),
				Buckets: []string{fmt.Sprint("bkt_", seq, "_a"), fmt.Sprint("bkt_", seq, "_b")}}, anchor.AddDate(0, 1, 0)
		}
		// write runs one Update on store: the account (created when it does
		// not exist yet) goes to plan, and an "account" entry records it.
		write := func(store *sqlstore.Store, plan string) {
			t.Helper()
			var loaded *credits.Account
			var a credits.Account
			var e credits.Entry
			err := store.Update(ctx, credits.Query{Account: "a"}, func(st *credits.State) (*credits.Change, error) {
				next := credits.Account{ID: "a", CreatedAt: at, Metadata: map[string]string{"tier": "pro"}}
				loaded = nil
				if st.Account != nil {
					l := st.Account.Clone()
					next, loaded = st.Account.Clone(), &l
				}
				next.Seq++
				next.Plan = plan
				next.Allowance, next.RenewsAt = allowance(plan, next.Seq)
				a, e = next, credits.Entry{Account: "a", Seq: next.Seq, Type: credits.EntryAccount, Available: next.Available,
					At: at.Add(time.Duration(next.Seq) * time.Minute), Key: fmt.Sprint("plan-", next.Seq), Plan: plan, Note: "plan: " + plan}
				ch := &credits.Change{Account: &next, AccountCreated: loaded == nil, Entries: []credits.Entry{e}}
				st.Fold(ch) // as the ledger does: what a store keeps
				return ch, nil
			})
			if err != nil {
				t.Fatalf("Update to plan %q: %v", plan, err)
			}
			// Only the last call of apply counts: it ran on the state the
			// last write left.
			if history == nil && loaded != nil {
				t.Fatalf("Update to plan %q found an account: %+v", plan, loaded)
			} else if history != nil {
				if d := cmp.Diff(&want, loaded); d != "" {
					t.Errorf("Update to plan %q: the account loaded (-want +got):\n%s", plan, d)
				}
			}
			want, history = a, append(history, e)
		}
		check := func(store credits.Store) {
			t.Helper()
			st, err := store.View(ctx, credits.Query{Account: "a"})
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(&want, st.Account); d != "" {
				t.Errorf("View: the account (-want +got):\n%s", d)
			}
			for _, f := range []credits.EntryFilter{{Account: "a"}, {Account: "a", Types: []credits.EntryType{credits.EntryAccount}}} {
				es, err := store.Entries(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				if d := cmp.Diff(history, es); d != "" {
					t.Errorf("Entries(%+v) (-want +got):\n%s", f, d)
				}
			}
		}

		write(s, "pro")
		check(s)
		check(other)
		write(other, "studio")
		check(other)
		check(s)
		before := s.Stats()
		write(s, "")
		check(s)
		check(other)
		if s.Dialect() == "postgres" {
			if st := s.Stats(); st.KeptRuns == before.KeptRuns {
				t.Errorf("the last write did not try the state the store kept: %+v before, %+v after", before, st)
			}
		}
		before = s.Stats()
		write(s, "team")
		check(s)
		write(s, "pro")
		check(s)
		check(other)
		if s.Dialect() == "postgres" {
			if st := s.Stats(); st.KeptRuns != before.KeptRuns+2 || st.KeptStale != before.KeptStale {
				t.Errorf("the last two writes did not run on the states the store kept: %+v before, %+v after", before, st)
			}
		}
		if want.Allowance == nil || len(want.Allowance.Buckets) == 0 || want.RenewsAt.IsZero() {
			t.Fatalf("the last write left no allowance to read: %+v", want)
		}
		var plans []string
		for _, e := range history {
			plans = append(plans, e.Plan)
		}
		if !slices.Equal(plans, []string{"pro", "studio", "", "team", "pro"}) {
			t.Fatalf("plans of the history: %q", plans)
		}
	})
}

// DueAccounts returns the accounts whose allowance renewal is due
// (Account.RenewsAt set and at or before now) as well as those with a due
// hold or bucket, each once, in ID order, at most limit of them; an
// account whose renewal is later, or that has none, is not returned, and
// one whose renewal the ledger cleared (RenewsAt zero: NULL) no longer is.
// Both stores on the database, and a store joined to the caller's
// transaction, find the same.
func TestDueRenewals(t *testing.T) {
	dialects(t, func(t *testing.T, s *sqlstore.Store, open func() *sqlstore.Store) {
		ctx := context.Background()
		now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
		state := &credits.AllowanceState{Period: credits.PeriodMonth, Anchor: now.AddDate(0, -1, 0), Granted: credits.Whole(10), Buckets: []string{"bkt_x"}}
		put := func(id string, renews time.Time, expires time.Time) {
			t.Helper()
			err := s.Update(ctx, credits.Query{Account: id}, func(st *credits.State) (*credits.Change, error) {
				a := credits.Account{ID: id, CreatedAt: now.Add(-time.Hour), Plan: "pro", RenewsAt: renews}
				if st.Account != nil {
					a = st.Account.Clone()
					a.RenewsAt = renews
				}
				if !renews.IsZero() {
					a.Allowance = state.Clone()
				} else {
					a.Allowance = nil
				}
				ch := &credits.Change{Account: &a, AccountCreated: st.Account == nil}
				if !expires.IsZero() {
					a.Granted, a.Available, a.Seq = credits.Whole(1), credits.Whole(1), 1
					ch.NewBuckets = []credits.Bucket{{ID: "bkt_" + id, Account: id, Kind: credits.KindPromo, Amount: credits.Whole(1),
						Remaining: credits.Whole(1), ExpiresAt: expires, CreatedAt: now.Add(-time.Hour), Seq: 1}}
					ch.Entries = []credits.Entry{{Account: id, Seq: 1, Type: credits.EntryGrant, Amount: credits.Whole(1), Available: credits.Whole(1),
						At: now.Add(-time.Hour), Bucket: "bkt_" + id, Kind: credits.KindPromo}}
				}
				return ch, nil
			})
			if err != nil {
				t.Fatalf("Update %s: %v", id, err)
			}
		}
		var none time.Time
		put("a-renews-before", now.Add(-time.Minute), none)
		put("b-renews-now", now, none)
		put("c-renews-after", now.Add(1), none)
		put("d-no-renewal", none, none)
		put("e-bucket-due", now.Add(time.Hour), now)
		put("f-both-due", now.Add(-time.Hour), now.Add(-time.Minute))
		put("g-bucket-later", none, now.Add(time.Minute))
		put("h-renewal-cleared", now.Add(-time.Hour), none)
		put("h-renewal-cleared", none, none) // its row updated: renews_at NULL again

		want := []string{"a-renews-before", "b-renews-now", "e-bucket-due", "f-both-due"}
		other := open()
		stores := []struct {
			name string
			open func() (credits.Store, func())
		}{
			{"the store", func() (credits.Store, func()) { return s, func() {} }},
			{"another store", func() (credits.Store, func()) { return other, func() {} }},
			{"a joined transaction", func() (credits.Store, func()) {
				// SQLite's store has one connection, which the transaction
				// holds until it ends: nothing else runs on s meanwhile.
				tx, err := s.DB().BeginTx(ctx, nil)
				if err != nil {
					t.Fatal(err)
				}
				return s.WithTx(tx), func() { _ = tx.Rollback() }
			}},
		}
		for _, x := range stores {
			name := x.name
			store, done := x.open()
			t.Cleanup(done) // also when a check fails before done runs
			for _, limit := range []int{100, len(want), 2} {
				got, err := store.DueAccounts(ctx, now, 0, limit)
				if err != nil {
					t.Fatalf("%s: DueAccounts: %v", name, err)
				}
				if w := want[:min(limit, len(want))]; !slices.Equal(got, w) {
					t.Errorf("%s: DueAccounts(now, %d) = %q, want %q", name, limit, got, w)
				}
			}
			// A minute before, only the renewals then due.
			got, err := store.DueAccounts(ctx, now.Add(-time.Minute), 0, 100)
			if err != nil {
				t.Fatalf("%s: DueAccounts: %v", name, err)
			}
			if w := []string{"a-renews-before", "f-both-due"}; !slices.Equal(got, w) {
				t.Errorf("%s: DueAccounts(now - 1m) = %q, want %q", name, got, w)
			}
			done()
		}
		// The account whose renewal was cleared reads no renewal and no
		// allowance; one with a renewal reads both.
		for id, renews := range map[string]time.Time{"h-renewal-cleared": none, "c-renews-after": now.Add(1)} {
			st, err := other.View(ctx, credits.Query{Account: id})
			if err != nil {
				t.Fatal(err)
			}
			var wantState *credits.AllowanceState
			if !renews.IsZero() {
				wantState = state
			}
			if !st.Account.RenewsAt.Equal(renews) || !cmp.Equal(st.Account.Allowance, wantState) {
				t.Errorf("%s reads RenewsAt %v, Allowance %+v; want %v, %+v", id, st.Account.RenewsAt, st.Account.Allowance, renews, wantState)
			}
		}
	})
}

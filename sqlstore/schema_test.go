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

// An account's plan (Account.Plan) and the plan an "account" entry records
// (Entry.Plan) are persisted (schema v5): written when the account is
// created and when its row is updated, and read back by View and Entries.
// The account is created on a plan by one store, moved to another plan by
// a second store on the same database (a batch that loads the account),
// then off any plan by the first again (on PostgreSQL first on the state
// the first store kept, which the second store's write made stale, so the
// guarded write is refused and the batch loads and runs again), and both
// stores read what the last write left.
func TestPlansRoundTrip(t *testing.T) {
	dialects(t, func(t *testing.T, s *sqlstore.Store, open func() *sqlstore.Store) {
		ctx := context.Background()
		other := open()
		at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
		var want credits.Account
		var history []credits.Entry
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
		if got := []string{history[0].Plan, history[1].Plan, history[2].Plan}; !slices.Equal(got, []string{"pro", "studio", ""}) {
			t.Fatalf("plans of the history: %q", got)
		}
	})
}

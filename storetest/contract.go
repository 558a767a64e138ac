package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/creditkit/credits"
)

// runContract checks the Store contract directly, without a Ledger: what
// Update loads and persists, and the read calls.
func runContract(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	now := Epoch
	acct := credits.Account{ID: "acct", CreatedAt: now, Available: whole(9), Held: c1, Granted: whole(15), Spent: whole(5), Seq: 3}
	live := credits.Bucket{ID: "b-live", Account: "acct", Kind: credits.KindPurchase, Amount: whole(10), Remaining: whole(9), CreatedAt: now, Seq: 1}
	spent := credits.Bucket{ID: "b-spent", Account: "acct", Kind: credits.KindPromo, Amount: whole(5), CreatedAt: now, Seq: 2, ExpiresAt: now.Add(time.Hour)}
	charge := credits.Hold{ID: "h-charge", Account: "acct", Status: credits.HoldCaptured, Amount: whole(5), Captured: whole(5),
		Portions: []credits.Portion{{Bucket: "b-spent", Amount: whole(5), Captured: whole(5)}}, CreatedAt: now, Deadline: now}
	open := credits.Hold{ID: "h-open", Account: "acct", Status: credits.HoldOpen, Amount: c1, CreatedAt: now, Deadline: now.Add(time.Minute),
		Portions: []credits.Portion{{Bucket: "b-live", Amount: c1}}}
	entries := []credits.Entry{
		{Account: "acct", Seq: 1, Type: credits.EntryGrant, Amount: whole(10), Available: whole(10), At: now, Bucket: "b-live"},
		{Account: "acct", Seq: 2, Type: credits.EntryGrant, Amount: whole(5), Available: whole(15), At: now.Add(time.Second), Bucket: "b-spent"},
		{Account: "acct", Seq: 3, Type: credits.EntryCharge, Amount: whole(5), Available: whole(10), At: now.Add(2 * time.Second), Hold: "h-charge", Tool: "image"},
	}
	rec := credits.Record{Key: "k:one", Operation: "grant", Request: []byte(`{"a":1}`), Result: []byte(`{"ok":{}}`), CreatedAt: now}
	seed := func(t *testing.T) credits.Store {
		s := newStore(t)
		err := s.Update(ctx, credits.Query{Account: "acct"}, func(st *credits.State) (*credits.Change, error) {
			if st.Account != nil {
				t.Fatalf("a new store loads an account: %+v", st.Account)
			}
			a := acct
			return &credits.Change{Account: &a, AccountCreated: true, NewBuckets: []credits.Bucket{live, spent},
				NewHolds: []credits.Hold{charge, open}, Entries: entries, Record: &rec}, nil
		})
		if err != nil {
			t.Fatalf("seed: %v", err)
		}
		return s
	}
	t.Run("LoadRules", func(t *testing.T) {
		s := seed(t)
		st, err := s.View(ctx, credits.Query{Account: "acct"})
		wantErr(t, "view", err, nil)
		if diff := cmp.Diff(&acct, st.Account); diff != "" {
			t.Fatalf("account (-want +got):\n%s", diff)
		}
		if len(st.Buckets) != 1 || st.Buckets["b-live"] == nil || len(st.Holds) != 0 || len(st.Records) != 0 {
			t.Fatalf("an empty query loads the live buckets only: %+v", st)
		}
		st, err = s.View(ctx, credits.Query{Account: "acct", Holds: []string{"h-charge", "h-nope"}, Keys: []string{"k:one", "k:two"}})
		wantErr(t, "view", err, nil)
		if diff := cmp.Diff(&charge, st.Holds["h-charge"]); diff != "" || len(st.Holds) != 1 {
			t.Fatalf("named hold (-want +got):\n%s", diff)
		}
		if st.Buckets["b-spent"] == nil {
			t.Fatal("a bucket named by a loaded hold's portion must be loaded even when empty")
		}
		if diff := cmp.Diff(&rec, st.Records["k:one"]); diff != "" || len(st.Records) != 1 {
			t.Fatalf("record (-want +got):\n%s", diff)
		}
		st, err = s.View(ctx, credits.Query{Account: "acct", Buckets: []string{"b-spent", "b-nope"}})
		wantErr(t, "view", err, nil)
		if diff := cmp.Diff(&spent, st.Buckets["b-spent"]); diff != "" || len(st.Buckets) != 2 {
			t.Fatalf("a named bucket must be loaded, live or not (-want +got):\n%s", diff)
		}
		st, err = s.View(ctx, credits.Query{Account: "other", Buckets: []string{"b-spent"}})
		if err != nil || len(st.Buckets) != 0 {
			t.Fatalf("a bucket named with another account was loaded: %+v %v", st.Buckets, err)
		}
		st, err = s.View(ctx, credits.Query{Account: "acct", Due: now.Add(time.Minute - 1)})
		wantErr(t, "view", err, nil)
		if len(st.Holds) != 0 {
			t.Fatalf("a hold not yet due was loaded: %v", st.Holds)
		}
		st, err = s.View(ctx, credits.Query{Account: "acct", Due: now.Add(time.Minute)})
		wantErr(t, "view", err, nil)
		if st.Holds["h-open"] == nil {
			t.Fatal("an open hold due at Due must be loaded")
		}
		st, err = s.View(ctx, credits.Query{Account: "other"})
		if err != nil || st.Account != nil {
			t.Fatalf("unknown account: %+v %v", st, err)
		}
	})
	t.Run("FailedApplyWritesNothing", func(t *testing.T) {
		s := seed(t)
		boom := errors.New("boom")
		err := s.Update(ctx, credits.Query{Account: "acct"}, func(st *credits.State) (*credits.Change, error) {
			return nil, boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("Update must return apply's error, got %v", err)
		}
		err = s.Update(ctx, credits.Query{Account: "new"}, func(st *credits.State) (*credits.Change, error) { return nil, boom })
		if !errors.Is(err, boom) {
			t.Fatalf("got %v", err)
		}
		st, err := s.View(ctx, credits.Query{Account: "new"})
		if err != nil || st.Account != nil {
			t.Fatalf("a failed apply created an account: %+v %v", st.Account, err)
		}
		es, err := s.Entries(ctx, credits.EntryFilter{Account: "acct"})
		if err != nil || len(es) != 3 {
			t.Fatalf("entries: %d %v", len(es), err)
		}
	})
	t.Run("UpdatePersists", func(t *testing.T) {
		s := seed(t)
		err := s.Update(ctx, credits.Query{Account: "acct", Holds: []string{"h-open"}}, func(st *credits.State) (*credits.Change, error) {
			h := *st.Holds["h-open"]
			h.Status = credits.HoldReleased
			b := *st.Buckets["b-live"]
			b.Remaining = whole(8)
			a := st.Account.Clone()
			a.Available, a.Seq = whole(8), 4
			return &credits.Change{Account: &a, UpdatedHolds: []credits.Hold{h}, UpdatedBuckets: []credits.Bucket{b},
				Entries: []credits.Entry{{Account: "acct", Seq: 4, Type: credits.EntryExpiry, Amount: c1, Available: whole(8), At: now}}}, nil
		})
		wantErr(t, "update", err, nil)
		st, err := s.View(ctx, credits.Query{Account: "acct", Holds: []string{"h-open"}})
		wantErr(t, "view", err, nil)
		if st.Account.Available != whole(8) || st.Holds["h-open"].Status != credits.HoldReleased || st.Buckets["b-live"].Remaining != whole(8) {
			t.Fatalf("not persisted: %+v %+v", st.Account, st.Holds["h-open"])
		}
		id, err := s.HoldAccount(ctx, "h-open")
		if err != nil || id != "acct" {
			t.Fatalf("HoldAccount: %q %v", id, err)
		}
		_, err = s.HoldAccount(ctx, "h-none")
		wantErr(t, "HoldAccount unknown", err, credits.ErrUnknownHold)
	})
	t.Run("Entries", func(t *testing.T) {
		s := seed(t)
		seqs := func(f credits.EntryFilter) []int64 {
			f.Account = "acct"
			es, err := s.Entries(ctx, f)
			if err != nil {
				t.Fatalf("Entries(%+v): %v", f, err)
			}
			var out []int64
			for _, e := range es {
				out = append(out, e.Seq)
			}
			return out
		}
		for _, c := range []struct {
			f    credits.EntryFilter
			want []int64
		}{
			{credits.EntryFilter{}, []int64{1, 2, 3}},
			{credits.EntryFilter{AfterSeq: 1}, []int64{2, 3}},
			{credits.EntryFilter{Limit: 2}, []int64{1, 2}},
			{credits.EntryFilter{Types: []credits.EntryType{credits.EntryCharge}}, []int64{3}},
			{credits.EntryFilter{Since: now.Add(time.Second)}, []int64{2, 3}},
			{credits.EntryFilter{Until: now.Add(time.Second)}, []int64{1}},
			{credits.EntryFilter{AfterSeq: 3}, nil},
			{credits.EntryFilter{BeforeSeq: 3}, []int64{1, 2}},
			{credits.EntryFilter{AfterSeq: 1, BeforeSeq: 3}, []int64{2}},
			{credits.EntryFilter{BeforeSeq: 1}, nil},
			{credits.EntryFilter{BeforeSeq: 99}, []int64{1, 2, 3}},
			{credits.EntryFilter{Newest: true}, []int64{3, 2, 1}},
			{credits.EntryFilter{Newest: true, Limit: 2}, []int64{3, 2}},
			{credits.EntryFilter{Newest: true, BeforeSeq: 3, Limit: 1}, []int64{2}},
			{credits.EntryFilter{Newest: true, AfterSeq: 1}, []int64{3, 2}},
			{credits.EntryFilter{Newest: true, Types: []credits.EntryType{credits.EntryGrant}}, []int64{2, 1}},
			{credits.EntryFilter{Newest: true, Types: []credits.EntryType{credits.EntryGrant}, Limit: 1}, []int64{2}},
			{credits.EntryFilter{Newest: true, Until: now.Add(time.Second)}, []int64{1}},
		} {
			if got := seqs(c.f); !slices.Equal(got, c.want) {
				t.Errorf("Entries(%+v) = %v, want %v", c.f, got, c.want)
			}
		}
		_, err := s.Entries(ctx, credits.EntryFilter{Account: "nobody"})
		wantErr(t, "unknown account", err, credits.ErrUnknownAccount)
	})
	t.Run("Buckets", func(t *testing.T) {
		s := seed(t)
		// A restored bucket shares the Seq of the entry that follows it
		// with other buckets: (Seq, ID) orders them.
		extra := []credits.Bucket{
			{ID: "b-a", Account: "acct", Kind: credits.KindPromo, Amount: c1, Remaining: c1, CreatedAt: now, Seq: 4},
			{ID: "b-0", Account: "acct", Kind: credits.KindPromo, Amount: c1, CreatedAt: now, Seq: 4, VoidedAt: now, Debited: c1},
		}
		err := s.Update(ctx, credits.Query{Account: "acct"}, func(st *credits.State) (*credits.Change, error) {
			a := *st.Account
			a.Available, a.Granted, a.Debited, a.Seq = whole(10), whole(17), c1, 5
			return &credits.Change{Account: &a, NewBuckets: extra, Entries: []credits.Entry{
				{Account: "acct", Seq: 4, Type: credits.EntryGrant, Amount: c1, Available: whole(10), Held: c1, At: now, Bucket: "b-a"},
				{Account: "acct", Seq: 5, Type: credits.EntryVoid, Amount: credits.Credits{}, Available: whole(10), Held: c1, At: now, Bucket: "b-0"},
			}}, nil
		})
		wantErr(t, "add buckets", err, nil)
		ids := func(f credits.BucketFilter) []string {
			f.Account = "acct"
			bs, err := s.Buckets(ctx, f)
			if err != nil {
				t.Fatalf("Buckets(%+v): %v", f, err)
			}
			var out []string
			for _, b := range bs {
				out = append(out, b.ID)
			}
			return out
		}
		for _, c := range []struct {
			f    credits.BucketFilter
			want []string
		}{
			{credits.BucketFilter{}, []string{"b-live", "b-spent", "b-0", "b-a"}},
			{credits.BucketFilter{LiveOnly: true}, []string{"b-live", "b-a"}},
			{credits.BucketFilter{Limit: 2}, []string{"b-live", "b-spent"}},
			{credits.BucketFilter{AfterSeq: 2, AfterID: "b-spent"}, []string{"b-0", "b-a"}},
			{credits.BucketFilter{AfterSeq: 4, AfterID: "b-0"}, []string{"b-a"}},
			{credits.BucketFilter{AfterSeq: 4, AfterID: "b-0", Limit: 1}, []string{"b-a"}},
			{credits.BucketFilter{AfterSeq: 4, AfterID: "b-a"}, nil},
			{credits.BucketFilter{AfterSeq: 1, LiveOnly: true}, []string{"b-live", "b-a"}}, // (1, "b-live") is after (1, "")
			{credits.BucketFilter{AfterSeq: 1, AfterID: "b-live", LiveOnly: true}, []string{"b-a"}},
		} {
			if got := ids(c.f); !slices.Equal(got, c.want) {
				t.Errorf("Buckets(%+v) = %v, want %v", c.f, got, c.want)
			}
		}
		bs, err := s.Buckets(ctx, credits.BucketFilter{Account: "acct", AfterSeq: 3})
		if err != nil || len(bs) != 2 || !cmp.Equal(bs[0], extra[1]) {
			t.Fatalf("a voided bucket reads back as written: %+v %v", bs, err)
		}
		_, err = s.Buckets(ctx, credits.BucketFilter{Account: "nobody"})
		wantErr(t, "unknown account", err, credits.ErrUnknownAccount)
	})
	t.Run("DueAccounts", func(t *testing.T) {
		s := seed(t)
		ids, err := s.DueAccounts(ctx, now.Add(time.Minute-1), 0, 10)
		if err != nil || len(ids) != 0 {
			t.Fatalf("nothing is due yet: %v %v", ids, err)
		}
		ids, err = s.DueAccounts(ctx, now.Add(time.Minute), 0, 10)
		if err != nil || !slices.Equal(ids, []string{"acct"}) {
			t.Fatalf("due hold: %v %v", ids, err)
		}
		// An expiry warning: due from ExpiresAt − warn, until it is written.
		soon := credits.Bucket{ID: "b-soon", Account: "other", Kind: credits.KindPromo, Amount: c1, Remaining: c1, CreatedAt: now, Seq: 1, ExpiresAt: now.Add(3 * time.Hour)}
		err = s.Update(ctx, credits.Query{Account: "other"}, func(*credits.State) (*credits.Change, error) {
			return &credits.Change{Account: &credits.Account{ID: "other", CreatedAt: now, Available: c1, Granted: c1, Seq: 1}, AccountCreated: true,
				NewBuckets: []credits.Bucket{soon}, Entries: []credits.Entry{{Account: "other", Seq: 1, Type: credits.EntryGrant, Amount: c1, Available: c1, At: now, Bucket: "b-soon"}}}, nil
		})
		wantErr(t, "seed other", err, nil)
		due := func(at time.Time, warn time.Duration) bool {
			t.Helper()
			ids, err := s.DueAccounts(ctx, at, warn, 10)
			wantErr(t, "DueAccounts", err, nil)
			return slices.Contains(ids, "other")
		}
		if due(now.Add(time.Hour-1), 2*time.Hour) || !due(now.Add(time.Hour), 2*time.Hour) || due(now.Add(time.Hour), 0) {
			t.Fatal("a bucket's expiry warning is due at ExpiresAt − warn, and only with a warning lead")
		}
		err = s.Update(ctx, credits.Query{Account: "other"}, func(st *credits.State) (*credits.Change, error) {
			b := *st.Buckets["b-soon"]
			b.WarnedAt = now.Add(time.Hour)
			return &credits.Change{UpdatedBuckets: []credits.Bucket{b}}, nil
		})
		wantErr(t, "warn", err, nil)
		if due(now.Add(2*time.Hour), 2*time.Hour) || !due(now.Add(3*time.Hour), 2*time.Hour) {
			t.Fatal("a warned bucket is due again only at its expiry")
		}
	})
	t.Run("CancelledContext", func(t *testing.T) {
		s := seed(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		called := false
		err := s.Update(cctx, credits.Query{Account: "acct"}, func(st *credits.State) (*credits.Change, error) {
			called = true
			a := st.Account.Clone()
			a.Available = whole(1)
			return &credits.Change{Account: &a}, nil
		})
		if err == nil {
			t.Fatalf("Update on a cancelled context succeeded (apply called: %v)", called)
		}
		st, _ := s.View(ctx, credits.Query{Account: "acct"})
		if st.Account.Available != whole(9) {
			t.Fatalf("a cancelled Update persisted its change")
		}
	})
}

package sqlstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/creditkit/credits"
	"github.com/creditkit/credits/sqlstore"
	"github.com/creditkit/credits/storetest"
)

// drainFeed reads the feed to its end, acknowledging as it goes, and
// returns what it read.
func drainFeed(t *testing.T, ctx context.Context, f *credits.Feed) []credits.Event {
	t.Helper()
	var all []credits.Event
	for {
		evs, err := f.Next(ctx)
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if len(evs) == 0 {
			return all
		}
		all = append(all, evs...)
		if err := f.Ack(ctx, evs[len(evs)-1]); err != nil {
			t.Fatalf("Ack: %v", err)
		}
	}
}

// A transaction that wrote an entry, held open while later ones commit and
// the consumer reads past them, is still delivered once it commits: the
// feed on PostgreSQL never skips an entry that commits late.
func TestFeedDeliversALateCommit(t *testing.T) {
	ctx := context.Background()
	s := newPostgresWith(t, sqlstore.Options{})
	h := storetest.NewHarness(t, s, nil)
	h.Account(t, credits.CreateAccountRequest{ID: "a-late"})
	h.Account(t, credits.CreateAccountRequest{ID: "z-busy"})
	f, err := h.Ledger.Feed(credits.FeedConfig{Name: "late-commit", Batch: 3})
	if err != nil {
		t.Fatal(err)
	}
	drainFeed(t, ctx, f)

	// The late transaction writes first (its transaction ID is the lower,
	// and its account sorts first too, so that neither an insert-time
	// number nor an (account, seq) cursor can pass it), and stays open.
	tx, err := s.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := h.Ledger.WithStore(s.WithTx(tx)).Grant(ctx, credits.GrantRequest{Account: "a-late", Amount: credits.Whole(3), Kind: credits.KindPromo, Key: "a-late"}); err != nil {
		t.Fatal(err)
	}
	// Later transactions commit, and the consumer reads past them.
	for _, k := range []string{"b1", "b2", "b3", "b4"} {
		if _, err := h.Ledger.Grant(ctx, credits.GrantRequest{Account: "z-busy", Amount: credits.Whole(1), Kind: credits.KindPromo, Key: k}); err != nil {
			t.Fatal(err)
		}
	}
	seen := drainFeed(t, ctx, f)
	if len(seen) != 4 {
		t.Fatalf("while the late transaction is open the consumer reads the 4 committed grants, got %d", len(seen))
	}
	for _, e := range seen {
		if e.Account != "z-busy" {
			t.Fatalf("an entry of an open transaction was delivered: %s", e.ID)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	after := drainFeed(t, ctx, f)
	if len(after) != 1 || after[0].Account != "a-late" || after[0].Key != "a-late" {
		t.Fatalf("after the late commit the consumer reads %v, want the late grant", after)
	}
	if again := drainFeed(t, ctx, f); len(again) != 0 {
		t.Fatalf("read again: %v", again)
	}
}

// Two application servers run the same consumer on one database: one
// delivers; when it dies, the other takes over after its lease, from its
// last acknowledgement, with no gap.
func TestFeedTwoServers(t *testing.T) {
	ctx := context.Background()
	one := newPostgresWith(t, sqlstore.Options{})
	other, err := sqlstore.Open(ctx, postgresDSN(t), &sqlstore.Options{Schema: one.Options().Schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Close() })
	h1 := storetest.NewHarness(t, one, nil)
	ledger2, err := credits.NewLedger(other, &credits.Config{Now: h1.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b", "c"} {
		h1.Account(t, credits.CreateAccountRequest{ID: id})
	}
	f1, err := h1.Ledger.Feed(credits.FeedConfig{Name: "mailer", Holder: "server-1", LeaseTTL: 10 * time.Second, Batch: 2})
	if err != nil {
		t.Fatal(err)
	}
	f2, err := ledger2.Feed(credits.FeedConfig{Name: "mailer", Holder: "server-2", LeaseTTL: 10 * time.Second, Batch: 2})
	if err != nil {
		t.Fatal(err)
	}
	first, err := f1.Next(ctx)
	if err != nil || len(first) != 2 {
		t.Fatalf("server 1 reads: %v %v", first, err)
	}
	if err := f1.Ack(ctx, first[1]); err != nil {
		t.Fatal(err)
	}
	if _, err := f2.Next(ctx); !errors.Is(err, credits.ErrFeedLeased) {
		t.Fatalf("server 2 while server 1 delivers: %v, want ErrFeedLeased", err)
	}
	// Server 1 reads one more batch and dies before acknowledging it.
	if lost, err := f1.Next(ctx); err != nil || len(lost) == 0 {
		t.Fatalf("server 1 reads again: %v %v", lost, err)
	}
	h1.Clock.Advance(10 * time.Second)
	rest := drainFeed(t, ctx, f2)
	var all []credits.Event
	all = append(append(all, first...), rest...)
	if len(all) != 3 {
		t.Fatalf("delivered %d events across both servers, want the 3 signups", len(all))
	}
	for i, e := range all {
		if e.Type != credits.EntryGrant || e.Seq != 1 || i > 0 && all[i-1].ID == e.ID {
			t.Fatalf("delivery %d: %s %s", i, e.ID, e.Type)
		}
	}
}

// Inside the caller's transaction the low-balance hook is never called
// (the transaction may roll back); the balance_low entry commits with it,
// and the feed delivers it then.
func TestLowBalanceInCallerTransaction(t *testing.T) {
	ctx := context.Background()
	s := openSQLiteWith(t, "file:"+t.TempDir()+"/lowtx.db", sqlstore.Options{})
	h := storetest.NewHarness(t, s, func(c *credits.Config) { c.LowBalanceThreshold = credits.Whole(20) })
	h.Account(t, credits.CreateAccountRequest{ID: "a"}) // 50
	f, err := h.Ledger.Feed(credits.FeedConfig{Name: "mailer"})
	if err != nil {
		t.Fatal(err)
	}
	drainFeed(t, ctx, f)
	q := h.Quote(t, credits.QuoteRequest{Tool: "video", Resolution: "720p", Duration: 5 * time.Second}) // 40
	charge := func(key string, commit bool) {
		t.Helper()
		tx, err := s.DB().BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.Ledger.WithStore(s.WithTx(tx)).Charge(ctx, credits.ChargeRequest{Account: "a", Quote: q, Key: key}); err != nil {
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
	charge("rolled-back", false)
	if len(h.LowBalance) != 0 || len(drainFeed(t, ctx, f)) != 0 {
		t.Fatalf("a rolled-back charge signalled: %v", h.LowBalance)
	}
	charge("committed", true)
	if len(h.LowBalance) != 0 {
		t.Fatalf("the hook ran inside the caller's transaction: %v", h.LowBalance)
	}
	evs := drainFeed(t, ctx, f)
	if len(evs) != 2 || evs[0].Type != credits.EntryCharge || evs[1].Type != credits.EntryBalanceLow {
		t.Fatalf("the feed after the commit: %v", evs)
	}
}

package credits_test

import (
	"context"
	"fmt"
	"time"

	"github.com/creditkit/credits"
	"github.com/creditkit/credits/memstore"
)

// A consumer of the feed (a mailer, a webhook sender) reads every entry of
// every account, acknowledges what it handled, and after a restart resumes
// after its last acknowledgement.
func ExampleLedger_Feed() {
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	ledger, _ := credits.NewLedger(memstore.New(), &credits.Config{
		Now:    func() time.Time { return now },
		Signup: credits.Reward{Amount: credits.Whole(50)},
	})
	_, _ = ledger.CreateAccount(ctx, credits.CreateAccountRequest{ID: "alice"})
	q, _ := ledger.QuoteFor(ctx, "alice", credits.QuoteRequest{Tool: "image"})
	_, _ = ledger.Charge(ctx, credits.ChargeRequest{Account: "alice", Quote: q, Key: "gen-1"})

	feed, _ := ledger.Feed(credits.FeedConfig{Name: "mailer", Holder: "server-1"})
	events, _ := feed.Next(ctx)
	for _, e := range events {
		fmt.Printf("%s %s %s available %s job %q\n", e.ID, e.Type, e.Amount, e.Available, e.Job)
	}
	_ = feed.Ack(ctx, events[len(events)-1])

	_, _ = ledger.Grant(ctx, credits.GrantRequest{Account: "alice", Amount: credits.Whole(100), Kind: credits.KindPurchase, Key: "order-1"})
	restarted, _ := ledger.Feed(credits.FeedConfig{Name: "mailer", Holder: "server-1"})
	events, _ = restarted.Next(ctx)
	for _, e := range events {
		fmt.Println(e.ID, e.Type, e.Amount, "available", e.Available)
	}
	// Output:
	// alice#1 grant 50 available 50 job ""
	// alice#2 charge 7 available 43 job "gen-1"
	// alice#3 grant 100 available 143
}

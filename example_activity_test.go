package credits_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/creditkit/credits"
	"github.com/creditkit/credits/memstore"
)

// A user's dashboard lists their generations, one row each, newest first:
// a video that succeeded (charged by its actual length, the rest given
// back), one that failed (every credit given back) and an image charged
// and then refunded.
func ExampleLedger_Activity() {
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	ledger, _ := credits.NewLedger(memstore.New(), &credits.Config{
		Now:    func() time.Time { return now },
		Signup: credits.Reward{Amount: credits.Whole(50)},
	})
	_, _ = ledger.CreateAccount(ctx, credits.CreateAccountRequest{ID: "alice"})
	vid, _ := ledger.QuoteFor(ctx, "alice", credits.QuoteRequest{Tool: "video", Resolution: "480p", Duration: 4 * time.Second})
	img, _ := ledger.QuoteFor(ctx, "alice", credits.QuoteRequest{Tool: "image"})

	_, _ = ledger.Run(ctx, credits.ReserveRequest{Account: "alice", Quote: vid, Key: "job-1"},
		func(context.Context, credits.Hold) (credits.Usage, error) {
			now = now.Add(time.Minute)
			return credits.Usage{Duration: 3 * time.Second}, nil // a shorter video
		})
	_, _ = ledger.Run(ctx, credits.ReserveRequest{Account: "alice", Quote: vid, Key: "job-2"},
		func(context.Context, credits.Hold) (credits.Usage, error) {
			now = now.Add(time.Minute)
			return credits.Usage{}, errors.New("the model timed out")
		})
	c, _ := ledger.Charge(ctx, credits.ChargeRequest{Account: "alice", Quote: img, Key: "job-3"})
	now = now.Add(time.Minute)
	_, _ = ledger.Refund(ctx, credits.RefundRequest{Charge: c.Hold.ID, Reason: "blurry", Key: "refund-job-3"})

	page, _ := ledger.Activity(ctx, credits.ActivityRequest{Account: "alice"})
	for _, g := range page.Generations {
		fmt.Printf("%s %s %s at %s: held %s, charged %s, returned %s, cost %s\n", g.Job, g.Quote.Tool, g.Status,
			g.StartedAt.Format(time.TimeOnly), g.Held, g.Charged, g.Returned, g.Net)
	}
	b, _ := ledger.Balance(ctx, "alice")
	fmt.Println("available", b.Available)
	// Output:
	// job-3 image captured at 09:02:00: held 7, charged 7, returned 7, cost 0
	// job-2 video released at 09:01:00: held 20, charged 0, returned 20, cost 0
	// job-1 video captured at 09:00:00: held 20, charged 15, returned 5, cost 15
	// available 35
}

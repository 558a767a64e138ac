package credits_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/creditkit/credits"
	"github.com/creditkit/credits/memstore"
)

// An account's plan prices its quotes: QuoteFor shows the price the ledger
// will charge, and a quote priced with another plan is refused.
func ExampleLedger_QuoteFor() {
	ctx := context.Background()
	ledger, _ := credits.NewLedger(memstore.New(), &credits.Config{Signup: credits.Reward{Amount: credits.Whole(500)}})
	_, _ = ledger.CreateAccount(ctx, credits.CreateAccountRequest{ID: "alice", Plan: "pro"})
	_, _ = ledger.CreateAccount(ctx, credits.CreateAccountRequest{ID: "bob"})

	clip := credits.QuoteRequest{Tool: "video-pro", Resolution: "1080p", Duration: 10 * time.Second}
	forAlice, _ := ledger.QuoteFor(ctx, "alice", clip)
	forBob, _ := ledger.QuoteFor(ctx, "bob", clip)
	fmt.Println("alice:", forAlice.Breakdown)
	fmt.Println("bob:  ", forBob.Breakdown)

	// Bob cannot pay alice's price.
	_, err := ledger.Reserve(ctx, credits.ReserveRequest{Account: "bob", Quote: forAlice, Key: "job-1"})
	var pe *credits.PlanMismatchError
	fmt.Println(errors.As(err, &pe), errors.Is(err, credits.ErrWrongPlan), err)
	// Output:
	// alice: 10 s × 20.7 credits/s at 1080p (plan pro: 10% off 23) = 207 credits
	// bob:   10 s × 23 credits/s at 1080p = 230 credits
	// true true credits: account "bob" is on no plan; the quote was priced with plan "pro": quote again for the account
}

// Moving an account to another plan: its next quotes are priced with it,
// and the history says when it changed.
func ExampleLedger_UpdateAccount() {
	ctx := context.Background()
	ledger, _ := credits.NewLedger(memstore.New(), nil)
	_, _ = ledger.CreateAccount(ctx, credits.CreateAccountRequest{ID: "alice"})

	threshold := credits.Whole(10)
	plan := "studio"
	res, err := ledger.UpdateAccount(ctx, credits.UpdateAccountRequest{
		Account: "alice", Plan: &plan, LowBalanceThreshold: &threshold, Key: "upgrade-2026-12",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("plan:", res.Account.Plan, "changed:", res.Changed)

	q, _ := ledger.QuoteFor(ctx, "alice", credits.QuoteRequest{Tool: "image"})
	fmt.Println(q.Breakdown)

	page, _ := ledger.History(ctx, credits.HistoryRequest{Account: "alice"})
	last := page.Entries[len(page.Entries)-1]
	fmt.Println(last.Type, last.Plan, "—", last.Note)
	// Output:
	// plan: studio changed: true
	// 1 image × 5 credits (plan studio: instead of 7) = 5 credits
	// account studio — plan no plan → plan "studio"; low-balance threshold 0 → 10
}

// A price change at run time: new quotes use the new catalog, and quotes
// users were already looking at are still taken at their price until they
// expire.
func ExampleLedger_SetCatalog() {
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	ledger, _ := credits.NewLedger(memstore.New(), &credits.Config{
		Now:    func() time.Time { return now },
		Signup: credits.Reward{Amount: credits.Whole(50)},
	})
	_, _ = ledger.CreateAccount(ctx, credits.CreateAccountRequest{ID: "alice"})
	shown, _ := ledger.QuoteFor(ctx, "alice", credits.QuoteRequest{Tool: "image"})

	cfg := ledger.Catalog().Config()
	cfg.Version = "2026-12"
	for i := range cfg.Tools {
		if cfg.Tools[i].ID == "image" {
			cfg.Tools[i].Price = credits.Whole(8)
		}
	}
	december, err := credits.NewCatalog(cfg)
	if err == nil {
		err = ledger.SetCatalog(december)
	}
	if err != nil {
		fmt.Println(err)
		return
	}
	next, _ := ledger.QuoteFor(ctx, "alice", credits.QuoteRequest{Tool: "image"})
	charged, _ := ledger.Charge(ctx, credits.ChargeRequest{Account: "alice", Quote: shown, Key: "img-1"})
	fmt.Println("new quotes:", next.Total, "— the quote shown before:", charged.Charged)
	// Output:
	// new quotes: 8 — the quote shown before: 7
}

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

	// The history says what changed, and the plan's monthly allowance
	// came with it.
	page, _ := ledger.History(ctx, credits.HistoryRequest{Account: "alice"})
	for _, e := range page.Entries[len(page.Entries)-2:] {
		fmt.Println(e.Type, e.Amount, "—", e.Note)
	}
	// Output:
	// plan: studio changed: true
	// 1 image × 5 credits (plan studio: instead of 7) = 5 credits
	// account 0 — plan no plan → plan "studio"; low-balance threshold 0 → 10
	// grant 2000 — plan "studio" allowance, period 1
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

// A subscription: the "pro" plan of the default catalog gives 500 credits
// a month, renewed at the same day and time of each month, with up to 100
// unused credits carried into the next month.
func Example_subscription() {
	ctx := context.Background()
	now := time.Date(2027, 1, 31, 12, 0, 0, 0, time.UTC)
	ledger, _ := credits.NewLedger(memstore.New(), &credits.Config{Now: func() time.Time { return now }})
	_, _ = ledger.CreateAccount(ctx, credits.CreateAccountRequest{ID: "alice", Plan: "pro"})

	show := func() {
		b, _ := ledger.Balance(ctx, "alice")
		fmt.Printf("%s: %s available, %s of it expiring %s\n",
			now.Format("Jan 2"), b.Available, b.NextExpiry.Amount, b.NextExpiry.At.Format("Jan 2 15:04"))
	}
	show()

	q, _ := ledger.QuoteFor(ctx, "alice", credits.QuoteRequest{Tool: "video", Resolution: "1080p", Duration: 40 * time.Second})
	_, _ = ledger.Charge(ctx, credits.ChargeRequest{Account: "alice", Quote: q, Key: "clip-1"})
	fmt.Println("charged", q.Total)

	now = time.Date(2027, 2, 28, 12, 0, 0, 0, time.UTC) // February is short: the month ends on its last day
	show()
	now = time.Date(2027, 3, 31, 12, 0, 0, 0, time.UTC)
	show()
	// Output:
	// Jan 31: 500 available, 500 of it expiring Feb 28 12:00
	// charged 432
	// Feb 28: 568 available, 568 of it expiring Mar 31 12:00
	// Mar 31: 600 available, 600 of it expiring Apr 30 12:00
}

// A team whose admin caps what each member may spend per month: open holds
// count against the limit, and a refusal says what remains.
func ExampleLedger_SetMemberLimits() {
	ctx := context.Background()
	ledger, _ := credits.NewLedger(memstore.New(), nil)
	_, _ = ledger.CreateAccount(ctx, credits.CreateAccountRequest{ID: "studio-team", Team: true, Members: []string{"ana", "ben"}})
	_, _ = ledger.Grant(ctx, credits.GrantRequest{Account: "studio-team", Amount: credits.Whole(1000), Kind: credits.KindPurchase, Key: "invoice-1"})

	perMember := credits.Whole(50)
	_, err := ledger.SetMemberLimits(ctx, credits.MemberLimitsRequest{
		Account: "studio-team", Period: credits.PeriodMonth, Default: &perMember,
		Members: map[string]credits.Credits{"ana": credits.Whole(100)}, Key: "limits-v1",
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	clip, _ := ledger.QuoteFor(ctx, "studio-team", credits.QuoteRequest{Tool: "video", Resolution: "720p", Duration: 5 * time.Second})
	_, _ = ledger.Reserve(ctx, credits.ReserveRequest{Account: "studio-team", Member: "ben", Quote: clip, Key: "ben-1"})
	_, err = ledger.Reserve(ctx, credits.ReserveRequest{Account: "studio-team", Member: "ben", Quote: clip, Key: "ben-2"})
	var le *credits.MemberLimitError
	if errors.As(err, &le) {
		fmt.Println("ben:", le.Remaining(), "of", le.Limit, "left this month; the clip costs", le.Requested)
	}

	rep, _ := ledger.Spending(ctx, credits.SpendingRequest{Account: "studio-team", By: credits.ByMember})
	for _, u := range rep.Members {
		fmt.Printf("%s: %s used of %s\n", u.Member, u.Used, *u.Limit)
	}
	// Output:
	// ben: 10 of 50 left this month; the clip costs 40
	// ana: 0 used of 100
	// ben: 40 used of 50
}

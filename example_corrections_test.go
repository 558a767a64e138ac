package credits_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/creditkit/credits"
	"github.com/creditkit/credits/memstore"
)

// A payment was charged back: the purchased credits it bought come out
// again, and only those. The user had spent some of them already, so the
// debit takes what is left and says what it could not take.
func ExampleLedger_Debit() {
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	ledger, _ := credits.NewLedger(memstore.New(), &credits.Config{
		Now:    func() time.Time { return now },
		Signup: credits.Reward{Amount: credits.Whole(20)},
	})
	_, _ = ledger.CreateAccount(ctx, credits.CreateAccountRequest{ID: "alice"})
	_, _ = ledger.Grant(ctx, credits.GrantRequest{Account: "alice", Amount: credits.Whole(100), Kind: credits.KindPurchase, Key: "order-9"})
	q, _ := ledger.QuoteFor(ctx, "alice", credits.QuoteRequest{Tool: "video-pro", Resolution: "1080p", Duration: 4 * time.Second})
	_, _ = ledger.Charge(ctx, credits.ChargeRequest{Account: "alice", Quote: q, Key: "gen-1"}) // 92: the 20 signup credits, then 72 purchased

	req := credits.DebitRequest{Account: "alice", Amount: credits.Whole(100), Kinds: []credits.GrantKind{credits.KindPurchase},
		Partial: true, Reason: "chargeback of order-9", Key: "chargeback-9"}
	d, _ := ledger.Debit(ctx, req)
	fmt.Println("debited", d.Debited, "short", d.Short, "available", d.Available)

	// Without Partial, a debit larger than what is there takes nothing.
	_, err := ledger.Debit(ctx, credits.DebitRequest{Account: "alice", Amount: credits.Whole(5), Reason: "correction", Key: "fix-1"})
	var ie *credits.InsufficientCreditsError
	fmt.Println(errors.As(err, &ie), ie.Missing())

	b, _ := ledger.Balance(ctx, "alice")
	fmt.Println("granted", b.Granted, "= spent", b.Spent, "+ debited", b.Debited)
	// Output:
	// debited 28 short 72 available 0
	// true 5
	// granted 120 = spent 92 + debited 28
}

// A promotion is withdrawn: what remains of its grant is revoked, and so
// are the credits a running job had taken from it, when the job fails and
// gives them back.
func ExampleLedger_VoidGrant() {
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	ledger, _ := credits.NewLedger(memstore.New(), &credits.Config{Now: func() time.Time { return now }})
	_, _ = ledger.CreateAccount(ctx, credits.CreateAccountRequest{ID: "bob"})
	promo, _ := ledger.Grant(ctx, credits.GrantRequest{Account: "bob", Amount: credits.Whole(50), Kind: credits.KindPromo, Key: "promo-bf"})
	q, _ := ledger.QuoteFor(ctx, "bob", credits.QuoteRequest{Tool: "video", Resolution: "720p", Duration: 5 * time.Second})
	job, _ := ledger.Reserve(ctx, credits.ReserveRequest{Account: "bob", Quote: q, Key: "job-1"}) // 40 of the promo held

	v, _ := ledger.VoidGrant(ctx, credits.VoidGrantRequest{Account: "bob", Grant: promo.Grant.ID, Reason: "promo abuse", Key: "void-bf"})
	fmt.Println("voided", v.Voided, "available", v.Available)

	r, _ := ledger.Release(ctx, credits.ReleaseRequest{Hold: job.Hold.ID, Reason: "render failed"})
	fmt.Println("released", r.Released, "revoked", r.Revoked, "available", r.Available)

	_, err := ledger.VoidGrant(ctx, credits.VoidGrantRequest{Account: "bob", Grant: promo.Grant.ID, Reason: "again", Key: "void-bf-2"})
	fmt.Println(errors.Is(err, credits.ErrGrantVoided))

	page, _ := ledger.History(ctx, credits.HistoryRequest{Account: "bob"})
	for _, e := range page.Entries {
		fmt.Println(strings.TrimSpace(fmt.Sprint(e.Type, " ", e.Amount, " ", e.Note)))
	}
	// Output:
	// voided 10 available 0
	// released 40 revoked 40 available 0
	// true
	// grant 50
	// hold 40
	// void 10 promo abuse
	// release 40 render failed
	// void 40 credits given back to a voided grant
}

// An account's grants, with what is left of each: the spent and expired
// ones too when asked for all of them.
func ExampleLedger_Grants() {
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	ledger, _ := credits.NewLedger(memstore.New(), &credits.Config{
		Now:    func() time.Time { return now },
		Signup: credits.Reward{Amount: credits.Whole(20), ValidFor: 24 * time.Hour},
	})
	_, _ = ledger.CreateAccount(ctx, credits.CreateAccountRequest{ID: "carol"})
	_, _ = ledger.Grant(ctx, credits.GrantRequest{Account: "carol", Amount: credits.Whole(100), Kind: credits.KindPurchase, Key: "order-1"})
	now = now.Add(25 * time.Hour) // the signup credits expired

	live, _ := ledger.Grants(ctx, credits.GrantsRequest{Account: "carol"})
	fmt.Println(len(live.Grants), "with credits left")
	all, _ := ledger.Grants(ctx, credits.GrantsRequest{Account: "carol", All: true})
	for _, g := range all.Grants {
		fmt.Println(g.Kind, g.Amount, "remaining", g.Remaining, "expired", g.Expired)
	}
	// Output:
	// 1 with credits left
	// signup 20 remaining 0 expired 20
	// purchase 100 remaining 100 expired 0
}

package credits_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/creditkit/credits"
	"github.com/creditkit/credits/memstore"
)

// A worker that knows only the job's key (the Reserve's) reads its hold.
func ExampleLedger_HoldByKey() {
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	ledger, _ := credits.NewLedger(memstore.New(), &credits.Config{
		Now:    func() time.Time { return now },
		Signup: credits.Reward{Amount: credits.Whole(50)},
	})
	_, _ = ledger.CreateAccount(ctx, credits.CreateAccountRequest{ID: "alice"})
	q, _ := ledger.QuoteFor(ctx, "alice", credits.QuoteRequest{Tool: "image"})
	_, _ = ledger.Reserve(ctx, credits.ReserveRequest{Account: "alice", Quote: q, Key: "job-42"})

	h, _ := ledger.HoldByKey(ctx, "alice", "job-42")
	fmt.Println(h.Status, h.Amount, h.Key)
	_, err := ledger.HoldByKey(ctx, "alice", "job-43")
	fmt.Println(errors.Is(err, credits.ErrUnknownHold))
	// Output:
	// open 7 job-42
	// true
}

// A request refused for insufficient credits is refused the same way on
// every retry of its key, even after a top-up: the retry says it is a
// replay, and when the refusal was decided. A new attempt takes a new key.
func ExampleReplayedError() {
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	ledger, _ := credits.NewLedger(memstore.New(), &credits.Config{Now: func() time.Time { return now }})
	_, _ = ledger.CreateAccount(ctx, credits.CreateAccountRequest{ID: "bob"})
	q, _ := ledger.QuoteFor(ctx, "bob", credits.QuoteRequest{Tool: "image"})
	req := credits.ReserveRequest{Account: "bob", Quote: q, Key: "job-1"}
	_, err := ledger.Reserve(ctx, req)
	fmt.Println(errors.Is(err, credits.ErrInsufficientCredits))

	now = now.Add(time.Minute)
	_, _ = ledger.Grant(ctx, credits.GrantRequest{Account: "bob", Amount: credits.Whole(10), Kind: credits.KindPurchase, Key: "order-1"})
	_, err = ledger.Reserve(ctx, req)
	var replayed *credits.ReplayedError
	fmt.Println(errors.As(err, &replayed), replayed.DecidedAt.Format(time.TimeOnly), errors.Is(err, credits.ErrInsufficientCredits))

	req.Key = "job-1-retry"
	r, err := ledger.Reserve(ctx, req)
	fmt.Println(r.Hold.Status, err)
	// Output:
	// true
	// true 09:00:00 true
	// open <nil>
}

// A refused request names its field as a JSON client sent it.
func ExampleFieldError() {
	ctx := context.Background()
	ledger, _ := credits.NewLedger(memstore.New(), nil)
	_, err := ledger.Grant(ctx, credits.GrantRequest{Account: "alice", Kind: credits.KindPromo, Key: "k"})
	var fe *credits.FieldError
	if errors.As(err, &fe) {
		fmt.Println(fe.Field, "|", fe.Reason, "|", errors.Is(err, credits.ErrInvalidAmount))
	}
	fmt.Println(err)
	// Output:
	// amount | must be positive, got 0 | true
	// credits: invalid amount: amount must be positive, got 0
}

// The application records an outcome of its own in an account's history:
// a payment that failed, say. A note moves no credit, and is recorded once
// per key.
func ExampleLedger_Annotate() {
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	ledger, _ := credits.NewLedger(memstore.New(), &credits.Config{Now: func() time.Time { return now }})
	_, _ = ledger.CreateAccount(ctx, credits.CreateAccountRequest{ID: "alice"})
	for range 2 {
		_, _ = ledger.Annotate(ctx, credits.NoteRequest{Account: "alice", Note: "card declined for order 7", Key: "order-7-declined"})
	}
	page, _ := ledger.History(ctx, credits.HistoryRequest{Account: "alice", Types: []credits.EntryType{credits.EntryNote}})
	for _, e := range page.Entries {
		fmt.Println(e.Seq, e.Type, e.Amount, e.Note)
	}
	// Output:
	// 1 note 0 card declined for order 7
}

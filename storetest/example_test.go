package storetest_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/creditkit/credits"
	"github.com/creditkit/credits/memstore"
	"github.com/creditkit/credits/storetest"
)

// A charge whose write is durable but whose reply is lost (the "did it
// commit?" case): the application sees an error, retries with the same
// key, and the charge happens once.
func ExampleFaultyStore() {
	store := storetest.FaultyStore{Store: memstore.New()}
	ledger, _ := credits.NewLedger(store, &credits.Config{
		Signup: credits.Reward{Amount: credits.Whole(50)},
	})
	ctx := context.Background()
	_, _ = ledger.CreateAccount(ctx, credits.CreateAccountRequest{ID: "alice"})
	quote, _ := ledger.Quote(credits.QuoteRequest{Tool: "image"})
	charge := credits.ChargeRequest{Account: "alice", Quote: quote, Key: "job-1"}

	// Fail the charge's first store call after it has written.
	lost := &storetest.FaultPlan{At: 1, Fault: storetest.Fault{Step: storetest.AfterCall, Fail: true}}
	_, err := ledger.Charge(storetest.WithFaults(ctx, lost), charge)
	fmt.Println("first try:", errors.Is(err, storetest.ErrInjected))

	res, err := ledger.Charge(ctx, charge) // the retry
	fmt.Println("retry:", err, "replayed:", res.Replayed)
	b, _ := ledger.Balance(ctx, "alice")
	fmt.Println("available:", b.Available, "spent:", b.Spent)
	// Output:
	// first try: true
	// retry: <nil> replayed: true
	// available: 43 spent: 7
}

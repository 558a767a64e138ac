package sqlite_test

import (
	"context"
	"fmt"

	"github.com/creditkit/credits"
	"github.com/creditkit/credits/sqlstore/sqlite"
)

// Open a SQLite database in memory (created and migrated on first use) and
// run a ledger on it. A program that imports only this package links no
// PostgreSQL driver.
func ExampleOpen() {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, ":memory:", nil)
	if err != nil {
		panic(err)
	}
	defer store.Close()

	ledger, _ := credits.NewLedger(store, &credits.Config{Signup: credits.Reward{Amount: credits.Whole(50)}})
	_, _ = ledger.CreateAccount(ctx, credits.CreateAccountRequest{ID: "alice"})
	quote, _ := ledger.Quote(credits.QuoteRequest{Tool: "image"})
	_, _ = ledger.Charge(ctx, credits.ChargeRequest{Account: "alice", Quote: quote, Key: "first-image"})
	b, _ := ledger.Balance(ctx, "alice")
	fmt.Println(store.Dialect(), "available:", b.Available)
	// Output:
	// sqlite available: 43
}

package sqlstore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/creditkit/credits"
	"github.com/creditkit/credits/sqlstore"
)

// Open a SQLite file (created and migrated on first use) and run a ledger on it.
func ExampleOpen() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "credits-example")
	defer os.RemoveAll(dir)

	store, err := sqlstore.Open(ctx, "file:"+filepath.Join(dir, "credits.db"), nil)
	if err != nil {
		panic(err)
	}
	defer store.Close()
	v, _ := store.Version(ctx)
	fmt.Println("schema version:", v)

	ledger, _ := credits.NewLedger(store, &credits.Config{Signup: credits.Reward{Amount: credits.Whole(50)}})
	_, _ = ledger.CreateAccount(ctx, credits.CreateAccountRequest{ID: "alice"})
	b, _ := ledger.Balance(ctx, "alice")
	fmt.Println("available:", b.Available)
	// Output:
	// schema version: 9
	// available: 50
}

// Reserve credits in the same transaction that inserts the application's
// job row: both commit, or neither does.
func ExampleStore_WithTx() {
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, ":memory:", nil)
	if err != nil {
		panic(err)
	}
	defer store.Close()
	db := store.DB()
	_, _ = db.ExecContext(ctx, "CREATE TABLE jobs (id TEXT PRIMARY KEY, hold TEXT NOT NULL)")
	ledger, _ := credits.NewLedger(store, &credits.Config{Signup: credits.Reward{Amount: credits.Whole(50)}})
	_, _ = ledger.CreateAccount(ctx, credits.CreateAccountRequest{ID: "alice"})
	quote, _ := ledger.Quote(credits.QuoteRequest{Tool: "image"})

	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		panic(err)
	}
	res, err := ledger.WithStore(store.WithTx(tx)).Reserve(ctx, credits.ReserveRequest{Account: "alice", Quote: quote, Key: "job-1"})
	if err != nil {
		_ = tx.Rollback()
		panic(err)
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO jobs (id, hold) VALUES (?, ?)", "job-1", res.Hold.ID); err != nil {
		_ = tx.Rollback()
		panic(err)
	}
	if err := tx.Commit(); err != nil {
		panic(err)
	}

	b, _ := ledger.Balance(ctx, "alice")
	var jobs int
	_ = db.QueryRowContext(ctx, "SELECT count(*) FROM jobs").Scan(&jobs)
	fmt.Println("held:", b.Held, "jobs:", jobs)
	// Output:
	// held: 7 jobs: 1
}

// Concurrent operations share transactions (group commit); Stats shows how
// they were grouped. Here 32 callers charge one account at once while the
// store is idle, so the first runs alone and the others queue behind it.
func ExampleStore_Stats() {
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, ":memory:", nil)
	if err != nil {
		panic(err)
	}
	defer store.Close()
	ledger, _ := credits.NewLedger(store, &credits.Config{Signup: credits.Reward{Amount: credits.Whole(1000)}})
	_, _ = ledger.CreateAccount(ctx, credits.CreateAccountRequest{ID: "team"})
	quote, _ := ledger.Quote(credits.QuoteRequest{Tool: "image"})

	before := store.Stats()
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			if _, err := ledger.Charge(ctx, credits.ChargeRequest{Account: "team", Quote: quote, Key: fmt.Sprint("job-", i)}); err != nil {
				panic(err)
			}
		})
	}
	wg.Wait()
	st := store.Stats()
	fmt.Println("operations:", st.Operations-before.Operations)
	fmt.Println("fewer transactions than operations:", st.Batches-before.Batches < 32)
	b, _ := ledger.Balance(ctx, "team")
	fmt.Println("available:", b.Available)
	// Output:
	// operations: 32
	// fewer transactions than operations: true
	// available: 776
}

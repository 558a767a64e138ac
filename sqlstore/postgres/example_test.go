package postgres_test

import (
	"context"
	"fmt"
	"log"

	"github.com/creditkit/credits"
	"github.com/creditkit/credits/sqlstore/postgres"
)

// Open PostgreSQL (the schema is migrated on first use), with the tables in
// a schema of their own beside the application's. A program that imports
// only this package links no SQLite.
func ExampleOpen() {
	ctx := context.Background()
	store, err := postgres.Open(ctx, "postgres://app@db.internal/app?sslmode=verify-full", &postgres.Options{Schema: "billing"})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	ledger, err := credits.NewLedger(store, nil)
	if err != nil {
		log.Fatal(err)
	}
	b, err := ledger.Balance(ctx, "alice")
	fmt.Println(b.Available, err)
}

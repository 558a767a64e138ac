package webhooks_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/creditkit/credits"
	"github.com/creditkit/credits/memstore"
	"github.com/creditkit/credits/webhooks"
)

// A Sender delivers the ledger's feed to an endpoint that verifies each
// delivery's signature and deduplicates by event ID.
func Example() {
	ctx := context.Background()
	secret := []byte("whsec-a-32-byte-random-secret!!!")

	// The receiving side: verify, then handle each event once.
	var mu sync.Mutex
	seen := map[string]bool{} // in production: a unique key in the database
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e, _, err := webhooks.VerifyRequest(r, [][]byte{secret}, time.Now(), webhooks.DefaultTolerance)
		if err != nil {
			http.Error(w, "unverified", http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if !seen[e.ID] {
			seen[e.ID] = true
			fmt.Printf("%s %s %s, available %s\n", e.ID, e.Type, e.Amount, e.Available)
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer receiver.Close()

	// The sending side: a ledger, and a Sender on a feed consumer of its own.
	ledger, _ := credits.NewLedger(memstore.New(), &credits.Config{Signup: credits.Reward{Amount: credits.Whole(50)}})
	_, _ = ledger.CreateAccount(ctx, credits.CreateAccountRequest{ID: "alice"})
	q, _ := ledger.QuoteFor(ctx, "alice", credits.QuoteRequest{Tool: "image"})
	_, _ = ledger.Charge(ctx, credits.ChargeRequest{Account: "alice", Quote: q, Key: "gen-1"})

	feed, _ := ledger.Feed(credits.FeedConfig{Name: "webhook"})
	sender := &webhooks.Sender{
		Source: feed,
		URL:    receiver.URL,
		Secret: secret,
		Logger: slog.New(slog.DiscardHandler),
	}
	// Run(ctx) delivers until ctx is done; Step delivers one batch.
	n, err := sender.Step(ctx)
	fmt.Println(n, "delivered and acknowledged", err)
	// Output:
	// alice#1 grant 50, available 50
	// alice#2 charge 7, available 43
	// 2 delivered and acknowledged <nil>
}

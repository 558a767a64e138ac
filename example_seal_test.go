package credits_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/creditkit/credits"
	"github.com/creditkit/credits/memstore"
)

// The quote a user confirms in a browser comes back sealed, to any app
// server whose ledger has the same key: the server decodes the confirm
// request's JSON and reserves. Nobody without the key can make or alter a
// sealed quote.
func ExampleLedger_SealQuote() {
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	key := []byte("an example key, 32 bytes or more: use crypto/rand") // the same on every server, kept secret
	ledger, _ := credits.NewLedger(memstore.New(), &credits.Config{
		Now:      func() time.Time { return now },
		QuoteKey: key,
		Signup:   credits.Reward{Amount: credits.Whole(50)},
	})
	_, _ = ledger.CreateAccount(ctx, credits.CreateAccountRequest{ID: "alice"})

	// Quote time: show the price, hand the sealed quote to the page.
	q, _ := ledger.QuoteFor(ctx, "alice", credits.QuoteRequest{Tool: "video", Resolution: "720p", Duration: 5 * time.Second})
	sealed, _ := ledger.SealQuote(q)
	fmt.Println(q.Breakdown)
	fmt.Println(strings.HasPrefix(sealed, "q1."), len(sealed) < 500)

	// Confirm time, on any server: the page posts the sealed quote back.
	body := `{"account": "alice", "quote": "` + sealed + `", "ttl_ms": 600000}`
	var req credits.ReserveRequest
	if err := json.Unmarshal([]byte(body), &req); err != nil {
		panic(err)
	}
	req.Key = "job-42" // from the request's Idempotency-Key header
	res, err := ledger.Reserve(ctx, req)
	if err != nil {
		panic(err)
	}
	fmt.Println("held", res.Hold.Amount, "until", res.Hold.Deadline.Format(time.TimeOnly))
	// Output:
	// 5 s × 8 credits/s at 720p = 40 credits
	// true true
	// held 40 until 09:10:00
}

// OpenQuote verifies a sealed quote and returns it; an altered, truncated
// or foreign one is refused with ErrInvalidQuote (code "invalid_quote",
// 400). The quote's own expiry is checked by Reserve and Charge.
func ExampleLedger_OpenQuote() {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	ledger, _ := credits.NewLedger(memstore.New(), &credits.Config{
		Now:      func() time.Time { return now },
		QuoteKey: []byte("an example key, 32 bytes or more: use crypto/rand"),
	})
	_, _ = ledger.CreateAccount(context.Background(), credits.CreateAccountRequest{ID: "alice"})
	q, _ := ledger.Quote(credits.QuoteRequest{Tool: "image", Images: 2})
	sealed, _ := ledger.SealQuote(q)

	opened, err := ledger.OpenQuote(sealed)
	fmt.Println(opened.Total, opened.ExpiresAt.Format(time.TimeOnly), err)

	_, err = ledger.OpenQuote(sealed[:len(sealed)-1])
	code, status := credits.Code(err)
	fmt.Println(errors.Is(err, credits.ErrInvalidQuote), code, status)

	now = now.Add(time.Hour) // the quote expired: it opens, but Reserve refuses it
	_, err = ledger.Reserve(context.Background(), credits.ReserveRequest{Account: "alice", SealedQuote: sealed, Key: "k"})
	fmt.Println(errors.Is(err, credits.ErrQuoteExpired))
	// Output:
	// 14 09:15:00 <nil>
	// true invalid_quote 400
	// true
}

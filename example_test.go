package credits_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/creditkit/credits"
	"github.com/creditkit/credits/memstore"
)

// newExampleLedger returns a ledger on an in-memory store with a fixed clock
// and an account "alice" holding the 50 free signup credits.
func newExampleLedger() (*credits.Ledger, *time.Time) {
	now := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	n := 0
	ledger, err := credits.NewLedger(memstore.New(), &credits.Config{
		Now:    func() time.Time { return now },
		NewID:  func(prefix string) string { n++; return fmt.Sprintf("%s_%d", prefix, n) },
		Signup: credits.Reward{Amount: credits.Whole(50), ValidFor: 30 * 24 * time.Hour},
		Daily:  credits.Reward{Amount: credits.Whole(5), ValidFor: 24 * time.Hour},
	})
	if err != nil {
		panic(err)
	}
	if _, err := ledger.CreateAccount(context.Background(), credits.CreateAccountRequest{ID: "alice"}); err != nil {
		panic(err)
	}
	return ledger, &now
}

func ExampleLedger_Reserve() {
	ctx := context.Background()
	ledger, _ := newExampleLedger()

	// Show the price, the user confirms, hold the credits for the job.
	quote, _ := ledger.Quote(credits.QuoteRequest{Tool: "video", Resolution: "720p", Duration: 5 * time.Second})
	fmt.Println(quote.Breakdown)
	res, err := ledger.Reserve(ctx, credits.ReserveRequest{Account: "alice", Quote: quote, Key: "job-1"})
	if err != nil {
		panic(err)
	}
	fmt.Println("held:", res.Hold.Amount, "available:", res.Available)

	// The video came out 3.4 s long: it is charged 4 s, the rest goes back.
	charge, _ := ledger.Capture(ctx, credits.CaptureRequest{Hold: res.Hold.ID, Usage: credits.Usage{Duration: 3400 * time.Millisecond}})
	fmt.Println("charged:", charge.Charged, "released:", charge.Released, "available:", charge.Available)

	// A job that cannot be afforded is refused up front.
	big, _ := ledger.Quote(credits.QuoteRequest{Tool: "video-pro", Resolution: "1080p", Duration: 10 * time.Second})
	_, err = ledger.Reserve(ctx, credits.ReserveRequest{Account: "alice", Quote: big, Key: "job-2"})
	var short *credits.InsufficientCreditsError
	if errors.As(err, &short) {
		fmt.Println("refused: missing", short.Missing())
	}
	// Output:
	// 5 s × 8 credits/s at 720p = 40 credits
	// held: 40 available: 10
	// charged: 32 released: 8 available: 18
	// refused: missing 212
}

func ExampleLedger_Release() {
	ctx := context.Background()
	ledger, _ := newExampleLedger()
	quote, _ := ledger.Quote(credits.QuoteRequest{Tool: "video", Resolution: "480p", Duration: 6 * time.Second})
	res, _ := ledger.Reserve(ctx, credits.ReserveRequest{Account: "alice", Quote: quote, Key: "job-1"})
	fmt.Println("available while the job runs:", res.Available)

	// The generation failed: every held credit goes back where it came from.
	rel, _ := ledger.Release(ctx, credits.ReleaseRequest{Hold: res.Hold.ID, Reason: "model error"})
	fmt.Println("released:", rel.Released, "available:", rel.Available)

	// Capturing it now is refused.
	_, err := ledger.Capture(ctx, credits.CaptureRequest{Hold: res.Hold.ID})
	fmt.Println(errors.Is(err, credits.ErrHoldSettled))
	// Output:
	// available while the job runs: 20
	// released: 30 available: 50
	// true
}

func ExampleLedger_Refund() {
	ctx := context.Background()
	ledger, _ := newExampleLedger()
	quote, _ := ledger.Quote(credits.QuoteRequest{Tool: "image", Images: 2})
	charge, _ := ledger.Charge(ctx, credits.ChargeRequest{Account: "alice", Quote: quote, Key: "img-1"})
	fmt.Println("charged:", charge.Charged, "available:", charge.Available)

	// One of the two images was broken: refund it.
	r, _ := ledger.Refund(ctx, credits.RefundRequest{Charge: charge.Hold.ID, Amount: credits.Whole(7), Reason: "broken image", Key: "refund-img-1"})
	fmt.Println("refunded:", r.Refunded, "available:", r.Available)

	// The same refund retried is applied once.
	again, _ := ledger.Refund(ctx, credits.RefundRequest{Charge: charge.Hold.ID, Amount: credits.Whole(7), Reason: "broken image", Key: "refund-img-1"})
	fmt.Println("replayed:", again.Replayed, "available:", again.Available)

	// A refund can never exceed the charge.
	_, err := ledger.Refund(ctx, credits.RefundRequest{Charge: charge.Hold.ID, Amount: credits.Whole(8), Key: "refund-img-1b"})
	fmt.Println(errors.Is(err, credits.ErrRefundExceedsCharge))
	// Output:
	// charged: 14 available: 36
	// refunded: 7 available: 43
	// replayed: true available: 43
	// true
}

func ExampleLedger_Run() {
	ctx := context.Background()
	ledger, _ := newExampleLedger()
	quote, _ := ledger.Quote(credits.QuoteRequest{Tool: "avatar-video", Resolution: "720p", Duration: 10 * time.Second})

	// A job that fails: Run releases the hold, whatever happens in the job.
	_, err := ledger.Run(ctx, credits.ReserveRequest{Account: "alice", Quote: quote, Key: "avatar-1"},
		func(ctx context.Context, hold credits.Hold) (credits.Usage, error) {
			return credits.Usage{}, errors.New("GPU out of memory")
		})
	fmt.Println("job error:", err)
	b, _ := ledger.Balance(ctx, "alice")
	fmt.Println("available:", b.Available)

	// A job that succeeds with 8 s of video: charged for 8 s.
	res, err := ledger.Run(ctx, credits.ReserveRequest{Account: "alice", Quote: quote, Key: "avatar-2"},
		func(ctx context.Context, hold credits.Hold) (credits.Usage, error) {
			return credits.Usage{Duration: 8 * time.Second}, nil
		})
	fmt.Println("charged:", res.Charged, "available:", res.Available, err)
	// Output:
	// job error: GPU out of memory
	// available: 50
	// charged: 24 available: 26 <nil>
}

func ExampleLedger_Balance() {
	ctx := context.Background()
	ledger, now := newExampleLedger()
	_, _ = ledger.Grant(ctx, credits.GrantRequest{Account: "alice", Amount: credits.Whole(100), Kind: credits.KindPurchase, Key: "order-77"})
	_, _ = ledger.ClaimDaily(ctx, "alice")
	quote, _ := ledger.Quote(credits.QuoteRequest{Tool: "video", Resolution: "720p", Duration: 5 * time.Second})
	_, _ = ledger.Reserve(ctx, credits.ReserveRequest{Account: "alice", Quote: quote, Key: "job-1"})

	b, _ := ledger.Balance(ctx, "alice")
	fmt.Println("available:", b.Available, "held:", b.Held)
	fmt.Println("free:", b.Free, "paid:", b.Paid)
	fmt.Println("next expiry:", b.NextExpiry.Amount, "at", b.NextExpiry.At.Format(time.DateTime))

	// The worker died: two hours later the hold's deadline (one hour) has
	// given the credits back by itself.
	*now = now.Add(2 * time.Hour)
	b, _ = ledger.Balance(ctx, "alice")
	fmt.Println("after the deadline:", b.Available, "held:", b.Held)
	// Output:
	// available: 115 held: 40
	// free: 15 paid: 100
	// next expiry: 15 at 2026-12-25 09:00:00
	// after the deadline: 155 held: 0
}

func ExampleLedger_History() {
	ctx := context.Background()
	ledger, _ := newExampleLedger()
	quote, _ := ledger.Quote(credits.QuoteRequest{Tool: "upscale"})
	_, _ = ledger.Charge(ctx, credits.ChargeRequest{Account: "alice", Quote: quote, Key: "up-1"})

	page, _ := ledger.History(ctx, credits.HistoryRequest{Account: "alice"})
	for _, e := range page.Entries {
		fmt.Printf("%d %-7s %5s  available %s\n", e.Seq, e.Type, e.Amount, e.Available)
	}
	// Output:
	// 1 grant      50  available 50
	// 2 charge      3  available 47
}

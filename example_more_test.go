package credits_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/creditkit/credits"
	"github.com/creditkit/credits/memstore"
)

// The life of a generation: quote the price, hold it while the job runs, give
// it all back when the job fails, charge what was produced when it succeeds.
func Example() {
	ctx := context.Background()
	ledger, _ := credits.NewLedger(memstore.New(), &credits.Config{
		Signup: credits.Reward{Amount: credits.Whole(50)},
	})
	_, _ = ledger.CreateAccount(ctx, credits.CreateAccountRequest{ID: "alice"})

	quote, _ := ledger.QuoteFor(ctx, "alice", credits.QuoteRequest{Tool: "video", Resolution: "720p", Duration: 5 * time.Second})
	fmt.Println(quote.Breakdown)

	_, err := ledger.Run(ctx, credits.ReserveRequest{Account: "alice", Quote: quote, Key: "job-1"},
		func(ctx context.Context, hold credits.Hold) (credits.Usage, error) {
			return credits.Usage{}, errors.New("model timed out") // every credit goes back
		})
	fmt.Println("failed:", err)

	charge, _ := ledger.Run(ctx, credits.ReserveRequest{Account: "alice", Quote: quote, Key: "job-2"},
		func(ctx context.Context, hold credits.Hold) (credits.Usage, error) {
			return credits.Usage{Duration: 4 * time.Second}, nil // shorter than quoted
		})
	fmt.Println("charged:", charge.Charged)

	b, _ := ledger.Balance(ctx, "alice")
	fmt.Println("available:", b.Available)
	// Output:
	// 5 s × 8 credits/s at 720p = 40 credits
	// failed: model timed out
	// charged: 32
	// available: 18
}

// A ledger with free signup and daily credits that calls the application when
// an account's balance falls below a threshold, to prompt a top-up. Credits
// held for a running job still count: the job may give them back. Its
// charge is what takes the balance below.
func ExampleNewLedger() {
	ctx := context.Background()
	ledger, err := credits.NewLedger(memstore.New(), &credits.Config{
		Now:                 func() time.Time { return time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC) },
		Signup:              credits.Reward{Amount: credits.Whole(50), ValidFor: 30 * 24 * time.Hour},
		Daily:               credits.Reward{Amount: credits.Whole(5), ValidFor: 48 * time.Hour},
		LowBalanceThreshold: credits.Whole(20),
		OnLowBalance: func(ctx context.Context, e credits.LowBalanceEvent) {
			fmt.Printf("low balance: %s has %s credits (threshold %s)\n", e.Account, e.Available, e.Threshold)
		},
	})
	if err != nil {
		panic(err)
	}
	_, _ = ledger.CreateAccount(ctx, credits.CreateAccountRequest{ID: "alice"})

	// 40 of the 50 credits are held for a video: not low yet.
	quote, _ := ledger.Quote(credits.QuoteRequest{Tool: "video", Resolution: "720p", Duration: 5 * time.Second})
	res, _ := ledger.Reserve(ctx, credits.ReserveRequest{Account: "alice", Quote: quote, Key: "job-1"})
	fmt.Println("held:", res.Hold.Amount, "available:", res.Available)
	// The video is charged: the balance drops below 20.
	c, _ := ledger.Capture(ctx, credits.CaptureRequest{Hold: res.Hold.ID})
	fmt.Println("available:", c.Available)
	// Output:
	// held: 40 available: 10
	// low balance: alice has 10 credits (threshold 20)
	// available: 10
}

// A team account is one balance shared by its members; only members may
// spend from it.
func ExampleLedger_CreateAccount() {
	ctx := context.Background()
	ledger, _ := newExampleLedger()
	acct, _ := ledger.CreateAccount(ctx, credits.CreateAccountRequest{ID: "acme", Team: true, Members: []string{"bob", "alice"}})
	fmt.Println(acct.Account.ID, "members:", acct.Account.Members)
	// A team is funded by purchases (it gets no signup credits).
	_, _ = ledger.Grant(ctx, credits.GrantRequest{Account: "acme", Amount: credits.Whole(50), Kind: credits.KindPurchase, Key: "order-1"})

	quote, _ := ledger.Quote(credits.QuoteRequest{Tool: "image"})
	_, err := ledger.Charge(ctx, credits.ChargeRequest{Account: "acme", Member: "carol", Quote: quote, Key: "img-1"})
	fmt.Println("carol:", errors.Is(err, credits.ErrNotMember))

	// Once added, carol can spend from the team's balance (with a new key:
	// the refusal above stays the answer to "img-1").
	team, _ := ledger.UpdateMembers(ctx, credits.MembersRequest{Account: "acme", Add: []string{"carol"}})
	fmt.Println("members:", team.Members)
	charge, err := ledger.Charge(ctx, credits.ChargeRequest{Account: "acme", Member: "carol", Quote: quote, Key: "img-2"})
	fmt.Println("carol charged:", charge.Charged, "available:", charge.Available, err)
	// Output:
	// acme members: [alice bob]
	// carol: true
	// members: [alice bob carol]
	// carol charged: 7 available: 43 <nil>
}

// A purchase is granted under the payment's ID as its key, so a payment
// webhook delivered twice credits the account once.
func ExampleLedger_Grant() {
	ctx := context.Background()
	ledger, now := newExampleLedger()
	order := credits.GrantRequest{Account: "alice", Amount: credits.Whole(100), Kind: credits.KindPurchase, Key: "order-77"}

	first, _ := ledger.Grant(ctx, order)
	fmt.Println("available:", first.Available, "replayed:", first.Replayed)
	again, _ := ledger.Grant(ctx, order)
	fmt.Println("available:", again.Available, "replayed:", again.Replayed)

	// Purchased credits never expire: a purchase with an expiry is refused.
	_, err := ledger.Grant(ctx, credits.GrantRequest{Account: "alice", Amount: credits.Whole(100), Kind: credits.KindPurchase,
		ExpiresAt: now.Add(24 * time.Hour), Key: "order-78"})
	fmt.Println(errors.Is(err, credits.ErrInvalidRequest))

	// Promotional credits may expire.
	promo, _ := ledger.Grant(ctx, credits.GrantRequest{Account: "alice", Amount: credits.Whole(10), Kind: credits.KindPromo,
		ExpiresAt: now.Add(7 * 24 * time.Hour), Key: "black-friday"})
	fmt.Println("promo expires:", promo.Grant.ExpiresAt.Format(time.DateOnly), "available:", promo.Available)
	// Output:
	// available: 150 replayed: false
	// available: 150 replayed: true
	// true
	// promo expires: 2026-12-02 available: 160
}

// The daily reward can be claimed once per calendar day (UTC by default).
func ExampleLedger_ClaimDaily() {
	ctx := context.Background()
	ledger, now := newExampleLedger()

	claim, _ := ledger.ClaimDaily(ctx, "alice")
	fmt.Println("claimed:", claim.Grant.Amount, "available:", claim.Available)

	// A second claim the same day gives nothing and says when to come back.
	again, _ := ledger.ClaimDaily(ctx, "alice")
	fmt.Println("replayed:", again.Replayed, "available:", again.Available, "next:", again.NextClaimAt.Format(time.DateTime))

	*now = again.NextClaimAt
	next, _ := ledger.ClaimDaily(ctx, "alice")
	fmt.Println("claimed:", next.Grant.Amount, "available:", next.Available, "replayed:", next.Replayed)
	// Output:
	// claimed: 5 available: 55
	// replayed: true available: 55 next: 2026-11-26 00:00:00
	// claimed: 5 available: 60 replayed: false
}

// Capture charges a hold by what the job actually produced, never more than
// the quote the user confirmed.
func ExampleLedger_Capture() {
	ctx := context.Background()
	ledger, _ := newExampleLedger()
	quote, _ := ledger.Quote(credits.QuoteRequest{Tool: "video", Resolution: "480p", Duration: 6 * time.Second})

	// The video came out 3.2 s long: 4 started seconds at 5 credits/s.
	short, _ := ledger.Reserve(ctx, credits.ReserveRequest{Account: "alice", Quote: quote, Key: "job-1"})
	c, _ := ledger.Capture(ctx, credits.CaptureRequest{Hold: short.Hold.ID, Usage: credits.Usage{Duration: 3200 * time.Millisecond}})
	fmt.Println("charged:", c.Charged, "released:", c.Released, "capped:", c.Capped)

	// This one ran 9 s, longer than the 6 s quoted: it is charged the quote.
	long, _ := ledger.Reserve(ctx, credits.ReserveRequest{Account: "alice", Quote: quote, Key: "job-2"})
	c, _ = ledger.Capture(ctx, credits.CaptureRequest{Hold: long.Hold.ID, Usage: credits.Usage{Duration: 9 * time.Second}})
	fmt.Println("charged:", c.Charged, "released:", c.Released, "capped:", c.Capped, "available:", c.Available)
	// Output:
	// charged: 20 released: 10 capped: false
	// charged: 30 released: 0 capped: true available: 0
}

// Charge takes the price of an instant tool in one step, once its result is
// there.
func ExampleLedger_Charge() {
	ctx := context.Background()
	ledger, _ := newExampleLedger()

	quote, _ := ledger.Quote(credits.QuoteRequest{Tool: "remove-background"})
	c, _ := ledger.Charge(ctx, credits.ChargeRequest{Account: "alice", Quote: quote, Key: "bg-1"})
	fmt.Println("charged:", c.Charged, "available:", c.Available)

	// Eight generated images cost 56 credits: more than alice has.
	quote, _ = ledger.Quote(credits.QuoteRequest{Tool: "image", Images: 8})
	_, err := ledger.Charge(ctx, credits.ChargeRequest{Account: "alice", Quote: quote, Key: "img-1"})
	var short *credits.InsufficientCreditsError
	if errors.As(err, &short) {
		fmt.Println("refused: requested", short.Requested, "available", short.Available, "missing", short.Missing())
	}
	// Output:
	// charged: 3 available: 47
	// refused: requested 56 available 47 missing 9
}

// A team's spending, by member and by tool.
func ExampleLedger_Spending() {
	ctx := context.Background()
	ledger, _ := newExampleLedger()
	_, _ = ledger.CreateAccount(ctx, credits.CreateAccountRequest{ID: "acme", Team: true, Members: []string{"alice", "bob"}})
	_, _ = ledger.Grant(ctx, credits.GrantRequest{Account: "acme", Amount: credits.Whole(100), Kind: credits.KindPurchase, Key: "order-1"})
	for i, job := range []struct {
		member string
		req    credits.QuoteRequest
	}{
		{"alice", credits.QuoteRequest{Tool: "image", Images: 2}},
		{"bob", credits.QuoteRequest{Tool: "upscale"}},
		{"bob", credits.QuoteRequest{Tool: "image"}},
	} {
		quote, _ := ledger.Quote(job.req)
		_, _ = ledger.Charge(ctx, credits.ChargeRequest{Account: "acme", Member: job.member, Quote: quote, Key: fmt.Sprint("job-", i)})
	}

	for _, by := range []credits.GroupBy{credits.ByMember, credits.ByTool} {
		report, _ := ledger.Spending(ctx, credits.SpendingRequest{Account: "acme", By: by})
		for _, line := range report.Lines {
			fmt.Printf("%-7s %2s credits in %d charges\n", line.Group, line.Net, line.Charges)
		}
		fmt.Printf("total   %2s credits\n", report.Total.Net)
	}
	// Output:
	// alice   14 credits in 1 charges
	// bob     10 credits in 2 charges
	// total   24 credits
	// image   21 credits in 2 charges
	// upscale  3 credits in 1 charges
	// total   24 credits
}

// Sweep stores the expiries that fell due, such as the hold of a worker that
// died before capturing or releasing it. (Reads already see the credits back;
// Sweep writes it to storage and history.)
func ExampleLedger_Sweep() {
	ctx := context.Background()
	ledger, now := newExampleLedger()
	quote, _ := ledger.Quote(credits.QuoteRequest{Tool: "video", Resolution: "720p", Duration: 5 * time.Second})
	res, _ := ledger.Reserve(ctx, credits.ReserveRequest{Account: "alice", Quote: quote, Key: "job-1", TTL: 10 * time.Minute})
	fmt.Println("held:", res.Hold.Amount, "until", res.Hold.Deadline.Format(time.TimeOnly))

	*now = res.Hold.Deadline // the worker never came back
	swept, _ := ledger.Sweep(ctx)
	fmt.Printf("%+v\n", swept)

	b, _ := ledger.Balance(ctx, "alice")
	fmt.Println("available:", b.Available, "held:", b.Held)
	// Output:
	// held: 40 until 09:10:00
	// {Accounts:1 HoldsExpired:1 GrantsExpired:0 GrantsWarned:0 AllowancesGranted:0}
	// available: 50 held: 0
}

// Credits are exact fixed-point amounts: they parse from decimal text and
// never round.
func ExampleParse() {
	c, err := credits.Parse("2.5")
	fmt.Println(c, c.Units(), err)

	_, err = credits.Parse("0.0001") // finer than a millicredit
	fmt.Println(errors.Is(err, credits.ErrInvalidAmount))
	// Output:
	// 2.5 2500 <nil>
	// true
}

// Arithmetic on Credits is checked: an overflow is an error, never a
// wrapped-around balance. In JSON, Credits is a string, so that no reader
// turns it into a float.
func ExampleCredits_Add() {
	sum, err := credits.MustParse("2.5").Add(credits.MustParse("0.125"))
	fmt.Println(sum, err)

	_, err = credits.FromUnits(credits.MaxUnits).Add(credits.FromUnits(1))
	fmt.Println(errors.Is(err, credits.ErrOverflow))

	out, _ := json.Marshal(map[string]credits.Credits{"total": sum})
	fmt.Println(string(out))
	// Output:
	// 2.625 <nil>
	// true
	// {"total":"2.625"}
}

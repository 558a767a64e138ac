package credits_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/creditkit/credits"
	"github.com/creditkit/credits/memstore"
)

// A worker in another process knows only the hold's ID: it reads the hold
// to see whether it is still worth finishing the job. A hold past its
// deadline reads as expired, as the ledger will treat it.
func ExampleLedger_Hold() {
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	ledger, _ := credits.NewLedger(memstore.New(), &credits.Config{
		Now:    func() time.Time { return now },
		Signup: credits.Reward{Amount: credits.Whole(50)},
	})
	_, _ = ledger.CreateAccount(ctx, credits.CreateAccountRequest{ID: "alice"})
	q, _ := ledger.QuoteFor(ctx, "alice", credits.QuoteRequest{Tool: "video", Resolution: "720p", Duration: 5 * time.Second})
	r, _ := ledger.Reserve(ctx, credits.ReserveRequest{Account: "alice", Quote: q, TTL: 10 * time.Minute, Key: "job-7"})

	h, _ := ledger.Hold(ctx, r.Hold.ID)
	fmt.Println(h.Status, h.Amount, "until", h.Deadline.Format(time.TimeOnly))
	now = now.Add(11 * time.Minute)
	h, _ = ledger.Hold(ctx, r.Hold.ID)
	fmt.Println(h.Status)
	_, err := ledger.Hold(ctx, "hold_unknown")
	fmt.Println(errors.Is(err, credits.ErrUnknownHold))
	// Output:
	// open 40 until 09:10:00
	// expired
	// true
}

// An account as of now: its plan, its allowance's next renewal and its
// balances.
func ExampleLedger_Account() {
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	ledger, _ := credits.NewLedger(memstore.New(), &credits.Config{Now: func() time.Time { return now }})
	_, _ = ledger.CreateAccount(ctx, credits.CreateAccountRequest{ID: "alice", Plan: "pro", Metadata: map[string]string{"email": "alice@example.com"}})

	a, _ := ledger.Account(ctx, "alice")
	fmt.Println(a.Plan, a.Available, a.RenewsAt.Format(time.DateOnly), a.Metadata["email"])
	// Output:
	// pro 500 2027-01-01 alice@example.com
}

// A worker whose job runs longer than its hold's TTL sends heartbeats: the
// credits stay held, and the generation paid for, while it works.
func ExampleLedger_Extend() {
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	ledger, _ := credits.NewLedger(memstore.New(), &credits.Config{
		Now:    func() time.Time { return now },
		Signup: credits.Reward{Amount: credits.Whole(50)},
	})
	_, _ = ledger.CreateAccount(ctx, credits.CreateAccountRequest{ID: "alice"})
	q, _ := ledger.QuoteFor(ctx, "alice", credits.QuoteRequest{Tool: "video", Resolution: "720p", Duration: 5 * time.Second})
	r, _ := ledger.Reserve(ctx, credits.ReserveRequest{Account: "alice", Quote: q, TTL: 5 * time.Minute, Key: "job-8"})

	for range 3 { // the job is still rendering: a heartbeat every 4 minutes
		now = now.Add(4 * time.Minute)
		e, _ := ledger.Extend(ctx, credits.ExtendRequest{Hold: r.Hold.ID, TTL: 5 * time.Minute})
		fmt.Println("held until", e.Hold.Deadline.Format(time.TimeOnly))
	}
	c, err := ledger.Capture(ctx, credits.CaptureRequest{Hold: r.Hold.ID})
	fmt.Println(c.Charged, err)
	// Output:
	// held until 09:09:00
	// held until 09:13:00
	// held until 09:17:00
	// 40 <nil>
}

// The web handler reserves under the job's ID; a worker in another
// goroutine (or process) that knows only that job ID reads the hold,
// sends a heartbeat and captures by it.
func ExampleCaptureRequest_byJob() {
	ctx := context.Background()
	ledger, _ := credits.NewLedger(memstore.New(), &credits.Config{Signup: credits.Reward{Amount: credits.Whole(50)}})
	_, _ = ledger.CreateAccount(ctx, credits.CreateAccountRequest{ID: "alice"})

	jobs := make(chan string, 1)
	q, _ := ledger.QuoteFor(ctx, "alice", credits.QuoteRequest{Tool: "video", Resolution: "720p", Duration: 5 * time.Second})
	if _, err := ledger.Reserve(ctx, credits.ReserveRequest{Account: "alice", Quote: q, Key: "job-42"}); err != nil {
		fmt.Println(err)
		return
	}
	jobs <- "job-42"

	done := make(chan credits.ChargeResult)
	go func() { // the worker
		job := <-jobs
		h, _ := ledger.HoldByKey(ctx, "alice", job)
		fmt.Println("worker: holding", h.Amount, "for", job)
		_, _ = ledger.Extend(ctx, credits.ExtendRequest{Account: "alice", ReserveKey: job})
		c, _ := ledger.Capture(ctx, credits.CaptureRequest{Account: "alice", ReserveKey: job, Usage: credits.Usage{Duration: 4 * time.Second}})
		done <- c
	}()
	c := <-done
	fmt.Println("charged", c.Charged, "released", c.Released)
	// Output:
	// worker: holding 40 for job-42
	// charged 32 released 8
}

// A dashboard's activity list: the newest entries first, only what the
// user's jobs did, each with the job it belongs to.
func ExampleHistoryRequest_newest() {
	ctx := context.Background()
	ledger, _ := credits.NewLedger(memstore.New(), &credits.Config{Signup: credits.Reward{Amount: credits.Whole(50)}})
	_, _ = ledger.CreateAccount(ctx, credits.CreateAccountRequest{ID: "alice"})
	img, _ := ledger.QuoteFor(ctx, "alice", credits.QuoteRequest{Tool: "image"})
	vid, _ := ledger.QuoteFor(ctx, "alice", credits.QuoteRequest{Tool: "video", Resolution: "480p", Duration: 4 * time.Second})
	_, _ = ledger.Charge(ctx, credits.ChargeRequest{Account: "alice", Quote: img, Key: "job-1"})
	_, _ = ledger.Run(ctx, credits.ReserveRequest{Account: "alice", Quote: vid, Key: "job-2"},
		func(context.Context, credits.Hold) (credits.Usage, error) {
			return credits.Usage{}, errors.New("timed out")
		})

	page, _ := ledger.History(ctx, credits.HistoryRequest{Account: "alice", Newest: true, Limit: 2,
		Types: []credits.EntryType{credits.EntryCharge, credits.EntryHold, credits.EntryCapture, credits.EntryRelease}})
	for _, e := range page.Entries {
		fmt.Println(e.Seq, e.Type, e.Amount, e.Job)
	}
	next, _ := ledger.History(ctx, credits.HistoryRequest{Account: "alice", Newest: true, Before: page.Next, Limit: 2})
	fmt.Println("then", next.Entries[0].Seq, next.Entries[0].Type, next.Entries[0].Job)
	// Output:
	// 4 release 20 job-2
	// 3 hold 20 job-2
	// then 2 charge job-1
}

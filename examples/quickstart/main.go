// Quickstart tells the life of an account on an AI image/video platform, end
// to end: signup credits, an image charged on success, the daily reward, a
// video whose generation fails and is refunded exactly, a video charged by
// its actual length, a purchase, then the balance and the history.
//
//	go run ./examples/quickstart                       # SQLite file in the temp dir
//	go run ./examples/quickstart -db postgres://…      # or PostgreSQL
//	go run ./examples/quickstart -db file:credits.db   # or a SQLite file of your choice
//
// The ledger persists: run it twice and alice's balance carries over. It
// exits with status 1 if anything does not add up.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/creditkit/credits"
	"github.com/creditkit/credits/sqlstore"
)

func main() {
	dsn := flag.String("db", "file:"+filepath.Join(os.TempDir(), "credits-quickstart.db"),
		"database: a postgres:// URL, or a SQLite file: URI or path")
	flag.Parse()
	if err := run(context.Background(), *dsn); err != nil {
		log.SetFlags(0)
		log.Fatalf("quickstart: %v", err)
	}
}

// check fails the story when a figure is not what the rules promise.
func check(what string, got, want credits.Credits) error {
	if got != want {
		return fmt.Errorf("%s: got %s credits, want %s", what, got, want)
	}
	return nil
}

func run(ctx context.Context, dsn string) error {
	store, err := sqlstore.Open(ctx, dsn, nil)
	if err != nil {
		return err
	}
	defer store.Close()
	ledger, err := credits.NewLedger(store, &credits.Config{
		Signup: credits.Reward{Amount: credits.Whole(50), ValidFor: 30 * 24 * time.Hour},
		Daily:  credits.Reward{Amount: credits.Whole(5), ValidFor: 48 * time.Hour},
	})
	if err != nil {
		return err
	}
	say := func(format string, args ...any) { fmt.Printf(format+"\n", args...) }
	say("ledger on %s (%s)", store.Dialect(), dsn)
	// Every run's operations get keys of their own; the account is the same.
	runID := time.Now().UTC().Format("20060102T150405.000000000")
	key := func(name string) string { return name + "@" + runID }

	// 1. Sign up: 50 free credits, once.
	acct, err := ledger.CreateAccount(ctx, credits.CreateAccountRequest{ID: "alice"})
	if err != nil {
		return err
	}
	if acct.Replayed {
		say("1. alice is back: her account and balance carried over from an earlier run (no second signup bonus)")
	} else {
		say("1. alice signs up and gets %s free credits", acct.Signup.Amount)
	}
	start, err := ledger.Balance(ctx, "alice")
	if err != nil {
		return err
	}
	say("   available: %s", start.Available)

	// 2. Quote an image, generate it, charge it.
	// QuoteFor prices with the account's plan: the price shown is the price charged.
	imgQuote, err := ledger.QuoteFor(ctx, "alice", credits.QuoteRequest{Tool: "image"})
	if err != nil {
		return err
	}
	say("2. quote: %s", imgQuote.Breakdown)
	img, err := ledger.Charge(ctx, credits.ChargeRequest{Account: "alice", Quote: imgQuote, Key: key("img")})
	if err != nil {
		return err
	}
	say("   the image is generated; charged %s, available %s", img.Charged, img.Available)
	if err := check("after the image", img.Available, minus(start.Available, imgQuote.Total)); err != nil {
		return err
	}

	// 3. The daily reward, once per day.
	daily, err := ledger.ClaimDaily(ctx, "alice")
	if err != nil {
		return err
	}
	again, err := ledger.ClaimDaily(ctx, "alice")
	if err != nil {
		return err
	}
	if !again.Replayed || again.Grant.ID != daily.Grant.ID {
		return errors.New("a second daily claim the same day gave credits again")
	}
	if daily.Replayed {
		say("3. daily reward: already claimed today (+%s then); next at %s", daily.Grant.Amount, daily.NextClaimAt.Format(time.DateTime+" MST"))
	} else {
		say("3. daily reward: +%s (a second claim today gives nothing; next at %s)", daily.Grant.Amount, daily.NextClaimAt.Format(time.DateTime+" MST"))
	}

	// 4. A 720p video: quote, hold, the generation fails, exact refund.
	vidQuote, err := ledger.QuoteFor(ctx, "alice", credits.QuoteRequest{Tool: "video", Resolution: "720p", Duration: 5 * time.Second})
	if err != nil {
		return err
	}
	say("4. quote: %s", vidQuote.Breakdown)
	before, err := ledger.Balance(ctx, "alice")
	if err != nil {
		return err
	}
	_, jobErr := ledger.Run(ctx, credits.ReserveRequest{Account: "alice", Quote: vidQuote, Key: key("video-1")},
		func(ctx context.Context, hold credits.Hold) (credits.Usage, error) {
			b, err := ledger.Balance(ctx, "alice")
			if err != nil {
				return credits.Usage{}, err
			}
			say("   held %s while the job runs; available %s", b.Held, b.Available)
			return credits.Usage{}, errors.New("the video model crashed")
		})
	if jobErr == nil {
		return errors.New("the failing job reported success")
	}
	after, err := ledger.Balance(ctx, "alice")
	if err != nil {
		return err
	}
	say("   the generation fails (%v): every credit comes back, available %s", jobErr, after.Available)
	if err := check("after the failed video", after.Available, before.Available); err != nil {
		return err
	}

	// 5. A second video, rendered by a worker that knows only the job's ID
	// (in production, another process reading a queue): it captures by the
	// key the job was reserved under. It comes out shorter than quoted, so
	// it is charged by its actual seconds.
	jobID := key("video-2")
	if _, err := ledger.Reserve(ctx, credits.ReserveRequest{Account: "alice", Quote: vidQuote, Key: jobID}); err != nil {
		return err
	}
	queue, done := make(chan string, 1), make(chan error, 1)
	var res credits.ChargeResult
	go func() { // the worker
		job := <-queue
		var err error
		res, err = ledger.Capture(ctx, credits.CaptureRequest{Account: "alice", ReserveKey: job,
			Usage: credits.Usage{Duration: 3200 * time.Millisecond}}) // 3.2 s, billed 4 s
		done <- err
	}()
	queue <- jobID
	if err := <-done; err != nil {
		return err
	}
	say("5. a worker that knows only the job %q renders it: 3.2 s long, charged %s of the %s held, %s back; available %s",
		jobID, res.Charged, vidQuote.Total, res.Released, res.Available)
	shortCost, _, err := vidQuote.Cost(credits.Usage{Duration: 4 * time.Second})
	if err != nil {
		return err
	}
	if err := check("the short video's charge", res.Charged, shortCost); err != nil {
		return err
	}

	// 6. A purchase: paid credits never expire. Sent twice, applied once.
	beforeBuy, err := ledger.Balance(ctx, "alice")
	if err != nil {
		return err
	}
	for range 2 {
		if _, err := ledger.Grant(ctx, credits.GrantRequest{Account: "alice", Amount: credits.Whole(100), Kind: credits.KindPurchase, Key: key("order")}); err != nil {
			return err
		}
	}
	say("6. alice buys 100 credits (the payment webhook fired twice; applied once)")
	afterBuy, err := ledger.Balance(ctx, "alice")
	if err != nil {
		return err
	}
	if err := check("after the purchase", afterBuy.Available, plus(beforeBuy.Available, credits.Whole(100))); err != nil {
		return err
	}

	// 7. Alice moves to the pro plan: 500 credits a month, and her quotes
	// are priced with it from now on; a quote of another plan is refused.
	pro := "pro"
	up, err := ledger.UpdateAccount(ctx, credits.UpdateAccountRequest{Account: "alice", Plan: &pro, Key: "alice-to-pro"})
	if err != nil {
		return err
	}
	proQuote, err := ledger.QuoteFor(ctx, "alice", credits.QuoteRequest{Tool: "video", Resolution: "720p", Duration: 5 * time.Second})
	if err != nil {
		return err
	}
	onPlan, err := ledger.Balance(ctx, "alice")
	if err != nil {
		return err
	}
	if up.Replayed {
		say("7. alice has been on the pro plan since an earlier run: %s", proQuote.Breakdown)
	} else {
		say("7. alice moves to the pro plan: %s", proQuote.Breakdown)
		if err := check("the plan's allowance", onPlan.Available, plus(afterBuy.Available, credits.Whole(500))); err != nil {
			return err
		}
		say("   +500 credits: the plan's monthly allowance, until %s (up to 100 unused carry into the next month)",
			onPlan.NextExpiry.At.Format(time.DateTime+" MST"))
	}
	listQuote, err := ledger.Quote(credits.QuoteRequest{Tool: "video", Resolution: "720p", Duration: 5 * time.Second})
	if err != nil {
		return err
	}
	_, err = ledger.Reserve(ctx, credits.ReserveRequest{Account: "alice", Quote: listQuote, Key: key("list-price")})
	if !errors.Is(err, credits.ErrWrongPlan) {
		return fmt.Errorf("a quote of another plan was not refused: %v", err)
	}
	say("   the list-price quote is refused for her: %v", err)

	// 8. The balance and the history.
	b, err := ledger.Balance(ctx, "alice")
	if err != nil {
		return err
	}
	say("8. balance: %s available (%s free, %s paid), %s held, %s spent", b.Available, b.Free, b.Paid, b.Held, b.Spent)
	if err := check("the final balance", b.Available, onPlan.Available); err != nil {
		return err
	}
	var entries []credits.Entry
	for after := int64(0); ; {
		page, err := ledger.History(ctx, credits.HistoryRequest{Account: "alice", After: after, Limit: 1000})
		if err != nil {
			return err
		}
		entries = append(entries, page.Entries...)
		if page.Next == 0 {
			break
		}
		after = page.Next
	}
	fmt.Println()
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "#\ttype\ttool\tamount\tavailable\theld\tnote\t")
	var sum credits.Credits
	for _, e := range entries {
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t\n", e.Seq, e.Type, e.Tool, e.Amount, e.Available, e.Held, e.Note)
		if sum, err = sum.Add(e.AvailableDelta()); err != nil {
			return err
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := check("the history's sum", sum, b.Available); err != nil {
		return err
	}
	fmt.Println("\nthe history sums to the balance:", sum)
	return nil
}

func minus(a, b credits.Credits) credits.Credits {
	d, _ := a.Sub(b)
	return d
}

func plus(a, b credits.Credits) credits.Credits {
	s, _ := a.Add(b)
	return s
}

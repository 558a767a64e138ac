// Webhooks delivers a ledger's events to an HTTP endpoint, end to end, in
// one process: a receiver on 127.0.0.1 that verifies each delivery's
// signature and deduplicates by event ID, a ledger on memstore with a few
// operations (signup credits, an image charged, a video that fails and is
// given back, a purchase), and a webhooks.Sender delivering its feed.
//
//	go run ./examples/webhooks
//
// The receiver handles the first delivery of the charge and then fails to
// answer (as if it crashed before replying): the sender tries again, and
// the receiver recognises the event by its ID and does not handle it
// twice. The program exits with status 1 if an event is missing, handled
// twice, or not delivered within 10 seconds.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/creditkit/credits"
	"github.com/creditkit/credits/memstore"
	"github.com/creditkit/credits/topup"
	"github.com/creditkit/credits/webhooks"
)

// secret is shared by the sender and the receiver. In production: 32
// random bytes from a secret store, never in the code.
var secret = []byte("whsec-example-only-0123456789abc")

func main() {
	log.SetFlags(0)
	if err := run(context.Background()); err != nil {
		log.Fatalf("webhooks example: %v", err)
	}
}

// receiver is the application receiving the webhooks.
type receiver struct {
	mu sync.Mutex
	// handled is the set of event IDs already handled. In production it
	// is a table with the event ID as its unique key, written in the same
	// transaction as whatever the event causes (an email queued, a
	// dashboard row), so that a delivery that comes again, after a crash
	// or a lost reply, is recognised there too.
	handled  map[string]bool
	got      []credits.Event
	failOnce map[string]bool // event IDs to fail the first time (the demo's hiccup)
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Verify before anything else: signature, timestamp (5 min either way)
	// and a body of at most 1 MiB.
	e, _, err := webhooks.VerifyRequest(r, [][]byte{secret}, time.Now(), webhooks.DefaultTolerance)
	if err != nil {
		fmt.Printf("receiver: refused: %v\n", err)
		http.Error(w, "unverified delivery", http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.handled[e.ID] {
		fmt.Printf("receiver: %-8s again: a duplicate, acknowledged and not handled twice\n", e.ID)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	rc.handled[e.ID] = true
	rc.got = append(rc.got, e)
	line := fmt.Sprintf("receiver: %-8s %-8s %5s  available %s, held %s", e.ID, e.Type, e.Amount, e.Available, e.Held)
	if e.Job != "" {
		line += fmt.Sprintf("  (job %s)", e.Job)
	}
	fmt.Println(line)
	if rc.failOnce[e.ID] {
		delete(rc.failOnce, e.ID)
		fmt.Printf("receiver: %-8s handled, but the reply fails (503): the sender will try again\n", e.ID)
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.got)
}

func run(ctx context.Context) error {
	// The receiver, on a port of its own.
	rc := &receiver{handled: map[string]bool{}, failOnce: map[string]bool{"alice#2": true}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: rc, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	url := "http://" + ln.Addr().String() + "/hooks/credits"

	// The ledger, and what happens on it.
	ledger, err := credits.NewLedger(memstore.New(), &credits.Config{Signup: credits.Reward{Amount: credits.Whole(50)}})
	if err != nil {
		return err
	}
	if _, err := ledger.CreateAccount(ctx, credits.CreateAccountRequest{ID: "alice"}); err != nil {
		return err
	}
	img, err := ledger.QuoteFor(ctx, "alice", credits.QuoteRequest{Tool: "image"})
	if err != nil {
		return err
	}
	if _, err := ledger.Charge(ctx, credits.ChargeRequest{Account: "alice", Quote: img, Key: "image-1"}); err != nil {
		return err
	}
	vid, err := ledger.QuoteFor(ctx, "alice", credits.QuoteRequest{Tool: "video", Resolution: "720p", Duration: 5 * time.Second})
	if err != nil {
		return err
	}
	_, jobErr := ledger.Run(ctx, credits.ReserveRequest{Account: "alice", Quote: vid, Key: "video-1"},
		func(context.Context, credits.Hold) (credits.Usage, error) {
			return credits.Usage{}, errors.New("the video model crashed")
		})
	if jobErr == nil {
		return errors.New("the failing job reported success")
	}
	if _, err := ledger.Grant(ctx, credits.GrantRequest{Account: "alice", Amount: credits.Whole(100), Kind: credits.KindPurchase, Key: "order-1"}); err != nil {
		return err
	}
	// How many events there are to deliver, read by a consumer of its own.
	audit, err := ledger.Feed(credits.FeedConfig{Name: "audit"})
	if err != nil {
		return err
	}
	all, err := audit.Next(ctx)
	if err != nil {
		return err
	}

	// The sender: one feed consumer per endpoint, named after it.
	feed, err := ledger.Feed(credits.FeedConfig{Name: "webhook-example"})
	if err != nil {
		return err
	}
	sender := &webhooks.Sender{
		Source:       feed,
		URL:          url,
		Secret:       secret,
		PollInterval: 20 * time.Millisecond,
		Backoff:      func(int) time.Duration { return 50 * time.Millisecond }, // quick, for the demo
		Logger:       slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
		OnDeadLetter: func(_ context.Context, e credits.Event, err error) error {
			fmt.Printf("sender: dead letter %s: %v\n", e.ID, err)
			return nil // in production: record it, to deliver again later
		},
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- sender.Run(runCtx) }()

	deadline := time.Now().Add(10 * time.Second)
	for rc.count() < len(all) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	if err := <-done; !errors.Is(err, context.Canceled) {
		return fmt.Errorf("the sender stopped: %v", err)
	}

	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.got) != len(all) {
		return fmt.Errorf("the receiver handled %d events of %d", len(rc.got), len(all))
	}
	for i, e := range all {
		if rc.got[i].ID != e.ID {
			return fmt.Errorf("event %d: the receiver handled %s, the feed had %s", i, rc.got[i].ID, e.ID)
		}
	}
	fmt.Printf("\n%d events, each handled once, in order.\n", len(all))
	return autoTopUp(ctx, ledger)
}

// autoTopUp runs an auto top-up policy on a feed consumer of its own:
// when alice's balance falls below her threshold, she is charged for 100
// credits (here, a fake payment) and they are granted, once per event.
func autoTopUp(ctx context.Context, ledger *credits.Ledger) error {
	threshold := credits.Whole(120)
	if _, err := ledger.UpdateAccount(ctx, credits.UpdateAccountRequest{Account: "alice", LowBalanceThreshold: &threshold, Key: "threshold"}); err != nil {
		return err
	}
	img, err := ledger.QuoteFor(ctx, "alice", credits.QuoteRequest{Tool: "image"})
	if err != nil {
		return err
	}
	for i := range 4 { // 143 − 28 = 115: below 120
		if _, err := ledger.Charge(ctx, credits.ChargeRequest{Account: "alice", Quote: img, Key: fmt.Sprint("image-more-", i)}); err != nil {
			return err
		}
	}
	feed, err := ledger.Feed(credits.FeedConfig{Name: "auto-topup"})
	if err != nil {
		return err
	}
	policy := &topup.Policy{
		Ledger: ledger, Source: feed, Amount: credits.Whole(100), MonthlyCap: credits.Whole(500),
		Pay: func(_ context.Context, p topup.Payment) error {
			fmt.Printf("\nauto top-up: charging %s for %s credits (idempotency key %s)\n", p.Account, p.Amount, p.Key)
			return nil // in production: the payment provider, with p.Key as its idempotency key
		},
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
	}
	for {
		n, err := policy.Step(ctx)
		if err != nil {
			return err
		}
		if n == 0 {
			break
		}
	}
	b, err := ledger.Balance(ctx, "alice")
	if err != nil {
		return err
	}
	if b.Available != credits.Whole(215) {
		return fmt.Errorf("after the auto top-up alice has %s, want 215", b.Available)
	}
	fmt.Printf("auto top-up: alice has %s credits\n", b.Available)
	return nil
}

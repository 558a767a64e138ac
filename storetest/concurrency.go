package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creditkit/credits"
)

// RunConcurrency hammers one hot account from `workers` goroutines with
// reserves, captures, releases, one-step charges, refunds and retries of the
// same key (sent twice at once), on a balance too small for all of them.
// It checks that no result ever shows a negative balance, that every key had
// exactly one effect, and that the final totals are exact.
func RunConcurrency(t *testing.T, newStore NewStore, workers int) {
	h := NewHarness(t, newStore(t), func(c *credits.Config) {
		c.Signup = credits.Reward{}
		c.NewID = nil // random IDs, as in production
		c.OnLowBalance = nil
	})
	ctx := context.Background()
	h.Account(t, credits.CreateAccountRequest{ID: "hot"})
	const rounds = 12
	// Enough for about two thirds of what the workers will try.
	budget := credits.Whole(int64(workers * rounds * 2))
	if _, err := h.Ledger.Grant(ctx, credits.GrantRequest{Account: "hot", Amount: budget, Kind: credits.KindPurchase, Key: "budget"}); err != nil {
		t.Fatal(err)
	}
	image, err := h.Ledger.Quote(credits.QuoteRequest{Tool: "image"})
	if err != nil {
		t.Fatal(err)
	}
	video, err := h.Ledger.Quote(credits.QuoteRequest{Tool: "avatar-video", Resolution: "480p", Duration: 4 * time.Second}) // 8
	if err != nil {
		t.Fatal(err)
	}
	var (
		charged, refunded atomic.Int64 // units, counted once per effect
		refused           atomic.Int64
		negative          atomic.Bool
		wg                sync.WaitGroup
	)
	see := func(avail credits.Credits) {
		if avail.IsNegative() {
			negative.Store(true)
		}
	}
	// twice sends the same request from two goroutines at once and returns
	// both outcomes: exactly one may be the first.
	twice := func(f func() (credits.ChargeResult, error)) (credits.ChargeResult, error, credits.ChargeResult, error) {
		var r1, r2 credits.ChargeResult
		var e1, e2 error
		var inner sync.WaitGroup
		inner.Add(2)
		go func() { defer inner.Done(); r1, e1 = f() }()
		go func() { defer inner.Done(); r2, e2 = f() }()
		inner.Wait()
		return r1, e1, r2, e2
	}
	errs := make(chan error, workers*rounds*2)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				key := fmt.Sprintf("w%d-r%d", w, r)
				switch (w + r) % 4 {
				case 0: // a one-step charge, sent twice at once
					r1, e1, r2, e2 := twice(func() (credits.ChargeResult, error) {
						return h.Ledger.Charge(ctx, credits.ChargeRequest{Account: "hot", Quote: image, Key: key})
					})
					switch {
					case e1 == nil && e2 == nil:
						if r1.Replayed == r2.Replayed || r1.Hold.ID != r2.Hold.ID {
							errs <- fmt.Errorf("%s: two effects for one key: %+v / %+v", key, r1, r2)
							continue
						}
						charged.Add(r1.Charged.Units())
						see(r1.Available)
						see(r2.Available)
						if r%3 == 0 {
							res, err := h.Ledger.Refund(ctx, credits.RefundRequest{Charge: r1.Hold.ID, Key: key + "-refund"})
							if err != nil {
								errs <- fmt.Errorf("%s refund: %v", key, err)
								continue
							}
							refunded.Add(res.Refunded.Units())
							see(res.Available)
						}
					case errors.Is(e1, credits.ErrInsufficientCredits) && errors.Is(e2, credits.ErrInsufficientCredits):
						refused.Add(1)
					default:
						errs <- fmt.Errorf("%s: charge: %v / %v", key, e1, e2)
					}
				case 1, 2: // reserve, then capture part or release
					res, err := h.Ledger.Reserve(ctx, credits.ReserveRequest{Account: "hot", Quote: video, Key: key})
					if errors.Is(err, credits.ErrInsufficientCredits) {
						refused.Add(1)
						continue
					}
					if err != nil {
						errs <- fmt.Errorf("%s: reserve: %v", key, err)
						continue
					}
					see(res.Available)
					if (w+r)%4 == 1 {
						c1, e1, c2, e2 := twice(func() (credits.ChargeResult, error) {
							return h.Ledger.Capture(ctx, credits.CaptureRequest{Hold: res.Hold.ID, Usage: credits.Usage{Duration: 3 * time.Second}})
						})
						if e1 != nil || e2 != nil || c1.Replayed == c2.Replayed {
							errs <- fmt.Errorf("%s: capture twice: %+v %v / %+v %v", key, c1, e1, c2, e2)
							continue
						}
						charged.Add(c1.Charged.Units())
						see(c1.Available)
					} else {
						rel, err := h.Ledger.Release(ctx, credits.ReleaseRequest{Hold: res.Hold.ID})
						if err != nil {
							errs <- fmt.Errorf("%s: release: %v", key, err)
							continue
						}
						see(rel.Available)
					}
				case 3: // a job through Run that fails half the time
					res, err := h.Ledger.Run(ctx, credits.ReserveRequest{Account: "hot", Quote: video, Key: key},
						func(context.Context, credits.Hold) (credits.Usage, error) {
							if r%2 == 0 {
								return credits.Usage{}, errJob
							}
							return credits.Usage{Duration: 2 * time.Second}, nil
						})
					switch {
					case errors.Is(err, credits.ErrInsufficientCredits):
						refused.Add(1)
					case errors.Is(err, errJob):
					case err != nil:
						errs <- fmt.Errorf("%s: run: %v", key, err)
					default:
						charged.Add(res.Charged.Units())
						see(res.Available)
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if negative.Load() {
		t.Error("a result showed a negative available balance")
	}
	b := h.Balance(t, "hot")
	spent := credits.FromUnits(charged.Load() - refunded.Load())
	want, _ := budget.Sub(spent)
	if b.Held.IsPositive() || b.Spent != spent || b.Available != want {
		t.Errorf("final balance %+v; want available %s, spent %s, nothing held", b, want, spent)
	}
	if refused.Load() == 0 {
		t.Error("the budget never ran out: the test did not exercise contention on an empty balance")
	}
	CheckInvariants(t, h, "hot")
	t.Logf("%d workers: charged %s, refunded %s, refused %d", workers,
		credits.FromUnits(charged.Load()), credits.FromUnits(refunded.Load()), refused.Load())
}

var errJob = errors.New("job failed")

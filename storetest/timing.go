package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/creditkit/credits"
)

// runTime checks the ledger's behaviour at the edges of time: a hold and a
// grant one nanosecond before, at and after their deadline; a clock that
// moves backwards; and a sweep racing a capture of the same hold.
func runTime(t *testing.T, newStore NewStore) {
	t.Run("Deadlines", func(t *testing.T) { testDeadlines(t, newStore(t)) })
	t.Run("ClockBackwards", func(t *testing.T) { testClockBackwards(t, newStore(t)) })
	t.Run("SweepRacesCapture", func(t *testing.T) { testSweepRacesCapture(t, newStore(t)) })
}

// testDeadlines: at its deadline a hold is over (capture and release get
// ErrHoldExpired, the credits are back) and a grant has expired; one
// nanosecond before, both are still alive.
func testDeadlines(t *testing.T, store credits.Store) {
	for _, offset := range []time.Duration{-time.Nanosecond, 0, time.Nanosecond} {
		for _, settle := range []string{"capture", "release"} {
			h := NewHarness(t, store, func(c *credits.Config) {
				c.Signup = credits.Reward{}
				c.NewID = SequentialIDs(fmt.Sprintf("dl%d%s_", offset, settle))
			})
			acct := fmt.Sprintf("deadline-%s-%d", settle, offset)
			h.Account(t, credits.CreateAccountRequest{ID: acct})
			h.Account(t, credits.CreateAccountRequest{ID: acct + "-promo"})
			deadline := h.Clock.Now().Add(time.Minute)
			grant(t, h, acct, whole(100), credits.KindPurchase, time.Time{}, "buy")
			grant(t, h, acct+"-promo", whole(10), credits.KindPromo, deadline, "promo")
			r, err := h.Ledger.Reserve(h.Ctx, credits.ReserveRequest{Account: acct, Quote: h.Quote(t, credits.QuoteRequest{Tool: "image"}), Key: "r", TTL: time.Minute})
			wantErr(t, "reserve", err, nil)
			if !r.Hold.Deadline.Equal(deadline) {
				t.Fatalf("hold deadline %v, want %v", r.Hold.Deadline, deadline)
			}
			h.Clock.Set(deadline.Add(offset))
			alive := offset < 0
			b := h.Balance(t, acct)
			if alive && (b.Held != whole(7) || b.Available != whole(93)) || !alive && (!b.Held.IsZero() || b.Available != whole(100)) {
				t.Fatalf("hold, %v from its deadline: %+v", offset, b)
			}
			p := h.Balance(t, acct+"-promo")
			if alive && p.Available != whole(10) || !alive && (!p.Available.IsZero() || p.Expired != whole(10)) {
				t.Fatalf("grant, %v from its expiry: %+v", offset, p)
			}
			if settle == "capture" {
				_, err = h.Ledger.Capture(h.Ctx, credits.CaptureRequest{Hold: r.Hold.ID})
			} else {
				_, err = h.Ledger.Release(h.Ctx, credits.ReleaseRequest{Hold: r.Hold.ID})
			}
			if alive {
				wantErr(t, fmt.Sprintf("%s %v from the deadline", settle, offset), err, nil)
			} else {
				wantErr(t, fmt.Sprintf("%s %v from the deadline", settle, offset), err, credits.ErrHoldExpired)
			}
			CheckInvariants(t, h, acct)
			CheckInvariants(t, h, acct+"-promo")
		}
	}
}

// testClockBackwards: the clock jumps back after expiries were written. What
// a write expired stays expired (credits do not come back), the ledger keeps
// working at the earlier time, and every invariant holds.
func testClockBackwards(t *testing.T, store credits.Store) {
	h := NewHarness(t, store, func(c *credits.Config) { c.Signup = credits.Reward{} })
	start := h.Clock.Now()
	h.Account(t, credits.CreateAccountRequest{ID: "back"})
	grant(t, h, "back", whole(100), credits.KindPurchase, time.Time{}, "buy")
	grant(t, h, "back", whole(10), credits.KindPromo, start.Add(time.Hour), "promo")
	image := h.Quote(t, credits.QuoteRequest{Tool: "image"})
	r, err := h.Ledger.Reserve(h.Ctx, credits.ReserveRequest{Account: "back", Quote: image, Key: "r", TTL: time.Minute})
	wantErr(t, "reserve", err, nil)

	h.Clock.Set(start.Add(2 * time.Hour))
	if _, err := h.Ledger.Sweep(h.Ctx); err != nil {
		t.Fatal(err)
	}
	// The hold took 7 of the promo (it expires first); its deadline gave
	// them back at T+1m, and the whole promo expired at T+1h.
	after := h.Balance(t, "back")
	if after.Available != whole(100) || after.Expired != whole(10) || !after.Held.IsZero() {
		t.Fatalf("after the sweep: %+v", after)
	}
	entries := len(h.History(t, "back"))

	h.Clock.Set(start) // back before both deadlines
	b := h.Balance(t, "back")
	if b.Available != after.Available || b.Expired != after.Expired || !b.Held.IsZero() {
		t.Fatalf("the clock went back and the balance changed: %+v, was %+v", b, after)
	}
	_, err = h.Ledger.Capture(h.Ctx, credits.CaptureRequest{Hold: r.Hold.ID})
	wantErr(t, "capture of a hold expired by a sweep, clock back before its deadline", err, credits.ErrHoldExpired)
	_, err = h.Ledger.Charge(h.Ctx, credits.ChargeRequest{Account: "back", Quote: image, Key: "c"})
	wantErr(t, "charge at the earlier time", err, nil)
	r2, err := h.Ledger.Reserve(h.Ctx, credits.ReserveRequest{Account: "back", Quote: image, Key: "r2", TTL: time.Minute})
	wantErr(t, "reserve at the earlier time", err, nil)
	if !r2.Hold.Deadline.Equal(start.Add(time.Minute)) {
		t.Fatalf("a hold made at the earlier time ends at %v", r2.Hold.Deadline)
	}
	if n := len(h.History(t, "back")); n != entries+2 {
		t.Fatalf("%d entries after a charge and a reserve, want %d", n, entries+2)
	}
	CheckInvariants(t, h, "back")

	// Forward again past the new hold's deadline: it expires, once.
	h.Clock.Set(start.Add(2 * time.Minute))
	if res, err := h.Ledger.Sweep(h.Ctx); err != nil || res.HoldsExpired != 1 {
		t.Fatalf("sweep: %+v %v", res, err)
	}
	if res, err := h.Ledger.Sweep(h.Ctx); err != nil || res.HoldsExpired != 0 {
		t.Fatalf("second sweep: %+v %v", res, err)
	}
	b = h.Balance(t, "back")
	if b.Available != whole(93) || b.Spent != whole(7) || !b.Held.IsZero() {
		t.Fatalf("at the end: %+v (one charge of 7 since %+v)", b, after)
	}
	CheckInvariants(t, h, "back")
}

// testSweepRacesCapture: a sweep whose clock is at a hold's deadline races a
// capture whose clock is one nanosecond before it. Exactly one wins: the
// hold is either captured (and the sweep leaves it) or expired (and the
// capture gets ErrHoldExpired); never both, never neither. The sweep makes
// one more store call than the capture (DueAccounts), so the capture starts
// 0 to 300 µs late, varying by round, and the rounds go on until each side
// has won at least once. How long that extra call takes depends on the
// store and on how loaded the machine is, so while one side has not won
// yet, its rival starts 250 µs later each round: the race is always run
// both ways, on any store, however busy the machine.
func testSweepRacesCapture(t *testing.T, store credits.Store) {
	capturer := NewHarness(t, FaultyStore{Store: store}, func(c *credits.Config) {
		c.Signup = credits.Reward{}
		c.NewID = SequentialIDs("racec_")
	})
	sweeper := NewHarness(t, FaultyStore{Store: store}, func(c *credits.Config) { c.NewID = SequentialIDs("races_") })
	const minRounds, maxRounds = 24, 240
	const step = 250 * time.Microsecond
	var captured, expired, rounds int
	var captureLag, sweepLag time.Duration // grow while the other side never wins
	for i := 0; i < minRounds || (captured == 0 || expired == 0) && i < maxRounds; i++ {
		rounds++
		late := &FaultPlan{At: 1, Fault: Fault{Step: BeforeCall, Delay: captureLag + time.Duration(i%4)*100*time.Microsecond}}
		sweepLate := &FaultPlan{At: 1, Fault: Fault{Step: BeforeCall, Delay: sweepLag}}
		acct := fmt.Sprintf("race-%d", i)
		capturer.Account(t, credits.CreateAccountRequest{ID: acct})
		grant(t, capturer, acct, whole(20), credits.KindPurchase, time.Time{}, "buy")
		image := capturer.Quote(t, credits.QuoteRequest{Tool: "image"})
		r, err := capturer.Ledger.Reserve(capturer.Ctx, credits.ReserveRequest{Account: acct, Quote: image, Key: "job", TTL: time.Minute})
		wantErr(t, "reserve", err, nil)
		capturer.Clock.Set(r.Hold.Deadline.Add(-time.Nanosecond))
		sweeper.Clock.Set(r.Hold.Deadline)

		var wg sync.WaitGroup
		var capErr, sweepErr error
		var swept credits.SweepResult
		start := make(chan struct{})
		wg.Go(func() {
			<-start
			_, capErr = capturer.Ledger.Capture(WithFaults(capturer.Ctx, late), credits.CaptureRequest{Hold: r.Hold.ID, Account: acct})
		})
		wg.Go(func() {
			<-start
			swept, sweepErr = sweeper.Ledger.Sweep(WithFaults(sweeper.Ctx, sweepLate))
		})
		close(start)
		wg.Wait()
		if sweepErr != nil {
			t.Fatalf("round %d: sweep: %v", i, sweepErr)
		}
		st, err := store.View(capturer.Ctx, credits.Query{Account: acct, Holds: []string{r.Hold.ID}})
		if err != nil {
			t.Fatal(err)
		}
		hold := st.Holds[r.Hold.ID]
		b := capturer.Balance(t, acct)
		switch {
		case capErr == nil && hold.Status == credits.HoldCaptured:
			captured++
			if b.Spent != whole(7) || b.Available != whole(13) || !b.Held.IsZero() {
				t.Fatalf("round %d: captured, balance %+v", i, b)
			}
			// This round's hold is the only one ever due: the sweep that
			// lost must report nothing expired.
			if swept.HoldsExpired != 0 {
				t.Fatalf("round %d: the capture won but the sweep reports an expired hold: %+v", i, swept)
			}
		case errors.Is(capErr, credits.ErrHoldExpired) && hold.Status == credits.HoldExpired:
			expired++
			if swept.HoldsExpired != 1 {
				t.Fatalf("round %d: the capture lost but the sweep expired %d holds, want 1: %+v", i, swept.HoldsExpired, swept)
			}
			if !b.Spent.IsZero() || b.Available != whole(20) || !b.Held.IsZero() {
				t.Fatalf("round %d: expired, balance %+v", i, b)
			}
		default:
			t.Fatalf("round %d: capture %v, hold %s: not exactly one winner", i, capErr, hold.Status)
		}
		CheckInvariants(t, capturer, acct)
		switch {
		case expired == 0 && captured > 0:
			captureLag += step
		case captured == 0 && expired > 0:
			sweepLag += step
		}
	}
	t.Logf("sweep racing capture, %d rounds: capture won %d, sweep won %d (capture started up to %v late, sweep %v)", rounds, captured, expired, captureLag, sweepLag)
	if captured == 0 || expired == 0 {
		t.Errorf("in %d rounds the capture won %d times and the sweep %d: the race was not run both ways", rounds, captured, expired)
	}
}

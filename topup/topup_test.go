package topup_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creditkit/credits"
	"github.com/creditkit/credits/memstore"
	"github.com/creditkit/credits/storetest"
	"github.com/creditkit/credits/topup"
)

// payments is a fake payment provider: idempotent by key, as a real one
// is with an idempotency key, failing the first fail calls.
type payments struct {
	mu      sync.Mutex
	fail    int
	calls   int
	charged map[string]credits.Credits
}

func (p *payments) pay(_ context.Context, pm topup.Payment) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	if p.fail > 0 {
		p.fail--
		return errors.New("card declined")
	}
	if p.charged == nil {
		p.charged = map[string]credits.Credits{}
	}
	p.charged[pm.Key] = pm.Amount
	return nil
}

type fixture struct {
	h      *storetest.Harness
	pay    *payments
	policy *topup.Policy
}

func newFixture(t *testing.T, edit func(*topup.Policy)) *fixture {
	t.Helper()
	h := storetest.NewHarness(t, memstore.New(), func(c *credits.Config) { c.LowBalanceThreshold = credits.Whole(20) })
	h.Account(t, credits.CreateAccountRequest{ID: "alice"}) // 50
	feed, err := h.Ledger.Feed(credits.FeedConfig{Name: "auto-topup"})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{h: h, pay: &payments{}}
	f.policy = &topup.Policy{Ledger: h.Ledger, Source: feed, Amount: credits.Whole(100), Pay: f.pay.pay, Now: h.Clock.Now}
	if edit != nil {
		edit(f.policy)
	}
	return f
}

// spend charges alice n images (7 each).
func (f *fixture) spend(t *testing.T, n int) {
	t.Helper()
	q := f.h.Quote(t, credits.QuoteRequest{Tool: "image"})
	for range n {
		if _, err := f.h.Ledger.Charge(f.h.Ctx, credits.ChargeRequest{Account: "alice", Quote: q, Key: fmt.Sprint("img-", f.h.Clock.Now().UnixNano())}); err != nil {
			t.Fatal(err)
		}
		f.h.Clock.Advance(time.Second)
	}
}

// notes returns alice's notes and auto top-up grants, oldest first.
func (f *fixture) history(t *testing.T) []credits.Entry {
	t.Helper()
	var out []credits.Entry
	for _, e := range f.h.History(t, "alice") {
		if strings.HasPrefix(e.Key, "auto-topup:") {
			out = append(out, e)
		}
	}
	return out
}

func (f *fixture) available(t *testing.T) credits.Credits {
	t.Helper()
	return f.h.Balance(t, "alice").Available
}

func TestPaymentFailsThenSucceeds(t *testing.T) {
	f := newFixture(t, nil)
	f.pay.fail = 1
	f.spend(t, 5) // 50 − 35 = 15: below 20
	if _, err := f.policy.Step(f.h.Ctx); err == nil {
		t.Fatal("a failed payment must leave the event to retry")
	}
	if got := f.available(t); got != credits.Whole(15) {
		t.Fatalf("available %s after a failed payment", got)
	}
	if _, err := f.policy.Step(f.h.Ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.available(t); got != credits.Whole(115) {
		t.Fatalf("available %s after the top-up", got)
	}
	hist := f.history(t)
	if len(hist) != 2 || hist[0].Type != credits.EntryNote || !strings.Contains(hist[0].Note, "payment failed") || hist[1].Type != credits.EntryGrant || hist[1].Kind != credits.KindPurchase {
		t.Fatalf("history: %+v", hist)
	}
	if len(f.pay.charged) != 1 || f.pay.charged[hist[1].Key] != credits.Whole(100) {
		t.Fatalf("charged %v", f.pay.charged)
	}
	storetest.CheckInvariants(t, f.h, "alice")
}

// A source that never acknowledges redelivers the same events on every
// Step: a retry storm. The payment is made once, the grant once.
type neverAck struct{ topup.Source }

func (neverAck) Ack(context.Context, credits.Event) error { return nil }

func TestRetryStormChargesOnce(t *testing.T) {
	f := newFixture(t, nil)
	f.policy.Source = neverAck{f.policy.Source}
	f.spend(t, 5)
	for range 20 {
		if _, err := f.policy.Step(f.h.Ctx); err != nil {
			t.Fatal(err)
		}
	}
	if f.pay.calls != 1 || len(f.pay.charged) != 1 {
		t.Fatalf("%d payment calls, %d charged keys: want 1 and 1", f.pay.calls, len(f.pay.charged))
	}
	if got := f.available(t); got != credits.Whole(115) {
		t.Fatalf("available %s", got)
	}
	// A second server on the same consumer: the lease keeps it out.
	other, err := f.h.Ledger.Feed(credits.FeedConfig{Name: "auto-topup", Holder: "other"})
	if err != nil {
		t.Fatal(err)
	}
	second := *f.policy
	second.Source = other
	if _, err := second.Step(f.h.Ctx); !errors.Is(err, credits.ErrFeedLeased) {
		t.Fatalf("a second server while the first holds the lease: %v", err)
	}
	storetest.CheckInvariants(t, f.h, "alice")
}

func TestMonthlyCap(t *testing.T) {
	f := newFixture(t, func(p *topup.Policy) { p.MonthlyCap = credits.Whole(150) })
	f.h.Clock.Set(time.Date(2026, 12, 10, 9, 0, 0, 0, time.UTC))
	f.spend(t, 5) // 15: topped up to 115
	if _, err := f.policy.Step(f.h.Ctx); err != nil {
		t.Fatal(err)
	}
	f.spend(t, 14) // 115 − 98 = 17: low again; 100 more would pass 150
	if _, err := f.policy.Step(f.h.Ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.available(t); got != credits.Whole(17) || f.pay.calls != 1 {
		t.Fatalf("over the cap: available %s, %d payments", got, f.pay.calls)
	}
	hist := f.history(t)
	if last := hist[len(hist)-1]; last.Type != credits.EntryNote || !strings.Contains(last.Note, "monthly cap 150") {
		t.Fatalf("the skip is not in the history: %+v", last)
	}
	// A new month: the cap starts again.
	f.h.Clock.Set(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC))
	f.h.Ledger.Grant(f.h.Ctx, credits.GrantRequest{Account: "alice", Amount: credits.Whole(10), Kind: credits.KindPromo, Key: "back-up"})
	f.spend(t, 2) // 27 − 14 = 13: low
	if _, err := f.policy.Step(f.h.Ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.available(t); got != credits.Whole(113) || f.pay.calls != 2 {
		t.Fatalf("next month: available %s, %d payments", got, f.pay.calls)
	}
	storetest.CheckInvariants(t, f.h, "alice")
}

func TestStopsAfterRepeatedFailures(t *testing.T) {
	f := newFixture(t, func(p *topup.Policy) { p.MaxFailures = 3 })
	f.pay.fail = 1000
	f.spend(t, 5)
	for i := range 3 {
		if _, err := f.policy.Step(f.h.Ctx); err == nil {
			t.Fatalf("attempt %d: a failed payment reported no error", i+1)
		}
	}
	if _, err := f.policy.Step(f.h.Ctx); err != nil { // stopped: acknowledged
		t.Fatal(err)
	}
	if f.pay.calls != 3 {
		t.Fatalf("%d payment calls, want 3 then a stop", f.pay.calls)
	}
	hist := f.history(t)
	if last := hist[len(hist)-1]; !strings.Contains(last.Note, "stopped after 3 failed payments") {
		t.Fatalf("the stop is not in the history: %+v", hist)
	}
	// Recovered by hand, low again: still stopped.
	f.h.Ledger.Grant(f.h.Ctx, credits.GrantRequest{Account: "alice", Amount: credits.Whole(20), Kind: credits.KindPurchase, Key: "manual"})
	f.spend(t, 3)
	if _, err := f.policy.Step(f.h.Ctx); err != nil || f.pay.calls != 3 {
		t.Fatalf("a stopped account was charged: %d calls, %v", f.pay.calls, err)
	}
	// Resumed: the next low balance tops up again.
	if err := f.policy.Resume(f.h.Ctx, "alice", "support-ticket-9"); err != nil {
		t.Fatal(err)
	}
	f.pay.fail = 0
	f.h.Ledger.Grant(f.h.Ctx, credits.GrantRequest{Account: "alice", Amount: credits.Whole(20), Kind: credits.KindPurchase, Key: "manual-2"})
	f.spend(t, 3)
	if _, err := f.policy.Step(f.h.Ctx); err != nil || f.pay.calls != 4 || len(f.pay.charged) != 1 {
		t.Fatalf("after Resume: %d calls, charged %v, %v", f.pay.calls, f.pay.charged, err)
	}
	storetest.CheckInvariants(t, f.h, "alice")
}

func TestInvalidConfig(t *testing.T) {
	for _, p := range []*topup.Policy{{}, {Ledger: &credits.Ledger{}, Source: neverAck{}, Pay: (&payments{}).pay}} {
		if _, err := p.Step(context.Background()); !errors.Is(err, topup.ErrInvalidConfig) {
			t.Fatalf("%+v: %v", p, err)
		}
	}
}

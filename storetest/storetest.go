// Package storetest is the conformance suite for [credits.Store]
// implementations. Every store — memstore, sqlstore, or one of your own —
// runs it with one call:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) credits.Store { return mystore.New(…) })
//	}
//
// The suite drives a real [credits.Ledger] on the store: scenario tests of
// every rule, every kind of bad input (which must write nothing, and SQL
// metacharacters stored verbatim), the edges of time (deadlines to the
// nanosecond, a clock that goes back, a sweep racing a capture), a rapid
// state machine that interleaves grants, daily claims,
// reserves, captures, releases, refunds, retries, key conflicts, clock jumps
// and sweeps against a simple reference model and checks every invariant
// after every step, a concurrency test of many goroutines on one hot
// account, and a fault suite ([RunFaults]) that interrupts every operation
// at every store call through a [FaultyStore]. It asserts outcomes by classification (errors.Is), never by
// message, and uses only the standard library, go-cmp and rapid.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/creditkit/credits"
)

// NewStore makes a fresh, empty store for one test. Clean-up belongs in
// t.Cleanup.
type NewStore func(t *testing.T) credits.Store

// Epoch is the time the suite's clocks start at.
var Epoch = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

// Run runs the whole conformance suite against stores made by newStore.
func Run(t *testing.T, newStore NewStore) {
	t.Run("Contract", func(t *testing.T) { runContract(t, newStore) })
	t.Run("Scenarios", func(t *testing.T) { runScenarios(t, newStore) })
	t.Run("BadInput", func(t *testing.T) { runBadInput(t, newStore) })
	t.Run("Plans", func(t *testing.T) { RunPlans(t, newStore) })
	t.Run("Allowances", func(t *testing.T) { RunAllowances(t, newStore) })
	t.Run("MemberLimits", func(t *testing.T) { RunMemberLimits(t, newStore) })
	t.Run("StateMachine", func(t *testing.T) { RunStateMachine(t, newStore) })
	t.Run("Concurrency", func(t *testing.T) { RunConcurrency(t, newStore, 64) })
	t.Run("Faults", func(t *testing.T) { RunFaults(t, newStore) })
	t.Run("Time", func(t *testing.T) { runTime(t, newStore) })
	t.Run("StaleLoads", func(t *testing.T) { RunStaleLoads(t, newStore) })
	t.Run("Feed", func(t *testing.T) { RunFeed(t, newStore) })
}

// TB is the part of testing.TB (and of *rapid.T) the harness needs.
type TB interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// Harness is a ledger on a fresh store with a manual clock and sequential IDs.
type Harness struct {
	Store  credits.Store
	Ledger *credits.Ledger
	Clock  *Clock
	Ctx    context.Context
	// LowBalance collects the events OnLowBalance received.
	LowBalance []credits.LowBalanceEvent
}

// NewHarness builds a Harness. edit, when not nil, may change the config
// before the ledger is made.
func NewHarness(t TB, store credits.Store, edit func(*credits.Config)) *Harness {
	t.Helper()
	h := &Harness{Store: store, Clock: NewClock(Epoch), Ctx: context.Background()}
	cfg := credits.Config{
		Now:          h.Clock.Now,
		NewID:        SequentialIDs(fmt.Sprintf("%x_", time.Now().UnixNano()&0xffffff)),
		Signup:       credits.Reward{Amount: credits.Whole(50), ValidFor: 30 * 24 * time.Hour},
		Daily:        credits.Reward{Amount: credits.Whole(10), ValidFor: 48 * time.Hour},
		OnLowBalance: func(_ context.Context, e credits.LowBalanceEvent) { h.LowBalance = append(h.LowBalance, e) },
	}
	if edit != nil {
		edit(&cfg)
	}
	l, err := credits.NewLedger(store, &cfg)
	if err != nil {
		t.Fatalf("NewLedger: %v", err)
	}
	h.Ledger = l
	return h
}

// Account creates an account and fails the test on error.
func (h *Harness) Account(t TB, req credits.CreateAccountRequest) credits.Account {
	t.Helper()
	res, err := h.Ledger.CreateAccount(h.Ctx, req)
	if err != nil {
		t.Fatalf("CreateAccount(%q): %v", req.ID, err)
	}
	return res.Account
}

// Quote quotes and fails the test on error.
func (h *Harness) Quote(t TB, req credits.QuoteRequest) credits.Quote {
	t.Helper()
	q, err := h.Ledger.Quote(req)
	if err != nil {
		t.Fatalf("Quote(%+v): %v", req, err)
	}
	return q
}

// Balance returns the balance and fails the test on error.
func (h *Harness) Balance(t TB, account string) credits.Balance {
	t.Helper()
	b, err := h.Ledger.Balance(h.Ctx, account)
	if err != nil {
		t.Fatalf("Balance(%q): %v", account, err)
	}
	return b
}

// History returns every entry of the account, read in pages of 7 (so that
// paging is exercised too).
func (h *Harness) History(t TB, account string) []credits.Entry {
	t.Helper()
	return h.history(t, account, 7)
}

// history returns every entry of the account, read in pages of limit.
func (h *Harness) history(t TB, account string, limit int) []credits.Entry {
	t.Helper()
	var all []credits.Entry
	var after int64
	for {
		p, err := h.Ledger.History(h.Ctx, credits.HistoryRequest{Account: account, After: after, Limit: limit})
		if err != nil {
			t.Fatalf("History(%q): %v", account, err)
		}
		all = append(all, p.Entries...)
		if p.Next == 0 {
			return all
		}
		after = p.Next
	}
}

// CheckInvariants checks, for one account, what must hold at every moment:
// no negative balance; granted = available + held + spent + expired +
// debited, on the stored row and on the projected balance; the history sums to the stored
// balances and each entry's balances are the running sums; the buckets hold
// exactly the available balance; no hold was charged above its quote nor
// refunded above its charge, and the charges add up to the spent total.
func CheckInvariants(t TB, h *Harness, account string) {
	t.Helper()
	if err := checkInvariants(h, account); err != nil {
		t.Fatal(err)
	}
}

func checkInvariants(h *Harness, account string) error {
	b, err := h.Ledger.Balance(h.Ctx, account)
	if err != nil {
		return fmt.Errorf("Balance(%q): %w", account, err)
	}
	if b.Available.IsNegative() || b.Held.IsNegative() || b.Spent.IsNegative() || b.Expired.IsNegative() || b.Debited.IsNegative() {
		return fmt.Errorf("account %q: negative balance %+v", account, b)
	}
	if err := conserved(account, "balance", b.Granted, b.Available, b.Held, b.Spent, b.Expired, b.Debited); err != nil {
		return err
	}
	if sum, err := b.Free.Add(b.Paid); err != nil || sum != b.Available {
		return fmt.Errorf("account %q: free %s + paid %s != available %s", account, b.Free, b.Paid, b.Available)
	}
	st, err := h.Store.View(h.Ctx, credits.Query{Account: account})
	if err != nil {
		return fmt.Errorf("View(%q): %w", account, err)
	}
	a := st.Account
	if a == nil {
		return fmt.Errorf("View(%q): no account", account)
	}
	if a.Available.IsNegative() || a.Held.IsNegative() {
		return fmt.Errorf("account %q: stored row negative: %+v", account, a)
	}
	if err := conserved(account, "stored row", a.Granted, a.Available, a.Held, a.Spent, a.Expired, a.Debited); err != nil {
		return err
	}
	var inBuckets credits.Credits
	for _, bk := range st.Buckets {
		if inBuckets, err = inBuckets.Add(bk.Remaining); err != nil {
			return err
		}
	}
	if inBuckets != a.Available {
		return fmt.Errorf("account %q: buckets hold %s, stored available is %s", account, inBuckets, a.Available)
	}
	// The history is the balance: replay it.
	var avail, held, spent, debited credits.Credits
	debitedFrom := map[string]credits.Credits{} // by bucket
	warnings := map[string]int{}                // expiry warnings, by bucket
	lastSignal := credits.EntryType("")
	var seq int64
	var after int64
	var holdIDs []string
	seenHold := map[string]bool{}
	// The plan in force at each point of the history: none until an
	// account entry says otherwise. Every hold and charge must be priced
	// with the plan in force when it was made.
	plan := ""
	planOf := map[string]string{}
	for {
		es, err := h.Store.Entries(h.Ctx, credits.EntryFilter{Account: account, AfterSeq: after, Limit: 500})
		if err != nil {
			return fmt.Errorf("Entries(%q): %w", account, err)
		}
		if len(es) == 0 {
			break
		}
		for i := range es {
			e := &es[i]
			seq++
			if e.Seq != seq {
				return fmt.Errorf("account %q: entry seq %d, want %d", account, e.Seq, seq)
			}
			if e.Type == credits.EntryAccount {
				if !e.Amount.IsZero() || e.Hold != "" || e.Bucket != "" {
					return fmt.Errorf("account %q: account entry %d moves credits: %+v", account, e.Seq, e)
				}
				plan = e.Plan
			} else if !e.Amount.IsPositive() && !(e.Amount.IsZero() && (e.Type == credits.EntryVoid || e.Type == credits.EntryNote || e.Type == credits.EntryBalanceLow || e.Type == credits.EntryBalanceRecovered)) || e.Plan != "" {
				return fmt.Errorf("account %q: entry %d (%s) has amount %s, plan %q", account, e.Seq, e.Type, e.Amount, e.Plan)
			}
			if e.Type == credits.EntryHold || e.Type == credits.EntryCharge {
				planOf[e.Hold] = plan
			}
			if e.Hold != "" && !seenHold[e.Hold] {
				seenHold[e.Hold] = true
				holdIDs = append(holdIDs, e.Hold)
			}
			avail, _ = avail.Add(e.AvailableDelta())
			held, _ = held.Add(e.HeldDelta())
			spent, _ = spent.Add(e.SpentDelta())
			debited, _ = debited.Add(e.DebitedDelta())
			debitedFrom[e.Bucket], _ = debitedFrom[e.Bucket].Add(e.DebitedDelta())
			switch e.Type {
			case credits.EntryGrantExpiring:
				warnings[e.Bucket]++
			case credits.EntryBalanceLow, credits.EntryBalanceRecovered:
				if e.Type == lastSignal || e.Type == credits.EntryBalanceRecovered && lastSignal == "" {
					return fmt.Errorf("account %q: entry %d is %s after %q: the signals must alternate, low first", account, e.Seq, e.Type, lastSignal)
				}
				lastSignal = e.Type
			}
			if e.Available != avail || e.Held != held {
				return fmt.Errorf("account %q: entry %d (%s %s) says available %s held %s; running sums are %s and %s",
					account, e.Seq, e.Type, e.Amount, e.Available, e.Held, avail, held)
			}
			if avail.IsNegative() {
				return fmt.Errorf("account %q: available went negative at entry %d", account, e.Seq)
			}
		}
		after = es[len(es)-1].Seq
	}
	// Every bucket, live or not: never negative, never more out of it than
	// went in, nothing left in a voided one, and what was debited from it
	// is what its debit and void entries say.
	all, err := h.Store.Buckets(h.Ctx, credits.BucketFilter{Account: account})
	if err != nil {
		return fmt.Errorf("Buckets(%q): %w", account, err)
	}
	for _, bk := range all {
		if bk.Remaining.IsNegative() || bk.Expired.IsNegative() || bk.Debited.IsNegative() {
			return fmt.Errorf("bucket %s: negative: %+v", bk.ID, bk)
		}
		if used, err := sumOf(bk.Remaining, bk.Expired, bk.Debited); err != nil || bk.Amount.Less(used) {
			return fmt.Errorf("bucket %s: remaining %s + expired %s + debited %s exceed its amount %s", bk.ID, bk.Remaining, bk.Expired, bk.Debited, bk.Amount)
		}
		if !bk.VoidedAt.IsZero() && bk.Remaining.IsPositive() {
			return fmt.Errorf("bucket %s: voided at %s, yet %s remains in it", bk.ID, bk.VoidedAt, bk.Remaining)
		}
		if n := warnings[bk.ID]; n > 1 || (n == 1) != !bk.WarnedAt.IsZero() {
			return fmt.Errorf("bucket %s: warned at %v, with %d warning entries (one at most, and only if warned)", bk.ID, bk.WarnedAt, n)
		}
		if bk.Debited != debitedFrom[bk.ID] {
			return fmt.Errorf("bucket %s: debited %s; its debit and void entries add up to %s", bk.ID, bk.Debited, debitedFrom[bk.ID])
		}
	}
	// Every charge: never above its quote, refunds never above the charge,
	// and together they are the spent total.
	var spentByHolds, heldByHolds credits.Credits
	if len(holdIDs) > 0 {
		hs, err := h.Store.View(h.Ctx, credits.Query{Account: account, Holds: holdIDs})
		if err != nil {
			return fmt.Errorf("View(%q): %w", account, err)
		}
		for _, id := range holdIDs {
			hd := hs.Holds[id]
			if hd == nil {
				return fmt.Errorf("account %q: hold %s named by the history is missing", account, id)
			}
			if p, made := planOf[id]; made && hd.Quote.Plan != p {
				return fmt.Errorf("account %q: hold %s was priced with plan %q; the history says the account was on plan %q", account, id, hd.Quote.Plan, p)
			}
			if hd.Captured.Cmp(hd.Amount) > 0 || hd.Amount.Cmp(hd.Quote.Total) > 0 || hd.Refunded.Cmp(hd.Captured) > 0 {
				return fmt.Errorf("hold %s: captured %s refunded %s of a hold of %s for a quote of %s",
					id, hd.Captured, hd.Refunded, hd.Amount, hd.Quote.Total)
			}
			switch hd.Status {
			case credits.HoldCaptured:
				net, _ := hd.Captured.Sub(hd.Refunded)
				spentByHolds, _ = spentByHolds.Add(net)
			case credits.HoldOpen:
				heldByHolds, _ = heldByHolds.Add(hd.Amount)
			}
		}
	}
	// The stored row and the stored holds agree on what is held: a hold
	// left open by a half-written release would give its credits back twice.
	if heldByHolds != a.Held {
		return fmt.Errorf("account %q: its open holds hold %s, the row says held %s", account, heldByHolds, a.Held)
	}
	if spentByHolds != a.Spent {
		return fmt.Errorf("account %q: its charges add up to %s, the row says spent %s", account, spentByHolds, a.Spent)
	}
	if a.Low != (lastSignal == credits.EntryBalanceLow) {
		return fmt.Errorf("account %q: marked low %v, its last signal is %q", account, a.Low, lastSignal)
	}
	if plan != a.Plan {
		return fmt.Errorf("account %q: the history leaves it on plan %q, the row says %q", account, plan, a.Plan)
	}
	if seq != a.Seq || avail != a.Available || held != a.Held || spent != a.Spent || debited != a.Debited {
		return fmt.Errorf("account %q: history sums to available %s held %s spent %s debited %s (seq %d); the row says %s %s %s %s (seq %d)",
			account, avail, held, spent, debited, seq, a.Available, a.Held, a.Spent, a.Debited, a.Seq)
	}
	return nil
}

// sumOf adds cs, or fails on overflow.
func sumOf(cs ...credits.Credits) (credits.Credits, error) {
	var sum credits.Credits
	for _, c := range cs {
		var err error
		if sum, err = sum.Add(c); err != nil {
			return sum, err
		}
	}
	return sum, nil
}

func conserved(account, what string, granted, available, held, spent, expired, debited credits.Credits) error {
	sum := available
	var err error
	for _, c := range []credits.Credits{held, spent, expired, debited} {
		if sum, err = sum.Add(c); err != nil {
			return err
		}
	}
	if sum != granted {
		return fmt.Errorf("account %q %s: granted %s != available %s + held %s + spent %s + expired %s + debited %s (= %s)",
			account, what, granted, available, held, spent, expired, debited, sum)
	}
	return nil
}

// wantErr fails the test unless errors.Is(err, target) (or err == nil when
// target is nil).
func wantErr(t TB, what string, err, target error) {
	t.Helper()
	switch {
	case target == nil && err != nil:
		t.Fatalf("%s: unexpected error: %v", what, err)
	case target != nil && !errors.Is(err, target):
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

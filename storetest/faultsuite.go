package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/creditkit/credits"
)

// RunFaults proves, on stores made by newStore, that every ledger operation
// is all-or-nothing at every store call and converges on retry. For each
// operation it counts the store calls the operation makes, then, for every
// call k and every [Step] of it, runs the operation on a fresh account
// through a [FaultyStore] that fails the call, cancels the operation's
// context, or lets its deadline pass there (context.DeadlineExceeded at
// exactly that step). Afterwards the account — its balance, history and
// holds — is either exactly as before the operation or
// exactly as after a clean run (never in between), a retry with the same
// key gives exactly the clean run's state, and [CheckInvariants] holds.
// Faults strike at the store's interface, not inside its own write (see
// [FaultyStore]).
//
// It runs every case one after the other (one operation per transaction),
// then all of them at once from 16 goroutines, so that a store which
// groups concurrent operations into shared transactions is tested grouped.
func RunFaults(t *testing.T, newStore NewStore) {
	t.Run("Sequential", func(t *testing.T) {
		runFaultCases(t, newStore(t), 1)
	})
	t.Run("Concurrent", func(t *testing.T) {
		runFaultCases(t, newStore(t), 16)
	})
}

// faultOp is one ledger operation the fault suite interrupts. setup
// prepares an account (without faults) and returns what run needs; run is
// the operation, retried with the same key after a fault; partial, when
// set, is a prefix of run that may have happened alone (Run's reserve).
type faultOp struct {
	name    string
	setup   func(t TB, h *Harness, acct string) string
	run     func(ctx context.Context, h *Harness, acct, arg string) error
	partial func(ctx context.Context, h *Harness, acct, arg string) error
}

func faultOps() []faultOp {
	image := credits.QuoteRequest{Tool: "image"}
	video := credits.QuoteRequest{Tool: "video", Resolution: "720p", Duration: 5 * time.Second}
	account := func(t TB, h *Harness, acct string) string {
		h.Account(t, credits.CreateAccountRequest{ID: acct})
		return ""
	}
	reserved := func(t TB, h *Harness, acct string) string {
		h.Account(t, credits.CreateAccountRequest{ID: acct})
		r, err := h.Ledger.Reserve(h.Ctx, credits.ReserveRequest{Account: acct, Quote: h.Quote(t, video), Key: "setup"})
		if err != nil {
			t.Fatalf("setup reserve: %v", err)
		}
		return r.Hold.ID
	}
	reserveJob := func(h *Harness, acct string) credits.ReserveRequest {
		q, _ := h.Ledger.Quote(video)
		return credits.ReserveRequest{Account: acct, Quote: q, Key: "job"}
	}
	return []faultOp{
		{name: "CreateAccount", setup: func(TB, *Harness, string) string { return "" },
			run: func(ctx context.Context, h *Harness, acct, _ string) error {
				_, err := h.Ledger.CreateAccount(ctx, credits.CreateAccountRequest{ID: acct, Metadata: map[string]string{"plan": "pro"}})
				return err
			}},
		{name: "Grant", setup: account, run: func(ctx context.Context, h *Harness, acct, _ string) error {
			_, err := h.Ledger.Grant(ctx, credits.GrantRequest{Account: acct, Amount: credits.Whole(25), Kind: credits.KindPurchase, Key: "buy"})
			return err
		}},
		{name: "ClaimDaily", setup: account, run: func(ctx context.Context, h *Harness, acct, _ string) error {
			_, err := h.Ledger.ClaimDaily(ctx, acct)
			return err
		}},
		{name: "Reserve", setup: account, run: func(ctx context.Context, h *Harness, acct, _ string) error {
			q, _ := h.Ledger.Quote(video)
			_, err := h.Ledger.Reserve(ctx, credits.ReserveRequest{Account: acct, Quote: q, Key: "r"})
			return err
		}},
		{name: "Charge", setup: account, run: func(ctx context.Context, h *Harness, acct, _ string) error {
			q, _ := h.Ledger.Quote(image)
			_, err := h.Ledger.Charge(ctx, credits.ChargeRequest{Account: acct, Quote: q, Key: "c"})
			return err
		}},
		{name: "Capture", setup: reserved, run: func(ctx context.Context, h *Harness, _, hold string) error {
			// No Account: the ledger asks the store whose hold it is first.
			_, err := h.Ledger.Capture(ctx, credits.CaptureRequest{Hold: hold, Usage: credits.Usage{Duration: 3 * time.Second}})
			return err
		}},
		{name: "Extend", setup: reserved, run: func(ctx context.Context, h *Harness, _, hold string) error {
			_, err := h.Ledger.Extend(ctx, credits.ExtendRequest{Hold: hold, TTL: 3 * time.Hour})
			return err
		}},
		{name: "Debit", setup: func(t TB, h *Harness, acct string) string {
			reserved(t, h, acct) // a hold too: Debit takes only what is available
			if _, err := h.Ledger.Grant(h.Ctx, credits.GrantRequest{Account: acct, Amount: credits.Whole(30), Kind: credits.KindPurchase, Key: "buy"}); err != nil {
				t.Fatalf("setup grant: %v", err)
			}
			return ""
		}, run: func(ctx context.Context, h *Harness, acct, _ string) error {
			_, err := h.Ledger.Debit(ctx, credits.DebitRequest{Account: acct, Amount: credits.Whole(40), Partial: true, Reason: "chargeback", Key: "debit"})
			return err
		}},
		{name: "VoidGrant", setup: func(t TB, h *Harness, acct string) string {
			h.Account(t, credits.CreateAccountRequest{ID: acct})
			g, err := h.Ledger.Grant(h.Ctx, credits.GrantRequest{Account: acct, Amount: credits.Whole(30), Kind: credits.KindPromo, Key: "promo"})
			if err != nil {
				t.Fatalf("setup grant: %v", err)
			}
			// Part of it held: the void takes the rest now, and the held
			// part when the hold gives it back.
			if _, err := h.Ledger.Reserve(h.Ctx, credits.ReserveRequest{Account: acct, Quote: h.Quote(t, image), Key: "setup"}); err != nil {
				t.Fatalf("setup reserve: %v", err)
			}
			return g.Grant.ID
		}, run: func(ctx context.Context, h *Harness, acct, grant string) error {
			_, err := h.Ledger.VoidGrant(ctx, credits.VoidGrantRequest{Account: acct, Grant: grant, Reason: "promo abuse", Key: "void"})
			return err
		}},
		{name: "Release", setup: reserved, run: func(ctx context.Context, h *Harness, _, hold string) error {
			_, err := h.Ledger.Release(ctx, credits.ReleaseRequest{Hold: hold, Reason: "job failed"})
			return err
		}},
		{name: "Refund", setup: func(t TB, h *Harness, acct string) string {
			hold := reserved(t, h, acct)
			if _, err := h.Ledger.Capture(h.Ctx, credits.CaptureRequest{Hold: hold, Account: acct}); err != nil {
				t.Fatalf("setup capture: %v", err)
			}
			return hold
		}, run: func(ctx context.Context, h *Harness, acct, hold string) error {
			_, err := h.Ledger.Refund(ctx, credits.RefundRequest{Charge: hold, Account: acct, Amount: credits.Whole(15), Key: "refund"})
			return err
		}},
		{name: "Run", setup: account, run: func(ctx context.Context, h *Harness, acct, _ string) error {
			_, err := h.Ledger.Run(ctx, reserveJob(h, acct), func(context.Context, credits.Hold) (credits.Usage, error) {
				return credits.Usage{Duration: 2 * time.Second}, nil
			})
			return err
		}, partial: func(ctx context.Context, h *Harness, acct, _ string) error {
			_, err := h.Ledger.Reserve(ctx, reserveJob(h, acct))
			return err
		}},
		{name: "RunFailedJob", setup: account, run: func(ctx context.Context, h *Harness, acct, _ string) error {
			_, err := h.Ledger.Run(ctx, reserveJob(h, acct), func(context.Context, credits.Hold) (credits.Usage, error) {
				return credits.Usage{}, errJobFailed
			})
			// The job's own failure, its credits given back, is the expected
			// outcome; a retry of a Run whose job already failed says so
			// (ErrHoldSettled) without running the job again.
			if (errors.Is(err, errJobFailed) || errors.Is(err, credits.ErrHoldSettled)) && !errors.Is(err, ErrInjected) && !isCancel(err) {
				return nil
			}
			return err
		}, partial: func(ctx context.Context, h *Harness, acct, _ string) error {
			_, err := h.Ledger.Reserve(ctx, reserveJob(h, acct))
			return err
		}},
		{name: "Sweep", setup: func(t TB, h *Harness, acct string) string {
			h.Account(t, credits.CreateAccountRequest{ID: acct})
			r, err := h.Ledger.Reserve(h.Ctx, credits.ReserveRequest{Account: acct, Quote: h.Quote(t, video), Key: "setup", TTL: time.Minute})
			if err != nil {
				t.Fatalf("setup reserve: %v", err)
			}
			// Past this hold's deadline, long before the other cases' (an
			// hour): a sweep expires only this kind of case's holds.
			h.Clock.Advance(2 * time.Minute)
			return r.Hold.ID
		}, run: func(ctx context.Context, h *Harness, _, _ string) error {
			_, err := h.Ledger.Sweep(ctx)
			return err
		}},
	}
}

var errJobFailed = errors.New("storetest: the job failed")

func isCancel(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// faultAction is how a case interrupts the operation at its step.
type faultAction int

const (
	actFail faultAction = iota
	actCancel
	actTimeout
)

func (a faultAction) String() string {
	return [...]string{"fail", "cancel", "timeout"}[a]
}

type faultCase struct {
	op     faultOp
	call   int // 1-based
	step   Step
	action faultAction
}

func (c faultCase) account() string {
	return fmt.Sprintf("fault-%s-%d-%s-%s", c.op.name, c.call, c.step, c.action)
}

// accountView is what the suite compares: an account's balance, stored row
// (metadata included), history and holds, without the IDs that differ from
// one account to the next. The holds are in it because a half-written
// Change can leave them behind the balance: a Release whose entries and
// account row were written but whose hold stayed open has the right balance
// and history, replays on retry, and would expire the same credits back a
// second time at its deadline.
type accountView struct {
	Exists  bool
	Balance credits.Balance
	Row     credits.Account // as stored, without its ID
	Entries []entryView
	Holds   []holdView // in the order the history first names them
}

type holdView struct {
	Status                     credits.HoldStatus
	Amount, Captured, Refunded credits.Credits
	Portions                   []portionView
	Deadline, SettledAt        time.Time
}

type portionView struct {
	Amount, Captured, Refunded credits.Credits
}

type entryView struct {
	Type                    credits.EntryType
	Amount, Available, Held credits.Credits
	Kind                    credits.GrantKind
	Tool, Member, Key       string
	Note                    string
}

func viewAccount(t TB, h *Harness, acct string) accountView {
	t.Helper()
	b, err := h.Ledger.Balance(h.Ctx, acct)
	if errors.Is(err, credits.ErrUnknownAccount) {
		return accountView{}
	}
	if err != nil {
		t.Fatalf("Balance(%q): %v", acct, err)
	}
	b.Account = ""
	v := accountView{Exists: true, Balance: b}
	var holdIDs []string
	for _, e := range h.History(t, acct) {
		v.Entries = append(v.Entries, entryView{Type: e.Type, Amount: e.Amount, Available: e.Available, Held: e.Held,
			Kind: e.Kind, Tool: e.Tool, Member: e.Member, Key: e.Key, Note: e.Note})
		if e.Hold != "" && !slices.Contains(holdIDs, e.Hold) {
			holdIDs = append(holdIDs, e.Hold)
		}
	}
	st, err := h.Store.View(h.Ctx, credits.Query{Account: acct, Holds: holdIDs})
	if err != nil {
		t.Fatalf("View(%q): %v", acct, err)
	}
	if st.Account == nil {
		t.Fatalf("View(%q): no account, though Balance found it", acct)
	}
	v.Row = st.Account.Clone()
	v.Row.ID = ""
	for _, id := range holdIDs {
		hd := st.Holds[id]
		if hd == nil {
			t.Fatalf("account %q: hold %s named by the history is missing", acct, id)
		}
		hv := holdView{Status: hd.Status, Amount: hd.Amount, Captured: hd.Captured, Refunded: hd.Refunded,
			Deadline: hd.Deadline, SettledAt: hd.SettledAt}
		for _, p := range hd.Portions {
			hv.Portions = append(hv.Portions, portionView{Amount: p.Amount, Captured: p.Captured, Refunded: p.Refunded})
		}
		v.Holds = append(v.Holds, hv)
	}
	return v
}

// faultRef is an operation's clean run: its store calls and the account
// states a fault may leave.
type faultRef struct {
	calls   int
	after   accountView
	partial *accountView
}

func runFaultCases(t *testing.T, store credits.Store, workers int) {
	faulty := FaultyStore{Store: store}
	run := fmt.Sprintf("%x", time.Now().UnixNano()&0xffffff)
	var seq int
	var seqMu sync.Mutex
	harness := func(t TB) *Harness {
		seqMu.Lock()
		seq++
		prefix := fmt.Sprintf("%s%d_", run, seq)
		seqMu.Unlock()
		return NewHarness(t, faulty, func(c *credits.Config) { c.NewID = SequentialIDs(prefix) })
	}

	refs := map[string]faultRef{}
	var cases []faultCase
	for _, op := range faultOps() {
		h := harness(t)
		acct := "ref-" + op.name
		arg := op.setup(t, h, acct)
		plan := &FaultPlan{At: -1}
		if err := op.run(WithFaults(h.Ctx, plan), h, acct, arg); err != nil {
			t.Fatalf("%s without faults: %v", op.name, err)
		}
		ref := faultRef{calls: plan.Calls(), after: viewAccount(t, h, acct)}
		if op.partial != nil {
			h := harness(t)
			acct := "ref-partial-" + op.name
			arg := op.setup(t, h, acct)
			if err := op.partial(h.Ctx, h, acct, arg); err != nil {
				t.Fatalf("%s (partial) without faults: %v", op.name, err)
			}
			v := viewAccount(t, h, acct)
			ref.partial = &v
		}
		if ref.calls == 0 {
			t.Fatalf("%s made no store call", op.name)
		}
		refs[op.name] = ref
		for k := 1; k <= ref.calls; k++ {
			for _, step := range []Step{BeforeCall, InsideUpdate, AfterCall} {
				for _, a := range []faultAction{actFail, actCancel, actTimeout} {
					cases = append(cases, faultCase{op: op, call: k, step: step, action: a})
				}
			}
		}
	}

	var (
		mu       sync.Mutex
		failures []string
		counts   = map[string]int{}
		wg       sync.WaitGroup
		next     = make(chan faultCase)
	)
	for range workers {
		wg.Go(func() {
			for c := range next {
				outcome, err := runFaultCase(harness, c, refs[c.op.name])
				mu.Lock()
				if err != nil {
					failures = append(failures, fmt.Sprintf("%s: %v", c.account(), err))
				}
				counts[outcome]++
				mu.Unlock()
			}
		})
	}
	for _, c := range cases {
		next <- c
	}
	close(next)
	wg.Wait()
	for _, f := range failures {
		t.Error(f)
	}
	t.Logf("%d faults injected across %d operations: %v", len(cases), len(refs), counts)
	// Both outcomes must occur, or the suite proves less than it says.
	if counts["nothing"] == 0 || counts["done"] == 0 {
		t.Errorf("faults left the operation only %v: the suite is not reaching both outcomes", counts)
	}
}

// fatalf lets setup helpers written for a TB report into an error.
type errTB struct{ err error }

func (e *errTB) Helper()                           {}
func (e *errTB) Fatal(args ...any)                 { e.err = errors.New(fmt.Sprint(args...)); panic(e) }
func (e *errTB) Fatalf(format string, args ...any) { e.err = fmt.Errorf(format, args...); panic(e) }

// runFaultCase runs one case and says which state the fault left ("nothing",
// "partial" or "done"), or what went wrong.
func runFaultCase(harness func(TB) *Harness, c faultCase, ref faultRef) (outcome string, err error) {
	tb := &errTB{}
	defer func() {
		if v := recover(); v != nil {
			if v != tb {
				panic(v)
			}
			err = tb.err
		}
	}()
	h := harness(tb)
	acct := c.account()
	arg := c.op.setup(tb, h, acct)
	before := viewAccount(tb, h, acct)

	ctx, cancel := context.WithCancel(h.Ctx)
	defer cancel()
	f := Fault{Step: c.step}
	switch c.action {
	case actFail:
		f.Fail = true
	case actCancel:
		f.Cancel = cancel
	case actTimeout:
		d := newStepDeadline(ctx)
		ctx, f.Cancel = d, d.expire // the deadline passes at exactly the step
	}
	plan := &FaultPlan{At: c.call, Fault: f}
	opErr := c.op.run(WithFaults(ctx, plan), h, acct, arg)

	switch {
	// A fault that never struck proves nothing of its step. A sweep visits
	// every due account, other cases' too in the concurrent run, so its
	// k-th call may be elsewhere; every other operation makes its calls in
	// a fixed order, as the reference run counted them.
	case !plan.Hit() && c.op.name != "Sweep":
		return "", fmt.Errorf("the fault never struck: the operation made %d store calls, the reference run %d", plan.Calls(), ref.calls)
	case c.action == actFail && plan.Hit() && !errors.Is(opErr, ErrInjected):
		return "", fmt.Errorf("the store failed, the operation returned %v", opErr)
	case opErr != nil && !errors.Is(opErr, ErrInjected) && !isCancel(opErr) && !errors.Is(opErr, credits.ErrTransient):
		return "", fmt.Errorf("unexpected error: %v", opErr)
	}
	classify := func(got accountView) string {
		switch {
		case cmp.Equal(got, ref.after):
			return "done"
		case cmp.Equal(got, before):
			return "nothing"
		case ref.partial != nil && cmp.Equal(got, *ref.partial):
			return "partial"
		}
		return ""
	}
	got := viewAccount(tb, h, acct)
	if outcome = classify(got); outcome == "" {
		// A view is several reads. In the concurrent run, another case's
		// sweep may expire this account's hold between them (it writes it
		// once): read it again before calling it half-done.
		got = viewAccount(tb, h, acct)
		if outcome = classify(got); outcome == "" {
			return "", fmt.Errorf("half-done after %v: neither before nor after the operation:\n%s", opErr, cmp.Diff(ref.after, got))
		}
	}
	if opErr == nil && outcome != "done" {
		return "", fmt.Errorf("the operation succeeded but left the account %s", outcome)
	}

	if err := c.op.run(h.Ctx, h, acct, arg); err != nil {
		return "", fmt.Errorf("retry after %v: %v", opErr, err)
	}
	if got := viewAccount(tb, h, acct); !cmp.Equal(got, ref.after) {
		return "", fmt.Errorf("after the fault (%v) and a retry the account is not as after one clean run:\n%s", opErr, cmp.Diff(ref.after, got))
	}
	if err := checkInvariants(h, acct); err != nil {
		return "", err
	}
	return outcome, nil
}

// stepDeadline is a context whose deadline passes when expire is called, so
// that a timeout strikes at exactly the step a fault names, however slow the
// store is before it. It keeps its parent's values.
type stepDeadline struct {
	context.Context
	once sync.Once
	done chan struct{}
}

func newStepDeadline(parent context.Context) *stepDeadline {
	return &stepDeadline{Context: parent, done: make(chan struct{})}
}

func (c *stepDeadline) expire() { c.once.Do(func() { close(c.done) }) }

func (c *stepDeadline) Done() <-chan struct{} { return c.done }

func (c *stepDeadline) Err() error {
	select {
	case <-c.done:
		return context.DeadlineExceeded
	default:
		return nil
	}
}

package storetest

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/creditkit/credits"
)

// ErrInjected is the error a [FaultyStore] returns for a fault it injected.
var ErrInjected = errors.New("storetest: injected fault")

// Step is where in a store call a [Fault] strikes.
type Step int

const (
	// BeforeCall strikes before the wrapped store is called: a failure
	// there means the store did nothing.
	BeforeCall Step = iota
	// InsideUpdate strikes inside an Update, in apply: once the store has
	// loaded the state (under the account's lock, or optimistically, as
	// sqlstore first tries on PostgreSQL), before the operation is applied
	// to it and so before the store writes anything. A store that calls
	// apply again (after a collision) meets the fault again. On other
	// methods it strikes as BeforeCall.
	InsideUpdate
	// AfterCall strikes once the wrapped store has returned: an Update's
	// change is already durable, so a failure there is the "did it
	// commit?" case.
	AfterCall
)

func (s Step) String() string {
	switch s {
	case BeforeCall:
		return "before"
	case InsideUpdate:
		return "inside"
	case AfterCall:
		return "after"
	}
	return "step?"
}

// Fault is what a [FaultPlan] does to one store call: at Step it sleeps
// for Delay (or until the call's context is done), then calls Cancel when
// set, then fails the call with [ErrInjected] when Fail is set.
type Fault struct {
	Step   Step
	Delay  time.Duration
	Cancel context.CancelFunc // typically the cancel of the operation's context
	Fail   bool
}

// FaultPlan injects a Fault into the store calls made with a context that
// carries it (see [WithFaults]): into the At-th call (counted from 1 over
// every Store method), into every call when At is 0, or into none when At
// is negative (the plan then only counts calls): the zero At faults every
// call. The count runs over every call made with a context that carries
// the plan, so give each plan to one ledger operation; it follows that
// operation however many store calls it makes and on whichever goroutine
// the store runs them (a grouped commit applies on its own). It is safe for
// concurrent use.
type FaultPlan struct {
	At    int
	Fault Fault

	mu    sync.Mutex
	calls int
	hit   bool
}

// Calls is how many store calls were made with the plan so far.
func (p *FaultPlan) Calls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

// Hit reports whether the fault struck: the plan's call reached the fault's
// Step. An AfterCall failure is not injected into a call that failed by
// itself (the call's own error is returned), though Hit reports true.
func (p *FaultPlan) Hit() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hit
}

// next counts a call and returns its fault, if it has one.
func (p *FaultPlan) next() *Fault {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	if p.At != 0 && p.calls != p.At {
		return nil
	}
	f := p.Fault
	return &f
}

func (p *FaultPlan) strike(ctx context.Context, f *Fault, at Step) error {
	if f == nil || f.Step != at {
		return nil
	}
	p.mu.Lock()
	p.hit = true
	p.mu.Unlock()
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	if f.Cancel != nil {
		f.Cancel()
	}
	if f.Fail {
		return ErrInjected
	}
	return nil
}

type planKey struct{}

// WithFaults returns a context that makes a [FaultyStore] follow p on every
// call made with it.
func WithFaults(ctx context.Context, p *FaultPlan) context.Context {
	return context.WithValue(ctx, planKey{}, p)
}

// FaultyStore wraps a Store and injects the faults of the [FaultPlan] a
// call's context carries; calls without a plan pass straight through. Build
// the Ledger on the FaultyStore and give the plan to the one operation to
// interrupt, through its context:
//
//	store := storetest.FaultyStore{Store: mystore.New()}
//	ledger, err := credits.NewLedger(store, cfg)
//	…
//	// The operation's 2nd store call fails after it has returned.
//	plan := &storetest.FaultPlan{At: 2, Fault: storetest.Fault{Step: storetest.AfterCall, Fail: true}}
//	_, err = ledger.Capture(storetest.WithFaults(ctx, plan), req)
//
// Use it to prove, on any Store, that an operation interrupted at any of its
// store calls either fully happens or not at all, and that a retry with the
// same key converges to exactly one effect: [RunFaults] does that for every
// ledger operation. Faults strike between the ledger and the store, never
// halfway through the store's own write: that an Update persists its Change
// all or nothing (a crash or a lost connection in the middle of it
// included) is the store's to prove. A FaultyStore is safe for concurrent
// use when the wrapped Store is.
type FaultyStore struct {
	credits.Store
}

func planOf(ctx context.Context) *FaultPlan {
	p, _ := ctx.Value(planKey{}).(*FaultPlan)
	return p
}

// around runs call between the plan's BeforeCall and AfterCall strikes.
func around[T any](ctx context.Context, call func() (T, error)) (T, error) {
	p := planOf(ctx)
	if p == nil {
		return call()
	}
	f := p.next()
	var zero T
	if f != nil && f.Step == InsideUpdate {
		f.Step = BeforeCall // only Update has an inside
	}
	if err := p.strike(ctx, f, BeforeCall); err != nil {
		return zero, err
	}
	v, err := call()
	if ferr := p.strike(ctx, f, AfterCall); ferr != nil && err == nil {
		return zero, ferr
	}
	return v, err
}

// Update injects the plan's fault before the call, inside apply, or after
// the call.
func (s FaultyStore) Update(ctx context.Context, q credits.Query, apply func(*credits.State) (*credits.Change, error)) error {
	p := planOf(ctx)
	if p == nil {
		return s.Store.Update(ctx, q, apply)
	}
	f := p.next()
	if err := p.strike(ctx, f, BeforeCall); err != nil {
		return err
	}
	err := s.Store.Update(ctx, q, func(st *credits.State) (*credits.Change, error) {
		if err := p.strike(ctx, f, InsideUpdate); err != nil {
			return nil, err
		}
		return apply(st)
	})
	if ferr := p.strike(ctx, f, AfterCall); ferr != nil && err == nil {
		return ferr
	}
	return err
}

// View injects the plan's fault before or after the call.
func (s FaultyStore) View(ctx context.Context, q credits.Query) (*credits.State, error) {
	return around(ctx, func() (*credits.State, error) { return s.Store.View(ctx, q) })
}

// HoldAccount injects the plan's fault before or after the call.
func (s FaultyStore) HoldAccount(ctx context.Context, holdID string) (string, error) {
	return around(ctx, func() (string, error) { return s.Store.HoldAccount(ctx, holdID) })
}

// Entries injects the plan's fault before or after the call.
func (s FaultyStore) Entries(ctx context.Context, f credits.EntryFilter) ([]credits.Entry, error) {
	return around(ctx, func() ([]credits.Entry, error) { return s.Store.Entries(ctx, f) })
}

// DueAccounts injects the plan's fault before or after the call.
func (s FaultyStore) DueAccounts(ctx context.Context, now time.Time, warn time.Duration, limit int) ([]string, error) {
	return around(ctx, func() ([]string, error) { return s.Store.DueAccounts(ctx, now, warn, limit) })
}

package storetest

import (
	"context"
	"sync"
	"time"

	"pgregory.net/rapid"

	"github.com/creditkit/credits"
)

// Batcher is implemented by a store under test that groups concurrent
// operations into shared transactions (a group commit, as sqlstore's). With
// it the state machine also runs several operations as one batch, in a
// known order, and checks each against the model as if they had run one
// after the other.
type Batcher interface {
	credits.Store
	// HoldBatches makes the store queue operations without running them,
	// until ResumeBatches.
	HoldBatches()
	ResumeBatches()
	// Queued is how many operations wait in the store's queues.
	Queued() int
}

// orderedStore sits between the state machine's ledger and a Batcher.
// During a Batch step, the operation of the i-th step does not return
// before the (i-1)-th step has finished checking its own, so that the
// model sees the operations in the order the batch applied them.
//
// An operation may call Update more than once (a replay whose record names
// a hold its first load did not name loads it with a second call). Every
// step's first call is made while the batch is held, before any call
// returns, and Batch marks every step entered before it lets the batch
// run; so a later call is a repeat, whose first call has already waited
// its turn: it runs without waiting.
type orderedStore struct {
	Batcher

	mu      sync.Mutex
	current int             // the step that is calling into the store now
	entered int             // how many steps have made their first call
	done    []chan struct{} // closed when step i has finished; nil outside a Batch step
}

func (o *orderedStore) Update(ctx context.Context, q credits.Query, apply func(*credits.State) (*credits.Change, error)) error {
	o.mu.Lock()
	var prev chan struct{}
	if o.done != nil && o.current >= o.entered {
		o.entered = o.current + 1
		if o.current > 0 {
			prev = o.done[o.current-1]
		}
	}
	o.mu.Unlock()
	err := o.Batcher.Update(ctx, q, apply)
	if prev != nil {
		<-prev
	}
	return err
}

// batchSteps are the steps a Batch step combines: one store operation each.
func (mc *machine) batchSteps() []func(*rapid.T) {
	steps := []func(*rapid.T){mc.Grant, mc.ClaimDaily, mc.Reserve, mc.Charge, mc.Reserve, mc.Charge}
	if len(mc.holds) > 0 {
		steps = append(steps, mc.Capture, mc.Release, mc.Refund, mc.Capture)
	}
	if len(mc.past) > 0 {
		steps = append(steps, mc.Retry, mc.Conflict)
	}
	return steps
}

// Batch runs two to six steps as one batch: each step's operation is
// queued, in order, while the store holds its batches; then the store runs
// them together, and each step checks its outcome against the model in
// that order.
func (mc *machine) Batch(t *rapid.T) {
	if mc.ordered == nil {
		t.Skip("the store does not batch")
	}
	steps := mc.batchSteps()
	n := rapid.IntRange(2, 6).Draw(t, "batch size")
	chosen := make([]func(*rapid.T), n)
	for i := range chosen {
		chosen[i] = steps[rapid.IntRange(0, len(steps)-1).Draw(t, "batch step")]
	}
	o := mc.ordered
	done := make([]chan struct{}, n)
	for i := range done {
		done[i] = make(chan struct{})
	}
	o.mu.Lock()
	o.done, o.current, o.entered = done, 0, 0
	o.mu.Unlock()
	o.HoldBatches()
	held := true
	defer func() {
		if held {
			o.ResumeBatches()
		}
		o.mu.Lock()
		o.done = nil
		o.mu.Unlock()
	}()
	failures := make([]any, n)
	for i, step := range chosen {
		o.mu.Lock()
		o.current = i
		o.mu.Unlock()
		before := o.Queued()
		go func() {
			defer close(done[i])
			defer func() { failures[i] = recover() }()
			step(t)
		}()
		// Start the next step once this one's operation waits in the queue
		// (or it ended without one), so the queue holds them in order.
		for o.Queued() == before {
			select {
			case <-done[i]:
			case <-time.After(100 * time.Microsecond):
				continue
			}
			break
		}
	}
	// Every step has made its first call or ended: any call from here on
	// is a repeat (see orderedStore).
	o.mu.Lock()
	o.entered = n
	o.mu.Unlock()
	o.ResumeBatches()
	held = false
	for i := range done {
		<-done[i]
	}
	for _, f := range failures {
		if f != nil {
			panic(f) // the first failing step fails the action, as it would alone
		}
	}
}

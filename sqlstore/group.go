package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/creditkit/credits"
)

// Group commit.
//
// Store.Update does not run its operation itself: it queues it on one of
// the store's committers (an account always goes to the same one) and
// waits. A committer takes whatever is waiting, up to Options.MaxBatch
// operations, with no artificial delay, and runs them in one transaction:
// it locks their accounts with one query (in ID order, so two committers,
// or two processes, never deadlock), loads their state and idempotency
// records with one more, applies each operation in Go in arrival order
// against that shared state (a failing operation leaves it untouched, so
// no SAVEPOINT is needed), writes every change with one set-based statement
// per kind of row, commits once, and only then answers each caller with its
// own result. A batch of one runs as a lone operation would, and when the
// committer is idle the caller runs its operation itself, with no hand-off
// to another goroutine (the committer is busy meanwhile, so later
// operations queue as usual). After answering a batch the committer yields
// once, so that callers coming straight back with their next operation
// join the next batch rather than the one after it.
//
// Failures: a collision (serialization failure, deadlock, two processes
// creating one account) reruns the whole batch on fresh state. A failure
// before the commit (a lost connection, a statement the database refuses)
// wrote nothing: the batch's operations are then run one by one, so that
// one bad operation cannot fail the others. A failed or unconfirmed commit
// fails every operation of the batch with an error wrapping
// credits.ErrTransient: it may or may not have taken effect, and a retry
// with the same idempotency key converges to exactly one effect.

// ErrClosed is returned by operations started after Close.
var ErrClosed = errors.New("sqlstore: store closed")

// Stats is a snapshot of a store's group-commit counters since it was
// opened. See [Store.Stats].
type Stats struct {
	Operations int64 // operations the committers took
	Batches    int64 // batches they ran (a batch rerun after a collision counts once)
	MaxBatch   int   // the largest batch so far
	// BatchSizes counts batches by size: [0] one operation, [1] 2–3, [2]
	// 4–7, [3] 8–15, [4] 16–31, [5] 32–63, [6] 64 or more.
	BatchSizes [7]int64
	Retries    int64 // reruns of a batch that collided with another transaction
	// Failed counts batches that failed as a whole: every one of their
	// operations returned an error wrapping credits.ErrTransient (a lost
	// connection, a failed or unconfirmed commit).
	Failed int64
	// Cancelled counts operations whose caller's context ended while they
	// still waited in a queue: removed, never run.
	Cancelled int64
	// CommitTime is the total time from taking a batch to answering its
	// callers; MaxCommitTime the longest.
	CommitTime, MaxCommitTime time.Duration
	Queued                    int // operations waiting now
	// KeptRuns counts lone operations and batches that ran on kept
	// states, without reading their accounts (see Options.KeptStates);
	// KeptStale those of them whose write an account had moved on from
	// (another process or transaction wrote it), which then read and ran
	// again.
	KeptRuns, KeptStale int64
}

// MeanBatch is the mean number of operations per batch.
func (s Stats) MeanBatch() float64 {
	if s.Batches == 0 {
		return 0
	}
	return float64(s.Operations) / float64(s.Batches)
}

// MeanCommitTime is the mean time a batch took, from being taken to being
// answered.
func (s Stats) MeanCommitTime() time.Duration {
	if s.Batches == 0 {
		return 0
	}
	return s.CommitTime / time.Duration(s.Batches)
}

// Stats returns the group-commit counters. They stay zero with
// Options.NoGroupCommit and for operations run through WithTx.
func (s *Store) Stats() Stats {
	s.group.mu.Lock()
	st := s.group.stats
	s.group.mu.Unlock()
	for _, c := range s.group.committers {
		c.mu.Lock()
		st.Queued += len(c.queue)
		c.mu.Unlock()
	}
	if s.kept != nil {
		st.KeptRuns, st.KeptStale = s.kept.hits.Load(), s.kept.stale.Load()
	}
	return st
}

// group is a store's committers and their counters.
type group struct {
	committers []*committer
	wg         sync.WaitGroup // running committers

	mu    sync.Mutex
	stats Stats
}

func newGroup(s *Store, n int) *group {
	g := &group{committers: make([]*committer, n)}
	for i := range g.committers {
		g.committers[i] = &committer{s: s, g: g, index: i}
	}
	return g
}

// committerFor spreads accounts over the committers by a hash of the ID
// (FNV-1a), the same account always to the same committer.
func (g *group) committerFor(account string) *committer {
	h := uint32(2166136261)
	for i := 0; i < len(account); i++ {
		h ^= uint32(account[i])
		h *= 16777619
	}
	return g.committers[h%uint32(len(g.committers))]
}

// close stops the committers taking new operations and waits until they
// have answered every queued one.
func (g *group) close() {
	for _, c := range g.committers {
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
	}
	g.pause(false)
	g.wg.Wait()
}

// pause makes the committers leave queued operations waiting (on) or
// take them again (off). Tests use it to build batches of a known order.
func (g *group) pause(on bool) {
	for _, c := range g.committers {
		c.mu.Lock()
		c.paused = on
		if !on && len(c.queue) > 0 && !c.running {
			c.running = true
			g.wg.Add(1)
			go c.run()
		}
		c.mu.Unlock()
	}
}

func (g *group) record(batch int, took time.Duration, retries int, failed bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	st := &g.stats
	st.Operations += int64(batch)
	st.Batches++
	st.MaxBatch = max(st.MaxBatch, batch)
	bucket := 0
	for n := batch; n > 1 && bucket < len(st.BatchSizes)-1; n >>= 1 {
		bucket++
	}
	st.BatchSizes[bucket]++
	st.Retries += int64(retries)
	if failed {
		st.Failed++
	}
	st.CommitTime += took
	st.MaxCommitTime = max(st.MaxCommitTime, took)
}

// pending is one queued operation.
type pending struct {
	ctx   context.Context // the caller's: values only, once taken
	q     credits.Query
	apply func(*credits.State) (*credits.Change, error)
	done  chan error // receives the outcome, once
	state pendingState

	err      error // apply's error in the current run of the batch
	answered bool  // its outcome is settled
	outcome  error // sent to the caller once the batch is recorded
	direct   bool  // run by its caller on an idle committer: on the caller's context
}

// pendingState is guarded by the committer's mutex.
type pendingState int

const (
	queued pendingState = iota
	taken
	cancelled
)

// answer settles p's outcome (the first one settled counts); commit sends
// it once the whole batch is done and recorded in Stats, so a caller that
// returned sees its batch counted.
func (p *pending) answer(err error) {
	if !p.answered {
		p.answered = true
		p.outcome = err
	}
}

// panicked carries a panic of apply to the caller's goroutine, where
// Update panics again with the same value.
type panicked struct{ value any }

func (p *panicked) Error() string { return fmt.Sprint("sqlstore: operation panicked: ", p.value) }

// call runs apply, turning a panic into a *panicked error.
func (p *pending) call(st *credits.State) (ch *credits.Change, err error) {
	defer func() {
		if v := recover(); v != nil {
			ch, err = nil, &panicked{value: v}
		}
	}()
	return p.apply(st)
}

// committer runs the batches of the accounts that hash to it, one at a
// time, on a goroutine that exists only while there is work.
type committer struct {
	s     *Store
	g     *group
	index int

	mu      sync.Mutex
	queue   []*pending
	running bool
	closed  bool
	paused  bool // tests: queue without running
}

// enqueue queues p. When the committer is idle it reports direct: the
// caller is to run p itself (a batch of one, no hand-off to another
// goroutine) and then call handOver.
func (c *committer) enqueue(p *pending) (direct bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false, ErrClosed
	}
	if !c.running && !c.paused && len(c.queue) == 0 {
		c.running = true
		c.g.wg.Add(1)
		p.state = taken
		return true, nil
	}
	c.queue = append(c.queue, p)
	if !c.running && !c.paused {
		c.running = true
		c.g.wg.Add(1)
		go c.run()
	}
	return false, nil
}

// handOver ends a caller's direct run: what was queued meanwhile goes to a
// committer goroutine.
func (c *committer) handOver() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.queue) > 0 && !c.paused {
		go c.run() // inherits the running state and the wait group's count
		return
	}
	c.running = false
	c.g.wg.Done()
}

// cancel removes p from the queue if no batch has taken it yet.
func (c *committer) cancel(p *pending) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p.state != queued {
		return false
	}
	if i := slices.Index(c.queue, p); i >= 0 {
		c.queue = slices.Delete(c.queue, i, i+1)
	}
	p.state = cancelled
	return true
}

func (c *committer) run() {
	defer c.g.wg.Done()
	for {
		c.mu.Lock()
		n := min(len(c.queue), c.s.opts.MaxBatch)
		if n == 0 || c.paused {
			c.running = false
			c.mu.Unlock()
			return
		}
		batch := slices.Clone(c.queue[:n])
		c.queue = slices.Delete(c.queue, 0, n)
		for _, p := range batch {
			p.state = taken
		}
		c.mu.Unlock()
		c.commit(batch)
		// Let the callers just answered run before taking the next batch:
		// those that come straight back join it instead of the one after.
		runtime.Gosched()
	}
}

// updateGrouped is Update through the committers.
func (s *Store) updateGrouped(ctx context.Context, q credits.Query, apply func(*credits.State) (*credits.Change, error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p := &pending{ctx: ctx, q: q, apply: apply, done: make(chan error, 1)}
	c := s.group.committerFor(q.Account)
	direct, err := c.enqueue(p)
	if err != nil {
		return err
	}
	if direct {
		p.direct = true
		c.commit([]*pending{p})
		c.handOver()
	}
	select {
	case err = <-p.done:
	case <-ctx.Done():
		if c.cancel(p) {
			s.group.mu.Lock()
			s.group.stats.Cancelled++
			s.group.mu.Unlock()
			return ctx.Err()
		}
		// Taken: the outcome is what the commit decides; wait for it.
		err = <-p.done
	}
	if pe, ok := err.(*panicked); ok {
		panic(pe.value)
	}
	return err
}

// errRestart says an operation was answered with its own error after it had
// changed the batch's shared state: the batch runs again without it.
var errRestart = errors.New("sqlstore: restart the batch")

// errUnanswered would reach a caller whose operation a batch left without an
// outcome: a bug in this package, never a silent success.
var errUnanswered = errors.New("sqlstore: internal error: the batch gave no outcome")

// commitFailed is a commit that failed or went unconfirmed.
type commitFailed struct{ err error }

func (e *commitFailed) Error() string { return e.err.Error() }
func (e *commitFailed) Unwrap() error { return e.err }

// commit runs one batch and answers every operation of it.
func (c *committer) commit(batch []*pending) {
	s := c.s
	start := time.Now()
	retries, failed := 0, false
	defer func() {
		if v := recover(); v != nil { // a bug in this package: tell every caller
			for _, p := range batch {
				p.answer(&panicked{value: v})
			}
		}
		took := time.Since(start)
		c.g.record(len(batch), took, retries, failed)
		if s.log.Enabled(context.Background(), slog.LevelDebug) {
			s.log.LogAttrs(context.Background(), slog.LevelDebug, "sqlstore: batch", slog.Int("committer", c.index),
				slog.Int("operations", len(batch)), slog.Duration("took", took), slog.Int("retries", retries), slog.Bool("failed", failed))
		}
		for _, p := range batch {
			p.answer(errUnanswered) // no effect on a settled outcome
			p.done <- p.outcome
		}
	}()
	if len(batch) == 1 {
		// Nothing to share: the lone path (optimistic on PostgreSQL). The
		// operation was taken, so its caller's cancellation no longer
		// stops it.
		p := batch[0]
		ctx, cancel := context.WithTimeout(context.WithoutCancel(p.ctx), s.opts.CommitTimeout)
		if p.direct {
			ctx, cancel = p.ctx, func() {}
		}
		err := s.updateAlone(ctx, p.q, p.call)
		cancel()
		failed = errors.Is(err, credits.ErrTransient)
		p.answer(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.CommitTimeout)
	defer cancel()
	live := slices.Clone(batch) // DeleteFunc below must not clear batch's tail
	for {
		err := s.runBatch(ctx, live)
		var cf *commitFailed
		switch {
		case err == nil:
			for _, p := range live {
				p.answer(p.err)
			}
			return
		case errors.Is(err, errRestart):
			live = slices.DeleteFunc(live, func(p *pending) bool { return p.answered })
			if len(live) == 0 {
				return
			}
		case errors.As(err, &cf):
			failed = true
			for _, p := range live {
				p.answer(err)
			}
			return
		case s.dialect.retryable(err) && retries+1 < s.opts.MaxAttempts:
			retries++
			s.log.DebugContext(ctx, "sqlstore: retrying a colliding batch", "committer", c.index, "attempt", retries, "err", err)
			if !sleep(ctx, backoff(retries)) {
				failed = true
				for _, p := range live {
					p.answer(fmt.Errorf("sqlstore: %w: %w", credits.ErrTransient, ctx.Err()))
				}
				return
			}
		default:
			// Nothing was written. Run the operations one by one, so that
			// one bad operation fails alone.
			s.log.DebugContext(ctx, "sqlstore: batch failed before its commit; running its operations one by one", "committer", c.index, "operations", len(live), "err", err)
			failed = true
			for _, p := range live {
				err := s.updateAlone(ctx, p.q, p.call)
				failed = failed && errors.Is(err, credits.ErrTransient)
				p.answer(err)
			}
			return
		}
	}
}

// runBatch runs the operations in one transaction. It returns nil once the
// transaction committed (or there was nothing to write), leaving each
// operation's own error in its err; errRestart when an operation was
// answered early; a *commitFailed when the commit failed or went
// unconfirmed; any other error when nothing was written.
func (s *Store) runBatch(ctx context.Context, live []*pending) (err error) {
	if s.dialect == Postgres {
		if err, done := s.runBatchKept(ctx, live); done {
			return err
		}
		if err, ok := s.runBatchPipelined(ctx, live); ok {
			return err
		}
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: begin: %w: %w", credits.ErrTransient, err)
	}
	committed := false
	defer func() {
		if !committed {
			rollback(tx)
		}
	}()
	ex := s.on(tx)
	states, err := s.lockAndLoad(ctx, ex, queriesOf(live))
	if err != nil {
		return err
	}
	rows, err := applyAll(live, states)
	if err != nil || rows == nil {
		return err
	}
	if err := s.write(ctx, ex, rows); err != nil {
		return err
	}
	if err := s.fault(false); err != nil {
		return commitError(err)
	}
	committed = true
	if err := tx.Commit(); err != nil {
		return commitError(err)
	}
	if err := s.fault(true); err != nil {
		return commitError(err)
	}
	return nil
}

func commitError(err error) error {
	return &commitFailed{err: fmt.Errorf("sqlstore: commit: %w: %w", credits.ErrTransient, err)}
}

func queriesOf(live []*pending) []credits.Query {
	qs := make([]credits.Query, len(live))
	for i, p := range live {
		qs[i] = p.q
	}
	return qs
}

// applyAll applies the operations in order to the states of their
// accounts, leaving each one's error in its err, and returns the rows of
// all their changes: nil when nothing changed, errRestart when an
// operation was answered early (see runBatch).
func applyAll(live []*pending, states map[string]*credits.State) (*changeRows, error) {
	var rows changeRows
	changed := false
	for _, p := range live {
		ch, err := p.call(states[p.q.Account])
		p.err = err
		if _, ok := err.(*panicked); ok {
			p.answer(err) // its state may be half-changed: start again without it
			return nil, errRestart
		}
		if err != nil || ch == nil {
			continue
		}
		if err := rows.add(p.q.Account, ch); err != nil {
			p.answer(err) // folded into the state, but cannot be stored
			return nil, errRestart
		}
		changed = true
	}
	if !changed {
		return nil, nil
	}
	return &rows, nil
}

// fault is the test hook that makes a commit fail (committed false: before
// it, so nothing is written) or go unconfirmed (true: after it).
func (s *Store) fault(committed bool) error {
	if s.commitFault == nil {
		return nil
	}
	return s.commitFault(committed)
}

func backoff(attempt int) time.Duration {
	return time.Duration(rand.Int64N(int64(time.Millisecond)<<min(attempt, 6))) + time.Millisecond
}

// sleep waits d, or less if ctx ends first; it reports whether it waited d.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

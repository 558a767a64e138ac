package core

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/creditkit/credits"
)

// The executor. Every operation runs as part of a batch — alone (a batch
// of one), grouped with concurrent operations by a committer, or inside
// the caller's transaction — through the same steps:
//
//  1. state: the kept states of the batch's accounts when every one is
//     kept (PostgreSQL, see kept.go); otherwise BEGIN, lock the accounts'
//     rows in ID order and load their state (Tx.Load);
//  2. apply every operation in Go, in arrival order, against that state (a
//     failing operation leaves it untouched, so no SAVEPOINT);
//  3. merge the changes into rows (collector) and write them (on kept
//     states, one statement guarded by the accounts' versions), commit,
//     and only then answer each caller.
//
// This file reads top-down in the order a batch runs: Update → submit
// (queue.go: queue, or run at once) → commit → run (retries, failures) →
// attempt → attemptKept (Guarded.WriteGuarded, one statement, no Tx) or
// write (Tx.Load, applyAll, Tx.Write) → Tx.Commit. What differs by
// database is behind Tx and Guarded (postgres/, sqlite/: batch.go).

// pending is one operation.
type pending struct {
	ctx   context.Context // the caller's (a committer's batch keeps only its values)
	q     credits.Query
	apply func(*credits.State) (*credits.Change, error)
	done  chan error // receives the outcome, once
	state pendingState
	// direct: run by its caller on an idle committer, on the caller's context
	direct bool

	err      error // apply's error in the current run of the batch
	answered bool  // its outcome is settled
	outcome  error
}

// Update implements credits.Store: the operation runs as a batch, alone or
// grouped with concurrent callers' operations. If ctx ends while it still
// waits in a queue, it is removed and Update returns ctx's error; once a
// committer has taken it, Update returns what its batch's commit decided.
func (s *Store) Update(ctx context.Context, q credits.Query, apply func(*credits.State) (*credits.Change, error)) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	p := &pending{ctx: ctx, q: q, apply: apply, done: make(chan error, 1)}
	if s.opts.NoGroupCommit {
		s.run(ctx, []*pending{p})
		return p.result()
	}
	return s.group.submit(ctx, p)
}

// submit runs p through its account's committer and returns its outcome.
func (g *group) submit(ctx context.Context, p *pending) error {
	c := g.committerFor(p.q.Account)
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
	case <-p.done:
	case <-ctx.Done():
		if c.cancel(p) {
			g.mu.Lock()
			g.stats.Cancelled++
			g.mu.Unlock()
			return ctx.Err()
		}
		<-p.done // taken: the outcome is what the commit decides
	}
	return p.result()
}

// commit runs one batch, records it in the stats and then answers its
// callers (so that a caller that returned sees its batch counted).
func (c *committer) commit(batch []*pending) {
	s := c.s
	start := time.Now()
	// The batch's callers may go away: it runs to its end on a context of
	// its own (with the first caller's values).
	ctx, cancel := context.WithTimeout(context.WithoutCancel(batch[0].ctx), s.opts.CommitTimeout)
	if len(batch) == 1 && batch[0].direct {
		ctx, cancel = batch[0].ctx, func() {}
	}
	retries, failed := s.run(ctx, batch)
	cancel()
	took := time.Since(start)
	c.g.record(len(batch), took, retries, failed)
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		s.log.LogAttrs(context.Background(), slog.LevelDebug, "sqlstore: batch", slog.Int("committer", c.index),
			slog.Int("operations", len(batch)), slog.Duration("took", took), slog.Int("retries", retries), slog.Bool("failed", failed))
	}
	for _, p := range batch {
		p.done <- p.outcome
	}
}

// run runs the batch to its end and settles every operation's outcome. It
// reports how many times the batch collided and ran again, and whether it
// failed as a whole.
func (s *Store) run(ctx context.Context, batch []*pending) (retries int, failed bool) {
	defer func() {
		if v := recover(); v != nil { // a bug in this package: tell every caller
			for _, p := range batch {
				p.answer(&panicked{value: v})
			}
		}
		for _, p := range batch {
			p.answer(errUnanswered) // no effect on a settled outcome
		}
	}()
	live := slices.Clone(batch) // DeleteFunc below must not clear batch's tail
	for {
		err := s.attempt(ctx, live)
		var cf *commitFailed
		switch {
		case err == nil:
			for _, p := range live {
				p.answer(p.err)
			}
			return retries, false
		case errors.Is(err, errRestart):
			live = slices.DeleteFunc(live, func(p *pending) bool { return p.answered })
			if len(live) == 0 {
				return retries, false
			}
		case errors.As(err, &cf):
			for _, p := range live {
				p.answer(err)
			}
			return retries, true
		case s.driver.Collided(err) && retries+1 < s.opts.MaxAttempts:
			retries++
			s.log.DebugContext(ctx, "sqlstore: retrying a colliding batch", "operations", len(live), "attempt", retries, "err", err)
			if !sleep(ctx, backoff(retries)) {
				for _, p := range live {
					p.answer(Transient("retry", errors.Join(ctx.Err(), err)))
				}
				return retries, true
			}
		case len(live) > 1:
			// Nothing was written. Run the operations one by one, so that
			// one bad operation fails alone.
			s.log.DebugContext(ctx, "sqlstore: batch failed before its commit; running its operations one by one", "operations", len(live), "err", err)
			failed = true
			for _, p := range live {
				r, f := s.run(ctx, []*pending{p})
				retries += r
				failed = failed && f
			}
			return retries, failed
		default:
			live[0].answer(err)
			return retries, errors.Is(err, credits.ErrTransient)
		}
	}
}

// attempt runs the batch once: on kept states when it can, otherwise in a
// transaction that locks and loads its accounts. It returns nil once the
// batch committed (or had nothing to write), leaving each operation's own
// error in its err; errRestart when an operation was answered early; a
// *commitFailed when the commit failed or went unconfirmed; any other error
// when nothing was written.
func (s *Store) attempt(ctx context.Context, live []*pending) error {
	if err, done := s.attemptKept(ctx, live); done {
		return err
	}
	tx, err := s.driver.Begin(ctx, s.db, false)
	if err != nil {
		return Transient("begin", err)
	}
	defer tx.Rollback()
	st, err := s.write(ctx, tx, live)
	if err != nil || st == nil {
		return err
	}
	if err := s.fault(false); err != nil {
		return commitError(err)
	}
	if err := tx.Commit(ctx); err != nil {
		s.kept.forget(st.accounts())
		var nw *nothingWritten
		if errors.As(err, &nw) {
			return err
		}
		return commitError(err)
	}
	s.kept.putAll(st)
	if err := s.fault(true); err != nil {
		return commitError(err)
	}
	return nil
}

// attemptKept runs the batch on kept states when every one of its accounts
// is kept: it applies the operations to them and writes all their changes
// in one guarded autocommit statement. done is false when it wrote nothing
// and the batch is to run on loaded states (an account is not kept, a kept
// state turned out stale, or an operation is not to be trusted on it);
// otherwise err is what attempt returns.
func (s *Store) attemptKept(ctx context.Context, live []*pending) (err error, done bool) {
	if s.kept == nil {
		return nil, false
	}
	holds := map[string][]string{}
	var accounts []string
	for _, p := range live {
		if len(p.q.Buckets) > 0 {
			// A kept state has the live buckets only; an operation that
			// names a bucket (a correction: rare) runs on loaded state.
			return nil, false
		}
		if _, ok := holds[p.q.Account]; !ok {
			accounts = append(accounts, p.q.Account)
			holds[p.q.Account] = []string{}
		}
		holds[p.q.Account] = append(holds[p.q.Account], p.q.Holds...)
	}
	states := make(map[string]*credits.State, len(accounts))
	rows := make(map[string]AccountRow, len(accounts))
	known := []string{} // not nil: pgx sends a nil slice as NULL
	for _, a := range accounts {
		st, version, k, ok := s.kept.get(a, holds[a])
		if !ok {
			return nil, false
		}
		states[a], rows[a] = st, AccountRow{Account: st.Account.Clone(), Version: version}
		known = append(known, k...)
	}
	s.kept.hits.Add(1)
	var c collector
	for _, p := range live {
		// Whatever goes wrong on a kept state (a panic, a change that
		// cannot be stored too) runs again on a loaded state: a record
		// might answer it there.
		ch, err := p.call(states[p.q.Account])
		if !trusted(p.q, ch, err) || c.add(p.q.Account, ch) != nil {
			s.kept.forget(accounts)
			return nil, false
		}
		p.err = nil
	}
	for _, a := range accounts {
		c.touch(a) // every account of the batch is guarded by its version
	}
	w, versions, err := c.writes(rows)
	if err != nil || len(w[PartNewAccounts]) > 0 { // a kept account exists: a creation runs on loaded state
		s.kept.forget(accounts)
		return nil, false
	}
	if err := s.fault(false); err != nil {
		s.kept.forget(accounts)
		return commitError(err), true
	}
	wrote, err := s.guarded.WriteGuarded(ctx, s.db, w, known, loadArgs(live).Due)
	switch {
	case err != nil:
		s.kept.forget(accounts)
		if s.guarded.Refused(err) {
			return nil, false // nothing written: run again on loaded states
		}
		return commitError(err), true // it may or may not have taken effect
	case !wrote:
		s.kept.forget(accounts)
		s.kept.stale.Add(1)
		return nil, false
	}
	s.kept.putAll(&written{states: states, versions: versions})
	if err := s.fault(true); err != nil {
		return commitError(err), true
	}
	return nil, true
}

// written is what a batch wrote: the states its operations left and the
// accounts' new versions (for kept states).
type written struct {
	states   map[string]*credits.State
	versions map[string]int64
}

func (w *written) accounts() []string {
	out := make([]string, 0, len(w.states))
	for a := range w.states {
		out = append(out, a)
	}
	return out
}

// write locks and loads the batch's accounts in tx, applies its
// operations and writes their changes, without committing. It returns nil
// when there was nothing to write.
func (s *Store) write(ctx context.Context, tx Tx, live []*pending) (*written, error) {
	args := loadArgs(live)
	l := NewLoad(args.Accounts)
	if err := tx.Load(ctx, args, l, true); err != nil {
		return nil, err
	}
	if err := l.Err(); err != nil {
		return nil, err
	}
	c, err := applyAll(live, l.States)
	if err != nil || c == nil {
		return nil, err
	}
	w, versions, err := c.writes(l.Rows)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := tx.Write(ctx, w); err != nil {
		return nil, err
	}
	return &written{states: l.States, versions: versions}, nil
}

// applyAll applies the operations in order to the states of their
// accounts, leaving each one's error in its err, and merges their
// changes: nil when nothing changed, errRestart when an operation was
// answered early (see attempt).
func applyAll(live []*pending, states map[string]*credits.State) (*collector, error) {
	var c collector
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
		if err := c.add(p.q.Account, ch); err != nil {
			p.answer(err) // folded into the state, but cannot be stored
			return nil, errRestart
		}
		changed = true
	}
	if !changed {
		return nil, nil
	}
	return &c, nil
}

// loadArgs are what the operations' load looks up.
func loadArgs(live []*pending) LoadArgs {
	qs := make([]credits.Query, len(live))
	for i, p := range live {
		qs[i] = p.q
	}
	return NewLoadArgs(qs)
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

// answer settles p's outcome; the first one settled counts.
func (p *pending) answer(err error) {
	if !p.answered {
		p.answered = true
		p.outcome = err
	}
}

// result is p's outcome for its caller: a panic of apply panics again.
func (p *pending) result() error {
	if pe, ok := p.outcome.(*panicked); ok {
		panic(pe.value)
	}
	return p.outcome
}

// panicked carries a panic of apply to the caller's goroutine.
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

func commitError(err error) error {
	return &commitFailed{err: fmt.Errorf("sqlstore: commit: %w: %w", credits.ErrTransient, err)}
}

// nothingWritten is a commit that failed before anything was written.
type nothingWritten struct{ err error }

func (e *nothingWritten) Error() string { return e.err.Error() }
func (e *nothingWritten) Unwrap() error { return e.err }

// WroteNothing marks an error of Tx.Commit that says nothing was written
// (the server refused the write sent with the COMMIT): the batch's
// operations may then run again one by one. transient says whether the
// same write may succeed later (a cancelled statement, say) rather than
// being refused again (a violated constraint: a bug, never retried as
// credits.ErrTransient). Any other error of Commit may have come after the
// commit took effect.
func WroteNothing(err error, transient bool) error {
	if transient {
		return &nothingWritten{err: Transient("write", err)}
	}
	return &nothingWritten{err: fmt.Errorf("sqlstore: write refused: %w", err)}
}

// Transient wraps a failure to talk to the database.
func Transient(what string, err error) error {
	return fmt.Errorf("sqlstore: %s: %w: %w", what, credits.ErrTransient, err)
}

package core

import (
	"runtime"
	"slices"
	"sync"
	"time"
)

// Group commit: Store.Update queues its operation on the committer of its
// account; a committer takes whatever waits, up to Options.MaxBatch, with
// no artificial delay, and runs it as one batch on a context of its own
// (Options.CommitTimeout). A caller that finds its committer idle runs its
// operation itself, on its own goroutine and context (see submit).

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

// pendingState is guarded by the committer's mutex.
type pendingState int

const (
	queued pendingState = iota
	taken
	cancelled
)

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

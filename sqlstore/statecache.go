package sqlstore

import (
	"sync"
	"sync/atomic"

	"github.com/creditkit/credits"
)

// # Kept states
//
// On PostgreSQL a store keeps, for the accounts it wrote last, the state its
// write left (the account row, its live buckets, the open holds it knows of
// and the buckets they took from), so that the next operation on such an
// account skips reading it: the operation applies to the kept state and its
// write, one autocommit statement, takes effect only if the account is
// still as kept. The write's guard checks what could have changed without
// this store knowing:
//
//   - the whole account row: its Seq (every change of a balance, a bucket
//     or a hold appends an entry, which moves it) and every other column (a
//     member change appends no entry; an operator may UPDATE a column);
//   - that no open hold is due that the kept state does not have (a hold
//     the load did not bring because it was not due then);
//   - the idempotency key: a kept state has no records, so the operation
//     runs as if its key were new, and the records' primary key refuses the
//     write if it was not. An operation on a kept state that fails, or
//     writes no record under its key, is not trusted (a record might have
//     answered it): it reads the account and runs again.
//
// When the guard refuses, nothing is written and the operation reads the
// account and runs again; the kept state is dropped. Another process, the
// caller's own transaction or the database/sql path may write the account
// meanwhile: the guard is what makes that safe, not the cache.

// maxKeptRows bounds the buckets and holds a kept state may have (an
// account with more is read every time), and rowsPerKept the rows of all
// kept states: on average 16 per account kept.
const (
	maxKeptRows = 64
	rowsPerKept = 16
)

// stateCache is the kept states, bounded; nil keeps none.
type stateCache struct {
	mu     sync.Mutex
	max    int // accounts
	rows   int // buckets and holds of all kept states
	states map[string]*credits.State

	hits, stale atomic.Int64 // runs on kept states, and those found stale
}

func newStateCache(max int) *stateCache {
	if max <= 0 {
		return nil
	}
	return &stateCache{max: max, states: map[string]*credits.State{}}
}

// get returns a copy of the kept state of account and the IDs of its open
// holds, if it is kept and has every hold the queries name.
func (c *stateCache) get(account string, qs []credits.Query) (*credits.State, []string, bool) {
	if c == nil {
		return nil, nil, false
	}
	c.mu.Lock()
	k := c.states[account]
	c.mu.Unlock()
	if k == nil {
		return nil, nil, false
	}
	for _, q := range qs {
		for _, id := range q.Holds {
			if k.Holds[id] == nil {
				return nil, nil, false
			}
		}
	}
	// Kept rows are never changed in place (a new state replaces them);
	// the copy is the caller's to change.
	a := k.Account.Clone()
	st := &credits.State{Account: &a, Buckets: make(map[string]*credits.Bucket, len(k.Buckets)),
		Holds: make(map[string]*credits.Hold, len(k.Holds)), Records: map[string]*credits.Record{}}
	for id, b := range k.Buckets {
		v := *b
		st.Buckets[id] = &v
	}
	known := make([]string, 0, len(k.Holds))
	for id, h := range k.Holds {
		v := h.Clone()
		st.Holds[id] = &v
		known = append(known, id)
	}
	return st, known, true
}

// put keeps st, the state of account as a write that took effect left it:
// its rows as a load would return them (through the columns' encoding),
// only the open holds, the live buckets and the buckets the open holds
// took from. A state too large or that cannot be encoded is not kept.
func (c *stateCache) put(account string, st *credits.State) {
	if c == nil {
		return
	}
	k := keep(account, st)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.remove(account)
	if k == nil {
		return
	}
	n := len(k.Buckets) + len(k.Holds)
	for id := range c.states { // evict at random until there is room
		if len(c.states) < c.max && c.rows+n <= rowsPerKept*c.max {
			break
		}
		c.remove(id)
	}
	c.states[account] = k
	c.rows += n
}

func (c *stateCache) remove(account string) {
	if k, ok := c.states[account]; ok {
		c.rows -= len(k.Buckets) + len(k.Holds)
		delete(c.states, account)
	}
}

// ran counts an operation or a batch run on kept states.
func (c *stateCache) ran() { c.hits.Add(1) }

// drop forgets account's state: the guard refused a write computed on it,
// or a write's outcome is unknown.
func (c *stateCache) drop(account string, stale bool) {
	if c == nil {
		return
	}
	if stale {
		c.stale.Add(1)
	}
	c.mu.Lock()
	c.remove(account)
	c.mu.Unlock()
}

func keep(account string, st *credits.State) *credits.State {
	if st == nil || st.Account == nil || st.Account.ID != account {
		return nil
	}
	var (
		e encoder
		d decoder
	)
	ar := e.account(st.Account)
	k := &credits.State{Account: d.account(&ar), Buckets: map[string]*credits.Bucket{}, Holds: map[string]*credits.Hold{}}
	for id, h := range st.Holds {
		if h.Account == account && h.Status == credits.HoldOpen {
			hr := e.hold(h)
			k.Holds[id] = d.hold(&hr)
		}
	}
	named := map[string]bool{}
	for _, h := range k.Holds {
		for _, p := range h.Portions {
			named[p.Bucket] = true
		}
	}
	for id, b := range st.Buckets {
		if b.Account == account && (b.Remaining.IsPositive() || named[id]) {
			br := e.bucket(b)
			k.Buckets[id] = d.bucket(&br)
		}
	}
	for id := range named {
		if k.Buckets[id] == nil {
			return nil // a load would bring it; the state does not have it
		}
	}
	if e.err != nil || d.err != nil || len(k.Buckets)+len(k.Holds) > maxKeptRows {
		return nil
	}
	return k
}

// trusted reports whether an operation run on a kept state may be
// written: it succeeded and recorded the key it names, if any (a kept
// state has no records: only the records' primary key, at the write,
// proves the key new). Otherwise it runs again on a read state.
func trusted(q credits.Query, ch *credits.Change, err error) bool {
	if err != nil || ch == nil {
		return false
	}
	switch len(q.Keys) {
	case 0:
		return true
	case 1:
		return ch.Record != nil && ch.Record.Key == q.Keys[0]
	}
	return false
}

package core

import (
	"sync"
	"sync/atomic"

	"github.com/creditkit/credits"
)

// # Kept states
//
// A store whose driver can write guarded (PostgreSQL) keeps, for the
// accounts it wrote last, the state its write left — the account row with
// its version, the live buckets, the open holds it knows of and the buckets
// they took from, no idempotency records — so that the next batch whose
// accounts are all kept skips reading them: it applies to the kept states
// and writes in one autocommit statement that takes effect only if
//
//   - every account still has the version the store wrote: the store
//     moves an account's version on every write of its row, a bucket or a
//     hold (collector.writes), and a trigger moves it on any other UPDATE
//     of the row (an operator's); nothing about what the ledger appends is
//     assumed;
//   - no open hold of the account is due that the kept state does not have
//     (one the load did not bring because it was not due then);
//   - the history goes on where the kept state ends: entries are keyed
//     (account, seq), so an entry the kept state did not know of makes
//     the insert fail (unique violation: nothing written, run again);
//   - every idempotency key is new: a kept state has no records, so the
//     operation runs as if its key were new, and the records' primary key
//     refuses the write if it was not. An operation on a kept state that
//     fails, or writes no record under its key, is not trusted (a record
//     might have answered it): the batch runs again on loaded state.
//
// For several accounts it is all or nothing. When a guard refuses, nothing
// is written, the kept states are dropped and the batch runs on loaded
// state, so other processes and the caller's own transactions may write
// the same accounts: the guard is what makes that safe, not the cache.

// maxKeptRows bounds the buckets and holds a kept state may have (an
// account with more is read every time), and rowsPerKept the rows of all
// kept states: on average 16 per account kept.
const (
	maxKeptRows = 64
	rowsPerKept = 16
)

// kept is one kept state.
type kept struct {
	st      *credits.State
	version int64
}

// keptStates is the kept states, bounded; nil keeps none.
type keptStates struct {
	mu     sync.Mutex
	max    int // accounts
	rows   int // buckets and holds of all kept states
	states map[string]kept

	hits, stale atomic.Int64 // batches run on kept states, and those found stale
}

func newKeptStates(max int) *keptStates {
	if max <= 0 {
		return nil
	}
	return &keptStates{max: max, states: map[string]kept{}}
}

// get returns a copy of the kept state of account, its version and the IDs
// of its open holds, if it is kept and has every hold the queries name.
func (c *keptStates) get(account string, holds []string) (*credits.State, int64, []string, bool) {
	if c == nil {
		return nil, 0, nil, false
	}
	c.mu.Lock()
	k, ok := c.states[account]
	c.mu.Unlock()
	if !ok {
		return nil, 0, nil, false
	}
	for _, id := range holds {
		if k.st.Holds[id] == nil {
			return nil, 0, nil, false
		}
	}
	// Kept rows are never changed in place (a new state replaces them);
	// the copy is the caller's to change.
	a := k.st.Account.Clone()
	st := &credits.State{Account: &a, Buckets: make(map[string]*credits.Bucket, len(k.st.Buckets)),
		Holds: make(map[string]*credits.Hold, len(k.st.Holds)), Records: map[string]*credits.Record{}}
	for id, b := range k.st.Buckets {
		v := *b
		st.Buckets[id] = &v
	}
	known := make([]string, 0, len(k.st.Holds))
	for id, h := range k.st.Holds {
		v := h.Clone()
		st.Holds[id] = &v
		known = append(known, id)
	}
	return st, k.version, known, true
}

// putAll keeps the states a write that took effect left.
func (c *keptStates) putAll(w *written) {
	if c == nil {
		return
	}
	for a, st := range w.states {
		if v, ok := w.versions[a]; ok {
			c.put(a, st, v)
		}
	}
}

// put keeps st, the state of account as a write that took effect left it
// at version: its rows as a load would return them (through the columns'
// encoding), only the open holds, the live buckets and the buckets the
// open holds took from. A state too large or that cannot be encoded is not
// kept.
func (c *keptStates) put(account string, st *credits.State, version int64) {
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
	c.states[account] = kept{st: k, version: version}
	c.rows += n
}

func (c *keptStates) remove(account string) {
	if k, ok := c.states[account]; ok {
		c.rows -= len(k.st.Buckets) + len(k.st.Holds)
		delete(c.states, account)
	}
}

// forget drops the accounts' states: a write computed on them was refused,
// or its outcome is unknown.
func (c *keptStates) forget(accounts []string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	for _, a := range accounts {
		c.remove(a)
	}
	c.mu.Unlock()
}

// keep returns what is kept of st: its rows as a load would return them.
func keep(account string, st *credits.State) *credits.State {
	if st == nil || st.Account == nil || st.Account.ID != account {
		return nil
	}
	var cd codec
	ar := Accounts.decode(Accounts.encode(&AccountRow{Account: *st.Account}, &cd), &cd)
	k := &credits.State{Account: &ar.Account, Buckets: map[string]*credits.Bucket{}, Holds: map[string]*credits.Hold{}}
	named := map[string]bool{}
	for id, h := range st.Holds {
		if h.Account == account && h.Status == credits.HoldOpen {
			kh := Holds.decode(Holds.encode(h, &cd), &cd)
			k.Holds[id] = &kh
			for _, p := range h.Portions {
				named[p.Bucket] = true
			}
		}
	}
	for id, b := range st.Buckets {
		if b.Account == account && (b.Live() || named[id]) {
			kb := Buckets.decode(Buckets.encode(b, &cd), &cd)
			k.Buckets[id] = &kb
		}
	}
	for id := range named {
		if k.Buckets[id] == nil {
			return nil // a load would bring it; the state does not have it
		}
	}
	if cd.err != nil || len(k.Buckets)+len(k.Holds) > maxKeptRows {
		return nil
	}
	return k
}

// trusted reports whether an operation run on a kept state may be
// written: it succeeded and recorded the key it names, if any (a kept
// state has no records: only the records' primary key, at the write,
// proves the key new). Otherwise it runs again on a loaded state.
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

package storetest

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Clock is a manual clock for tests: it only moves when told to. Use its
// Now method as credits.Config.Now. It is safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock stopped at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock by d (which may be negative) and returns the new time.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// SequentialIDs returns a credits.Config.NewID that makes IDs in creation
// order, "<prefix>_<run><8-digit counter>" ("hold_a1_00000001"), so that a
// test's IDs sort in the order they were made. Two ledgers on one store
// need different run strings to keep their IDs apart.
func SequentialIDs(run string) func(prefix string) string {
	var n atomic.Int64
	return func(prefix string) string {
		return fmt.Sprintf("%s_%s%08d", prefix, run, n.Add(1))
	}
}

// Package memstore is an in-memory [credits.Store]: for tests, prototypes
// and single-process programs that do not need the ledger to survive a
// restart.
//
// It is safe for concurrent use. Each account has its own lock, so
// operations on different accounts run in parallel; a store-wide lock is
// held only for the moment it takes to find or add an account.
package memstore

import (
	"cmp"
	"context"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/creditkit/credits"
)

// Store is an in-memory credits.Store. The zero value is not usable; call New.
type Store struct {
	mu       sync.RWMutex
	accounts map[string]*account
	// holds maps hold IDs to account IDs, sharded so that accounts on
	// different shards never wait for each other. Holds are never deleted.
	holds [64]holdShard

	// feed is every entry in the order it was stored (see ReadFeed), by
	// account and Seq; consumers are the feed's named consumers.
	feedMu    sync.Mutex
	feed      []feedRef
	consumers map[string]*consumer
}

type feedRef struct {
	a   *account
	seq int64
}

type consumer struct {
	holder string
	until  time.Time
	cursor string
}

type holdShard struct {
	mu  sync.RWMutex
	ids map[string]string
}

func (s *Store) holdShard(id string) *holdShard {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	return &s.holds[h.Sum32()%uint32(len(s.holds))]
}

type account struct {
	mu      sync.Mutex
	row     *credits.Account // nil until created
	buckets map[string]*credits.Bucket
	live    map[string]*credits.Bucket // the live buckets, which every operation loads
	holds   map[string]*credits.Hold
	open    map[string]*credits.Hold // the open holds, for due-hold lookups
	records map[string]*credits.Record
	entries []credits.Entry
}

// New returns an empty store.
func New() *Store {
	s := &Store{accounts: map[string]*account{}, consumers: map[string]*consumer{}}
	for i := range s.holds {
		s.holds[i].ids = map[string]string{}
	}
	return s
}

var (
	_ credits.Store     = (*Store)(nil)
	_ credits.FeedStore = (*Store)(nil)
)

func (s *Store) get(id string, create bool) *account {
	s.mu.RLock()
	a := s.accounts[id]
	s.mu.RUnlock()
	if a != nil || !create {
		return a
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if a = s.accounts[id]; a == nil {
		a = &account{
			buckets: map[string]*credits.Bucket{},
			live:    map[string]*credits.Bucket{},
			holds:   map[string]*credits.Hold{},
			open:    map[string]*credits.Hold{},
			records: map[string]*credits.Record{},
		}
		s.accounts[id] = a
	}
	return a
}

// load copies the state q names out of a; the caller holds a.mu.
func (a *account) load(q credits.Query) *credits.State {
	st := &credits.State{}
	if a.row == nil {
		return st
	}
	row := a.row.Clone()
	st.Account = &row
	addHold := func(h *credits.Hold) {
		if st.Holds == nil {
			st.Holds = map[string]*credits.Hold{}
		}
		c := h.Clone()
		st.Holds[h.ID] = &c
	}
	for _, id := range q.Holds {
		if h, ok := a.holds[id]; ok {
			addHold(h)
		}
	}
	if !q.Due.IsZero() {
		for _, h := range a.open {
			if h.DueAt(q.Due) {
				addHold(h)
			}
		}
	}
	st.Buckets = map[string]*credits.Bucket{}
	for id, b := range a.live {
		c := *b
		st.Buckets[id] = &c
	}
	for _, id := range q.Buckets {
		if b, ok := a.buckets[id]; ok {
			c := *b
			st.Buckets[id] = &c
		}
	}
	for _, h := range st.Holds {
		for _, p := range h.Portions {
			if b, ok := a.buckets[p.Bucket]; ok {
				c := *b
				st.Buckets[p.Bucket] = &c
			}
		}
	}
	for _, k := range q.Keys {
		if r, ok := a.records[k]; ok {
			if st.Records == nil {
				st.Records = map[string]*credits.Record{}
			}
			c := *r
			st.Records[k] = &c
		}
	}
	return st
}

// Update implements credits.Store.
func (s *Store) Update(ctx context.Context, q credits.Query, apply func(*credits.State) (*credits.Change, error)) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		a := s.get(q.Account, false)
		if a == nil {
			// No such account: apply runs on an empty state without a lock,
			// and nothing is kept for the ID unless the change creates it.
			done, err := s.create(ctx, q, apply)
			if done || err != nil {
				return err
			}
			continue // someone created it meanwhile: run again on it
		}
		a.mu.Lock()
		ch, err := apply(a.load(q))
		if err == nil && ch != nil {
			if err = ctx.Err(); err == nil { // cancelled: the operation did not happen
				err = s.persist(a, q.Account, ch)
			}
		}
		a.mu.Unlock()
		return err
	}
}

// create runs apply for an account that does not exist and stores the
// account it creates. It reports false when the account appeared meanwhile.
func (s *Store) create(ctx context.Context, q credits.Query, apply func(*credits.State) (*credits.Change, error)) (bool, error) {
	ch, err := apply(&credits.State{})
	if err != nil || ch == nil {
		return true, err
	}
	if err := ctx.Err(); err != nil {
		return true, err
	}
	a := s.get(q.Account, true)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.row != nil {
		return false, nil
	}
	return true, s.persist(a, q.Account, ch)
}

func (s *Store) persist(a *account, id string, ch *credits.Change) error {
	if ch.AccountCreated != (a.row == nil) {
		if ch.AccountCreated {
			return fmt.Errorf("memstore: account %q already exists", id)
		}
		return fmt.Errorf("memstore: account %q does not exist", id)
	}
	if ch.Account != nil && ch.Account.ID != id {
		return fmt.Errorf("memstore: change for account %q applied to %q", ch.Account.ID, id)
	}
	if ch.Record != nil {
		if _, dup := a.records[ch.Record.Key]; dup {
			return fmt.Errorf("memstore: idempotency record %q already exists", ch.Record.Key)
		}
	}
	for _, h := range ch.NewHolds {
		if _, dup := a.holds[h.ID]; dup {
			return fmt.Errorf("memstore: hold %q already exists", h.ID)
		}
	}
	// Every check is done: from here on nothing fails, so the change is
	// stored whole.
	if ch.Account != nil {
		row := ch.Account.Clone()
		a.row = &row
	}
	for _, list := range [][]credits.Bucket{ch.NewBuckets, ch.UpdatedBuckets} {
		for _, b := range list {
			b := b
			a.buckets[b.ID] = &b
			if b.Live() {
				a.live[b.ID] = &b
			} else {
				delete(a.live, b.ID)
			}
		}
	}
	for _, h := range ch.NewHolds {
		sh := s.holdShard(h.ID)
		sh.mu.Lock()
		sh.ids[h.ID] = id
		sh.mu.Unlock()
	}
	for _, list := range [][]credits.Hold{ch.NewHolds, ch.UpdatedHolds} {
		for _, h := range list {
			c := h.Clone()
			a.holds[h.ID] = &c
			if c.Status == credits.HoldOpen {
				a.open[h.ID] = &c
			} else {
				delete(a.open, h.ID)
			}
		}
	}
	a.entries = append(a.entries, ch.Entries...)
	if len(ch.Entries) > 0 {
		s.feedMu.Lock()
		for _, e := range ch.Entries {
			s.feed = append(s.feed, feedRef{a, e.Seq})
		}
		s.feedMu.Unlock()
	}
	if ch.Record != nil {
		r := *ch.Record
		a.records[r.Key] = &r
	}
	return nil
}

// Len returns the number of accounts in the store.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := 0
	for _, a := range s.accounts {
		a.mu.Lock()
		if a.row != nil {
			n++
		}
		a.mu.Unlock()
	}
	return n
}

// View implements credits.Store.
func (s *Store) View(ctx context.Context, q credits.Query) (*credits.State, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	a := s.get(q.Account, false)
	if a == nil {
		return &credits.State{}, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.load(q), nil
}

// HoldAccount implements credits.Store.
func (s *Store) HoldAccount(ctx context.Context, holdID string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	sh := s.holdShard(holdID)
	sh.mu.RLock()
	id, ok := sh.ids[holdID]
	sh.mu.RUnlock()
	if !ok {
		return "", fmt.Errorf("%w: %q", credits.ErrUnknownHold, holdID)
	}
	return id, nil
}

// existing returns account id locked, or an error wrapping
// credits.ErrUnknownAccount (or ctx's); the caller unlocks it.
func (s *Store) existing(ctx context.Context, id string) (*account, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	a := s.get(id, false)
	if a == nil {
		return nil, fmt.Errorf("%w: %q", credits.ErrUnknownAccount, id)
	}
	a.mu.Lock()
	if a.row == nil {
		a.mu.Unlock()
		return nil, fmt.Errorf("%w: %q", credits.ErrUnknownAccount, id)
	}
	return a, nil
}

// Entries implements credits.Store.
func (s *Store) Entries(ctx context.Context, f credits.EntryFilter) ([]credits.Entry, error) {
	a, err := s.existing(ctx, f.Account)
	if err != nil {
		return nil, err
	}
	defer a.mu.Unlock()
	// Entries are in Seq order, Seq = index+1: [lo, hi) is the cursors' range.
	lo := int(min(max(f.AfterSeq, 0), int64(len(a.entries))))
	hi := len(a.entries)
	if f.BeforeSeq > 0 {
		hi = int(min(f.BeforeSeq-1, int64(hi)))
	}
	var out []credits.Entry
	for k := range max(hi-lo, 0) {
		if f.Limit > 0 && len(out) >= f.Limit {
			break
		}
		i := lo + k
		if f.Newest {
			i = hi - 1 - k
		}
		if f.Match(&a.entries[i]) {
			out = append(out, a.entries[i])
		}
	}
	return out, nil
}

// Buckets implements credits.Store.
func (s *Store) Buckets(ctx context.Context, f credits.BucketFilter) ([]credits.Bucket, error) {
	a, err := s.existing(ctx, f.Account)
	if err != nil {
		return nil, err
	}
	defer a.mu.Unlock()
	var out []credits.Bucket
	for _, b := range a.buckets {
		if f.Match(b) {
			out = append(out, *b)
		}
	}
	slices.SortFunc(out, func(x, y credits.Bucket) int {
		if c := cmp.Compare(x.Seq, y.Seq); c != 0 {
			return c
		}
		return strings.Compare(x.ID, y.ID)
	})
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

// DueAccounts implements credits.Store.
func (s *Store) DueAccounts(ctx context.Context, now time.Time, warn time.Duration, limit int) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	ids := slices.Sorted(maps.Keys(s.accounts))
	s.mu.RUnlock()
	var out []string
	for _, id := range ids {
		if len(out) >= limit {
			break
		}
		a := s.get(id, false)
		a.mu.Lock()
		if a.due(now, warn) {
			out = append(out, id)
		}
		a.mu.Unlock()
	}
	return out, nil
}

func (a *account) due(now time.Time, warn time.Duration) bool {
	if a.row != nil && !a.row.RenewsAt.IsZero() && !now.Before(a.row.RenewsAt) {
		return true
	}
	for _, h := range a.open {
		if h.DueAt(now) {
			return true
		}
	}
	for _, b := range a.live {
		if b.DueAt(now) || b.WarningDueAt(now, warn) {
			return true
		}
	}
	return false
}

// ReadFeed implements credits.FeedStore. A cursor is the number of entries
// read: entries are appended to the feed as they are stored, under their
// account's lock, so the feed never has a gap and keeps each account's
// order.
func (s *Store) ReadFeed(ctx context.Context, cursor string, limit int) ([]credits.FeedItem, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	pos, err := feedPosition(cursor)
	if err != nil {
		return nil, err
	}
	s.feedMu.Lock()
	if pos > len(s.feed) {
		s.feedMu.Unlock()
		return nil, fmt.Errorf("%w: feed cursor %q is past the end", credits.ErrInvalidRequest, cursor)
	}
	refs := s.feed[pos:]
	if limit > 0 && len(refs) > limit {
		refs = refs[:limit]
	}
	refs = slices.Clone(refs)
	s.feedMu.Unlock()
	out := make([]credits.FeedItem, len(refs))
	for i, r := range refs {
		r.a.mu.Lock()
		out[i] = credits.FeedItem{Cursor: strconv.Itoa(pos + i + 1), Entry: r.a.entries[r.seq-1]}
		r.a.mu.Unlock()
	}
	return out, nil
}

func feedPosition(cursor string) (int, error) {
	if cursor == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(cursor)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%w: feed cursor %q", credits.ErrInvalidRequest, cursor)
	}
	return n, nil
}

// LeaseFeed implements credits.FeedStore.
func (s *Store) LeaseFeed(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	s.feedMu.Lock()
	defer s.feedMu.Unlock()
	c := s.consumers[name]
	if c == nil {
		c = &consumer{}
		s.consumers[name] = c
	}
	if c.holder != "" && c.holder != holder && now.Before(c.until) {
		return "", fmt.Errorf("%w: %q is held by %q until %s", credits.ErrFeedLeased, name, c.holder, c.until.Format(time.RFC3339Nano))
	}
	c.holder, c.until = holder, now.Add(ttl)
	return c.cursor, nil
}

// AckFeed implements credits.FeedStore.
func (s *Store) AckFeed(ctx context.Context, name, holder, cursor string, now time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := feedPosition(cursor); err != nil {
		return err
	}
	s.feedMu.Lock()
	defer s.feedMu.Unlock()
	c := s.consumers[name]
	if c == nil || c.holder != holder || !now.Before(c.until) {
		return fmt.Errorf("%w: %q is not held by %q", credits.ErrFeedLeased, name, holder)
	}
	c.cursor = cursor
	return nil
}

package credits

import (
	"context"
	"time"
)

// Store persists a ledger and locks its accounts. It holds no business rule:
// every rule (grant order, expiry, holds, refunds, idempotency, limits) lives
// in [Ledger], which runs against the state a Store loads and hands back the
// change to persist.
//
// A Store must be safe for concurrent use. The storetest package is its
// conformance suite: a Store that passes storetest.Run gives a Ledger all of
// its guarantees. memstore (in memory) and sqlstore (SQLite, PostgreSQL) are
// the stores this module ships.
//
// The shape is load → apply → change set: [Store.Update] loads one account's
// state under that account's lock, the ledger applies an operation to it in
// Go and returns a [Change], and the store writes the change atomically. A
// store may run one operation per transaction, or run many operations
// against the same loaded state and write all their changes at once: apply
// folds each successful change into the State it was given (and leaves it
// untouched when it fails), so a later operation of the same batch sees it.
//
// A store keeps what it persisted for as long as the account: entries,
// buckets, idempotency records and every hold, settled or not (a record
// may name a hold that a replay rebuilds its result from).
type Store interface {
	// Update loads the state q names (see [Query]) under an exclusive lock
	// on q.Account, held until the change is persisted or discarded, and
	// calls apply with it.
	//
	// If apply returns an error, nothing is persisted and Update returns
	// that error unchanged. If apply returns a nil Change, there is nothing
	// to persist and Update returns nil. Otherwise Update persists the
	// Change atomically — all of it or none of it — and returns nil only
	// once it is durable.
	//
	// A store may call apply more than once (for example after a
	// serialization failure), each time with freshly loaded state; only the
	// change of the last call counts. When the account does not exist,
	// State.Account is nil and apply may create it (Change.AccountCreated);
	// two concurrent creations of the same account must not both succeed.
	Update(ctx context.Context, q Query, apply func(*State) (*Change, error)) error

	// View loads the state q names, as Update would, without locking for
	// writing and without persisting anything. The result is the caller's
	// to read and modify.
	View(ctx context.Context, q Query) (*State, error)

	// HoldAccount returns the ID of the account a hold belongs to, or an
	// error wrapping [ErrUnknownHold].
	HoldAccount(ctx context.Context, holdID string) (string, error)

	// Buckets returns the buckets of f.Account, live or not (spent,
	// expired, voided), in increasing (Seq, ID) order after f's cursor, at
	// most f.Limit of them. It returns an error wrapping
	// [ErrUnknownAccount] when the account does not exist.
	Buckets(ctx context.Context, f BucketFilter) ([]Bucket, error)

	// Entries returns the entries of f.Account that match f, in increasing
	// Seq order (decreasing when f.Newest), at most f.Limit of them. It
	// returns an error wrapping [ErrUnknownAccount] when the account does
	// not exist.
	Entries(ctx context.Context, f EntryFilter) ([]Entry, error)

	// DueAccounts returns up to limit IDs of accounts that have an open hold
	// whose Deadline is at or before now, or a bucket with a positive
	// Remaining whose ExpiresAt is set and at or before now ([Hold.DueAt] or
	// [Bucket.DueAt] at now), or whose [Account.RenewsAt] is set and at or
	// before now, or, when warn is positive, a bucket whose expiry warning
	// is due ([Bucket.WarningDueAt] at now with warn). Sweeping calls it;
	// it may return an account that is no longer due.
	DueAccounts(ctx context.Context, now time.Time, warn time.Duration, limit int) ([]string, error)
}

// CommitsLater is implemented by a [Store] whose Update writes inside a
// transaction the caller owns and commits (or rolls back) later, such as
// sqlstore's WithTx. The ledger then never calls Config.OnLowBalance,
// which could report a change that is rolled back: the history's
// balance_low entry, and the feed, report it once committed.
type CommitsLater interface {
	CommitsLater() bool
}

// Query names the state an operation needs.
type Query struct {
	// Account is the account to load and lock.
	Account string
	// Holds are holds the operation names; each one that exists and belongs
	// to Account is loaded, whatever its status.
	Holds []string
	// Buckets are buckets the operation names; each one that exists and
	// belongs to Account is loaded, live or not.
	Buckets []string
	// Keys are idempotency keys; each one recorded on Account is loaded.
	Keys []string
	// Due, when not zero, also loads every open hold of Account whose
	// Deadline is at or before Due ([Hold.DueAt] at Due).
	Due time.Time
}

// State is what a Store loads for a Query.
//
// Buckets holds every live bucket of the account ([Bucket.Live]), every
// bucket named by a Portion of a loaded hold, and the buckets the Query
// named. Holds holds the holds
// the Query named and the due holds. Records holds the idempotency records
// of the Query's keys. Maps are keyed by ID (Records by Key); a store may
// pass nil maps for empty sets.
type State struct {
	Account *Account // nil when the account does not exist
	Buckets map[string]*Bucket
	Holds   map[string]*Hold
	Records map[string]*Record
}

// Change is what one operation changed: the rows to insert or update, the
// entries to append and the idempotency record to insert. A Store persists
// all of it atomically, or none of it.
//
// A Change is never modified once Update's apply returned it, and the
// ledger's State may share its rows (see [State.Fold]): a Store reads it
// and must not modify it; what it keeps past Update, it copies.
type Change struct {
	// Account is the account row after the operation; nil when it did not
	// change. AccountCreated says it is new.
	Account        *Account
	AccountCreated bool
	// NewBuckets are to insert; UpdatedBuckets replace the rows of the same ID.
	NewBuckets     []Bucket
	UpdatedBuckets []Bucket
	// NewHolds are to insert; UpdatedHolds replace the rows of the same ID.
	NewHolds     []Hold
	UpdatedHolds []Hold
	// Entries are to append; history is never updated or deleted.
	Entries []Entry
	// Record, when not nil, is to insert; a record is never updated.
	Record *Record
}

// Record is an idempotency record: the first request made under a key on an
// account, and its result. It is kept for as long as the account.
//
// The result of an operation that made or settled a hold (Reserve, Charge,
// Capture, Release) keeps that hold by its ID only, and a replay rebuilds
// the hold as the operation left it from the hold's row (so a store keeps
// every hold, settled or not, as long as its account), which saves a
// charge writing its hold twice. The record of a Reserve or Charge keeps
// its request by that hold too (the hold has every field of it but the
// TTL): a replay compares the new request with the one rebuilt from the
// hold. Records written by earlier versions, which kept the whole hold and
// the whole request, replay as they are.
//
// An earlier version that meets a record kept this way (during a rolling
// deploy, or after a rollback) writes nothing for it, but does not replay
// it: a Capture or Release fails with a decode error, and a Reserve or
// Charge with an IdempotencyConflictError (the earlier version compares the
// requests byte for byte). Either way the retry was not applied twice; sent
// again to a server running this version, it replays. During such a deploy
// a client must not answer a conflict by retrying under a new key.
type Record struct {
	// Key is the record's key on the account: a caller's key ("k:" and the
	// key) or one the ledger derives ("capture:<hold>", "daily:<day>", …).
	Key string `json:"key"`
	// Operation names the ledger operation ("reserve", "grant", …). Like
	// the rest of the record it is opaque to a store: keep it verbatim.
	Operation string    `json:"operation"`
	Request   []byte    `json:"request"` // the request, canonical JSON (for a Reserve or Charge, by its hold: see above)
	Result    []byte    `json:"result"`  // the result or the business error, JSON
	CreatedAt time.Time `json:"created_at"`
}

// BucketFilter selects buckets of one account, in (Seq, ID) order.
type BucketFilter struct {
	Account string
	// AfterSeq and AfterID are a cursor: only buckets after (AfterSeq,
	// AfterID) in (Seq, ID) order are returned. Zero values start at the
	// first.
	AfterSeq int64
	AfterID  string
	// LiveOnly keeps the buckets that still hold credits ([Bucket.Live]).
	LiveOnly bool
	// RestoredFrom, when set, keeps the buckets whose RestoredFrom is it.
	RestoredFrom string
	// Limit is the maximum number of buckets to return; a Store may cap it
	// but returns at least one bucket when any matches. Zero means no
	// limit.
	Limit int
}

// Match reports whether b passes f's Account, cursor, LiveOnly and
// RestoredFrom.
func (f BucketFilter) Match(b *Bucket) bool {
	if b.Account != f.Account || f.LiveOnly && !b.Live() || f.RestoredFrom != "" && b.RestoredFrom != f.RestoredFrom {
		return false
	}
	return b.Seq > f.AfterSeq || b.Seq == f.AfterSeq && b.ID > f.AfterID
}

// EntryFilter selects entries of one account.
type EntryFilter struct {
	Account string
	// AfterSeq returns entries with Seq > AfterSeq (0: from the first).
	AfterSeq int64
	// BeforeSeq, when positive, returns entries with Seq < BeforeSeq.
	BeforeSeq int64
	// Newest returns the entries newest first: in decreasing Seq order,
	// so that Limit keeps the latest ones.
	Newest bool
	// Limit is the maximum number of entries to return; a Store may cap it
	// but returns at least one entry when any matches. Zero means no limit.
	Limit int
	// Since and Until, when not zero, keep entries with Since <= At < Until.
	Since, Until time.Time
	// Types, when not empty, keeps entries of these types.
	Types []EntryType
}

// Match reports whether e passes f's Account, AfterSeq, BeforeSeq, Since,
// Until and Types.
func (f EntryFilter) Match(e *Entry) bool {
	if e.Account != f.Account || e.Seq <= f.AfterSeq || f.BeforeSeq > 0 && e.Seq >= f.BeforeSeq {
		return false
	}
	if !f.Since.IsZero() && e.At.Before(f.Since) {
		return false
	}
	if !f.Until.IsZero() && !e.At.Before(f.Until) {
		return false
	}
	if len(f.Types) == 0 {
		return true
	}
	for _, t := range f.Types {
		if e.Type == t {
			return true
		}
	}
	return false
}

// Fold applies c to s, as the store will persist it, so that a later
// operation run against s sees it. Ledger operations fold their own change;
// a Store does not need to call it.
//
// s then shares c's rows rather than copying them: a Change is never
// modified once made, and the ledger copies any row of a State before it
// changes it.
func (s *State) Fold(c *Change) {
	if c == nil {
		return
	}
	if c.Account != nil {
		s.Account = c.Account
	}
	if len(c.NewBuckets)+len(c.UpdatedBuckets) > 0 && s.Buckets == nil {
		s.Buckets = map[string]*Bucket{}
	}
	for _, list := range [][]Bucket{c.NewBuckets, c.UpdatedBuckets} {
		for i := range list {
			s.Buckets[list[i].ID] = &list[i]
		}
	}
	if len(c.NewHolds)+len(c.UpdatedHolds) > 0 && s.Holds == nil {
		s.Holds = map[string]*Hold{}
	}
	for _, list := range [][]Hold{c.NewHolds, c.UpdatedHolds} {
		for i := range list {
			s.Holds[list[i].ID] = &list[i]
		}
	}
	if c.Record != nil {
		if s.Records == nil {
			s.Records = map[string]*Record{}
		}
		s.Records[c.Record.Key] = c.Record
	}
}

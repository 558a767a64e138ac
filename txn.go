package credits

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// txn applies one operation to a loaded State. It never writes into the
// State it reads: every row it changes is a copy, and change() turns the
// copies into the Change a Store persists. An operation that fails simply
// drops its txn, so the State stays as it was.
type txn struct {
	l     *Ledger
	st    *State
	now   time.Time
	acct  Account
	isNew bool // the account is created by this operation

	buckets workset[Bucket] // working copies of changed or new buckets
	holds   workset[Hold]
	entries []Entry
	// revoked are voided buckets a release or refund gave credits back
	// to: entry revokes them right after the entry that explains it.
	revoked []string
	// revokedBack counts the credits revoked that way.
	revokedBack Credits

	startSettled   Credits // Available + Held when the operation began
	startThreshold Credits
	low            *LowBalanceEvent
	err            error // the first overflow or broken store contract
}

func newTxn(l *Ledger, st *State, now time.Time) *txn {
	t := &txn{l: l, st: st, now: now}
	if st.Account != nil {
		t.acct = st.Account.Clone()
		t.startSettled, t.startThreshold = settled(&t.acct), t.acct.LowBalanceThreshold
	}
	return t
}

// fail records the first arithmetic or consistency error; the operation
// then returns it and nothing is persisted.
func (t *txn) fail(err error) {
	if t.err == nil {
		t.err = err
	}
}

func (t *txn) add(dst *Credits, d Credits) {
	s, err := dst.Add(d)
	if err != nil {
		t.fail(err)
		return
	}
	*dst = s
}

func (t *txn) sub(dst *Credits, d Credits) {
	s, err := dst.Sub(d)
	if err != nil {
		t.fail(err)
		return
	}
	*dst = s
}

// workset holds the working copies of one kind of row: those the operation
// changed (copied from the loaded State on first write) and those it made,
// in first-touch order, so that a Change is deterministic. An operation
// touches a few rows: they are found by a scan, and by an index built once
// they are many (an expiry of many grants at once).
type workset[T any] struct {
	rows  []workRow[T]
	index map[string]int // by ID, once len(rows) > worksetScan
}

type workRow[T any] struct {
	id    string
	v     *T
	isNew bool
}

const worksetScan = 16

func (w *workset[T]) get(id string) (*T, bool) {
	if w.index != nil {
		if i, ok := w.index[id]; ok {
			return w.rows[i].v, true
		}
		return nil, false
	}
	for i := range w.rows {
		if w.rows[i].id == id {
			return w.rows[i].v, true
		}
	}
	return nil, false
}

func (w *workset[T]) put(id string, v *T, isNew bool) {
	w.rows = append(w.rows, workRow[T]{id, v, isNew})
	switch {
	case w.index != nil:
		w.index[id] = len(w.rows) - 1
	case len(w.rows) > worksetScan:
		w.index = make(map[string]int, 2*len(w.rows))
		for i := range w.rows {
			w.index[w.rows[i].id] = i
		}
	}
}

// visible yields every row as the operation sees it: working copies over
// the loaded rows, then the new ones. (A push iterator rather than a
// returned iter.Seq, whose closure would cost an allocation per loop.)
func (w *workset[T]) visible(loaded map[string]*T, yield func(*T) bool) {
	for id, v := range loaded {
		if c, ok := w.get(id); ok {
			v = c
		}
		if !yield(v) {
			return
		}
	}
	for _, r := range w.rows {
		if r.isNew && !yield(r.v) {
			return
		}
	}
}

// bucket returns the working copy of bucket id, copying it from the State
// on first use, or nil when it was not loaded.
func (t *txn) bucket(id string) *Bucket {
	if b, ok := t.buckets.get(id); ok {
		return b
	}
	src, ok := t.st.Buckets[id]
	if !ok {
		return nil
	}
	b := *src
	t.buckets.put(id, &b, false)
	return &b
}

// hold returns the working copy of hold id, or nil when it was not loaded.
func (t *txn) hold(id string) *Hold {
	if h, ok := t.holds.get(id); ok {
		return h
	}
	src, ok := t.st.Holds[id]
	if !ok || src.Account != t.acct.ID {
		return nil
	}
	h := src.Clone()
	t.holds.put(id, &h, false)
	return &h
}

// visibleBuckets yields the account's buckets; range over it.
func (t *txn) visibleBuckets(yield func(*Bucket) bool) { t.buckets.visible(t.st.Buckets, yield) }

// visibleHolds yields the holds of the account (a store may load a named
// hold of another account; the operation never sees it); range over it.
func (t *txn) visibleHolds(yield func(*Hold) bool) {
	t.holds.visible(t.st.Holds, func(h *Hold) bool { return h.Account != t.acct.ID || yield(h) })
}

// spendOrder sorts buckets in the order credits are taken from them: the
// soonest-expiring first, never-expiring last, the oldest first among equals.
func spendOrder(a, b *Bucket) int {
	switch {
	case a.ExpiresAt.IsZero() && !b.ExpiresAt.IsZero():
		return 1
	case !a.ExpiresAt.IsZero() && b.ExpiresAt.IsZero():
		return -1
	}
	if c := a.ExpiresAt.Compare(b.ExpiresAt); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Seq, b.Seq); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}

// entry appends an entry stamped with the account's balances as they are now.
func (t *txn) entry(e Entry) {
	t.acct.Seq++
	e.Account = t.acct.ID
	e.Seq = t.acct.Seq
	e.Available = t.acct.Available
	e.Held = t.acct.Held
	if e.At.IsZero() {
		e.At = t.now
	}
	t.entries = append(t.entries, e)
	if len(t.revoked) > 0 {
		ids := t.revoked
		t.revoked = nil
		for _, id := range ids {
			t.add(&t.revokedBack, t.revoke(t.bucket(id), "", "credits given back to a voided grant", e.At))
		}
	}
}

// revoke takes what remains of b out of the account (b is a working
// copy), with its void entry under key, at the instant at (zero: now).
func (t *txn) revoke(b *Bucket, key, note string, at time.Time) Credits {
	rem := b.Remaining
	b.Remaining = Credits{}
	t.add(&b.Debited, rem)
	t.sub(&t.acct.Available, rem)
	t.add(&t.acct.Debited, rem)
	t.entry(Entry{Type: EntryVoid, Amount: rem, Bucket: b.ID, Kind: b.Kind, Key: key, Note: note, At: at})
	return rem
}

// newBucket creates a bucket with its credits available. The caller records
// the entry that explains it.
func (t *txn) newBucket(kind GrantKind, amount Credits, expiresAt, at time.Time, restoredFrom, note string) *Bucket {
	b := &Bucket{
		ID:           t.l.newID("grant"),
		Account:      t.acct.ID,
		Kind:         kind,
		Amount:       amount,
		Remaining:    amount,
		ExpiresAt:    expiresAt,
		CreatedAt:    at,
		Seq:          t.acct.Seq + 1, // the entry that explains it comes next
		RestoredFrom: restoredFrom,
		Note:         note,
	}
	t.buckets.put(b.ID, b, true)
	t.add(&t.acct.Available, amount)
	return b
}

// grant adds a new bucket and its grant entry.
func (t *txn) grant(kind GrantKind, amount Credits, expiresAt time.Time, key, note string) Bucket {
	b := t.newBucket(kind, amount, expiresAt, t.now, "", note)
	t.add(&t.acct.Granted, amount)
	t.entry(Entry{Type: EntryGrant, Amount: amount, Bucket: b.ID, Kind: kind, Key: key, Note: note})
	return *b
}

// take removes amount from the live buckets in spending order and returns
// the portions it took, or an *InsufficientCreditsError.
func (t *txn) take(amount Credits) ([]Portion, error) {
	if t.acct.Available.Less(amount) {
		return nil, &InsufficientCreditsError{Account: t.acct.ID, Available: t.acct.Available, Requested: amount}
	}
	var portions []Portion
	need := amount
	for _, b := range t.spendable(nil) {
		if need.IsZero() {
			break
		}
		n := need.Min(b.Remaining)
		w := t.bucket(b.ID)
		t.sub(&w.Remaining, n)
		t.sub(&need, n)
		portions = append(portions, Portion{Bucket: b.ID, Amount: n})
	}
	if !need.IsZero() {
		// The account row says the credits are there but the buckets do not
		// hold them: the store broke its contract (or lost a row).
		t.fail(fmt.Errorf("credits: account %q: available %s but its buckets are short by %s", t.acct.ID, t.acct.Available, need))
		return nil, t.err
	}
	t.sub(&t.acct.Available, amount)
	return portions, nil
}

// spendable returns the live buckets that can be spent from now and pass
// keep (all when nil), in spending order.
func (t *txn) spendable(keep func(*Bucket) bool) []*Bucket {
	var live []*Bucket
	for b := range t.visibleBuckets {
		if b.Live() && !b.DueAt(t.now) && b.VoidedAt.IsZero() && (keep == nil || keep(b)) {
			live = append(live, b)
		}
	}
	slices.SortFunc(live, spendOrder)
	return live
}

// giveBack returns amount to the bucket it was taken from, at instant at.
// When that bucket has expired by then, the credits go into a new bucket of
// the same kind (see Config.RestoreGrace).
func (t *txn) giveBack(bucketID string, amount Credits, at time.Time) {
	if amount.IsZero() {
		return
	}
	b := t.bucket(bucketID)
	if b == nil {
		t.fail(fmt.Errorf("credits: account %q: store did not load bucket %q named by a hold", t.acct.ID, bucketID))
		return
	}
	if !b.VoidedAt.IsZero() {
		// The grant was revoked while these credits were out of it: they
		// come back to it and are revoked with the next entry (the one
		// that explains their return), so the history stays a running sum.
		t.add(&b.Remaining, amount)
		t.add(&t.acct.Available, amount)
		if !slices.Contains(t.revoked, b.ID) {
			t.revoked = append(t.revoked, b.ID)
		}
		return
	}
	if b.expiredAt(at) {
		// The restored credits last RestoreGrace past the original grant's
		// expiry, never longer: credits restored again from a restored
		// grant keep its deadline (and expire at once if it passed).
		expires, from := b.ExpiresAt.Add(t.l.cfg.RestoreGrace), b.ID
		if b.RestoredFrom != "" {
			expires, from = b.ExpiresAt, b.RestoredFrom
		}
		t.newBucket(b.Kind, amount, expires, at, from, "restored: the original grant had expired")
		return
	}
	t.add(&b.Remaining, amount)
	t.add(&t.acct.Available, amount)
}

// expire applies, in the order they fell due, every bucket expiry, hold
// deadline and allowance renewal at or before now: lazy expiry, run before
// every operation. At one instant a grant expires first, then the
// allowance renews (so a rollover sees what the ending period's grants
// lost), then a hold's credits come back. It ends by bringing the
// allowance in line with the account's plan (syncAllowance).
func (t *txn) expire() {
	t.usageWindows()
	// A voided grant never holds credits past the operation that gave them
	// back to it; one that does was written by a release that did not know
	// voids (an earlier version, during a rolling deploy): revoke them now.
	var stray []*Bucket
	for b := range t.visibleBuckets {
		if b.Live() && !b.VoidedAt.IsZero() {
			stray = append(stray, b)
		}
	}
	slices.SortFunc(stray, expiryOrder)
	for _, b := range stray {
		t.revoke(t.bucket(b.ID), "", "credits given back to a voided grant", time.Time{})
	}
	for t.err == nil {
		var due, warn *Bucket
		lead := t.l.cfg.ExpiryWarning
		for b := range t.visibleBuckets {
			if b.DueAt(t.now) && (due == nil || expiryOrder(b, due) < 0) {
				due = b
			}
			if b.WarningDueAt(t.now, lead) && !b.DueAt(t.now) && (warn == nil || expiryOrder(b, warn) < 0) {
				warn = b
			}
		}

		var hold *Hold
		for h := range t.visibleHolds {
			if h.DueAt(t.now) && (hold == nil || deadlineOrder(h, hold) < 0) {
				hold = h
			}
		}
		renewAt, renew := t.renewalDue()
		var warnAt time.Time
		if warn != nil {
			warnAt = warn.ExpiresAt.Add(-lead)
		}
		switch {
		case warn != nil && (due == nil || warnAt.Before(due.ExpiresAt)) && (hold == nil || !hold.Deadline.Before(warnAt)) && (!renew || !renewAt.Before(warnAt)):
			// A warning before whatever else fell due after its instant
			// (a grant that has expired by now is not warned).
			t.warnExpiry(warn, warnAt)
		case due == nil && hold == nil && !renew:
			t.syncAllowance()
			return
		case due != nil && (!renew || !renewAt.Before(due.ExpiresAt)) && (hold == nil || !hold.Deadline.Before(due.ExpiresAt)):
			t.expireBucket(due)
		case renew && (hold == nil || !hold.Deadline.Before(renewAt)):
			t.renew(renewAt)
		default:
			t.expireHold(hold)
		}
	}
}

func expiryOrder(a, b *Bucket) int {
	if c := a.ExpiresAt.Compare(b.ExpiresAt); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Seq, b.Seq); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}

func deadlineOrder(a, b *Hold) int {
	if c := a.Deadline.Compare(b.Deadline); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}

func (t *txn) expireBucket(src *Bucket) {
	b := t.bucket(src.ID)
	rem := b.Remaining
	b.Remaining = Credits{}
	t.add(&b.Expired, rem)
	t.sub(&t.acct.Available, rem)
	t.add(&t.acct.Expired, rem)
	t.entry(Entry{Type: EntryExpiry, Amount: rem, Bucket: b.ID, Kind: b.Kind, At: b.ExpiresAt, Note: "grant expired"})
}

// warnExpiry writes the expiry warning of src, due at at, once. Its
// instant is never before the grant was made (a grant shorter than the
// warning's lead is warned about from its start).
func (t *txn) warnExpiry(src *Bucket, at time.Time) {
	b := t.bucket(src.ID)
	if at.Before(b.CreatedAt) {
		at = b.CreatedAt
	}
	b.WarnedAt = at
	t.entry(Entry{Type: EntryGrantExpiring, Amount: b.Remaining, Bucket: b.ID, Kind: b.Kind, At: at,
		Note: "expires at " + b.ExpiresAt.Format(time.RFC3339)})
}

func (t *txn) expireHold(src *Hold) {
	h := t.hold(src.ID)
	for _, p := range h.Portions {
		t.giveBack(p.Bucket, p.Amount, h.Deadline)
	}
	t.sub(&t.acct.Held, h.Amount)
	t.limitGiveBack(h, h.Amount)
	h.Status = HoldExpired
	h.SettledAt = h.Deadline
	t.entry(Entry{Type: EntryHoldExpired, Amount: h.Amount, Hold: h.ID, Tool: h.Quote.Tool, Member: h.Member, At: h.Deadline, Note: "hold deadline passed"})
}

// changed reports whether the operation changed anything.
func (t *txn) changed() bool {
	return t.isNew || len(t.entries) > 0 || len(t.buckets.rows) > 0 || len(t.holds.rows) > 0 || !accountEqual(&t.acct, t.st.Account)
}

func accountEqual(a, b *Account) bool {
	if b == nil {
		return false
	}
	return a.ID == b.ID && a.Plan == b.Plan && a.Allowance.equal(b.Allowance) && a.Limits.equal(b.Limits) && a.Team == b.Team && slices.Equal(a.Members, b.Members) &&
		a.LowBalanceThreshold == b.LowBalanceThreshold && a.Available == b.Available &&
		a.Held == b.Held && a.Granted == b.Granted && a.Spent == b.Spent && a.Expired == b.Expired && a.Debited == b.Debited && a.Low == b.Low &&
		a.Seq == b.Seq
}

// change collects the txn's copies into a Change. The txn is done: the
// Change takes its rows as they are, without copying them again.
func (t *txn) change() *Change {
	t.acct.RenewsAt = t.renewsAt()
	c := &Change{Account: &t.acct, AccountCreated: t.isNew, Entries: t.entries}
	for _, r := range t.buckets.rows {
		if r.isNew {
			c.NewBuckets = append(c.NewBuckets, *r.v)
		} else if *r.v != *t.st.Buckets[r.id] {
			c.UpdatedBuckets = append(c.UpdatedBuckets, *r.v)
		}
	}
	for _, r := range t.holds.rows {
		if r.isNew {
			c.NewHolds = append(c.NewHolds, *r.v)
		} else {
			c.UpdatedHolds = append(c.UpdatedHolds, *r.v)
		}
	}
	return c
}

// settled is what an account has if every open hold gave its credits
// back: Available + Held (it cannot overflow: both came out of Granted).
func settled(a *Account) Credits { return Credits{units: a.Available.units + a.Held.units} }

// signal ends an operation that moved the account's settled balance
// (Available + Held, so that a hold alone never signals): below the
// threshold while the account was not signalled low (Account.Low), it
// appends a [EntryBalanceLow] entry, marks the account low and keeps the
// event for OnLowBalance; at or above it while marked low, a
// [EntryBalanceRecovered] entry. So the signals alternate, one per
// crossing. An operation that changes the threshold signals nothing (the
// next one that moves the balance reconciles), nor does the account's
// creation.
func (t *txn) signal() {
	th := t.acct.LowBalanceThreshold
	if t.isNew || t.err != nil || th != t.startThreshold {
		return
	}
	now := settled(&t.acct)
	if now == t.startSettled {
		return
	}
	switch low := th.IsPositive() && now.Less(th); {
	case low && !t.acct.Low:
		t.acct.Low = true
		t.entry(Entry{Type: EntryBalanceLow, Note: fmt.Sprintf("available %s + held %s is below the threshold %s", t.acct.Available, t.acct.Held, th)})
		t.low = &LowBalanceEvent{Account: t.acct.ID, Available: t.acct.Available, Held: t.acct.Held, Threshold: th, At: t.now}
	case !low && t.acct.Low:
		t.acct.Low = false
		t.entry(Entry{Type: EntryBalanceRecovered, Note: fmt.Sprintf("available %s + held %s is back at or above the threshold %s", t.acct.Available, t.acct.Held, th)})
	}
}

// lowBalance returns the event signal kept for OnLowBalance, if any.
func (t *txn) lowBalance() *LowBalanceEvent { return t.low }

package storetest

import (
	"slices"
	"time"

	"github.com/creditkit/credits"
)

// The reference model: the ledger's rules written as plainly as possible,
// on int64 millicredits, slices and loops. The state machine runs every
// operation on the model and on the real ledger and compares.

type mBucket struct {
	kind      credits.GrantKind
	remaining int64
	expiresAt time.Time // zero: never
	order     int       // creation order
	restored  bool      // made by giveBack after the original expired
}

func (b *mBucket) expiredAt(t time.Time) bool { return !b.expiresAt.IsZero() && !t.Before(b.expiresAt) }

type mPortion struct {
	b                          *mBucket
	amount, captured, refunded int64
}

type mHold struct {
	id       string
	account  *mAccount
	amount   int64
	portions []mPortion
	status   credits.HoldStatus
	deadline time.Time
	captured int64
	refunded int64
	quote    credits.Quote
	order    int
}

type mOutcome struct {
	request string // what was asked, to tell a replay from a conflict
	result  any
	err     error
	loose   bool // the first result is not known: check only that a replay succeeds
}

type mAccount struct {
	id        string
	plan      string
	threshold int64
	team      bool
	members   []string
	buckets   []*mBucket
	holds     []*mHold
	granted   int64
	spent     int64
	expired   int64
	held      int64
	records   map[string]mOutcome
}

type model struct {
	grace   time.Duration
	counter int
}

func (m *model) next() int { m.counter++; return m.counter }

func (a *mAccount) available() int64 {
	var s int64
	for _, b := range a.buckets {
		s += b.remaining
	}
	return s
}

func (a *mAccount) freePaid() (free, paid int64) {
	for _, b := range a.buckets {
		if b.kind == credits.KindPurchase {
			paid += b.remaining
		} else {
			free += b.remaining
		}
	}
	return free, paid
}

// advance applies every bucket expiry and hold deadline at or before now,
// in the order they fell due (a bucket before a hold at the same instant).
func (m *model) advance(a *mAccount, now time.Time) {
	for {
		var due *mBucket
		for _, b := range a.buckets {
			if b.remaining > 0 && b.expiredAt(now) && (due == nil || b.expiresAt.Before(due.expiresAt) ||
				b.expiresAt.Equal(due.expiresAt) && b.order < due.order) {
				due = b
			}
		}
		var hold *mHold
		for _, h := range a.holds {
			if h.status == credits.HoldOpen && !now.Before(h.deadline) && (hold == nil || h.deadline.Before(hold.deadline) ||
				h.deadline.Equal(hold.deadline) && h.order < hold.order) {
				hold = h
			}
		}
		switch {
		case due == nil && hold == nil:
			return
		case hold == nil || (due != nil && !hold.deadline.Before(due.expiresAt)):
			a.expired += due.remaining
			due.remaining = 0
		default:
			for _, p := range hold.portions {
				m.giveBack(a, p.b, p.amount, hold.deadline)
			}
			a.held -= hold.amount
			hold.status = credits.HoldExpired
		}
	}
}

func (m *model) giveBack(a *mAccount, b *mBucket, amount int64, at time.Time) {
	if amount == 0 {
		return
	}
	if b.expiredAt(at) {
		exp := b.expiresAt.Add(m.grace)
		if b.restored {
			exp = b.expiresAt
		}
		a.buckets = append(a.buckets, &mBucket{kind: b.kind, remaining: amount, expiresAt: exp, order: m.next(), restored: true})
		return
	}
	b.remaining += amount
}

func (m *model) grant(a *mAccount, kind credits.GrantKind, amount int64, expiresAt time.Time) {
	a.buckets = append(a.buckets, &mBucket{kind: kind, remaining: amount, expiresAt: expiresAt, order: m.next()})
	a.granted += amount
}

// take removes amount in spending order, or reports false.
func (m *model) take(a *mAccount, amount int64, now time.Time) ([]mPortion, bool) {
	if a.available() < amount {
		return nil, false
	}
	live := slices.Clone(a.buckets)
	slices.SortStableFunc(live, func(x, y *mBucket) int {
		switch {
		case x.expiresAt.IsZero() != y.expiresAt.IsZero():
			if x.expiresAt.IsZero() {
				return 1
			}
			return -1
		case !x.expiresAt.Equal(y.expiresAt):
			return x.expiresAt.Compare(y.expiresAt)
		}
		return x.order - y.order
	})
	var out []mPortion
	need := amount
	for _, b := range live {
		if need == 0 {
			break
		}
		if b.remaining == 0 {
			continue
		}
		n := min(need, b.remaining)
		b.remaining -= n
		need -= n
		out = append(out, mPortion{b: b, amount: n})
	}
	return out, true
}

func (m *model) capture(a *mAccount, h *mHold, amount int64, now time.Time) {
	need := amount
	for i := range h.portions {
		p := &h.portions[i]
		n := min(need, p.amount)
		p.captured = n
		need -= n
		m.giveBack(a, p.b, p.amount-n, now)
	}
	h.status, h.captured = credits.HoldCaptured, amount
	a.held -= h.amount
	a.spent += amount
}

func (m *model) release(a *mAccount, h *mHold, now time.Time) {
	for _, p := range h.portions {
		m.giveBack(a, p.b, p.amount, now)
	}
	h.status = credits.HoldReleased
	a.held -= h.amount
}

func (m *model) refund(a *mAccount, h *mHold, amount int64, now time.Time) {
	need := amount
	for i := len(h.portions) - 1; i >= 0 && need > 0; i-- {
		p := &h.portions[i]
		n := min(need, p.captured-p.refunded)
		p.refunded += n
		need -= n
		m.giveBack(a, p.b, n, now)
	}
	h.refunded += amount
	a.spent -= amount
}

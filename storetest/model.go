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
	id        string // the ledger's ID, when the machine knows it (its own grants)
	kind      credits.GrantKind
	remaining int64
	expiresAt time.Time // zero: never
	order     int       // creation order
	restored  bool      // made by giveBack after the original expired
	from      *mBucket  // the original, for a restored bucket
	lost      int64     // what it lost when it expired
	debited   int64     // what Debit and VoidGrant took out of it
	voided    bool
}

func (b *mBucket) expiredAt(t time.Time) bool { return !b.expiresAt.IsZero() && !t.Before(b.expiresAt) }

type mPortion struct {
	b                          *mBucket
	amount, captured, refunded int64
}

type mHold struct {
	id       string
	account  *mAccount
	member   string
	created  time.Time
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
	sched     *mSched  // the plan's allowance schedule; nil: none
	limits    *mLimits // the team's member limits; nil: none
	threshold int64
	team      bool
	members   []string
	buckets   []*mBucket
	holds     []*mHold
	granted   int64
	spent     int64
	expired   int64
	debited   int64
	revoked   int64 // credits given back to voided buckets, revoked on return
	held      int64
	records   map[string]mOutcome
}

type model struct {
	grace   time.Duration
	counter int
	plans   map[string]mAllowance // the catalog's allowances, by plan
}

// mLimits are a team's member limits (period "": none) and its members'
// usage in the current day, week and month, kept whatever the limits.
type mLimits struct {
	period  credits.Period
	def     *int64
	members map[string]int64
	windows map[credits.Period]*mWindow
}

// mWindow is the usage in one calendar period.
type mWindow struct {
	start time.Time
	since int // holds of a later order count
	used  map[string]int64
}

var mPeriods = []credits.Period{credits.PeriodDay, credits.PeriodWeek, credits.PeriodMonth}

// used is member's usage in the limits' period (the month without limits).
func (l *mLimits) usedBy(member string) int64 {
	p := l.period
	if p == "" {
		p = credits.PeriodMonth
	}
	return l.windows[p].used[member]
}

// limit is member's limit, or false.
func (l *mLimits) limit(member string) (int64, bool) {
	if l == nil || l.period == "" {
		return 0, false
	}
	if c, ok := l.members[member]; ok {
		return c, true
	}
	if l.def != nil {
		return *l.def, true
	}
	return 0, false
}

// calendarStart is the start of the UTC day, Monday-started week or month
// holding t.
func calendarStart(t time.Time, p credits.Period) time.Time {
	d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	switch p {
	case credits.PeriodWeek:
		for d.Weekday() != time.Monday {
			d = d.Add(-24 * time.Hour)
		}
	case credits.PeriodMonth:
		d = time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	}
	return d
}

// limitBack gives amount of h back to its member's usage in each window
// that counted it (h made since the window started counting).
func (m *model) limitBack(a *mAccount, h *mHold, amount int64) {
	if a.limits == nil || h.member == "" {
		return
	}
	for _, w := range a.limits.windows {
		if h.order > w.since {
			w.used[h.member] -= amount
		}
	}
}

// windows starts a new usage window of each period length the calendar
// has moved on from (a team's usage starts counting when it is created).
func (m *model) windows(a *mAccount, now time.Time) {
	if !a.team {
		return
	}
	if a.limits == nil {
		a.limits = &mLimits{windows: map[credits.Period]*mWindow{}}
	}
	for _, p := range mPeriods {
		if w := a.limits.windows[p]; w == nil || w.start.Before(calendarStart(now, p)) {
			a.limits.windows[p] = &mWindow{start: calendarStart(now, p), since: m.counter, used: map[string]int64{}}
		}
	}
}

// mAllowance is a plan's allowance, as the model knows it.
type mAllowance struct {
	amount, rollover int64
	period           credits.Period
}

// mSched is an account's place in its plan's allowance schedule.
type mSched struct {
	period  credits.Period
	anchor  time.Time
	index   int64
	granted int64
	buckets []*mBucket
}

// start is the start of period k: whole days and weeks from the anchor;
// months by the calendar, clamped to the month's last day, always counted
// from the anchor (so Jan 31 → Feb 28/29 → Mar 31). UTC, the suite's
// DayLocation.
func (s *mSched) start(k int64) time.Time {
	a := s.anchor
	switch s.period {
	case credits.PeriodDay:
		return a.Add(time.Duration(k) * 24 * time.Hour)
	case credits.PeriodWeek:
		return a.Add(time.Duration(k) * 7 * 24 * time.Hour)
	}
	months := int64(a.Month()-1) + k
	y, m := int64(a.Year())+months/12, months%12
	days := []int{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}[m]
	if m == 1 && (y%4 == 0 && y%100 != 0 || y%400 == 0) {
		days = 29
	}
	d := min(a.Day(), days)
	return time.Date(int(y), time.Month(m+1), d, a.Hour(), a.Minute(), a.Second(), a.Nanosecond(), time.UTC)
}

// renew starts the schedule's next period at its start at: up to the
// plan's rollover of what the ending period's grants lost at at carries
// over, then the plan's amount, both expiring at the new period's end
// (even when that end has passed: advance expires them next). A plan with
// no allowance ends the schedule.
func (m *model) renew(a *mAccount, at time.Time) {
	s := a.sched
	var unused int64
	for _, b := range s.buckets {
		if b.expiresAt.Equal(at) {
			unused += b.lost
		}
	}
	s.index++
	s.granted, s.buckets = 0, nil
	pa, ok := m.plans[a.plan]
	if !ok {
		a.sched = nil
		return
	}
	if pa.period != s.period {
		*s = mSched{period: pa.period, anchor: at}
	}
	end := s.start(s.index + 1)
	if carry := min(unused, pa.rollover); carry > 0 {
		m.grant(a, credits.KindPlan, carry, end)
	}
	m.grant(a, credits.KindPlan, pa.amount, end)
	s.granted = pa.amount
	s.buckets = []*mBucket{a.buckets[len(a.buckets)-1]}
}

// sync joins the plan's allowance (a new schedule, the first period in
// full), or grants an upgrade's difference for the current period; a
// period of another length starts at the next renewal.
func (m *model) sync(a *mAccount, now time.Time) {
	pa, ok := m.plans[a.plan]
	if !ok {
		return
	}
	if a.sched == nil {
		a.sched = &mSched{period: pa.period, anchor: now}
		m.grant(a, credits.KindPlan, pa.amount, a.sched.start(1))
		a.sched.granted = pa.amount
		a.sched.buckets = []*mBucket{a.buckets[len(a.buckets)-1]}
		return
	}
	if diff := pa.amount - a.sched.granted; diff > 0 {
		m.grant(a, credits.KindPlan, diff, a.sched.start(a.sched.index+1))
		a.sched.granted = pa.amount
		a.sched.buckets = append(a.sched.buckets, a.buckets[len(a.buckets)-1])
	}
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

// advance applies every bucket expiry, allowance renewal and hold deadline
// at or before now, in the order they fell due (at one instant: a bucket,
// then the renewal, then a hold), then syncs the allowance with the plan.
func (m *model) advance(a *mAccount, now time.Time) {
	m.windows(a, now)
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
		var renewAt time.Time
		renew := false
		if a.sched != nil {
			renewAt = a.sched.start(a.sched.index + 1)
			renew = !now.Before(renewAt)
		}
		// The earliest event; at one instant a bucket, then the renewal,
		// then a hold.
		at, what := time.Time{}, ""
		if hold != nil {
			at, what = hold.deadline, "hold"
		}
		if renew && (what == "" || !at.Before(renewAt)) {
			at, what = renewAt, "renew"
		}
		if due != nil && (what == "" || !at.Before(due.expiresAt)) {
			at, what = due.expiresAt, "bucket"
		}
		switch what {
		case "":
			m.sync(a, now)
			return
		case "bucket":
			a.expired += due.remaining
			due.lost = due.remaining
			due.remaining = 0
		case "renew":
			m.renew(a, at)
		default:
			for _, p := range hold.portions {
				m.giveBack(a, p.b, p.amount, hold.deadline)
			}
			a.held -= hold.amount
			m.limitBack(a, hold, hold.amount)
			hold.status = credits.HoldExpired
		}
	}
}

func (m *model) giveBack(a *mAccount, b *mBucket, amount int64, at time.Time) {
	if amount == 0 {
		return
	}
	if b.voided { // revoked while the credits were out: revoked on return
		b.debited += amount
		a.debited += amount
		a.revoked += amount
		return
	}
	if b.expiredAt(at) {
		exp, from := b.expiresAt.Add(m.grace), b
		if b.restored {
			exp, from = b.expiresAt, b.from
		}
		a.buckets = append(a.buckets, &mBucket{kind: b.kind, remaining: amount, expiresAt: exp, order: m.next(), restored: true, from: from})
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
	return m.takeFrom(a.buckets, amount), true
}

// debit takes up to amount (all of it unless partial) from the buckets
// keep accepts, in spending order, and returns what it took, or false
// when they hold less and the debit is not partial.
func (m *model) debit(a *mAccount, amount int64, partial bool, keep func(*mBucket) bool) (int64, bool) {
	var from []*mBucket
	var there int64
	for _, b := range a.buckets {
		if b.remaining > 0 && keep(b) {
			from = append(from, b)
			there += b.remaining
		}
	}
	if there < amount {
		if !partial {
			return 0, false
		}
		amount = there
	}
	for _, p := range m.takeFrom(from, amount) {
		p.b.debited += p.amount
	}
	a.debited += amount
	return amount, true
}

// void revokes what remains of b, and of the buckets restored from it.
func (m *model) void(a *mAccount, b *mBucket) int64 {
	var n int64
	for _, x := range a.buckets {
		if x == b || x.from == b {
			n += x.remaining
			x.debited += x.remaining
			x.voided, x.remaining = true, 0
		}
	}
	a.debited += n
	return n
}

// takeFrom takes amount from buckets in spending order; they hold it.
func (m *model) takeFrom(buckets []*mBucket, amount int64) []mPortion {
	live := slices.Clone(buckets)
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
	return out
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
	m.limitBack(a, h, h.amount-amount)
}

func (m *model) release(a *mAccount, h *mHold, now time.Time) {
	for _, p := range h.portions {
		m.giveBack(a, p.b, p.amount, now)
	}
	h.status = credits.HoldReleased
	a.held -= h.amount
	m.limitBack(a, h, h.amount)
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
	m.limitBack(a, h, amount)
}

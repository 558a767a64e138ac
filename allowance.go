package credits

import (
	"fmt"
	"slices"
	"time"
)

// AllowanceState is an account's place in its plan's allowance schedule
// (see [Allowance]). The ledger keeps it on the account row; a store
// persists it verbatim.
type AllowanceState struct {
	// Period is the schedule's period length.
	Period Period `json:"period"`
	// Anchor is when the account joined the schedule: the start of period 0.
	Anchor time.Time `json:"anchor"`
	// Index is the current period, which runs from PeriodStart(Index) to
	// PeriodStart(Index+1).
	Index int64 `json:"index"`
	// Granted is the allowance granted for the current period: its renewal
	// and any upgrade's difference (a rollover does not count).
	Granted Credits `json:"granted"`
	// Buckets are the grants of the current period's allowance, whose
	// unused credits may roll over into the next period.
	Buckets []string `json:"buckets,omitempty"`
}

// Clone returns a deep copy of s.
func (s *AllowanceState) Clone() *AllowanceState {
	if s == nil {
		return nil
	}
	c := *s
	c.Buckets = slices.Clone(s.Buckets)
	return &c
}

func (s *AllowanceState) equal(o *AllowanceState) bool {
	if s == nil || o == nil {
		return s == o
	}
	return s.Period == o.Period && s.Anchor.Equal(o.Anchor) && s.Index == o.Index && s.Granted == o.Granted && slices.Equal(s.Buckets, o.Buckets)
}

// PeriodStart returns the start of period k of the schedule, in loc's
// calendar: the anchor plus k days, weeks or calendar months, at the
// anchor's time of day. A month that has no such day ends the period on its
// last day (anchored Jan 31: Feb 28 or 29, Mar 31, Apr 30, …): every start
// is computed from the anchor, so a short month never shifts the later ones.
func (s *AllowanceState) PeriodStart(k int64, loc *time.Location) time.Time {
	return periodStart(s.Anchor, s.Period, k, loc)
}

func periodStart(anchor time.Time, p Period, k int64, loc *time.Location) time.Time {
	a := anchor.In(loc)
	y, m, d := a.Date()
	hh, mm, ss := a.Clock()
	var t time.Time
	switch p {
	case PeriodDay:
		t = time.Date(y, m, d+int(k), hh, mm, ss, a.Nanosecond(), loc)
	case PeriodWeek:
		t = time.Date(y, m, d+7*int(k), hh, mm, ss, a.Nanosecond(), loc)
	default:
		first := time.Date(y, m+time.Month(k), 1, 0, 0, 0, 0, loc)
		last := time.Date(first.Year(), first.Month()+1, 0, 0, 0, 0, 0, loc).Day()
		t = time.Date(first.Year(), first.Month(), min(d, last), hh, mm, ss, a.Nanosecond(), loc)
	}
	return t.UTC()
}

// planAllowance is the allowance of the account's plan in the ledger's
// catalog, or nil.
func (t *txn) planAllowance() *Allowance {
	if t.acct.Plan == "" {
		return nil
	}
	p, ok := t.l.Catalog().plans[t.acct.Plan]
	if !ok {
		return nil
	}
	return p.allowance
}

// renewsAt is when the account's allowance renews next; zero when it has
// none.
func (t *txn) renewsAt() time.Time {
	if s := t.acct.Allowance; s != nil {
		return s.PeriodStart(s.Index+1, t.l.cfg.DayLocation)
	}
	return time.Time{}
}

// renewalDue returns the start of the account's next allowance period when
// it is at or before now.
func (t *txn) renewalDue() (time.Time, bool) {
	s := t.acct.Allowance
	if s == nil {
		return time.Time{}, false
	}
	next := s.PeriodStart(s.Index+1, t.l.cfg.DayLocation)
	return next, !t.now.Before(next)
}

// renew starts the next allowance period, at its start at: the grants of
// the period that ended there expired at that same instant, just before
// (see expire), and up to the plan's RolloverMax of what they lost carries
// over. A period that has already ended by now is granted too, and expires
// in the same pass (see [Allowance]).
func (t *txn) renew(at time.Time) {
	s := t.acct.Allowance.Clone()
	t.acct.Allowance = s
	var unused Credits
	for _, id := range s.Buckets {
		if b, ok := t.buckets.get(id); ok && b.ExpiresAt.Equal(at) {
			t.add(&unused, b.Expired)
		}
	}
	s.Index++
	s.Granted, s.Buckets = Credits{}, nil
	pa := t.planAllowance()
	if pa == nil {
		// The plan gives no allowance (any more): the schedule ends with
		// the period that just ended; joining a plan later starts anew.
		t.acct.Allowance = nil
		return
	}
	if pa.Period != s.Period {
		// The plan's period is of another length (the account changed
		// plan, or the catalog changed it): a new schedule starts here, at
		// the end of the old one's period.
		*s = AllowanceState{Period: pa.Period, Anchor: at}
	}
	end := s.PeriodStart(s.Index+1, t.l.cfg.DayLocation)
	if carry := unused.Min(pa.RolloverMax); carry.IsPositive() {
		t.allowanceGrant(carry, at, end, "allowance rollover", false)
	}
	t.allowanceGrant(pa.Amount, at, end, fmt.Sprintf("%s allowance, period %d", planName(t.acct.Plan), s.Index+1), true)
}

// syncAllowance brings the account's allowance in line with its plan, at
// now: an account on a plan with an allowance and no schedule joins it (a
// new schedule anchored now, the first period granted in full); a plan
// that gives more per period than the current period has had (an upgrade)
// grants the difference now, until the period's end. Nothing else changes
// before the current period ends: a plan that gives less (a downgrade) or
// none, or whose period is of another length, takes effect at the next
// renewal (see renew), so no sequence of plan or catalog changes ever
// grants a period more than the most its plans gave, and moving back
// within a period grants only what it has not had.
func (t *txn) syncAllowance() {
	pa := t.planAllowance()
	if pa == nil {
		return
	}
	s := t.acct.Allowance
	if s == nil {
		s = &AllowanceState{Period: pa.Period, Anchor: t.now}
		t.acct.Allowance = s
		end := s.PeriodStart(1, t.l.cfg.DayLocation)
		t.allowanceGrant(pa.Amount, t.now, end, fmt.Sprintf("%s allowance, period 1", planName(t.acct.Plan)), true)
		return
	}
	diff, err := pa.Amount.Sub(s.Granted)
	if err != nil || !diff.IsPositive() {
		return
	}
	t.acct.Allowance = s.Clone()
	end := s.PeriodStart(s.Index+1, t.l.cfg.DayLocation)
	t.allowanceGrant(diff, t.now, end, fmt.Sprintf("%s allowance, period %d: the upgrade's difference", planName(t.acct.Plan), s.Index+1), true)
}

// allowanceGrant grants amount of kind plan at instant at, expiring at
// end; counted says it is part of the period's allowance (which may roll
// over), not a rollover.
func (t *txn) allowanceGrant(amount Credits, at, end time.Time, note string, counted bool) {
	b := t.newBucket(KindPlan, amount, end, at, "", note)
	t.add(&t.acct.Granted, amount)
	t.entry(Entry{Type: EntryGrant, Amount: amount, Bucket: b.ID, Kind: KindPlan, At: at, Note: note})
	if counted {
		s := t.acct.Allowance
		t.add(&s.Granted, amount)
		s.Buckets = append(s.Buckets, b.ID)
	}
}

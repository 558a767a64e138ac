package credits

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// MemberLimits are a team account's spending limits per member and every
// member's usage. The limits (Period, Default, Members) cap what a member
// may spend per calendar period (a day from midnight, a week from Monday, a
// month from the 1st, in Config.DayLocation); there are none when Period is
// "". The usage is kept for every team account, limits or not, in the
// current day, week and month at once, so that setting or changing limits
// (another period length included) judges the spending already done in the
// period exactly. A member's usage counts what their open holds hold and
// what they were charged; a release, an expired hold, the unused part of a
// capture and a refund give it back when the hold was made within the
// window. The ledger keeps it on the account row; a store persists it
// verbatim.
type MemberLimits struct {
	// Period is the limits' period, "" when the team has no limits.
	Period Period `json:"period,omitempty"`
	// Default is the limit of members without one of their own; nil means
	// they have none.
	Default *Credits `json:"default,omitempty"`
	// Members are the members' own limits. Zero means the member may not
	// spend.
	Members map[string]Credits `json:"members,omitempty"`
	// Day, Week and Month are the usage in the current calendar day, week
	// and month.
	Day   UsageWindow `json:"day"`
	Week  UsageWindow `json:"week"`
	Month UsageWindow `json:"month"`
}

// UsageWindow is the members' usage in one calendar period.
type UsageWindow struct {
	// Start is the period's start.
	Start time.Time `json:"start"`
	// SinceSeq is the account's Seq when the window started counting (its
	// first operation in the period): the holds counted are those opened
	// by later entries ([Hold.Seq]), so a hold made before is never given
	// back to a usage it was not counted in.
	SinceSeq int64 `json:"since_seq"`
	// Used is each member's usage in the window.
	Used map[string]Credits `json:"used,omitempty"`
}

func (w UsageWindow) clone() UsageWindow {
	w.Used = maps.Clone(w.Used)
	return w
}

func (w *UsageWindow) equal(o *UsageWindow) bool {
	return w.Start.Equal(o.Start) && w.SinceSeq == o.SinceSeq && maps.Equal(w.Used, o.Used)
}

// Clone returns a deep copy of m.
func (m *MemberLimits) Clone() *MemberLimits {
	if m == nil {
		return nil
	}
	c := *m
	if m.Default != nil {
		c.Default = new(*m.Default)
	}
	c.Members = maps.Clone(m.Members)
	c.Day, c.Week, c.Month = m.Day.clone(), m.Week.clone(), m.Month.clone()
	return &c
}

// Window returns the usage window of period p (the month for "").
func (m *MemberLimits) Window(p Period) *UsageWindow {
	switch p {
	case PeriodDay:
		return &m.Day
	case PeriodWeek:
		return &m.Week
	}
	return &m.Month
}

// Limit returns member's limit, and false when they have none.
func (m *MemberLimits) Limit(member string) (Credits, bool) {
	if m == nil || m.Period == "" {
		return Credits{}, false
	}
	if c, ok := m.Members[member]; ok {
		return c, true
	}
	if m.Default != nil {
		return *m.Default, true
	}
	return Credits{}, false
}

func (m *MemberLimits) equal(o *MemberLimits) bool {
	if m == nil || o == nil {
		return m == o
	}
	return m.sameLimits(o) && m.Day.equal(&o.Day) && m.Week.equal(&o.Week) && m.Month.equal(&o.Month)
}

// calendarStart is the start of the calendar period p that holds t, in loc:
// midnight, the Monday at midnight, or the 1st at midnight.
func calendarStart(t time.Time, p Period, loc *time.Location) time.Time {
	l := t.In(loc)
	y, m, d := l.Date()
	switch p {
	case PeriodWeek:
		d -= (int(l.Weekday()) + 6) % 7
	case PeriodMonth:
		d = 1
	}
	return time.Date(y, m, d, 0, 0, 0, 0, loc).UTC()
}

// MemberLimitError reports a spend that would take a team member over
// their limit. It matches [ErrMemberLimit].
type MemberLimitError struct {
	Account string
	Member  string
	Period  Period
	Limit   Credits // the member's limit per period
	Used    Credits // their usage in the current period, open holds included
	// Requested is what the refused spend asked for.
	Requested Credits
}

// Remaining is what is left of the member's limit in the current period.
func (e *MemberLimitError) Remaining() Credits {
	r, err := e.Limit.Sub(e.Used)
	if err != nil || r.IsNegative() {
		return Credits{}
	}
	return r
}

func (e *MemberLimitError) Error() string {
	return fmt.Sprintf("credits: member %q of team %q may spend %s per %s: %s used, %s remaining, %s requested",
		e.Member, e.Account, e.Limit, e.Period, e.Used, e.Remaining(), e.Requested)
}

// Is reports whether target is [ErrMemberLimit].
func (e *MemberLimitError) Is(target error) bool { return target == ErrMemberLimit }

var usagePeriods = [...]Period{PeriodDay, PeriodWeek, PeriodMonth}

// usageWindows starts counting a team account's usage, and starts a new
// window of each period length the calendar has moved on from.
func (t *txn) usageWindows() {
	if !t.acct.Team {
		return
	}
	m := t.acct.Limits
	for _, p := range usagePeriods {
		start := calendarStart(t.now, p, t.l.cfg.DayLocation)
		if m != nil && !m.Window(p).Start.Before(start) {
			continue
		}
		if m == t.acct.Limits {
			m = m.Clone()
			if m == nil {
				m = &MemberLimits{}
			}
			t.acct.Limits = m
		}
		*m.Window(p) = UsageWindow{Start: start, SinceSeq: t.acct.Seq}
	}
}

// checkLimit refuses a spend of amount by member that would take them over
// their limit.
func (t *txn) checkLimit(member string, amount Credits) error {
	m := t.acct.Limits
	limit, ok := m.Limit(member)
	if !ok || member == "" {
		return nil
	}
	used := m.Window(m.Period).Used[member]
	if after, err := used.Add(amount); err != nil || limit.Less(after) {
		return &MemberLimitError{Account: t.acct.ID, Member: member, Period: m.Period, Limit: limit, Used: used, Requested: amount}
	}
	return nil
}

// useLimit counts a new hold or charge against its member's usage.
func (t *txn) useLimit(h *Hold) {
	if t.acct.Limits == nil || h.Member == "" {
		return
	}
	m := t.acct.Limits.Clone()
	for _, p := range usagePeriods {
		w := m.Window(p)
		u := w.Used[h.Member]
		t.add(&u, h.Amount)
		if w.Used == nil {
			w.Used = map[string]Credits{}
		}
		w.Used[h.Member] = u
	}
	t.acct.Limits = m
}

// limitGiveBack returns amount of hold h to its member's usage in each
// window that counted it (h opened since the window started counting).
func (t *txn) limitGiveBack(h *Hold, amount Credits) {
	if t.acct.Limits == nil || h.Member == "" || amount.IsZero() {
		return
	}
	m := t.acct.Limits.Clone()
	for _, p := range usagePeriods {
		w := m.Window(p)
		if h.Seq <= w.SinceSeq {
			continue
		}
		u := w.Used[h.Member]
		t.sub(&u, amount)
		if u.IsNegative() {
			t.fail(fmt.Errorf("credits: account %q: member %q's usage would go negative", t.acct.ID, h.Member))
			return
		}
		if w.Used == nil {
			w.Used = map[string]Credits{}
		}
		w.Used[h.Member] = u
	}
	t.acct.Limits = m
}

// MemberLimitsRequest sets the spending limits of a team account's
// members, replacing the ones it had.
type MemberLimitsRequest struct {
	Account string `json:"account"`
	// Period is "day", "week" or "month"; required when any limit is set.
	Period Period `json:"period,omitempty"`
	// Default is the limit of members without one of their own; nil: none.
	Default *Credits `json:"default,omitempty"`
	// Members are limits of named members (zero: they may not spend).
	// Each must be a member of the team.
	Members map[string]Credits `json:"members,omitempty"`
	// Key makes the change idempotent. Required.
	Key string `json:"-"`
}

// MemberLimitsResult is the outcome of SetMemberLimits.
type MemberLimitsResult struct {
	// Account is the account after the change; its Limits hold the limits
	// and the members' usage.
	Account Account `json:"account"`
	// Changed says the limits changed (and an entry says how).
	Changed bool `json:"changed"`
	Replay
}

// SetMemberLimits replaces the spending limits of a team account's
// members, and appends an [EntryAccount] entry saying what changed. The
// members' usage is kept for every team account whatever its limits, so
// new limits (of any period length) judge the spending already done in
// their current period, open holds included. No limits at all (no Default,
// no Members) removes them. Bad input (not a team, a negative limit, an
// unknown period, a limit for someone who is not a member) is refused with
// nothing written. To change one member's limit, send the whole set again;
// the idempotency key makes the change exact under retries.
func (l *Ledger) SetMemberLimits(ctx context.Context, req MemberLimitsRequest) (MemberLimitsResult, error) {
	if err := checkRef("account", req.Account); err != nil {
		return MemberLimitsResult{}, err
	}
	if err := checkKey(req.Key); err != nil {
		return MemberLimitsResult{}, err
	}
	none := req.Default == nil && len(req.Members) == 0
	switch {
	case none && req.Period != "":
		return MemberLimitsResult{}, fieldErr("period", "%q is given without any limit", truncate(string(req.Period)))
	case !none && !req.Period.valid():
		return MemberLimitsResult{}, fieldErr("period", "%q is not day, week or month", truncate(string(req.Period)))
	case req.Default != nil && req.Default.IsNegative():
		return MemberLimitsResult{}, amountErr("default", "is negative: %s", *req.Default)
	case len(req.Members) > maxTeamMembers:
		return MemberLimitsResult{}, fieldErr("members", "has limits for %d members, more than %d", len(req.Members), maxTeamMembers)
	}
	for _, m := range slices.Sorted(maps.Keys(req.Members)) {
		if err := checkRef("members", m); err != nil {
			return MemberLimitsResult{}, err
		}
		if c := req.Members[m]; c.IsNegative() {
			return MemberLimitsResult{}, amountErr("members."+m, "is negative: %s", c)
		}
	}
	req.Members = maps.Clone(req.Members)
	if len(req.Members) == 0 {
		req.Members = nil
	}
	op := operation{name: opLimits, key: keyOf(req.Key), userKey: true, request: req, query: Query{Account: req.Account}}
	return mutate(ctx, l, op, func(t *txn) (MemberLimitsResult, error) {
		if !t.acct.Team {
			return MemberLimitsResult{}, fieldErr("account", "%q is not a team: limits are per team member", req.Account)
		}
		for m := range req.Members {
			if !t.acct.IsMember(m) {
				return MemberLimitsResult{}, fmt.Errorf("%w: a limit for %q, who is not a member of team %q", ErrNotMember, m, req.Account)
			}
		}
		next := t.acct.Limits.Clone() // the usage, kept whatever the limits
		if next == nil {
			t.fail(fmt.Errorf("credits: team account %q has no usage windows", req.Account))
			return MemberLimitsResult{}, nil
		}
		next.Period, next.Default, next.Members = req.Period, nil, req.Members
		if req.Default != nil {
			next.Default = new(*req.Default)
		}
		if next.sameLimits(t.acct.Limits) {
			return MemberLimitsResult{Account: t.acct.Clone()}, nil
		}
		t.acct.Limits = next
		t.entry(Entry{Type: EntryAccount, Plan: t.acct.Plan, Key: req.Key, Note: truncateNote("member limits: " + next.describe())})
		return MemberLimitsResult{Account: t.acct.Clone(), Changed: true}, nil
	})
}

// sameLimits reports whether m and o set the same limits (usage aside).
func (m *MemberLimits) sameLimits(o *MemberLimits) bool {
	if m == nil || o == nil {
		return m == o
	}
	return m.Period == o.Period && (m.Default == nil) == (o.Default == nil) && (m.Default == nil || *m.Default == *o.Default) &&
		maps.Equal(m.Members, o.Members)
}

// describe says what m sets, deterministically.
func (m *MemberLimits) describe() string {
	if m.Period == "" {
		return "none"
	}
	var parts []string
	if m.Default != nil {
		parts = append(parts, fmt.Sprintf("default %s", *m.Default))
	}
	for _, k := range slices.Sorted(maps.Keys(m.Members)) {
		parts = append(parts, fmt.Sprintf("%s %s", k, m.Members[k]))
	}
	return strings.Join(parts, ", ") + " per " + string(m.Period)
}

// MemberUsage is one member's spending in the current period, against
// their limit.
type MemberUsage struct {
	Member string `json:"member"`
	// Period is the period of Used: the team's limits' period, or the
	// month when the team has no limits.
	Period Period `json:"period"`
	// Limit is nil when the member has none; DefaultLimit says it is the
	// team's default rather than the member's own.
	Limit        *Credits `json:"limit,omitempty"`
	DefaultLimit bool     `json:"default_limit,omitempty"`
	// Used counts open holds and charges in the period, less what came back.
	Used Credits `json:"used"`
	// Remaining is Limit − Used (never below zero); nil without a limit.
	Remaining *Credits `json:"remaining,omitempty"`
}

// usage lists every member of the team with their usage now and limit.
func (t *txn) usage() []MemberUsage {
	m := t.acct.Limits
	out := make([]MemberUsage, 0, len(t.acct.Members))
	for _, member := range t.acct.Members {
		u := MemberUsage{Member: member, Period: PeriodMonth}
		if m == nil {
			out = append(out, u)
			continue
		}
		if m.Period != "" {
			u.Period = m.Period
		}
		u.Used = m.Window(u.Period).Used[member]
		if limit, ok := m.Limit(member); ok {
			_, own := m.Members[member]
			r := (&MemberLimitError{Limit: limit, Used: u.Used}).Remaining()
			u.Limit, u.Remaining, u.DefaultLimit = &limit, &r, !own
		}
		out = append(out, u)
	}
	return out
}

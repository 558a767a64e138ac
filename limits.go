package credits

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// MemberLimits caps what each member of a team account may spend per
// calendar period (a day from midnight, a week from Monday, a month from
// the 1st, in Config.DayLocation). A member's usage counts what their open
// holds hold and what they were charged in the period; a release, an
// expired hold, the unused part of a capture and a refund give it back when
// the hold was made in the current period. The ledger keeps it on the
// account row; a store persists it verbatim.
type MemberLimits struct {
	Period Period `json:"period"`
	// Default is the limit of members without one of their own; nil means
	// they have none.
	Default *Credits `json:"default,omitempty"`
	// Members are the members' own limits. Zero means the member may not
	// spend.
	Members map[string]Credits `json:"members,omitempty"`
	// PeriodStart is the start of the current period.
	PeriodStart time.Time `json:"period_start"`
	// SinceSeq is the account's Seq when the usage below started counting
	// (the first operation of the period, or the limits being set): the
	// holds counted are those opened by later entries ([Hold.Seq]), so a
	// hold made before is never given back to a usage it was not counted
	// in.
	SinceSeq int64 `json:"since_seq"`
	// Used is each member's usage since SinceSeq.
	Used map[string]Credits `json:"used,omitempty"`
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
	c.Used = maps.Clone(m.Used)
	return &c
}

// Limit returns member's limit, and false when they have none.
func (m *MemberLimits) Limit(member string) (Credits, bool) {
	if m == nil {
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
	return m.Period == o.Period && (m.Default == nil) == (o.Default == nil) && (m.Default == nil || *m.Default == *o.Default) &&
		maps.Equal(m.Members, o.Members) && m.PeriodStart.Equal(o.PeriodStart) && m.SinceSeq == o.SinceSeq && maps.Equal(m.Used, o.Used)
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

// limitsPeriod starts a new usage period when the calendar has moved on
// since the usage started counting.
func (t *txn) limitsPeriod() {
	m := t.acct.Limits
	if m == nil {
		return
	}
	if start := calendarStart(t.now, m.Period, t.l.cfg.DayLocation); m.PeriodStart.Before(start) {
		c := m.Clone()
		c.PeriodStart, c.SinceSeq, c.Used = start, t.acct.Seq, nil
		t.acct.Limits = c
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
	used := m.Used[member]
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
	u := m.Used[h.Member]
	t.add(&u, h.Amount)
	if m.Used == nil {
		m.Used = map[string]Credits{}
	}
	m.Used[h.Member] = u
	t.acct.Limits = m
}

// limitGiveBack returns amount of hold h to its member's usage, when the
// hold was counted in it (opened since the usage started counting).
func (t *txn) limitGiveBack(h *Hold, amount Credits) {
	m := t.acct.Limits
	if m == nil || h.Member == "" || amount.IsZero() || h.Seq <= m.SinceSeq {
		return
	}
	u := m.Used[h.Member]
	m = m.Clone()
	if m.Used == nil {
		m.Used = map[string]Credits{}
	}
	t.sub(&u, amount)
	if u.IsNegative() {
		t.fail(fmt.Errorf("credits: account %q: member %q's usage would go negative", t.acct.ID, h.Member))
		return
	}
	m.Used[h.Member] = u
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

// SetMemberLimits replaces the spending limits of a team account's
// members, and appends an [EntryAccount] entry saying what changed. Usage
// already counted in the current period stays counted when the period
// length is unchanged; a new period length (or limits set for the first
// time) starts counting now. No limits at all (no Default, no Members)
// removes them. Bad input (not a team, a negative limit, an unknown period,
// a limit for someone who is not a member) is refused with nothing written.
func (l *Ledger) SetMemberLimits(ctx context.Context, req MemberLimitsRequest) (Account, error) {
	if err := checkRef("Account", req.Account); err != nil {
		return Account{}, err
	}
	if err := checkKey(req.Key); err != nil {
		return Account{}, err
	}
	none := req.Default == nil && len(req.Members) == 0
	switch {
	case none && req.Period != "":
		return Account{}, invalid("Period %q given without any limit", truncate(string(req.Period)))
	case !none && !req.Period.valid():
		return Account{}, invalid("Period %q is not day, week or month", truncate(string(req.Period)))
	case req.Default != nil && req.Default.IsNegative():
		return Account{}, fmt.Errorf("%w: negative Default limit %s", ErrInvalidAmount, *req.Default)
	case len(req.Members) > maxTeamMembers:
		return Account{}, invalid("limits for %d members, more than %d", len(req.Members), maxTeamMembers)
	}
	for _, m := range slices.Sorted(maps.Keys(req.Members)) {
		if err := checkRef("Members key", m); err != nil {
			return Account{}, err
		}
		if c := req.Members[m]; c.IsNegative() {
			return Account{}, fmt.Errorf("%w: negative limit %s for member %q", ErrInvalidAmount, c, m)
		}
	}
	req.Members = maps.Clone(req.Members)
	if len(req.Members) == 0 {
		req.Members = nil
	}
	op := operation{name: opLimits, key: keyOf(req.Key), userKey: true, request: req, query: Query{Account: req.Account}}
	res, err := mutate(ctx, l, op, func(t *txn) (accountOnly, error) {
		if !t.acct.Team {
			return accountOnly{}, invalid("account %q is not a team: limits are per team member", req.Account)
		}
		for m := range req.Members {
			if !t.acct.IsMember(m) {
				return accountOnly{}, fmt.Errorf("%w: a limit for %q, who is not a member of team %q", ErrNotMember, m, req.Account)
			}
		}
		old := t.acct.Limits
		var next *MemberLimits
		if !none {
			next = &MemberLimits{Period: req.Period, Members: req.Members,
				PeriodStart: calendarStart(t.now, req.Period, l.cfg.DayLocation), SinceSeq: t.acct.Seq}
			if req.Default != nil {
				next.Default = new(*req.Default)
			}
			if old != nil && old.Period == req.Period {
				next.PeriodStart, next.SinceSeq, next.Used = old.PeriodStart, old.SinceSeq, maps.Clone(old.Used)
			}
		}
		if next.sameLimits(old) {
			return accountOnly{Account: t.acct.Clone()}, nil
		}
		t.acct.Limits = next
		t.entry(Entry{Type: EntryAccount, Plan: t.acct.Plan, Key: req.Key, Note: truncateNote("member limits: " + next.describe())})
		return accountOnly{Account: t.acct.Clone()}, nil
	})
	return res.Account, err
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
	if m == nil {
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

// MemberUsage is one member's spending against their limit in the current
// period.
type MemberUsage struct {
	Member string `json:"member"`
	// Limit is nil when the member has none.
	Limit *Credits `json:"limit,omitempty"`
	// Used counts open holds and charges, less what came back.
	Used Credits `json:"used"`
	// Remaining is Limit − Used (never below zero); nil without a limit.
	Remaining *Credits `json:"remaining,omitempty"`
}

// usage lists every member of the team with their limit and usage now.
func (t *txn) usage() []MemberUsage {
	m := t.acct.Limits
	out := make([]MemberUsage, 0, len(t.acct.Members))
	for _, member := range t.acct.Members {
		u := MemberUsage{Member: member}
		if m != nil {
			u.Used = m.Used[member]
		}
		if limit, ok := m.Limit(member); ok {
			r := (&MemberLimitError{Limit: limit, Used: u.Used}).Remaining()
			u.Limit, u.Remaining = &limit, &r
		}
		out = append(out, u)
	}
	return out
}

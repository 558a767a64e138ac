package credits

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Balance is an account's balance at one instant.
type Balance struct {
	Account string `json:"account"`
	// Plan is the plan the account's quotes are priced with ("" for none).
	Plan string `json:"plan,omitempty"`
	// RenewsAt is when the plan's allowance renews next; zero when the
	// account has none.
	RenewsAt time.Time `json:"renews_at,omitzero"`
	// Available is what can be spent now. It never goes below zero.
	Available Credits `json:"available"`
	// Held is reserved by running jobs.
	Held Credits `json:"held"`
	// Free and Paid split Available: purchased credits are paid, every
	// other grant kind is free.
	Free Credits `json:"free"`
	Paid Credits `json:"paid"`
	// Granted = Available + Held + Spent + Expired + Debited.
	Granted Credits `json:"granted"`
	Spent   Credits `json:"spent"`
	Expired Credits `json:"expired"`
	// Debited is what Debit and VoidGrant took out.
	Debited Credits `json:"debited"`
	// NextExpiry is the soonest instant some available credits expire, and
	// how many; nil when none of the available credits expire.
	NextExpiry *Expiry `json:"next_expiry,omitempty"`
	// Low reports that the settled balance (Available + Held) is below the
	// account's LowBalanceThreshold, the rule of the balance_low signal.
	Low       bool      `json:"low,omitempty"`
	Threshold Credits   `json:"threshold"`
	AsOf      time.Time `json:"as_of"`
}

// Expiry is an amount of credits that expires at one instant.
type Expiry struct {
	At     time.Time `json:"at"`
	Amount Credits   `json:"amount"`
}

// projected loads q's state and applies, without storing anything, what
// fell due by now (expiries, renewals), as every read shows the account:
// the stored rows catch up on the next write or sweep.
func (l *Ledger) projected(ctx context.Context, q Query) (*txn, error) {
	now := l.now()
	q.Due = now
	st, err := l.store.View(ctx, q)
	if err != nil {
		return nil, err
	}
	if st.Account == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownAccount, q.Account)
	}
	t := newTxn(l, st, now)
	t.expire()
	return t, t.err
}

// Balance returns the account's balance as of now, with every expiry that
// fell due applied (the stored rows catch up on the next write or sweep).
func (l *Ledger) Balance(ctx context.Context, account string) (Balance, error) {
	if err := checkRef("account", account); err != nil {
		return Balance{}, err
	}
	t, err := l.projected(ctx, Query{Account: account})
	if err != nil {
		return Balance{}, err
	}
	now := t.now
	a := t.acct
	b := Balance{RenewsAt: t.renewsAt(),
		Account: a.ID, Plan: a.Plan, Available: a.Available, Held: a.Held, Granted: a.Granted, Spent: a.Spent,
		Expired: a.Expired, Debited: a.Debited, Threshold: a.LowBalanceThreshold, AsOf: now,
		Low: a.LowBalanceThreshold.IsPositive() && settled(&a).Less(a.LowBalanceThreshold),
	}
	for bk := range t.visibleBuckets {
		if !bk.Live() {
			continue
		}
		if bk.Kind.Paid() {
			t.add(&b.Paid, bk.Remaining)
		} else {
			t.add(&b.Free, bk.Remaining)
		}
		if bk.ExpiresAt.IsZero() {
			continue
		}
		switch {
		case b.NextExpiry == nil || bk.ExpiresAt.Before(b.NextExpiry.At):
			b.NextExpiry = &Expiry{At: bk.ExpiresAt, Amount: bk.Remaining}
		case bk.ExpiresAt.Equal(b.NextExpiry.At):
			t.add(&b.NextExpiry.Amount, bk.Remaining)
		}
	}
	return b, t.err
}

// HistoryRequest asks for one page of an account's history.
type HistoryRequest struct {
	Account string
	// After keeps entries with Seq > After: the cursor of oldest-first
	// pages (zero starts at the first entry).
	After int64
	// Newest lists the newest entries first. Before, when positive, keeps
	// entries with Seq < Before: the cursor of newest-first pages (zero
	// starts at the latest entry).
	Newest bool
	Before int64
	// Limit is the page size; zero means 50, at most 1000.
	Limit int
	// Types, when not empty, keeps entries of these types.
	Types []EntryType
	// Since and Until, when not zero, keep entries with Since <= At < Until.
	Since, Until time.Time
}

// HistoryPage is one page of history.
type HistoryPage struct {
	Entries []Entry `json:"entries"`
	// Next is the cursor of the next page — its After, or its Before when
	// Newest — and zero when this is the last.
	Next int64 `json:"next,omitempty"`
}

// History returns a page of an account's entries, oldest first (or newest
// first), filtered by type and time. Each entry about a hold or charge
// carries its Job: the key of the Reserve, Run or Charge that made it.
// Entries are immutable: a page read twice is the same.
func (l *Ledger) History(ctx context.Context, req HistoryRequest) (HistoryPage, error) {
	if err := checkRef("account", req.Account); err != nil {
		return HistoryPage{}, err
	}
	limit := req.Limit
	switch {
	case req.After < 0 || req.Before < 0:
		return HistoryPage{}, fieldErr("after", "or before is negative")
	case !req.Since.IsZero() && !req.Until.IsZero() && req.Until.Before(req.Since):
		return HistoryPage{}, fieldErr("until", "is before since")
	case len(req.Types) > 16:
		return HistoryPage{}, fieldErr("types", "has more than 16 entries")
	case !knownTypes(req.Types):
		return HistoryPage{}, fieldErr("types", "names an entry type that does not exist")
	case limit == 0:
		limit = 50
	case limit < 0 || limit > 1000:
		return HistoryPage{}, fieldErr("limit", "%d is not within 1..1000", limit)
	}
	f := EntryFilter{Account: req.Account, AfterSeq: req.After, BeforeSeq: req.Before, Newest: req.Newest,
		Types: req.Types, Since: req.Since, Until: req.Until}
	// A store may return fewer entries than asked: read until the page and
	// one more are there, or the history ends.
	var es []Entry
	for len(es) <= limit {
		f.Limit = limit + 1 - len(es)
		more, err := l.store.Entries(ctx, f)
		if err != nil {
			return HistoryPage{}, err
		}
		if len(more) == 0 {
			break
		}
		es = append(es, more...)
		if last := more[len(more)-1].Seq; f.Newest {
			f.BeforeSeq = last
		} else {
			f.AfterSeq = last
		}
	}
	var p HistoryPage
	if len(es) > limit {
		es = es[:limit]
		p.Next = es[limit-1].Seq
	}
	if err := l.jobs(ctx, req.Account, es); err != nil {
		return HistoryPage{}, err
	}
	p.Entries = es
	return p, nil
}

// jobs fills in the Job of every entry about a hold, from the hold.
func (l *Ledger) jobs(ctx context.Context, account string, es []Entry) error {
	var ids []string
	for i := range es {
		if es[i].Hold != "" && !slices.Contains(ids, es[i].Hold) {
			ids = append(ids, es[i].Hold)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	st, err := l.store.View(ctx, Query{Account: account, Holds: ids})
	if err != nil {
		return err
	}
	for i := range es {
		if h := st.Holds[es[i].Hold]; h != nil {
			es[i].Job = h.Key
		}
	}
	return nil
}

// GroupBy is how a spending report groups charges.
type GroupBy string

// The groupings of a spending report.
const (
	ByTool   GroupBy = "tool"
	ByDay    GroupBy = "day"    // calendar days of Config.DayLocation, "2006-01-02"
	ByMember GroupBy = "member" // the member a team charge is attributed to
)

// SpendingRequest asks for an account's spending over [Since, Until).
type SpendingRequest struct {
	Account string
	// Since and Until bound the report; zero means unbounded.
	Since, Until time.Time
	// By is the grouping; zero means ByTool.
	By GroupBy
}

// SpendLine is the spending of one group. A refund counts in the group of
// the charge it reverses, on the day it was made.
type SpendLine struct {
	Group    string  `json:"group"`
	Charged  Credits `json:"charged"`
	Refunded Credits `json:"refunded"`
	Net      Credits `json:"net"`
	// Charges counts captures and one-step charges.
	Charges int `json:"charges"`
}

// SpendingReport is spending grouped one way, with the total.
type SpendingReport struct {
	Account string      `json:"account"`
	By      GroupBy     `json:"by"`
	Lines   []SpendLine `json:"lines"` // sorted by Group
	Total   SpendLine   `json:"total"`
	// Members, in a report by member of a team account, is every member's
	// usage against their spending limit in the current period (see
	// [MemberLimits]), as of now, whatever the report's range.
	Members []MemberUsage `json:"members,omitempty"`
}

// Spending reports an account's spending by tool, by day or by member.
func (l *Ledger) Spending(ctx context.Context, req SpendingRequest) (SpendingReport, error) {
	if err := checkRef("account", req.Account); err != nil {
		return SpendingReport{}, err
	}
	switch req.By {
	case "":
		req.By = ByTool
	case ByTool, ByDay, ByMember:
	default:
		return SpendingReport{}, fieldErr("by", "%q is not a grouping", req.By)
	}
	if !req.Since.IsZero() && !req.Until.IsZero() && req.Until.Before(req.Since) {
		return SpendingReport{}, fieldErr("until", "is before since")
	}
	lines := map[string]*SpendLine{}
	total := SpendLine{Group: "total"}
	var after int64
	var err error
	add := func(dst *Credits, c Credits) {
		if err != nil {
			return
		}
		*dst, err = dst.Add(c)
	}
	for {
		es, e := l.store.Entries(ctx, EntryFilter{
			Account: req.Account, AfterSeq: after, Limit: 1000, Since: req.Since, Until: req.Until,
			Types: []EntryType{EntryCapture, EntryCharge, EntryRefund},
		})
		if e != nil {
			return SpendingReport{}, e
		}
		for i := range es {
			e := &es[i]
			var g string
			switch req.By {
			case ByTool:
				g = e.Tool
			case ByDay:
				g = e.At.In(l.cfg.DayLocation).Format(time.DateOnly)
			case ByMember:
				g = e.Member
			}
			line := lines[g]
			if line == nil {
				line = &SpendLine{Group: g}
				lines[g] = line
			}
			for _, s := range []*SpendLine{line, &total} {
				if e.Type == EntryRefund {
					add(&s.Refunded, e.Amount)
				} else {
					add(&s.Charged, e.Amount)
					s.Charges++
				}
			}
		}
		if err != nil {
			return SpendingReport{}, err
		}
		if len(es) == 0 {
			break
		}
		after = es[len(es)-1].Seq
	}
	rep := SpendingReport{Account: req.Account, By: req.By}
	for _, line := range lines {
		rep.Lines = append(rep.Lines, *line)
	}
	slices.SortFunc(rep.Lines, func(a, b SpendLine) int {
		if a.Group < b.Group {
			return -1
		}
		if a.Group > b.Group {
			return 1
		}
		return 0
	})
	rep.Total = total
	for i := range rep.Lines {
		rep.Lines[i].Net, err = rep.Lines[i].Charged.Sub(rep.Lines[i].Refunded)
		if err != nil {
			return SpendingReport{}, err
		}
	}
	rep.Total.Net, err = total.Charged.Sub(total.Refunded)
	if err != nil || req.By != ByMember {
		return rep, err
	}
	t, err := l.projected(ctx, Query{Account: req.Account}) // holds past their deadline gave their usage back
	if err != nil {
		return SpendingReport{}, err
	}
	if t.acct.Team {
		rep.Members = t.usage()
	}
	return rep, nil
}

// Account returns the account as of now: its plan, team members, limits
// and their usage, threshold, metadata and balances, with every expiry and
// allowance renewal that fell due applied (as Balance applies them: the
// stored row catches up on the next write or sweep).
func (l *Ledger) Account(ctx context.Context, id string) (Account, error) {
	if err := checkRef("account", id); err != nil {
		return Account{}, err
	}
	t, err := l.projected(ctx, Query{Account: id})
	if err != nil {
		return Account{}, err
	}
	a := t.acct.Clone()
	a.RenewsAt = t.renewsAt()
	return a, nil
}

// HoldByKey returns, as [Ledger.Hold] does, the hold that the Reserve,
// Run or Charge under key on account made: for a worker that knows only
// the job. It returns an error wrapping [ErrUnknownHold] when no such
// operation made a hold.
func (l *Ledger) HoldByKey(ctx context.Context, account, key string) (Hold, error) {
	id, err := l.reservedHoldID(ctx, account, key, opReserve, opCharge)
	if err != nil {
		return Hold{}, err
	}
	return l.Hold(ctx, id)
}

// Hold returns a hold (or a one-step charge) as of now: a hold whose
// deadline has passed reads as expired, as every operation would find it.
// It returns an error wrapping [ErrUnknownHold] when there is no such hold.
func (l *Ledger) Hold(ctx context.Context, holdID string) (Hold, error) {
	if err := checkRef("hold", holdID); err != nil {
		return Hold{}, err
	}
	account, err := l.store.HoldAccount(ctx, holdID)
	if err != nil {
		return Hold{}, err
	}
	t, err := l.projected(ctx, Query{Account: account, Holds: []string{holdID}})
	if errors.Is(err, ErrUnknownAccount) {
		return Hold{}, fmt.Errorf("%w: %q", ErrUnknownHold, holdID)
	}
	if err != nil {
		return Hold{}, err
	}
	h := t.hold(holdID)
	if h == nil {
		return Hold{}, fmt.Errorf("%w: %q", ErrUnknownHold, holdID)
	}
	return h.Clone(), nil
}

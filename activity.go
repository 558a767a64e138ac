package credits

import (
	"context"
	"fmt"
	"maps"
	"time"
)

// The page sizes of [Ledger.Activity].
const (
	DefaultActivityLimit = 50  // rows per page when ActivityRequest.Limit is zero
	MaxActivityLimit     = 200 // the largest ActivityRequest.Limit accepted
)

// ActivityRequest asks for one page of an account's generations, newest
// first.
type ActivityRequest struct {
	Account string `json:"account"`
	// Member, when set, keeps the generations made by (or attributed to)
	// this member: a team member's own activity. It need not be a current
	// member, so a removed member's past generations can still be read.
	Member string `json:"member,omitempty"`
	// Before, when positive, keeps generations whose Seq is below it: the
	// cursor, the Next of the previous page (zero starts at the newest).
	Before int64 `json:"before,omitempty"`
	// Limit is the page size: zero means [DefaultActivityLimit], at most
	// [MaxActivityLimit].
	Limit int `json:"limit,omitempty"`
	// Since and Until, when not zero, keep generations started at or after
	// Since and before Until.
	Since time.Time `json:"since,omitzero"`
	Until time.Time `json:"until,omitzero"`
}

// ActivityPage is one page of an account's generations.
type ActivityPage struct {
	// Generations are newest first (by Seq, decreasing).
	Generations []Generation `json:"generations"`
	// Next is the Before of the next page; zero when this page is the last.
	Next int64 `json:"next,omitempty"`
}

// Generation is one generation as a dashboard shows it: a hold made by
// Reserve or Run, or a one-step Charge, read from the hold's row as of now
// (a hold past its deadline reads as expired, as [Ledger.Hold] reads it).
//
// Its amounts account for every credit held: Held = Charged + Released,
// Charged = Net + Refunded, and Returned = Released + Refunded = Held − Net.
// While the hold is open, Charged, Released, Refunded, Returned and Net are
// zero and Held is still held.
type Generation struct {
	// Hold is the ID of the hold (or of the charge): what Capture, Release,
	// Refund and [Ledger.Hold] take.
	Hold string `json:"hold"`
	// Job is the key of the Reserve, Run or Charge that made it.
	Job string `json:"job,omitempty"`
	// Seq is the Seq of the entry that started it (its hold or charge
	// entry): generations are ordered and paged by it.
	Seq int64 `json:"seq"`
	// Member is the team member who made it (or the attribution given).
	Member string `json:"member,omitempty"`
	// OneStep says it was made by Charge: charged at once, never held.
	OneStep bool `json:"one_step,omitempty"`
	// Quote is what the user was shown and confirmed.
	Quote GenerationQuote `json:"quote"`
	// Status is the hold's status as of now. A refunded charge stays
	// captured: Refunded says how much of it came back.
	Status HoldStatus `json:"status"`
	// Held is what was reserved: the quote's total.
	Held Credits `json:"held"`
	// Charged is what was captured (or charged in one step), before refunds.
	Charged Credits `json:"charged"`
	// Released is what went back without being charged: the whole hold
	// when it was released or expired (Status says which), the unused part
	// when it was captured for less than the quote.
	Released Credits `json:"released"`
	// Refunded is what was refunded of the charge.
	Refunded Credits `json:"refunded"`
	// Returned is everything that came back to the account: Released plus
	// Refunded, each credit to the grant it was taken from.
	Returned Credits `json:"returned"`
	// Net is what the generation cost in the end: Charged less Refunded.
	Net Credits `json:"net"`
	// StartedAt is when the hold (or charge) was made.
	StartedAt time.Time `json:"started_at"`
	// Deadline, while the hold is open, is when it expires by itself; zero
	// once it is settled.
	Deadline time.Time `json:"deadline,omitzero"`
	// SettledAt is when it was captured, released or expired (for an
	// expired hold, its deadline); zero while it is open. A refund does not
	// move it.
	SettledAt time.Time         `json:"settled_at,omitzero"`
	Metadata  map[string]string `json:"metadata,omitempty"`
}

// GenerationQuote is the essentials of the quote a generation was held or
// charged for.
type GenerationQuote struct {
	Tool string `json:"tool"`
	// Resolution is the resolution priced (per-second tools).
	Resolution string `json:"resolution,omitempty"`
	// Plan is the plan that priced it, "" when none.
	Plan string `json:"plan,omitempty"`
	// Images is the number of images priced (image tools).
	Images int `json:"images,omitempty"`
	// DurationMS is the duration priced (per-second tools), in whole
	// milliseconds.
	DurationMS int64 `json:"duration_ms,omitempty"`
	// UnitRate is the rate per image or per second, after the plan.
	UnitRate Credits `json:"unit_rate"`
	// Total is the price shown: what was held, and the most ever charged.
	Total Credits `json:"total"`
	// Breakdown explains Total in words.
	Breakdown string `json:"breakdown"`
}

// Activity returns a page of an account's generations, newest first: one
// row per hold made by Reserve or Run and per one-step Charge, with what it
// held, charged and gave back, read from the hold's row as of now (due
// expiries applied, as [Ledger.Hold] applies them, without writing
// anything). A generation is one row, found by the entry that started it,
// whatever entries it wrote since: paging with Next never shows one twice
// nor skips one, even while new generations are made.
//
// Since and Until bound when a generation started. An unknown account is
// [ErrUnknownAccount]; a negative Before, a Limit out of range, Until
// before Since or a malformed ID is [ErrInvalidRequest].
func (l *Ledger) Activity(ctx context.Context, req ActivityRequest) (ActivityPage, error) {
	if err := checkRef("account", req.Account); err != nil {
		return ActivityPage{}, err
	}
	if err := checkText("member", req.Member, MaxIDLength, false); err != nil {
		return ActivityPage{}, err
	}
	limit := req.Limit
	switch {
	case req.Before < 0:
		return ActivityPage{}, fieldErr("before", "%d is negative", req.Before)
	case !req.Since.IsZero() && !req.Until.IsZero() && req.Until.Before(req.Since):
		return ActivityPage{}, fieldErr("until", "is before since")
	case limit == 0:
		limit = DefaultActivityLimit
	case limit < 0 || limit > MaxActivityLimit:
		return ActivityPage{}, fieldErr("limit", "%d is not within 1..%d", limit, MaxActivityLimit)
	}

	// Every generation has exactly one opening entry (hold or charge):
	// page by those, then read the holds they name.
	f := EntryFilter{Account: req.Account, BeforeSeq: req.Before, Newest: true,
		Types: []EntryType{EntryHold, EntryCharge}, Since: req.Since, Until: req.Until}
	var opens []Entry
	for len(opens) <= limit {
		f.Limit = limit + 1 - len(opens)
		if req.Member != "" {
			f.Limit = max(f.Limit, 100) // most entries may be other members'
		}
		more, err := l.store.Entries(ctx, f)
		if err != nil {
			return ActivityPage{}, err
		}
		if len(more) == 0 {
			break
		}
		for _, e := range more {
			if e.Hold != "" && (req.Member == "" || e.Member == req.Member) {
				opens = append(opens, e)
			}
		}
		f.BeforeSeq = more[len(more)-1].Seq
	}
	var p ActivityPage
	if len(opens) > limit {
		opens = opens[:limit]
		p.Next = opens[limit-1].Seq
	}
	p.Generations = make([]Generation, 0, len(opens))
	if len(opens) == 0 {
		return p, nil
	}
	ids := make([]string, len(opens))
	for i := range opens {
		ids[i] = opens[i].Hold
	}
	t, err := l.projected(ctx, Query{Account: req.Account, Holds: ids})
	if err != nil {
		return ActivityPage{}, err
	}
	for i := range opens {
		h := t.hold(opens[i].Hold)
		if h == nil {
			return ActivityPage{}, fmt.Errorf("credits: the store has no hold %q for entry %d of account %q", opens[i].Hold, opens[i].Seq, req.Account)
		}
		p.Generations = append(p.Generations, generation(h, &opens[i]))
	}
	return p, nil
}

// generation makes h's row; open is the entry that started it.
func generation(h *Hold, open *Entry) Generation {
	q := &h.Quote
	g := Generation{
		Hold: h.ID, Job: h.Key, Seq: open.Seq, Member: h.Member, OneStep: open.Type == EntryCharge,
		Quote: GenerationQuote{Tool: q.Tool, Resolution: q.Resolution, Plan: q.Plan, Images: q.Images,
			DurationMS: q.Duration.Milliseconds(), UnitRate: q.UnitRate, Total: q.Total, Breakdown: q.Breakdown},
		Status: h.Status, Held: h.Amount, StartedAt: h.CreatedAt, SettledAt: h.SettledAt,
		Metadata: maps.Clone(h.Metadata),
	}
	if h.Status == HoldOpen {
		g.Deadline = h.Deadline
		return g
	}
	// The ledger keeps Refunded <= Captured <= Amount, all non-negative:
	// none of these can overflow.
	g.Charged, g.Refunded = h.Captured, h.Refunded
	g.Released = mustSub(h.Amount, h.Captured)
	g.Net = mustSub(h.Captured, h.Refunded)
	g.Returned = mustSub(h.Amount, g.Net)
	return g
}

package credits

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ---- corrections: taking credits out ----

// DebitRequest takes credits out of an account: an operator's correction,
// or a chargeback on purchased credits.
//
// Debit takes only available credits, never credits held by an open hold,
// so it never takes an account below zero. It takes them from the grants
// the request chooses — one grant (Grant), the grants of some kinds
// (Kinds), or any grant — in spending order: the soonest-expiring first,
// never-expiring grants last, the oldest first among equals (the credits
// the account would have spent next go first).
type DebitRequest struct {
	Account string  `json:"account"`
	Amount  Credits `json:"amount"`
	// Grant, when set, takes the credits from this grant only.
	Grant string `json:"grant,omitempty"`
	// Kinds, when not empty, takes only from grants of these kinds: a
	// chargeback takes purchased credits ([KindPurchase]) only. It cannot
	// be combined with Grant.
	Kinds []GrantKind `json:"kinds,omitempty"`
	// Partial says what to do when the grants chosen hold less than
	// Amount: take what they hold and report the rest as Short (true), or
	// refuse with an [*InsufficientCreditsError] and take nothing (false,
	// the default).
	Partial bool `json:"partial,omitempty"`
	// Reason is required: it is the note of the debit's history entries.
	Reason string `json:"reason"`
	// Key is required: a debit sent twice is applied once.
	Key string `json:"-"`
}

// DebitResult is the outcome of Debit.
type DebitResult struct {
	// Debited is what was taken out; Short is what was asked and not there
	// (zero unless the request was Partial).
	Debited Credits `json:"debited"`
	Short   Credits `json:"short"`
	// Portions are the grants it took from, in the order it took them.
	Portions  []Portion `json:"portions"`
	Available Credits   `json:"available"`
	Replay
}

// Debit takes credits out of an account's available balance, grant by
// grant, in the order [DebitRequest] states. Each grant it takes from gets
// a [EntryDebit] entry in the history, with the request's key and reason;
// the account's Debited counter keeps the total (granted = available +
// held + spent + expired + debited).
//
// When the grants chosen hold less than Amount, a Partial debit takes what
// they hold (Short says how much was missing) and any other debit fails
// with an [*InsufficientCreditsError] whose Available is what they hold.
func (l *Ledger) Debit(ctx context.Context, req DebitRequest) (DebitResult, error) {
	if err := cmpErr(checkRef("account", req.Account), checkKey(req.Key), checkPositive("amount", req.Amount),
		checkText("reason", req.Reason, MaxNoteLength, true)); err != nil {
		return DebitResult{}, err
	}
	if req.Grant != "" {
		if err := checkRef("grant", req.Grant); err != nil {
			return DebitResult{}, err
		}
		if len(req.Kinds) > 0 {
			return DebitResult{}, fieldErr("kinds", "cannot be combined with grant: a grant has one kind")
		}
	}
	for _, k := range req.Kinds {
		if !k.Valid() {
			return DebitResult{}, fieldErr("kinds", "has %q, not a grant kind", k)
		}
	}
	// The same kinds in another order, or repeated, are the same request.
	req.Kinds = slices.Compact(slices.Sorted(slices.Values(req.Kinds)))
	op := operation{name: opDebit, key: keyOf(req.Key), userKey: true, request: struct {
		Account string      `json:"account"`
		Amount  Credits     `json:"amount"`
		Grant   string      `json:"grant,omitempty"`
		Kinds   []GrantKind `json:"kinds,omitempty"`
		Partial bool        `json:"partial,omitempty"`
	}{req.Account, req.Amount, req.Grant, req.Kinds, req.Partial}, query: Query{Account: req.Account}}
	if req.Grant != "" {
		op.query.Buckets = []string{req.Grant}
	}
	return mutate(ctx, l, op, func(t *txn) (DebitResult, error) {
		keep := func(b *Bucket) bool { return len(req.Kinds) == 0 || slices.Contains(req.Kinds, b.Kind) }
		if req.Grant != "" {
			g, err := t.namedBucket(req.Grant)
			if err != nil {
				return DebitResult{}, err
			}
			if !g.VoidedAt.IsZero() {
				return DebitResult{}, ruleErr(ErrGrantVoided, "credits: grant %q was voided: it holds nothing to debit", g.ID)
			}
			keep = func(b *Bucket) bool { return b.ID == req.Grant }
		}
		from := t.spendable(keep)
		var there Credits
		for _, b := range from {
			t.add(&there, b.Remaining)
		}
		amount := req.Amount
		if there.Less(amount) {
			if !req.Partial {
				return DebitResult{}, &InsufficientCreditsError{Account: t.acct.ID, Available: there, Requested: req.Amount}
			}
			amount = there
		}
		res := DebitResult{Debited: amount, Short: mustSub(req.Amount, amount), Portions: []Portion{}}
		// Grant by grant, each with its entry, so that every entry says
		// the balance after it.
		need := amount
		for _, src := range from {
			if need.IsZero() {
				break
			}
			n := need.Min(src.Remaining)
			b := t.bucket(src.ID)
			t.sub(&b.Remaining, n)
			t.add(&b.Debited, n)
			t.sub(&t.acct.Available, n)
			t.add(&t.acct.Debited, n)
			t.sub(&need, n)
			res.Portions = append(res.Portions, Portion{Bucket: b.ID, Amount: n})
			t.entry(Entry{Type: EntryDebit, Amount: n, Bucket: b.ID, Kind: b.Kind, Key: req.Key, Note: req.Reason})
		}
		res.Available = t.acct.Available
		return res, nil
	})
}

// namedBucket returns the bucket id of the account, as the operation sees
// it, or an error wrapping ErrUnknownGrant.
func (t *txn) namedBucket(id string) (*Bucket, error) {
	if b, ok := t.buckets.get(id); ok {
		return b, nil
	}
	if b, ok := t.st.Buckets[id]; ok && b.Account == t.acct.ID {
		return b, nil
	}
	return nil, fmt.Errorf("%w: %q on account %q", ErrUnknownGrant, id, t.acct.ID)
}

// VoidGrantRequest revokes one grant: a promotion withdrawn, a purchase
// charged back.
type VoidGrantRequest struct {
	Account string `json:"account"`
	// Grant is the ID of the grant (the bucket a grant made).
	Grant string `json:"grant"`
	// Reason is required: it is the note of the void's history entry.
	Reason string `json:"reason"`
	// Key is required: a void sent twice is applied once.
	Key string `json:"-"`
}

// VoidGrantResult is the outcome of VoidGrant.
type VoidGrantResult struct {
	// Grant is the grant as the void left it: VoidedAt set, nothing
	// remaining.
	Grant Bucket `json:"grant"`
	// Voided is what remained of the grant, and of the grants restored
	// from it, and was taken out.
	Voided    Credits `json:"voided"`
	Available Credits `json:"available"`
	Replay
}

// VoidGrant revokes what remains of one grant: its available remainder is
// taken out of the account (an [EntryVoid] entry, with the key and
// reason) and the grant can never be spent from again. Credits of the
// grant that an open hold has out are not taken now: if the hold is
// captured they are spent as usual, and if it is released, expires or is
// later refunded they come back to the revoked grant and are revoked
// there and then, with a void entry of their own. A grant that expired or
// was spent entirely is voided with nothing taken (Voided is zero). A
// grant voided already is refused with [ErrGrantVoided].
//
// The grants restored from it (credits a release or refund gave back
// after it had expired, see [Config.RestoreGrace]) are its credits too:
// they are voided with it, each with a void entry.
func (l *Ledger) VoidGrant(ctx context.Context, req VoidGrantRequest) (VoidGrantResult, error) {
	if err := cmpErr(checkRef("account", req.Account), checkRef("grant", req.Grant), checkKey(req.Key),
		checkText("reason", req.Reason, MaxNoteLength, true)); err != nil {
		return VoidGrantResult{}, err
	}
	// The grants restored from it (credits given back after it expired)
	// are its credits too: they are voided with it.
	restored, err := l.store.Buckets(ctx, BucketFilter{Account: req.Account, RestoredFrom: req.Grant})
	if err != nil {
		return VoidGrantResult{}, err
	}
	q := Query{Account: req.Account, Buckets: []string{req.Grant}}
	for _, b := range restored {
		q.Buckets = append(q.Buckets, b.ID)
	}
	op := operation{name: opVoid, key: keyOf(req.Key), userKey: true, request: struct {
		Account string `json:"account"`
		Grant   string `json:"grant"`
	}{req.Account, req.Grant}, query: q}
	return mutate(ctx, l, op, func(t *txn) (VoidGrantResult, error) {
		g, err := t.namedBucket(req.Grant)
		if err != nil {
			return VoidGrantResult{}, err
		}
		if !g.VoidedAt.IsZero() {
			return VoidGrantResult{}, ruleErr(ErrGrantVoided, "credits: grant %q was voided already", g.ID)
		}
		b := t.bucket(g.ID)
		b.VoidedAt = t.now
		voided := t.revoke(b, req.Key, req.Reason, time.Time{})
		// Its restored grants: the ones named, and any live one restored
		// since they were looked up (every live grant is loaded).
		var lineage []*Bucket
		for r := range t.visibleBuckets {
			if r.RestoredFrom == g.ID && r.Account == t.acct.ID && r.VoidedAt.IsZero() {
				lineage = append(lineage, r)
			}
		}
		slices.SortFunc(lineage, expiryOrder)
		for _, r := range lineage {
			w := t.bucket(r.ID)
			w.VoidedAt = t.now
			t.add(&voided, t.revoke(w, req.Key, req.Reason+" (restored from "+g.ID+")", time.Time{}))
		}
		return VoidGrantResult{Grant: *b, Voided: voided, Available: t.acct.Available}, nil
	})
}

// ---- reads: grants ----

func grantsCursor(b *Bucket) string { return strconv.FormatInt(b.Seq, 10) + "." + b.ID }

// GrantsRequest asks for one page of an account's grants.
type GrantsRequest struct {
	Account string `json:"account"`
	// All includes the grants that hold nothing any more: spent, expired
	// or voided. By default only the grants with credits left are listed.
	All bool `json:"all,omitempty"`
	// Limit is the page size: 1 to [MaxGrantsPage], 0 for 100.
	Limit int `json:"limit,omitempty"`
	// After is the Next of the previous page; "" starts at the oldest.
	After string `json:"after,omitempty"`
}

// MaxGrantsPage is the largest page [Ledger.Grants] returns.
const MaxGrantsPage = 1000

// GrantsPage is one page of grants, oldest first.
type GrantsPage struct {
	Grants []Bucket `json:"grants"`
	// Next is the cursor of the next page; "" on the last.
	Next string `json:"next,omitempty"`
}

// Grants lists an account's grants as of now, oldest first (by the
// history entry that made each one), a page at a time: each with its
// kind, amount, remaining, expired, debited, expiry and, for a voided
// grant, when it was revoked.
//
// When something fell due on the account since its last operation (a
// grant's expiry, a hold's deadline, an allowance renewal), Grants first
// stores it, as [Ledger.Sweep] would (entries, and OnLowBalance when the
// expiry takes the balance below the threshold): a grant whose expiry
// passed is listed as expired, and a grant that lazy expiry creates (a
// renewal) is listed with the ID it keeps. Unlike the other reads, it may
// therefore write, and fail as a write fails.
func (l *Ledger) Grants(ctx context.Context, req GrantsRequest) (GrantsPage, error) {
	if err := checkRef("account", req.Account); err != nil {
		return GrantsPage{}, err
	}
	limit := req.Limit
	switch {
	case limit == 0:
		limit = 100
	case limit < 0 || limit > MaxGrantsPage:
		return GrantsPage{}, fieldErr("limit", "%d is not within 1..%d", limit, MaxGrantsPage)
	}
	f := BucketFilter{Account: req.Account, Limit: limit}
	if req.After != "" {
		seq, id, ok := strings.Cut(req.After, ".")
		n, err := strconv.ParseInt(seq, 10, 64)
		if !ok || err != nil || n < 0 || checkRef("after", id) != nil {
			return GrantsPage{}, fieldErr("after", "%q is not a cursor Grants returned", truncate(req.After))
		}
		f.AfterSeq, f.AfterID = n, id
	}
	if !req.All {
		f.LiveOnly = true
	}
	// What fell due (expiries, a renewal) is stored first, as a sweep
	// stores it, so that every grant listed is stored with the ID it keeps
	// across pages, and the list is the account as of now.
	t, err := l.projected(ctx, Query{Account: req.Account})
	if err != nil {
		return GrantsPage{}, err
	}
	if t.changed() {
		op := operation{name: opSweep, query: Query{Account: req.Account}, now: t.now}
		if _, err := mutate(ctx, l, op, func(*txn) (sweepCount, error) { return sweepCount{}, nil }); err != nil {
			return GrantsPage{}, err
		}
	}
	// One more than the page, to know whether another follows; a store may
	// return fewer than asked: ask again after the last one.
	grants := []Bucket{}
	for len(grants) <= limit {
		f.Limit = limit + 1 - len(grants)
		more, err := l.store.Buckets(ctx, f)
		if err != nil {
			return GrantsPage{}, err
		}
		if len(more) == 0 {
			break
		}
		grants = append(grants, more...)
		last := &more[len(more)-1]
		f.AfterSeq, f.AfterID = last.Seq, last.ID
	}
	page := GrantsPage{Grants: grants}
	if len(grants) > limit {
		page.Grants = grants[:limit]
		page.Next = grantsCursor(&grants[limit-1])
	}
	return page, nil
}

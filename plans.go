package credits

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ---- the catalogs a ledger prices with ----

// catalogSet is the ledger's catalog and the earlier versions whose quotes
// it still accepts. It is never modified once published: SetCatalog builds
// a new one.
type catalogSet struct {
	current *Catalog
	earlier map[string]earlierCatalog // by version
}

// earlierCatalog is a catalog version the ledger no longer quotes from.
type earlierCatalog struct {
	cat *Catalog
	// until is when the last quote it can have made expires (the time it
	// was replaced plus its quote TTL); zero for a version listed in
	// Config.EarlierCatalogs, kept for the ledger's lifetime.
	until time.Time
}

// catalogs is shared by a ledger and the ledgers WithStore derives from it,
// so that SetCatalog on one is seen by all.
type catalogs struct {
	mu  sync.Mutex // serializes SetCatalog
	set atomic.Pointer[catalogSet]
}

func newCatalogs(current *Catalog, earlier []*Catalog) (*catalogs, error) {
	s := &catalogSet{current: current, earlier: map[string]earlierCatalog{}}
	for i, c := range earlier {
		if c == nil {
			return nil, invalid("config: EarlierCatalogs[%d] is nil", i)
		}
		switch v := c.Version(); {
		case v == current.Version():
			return nil, invalid("config: EarlierCatalogs[%d] has version %q, the version of Catalog", i, v)
		case s.earlier[v].cat != nil:
			return nil, invalid("config: EarlierCatalogs lists version %q twice", v)
		default:
			s.earlier[v] = earlierCatalog{cat: c}
		}
	}
	cs := &catalogs{}
	cs.set.Store(s)
	return cs, nil
}

// version returns the catalog of version v that the ledger accepts quotes
// of at now, or nil.
func (s *catalogSet) version(v string, now time.Time) *Catalog {
	if v == s.current.Version() {
		return s.current
	}
	e, ok := s.earlier[v]
	if !ok || (!e.until.IsZero() && !now.Before(e.until)) {
		return nil
	}
	return e.cat
}

// sameCatalog reports whether a and b define the same prices.
func sameCatalog(a, b *Catalog) bool {
	ja, errA := json.Marshal(a.Config())
	jb, errB := json.Marshal(b.Config())
	return errA == nil && errB == nil && bytes.Equal(ja, jb)
}

// SetCatalog replaces the catalog the ledger quotes from, at run time and
// safely under concurrent use: an operation sees the old catalog or the new
// one, never a mix. Quotes of the catalog it replaces stay valid until they
// expire, so a price change never fails a quote a user is looking at
// (quotes made by other processes still on an older version are accepted
// when that version is in Config.EarlierCatalogs).
//
// A version names one set of prices: c must have a version of its own, or
// be equal to the catalog that had it (so switching back to an earlier
// version, or setting the current one again, is allowed). Otherwise
// SetCatalog returns an error wrapping [ErrInvalidCatalog] and changes
// nothing. The plans accounts are on must stay in the catalog: an account
// whose plan the catalog lacks cannot be quoted ([ErrUnknownPlan]) until
// [Ledger.UpdateAccount] moves it, and gets no allowance meanwhile.
//
// Allowances follow the new catalog as a plan change would: a plan that
// now gives more per period grants each account on it the difference at
// its next operation or read; less, or another period length, applies from
// each account's next renewal.
func (l *Ledger) SetCatalog(c *Catalog) error {
	if c == nil {
		return invalid("nil catalog")
	}
	l.catalogs.mu.Lock()
	defer l.catalogs.mu.Unlock()
	now := l.now()
	old := l.catalogs.set.Load()
	v := c.Version()
	if prev := old.current; prev.Version() == v {
		if !sameCatalog(prev, c) {
			return &CatalogError{Field: "version", Reason: fmt.Sprintf("version %q already names the ledger's current catalog, with other prices: give the new prices a new version", v)}
		}
		return nil
	}
	if e, ok := old.earlier[v]; ok && !sameCatalog(e.cat, c) {
		return &CatalogError{Field: "version", Reason: fmt.Sprintf("version %q already names an earlier catalog, with other prices: give the new prices a new version", v)}
	}
	next := &catalogSet{current: c, earlier: make(map[string]earlierCatalog, len(old.earlier)+1)}
	for ver, e := range old.earlier {
		if ver != v && (e.until.IsZero() || now.Before(e.until)) {
			next.earlier[ver] = e
		}
	}
	// The current catalog is never also an earlier one (a version set again
	// leaves the earlier list above), so it retires here, for as long as
	// the quotes it made can live.
	prev := old.current
	next.earlier[prev.Version()] = earlierCatalog{cat: prev, until: now.Add(prev.quoteTTL)}
	l.catalogs.set.Store(next)
	return nil
}

// ---- plan checks ----

// PlanMismatchError reports a quote priced with another plan than the
// account's. It matches [ErrWrongPlan] and [ErrQuoteMismatch]: quote again
// for the account ([Ledger.QuoteFor]).
type PlanMismatchError struct {
	Account string
	// Plan is the account's plan, the one that applies ("" for none).
	Plan string
	// QuotePlan is the plan the quote was priced with ("" for none).
	QuotePlan string
}

func (e *PlanMismatchError) Error() string {
	return fmt.Sprintf("credits: account %q is on %s; the quote was priced with %s: quote again for the account",
		e.Account, planName(e.Plan), planName(e.QuotePlan))
}

// Unwrap makes the error match [ErrWrongPlan] and [ErrQuoteMismatch].
func (e *PlanMismatchError) Unwrap() []error { return []error{ErrWrongPlan, ErrQuoteMismatch} }

func planName(p string) string {
	if p == "" {
		return "no plan"
	}
	return fmt.Sprintf("plan %q", p)
}

// checkPlan refuses a quote that was not priced with the account's plan.
func (t *txn) checkPlan(q Quote) error {
	if q.Plan != t.acct.Plan {
		return &PlanMismatchError{Account: t.acct.ID, Plan: t.acct.Plan, QuotePlan: q.Plan}
	}
	return nil
}

// checkPlanID refuses a plan the ledger's catalog does not have.
func (l *Ledger) checkPlanID(plan string) error {
	if plan == "" {
		return nil
	}
	if _, ok := l.Catalog().Plan(plan); !ok {
		return fmt.Errorf("%w %q: the ledger's catalog (version %q) has no such plan", ErrUnknownPlan, truncate(plan), l.Catalog().Version())
	}
	return nil
}

// QuoteFor prices req for an account, with the account's plan: the price
// it shows is the price Reserve and Charge accept for that account (until
// the quote expires, or the account changes plan). req.Plan must be empty
// or the account's plan; a different one is refused with a
// [*PlanMismatchError]. It reads the account and writes nothing.
func (l *Ledger) QuoteFor(ctx context.Context, account string, req QuoteRequest) (Quote, error) {
	if err := checkRef("account", account); err != nil {
		return Quote{}, err
	}
	st, err := l.store.View(ctx, Query{Account: account})
	if err != nil {
		return Quote{}, err
	}
	if st.Account == nil {
		return Quote{}, fmt.Errorf("%w: %q", ErrUnknownAccount, account)
	}
	if req.Plan != "" && req.Plan != st.Account.Plan {
		return Quote{}, &PlanMismatchError{Account: account, Plan: st.Account.Plan, QuotePlan: req.Plan}
	}
	req.Plan = st.Account.Plan
	return l.Quote(req)
}

// ---- account updates ----

// UpdateAccountRequest changes an account's plan, low-balance threshold or
// metadata. A nil field is left as it is.
type UpdateAccountRequest struct {
	Account string `json:"account"`
	// Plan, when not nil, is the account's new plan: the ID of a plan of
	// the ledger's catalog, or "" for none. Quotes priced with the old
	// plan are refused from then on; holds already made keep their price.
	Plan *string `json:"plan,omitempty"`
	// LowBalanceThreshold, when not nil, is the new threshold (zero: no
	// low-balance signal).
	LowBalanceThreshold *Credits `json:"low_balance_threshold,omitempty"`
	// Metadata, when not nil, replaces the account's metadata; an empty,
	// non-nil map clears it (in JSON: null or absent leaves it, {} clears).
	Metadata map[string]string `json:"metadata"`
	// Key makes the update idempotent: retried, it returns the first
	// result. Required.
	Key string `json:"-"`
}

// updateAccountRequest is UpdateAccountRequest as its record keeps it:
// metadata cleared and metadata left alone encode differently.
type updateAccountRequest struct {
	Account             string             `json:"account"`
	Plan                *string            `json:"plan,omitempty"`
	LowBalanceThreshold *Credits           `json:"low_balance_threshold,omitempty"`
	Metadata            *map[string]string `json:"metadata,omitempty"`
}

// UpdateAccountResult is the outcome of UpdateAccount.
type UpdateAccountResult struct {
	// Account is the account after the update.
	Account Account `json:"account"`
	// Changed says the update changed something, and appended an
	// [EntryAccount] entry saying what; an update to the values the
	// account already had changes nothing.
	Changed bool `json:"changed"`
	Replay
}

// UpdateAccount changes an account's plan, low-balance threshold or
// metadata, and appends an [EntryAccount] entry that says what changed, so
// the history explains every price the account was charged. It is
// idempotent by req.Key.
//
// A plan with an [Allowance]: joining it grants its first period now;
// moving to one that gives more per period than the current period has had
// (an upgrade) grants the difference now, until the period's end; a
// downgrade, a plan with none, or one whose period is of another length
// takes effect at the next renewal. Nothing granted is taken back. A plan the ledger's catalog does not have is
// refused with [ErrUnknownPlan], a negative threshold with
// [ErrInvalidAmount]; nothing is written then.
func (l *Ledger) UpdateAccount(ctx context.Context, req UpdateAccountRequest) (UpdateAccountResult, error) {
	if err := checkRef("account", req.Account); err != nil {
		return UpdateAccountResult{}, err
	}
	if err := checkKey(req.Key); err != nil {
		return UpdateAccountResult{}, err
	}
	if req.Plan != nil {
		if err := checkText("plan", *req.Plan, MaxIDLength, false); err != nil {
			return UpdateAccountResult{}, err
		}
	}
	if th := req.LowBalanceThreshold; th != nil && th.IsNegative() {
		return UpdateAccountResult{}, amountErr("low_balance_threshold", "is negative")
	}
	if err := checkMetadata(req.Metadata); err != nil {
		return UpdateAccountResult{}, err
	}
	canon := updateAccountRequest{Account: req.Account, Plan: req.Plan, LowBalanceThreshold: req.LowBalanceThreshold}
	var meta map[string]string
	if req.Metadata != nil {
		meta = normalMeta(req.Metadata)
		m := maps.Clone(meta)
		if m == nil {
			m = map[string]string{}
		}
		canon.Metadata = &m
	}
	op := operation{name: opUpdate, key: keyOf(req.Key), userKey: true, request: canon, query: Query{Account: req.Account}}
	return mutate(ctx, l, op, func(t *txn) (UpdateAccountResult, error) {
		var changes []string
		if p := req.Plan; p != nil && *p != t.acct.Plan {
			// Checked here, after the replay lookup: a retry of an
			// accepted update replays even if the plan has left the
			// catalog since.
			if err := l.checkPlanID(*p); err != nil {
				return UpdateAccountResult{}, err
			}
			changes = append(changes, fmt.Sprintf("plan %s → %s", planName(t.acct.Plan), planName(*p)))
			t.acct.Plan = *p
		}
		if th := req.LowBalanceThreshold; th != nil && *th != t.acct.LowBalanceThreshold {
			changes = append(changes, fmt.Sprintf("low-balance threshold %s → %s", t.acct.LowBalanceThreshold, *th))
			t.acct.LowBalanceThreshold = *th
		}
		if req.Metadata != nil && !maps.Equal(meta, t.acct.Metadata) {
			changes = append(changes, "metadata")
			t.acct.Metadata = meta
		}
		if len(changes) == 0 {
			return UpdateAccountResult{Account: t.acct.Clone()}, nil
		}
		t.entry(Entry{Type: EntryAccount, Plan: t.acct.Plan, Key: req.Key, Note: truncateNote(strings.Join(changes, "; "))})
		t.syncAllowance() // joining a plan's allowance, or an upgrade's difference
		return UpdateAccountResult{Account: t.acct.Clone(), Changed: true}, nil
	})
}

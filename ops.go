package credits

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits on request strings. Longer input is refused with ErrInvalidRequest.
const (
	MaxIDLength    = 128 // account, member and hold IDs
	MaxKeyLength   = 255 // idempotency keys
	MaxNoteLength  = 1024
	MaxMetadata    = 16 // entries
	maxMetaKeyLen  = 64
	maxMetaValLen  = 512
	maxTeamMembers = 10000
)

// checkText checks a text field of a request, named by its JSON name.
func checkText(field, s string, max int, required bool) error {
	switch {
	case s == "" && required:
		return fieldErr(field, "is required")
	case len(s) > max:
		return fieldErr(field, "is longer than %d bytes", max)
	case !utf8.ValidString(s):
		return fieldErr(field, "is not valid UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) && r != '\n' && r != '\t' || r == utf8.RuneError {
			return fieldErr(field, "contains a control character")
		}
	}
	return nil
}

// CheckID returns nil when the ledger accepts id as an account, member or
// hold ID: not empty, at most [MaxIDLength] bytes, valid UTF-8, no U+FFFD
// and no control character other than '\n' and '\t'. Otherwise it returns
// the error the ledger returns for such an ID, which wraps
// [ErrInvalidRequest]. A store or test suite that needs to know whether an
// ID can reach it asks this function rather than restating the rule.
func CheckID(id string) error { return checkRef("id", id) }

// checkRef checks a required ID in the named request field; it is the rule
// [CheckID] states.
func checkRef(field, s string) error { return checkText(field, s, MaxIDLength, true) }

func checkKey(k string) error { return checkText("key", k, MaxKeyLength, true) }

func checkMetadata(m map[string]string) error {
	if len(m) > MaxMetadata {
		return fieldErr("metadata", "has %d entries, more than %d", len(m), MaxMetadata)
	}
	for k, v := range m {
		if err := checkText("metadata", k, maxMetaKeyLen, true); err != nil {
			err.(*FieldError).Reason = "key " + err.(*FieldError).Reason
			return err
		}
		if err := checkText("metadata."+k, v, maxMetaValLen, false); err != nil {
			return err
		}
	}
	return nil
}

// normalMeta makes empty metadata nil, so that a result read back from its
// idempotency record is identical to the first, and copies the rest: what
// the ledger keeps and hands a store is never a map the caller holds.
func normalMeta(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(m) // the ledger's own: the caller may reuse its map
}

func checkPositive(field string, c Credits) error {
	if !c.IsPositive() {
		return amountErr(field, "must be positive, got %s", c)
	}
	return nil
}

// ---- accounts ----

// CreateAccountRequest creates an account.
type CreateAccountRequest struct {
	ID string `json:"id"`
	// Plan is the plan the account's quotes are priced with: the ID of a
	// plan of the ledger's catalog, or "" for none.
	Plan string `json:"plan,omitempty"`
	// Team makes a shared balance that only Members may spend from.
	Team    bool     `json:"team,omitempty"`
	Members []string `json:"members,omitempty"`
	// LowBalanceThreshold; zero means Config.LowBalanceThreshold.
	LowBalanceThreshold Credits           `json:"low_balance_threshold"`
	Metadata            map[string]string `json:"metadata,omitempty"`
}

// AccountResult is the outcome of CreateAccount.
type AccountResult struct {
	Account Account `json:"account"`
	// Signup is the signup grant, when the ledger gives one.
	Signup *Bucket `json:"signup,omitempty"`
	Replay
}

// CreateAccount creates an account and gives it the signup grant, exactly
// once. Repeating the same request returns the first result (Replayed);
// a different request for an existing ID fails with [ErrAccountExists].
func (l *Ledger) CreateAccount(ctx context.Context, req CreateAccountRequest) (AccountResult, error) {
	if err := checkRef("id", req.ID); err != nil {
		return AccountResult{}, err
	}
	if !req.Team && len(req.Members) > 0 {
		return AccountResult{}, fieldErr("members", "are given for an account that is not a team")
	}
	members, err := normalizeMembers(req.Members)
	if err != nil {
		return AccountResult{}, err
	}
	if req.LowBalanceThreshold.IsNegative() {
		return AccountResult{}, amountErr("low_balance_threshold", "is negative")
	}
	if err := checkMetadata(req.Metadata); err != nil {
		return AccountResult{}, err
	}
	if err := checkText("plan", req.Plan, MaxIDLength, false); err != nil {
		return AccountResult{}, err
	}
	req.Members = members
	req.Metadata = normalMeta(req.Metadata)
	// The request is recorded as asked, before defaults: a retry after the
	// config's default changed is still the same request.
	op := operation{name: opCreate, key: "create", request: req, query: Query{Account: req.ID}}
	req.LowBalanceThreshold = cmpCredits(req.LowBalanceThreshold, l.cfg.LowBalanceThreshold)
	return mutate(ctx, l, op, func(t *txn) (AccountResult, error) {
		if t.st.Account != nil {
			return AccountResult{}, fmt.Errorf("%w: %q", ErrAccountExists, req.ID)
		}
		if err := l.checkPlanID(req.Plan); err != nil {
			return AccountResult{}, err
		}
		t.isNew = true
		t.acct = Account{
			ID: req.ID, CreatedAt: t.now, Plan: req.Plan, Team: req.Team, Members: members,
			LowBalanceThreshold: req.LowBalanceThreshold, Metadata: req.Metadata,
		}
		if req.Plan != "" { // the history says which plan priced every charge
			t.entry(Entry{Type: EntryAccount, Plan: req.Plan, Note: "created on " + planName(req.Plan)})
			t.syncAllowance()
		}
		var res AccountResult
		if s := l.cfg.Signup; s.Amount.IsPositive() && !req.Team {
			b := t.grant(KindSignup, s.Amount, expiry(t.now, s.ValidFor), "", "signup")
			res.Signup = &b
		}
		res.Account = t.acct.Clone()
		return res, nil
	})
}

func cmpCredits(a, b Credits) Credits {
	if a.IsZero() {
		return b
	}
	return a
}

func expiry(now time.Time, validFor time.Duration) time.Time {
	if validFor <= 0 {
		return time.Time{}
	}
	return now.Add(validFor)
}

func normalizeMembers(members []string) ([]string, error) {
	if len(members) > maxTeamMembers {
		return nil, fieldErr("members", "has more than %d members", maxTeamMembers)
	}
	for _, m := range members {
		if err := checkRef("members", m); err != nil {
			return nil, err
		}
	}
	if len(members) == 0 {
		return nil, nil
	}
	out := slices.Clone(members)
	slices.Sort(out)
	return slices.Compact(out), nil
}

// MembersRequest adds members to, or removes them from, a team account.
type MembersRequest struct {
	Account string   `json:"account"`
	Add     []string `json:"add,omitempty"`
	Remove  []string `json:"remove,omitempty"`
}

// UpdateMembers adds and removes team members. It is idempotent by nature:
// adding a member twice, or removing one that is not there, changes nothing.
// It returns the account after the change.
func (l *Ledger) UpdateMembers(ctx context.Context, req MembersRequest) (Account, error) {
	if err := checkRef("account", req.Account); err != nil {
		return Account{}, err
	}
	add, err := normalizeMembers(req.Add)
	if err != nil {
		return Account{}, err
	}
	remove, err := normalizeMembers(req.Remove)
	if err != nil {
		return Account{}, err
	}
	op := operation{name: opMembers, request: req, query: Query{Account: req.Account}}
	res, err := mutate(ctx, l, op, func(t *txn) (accountOnly, error) {
		if !t.acct.Team {
			return accountOnly{}, fieldErr("account", "%q is not a team", req.Account)
		}
		members := append(slices.Clone(t.acct.Members), add...)
		members = slices.DeleteFunc(members, func(m string) bool { return slices.Contains(remove, m) })
		slices.Sort(members)
		members = slices.Compact(members)
		if len(members) > maxTeamMembers {
			return accountOnly{}, fieldErr("members", "would make more than %d members", maxTeamMembers)
		}
		t.acct.Members = members
		if l := t.acct.Limits; l != nil && len(remove) > 0 {
			// A member who leaves takes their own limit along.
			l = l.Clone()
			for _, m := range remove {
				delete(l.Members, m)
			}
			t.acct.Limits = l
		}
		return accountOnly{Account: t.acct.Clone()}, nil
	})
	return res.Account, err
}

type accountOnly struct {
	Account Account
	Replay
}

// ---- grants ----

// GrantRequest adds credits to an account, as a new bucket.
type GrantRequest struct {
	Account string    `json:"account"`
	Amount  Credits   `json:"amount"`
	Kind    GrantKind `json:"kind"`
	// ExpiresAt, when not zero, is when the credits expire; it must be in
	// the future. Purchased credits never expire: a purchase with an
	// ExpiresAt is refused.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// Key makes the grant idempotent: a top-up sent twice is applied once.
	// Keys are per account and shared by every operation on it: a key used
	// for a grant cannot also name a reserve or a refund.
	Key  string `json:"-"`
	Note string `json:"note,omitempty"`
}

// GrantResult is the outcome of a grant or a daily claim.
type GrantResult struct {
	// Grant is the bucket the grant made, as it was made.
	Grant Bucket `json:"grant"`
	// Available is the account's available balance after the grant.
	Available Credits `json:"available"`
	// NextClaimAt, for a daily claim, is when the next one can be made.
	NextClaimAt time.Time `json:"next_claim_at,omitzero"`
	Replay
}

// Grant adds credits to an account as a new bucket of the given kind.
func (l *Ledger) Grant(ctx context.Context, req GrantRequest) (GrantResult, error) {
	if err := cmpErr(checkRef("account", req.Account), checkKey(req.Key), checkText("note", req.Note, MaxNoteLength, false),
		checkPositive("amount", req.Amount)); err != nil {
		return GrantResult{}, err
	}
	switch {
	case !req.Kind.Valid():
		return GrantResult{}, fieldErr("kind", "%q is not a grant kind", req.Kind)
	case req.Kind == KindPurchase && !req.ExpiresAt.IsZero():
		return GrantResult{}, fieldErr("expires_at", "must be empty: purchased credits never expire")
	case !req.ExpiresAt.IsZero() && (req.ExpiresAt.Year() < 2000 || req.ExpiresAt.Year() > maxYear):
		return GrantResult{}, fieldErr("expires_at", "%s is out of range (years 2000 to %d)", req.ExpiresAt.Format(time.RFC3339), maxYear)
	}
	req.ExpiresAt = normalTime(req.ExpiresAt) // the same instant in any zone is the same request
	op := operation{name: opGrant, key: keyOf(req.Key), userKey: true, request: req, query: Query{Account: req.Account}}
	return mutate(ctx, l, op, func(t *txn) (GrantResult, error) {
		// Checked here, after the idempotency lookup, so that a retry of an
		// accepted grant is replayed even after its expiry.
		if !req.ExpiresAt.IsZero() && !t.now.Before(req.ExpiresAt) {
			return GrantResult{}, fieldErr("expires_at", "%s is not in the future", req.ExpiresAt.Format(time.RFC3339))
		}
		b := t.grant(req.Kind, req.Amount, req.ExpiresAt, req.Key, req.Note)
		return GrantResult{Grant: b, Available: t.acct.Available}, nil
	})
}

// maxYear bounds the instants the ledger accepts, so that every store can
// keep them (Unix nanoseconds reach 2262).
const maxYear = 2200

// normalTime is t in UTC without a monotonic reading; zero stays zero.
func normalTime(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Round(0)
}

// cmpErr returns the first non-nil error.
func cmpErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// ClaimDaily gives the daily reward, once per calendar day in the ledger's
// DayLocation. A second claim the same day gives nothing and returns the
// first claim's result with Replayed set; NextClaimAt says when to come back.
func (l *Ledger) ClaimDaily(ctx context.Context, account string) (GrantResult, error) {
	if err := checkRef("account", account); err != nil {
		return GrantResult{}, err
	}
	d := l.cfg.Daily
	if !d.Amount.IsPositive() {
		return GrantResult{}, ErrDailyUnavailable
	}
	now := l.now()
	day := now.In(l.cfg.DayLocation).Format(time.DateOnly)
	next := nextDay(now, l.cfg.DayLocation)
	// The day alone identifies the claim: a reward changed in the config
	// the same day does not turn a retry into a second claim.
	req := struct {
		Account string `json:"account"`
		Day     string `json:"day"`
	}{account, day}
	op := operation{name: opDaily, key: "daily:" + day, request: req, query: Query{Account: account}, now: now}
	return mutate(ctx, l, op, func(t *txn) (GrantResult, error) {
		b := t.grant(KindDaily, d.Amount, expiry(t.now, d.ValidFor), "", "daily reward "+day)
		return GrantResult{Grant: b, Available: t.acct.Available, NextClaimAt: next}, nil
	})
}

// nextDay returns the first instant of the calendar day after t's in loc,
// in UTC. Where a daylight-saving change skips midnight, the day starts at
// the first instant that exists.
func nextDay(t time.Time, loc *time.Location) time.Time {
	y, m, d := t.In(loc).Date()
	want := time.Date(y, m, d+1, 12, 0, 0, 0, time.UTC).Format(time.DateOnly)
	start := time.Date(y, m, d+1, 0, 0, 0, 0, loc)
	for start.In(loc).Format(time.DateOnly) != want {
		start = start.Add(15 * time.Minute)
	}
	// Step back to the earliest instant of that date (a gap may have pushed
	// time.Date past it, or before it).
	for {
		prev := start.Add(-time.Minute)
		if prev.In(loc).Format(time.DateOnly) != want {
			return start.UTC()
		}
		start = prev
	}
}

// ---- holds ----

// ReserveRequest holds the credits of a confirmed quote for a job.
type ReserveRequest struct {
	Account string `json:"account"`
	// Member is who spends: required on a team account (and must be a
	// member), optional attribution on a personal one.
	Member string `json:"member,omitempty"`
	// Quote is the quote the user confirmed: it must come from a catalog
	// version the ledger accepts (see [Ledger.SetCatalog]), be priced with
	// the account's plan ([Ledger.QuoteFor] makes such quotes; another
	// plan is refused with a [*PlanMismatchError]) and not have expired.
	// It is not in the JSON: a quote from a client is taken sealed only.
	Quote Quote `json:"-"`
	// SealedQuote, instead of Quote, is the quote as [Ledger.SealQuote]
	// sealed it: what a browser sends back when the user confirms ("quote"
	// in JSON). Reserve opens it with the ledger's keys ([Ledger.OpenQuote])
	// and then checks it as it checks Quote. Give one or the other: both is
	// an [ErrInvalidRequest].
	SealedQuote string `json:"quote,omitempty"`
	// TTL is how long the hold lasts before it is released by itself; zero
	// means Config.HoldTTL. In JSON, "ttl_ms", in milliseconds.
	TTL time.Duration `json:"ttl_ms,omitempty"`
	// Key makes the reservation idempotent: retried, it returns the same hold.
	Key      string            `json:"-"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// ReserveResult is the outcome of Reserve.
type ReserveResult struct {
	Hold Hold `json:"hold"`
	// Available is the account's available balance after the hold.
	Available Credits `json:"available"`
	Replay
}

func (r *ReserveResult) heldHold() *Hold { return &r.Hold }

func (r *ReserveResult) recorded() any {
	return struct {
		Hold      holdRef `json:"hold"`
		Available Credits `json:"available"`
	}{holdRef{r.Hold.ID}, r.Available}
}

// reservedHold is a hold as Reserve left it: open, nothing captured, the
// deadline it gave (before any Extend).
func reservedHold(h Hold) Hold {
	h.Status, h.Captured, h.Refunded, h.SettledAt = HoldOpen, Credits{}, Credits{}, time.Time{}
	if !h.FirstDeadline.IsZero() {
		h.Deadline, h.FirstDeadline = h.FirstDeadline, time.Time{}
	}
	for i := range h.Portions {
		h.Portions[i].Captured, h.Portions[i].Refunded = Credits{}, Credits{}
	}
	return h
}

// capturedHold is a hold as Charge or Capture left it: captured, nothing
// refunded (refunds are the only change to a captured hold).
func capturedHold(h Hold) Hold {
	h.Refunded = Credits{}
	for i := range h.Portions {
		h.Portions[i].Refunded = Credits{}
	}
	return h
}

// releasedHold is a hold as Release left it: released holds never change.
func releasedHold(h Hold) Hold { return h }

// quoteFingerprint is the part of a quote that identifies what was priced.
type quoteFingerprint struct {
	Tool           string        `json:"tool"`
	Resolution     string        `json:"resolution,omitempty"`
	Plan           string        `json:"plan,omitempty"`
	Images         int           `json:"images,omitempty"`
	BilledDuration time.Duration `json:"billed_duration,omitempty"`
	Total          Credits       `json:"total"`
	CatalogVersion string        `json:"catalog_version"`
}

func fingerprint(q Quote) quoteFingerprint {
	return quoteFingerprint{q.Tool, q.Resolution, q.Plan, q.Images, q.BilledDuration, q.Total, q.CatalogVersion}
}

type spendRequest struct {
	Op       string            `json:"op"`
	Account  string            `json:"account"`
	Member   string            `json:"member,omitempty"`
	Quote    quoteFingerprint  `json:"quote"`
	TTL      time.Duration     `json:"ttl,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// checkSpend validates what Reserve and Charge share.
func (l *Ledger) checkSpend(account, member, key string, q Quote, meta map[string]string) error {
	if err := checkRef("account", account); err != nil {
		return err
	}
	if err := checkText("member", member, MaxIDLength, false); err != nil {
		return err
	}
	if err := checkKey(key); err != nil {
		return err
	}
	if err := checkMetadata(meta); err != nil {
		return err
	}
	return checkPositive("quote.total", q.Total)
}

// maxQuoteClockSkew is how far ahead of this ledger's clock another
// server's clock may be for the quotes it made to be accepted here.
const maxQuoteClockSkew = time.Minute

// checkQuote verifies, inside the operation (after its idempotency record
// was looked up, so that a retry of an accepted request is replayed even
// once its quote has expired), that q is current and matches the catalog.
func (l *Ledger) checkQuote(q Quote, now time.Time) error {
	if !now.Before(q.ExpiresAt) {
		return fmt.Errorf("%w: the quote expired at %s", ErrQuoteExpired, q.ExpiresAt.Format(time.RFC3339))
	}
	cats := l.catalogs.set.Load()
	cat := cats.version(q.CatalogVersion, now)
	if cat == nil {
		return fmt.Errorf("%w: the quote is from catalog version %q, which the ledger does not accept (it prices with %q): quote again", ErrQuoteMismatch, truncate(q.CatalogVersion), cats.current.Version())
	}
	// A quote lives its catalog's TTL from when it was made, never longer:
	// one whose expiry was moved on would keep an old price for ever.
	if latest := now.Add(cat.quoteTTL + maxQuoteClockSkew); q.ExpiresAt.After(latest) {
		return fmt.Errorf("%w: the quote expires at %s, later than a quote of catalog %q made now could (%s)",
			ErrQuoteMismatch, q.ExpiresAt.Format(time.RFC3339), cat.Version(), latest.Format(time.RFC3339))
	}
	fresh, err := cat.Quote(QuoteRequest{Tool: q.Tool, Resolution: q.Resolution, Duration: q.Duration, Images: q.Images, Plan: q.Plan}, now)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrQuoteMismatch, err)
	}
	if !fresh.Matches(q) {
		return fmt.Errorf("%w: the quote says %s for %s; the catalog prices it %s", ErrQuoteMismatch, q.Total, q.Tool, fresh.Total)
	}
	return nil
}

func (t *txn) checkMember(member string) error {
	switch {
	case t.acct.Team && member == "":
		return ruleErr(ErrNotMember, "credits: team account %q is spent by its members: the request names no Member", t.acct.ID)
	case t.acct.Team && !t.acct.IsMember(member):
		return ruleErr(ErrNotMember, "credits: %q is not a member of team account %q", member, t.acct.ID)
	}
	return nil
}

// Reserve holds the quoted credits for a job: the available balance drops
// by the quote's total at once, so a job that cannot be afforded is refused
// up front with an [*InsufficientCreditsError]. The hold ends by Capture,
// by Release, or by itself at its deadline.
//
// The quote is req.Quote, or req.SealedQuote opened with the ledger's keys
// (a string that does not open is refused with an error matching
// [ErrInvalidQuote] and [ErrInvalidRequest] that names the "quote" field;
// a ledger without Config.QuoteKey fails with [ErrNoQuoteKey]). Either way
// it is then checked the same: not expired ([ErrQuoteExpired]), priced by a
// catalog version the ledger accepts and with the account's plan.
func (l *Ledger) Reserve(ctx context.Context, req ReserveRequest) (ReserveResult, error) {
	now := l.now()
	var err error
	if req.Quote, err = l.requestQuote(req.Quote, req.SealedQuote); err != nil {
		return ReserveResult{}, err
	}
	if err := l.checkSpend(req.Account, req.Member, req.Key, req.Quote, req.Metadata); err != nil {
		return ReserveResult{}, err
	}
	req.Quote.ExpiresAt = normalTime(req.Quote.ExpiresAt)
	req.Metadata = normalMeta(req.Metadata)
	ttl := cmpDuration(req.TTL, l.cfg.HoldTTL)
	if ttl < 0 || ttl > l.cfg.MaxHoldTTL {
		return ReserveResult{}, fieldErr("ttl_ms", "is %d: it must be positive and at most %d (Config.MaxHoldTTL)", req.TTL.Milliseconds(), l.cfg.MaxHoldTTL.Milliseconds())
	}
	sr := spendRequest{Op: opReserve, Account: req.Account, Member: req.Member, Quote: fingerprint(req.Quote), TTL: req.TTL, Metadata: req.Metadata}
	op := operation{name: opReserve, key: keyOf(req.Key), userKey: true, request: sr, query: Query{Account: req.Account}, now: now, holdAt: reservedHold}
	return mutate(ctx, l, op, func(t *txn) (ReserveResult, error) {
		if err := l.checkQuote(req.Quote, t.now); err != nil {
			return ReserveResult{}, err
		}
		if err := t.checkPlan(req.Quote); err != nil {
			return ReserveResult{}, err
		}
		if err := t.checkMember(req.Member); err != nil {
			return ReserveResult{}, err
		}
		if err := t.checkLimit(req.Member, req.Quote.Total); err != nil {
			return ReserveResult{}, err
		}
		h, err := t.openHold(req.Member, req.Key, req.Quote, t.now.Add(ttl), req.Metadata)
		if err != nil {
			return ReserveResult{}, err
		}
		t.useLimit(h)
		t.add(&t.acct.Held, h.Amount)
		t.entry(Entry{Type: EntryHold, Amount: h.Amount, Hold: h.ID, Tool: h.Quote.Tool, Member: h.Member, Key: req.Key})
		return ReserveResult{Hold: h.Clone(), Available: t.acct.Available}, nil
	})
}

func cmpDuration(a, b time.Duration) time.Duration {
	if a == 0 {
		return b
	}
	return a
}

// openHold takes the quote's total from the buckets into a new hold.
func (t *txn) openHold(member, key string, q Quote, deadline time.Time, meta map[string]string) (*Hold, error) {
	portions, err := t.take(q.Total)
	if err != nil {
		return nil, err
	}
	h := &Hold{
		ID: t.l.newID("hold"), Account: t.acct.ID, Member: member, Key: key, Status: HoldOpen, Seq: t.acct.Seq + 1, // its entry comes next
		Amount: q.Total, Portions: portions, Quote: q, CreatedAt: t.now, Deadline: deadline, Metadata: meta,
	}
	t.holds.put(h.ID, h, true)
	return h, nil
}

// CaptureRequest charges a hold by what the job actually produced.
type CaptureRequest struct {
	Hold string `json:"hold"`
	// ReserveKey, instead of Hold, names the hold by the key of the
	// Reserve (or Run) that made it, with Account: for a worker that knows
	// only the job.
	ReserveKey string `json:"-"`
	// Account, when set, must be the hold's account; it saves a lookup.
	Account string `json:"-"`
	// Usage is what the job produced; it is priced with the quote's own
	// rates and capped at the quote's total. The zero Usage (and no Amount)
	// charges the quote as quoted; to charge nothing, Release instead.
	Usage Usage `json:"usage"`
	// Amount, when positive, charges exactly this much instead of pricing
	// Usage; more than the hold holds is [ErrExceedsHold].
	Amount Credits `json:"amount"`
	// Key is optional: without it the capture is idempotent per hold.
	Key string `json:"-"`
}

// ChargeResult is the outcome of Capture and Charge.
type ChargeResult struct {
	// Hold is the charge: the hold, now captured.
	Hold Hold `json:"hold"`
	// Charged is what the account paid; Released is what went back.
	Charged  Credits `json:"charged"`
	Released Credits `json:"released"`
	// Revoked is the part of Released that went back to a grant voided
	// meanwhile ([Ledger.VoidGrant]) and was revoked at once: Available
	// does not include it.
	Revoked Credits `json:"revoked,omitzero"`
	// Capped reports that the usage cost more than the quote, so the quote
	// was charged.
	Capped bool `json:"capped,omitempty"`
	// Available is the account's available balance after the operation.
	Available Credits `json:"available"`
	Replay
}

func (r *ChargeResult) heldHold() *Hold { return &r.Hold }

func (r *ChargeResult) recorded() any {
	return struct {
		Hold      holdRef `json:"hold"`
		Charged   Credits `json:"charged"`
		Released  Credits `json:"released"`
		Revoked   Credits `json:"revoked,omitzero"`
		Capped    bool    `json:"capped,omitempty"`
		Available Credits `json:"available"`
	}{holdRef{r.Hold.ID}, r.Charged, r.Released, r.Revoked, r.Capped, r.Available}
}

// Capture charges an open hold by actual usage, never more than the quote,
// and gives what is not used back to the buckets it came from. A hold that
// was already captured or released fails with [ErrHoldSettled]; one whose
// deadline passed, with [ErrHoldExpired].
func (l *Ledger) Capture(ctx context.Context, req CaptureRequest) (ChargeResult, error) {
	if req.Amount.IsNegative() {
		return ChargeResult{}, amountErr("amount", "is negative")
	}
	if req.Usage.Duration < 0 || req.Usage.Images < 0 {
		return ChargeResult{}, fieldErr("usage", "is negative")
	}
	if err := l.resolveHold(ctx, &req.Hold, req.ReserveKey, req.Account); err != nil {
		return ChargeResult{}, err
	}
	op, err := l.holdOp(ctx, opCapture, req.Hold, req.Account, req.Key, recordedCapture(req))
	if err != nil {
		return ChargeResult{}, err
	}
	op.holdAt = capturedHold
	return mutate(ctx, l, op, func(t *txn) (ChargeResult, error) {
		h, err := t.openHoldNamed(req.Hold)
		if err != nil {
			return ChargeResult{}, err
		}
		amount, capped := req.Amount, false
		switch {
		case amount.IsZero() && req.Usage == (Usage{}):
			amount = h.Amount // no usage given: as quoted
		case amount.IsPositive():
			if h.Amount.Less(amount) {
				return ChargeResult{}, fmt.Errorf("%w: capture of %s exceeds hold %q of %s", ErrExceedsHold, amount, h.ID, h.Amount)
			}
		default:
			amount, capped, err = h.Quote.Cost(req.Usage)
			if err != nil {
				return ChargeResult{}, err
			}
			amount = amount.Min(h.Amount)
		}
		before := t.revokedBack
		released := t.capture(h, amount)
		return ChargeResult{Hold: h.Clone(), Charged: amount, Released: released, Revoked: mustSub(t.revokedBack, before), Capped: capped, Available: t.acct.Available}, nil
	})
}

// resolveHold sets *hold to the ID of the hold the Reserve (or Run) under
// reserveKey on account made, when the request names it that way.
func (l *Ledger) resolveHold(ctx context.Context, hold *string, reserveKey, account string) error {
	switch {
	case reserveKey == "":
		return nil
	case *hold != "":
		return fieldErr("reserve_key", "is given with hold: name the hold one way")
	case account == "":
		return fieldErr("account", "is required with reserve_key: keys are per account")
	}
	id, err := l.reservedHoldID(ctx, account, reserveKey, opReserve)
	*hold = id
	return err
}

// reservedHoldID finds the hold that the operation (of the names given)
// under key on account made, from its idempotency record.
func (l *Ledger) reservedHoldID(ctx context.Context, account, key string, ops ...string) (string, error) {
	if err := checkRef("account", account); err != nil {
		return "", err
	}
	if err := checkText("reserve_key", key, MaxKeyLength, true); err != nil {
		return "", err
	}
	st, err := l.store.View(ctx, Query{Account: account, Keys: []string{keyOf(key)}})
	if err != nil {
		return "", err
	}
	if st.Account == nil {
		return "", fmt.Errorf("%w: %q", ErrUnknownAccount, account)
	}
	rec := st.Records[keyOf(key)]
	if rec == nil || !slices.Contains(ops, rec.Operation) {
		return "", fmt.Errorf("%w: no %s under key %q on account %q", ErrUnknownHold, strings.Join(ops, " or "), truncate(key), account)
	}
	var res struct {
		OK *struct {
			Hold struct {
				ID string `json:"id"`
			} `json:"hold"`
		} `json:"ok"`
		OKHoldByID *struct {
			Hold holdRef `json:"hold"`
		} `json:"ok_hold_by_id"`
	}
	if err := json.Unmarshal(rec.Result, &res); err != nil {
		return "", fmt.Errorf("credits: decode idempotency record %q: %w", rec.Key, err)
	}
	switch {
	case res.OKHoldByID != nil && res.OKHoldByID.Hold.ID != "":
		return res.OKHoldByID.Hold.ID, nil
	case res.OK != nil && res.OK.Hold.ID != "":
		return res.OK.Hold.ID, nil
	}
	return "", fmt.Errorf("%w: the %s under key %q on account %q was refused: it made no hold", ErrUnknownHold, rec.Operation, truncate(key), account)
}

// holdOp builds the operation for a call that names a hold, finding the
// hold's account.
func (l *Ledger) holdOp(ctx context.Context, name, holdID, account, key string, req any) (operation, error) {
	if err := checkRef("hold", holdID); err != nil {
		return operation{}, err
	}
	if account != "" {
		if err := checkRef("account", account); err != nil {
			return operation{}, err
		}
	}
	recKey, userKey := name+":"+holdID, false
	if key != "" {
		if err := checkKey(key); err != nil {
			return operation{}, err
		}
		recKey, userKey = keyOf(key), true
	}
	if account == "" {
		a, err := l.store.HoldAccount(ctx, holdID)
		if err != nil {
			return operation{}, err
		}
		account = a
	}
	return operation{name: name, key: recKey, userKey: userKey, request: req, query: Query{Account: account, Holds: []string{holdID}}}, nil
}

func (t *txn) namedHold(id string) (*Hold, error) {
	src, ok := t.st.Holds[id]
	if !ok || src.Account != t.acct.ID {
		return nil, fmt.Errorf("%w: %q on account %q", ErrUnknownHold, id, t.acct.ID)
	}
	if w, ok := t.holds.get(id); ok {
		return w, nil
	}
	return src, nil
}

// openHoldNamed returns the working copy of an open hold, or the rule error
// that says why it is not open.
func (t *txn) openHoldNamed(id string) (*Hold, error) {
	h, err := t.namedHold(id)
	if err != nil {
		return nil, err
	}
	switch h.Status {
	case HoldOpen:
		return t.hold(id), nil
	case HoldExpired:
		return nil, ruleErr(ErrHoldExpired, "credits: hold %q expired at %s; its credits went back to the account", id, h.Deadline.Format(time.RFC3339))
	default:
		return nil, ruleErr(ErrHoldSettled, "credits: hold %q is already %s", id, h.Status)
	}
}

// capture charges amount of an open hold, taking it from the portions in
// the order they were taken, and releases the rest. It returns the amount
// released.
func (t *txn) capture(h *Hold, amount Credits) Credits {
	need := amount
	for i := range h.Portions {
		p := &h.Portions[i]
		p.Captured = need.Min(p.Amount)
		t.sub(&need, p.Captured)
	}
	released := mustSub(h.Amount, amount)
	h.Status, h.Captured, h.SettledAt = HoldCaptured, amount, t.now
	t.sub(&t.acct.Held, amount)
	t.add(&t.acct.Spent, amount)
	t.entry(Entry{Type: EntryCapture, Amount: amount, Hold: h.ID, Tool: h.Quote.Tool, Member: h.Member})
	if released.IsPositive() {
		for _, p := range h.Portions {
			t.giveBack(p.Bucket, mustSub(p.Amount, p.Captured), t.now)
		}
		t.sub(&t.acct.Held, released)
		t.limitGiveBack(h, released)
		t.entry(Entry{Type: EntryRelease, Amount: released, Hold: h.ID, Tool: h.Quote.Tool, Member: h.Member, Note: "unused part of the hold"})
		t.expire() // credits restored into a grant whose deadline already passed
	}
	return released
}

// mustSub subtracts amounts the ledger has already bounded (b <= a, both
// non-negative), which cannot overflow.
func mustSub(a, b Credits) Credits { return Credits{units: a.units - b.units} }

// ReleaseRequest gives a hold's credits back: the job failed or was cancelled.
type ReleaseRequest struct {
	Hold string `json:"hold"`
	// ReserveKey, instead of Hold, names the hold by the key of the
	// Reserve (or Run) that made it, with Account.
	ReserveKey string `json:"-"`
	// Account, when set, must be the hold's account; it saves a lookup.
	Account string `json:"-"`
	Reason  string `json:"reason,omitempty"`
	// Key is optional: without it the release is idempotent per hold.
	Key string `json:"-"`
}

// ReleaseResult is the outcome of Release.
type ReleaseResult struct {
	Hold     Hold    `json:"hold"`
	Released Credits `json:"released"`
	// Revoked is the part of Released that went back to a grant voided
	// meanwhile and was revoked at once: Available does not include it.
	Revoked   Credits `json:"revoked,omitzero"`
	Available Credits `json:"available"`
	Replay
}

func (r *ReleaseResult) heldHold() *Hold { return &r.Hold }

func (r *ReleaseResult) recorded() any {
	return struct {
		Hold      holdRef `json:"hold"`
		Released  Credits `json:"released"`
		Revoked   Credits `json:"revoked,omitzero"`
		Available Credits `json:"available"`
	}{holdRef{r.Hold.ID}, r.Released, r.Revoked, r.Available}
}

// Release gives every credit of an open hold back to the bucket it came
// from (see Config.RestoreGrace for a bucket that expired meanwhile).
func (l *Ledger) Release(ctx context.Context, req ReleaseRequest) (ReleaseResult, error) {
	if err := checkText("reason", req.Reason, MaxNoteLength, false); err != nil {
		return ReleaseResult{}, err
	}
	if err := l.resolveHold(ctx, &req.Hold, req.ReserveKey, req.Account); err != nil {
		return ReleaseResult{}, err
	}
	// The reason is a note, not part of what is asked: a retry with another
	// reason is still the same release.
	op, err := l.holdOp(ctx, opRelease, req.Hold, req.Account, req.Key, struct {
		Hold string `json:"hold"`
	}{req.Hold})
	if err != nil {
		return ReleaseResult{}, err
	}
	op.holdAt = releasedHold
	return mutate(ctx, l, op, func(t *txn) (ReleaseResult, error) {
		before := t.revokedBack
		h, err := t.openHoldNamed(req.Hold)
		if err != nil {
			return ReleaseResult{}, err
		}
		for _, p := range h.Portions {
			t.giveBack(p.Bucket, p.Amount, t.now)
		}
		h.Status, h.SettledAt = HoldReleased, t.now
		t.sub(&t.acct.Held, h.Amount)
		t.limitGiveBack(h, h.Amount)
		t.entry(Entry{Type: EntryRelease, Amount: h.Amount, Hold: h.ID, Tool: h.Quote.Tool, Member: h.Member, Note: req.Reason})
		t.expire() // credits restored into a grant whose deadline already passed
		return ReleaseResult{Hold: h.Clone(), Released: h.Amount, Revoked: mustSub(t.revokedBack, before), Available: t.acct.Available}, nil
	})
}

// ExtendRequest moves an open hold's deadline later: the heartbeat of a
// worker whose job is still running.
type ExtendRequest struct {
	Hold string `json:"hold"`
	// ReserveKey, instead of Hold, names the hold by the key of the
	// Reserve (or Run) that made it, with Account.
	ReserveKey string `json:"-"`
	// Account, when set, must be the hold's account; it saves a lookup.
	Account string `json:"-"`
	// TTL is how long from now the hold is to last; zero means
	// Config.HoldTTL. In JSON, "ttl_ms", in milliseconds.
	TTL time.Duration `json:"ttl_ms,omitempty"`
}

// ExtendResult is the outcome of Extend.
type ExtendResult struct {
	// Hold is the hold with its new Deadline.
	Hold Hold `json:"hold"`
	// Capped says the deadline stopped at the hold's creation plus
	// Config.MaxHoldTTL, short of what was asked.
	Capped bool `json:"capped,omitempty"`
}

func (r *ExtendResult) markReplayed() {} // Extend keeps no record: nothing replays

// Extend moves an open hold's deadline to now plus req.TTL, never past
// the hold's creation plus Config.MaxHoldTTL and never earlier than it was:
// a job that outlives its TTL keeps its credits held (and its generation
// paid for) while its worker sends heartbeats. A hold already expired is
// refused with [ErrHoldExpired], one captured or released with
// [ErrHoldSettled]; an unknown hold with [ErrUnknownHold]. It takes no key:
// every call moves the deadline from its own now, so a retry is harmless.
// A replay of the Reserve that made the hold still returns the deadline it
// gave ([Hold.FirstDeadline] keeps it).
func (l *Ledger) Extend(ctx context.Context, req ExtendRequest) (ExtendResult, error) {
	ttl := cmpDuration(req.TTL, l.cfg.HoldTTL)
	if ttl < 0 || ttl > l.cfg.MaxHoldTTL {
		return ExtendResult{}, fieldErr("ttl_ms", "is %d: it must be positive and at most %d (Config.MaxHoldTTL)", req.TTL.Milliseconds(), l.cfg.MaxHoldTTL.Milliseconds())
	}
	if err := l.resolveHold(ctx, &req.Hold, req.ReserveKey, req.Account); err != nil {
		return ExtendResult{}, err
	}
	op, err := l.holdOp(ctx, opExtend, req.Hold, req.Account, "", nil)
	if err != nil {
		return ExtendResult{}, err
	}
	op.key = "" // a heartbeat: nothing to record
	return mutate(ctx, l, op, func(t *txn) (ExtendResult, error) {
		h, err := t.openHoldNamed(req.Hold)
		if err != nil {
			return ExtendResult{}, err
		}
		want, limit := t.now.Add(ttl), h.CreatedAt.Add(t.l.cfg.MaxHoldTTL)
		capped := want.After(limit)
		if capped {
			want = limit
		}
		if want.After(h.Deadline) {
			if h.FirstDeadline.IsZero() {
				h.FirstDeadline = h.Deadline
			}
			h.Deadline = want
		}
		return ExtendResult{Hold: h.Clone(), Capped: capped}, nil
	})
}

// ChargeRequest charges a quote in one step, for instant tools.
type ChargeRequest struct {
	Account string `json:"account"`
	Member  string `json:"member,omitempty"`
	// Quote is the quote charged, checked as [ReserveRequest.Quote] is.
	Quote Quote `json:"-"`
	// SealedQuote, instead of Quote, is the quote sealed, as
	// [ReserveRequest.SealedQuote] ("quote" in JSON).
	SealedQuote string            `json:"quote,omitempty"`
	Key         string            `json:"-"`
	Metadata    map[string]string `json:"metadata,omitempty"`
}

// Charge takes a quote's total from the account at once, for an instant
// tool whose generation already succeeded. It is Reserve and Capture of the
// whole quote in one atomic step; the charge can be refunded like a capture.
// The quote is req.Quote or req.SealedQuote, checked as Reserve checks it.
func (l *Ledger) Charge(ctx context.Context, req ChargeRequest) (ChargeResult, error) {
	now := l.now()
	var err error
	if req.Quote, err = l.requestQuote(req.Quote, req.SealedQuote); err != nil {
		return ChargeResult{}, err
	}
	if err := l.checkSpend(req.Account, req.Member, req.Key, req.Quote, req.Metadata); err != nil {
		return ChargeResult{}, err
	}
	req.Quote.ExpiresAt = normalTime(req.Quote.ExpiresAt)
	req.Metadata = normalMeta(req.Metadata)
	sr := spendRequest{Op: opCharge, Account: req.Account, Member: req.Member, Quote: fingerprint(req.Quote), Metadata: req.Metadata}
	op := operation{name: opCharge, key: keyOf(req.Key), userKey: true, request: sr, query: Query{Account: req.Account}, now: now, holdAt: capturedHold}
	return mutate(ctx, l, op, func(t *txn) (ChargeResult, error) {
		if err := l.checkQuote(req.Quote, t.now); err != nil {
			return ChargeResult{}, err
		}
		if err := t.checkPlan(req.Quote); err != nil {
			return ChargeResult{}, err
		}
		if err := t.checkMember(req.Member); err != nil {
			return ChargeResult{}, err
		}
		if err := t.checkLimit(req.Member, req.Quote.Total); err != nil {
			return ChargeResult{}, err
		}
		h, err := t.openHold(req.Member, req.Key, req.Quote, t.now, req.Metadata)
		if err != nil {
			return ChargeResult{}, err
		}
		t.useLimit(h)
		for i := range h.Portions {
			h.Portions[i].Captured = h.Portions[i].Amount
		}
		h.Status, h.Captured, h.SettledAt = HoldCaptured, h.Amount, t.now
		t.add(&t.acct.Spent, h.Amount)
		t.entry(Entry{Type: EntryCharge, Amount: h.Amount, Hold: h.ID, Tool: h.Quote.Tool, Member: h.Member, Key: req.Key})
		return ChargeResult{Hold: h.Clone(), Charged: h.Amount, Available: t.acct.Available}, nil
	})
}

// RefundRequest reverses a captured charge, wholly or in part.
type RefundRequest struct {
	// Charge is the ID of the captured hold (or of a Charge).
	Charge string `json:"charge"`
	// Account, when set, must be the charge's account; it saves a lookup.
	Account string `json:"-"`
	// Amount to refund; zero means all that is not yet refunded.
	Amount Credits `json:"amount"`
	Reason string  `json:"reason,omitempty"`
	// Key is required: a retried refund is applied once.
	Key string `json:"-"`
}

// RefundResult is the outcome of Refund.
type RefundResult struct {
	Hold     Hold    `json:"hold"`
	Refunded Credits `json:"refunded"`
	// Revoked is the part of Refunded that went back to a grant voided
	// meanwhile and was revoked at once: Available does not include it.
	Revoked   Credits `json:"revoked,omitzero"`
	Available Credits `json:"available"`
	Replay
}

// Refund reverses a captured charge exactly: each credit goes back to the
// bucket it was taken from, the last taken first. Refunds of one charge can
// never add up to more than it ([ErrRefundExceedsCharge]).
func (l *Ledger) Refund(ctx context.Context, req RefundRequest) (RefundResult, error) {
	if req.Amount.IsNegative() {
		return RefundResult{}, amountErr("amount", "is negative")
	}
	if err := checkKey(req.Key); err != nil {
		return RefundResult{}, err
	}
	if err := checkText("reason", req.Reason, MaxNoteLength, false); err != nil {
		return RefundResult{}, err
	}
	// The reason is a note: a retry with another reason is the same refund.
	op, err := l.holdOp(ctx, opRefund, req.Charge, req.Account, req.Key, struct {
		Charge string  `json:"charge"`
		Amount Credits `json:"amount"`
	}{req.Charge, req.Amount})
	if err != nil {
		return RefundResult{}, err
	}
	return mutate(ctx, l, op, func(t *txn) (RefundResult, error) {
		before := t.revokedBack
		src, err := t.namedHold(req.Charge)
		if err != nil {
			return RefundResult{}, err
		}
		if src.Status != HoldCaptured {
			return RefundResult{}, ruleErr(ErrNotCaptured, "credits: %q is %s, not a captured charge", src.ID, src.Status)
		}
		left := mustSub(src.Captured, src.Refunded)
		amount := req.Amount
		if amount.IsZero() {
			amount = left
		}
		if amount.IsZero() || left.Less(amount) {
			return RefundResult{}, ruleErr(ErrRefundExceedsCharge, "credits: refund of %s exceeds what is left of charge %q (%s of %s)", amount, src.ID, left, src.Captured)
		}
		h := t.hold(src.ID)
		need := amount
		for i := len(h.Portions) - 1; i >= 0 && need.IsPositive(); i-- {
			p := &h.Portions[i]
			n := need.Min(mustSub(p.Captured, p.Refunded))
			t.add(&p.Refunded, n)
			t.sub(&need, n)
			t.giveBack(p.Bucket, n, t.now)
		}
		t.add(&h.Refunded, amount)
		t.limitGiveBack(h, amount)
		t.sub(&t.acct.Spent, amount)
		t.entry(Entry{Type: EntryRefund, Amount: amount, Hold: h.ID, Tool: h.Quote.Tool, Member: h.Member, Key: req.Key, Note: req.Reason})
		t.expire() // credits restored into a grant whose deadline already passed
		return RefundResult{Hold: h.Clone(), Refunded: amount, Revoked: mustSub(t.revokedBack, before), Available: t.acct.Available}, nil
	})
}

// Job is the work Run does while the credits are held. It returns what the
// job produced (the zero Usage charges the quote as quoted), or an error to
// give every held credit back.
type Job func(ctx context.Context, hold Hold) (Usage, error)

// Run reserves req's quote, runs job, and then captures the usage it
// reports, or — when job returns an error, panics or reports usage that
// cannot be captured ([ErrInvalidRequest]) — releases the hold, so the
// refund path cannot be forgotten. The settlement uses a context that
// is not cancelled with ctx (bounded by Config.SettleTimeout), so a caller
// who gives up still gets the credits back. Run returns the job's error
// (joined with the release's error, if that failed too) and re-panics a
// panic after the release. If the job outlives the hold's deadline, the
// credits are already back and Run returns [ErrHoldExpired].
//
// Run never runs a settled job again: retried under the key of a Run whose
// hold was captured, it returns that first charge (Replayed) without
// calling job; of one whose hold was released (the job failed) or expired,
// an error matching [ErrHoldSettled] or [ErrHoldExpired], also without
// calling job — a new attempt needs a new key. Only a hold still open (an
// earlier Run that did not finish, such as a process that died mid-job)
// runs job again, and is captured once.
func (l *Ledger) Run(ctx context.Context, req ReserveRequest, job Job) (ChargeResult, error) {
	res, err := l.Reserve(ctx, req)
	if err != nil {
		return ChargeResult{}, err
	}
	hold := res.Hold
	if res.Replayed {
		if out, settled, err := l.settledRun(ctx, req.Key, hold); settled || err != nil {
			return out, err
		}
	}
	settle := func(f func(context.Context) error) error {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.cfg.SettleTimeout)
		defer cancel()
		return f(sctx)
	}
	release := func(reason string) error {
		return settle(func(sctx context.Context) error {
			_, err := l.Release(sctx, ReleaseRequest{Hold: hold.ID, Account: hold.Account, Reason: reason})
			if errors.Is(err, ErrHoldExpired) {
				return nil // the deadline already gave the credits back
			}
			return err
		})
	}
	usage, jobErr := func() (u Usage, err error) {
		defer func() {
			if p := recover(); p != nil {
				if relErr := release("job panicked"); relErr != nil {
					l.log.ErrorContext(ctx, "credits: release after panic failed", "hold", hold.ID, "err", relErr)
				}
				panic(p)
			}
		}()
		return job(ctx, hold)
	}()
	if jobErr == nil {
		// Usage no capture accepts (negative, or of the wrong kind) is the
		// job's failure too: its credits go back rather than stay held
		// until the deadline.
		if _, _, jobErr = hold.Quote.Cost(usage); jobErr != nil {
			jobErr = fmt.Errorf("credits: the job reported usage that cannot be captured: %w", jobErr)
		}
	}
	if jobErr != nil {
		if relErr := release("job failed: " + truncateNote(jobErr.Error())); relErr != nil {
			return ChargeResult{}, errors.Join(jobErr, relErr)
		}
		return ChargeResult{}, jobErr
	}
	var out ChargeResult
	err = settle(func(sctx context.Context) error {
		var err error
		out, err = l.Capture(sctx, CaptureRequest{Hold: hold.ID, Account: hold.Account, Usage: usage})
		return err
	})
	return out, err
}

// settledRun reports how the hold of a replayed Run ended, if it has: the
// first capture's result, or the error a released or expired hold gives.
func (l *Ledger) settledRun(ctx context.Context, key string, hold Hold) (ChargeResult, bool, error) {
	capKey := opCapture + ":" + hold.ID
	op := operation{name: opCapture, key: capKey, query: Query{Account: hold.Account, Holds: []string{hold.ID}, Keys: []string{capKey}}, holdAt: capturedHold}
	t, err := l.projected(ctx, op.query)
	if err != nil {
		return ChargeResult{}, false, err
	}
	st := t.st
	h := t.hold(hold.ID)
	switch {
	case h == nil:
		return ChargeResult{}, false, fmt.Errorf("%w: the hold %q of Run %q", ErrUnknownHold, hold.ID, key)
	case h.Status == HoldReleased:
		return ChargeResult{}, true, fmt.Errorf("%w: Run %q already ran its job, which failed or was cancelled: its hold %s was released at %s; the job is not run again (a new attempt needs a new key)",
			ErrHoldSettled, key, h.ID, h.SettledAt.Format(time.RFC3339Nano))
	case h.Status == HoldExpired:
		return ChargeResult{}, true, fmt.Errorf("%w: Run %q did not settle its hold %s before its deadline, %s; the job is not run again (a new attempt needs a new key)",
			ErrHoldExpired, key, h.ID, h.Deadline.Format(time.RFC3339Nano))
	case h.Status != HoldCaptured:
		return ChargeResult{}, false, nil // still open: the earlier Run did not finish
	}
	if rec := st.Records[capKey]; rec != nil {
		r, byID, bizErr, err := decodeResult[ChargeResult](rec.Result)
		if err == nil && byID {
			err = rebuildHold(&op, st, &r)
		}
		if err != nil || bizErr != nil {
			return ChargeResult{}, true, cmpErr(err, bizErr)
		}
		r.markReplayed()
		return r, true, nil
	}
	// Captured by a Capture under a key of its own: what the hold says.
	c := capturedHold(h.Clone())
	return ChargeResult{Hold: c, Charged: c.Captured, Released: mustSub(c.Amount, c.Captured), Available: t.acct.Available, Replay: Replay{Replayed: true}}, true, nil
}

// truncateNote makes an error message safe to store as a note: valid
// UTF-8, no control characters, at most 200 bytes.
func truncateNote(s string) string {
	if len(s) > 200 {
		s = s[:200]
	}
	s = strings.ToValidUTF8(s, "")
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

// SweepResult counts what a sweep expired and renewed.
type SweepResult struct {
	Accounts      int // accounts visited
	HoldsExpired  int // holds released by their deadline
	GrantsExpired int
	// GrantsWarned counts the expiry warnings written
	// ([Config.ExpiryWarning]).
	GrantsWarned int
	// AllowancesGranted counts the allowance grants of renewed periods
	// (rollovers included).
	AllowancesGranted int
}

// Sweep applies every due expiry and allowance renewal now: holds past
// their deadline are released, grants past their expiry lose their
// remainder, and plans' allowances renew, with their entries written.
// Neither ever depends on Sweep — every operation and read applies them
// lazily — but a sweep makes stored history and balances current for
// accounts nobody touches. Each account is visited at most once per call.
func (l *Ledger) Sweep(ctx context.Context) (SweepResult, error) {
	var out SweepResult
	now := l.now()
	seen := map[string]bool{}
	for {
		ids, err := l.store.DueAccounts(ctx, now, l.cfg.ExpiryWarning, 100)
		if err != nil {
			return out, err
		}
		fresh := 0
		for _, id := range ids {
			if seen[id] {
				continue
			}
			seen[id] = true
			fresh++
			op := operation{name: opSweep, query: Query{Account: id}, now: now}
			r, err := mutate(ctx, l, op, func(t *txn) (sweepCount, error) {
				var c sweepCount
				for _, e := range t.entries {
					switch e.Type {
					case EntryHoldExpired:
						c.Holds++
					case EntryExpiry:
						c.Grants++
					case EntryGrantExpiring:
						c.Warned++
					case EntryGrant:
						c.Allowances++
					}
				}
				return c, nil
			})
			if err != nil && !errors.Is(err, ErrUnknownAccount) {
				return out, fmt.Errorf("credits: sweep %q: %w", id, err)
			}
			out.Accounts++
			out.HoldsExpired += r.Holds
			out.GrantsExpired += r.Grants
			out.GrantsWarned += r.Warned
			out.AllowancesGranted += r.Allowances
		}
		if fresh == 0 {
			return out, nil
		}
	}
}

type sweepCount struct {
	Holds, Grants, Warned, Allowances int
	Replay
}

package credits

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"
)

// Config configures a [Ledger]. The zero value of every field is a usable
// default, stated on the field.
type Config struct {
	// Catalog prices quotes and checks the quotes given to Reserve and
	// Charge. Nil means DefaultCatalog(). [Ledger.SetCatalog] replaces it
	// at run time.
	Catalog *Catalog
	// EarlierCatalogs are earlier versions of the catalog whose quotes
	// Reserve and Charge still accept until the quotes expire: during a
	// rolling deploy of a price change, servers still on the old version
	// make quotes that this one must take. Versions must differ from
	// Catalog's and from each other. A quote given as a Quote value is not
	// signed (a sealed one is, see QuoteKey): while a version is listed
	// here, a caller can still obtain its prices (a quote never lives
	// longer than its catalog's TTL from now, so not for ever), so remove
	// it once no server quotes from it.
	EarlierCatalogs []*Catalog
	// QuoteKey is the HMAC-SHA256 key with which [Ledger.SealQuote] seals
	// quotes and [Ledger.OpenQuote] (and Reserve and Charge, given a
	// SealedQuote) opens them: at least [MinQuoteKeyLength] random bytes,
	// the same on every server, kept secret. Nil means no sealed quotes
	// (they fail with [ErrNoQuoteKey]).
	QuoteKey []byte
	// EarlierQuoteKeys are keys whose sealed quotes are still opened, never
	// used to seal: to rotate the key, make the new one QuoteKey and the
	// old one an earlier key on every server, then drop the old one once
	// nothing sealed with it is still in use. A quote lives its catalog's
	// TTL (15 minutes by default), but a retry of a Reserve or Charge under
	// its key sends its sealed quote again, to be opened before it is
	// replayed: keep an earlier key as long as such retries may come.
	EarlierQuoteKeys [][]byte
	// Now is the clock. Nil means time.Now. Every rule reads time from it.
	Now func() time.Time
	// NewID makes the IDs of holds and grants; it must return a unique
	// string of at most 128 bytes on every call. Nil means time-ordered
	// IDs: a prefix ("hold_…", "grant_…"), then the milliseconds of Now
	// and 80 random bits, 32 hex digits in all. IDs made later sort after
	// earlier ones (while the clock moves forward), so a database inserts
	// them at the end of its ID index rather than on a random page of it —
	// the index's recent pages stay in memory however long the history.
	NewID func(prefix string) string

	// Signup is given once to every new personal account (a team account,
	// funded by purchases, gets none). A zero Amount gives none.
	Signup Reward
	// Daily is the daily reward an account may claim once per calendar day
	// of DayLocation. A zero Amount disables ClaimDaily.
	Daily Reward
	// DayLocation is the time zone whose midnight starts a new day for the
	// daily reward and for spending reports by day. Nil means UTC.
	DayLocation *time.Location

	// HoldTTL is how long a hold lasts when its request sets no TTL. Zero
	// means one hour. A hold whose deadline passes is released by itself.
	HoldTTL time.Duration
	// MaxHoldTTL bounds the TTL a request may ask for. Zero means 7 days.
	MaxHoldTTL time.Duration
	// RestoreGrace applies when a release or refund gives credits back to a
	// grant that has expired in the meantime: the credits are not lost, they
	// come back in a new grant of the same kind that expires RestoreGrace
	// after the original grant did (so a failed job never costs the user
	// credits, and expiring credits cannot be stretched further than that).
	// Credits restored after that point expire at once. Zero means 24 hours.
	RestoreGrace time.Duration
	// ExpiryWarning, when positive, is how long before a grant's credits
	// expire the ledger warns, once per grant: a [EntryGrantExpiring]
	// entry (which the feed delivers), written by the first operation or
	// sweep at or after that instant, if the grant still holds credits and
	// has not expired by then. Zero means no warnings.
	ExpiryWarning time.Duration

	// LowBalanceThreshold is the threshold given to new accounts that set
	// none. Zero means no low-balance signal by default.
	LowBalanceThreshold Credits
	// OnLowBalance, when not nil, is called after an operation that took an
	// account's settled balance (Available + Held: a hold alone, which the
	// job may give back, never signals; its capture may) from at or above
	// its threshold to below it, once the operation is stored: the same
	// moment the history records with an [EntryBalanceLow] entry, which the
	// feed ([Ledger.Feed]) delivers durably. Signals alternate, one per
	// crossing (see [Account.Low]); an account created below its threshold
	// is signalled by its first operation that moves its balance and
	// leaves it below. Balance.Low says it is low at any time. It runs on the caller's goroutine; it
	// must not block for long. It is never called for an operation that
	// runs inside a caller's transaction ([CommitsLater]: sqlstore's
	// WithTx), which may still roll back: the feed reports those.
	OnLowBalance func(ctx context.Context, e LowBalanceEvent)
	// SettleTimeout bounds the release or capture that [Ledger.Run] makes
	// after the job, even when the caller's context was cancelled. Zero
	// means 30 seconds.
	SettleTimeout time.Duration
	// Logger receives debug lines. Nil means discard.
	Logger *slog.Logger
}

// Reward is a recurring or one-off grant of free credits.
type Reward struct {
	Amount Credits
	// ValidFor is how long the credits last; zero means they never expire.
	ValidFor time.Duration
}

// LowBalanceEvent reports that an account's settled balance (Available +
// Held) fell below its threshold.
type LowBalanceEvent struct {
	Account   string
	Available Credits
	Held      Credits
	Threshold Credits
	At        time.Time
}

// Ledger applies the rules of the credit ledger to a [Store]. It is safe for
// concurrent use; concurrent operations on one account are serialized by the
// store's lock, operations on different accounts run in parallel.
type Ledger struct {
	store    Store
	cfg      Config // cfg.Catalog is the first catalog; catalogs has the current ones
	catalogs *catalogs
	log      *slog.Logger
}

// NewLedger returns a ledger on store. cfg may be nil for all defaults.
func NewLedger(store Store, cfg *Config) (*Ledger, error) {
	if store == nil {
		return nil, invalid("nil store")
	}
	var c Config
	if cfg != nil {
		c = *cfg
	}
	if c.Catalog == nil {
		c.Catalog = DefaultCatalog()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.NewID == nil {
		now := c.Now
		c.NewID = func(prefix string) string { return timeOrderedID(prefix, now()) }
	}
	if c.DayLocation == nil {
		c.DayLocation = time.UTC
	}
	c.HoldTTL = cmp.Or(c.HoldTTL, time.Hour)
	c.MaxHoldTTL = cmp.Or(c.MaxHoldTTL, 7*24*time.Hour)
	c.RestoreGrace = cmp.Or(c.RestoreGrace, 24*time.Hour)
	c.SettleTimeout = cmp.Or(c.SettleTimeout, 30*time.Second)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case c.HoldTTL < 0 || c.MaxHoldTTL < 0 || c.HoldTTL > c.MaxHoldTTL:
		return nil, invalid("config: HoldTTL %s must be positive and at most MaxHoldTTL %s", c.HoldTTL, c.MaxHoldTTL)
	case c.RestoreGrace < 0:
		return nil, invalid("config: negative RestoreGrace")
	case c.ExpiryWarning < 0:
		return nil, invalid("config: negative ExpiryWarning")
	case c.SettleTimeout < 0:
		return nil, invalid("config: negative SettleTimeout")
	case c.Signup.Amount.IsNegative() || c.Signup.ValidFor < 0:
		return nil, invalid("config: negative Signup reward")
	case c.Daily.Amount.IsNegative() || c.Daily.ValidFor < 0:
		return nil, invalid("config: negative Daily reward")
	case c.LowBalanceThreshold.IsNegative():
		return nil, invalid("config: negative LowBalanceThreshold")
	}
	if err := checkQuoteKeys(&c); err != nil {
		return nil, err
	}
	cats, err := newCatalogs(c.Catalog, c.EarlierCatalogs)
	if err != nil {
		return nil, err
	}
	c.EarlierCatalogs = nil // kept in cats
	return &Ledger{store: store, cfg: c, catalogs: cats, log: c.Logger}, nil
}

// checkQuoteKeys checks the keys of sealed quotes, and copies them so that
// a caller who reuses the slices cannot change them.
func checkQuoteKeys(c *Config) error {
	if len(c.QuoteKey) == 0 {
		if len(c.EarlierQuoteKeys) > 0 {
			return invalid("config: EarlierQuoteKeys without a QuoteKey")
		}
		c.QuoteKey, c.EarlierQuoteKeys = nil, nil
		return nil
	}
	if len(c.QuoteKey) < MinQuoteKeyLength {
		return invalid("config: QuoteKey of %d bytes: it needs at least %d", len(c.QuoteKey), MinQuoteKeyLength)
	}
	c.QuoteKey = bytes.Clone(c.QuoteKey)
	earlier := make([][]byte, len(c.EarlierQuoteKeys))
	for i, k := range c.EarlierQuoteKeys {
		if len(k) < MinQuoteKeyLength {
			return invalid("config: EarlierQuoteKeys[%d] of %d bytes: it needs at least %d", i, len(k), MinQuoteKeyLength)
		}
		earlier[i] = bytes.Clone(k)
	}
	c.EarlierQuoteKeys = earlier
	return nil
}

// timeOrderedID returns prefix, "_", then 48 bits of t's Unix
// milliseconds and 80 random bits, hex-encoded: unique without
// coordination (a clock that stands still or goes back costs the order,
// never the uniqueness), and sorting by the time it was made.
func timeOrderedID(prefix string, t time.Time) string {
	var b [16]byte
	ms := uint64(t.UnixMilli())
	for i := range 6 {
		b[i] = byte(ms >> (40 - 8*i))
	}
	_, _ = rand.Read(b[6:]) // crypto/rand.Read never fails
	return prefix + "_" + hex.EncodeToString(b[:])
}

func (l *Ledger) newID(prefix string) string { return l.cfg.NewID(prefix) }

// now reads the clock, in UTC and without a monotonic reading, so that a
// result read back from its idempotency record is identical to the first.
func (l *Ledger) now() time.Time { return l.cfg.Now().UTC().Round(0) }

// WithStore returns a ledger with the same configuration on another store,
// such as a store bound to the application's own transaction
// (sqlstore.Store.WithTx). It is cheap: call it per transaction.
func (l *Ledger) WithStore(store Store) *Ledger {
	c := *l
	c.store = store
	return &c
}

// Catalog returns the catalog the ledger quotes from now.
func (l *Ledger) Catalog() *Catalog { return l.catalogs.set.Load().current }

// Quote prices req with the ledger's catalog at the ledger's clock. It
// touches no store, so it knows no account: req.Plan is taken as given,
// which suits a public price list. To show a user the price they will be
// charged, use [Ledger.QuoteFor], which prices with the account's plan.
func (l *Ledger) Quote(req QuoteRequest) (Quote, error) {
	return l.Catalog().Quote(req, l.now())
}

// Operation names, as recorded with idempotency keys.
const (
	opCreate  = "create_account"
	opGrant   = "grant"
	opDaily   = "claim_daily"
	opReserve = "reserve"
	opCapture = "capture"
	opRelease = "release"
	opCharge  = "charge"
	opRefund  = "refund"
	opMembers = "members"
	opUpdate  = "update_account"
	opLimits  = "member_limits"
	opExtend  = "extend"
	opDebit   = "debit"
	opVoid    = "void_grant"
	opNote    = "note"
	opSweep   = "sweep"
)

// operation describes one mutation for the generic runner.
type operation struct {
	name string
	key  string // the record key; "" when the operation has none
	// userKey says the key is the caller's: a different request under it is
	// a conflict, and a business refusal is recorded under it. A key the
	// ledger derives (capture and release by hold) records successes only.
	userKey bool
	request any // the canonical request, compared on replay
	query   Query
	// now is the instant the operation happens at: read once, used both to
	// load the due holds and to apply the rules. Zero means "read the clock".
	now time.Time
	// holdAt is set for operations whose result is a hold they made or
	// settled (Reserve, Charge, Capture, Release): the hold's row outlives
	// the record, so the record keeps only the hold's ID, and a replay
	// rebuilds the hold as the operation left it from the hold as it is
	// now. A quarter of the bytes a charge wrote were that copy of its hold.
	holdAt func(current Hold) Hold
}

// heldResult is implemented by the results whose records keep only their
// hold's ID (see operation.holdAt).
type heldResult interface {
	heldHold() *Hold
	// recorded is the result as its record keeps it: the hold as {"id"},
	// every other field as it is.
	recorded() any
}

// holdRef is a hold in a recorded result: its ID, the row says the rest.
type holdRef struct {
	ID string `json:"id"`
}

// needHold asks mutate to run the operation again with the hold a
// recorded result names loaded too.
type needHold struct{ id string }

func (e *needHold) Error() string { return "credits: internal: replay needs hold " + e.id }

// rebuildHold replaces the hold of a result decoded from a record that
// keeps only its ID with the hold as the operation left it. It returns a
// *needHold when the state has not loaded that hold.
func rebuildHold(op *operation, st *State, r any) error {
	hr, ok := r.(heldResult)
	if !ok || op.holdAt == nil {
		return fmt.Errorf("credits: idempotency record %q keeps a hold by ID, which a %s result has not", op.key, op.name)
	}
	h := hr.heldHold()
	cur, err := recordedHold(op, st, h.ID)
	if err != nil {
		return err
	}
	*h = op.holdAt(cur.Clone())
	return nil
}

// recordedHold is hold id, which op's record names, as st loaded it: a
// *needHold when st has not loaded it, and ErrUnknownHold when it was
// asked for and the account does not have it.
func recordedHold(op *operation, st *State, id string) (*Hold, error) {
	h := st.Holds[id]
	if h == nil || h.Account != op.query.Account {
		if slices.Contains(op.query.Holds, id) {
			return nil, fmt.Errorf("%w: idempotency record %q names hold %q, which account %q does not have", ErrUnknownHold, op.key, id, op.query.Account)
		}
		return nil, &needHold{id: id}
	}
	return h, nil
}

// byHoldRequest is how the record of a Reserve or Charge keeps its
// request: by the hold it made, which has every field of the request but
// the TTL asked for (member, metadata and the quote it priced), so that a
// charge does not write them twice. A replay rebuilds the request from the
// hold (recordedRequest) and compares it, byte for byte, with the new one,
// as it compares a request kept whole. Records written before this rule
// keep the whole request and are compared as they are.
type byHoldRequest struct {
	ByHold byHold `json:"by_hold"`
}

type byHold struct {
	TTL time.Duration `json:"ttl,omitempty"`
}

var byHoldPrefix = []byte(`{"by_hold":`)

// recordedRequest is the request rec was recorded for, canonical JSON: as
// kept, or rebuilt from the hold it names (a *needHold when the state has
// not loaded that hold).
func recordedRequest(op *operation, st *State, rec *Record) ([]byte, error) {
	if !bytes.HasPrefix(rec.Request, byHoldPrefix) {
		return rec.Request, nil
	}
	var kept byHoldRequest
	var res struct {
		OK struct {
			Hold holdRef `json:"hold"`
		} `json:"ok_hold_by_id"`
	}
	if err := json.Unmarshal(rec.Request, &kept); err != nil {
		return nil, fmt.Errorf("credits: decode idempotency record %q: %w", rec.Key, err)
	}
	if err := json.Unmarshal(rec.Result, &res); err != nil || res.OK.Hold.ID == "" {
		return nil, fmt.Errorf("credits: idempotency record %q keeps its request by a hold it does not name (%v)", rec.Key, err)
	}
	h, err := recordedHold(op, st, res.OK.Hold.ID)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(spendRequest{Op: rec.Operation, Account: h.Account, Member: h.Member, Quote: fingerprint(h.Quote), TTL: kept.ByHold.TTL, Metadata: h.Metadata})
	if err != nil {
		return nil, fmt.Errorf("credits: encode request: %w", err)
	}
	return b, nil
}

// result is implemented by the pointer of every result type, so that a
// replayed result can be flagged.
type result[R any] interface {
	*R
	markReplayed()
}

// mutate runs one operation: idempotency check, lazy expiry, the body, and
// the change handed to the store. A business failure under a key is
// recorded, so a retry fails the same way.
func mutate[R any, PR result[R]](ctx context.Context, l *Ledger, op operation, body func(t *txn) (R, error)) (R, error) {
	var zero R
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	reqJSON, err := json.Marshal(op.request)
	if err != nil {
		return zero, fmt.Errorf("credits: encode request: %w", err)
	}
	// What apply decides, in one value (apply is a closure the store
	// calls, so everything it sets lives on the heap: once, not per field).
	var out struct {
		res    R
		bizErr error
		event  *LowBalanceEvent
	}
	if op.key != "" {
		op.query.Keys = append(op.query.Keys, op.key)
	}
	now := op.now
	if now.IsZero() {
		now = l.now()
	}
	op.query.Due = now
	apply := func(st *State) (*Change, error) {
		out.res, out.bizErr, out.event = zero, nil, nil
		if rec := st.Records[op.key]; op.key != "" && rec != nil {
			recReq, err := recordedRequest(&op, st, rec)
			if err != nil {
				return nil, err
			}
			same := rec.Operation == op.name && bytes.Equal(recReq, reqJSON)
			switch {
			case same:
				r, byID, e, err := decodeResult[R](rec.Result)
				if err != nil {
					return nil, err
				}
				if byID {
					if err := rebuildHold(&op, st, PR(&r)); err != nil {
						return nil, err
					}
				}
				PR(&r).markReplayed()
				if e != nil {
					e = &ReplayedError{Err: e, DecidedAt: rec.CreatedAt}
				}
				out.res, out.bizErr = r, e
				return nil, nil
			case op.name == opCreate:
				return nil, fmt.Errorf("%w: %q was created by a different request", ErrAccountExists, op.query.Account)
			case op.userKey:
				return nil, conflict(op.query.Account, op.key, rec.Operation, recReq, op.name, reqJSON)
			}
			// A derived key used with another request: the operation itself
			// says why it cannot happen again (the hold is settled).
		}
		if st.Account == nil && op.name != opCreate {
			return nil, fmt.Errorf("%w: %q", ErrUnknownAccount, op.query.Account)
		}
		t := newTxn(l, st, now)
		if st.Account != nil {
			t.expire()
		}
		r, err := body(t)
		if err == nil {
			t.signal()
		}
		if t.err != nil {
			return nil, t.err
		}
		if err != nil {
			var re *ruleError
			var ie *InsufficientCreditsError
			var le *MemberLimitError
			if !op.userKey || (!errors.As(err, &re) && !errors.As(err, &ie) && !errors.As(err, &le)) {
				return nil, err
			}
			rec, encErr := newRecord(op, reqJSON, nil, err, now)
			if encErr != nil {
				return nil, encErr
			}
			// The refusal is recorded with the expiries that fell due, and
			// nothing else of the operation.
			ch := &Change{}
			if exp := newTxn(l, st, now); st.Account != nil {
				exp.expire()
				exp.signal()
				if exp.err == nil && exp.changed() {
					ch = exp.change()
					out.event = exp.lowBalance()
				}
			}
			ch.Record = rec
			st.Fold(ch)
			out.bizErr = err
			return ch, nil
		}
		if !t.changed() && op.key == "" {
			out.res = r
			return nil, nil
		}
		ch := t.change()
		if op.key != "" && st.Records[op.key] == nil {
			rec, encErr := newRecord(op, reqJSON, &r, nil, now)
			if encErr != nil {
				return nil, encErr
			}
			ch.Record = rec
		}
		st.Fold(ch)
		out.res, out.event = r, t.lowBalance()
		return ch, nil
	}
	err = l.store.Update(ctx, op.query, apply)
	if nh := (*needHold)(nil); errors.As(err, &nh) {
		// A replay of a record that keeps only its hold's ID, whose hold
		// the first load did not name: once more, with the hold.
		op.query.Holds = append(slices.Clip(op.query.Holds), nh.id)
		err = l.store.Update(ctx, op.query, apply)
	}
	if err != nil {
		return zero, err
	}
	if e := out.event; e != nil {
		l.log.DebugContext(ctx, "credits: low balance", "account", e.Account, "available", e.Available.String(), "threshold", e.Threshold.String())
		if cl, ok := l.store.(CommitsLater); l.cfg.OnLowBalance != nil && (!ok || !cl.CommitsLater()) {
			l.cfg.OnLowBalance(ctx, *e)
		}
	}
	return out.res, out.bizErr
}

// ruleError is a business outcome decided against the account's state. It
// is recorded under the idempotency key, so a retry fails the same way.
type ruleError struct {
	kind error
	msg  string
}

func (e *ruleError) Error() string { return e.msg }
func (e *ruleError) Unwrap() error { return e.kind }

func ruleErr(kind error, format string, args ...any) error {
	return &ruleError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// recordedKinds are the sentinels a record may carry, by code.
var recordedKinds = map[string]error{
	"hold_expired":   ErrHoldExpired,
	"hold_settled":   ErrHoldSettled,
	"not_captured":   ErrNotCaptured,
	"exceeds_hold":   ErrExceedsHold,
	"refund_exceeds": ErrRefundExceedsCharge,
	"not_member":     ErrNotMember,
	"grant_voided":   ErrGrantVoided,
}

type recordedResult struct {
	OK json.RawMessage `json:"ok,omitempty"`
	// OKHoldByID is a success whose hold is kept by its ID (see
	// operation.holdAt). It is not under "ok" so that a version from before
	// that rule, which reads only "ok", fails to decode the record (an
	// error, nothing written) rather than replay a hold it cannot see.
	OKHoldByID json.RawMessage `json:"ok_hold_by_id,omitempty"`
	Error      string          `json:"error,omitempty"`
	Message    string          `json:"message,omitempty"`
	Available  *Credits        `json:"available,omitempty"`
	Requested  *Credits        `json:"requested,omitempty"`
	Account    string          `json:"account,omitempty"`
	// A refusal by a member's limit (error "member_limit").
	Member string   `json:"member,omitempty"`
	Period Period   `json:"period,omitempty"`
	Limit  *Credits `json:"limit,omitempty"`
	Used   *Credits `json:"used,omitempty"`
}

func newRecord(op operation, reqJSON []byte, res any, bizErr error, now time.Time) (*Record, error) {
	var rr recordedResult
	if bizErr != nil {
		var ie *InsufficientCreditsError
		var le *MemberLimitError
		if errors.As(bizErr, &ie) {
			rr.Error = "insufficient"
			rr.Available, rr.Requested, rr.Account = &ie.Available, &ie.Requested, ie.Account
		} else if errors.As(bizErr, &le) {
			rr.Error = "member_limit"
			rr.Account, rr.Member, rr.Period, rr.Limit, rr.Used, rr.Requested = le.Account, le.Member, le.Period, &le.Limit, &le.Used, &le.Requested
		} else {
			for code, kind := range recordedKinds {
				if errors.Is(bizErr, kind) {
					rr.Error = code
					break
				}
			}
			rr.Message = bizErr.Error()
		}
	} else {
		prefix := `{"ok":`
		if hr, ok := res.(heldResult); ok && op.holdAt != nil {
			res, prefix = hr.recorded(), `{"ok_hold_by_id":`
			if sr, ok := op.request.(spendRequest); ok {
				b, err := json.Marshal(byHoldRequest{ByHold: byHold{TTL: sr.TTL}})
				if err != nil {
					return nil, fmt.Errorf("credits: encode request: %w", err)
				}
				reqJSON = b
			}
		}
		b, err := json.Marshal(res)
		if err != nil {
			return nil, fmt.Errorf("credits: encode result: %w", err)
		}
		// {"ok":<result>} (or "ok_hold_by_id") without re-validating the
		// result's JSON.
		out := make([]byte, 0, len(b)+len(prefix)+1)
		out = append(append(append(out, prefix...), b...), '}')
		return &Record{Key: op.key, Operation: op.name, Request: reqJSON, Result: out, CreatedAt: now}, nil
	}
	b, err := json.Marshal(rr)
	if err != nil {
		return nil, fmt.Errorf("credits: encode record: %w", err)
	}
	return &Record{Key: op.key, Operation: op.name, Request: reqJSON, Result: b, CreatedAt: now}, nil
}

// decodeResult reads a record's result: the result (byID: its hold kept
// by ID only, for rebuildHold), or the business error recorded.
func decodeResult[R any](data []byte) (r R, byID bool, bizErr, err error) {
	var rr recordedResult
	if err := json.Unmarshal(data, &rr); err != nil {
		return r, false, nil, fmt.Errorf("credits: decode idempotency record: %w", err)
	}
	if rr.Error == "" {
		ok := rr.OK
		if byID = rr.OKHoldByID != nil; byID {
			ok = rr.OKHoldByID
		}
		if err := json.Unmarshal(ok, &r); err != nil {
			return r, false, nil, fmt.Errorf("credits: decode idempotency record: %w", err)
		}
		return r, byID, nil, nil
	}
	if rr.Error == "insufficient" && rr.Available != nil && rr.Requested != nil {
		return r, false, &InsufficientCreditsError{Account: rr.Account, Available: *rr.Available, Requested: *rr.Requested}, nil
	}
	if rr.Error == "member_limit" && rr.Limit != nil && rr.Used != nil && rr.Requested != nil {
		return r, false, &MemberLimitError{Account: rr.Account, Member: rr.Member, Period: rr.Period, Limit: *rr.Limit, Used: *rr.Used, Requested: *rr.Requested}, nil
	}
	kind, ok := recordedKinds[rr.Error]
	if !ok {
		return r, false, nil, fmt.Errorf("credits: idempotency record has unknown error code %q", rr.Error)
	}
	return r, false, &ruleError{kind: kind, msg: rr.Message}, nil
}

func conflict(account, key, recOp string, recReq []byte, op string, req []byte) error {
	e := &IdempotencyConflictError{Account: account, Key: userKey(key), Operation: recOp}
	if recOp != op {
		e.Fields = []string{"operation"}
		return e
	}
	var a, b map[string]json.RawMessage
	_ = json.Unmarshal(recReq, &a)
	_ = json.Unmarshal(req, &b)
	for k, v := range a {
		if w, ok := b[k]; !ok || !bytes.Equal(v, w) {
			e.Fields = append(e.Fields, apiFieldName(k))
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			e.Fields = append(e.Fields, apiFieldName(k))
		}
	}
	slices.Sort(e.Fields)
	return e
}

// apiFieldName is the name a JSON API gives a field of a recorded request:
// the recorded requests keep the TTL in nanoseconds under "ttl" (their
// encoding never changes), which a request's JSON calls "ttl_ms".
func apiFieldName(recorded string) string {
	if recorded == "ttl" {
		return "ttl_ms"
	}
	return recorded
}

// Record keys: a caller's key, and the keys the ledger derives for
// operations that are idempotent by nature.
func keyOf(k string) string { return "k:" + k }
func userKey(k string) string {
	if len(k) > 2 && k[:2] == "k:" {
		return k[2:]
	}
	return k
}

// Replay marks a result that an earlier call with the same idempotency key
// produced: nothing changed this time.
type Replay struct {
	// Replayed is true when this result is the first call's, returned again.
	Replayed bool `json:"-"`
}

func (r *Replay) markReplayed() { r.Replayed = true }

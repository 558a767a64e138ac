package credits

import (
	"maps"
	"slices"
	"time"
)

// GrantKind says where a grant's credits came from. Only purchased credits
// count as paid; every other kind is free (promotional) credit.
type GrantKind string

// The grant kinds. Purchased credits never expire; the others may.
const (
	KindSignup     GrantKind = "signup"     // free credits given once, at account creation
	KindDaily      GrantKind = "daily"      // the daily reward
	KindPurchase   GrantKind = "purchase"   // bought credits: paid, never expire
	KindPromo      GrantKind = "promo"      // promotional credits
	KindPlan       GrantKind = "plan"       // a plan's allowance
	KindAdjustment GrantKind = "adjustment" // an operator's correction in the user's favour
)

// Valid reports whether k is one of the defined kinds.
func (k GrantKind) Valid() bool {
	switch k {
	case KindSignup, KindDaily, KindPurchase, KindPromo, KindPlan, KindAdjustment:
		return true
	}
	return false
}

// Paid reports whether credits of this kind were paid for.
func (k GrantKind) Paid() bool { return k == KindPurchase }

// Account is an account row: one balance, personal or shared by a team.
//
// The counters always satisfy
// Granted = Available + Held + Spent + Expired + Debited.
type Account struct {
	ID        string    `json:"id"`
	CreatedAt time.Time `json:"created_at"`
	// Plan is the catalog plan the account's quotes are priced with ("":
	// none, the base rates). Reserve and Charge accept only quotes priced
	// with it; [Ledger.UpdateAccount] changes it.
	Plan string `json:"plan,omitempty"`
	// Allowance is the account's place in its plan's allowance schedule;
	// nil when it has none. The ledger keeps it.
	Allowance *AllowanceState `json:"allowance,omitempty"`
	// RenewsAt is when the allowance renews next (the start of its next
	// period); zero when the account has none. The ledger sets it from
	// Allowance; a store persists it, and [Store.DueAccounts] returns the
	// account once it is at or before now, so that a sweep renews it.
	RenewsAt time.Time `json:"renews_at,omitzero"`
	// Limits are the spending limits of a team's members and their usage
	// in the current period; nil when none. [Ledger.SetMemberLimits] sets
	// them; the ledger keeps the usage.
	Limits *MemberLimits `json:"limits,omitempty"`
	// Team accounts are spent from by their Members only.
	Team    bool     `json:"team,omitempty"`
	Members []string `json:"members,omitempty"` // sorted, unique
	// LowBalanceThreshold: when the settled balance (Available + Held)
	// falls below it, the ledger records a balance_low entry and calls
	// its OnLowBalance hook. Zero disables it.
	LowBalanceThreshold Credits `json:"low_balance_threshold"`
	// Low says the account's last balance signal was balance_low (not yet
	// followed by balance_recovered). The ledger keeps it, so that each
	// crossing is signalled once, whatever the threshold did meanwhile.
	Low bool `json:"low,omitempty"`

	Available Credits `json:"available"`        // spendable now: the sum of the live buckets' Remaining
	Held      Credits `json:"held"`             // reserved by open holds
	Granted   Credits `json:"granted"`          // every credit ever granted
	Spent     Credits `json:"spent"`            // captured and charged, less refunds
	Expired   Credits `json:"expired"`          // lost to grant expiry
	Debited   Credits `json:"debited,omitzero"` // taken out by Debit and VoidGrant (omitted when zero)

	// Seq is the Seq of the account's last entry.
	Seq      int64             `json:"seq"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// Clone returns a deep copy of a.
func (a Account) Clone() Account {
	a.Members = slices.Clone(a.Members)
	a.Metadata = maps.Clone(a.Metadata)
	a.Allowance = a.Allowance.Clone()
	a.Limits = a.Limits.Clone()
	return a
}

// IsMember reports whether member belongs to the team account.
func (a *Account) IsMember(member string) bool {
	_, ok := slices.BinarySearch(a.Members, member)
	return ok
}

// Bucket is one grant: an amount of one kind, with its own remainder and an
// optional expiry. Credits are taken from the bucket that expires soonest
// first, never-expiring buckets last, the oldest first among equals.
type Bucket struct {
	ID      string    `json:"id"`
	Account string    `json:"account"`
	Kind    GrantKind `json:"kind"`
	// Amount is what the grant gave (or, for a restored bucket, what was
	// restored into it).
	Amount Credits `json:"amount"`
	// Remaining is what is left to spend; it is 0 once the bucket expired
	// or was voided.
	Remaining Credits `json:"remaining"`
	// Expired is what the bucket lost at its expiry.
	Expired Credits `json:"expired"`
	// Debited is what [Ledger.Debit] and [Ledger.VoidGrant] took out of it
	// (omitted from JSON when zero).
	Debited Credits `json:"debited,omitzero"`
	// WarnedAt, when not zero, is when the ledger warned that the grant's
	// credits are about to expire ([Config.ExpiryWarning]): once per
	// grant.
	WarnedAt time.Time `json:"warned_at,omitzero"`
	// VoidedAt, when not zero, is when [Ledger.VoidGrant] revoked the
	// grant: it can never be spent from again, and credits a release or
	// refund gives back to it are revoked too.
	VoidedAt time.Time `json:"voided_at,omitzero"`
	// ExpiresAt is the instant the bucket expires; zero means never. From
	// that instant on, its remainder can no longer be spent.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	CreatedAt time.Time `json:"created_at"`
	// Seq orders buckets of the same expiry: the Seq of the entry that
	// created the bucket.
	Seq int64 `json:"seq"`
	// RestoredFrom names the expired bucket whose credits a release or
	// refund gave back into this bucket (see [Config.RestoreGrace]).
	RestoredFrom string `json:"restored_from,omitempty"`
	Note         string `json:"note,omitempty"`
}

// expiredAt reports whether b's expiry, if it has one, is at or before t,
// whatever b still holds (a bucket emptied by a hold may still have
// expired when the hold gives its credits back).
func (b *Bucket) expiredAt(t time.Time) bool {
	return !b.ExpiresAt.IsZero() && !t.Before(b.ExpiresAt)
}

// Live reports whether b still holds credits: its Remaining is positive.
// Only live buckets can be spent from or expire. Stores index the live
// buckets and load every one of them for every operation (see [State]).
func (b *Bucket) Live() bool { return b.Remaining.IsPositive() }

// DueAt reports whether b's expiry has fallen due at t: b is live, its
// ExpiresAt is set, and ExpiresAt is at or before t. A bucket that is due
// can no longer be spent from; the ledger expires its remainder. Stores use
// it to decide which accounts [Store.DueAccounts] returns.
func (b *Bucket) DueAt(t time.Time) bool { return b.Live() && b.expiredAt(t) }

// WarningDueAt reports whether b's expiry warning has fallen due at t for
// a warning lead: warn is positive, b is live, expires, was not warned
// yet, and t is at or after ExpiresAt − warn. Stores use it to decide
// which accounts [Store.DueAccounts] returns.
func (b *Bucket) WarningDueAt(t time.Time, warn time.Duration) bool {
	return warn > 0 && b.Live() && !b.ExpiresAt.IsZero() && b.WarnedAt.IsZero() && !t.Before(b.ExpiresAt.Add(-warn))
}

// HoldStatus is the state of a hold.
type HoldStatus string

// The hold states. Open is the only one that changes: to captured by
// Capture, to released by Release, to expired when its deadline passes.
const (
	HoldOpen     HoldStatus = "open"
	HoldCaptured HoldStatus = "captured"
	HoldReleased HoldStatus = "released"
	HoldExpired  HoldStatus = "expired"
)

// Hold is credits reserved for one job, or (once captured, or made by
// Charge) a charge.
type Hold struct {
	ID      string `json:"id"`
	Account string `json:"account"`
	// Member is who made the hold (a team member, or attribution).
	Member string `json:"member,omitempty"`
	// Key is the idempotency key of the Reserve or Charge that made it.
	Key string `json:"key,omitempty"`
	// Seq is the Seq of the entry that opened it (0 for holds made before
	// the ledger recorded it).
	Seq    int64      `json:"seq,omitempty"`
	Status HoldStatus `json:"status"`
	// Amount is what was reserved: the quote's total.
	Amount Credits `json:"amount"`
	// Captured is what was charged; Refunded is what was refunded of it.
	Captured Credits `json:"captured"`
	Refunded Credits `json:"refunded"`
	// Portions records which buckets the hold took its credits from, in the
	// order it took them.
	Portions  []Portion `json:"portions"`
	Quote     Quote     `json:"quote"`
	CreatedAt time.Time `json:"created_at"`
	// Deadline is the instant an open hold expires by itself.
	Deadline time.Time `json:"deadline"`
	// FirstDeadline, once [Ledger.Extend] moved Deadline, is the deadline
	// Reserve gave; zero until then.
	FirstDeadline time.Time         `json:"first_deadline,omitzero"`
	SettledAt     time.Time         `json:"settled_at,omitzero"`
	Metadata      map[string]string `json:"metadata,omitempty"`
}

// DueAt reports whether h's deadline has passed at t: h is open
// ([HoldOpen]) and its Deadline is at or before t. A due hold can no longer
// be captured or released; the ledger expires it and gives its credits back.
// Stores use it to decide which holds a [Query.Due] loads and which accounts
// [Store.DueAccounts] returns.
func (h *Hold) DueAt(t time.Time) bool {
	return h.Status == HoldOpen && !t.Before(h.Deadline)
}

// Clone returns a deep copy of h.
func (h Hold) Clone() Hold {
	h.Portions = slices.Clone(h.Portions)
	h.Metadata = maps.Clone(h.Metadata)
	return h
}

// Portion is the part of a hold taken from one bucket.
type Portion struct {
	Bucket   string  `json:"bucket"`
	Amount   Credits `json:"amount"`
	Captured Credits `json:"captured"`
	Refunded Credits `json:"refunded"`
}

// EntryType is the kind of a history entry.
type EntryType string

// The entry types, with their effect on the balances.
const (
	EntryGrant       EntryType = "grant"        // available +
	EntryHold        EntryType = "hold"         // available −, held +
	EntryCapture     EntryType = "capture"      // held −, spent +
	EntryRelease     EntryType = "release"      // held −, available +
	EntryHoldExpired EntryType = "hold_expired" // held −, available +: the deadline passed
	EntryCharge      EntryType = "charge"       // available −, spent +
	EntryRefund      EntryType = "refund"       // spent −, available +
	EntryExpiry      EntryType = "expiry"       // available −, expired +
	// EntryDebit takes credits out of one grant ([Ledger.Debit]): a
	// correction or a chargeback. Available −, debited +.
	EntryDebit EntryType = "debit"
	// EntryVoid revokes what remains of one grant ([Ledger.VoidGrant]), or
	// credits a release or refund gave back to a revoked grant. Available
	// −, debited +; its Amount may be zero (a grant revoked with nothing
	// left in it).
	EntryVoid EntryType = "void"
	// EntryNote changes no balance (its Amount is zero): a note the
	// application recorded ([Ledger.Annotate]), in Note, under Key.
	EntryNote EntryType = "note"
	// EntryGrantExpiring changes no balance: a grant's credits expire
	// within [Config.ExpiryWarning]; its Amount is what remained of the
	// grant then, Bucket and Kind name it, and At is the instant the
	// warning fell due. Once per grant.
	EntryGrantExpiring EntryType = "grant_expiring"
	// EntryBalanceLow changes no balance (its Amount is zero): the
	// operation it follows took the account's settled balance (Available
	// + Held) below its low-balance threshold. EntryBalanceRecovered: back
	// at or above it. Each crossing is recorded once, in the operation that
	// made it (see [Config.OnLowBalance]).
	EntryBalanceLow       EntryType = "balance_low"
	EntryBalanceRecovered EntryType = "balance_recovered"
	// EntryAccount changes no balance (its Amount is zero): the account's
	// plan, low-balance threshold or metadata changed; Plan is the plan
	// after it and Note says what changed.
	EntryAccount EntryType = "account"
)

// knownTypes reports whether every type of ts is one of the entry types.
func knownTypes(ts []EntryType) bool {
	for _, t := range ts {
		switch t {
		case EntryGrant, EntryHold, EntryCapture, EntryRelease, EntryHoldExpired, EntryCharge, EntryRefund,
			EntryExpiry, EntryDebit, EntryVoid, EntryNote, EntryGrantExpiring, EntryBalanceLow,
			EntryBalanceRecovered, EntryAccount:
		default:
			return false
		}
	}
	return true
}

// Entry is one immutable line of an account's history.
type Entry struct {
	Account string    `json:"account"`
	Seq     int64     `json:"seq"` // 1, 2, 3… per account
	Type    EntryType `json:"type"`
	// Amount is the magnitude, positive (zero only on an [EntryAccount],
	// [EntryNote], [EntryBalanceLow] and [EntryBalanceRecovered], and on
	// an [EntryVoid] of a grant with nothing left);
	// see [Entry.AvailableDelta].
	Amount Credits `json:"amount"`
	// Available and Held are the account's balances after this entry.
	Available Credits `json:"available"`
	Held      Credits `json:"held"`
	// At is when the entry took effect: for an expiry, the deadline itself.
	At time.Time `json:"at"`
	// Hold, Bucket, Kind, Tool and Member say what the entry is about: the
	// hold or charge, the grant, its kind, the priced tool, the member.
	Hold   string    `json:"hold,omitempty"`
	Bucket string    `json:"bucket,omitempty"`
	Kind   GrantKind `json:"kind,omitempty"`
	Tool   string    `json:"tool,omitempty"`
	Member string    `json:"member,omitempty"`
	// Key is the caller's idempotency key of the operation that wrote the
	// entry, where it had one.
	Key string `json:"key,omitempty"`
	// Job, on an entry about a hold or charge, is the key of the Reserve,
	// Run or Charge that made it: the job's reference, on its hold, capture,
	// release and refund entries alike. [Ledger.History] fills it in from
	// the hold; a store does not keep it.
	Job string `json:"job,omitempty"`
	// Plan, on an [EntryAccount] entry, is the account's plan after it
	// ("" for none); empty on every other entry.
	Plan string `json:"plan,omitempty"`
	Note string `json:"note,omitempty"`
}

// AvailableDelta is the entry's signed change to the available balance: the
// sum over an account's history equals its available balance.
func (e *Entry) AvailableDelta() Credits {
	switch e.Type {
	case EntryGrant, EntryRelease, EntryHoldExpired, EntryRefund:
		return e.Amount
	case EntryHold, EntryCharge, EntryExpiry, EntryDebit, EntryVoid:
		return Credits{units: -e.Amount.units}
	}
	return Credits{}
}

// HeldDelta is the entry's signed change to the held balance.
func (e *Entry) HeldDelta() Credits {
	switch e.Type {
	case EntryHold:
		return e.Amount
	case EntryCapture, EntryRelease, EntryHoldExpired:
		return Credits{units: -e.Amount.units}
	}
	return Credits{}
}

// SpentDelta is the entry's signed change to the spent total.
func (e *Entry) SpentDelta() Credits {
	switch e.Type {
	case EntryCapture, EntryCharge:
		return e.Amount
	case EntryRefund:
		return Credits{units: -e.Amount.units}
	}
	return Credits{}
}

// DebitedDelta is the entry's signed change to the debited total.
func (e *Entry) DebitedDelta() Credits {
	switch e.Type {
	case EntryDebit, EntryVoid:
		return e.Amount
	}
	return Credits{}
}

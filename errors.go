package credits

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Sentinel errors. Every error the package returns for a domain outcome
// matches one of these with [errors.Is]; typed errors such as
// [*InsufficientCreditsError] carry the detail.
var (
	// ErrInvalidAmount: an amount is not a valid, exact, positive number of
	// credits where one is required.
	ErrInvalidAmount = errors.New("credits: invalid amount")
	// ErrOverflow: a result does not fit in a Credits value (or an int64).
	ErrOverflow = errors.New("credits: overflow")
	// ErrInvalidRequest: a request is malformed (a missing or oversized
	// field, invalid UTF-8, a negative duration…). Nothing was written.
	ErrInvalidRequest = errors.New("credits: invalid request")
	// ErrInsufficientCredits: the account's available balance does not
	// cover the amount. The typed error is [*InsufficientCreditsError].
	ErrInsufficientCredits = errors.New("credits: insufficient credits")
	// ErrUnknownAccount: no account has that ID.
	ErrUnknownAccount = errors.New("credits: unknown account")
	// ErrAccountExists: an account with that ID exists, created by a
	// different request.
	ErrAccountExists = errors.New("credits: account already exists")
	// ErrUnknownTool: the catalog has no tool with that ID.
	ErrUnknownTool = errors.New("credits: unknown tool")
	// ErrUnknownResolution: the tool is not offered at that resolution.
	ErrUnknownResolution = errors.New("credits: unknown resolution")
	// ErrUnknownPlan: the catalog has no plan with that ID.
	ErrUnknownPlan = errors.New("credits: unknown plan")
	// ErrUnknownHold: no hold (or charge) has that ID.
	ErrUnknownHold = errors.New("credits: unknown hold")
	// ErrUnknownGrant: the account has no grant with that ID.
	ErrUnknownGrant = errors.New("credits: unknown grant")
	// ErrGrantVoided: the grant was already revoked by [Ledger.VoidGrant].
	ErrGrantVoided = errors.New("credits: grant already voided")
	// ErrHoldExpired: the hold's deadline passed; its credits went back to
	// the account and it can no longer be captured.
	ErrHoldExpired = errors.New("credits: hold expired")
	// ErrHoldSettled: the hold was already captured or released.
	ErrHoldSettled = errors.New("credits: hold already settled")
	// ErrNotCaptured: a refund names a hold that was not captured.
	ErrNotCaptured = errors.New("credits: hold not captured")
	// ErrExceedsHold: a capture asks for more than the hold holds.
	ErrExceedsHold = errors.New("credits: capture exceeds the hold")
	// ErrRefundExceedsCharge: a refund asks for more than what is left of
	// the charge (it was already refunded, or partly).
	ErrRefundExceedsCharge = errors.New("credits: refund exceeds the charge")
	// ErrQuoteExpired: the quote's validity ended before it was used.
	ErrQuoteExpired = errors.New("credits: quote expired")
	// ErrQuoteMismatch: the quote does not match what the ledger's catalog
	// prices for the same request (it was altered, or built by hand).
	ErrQuoteMismatch = errors.New("credits: quote does not match the catalog")
	// ErrWrongPlan: the quote was priced with another plan than the
	// account's. The typed error is [*PlanMismatchError]; it also matches
	// ErrQuoteMismatch.
	ErrWrongPlan = errors.New("credits: quote priced with another plan than the account's")
	// ErrInvalidQuote: a sealed quote is not one this ledger sealed: it is
	// garbled, truncated, too long, of an unknown version, altered, or
	// sealed with a key the ledger does not have (see [Ledger.OpenQuote]).
	// It is a kind of ErrInvalidRequest: errors.Is matches both. In a
	// request, the error is a [*FieldError] for "quote". Nothing was
	// written.
	ErrInvalidQuote error = &narrowerError{"credits: invalid sealed quote", ErrInvalidRequest}
	// ErrNoQuoteKey: a quote was to be sealed or opened, but the ledger has
	// no Config.QuoteKey: the server's configuration, not the request, is
	// at fault.
	ErrNoQuoteKey = errors.New("credits: no quote key configured")
	// ErrMemberLimit: the spend would take a team member over their
	// spending limit for the period. The typed error is
	// [*MemberLimitError], with what remains of the limit.
	ErrMemberLimit = errors.New("credits: member spending limit reached")
	// ErrNotMember: the member is not a member of the team account.
	ErrNotMember = errors.New("credits: not a member of the team")
	// ErrIdempotencyConflict: the key was used before with a different
	// request. The typed error is [*IdempotencyConflictError].
	ErrIdempotencyConflict = errors.New("credits: idempotency key reused with a different request")
	// ErrDailyUnavailable: the ledger has no daily reward configured.
	ErrDailyUnavailable = errors.New("credits: no daily reward configured")
	// ErrInvalidCatalog: a catalog or plan definition is invalid. The typed
	// error is [*CatalogError], naming the field.
	ErrInvalidCatalog = errors.New("credits: invalid catalog")
	// ErrFeedLeased: another process holds the feed consumer's lease
	// ([Ledger.Feed]); it delivers meanwhile. Try again after its lease
	// expires.
	ErrFeedLeased = errors.New("credits: feed consumer leased by another holder")
	// ErrTransient: the store failed for a reason that says nothing about
	// the request (a lost connection, a failed or unconfirmed commit, a
	// timeout inside the store). The operation may or may not have taken
	// effect; retrying it with the same idempotency key is safe and
	// converges to exactly one effect (operations on a hold — capture,
	// release — are idempotent by the hold's ID).
	ErrTransient = errors.New("credits: transient store failure, retry with the same idempotency key")
)

// InsufficientCreditsError reports how many credits were missing.
// It matches [ErrInsufficientCredits].
type InsufficientCreditsError struct {
	Account   string
	Available Credits // available balance when the request was decided
	Requested Credits
}

// Missing returns how many more credits the request needed.
func (e *InsufficientCreditsError) Missing() Credits {
	m, err := e.Requested.Sub(e.Available)
	if err != nil {
		return FromUnits(MaxUnits)
	}
	return m
}

func (e *InsufficientCreditsError) Error() string {
	return fmt.Sprintf("credits: insufficient credits on account %q: requested %s, available %s, missing %s",
		e.Account, e.Requested, e.Available, e.Missing())
}

// Is reports whether target is [ErrInsufficientCredits].
func (e *InsufficientCreditsError) Is(target error) bool { return target == ErrInsufficientCredits }

// IdempotencyConflictError reports a key reused with a different request,
// and which fields differ. It matches [ErrIdempotencyConflict].
type IdempotencyConflictError struct {
	Account string
	Key     string
	// Operation is the operation the key was first used for.
	Operation string
	// Fields names the request fields that differ from the first use.
	Fields []string
}

func (e *IdempotencyConflictError) Error() string {
	return fmt.Sprintf("credits: idempotency key %q on account %q was used for a different %s request (differs in: %s)",
		e.Key, e.Account, e.Operation, strings.Join(e.Fields, ", "))
}

// Is reports whether target is [ErrIdempotencyConflict].
func (e *IdempotencyConflictError) Is(target error) bool { return target == ErrIdempotencyConflict }

// CatalogError names the field of a catalog that is invalid. It matches
// [ErrInvalidCatalog].
type CatalogError struct {
	Field  string // a path such as `tools[2].rates["720p"]`
	Reason string
}

func (e *CatalogError) Error() string {
	return fmt.Sprintf("credits: invalid catalog: %s: %s", e.Field, e.Reason)
}

// Is reports whether target is [ErrInvalidCatalog].
func (e *CatalogError) Is(target error) bool { return target == ErrInvalidCatalog }

// ReplayedError is a refusal returned again for a retry under the same
// idempotency key: the request was decided at DecidedAt, and its figures
// (how many credits were available, what remained of a limit) are those of
// that moment, not of now. It wraps the first refusal, so errors.Is and
// errors.As see it as they did ([ErrInsufficientCredits],
// [*InsufficientCreditsError], …). A refusal under a key is final: to try
// again after topping up (or once a limit has room), send a new key.
type ReplayedError struct {
	Err       error
	DecidedAt time.Time
}

func (e *ReplayedError) Error() string {
	return e.Err.Error() + " (a replay: decided at " + e.DecidedAt.Format(time.RFC3339) + "; use a new key to try again)"
}

// Unwrap returns the first refusal.
func (e *ReplayedError) Unwrap() error { return e.Err }

// narrowerError is a sentinel that is a kind of a wider one: errors.Is
// matches both.
type narrowerError struct {
	msg   string
	wider error
}

func (e *narrowerError) Error() string { return e.msg }
func (e *narrowerError) Unwrap() error { return e.wider }

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidRequest}, args...)...)
}

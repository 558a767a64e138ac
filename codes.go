package credits

import (
	"context"
	"errors"
	"net/http"
)

// errorCodes maps every sentinel to its stable code and suggested HTTP
// status, most specific first (a *PlanMismatchError matches ErrWrongPlan
// and ErrQuoteMismatch: it is "wrong_plan").
var errorCodes = []struct {
	err    error
	code   string
	status int
}{
	{ErrTransient, "transient", http.StatusServiceUnavailable},
	{ErrIdempotencyConflict, "idempotency_conflict", http.StatusConflict},
	{ErrInsufficientCredits, "insufficient_credits", http.StatusPaymentRequired},
	{ErrMemberLimit, "member_limit", http.StatusForbidden},
	{ErrNotMember, "not_member", http.StatusForbidden},
	{ErrWrongPlan, "wrong_plan", http.StatusConflict},
	{ErrQuoteExpired, "quote_expired", http.StatusConflict},
	{ErrQuoteMismatch, "quote_mismatch", http.StatusConflict},
	{ErrInvalidQuote, "invalid_quote", http.StatusBadRequest}, // before ErrInvalidRequest, which it matches too
	{ErrNoQuoteKey, "no_quote_key", http.StatusInternalServerError},
	{ErrUnknownAccount, "unknown_account", http.StatusNotFound},
	{ErrUnknownHold, "unknown_hold", http.StatusNotFound},
	{ErrUnknownGrant, "unknown_grant", http.StatusNotFound},
	{ErrGrantVoided, "grant_voided", http.StatusConflict},
	{ErrUnknownTool, "unknown_tool", http.StatusUnprocessableEntity},
	{ErrUnknownResolution, "unknown_resolution", http.StatusUnprocessableEntity},
	{ErrUnknownPlan, "unknown_plan", http.StatusUnprocessableEntity},
	{ErrAccountExists, "account_exists", http.StatusConflict},
	{ErrFeedLeased, "feed_leased", http.StatusConflict},
	{ErrHoldExpired, "hold_expired", http.StatusConflict},
	{ErrHoldSettled, "hold_settled", http.StatusConflict},
	{ErrNotCaptured, "not_captured", http.StatusConflict},
	{ErrExceedsHold, "exceeds_hold", http.StatusUnprocessableEntity},
	{ErrRefundExceedsCharge, "refund_exceeds_charge", http.StatusUnprocessableEntity},
	{ErrDailyUnavailable, "daily_unavailable", http.StatusNotFound},
	{ErrOverflow, "overflow", http.StatusUnprocessableEntity},
	{ErrInvalidAmount, "invalid_amount", http.StatusBadRequest},
	{ErrInvalidCatalog, "invalid_catalog", http.StatusBadRequest},
	{ErrInvalidRequest, "invalid_request", http.StatusBadRequest},
	{context.DeadlineExceeded, "timeout", http.StatusGatewayTimeout},
	{context.Canceled, "canceled", 499}, // the client closed the request
}

// Code returns a stable snake_case code for err and the HTTP status a
// service would answer it with: "insufficient_credits" and 402,
// "idempotency_conflict" and 409, "unknown_account" and 404, and so on for
// every sentinel of this package (see the README's table), "timeout" and
// "canceled" for a context's errors, and "internal" with 500 for anything
// else (a store's own failure). A nil err gives "" and 200. Codes never
// change meaning once released; a service can hand them to its clients.
func Code(err error) (code string, status int) {
	if err == nil {
		return "", http.StatusOK
	}
	for _, c := range errorCodes {
		if errors.Is(err, c.err) {
			return c.code, c.status
		}
	}
	return "internal", http.StatusInternalServerError
}

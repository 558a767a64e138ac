package credithttp

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/creditkit/credits"
)

// Problem is an RFC 9457 problem document, the body of every error
// response, with the extension members a client needs to act on it.
type Problem struct {
	// Type is a URI naming the kind of problem: Config.ProblemTypeBase
	// followed by Code.
	Type string `json:"type"`
	// Title is Code in words ("Insufficient credits").
	Title string `json:"title"`
	// Status is the HTTP status of the response.
	Status int `json:"status"`
	// Detail says what went wrong with this request.
	Detail string `json:"detail,omitempty"`
	// Code is the stable code: [credits.Code]'s, or one of the handler's
	// own (unauthenticated, forbidden, not_found, method_not_allowed,
	// body_too_large, unsupported_media_type, too_many_streams).
	Code string `json:"code"`
	// Field names the refused field by its JSON name, a query parameter,
	// or "Idempotency-Key".
	Field string `json:"field,omitempty"`
	// Available, Required and Missing detail insufficient credits:
	// Missing = Required − Available.
	Available *credits.Credits `json:"available,omitempty"`
	Required  *credits.Credits `json:"required,omitempty"`
	Missing   *credits.Credits `json:"missing,omitempty"`
	// Remaining is what a member may still spend in the period, on a
	// member_limit problem.
	Remaining *credits.Credits `json:"remaining,omitempty"`
	// Fields names the request fields that differ from the key's first use,
	// on an idempotency_conflict problem.
	Fields []string `json:"fields,omitempty"`
	// DecidedAt, on a refusal replayed for its Idempotency-Key, is when it
	// was first decided.
	DecidedAt *time.Time `json:"decided_at,omitempty"`
}

// The handler's own problems, beside those of [credits.Code].
var (
	errNotFound         = &httpError{code: "not_found", status: http.StatusNotFound}
	errMethodNotAllowed = &httpError{code: "method_not_allowed", status: http.StatusMethodNotAllowed}
)

// httpError is a refusal of the handler itself: a code, a status, and
// the field it concerns, if any.
type httpError struct {
	code   string
	status int
	field  string
	detail string
}

func (e *httpError) Error() string {
	if e.detail != "" {
		return "credithttp: " + e.detail
	}
	return "credithttp: " + strings.ReplaceAll(e.code, "_", " ")
}

// badField refuses a request for one of its fields, query parameters or
// headers: 400 invalid_request naming it.
func badField(field, reason string) error {
	return &httpError{code: "invalid_request", status: http.StatusBadRequest, field: field, detail: field + " " + reason}
}

// forbidden refuses a request the principal may not make.
func forbidden(field, detail string) error {
	return &httpError{code: "forbidden", status: http.StatusForbidden, field: field, detail: detail}
}

// problemFor turns err into the problem document the client gets.
func (h *Handler) problemFor(err error) Problem {
	var p Problem
	var he *httpError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &he):
		// The handler's own refusals speak to the client, without the
		// package prefix their Error has for logs.
		p = Problem{Code: he.code, Status: he.status, Field: he.field, Detail: strings.TrimPrefix(he.Error(), "credithttp: ")}
	case errors.As(err, &mbe):
		p = Problem{Code: "body_too_large", Status: http.StatusRequestEntityTooLarge, Detail: err.Error()}
	case errors.Is(err, ErrUnauthenticated):
		p = Problem{Code: "unauthenticated", Status: http.StatusUnauthorized, Detail: "sign in to use this API"}
	case errors.Is(err, ErrForbidden):
		p = Problem{Code: "forbidden", Status: http.StatusForbidden, Detail: "this account is not yours to act on"}
	default:
		p.Code, p.Status = credits.Code(err)
		p.Detail = err.Error()
	}
	if p.Status >= 500 {
		// The cause is logged, not shown: a store's error text (a driver's
		// message, an address, SQL) is no business of the client's, and
		// a transient failure or a timeout wraps one.
		p.Detail = serverDetails[p.Code]
		if p.Detail == "" {
			p.Detail = "internal error"
		}
	}
	var fe *credits.FieldError
	if p.Field == "" && errors.As(err, &fe) {
		p.Field = fe.Field
		if p.Field == "key" {
			p.Field = "Idempotency-Key"
		}
	}
	if p.Field == "" {
		p.Field = codeFields[p.Code]
	}
	var ie *credits.InsufficientCreditsError
	if errors.As(err, &ie) {
		avail, req := ie.Available, ie.Requested
		p.Available, p.Required = &avail, &req
		if m, err := req.Sub(avail); err == nil && m.Units() > 0 {
			p.Missing = &m
		}
	}
	var ml *credits.MemberLimitError
	if errors.As(err, &ml) {
		rem := credits.FromUnits(0)
		if r, err := ml.Limit.Sub(ml.Used); err == nil && r.Units() > 0 {
			rem = r
		}
		p.Remaining = &rem
	}
	var ic *credits.IdempotencyConflictError
	if errors.As(err, &ic) {
		p.Fields = ic.Fields
	}
	var re *credits.ReplayedError
	if errors.As(err, &re) {
		at := re.DecidedAt
		p.DecidedAt = &at
	}
	p.Type = h.cfg.ProblemTypeBase + p.Code
	p.Title = title(p.Code)
	return p
}

// serverDetails are the details of the server's failures (5xx), which
// never show the cause.
var serverDetails = map[string]string{
	"transient":    "the ledger's store failed for a moment: retry with the same Idempotency-Key",
	"timeout":      "the ledger did not answer in time: retry with the same Idempotency-Key",
	"internal":     "internal error",
	"no_quote_key": "the server has no quote key configured: it cannot seal or open quotes",
}

// codeFields names the field of the ledger's refusals that are about one
// field without being a [credits.FieldError].
var codeFields = map[string]string{
	"unknown_tool":          "tool",
	"unknown_resolution":    "resolution",
	"unknown_plan":          "plan",
	"invalid_quote":         "quote",
	"quote_expired":         "quote",
	"quote_mismatch":        "quote",
	"wrong_plan":            "quote",
	"exceeds_hold":          "amount",
	"refund_exceeds_charge": "amount",
	"not_member":            "member",
}

// title is a code in words: "insufficient_credits" → "Insufficient credits".
func title(code string) string {
	if code == "" {
		return ""
	}
	s := strings.ReplaceAll(code, "_", " ")
	return strings.ToUpper(s[:1]) + s[1:]
}

// fail writes err as a problem document.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	p := h.problemFor(err)
	if p.Status >= 500 {
		h.cfg.Logger.ErrorContext(r.Context(), "credithttp: request failed", "method", r.Method, "path", r.URL.Path, "code", p.Code, "err", err)
	}
	var re *credits.ReplayedError
	if errors.As(err, &re) {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	body, merr := json.Marshal(p)
	if merr != nil { // cannot happen: every field encodes
		body = []byte(`{"type":"about:blank","title":"Internal","status":500,"code":"internal"}`)
		p.Status = http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	status := p.Status
	if status < 400 || status > 599 {
		status = http.StatusInternalServerError
	}
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}

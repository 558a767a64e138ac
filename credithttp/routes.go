package credithttp

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/creditkit/credits"
)

// permission is what an endpoint needs beyond access to the account.
type permission int

const (
	member permission = iota // access to the account
	settle                   // Principal.Settle or Admin
	admin                    // Principal.Admin
)

// call is one authorized request: its principal and the account it is for.
type call struct {
	w       http.ResponseWriter
	r       *http.Request
	p       Principal
	account string
}

// response is an endpoint's answer: a status and a JSON body; Replayed
// adds the Idempotent-Replayed header.
type response struct {
	status   int
	body     any
	replayed bool
}

func ok(v any) response { return response{status: http.StatusOK, body: v} }

type endpoint func(ctx context.Context, c *call) (response, error)

// handle registers fn under pattern, behind the authorizer and perm.
func (h *Handler) handle(pattern string, perm permission, fn endpoint) {
	h.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		c := &call{w: w, r: r, account: r.PathValue("account")}
		res, err := h.authorize(c, perm)
		if err == nil {
			res, err = fn(r.Context(), c)
			err = pathField(err, r)
		}
		switch {
		case err != nil:
			h.fail(w, r, err)
		case res.status != 0: // 0: the endpoint wrote its own response (a stream)
			h.reply(w, r, res)
			if r.Method != http.MethodGet && c.account != "" {
				h.Notify(c.account) // the account's streams show the write now
			}
		}
	})
}

// authorize asks the Authorizer, then checks the principal against the
// path's account and the endpoint's permission.
func (h *Handler) authorize(c *call, perm permission) (response, error) {
	p, err := h.cfg.Authorize(c.r)
	if err != nil {
		if !strings.HasPrefix(err.Error(), "credithttp:") {
			h.cfg.Logger.DebugContext(c.r.Context(), "credithttp: refused by the authorizer", "path", c.r.URL.Path, "err", err)
		}
		switch {
		case errors.Is(err, ErrUnauthenticated):
			if h.cfg.AuthChallenge != "" {
				c.w.Header().Set("WWW-Authenticate", h.cfg.AuthChallenge)
			}
			return response{}, ErrUnauthenticated
		default:
			return response{}, forbidden("", "this account is not yours to act on")
		}
	}
	c.p = p
	if c.account != "" && p.Account != c.account {
		return response{}, forbidden("", "this account is not yours to act on")
	}
	switch {
	case perm == settle && !p.Settle && !p.Admin:
		return response{}, forbidden("", "capturing or releasing a hold needs the Settle permission")
	case perm == admin && !p.Admin:
		return response{}, forbidden("", "this endpoint is for administrators")
	}
	return response{}, nil
}

// reply writes res as JSON.
func (h *Handler) reply(w http.ResponseWriter, r *http.Request, res response) {
	body, err := json.Marshal(res.body)
	if err != nil {
		h.fail(w, r, err) // fail logs with r's context: never nil
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if res.replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	w.WriteHeader(res.status)
	w.Write(append(body, '\n'))
}

// routes registers every endpoint (see the package documentation).
func (h *Handler) routes() {
	h.handle("GET /catalog", member, h.catalog)
	h.handle("POST /accounts/{account}/quote", member, h.quote)
	h.handle("POST /accounts/{account}/reserve", member, h.reserve)
	h.handle("POST /accounts/{account}/charge", member, h.charge)
	h.handle("GET /accounts/{account}/holds/{hold}", member, h.hold)
	h.handle("GET /accounts/{account}/jobs/{job}", member, h.hold)
	h.handle("POST /accounts/{account}/holds/{hold}/capture", settle, h.capture)
	h.handle("POST /accounts/{account}/jobs/{job}/capture", settle, h.capture)
	h.handle("POST /accounts/{account}/holds/{hold}/release", settle, h.release)
	h.handle("POST /accounts/{account}/jobs/{job}/release", settle, h.release)
	h.handle("GET /accounts/{account}", member, h.account)
	h.handle("GET /accounts/{account}/balance", member, h.balance)
	h.handle("GET /accounts/{account}/grants", member, h.grants)
	h.handle("GET /accounts/{account}/history", member, h.history)
	h.handle("GET /accounts/{account}/activity", member, h.activity)
	h.handle("GET /accounts/{account}/spending", member, h.spending)
	h.handle("GET /accounts/{account}/events", member, h.events)

	h.handle("POST /accounts/{account}/grants", admin, h.grant)
	h.handle("POST /accounts/{account}/debits", admin, h.debit)
	h.handle("POST /accounts/{account}/grants/{grant}/void", admin, h.void)
	h.handle("POST /accounts/{account}/charges/{charge}/refund", admin, h.refund)
	h.handle("PUT /accounts/{account}/member-limits", admin, h.memberLimits)
}

// ServeHTTP routes the request to its endpoint; a path no endpoint has is
// a 404 not_found problem, a method it does not take a 405 with Allow.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// ServeMux answers a path that is not clean ("//", "/./", "/../")
	// with a redirect to the clean one; behind http.StripPrefix that
	// Location lacks the prefix and points out of the API, and it is not a
	// problem document. No endpoint has such a path: it is not found.
	if !cleanPath(r.URL.EscapedPath()) { // as ServeMux sees it: %2F is no separator
		h.fail(w, r, &httpError{code: "not_found", status: http.StatusNotFound, detail: "the path is not in canonical form (no //, . or .. segments)"})
		return
	}
	if _, pattern := h.mux.Handler(r); pattern != "" {
		h.mux.ServeHTTP(w, r)
		return
	}
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut} {
		r2 := r.Clone(r.Context())
		r2.Method = m
		if _, pattern := h.mux.Handler(r2); pattern != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) == 0 {
		h.fail(w, r, errNotFound)
		return
	}
	if slices.Contains(allow, http.MethodGet) {
		allow = append(allow, http.MethodHead) // ServeMux serves HEAD with GET
	}
	w.Header().Set("Allow", strings.Join(allow, ", "))
	h.fail(w, r, errMethodNotAllowed)
}

// cleanPath reports whether p is a rooted path that path.Clean keeps as it
// is (a trailing slash aside).
func cleanPath(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c == p
}

// Whether a write endpoint needs an Idempotency-Key.
const (
	keyRequired = true
	keyOptional = false
)

// write reads a write request: its body into dst (see decode), then its
// Idempotency-Key, required or not.
func (h *Handler) write(c *call, dst any, required bool) (key string, err error) {
	if err := h.decode(c.w, c.r, dst); err != nil {
		return "", err
	}
	return idempotencyKey(c.r, required)
}

// idempotencyKey is the request's Idempotency-Key header; required says
// whether the endpoint needs one.
func idempotencyKey(r *http.Request, required bool) (string, error) {
	vs := r.Header.Values("Idempotency-Key")
	if len(vs) > 1 {
		return "", badField("Idempotency-Key", "is given more than once")
	}
	if len(vs) == 0 || vs[0] == "" {
		if required {
			return "", badField("Idempotency-Key", "is required")
		}
		return "", nil
	}
	return vs[0], nil
}

// spender is the member a reserve or charge is attributed to: the body's,
// which only an admin may set to someone other than the principal's.
func (c *call) spender(body string) (string, error) {
	if body == "" || body == c.p.Member {
		return c.p.Member, nil
	}
	if c.p.Admin {
		return body, nil
	}
	return "", forbidden("member", "member is not you: spending as another member is for administrators")
}

func (h *Handler) catalog(ctx context.Context, c *call) (response, error) {
	if err := noBodyQuery(c.r); err != nil {
		return response{}, err
	}
	cat := h.cfg.Ledger.Catalog()
	return ok(struct {
		Version string         `json:"version"`
		Tools   []credits.Tool `json:"tools"`
	}{cat.Version(), cat.Tools()}), nil
}

type quoteBody struct {
	Tool       string `json:"tool"`
	Resolution string `json:"resolution"`
	DurationMS int64  `json:"duration_ms"`
	Images     int    `json:"images"`
}

// QuoteResponse is the answer of the quote endpoint: the quote, priced
// with the account's plan, and the same quote sealed, which the client
// sends back as "quote" to reserve or charge it.
type QuoteResponse struct {
	Quote  credits.Quote `json:"quote"`
	Sealed string        `json:"sealed"`
}

func (h *Handler) quote(ctx context.Context, c *call) (response, error) {
	var b quoteBody
	if err := h.decode(c.w, c.r, &b); err != nil {
		return response{}, err
	}
	d, err := millis("duration_ms", b.DurationMS)
	if err != nil {
		return response{}, err
	}
	q, err := h.cfg.Ledger.QuoteFor(ctx, c.account, credits.QuoteRequest{Tool: b.Tool, Resolution: b.Resolution, Duration: d, Images: b.Images})
	if err != nil {
		return response{}, err
	}
	sealed, err := h.cfg.Ledger.SealQuote(q)
	if err != nil {
		return response{}, err
	}
	return ok(QuoteResponse{Quote: q, Sealed: sealed}), nil
}

type reserveBody struct {
	Quote    string            `json:"quote"`
	TTLMS    int64             `json:"ttl_ms"`
	Member   string            `json:"member"`
	Metadata map[string]string `json:"metadata"`
}

func (h *Handler) reserve(ctx context.Context, c *call) (response, error) {
	var b reserveBody
	key, err := h.write(c, &b, keyRequired)
	if err != nil {
		return response{}, err
	}
	ttl, err := millis("ttl_ms", b.TTLMS)
	if err != nil {
		return response{}, err
	}
	if b.Quote == "" {
		return response{}, badField("quote", "is required: the sealed quote the quote endpoint returned")
	}
	m, err := c.spender(b.Member)
	if err != nil {
		return response{}, err
	}
	res, err := h.cfg.Ledger.Reserve(ctx, credits.ReserveRequest{Account: c.account, Member: m, SealedQuote: b.Quote, TTL: ttl, Key: key, Metadata: b.Metadata})
	if err != nil {
		return response{}, err
	}
	return response{status: http.StatusCreated, body: res, replayed: res.Replayed}, nil
}

type chargeBody struct {
	Quote    string            `json:"quote"`
	Member   string            `json:"member"`
	Metadata map[string]string `json:"metadata"`
}

func (h *Handler) charge(ctx context.Context, c *call) (response, error) {
	var b chargeBody
	key, err := h.write(c, &b, keyRequired)
	if err != nil {
		return response{}, err
	}
	if b.Quote == "" {
		return response{}, badField("quote", "is required: the sealed quote the quote endpoint returned")
	}
	m, err := c.spender(b.Member)
	if err != nil {
		return response{}, err
	}
	res, err := h.cfg.Ledger.Charge(ctx, credits.ChargeRequest{Account: c.account, Member: m, SealedQuote: b.Quote, Key: key, Metadata: b.Metadata})
	if err != nil {
		return response{}, err
	}
	return response{status: http.StatusCreated, body: res, replayed: res.Replayed}, nil
}

// holdOf reads the hold the path names, by ID or by its reserve's key; a
// hold of another account is unknown.
func (h *Handler) holdOf(ctx context.Context, c *call) (credits.Hold, error) {
	if job := c.r.PathValue("job"); job != "" {
		return h.cfg.Ledger.HoldByKey(ctx, c.account, job)
	}
	hold, err := h.cfg.Ledger.Hold(ctx, c.r.PathValue("hold"))
	if err == nil && hold.Account != c.account {
		return credits.Hold{}, credits.ErrUnknownHold
	}
	return hold, err
}

func (h *Handler) hold(ctx context.Context, c *call) (response, error) {
	if err := noBodyQuery(c.r); err != nil {
		return response{}, err
	}
	hold, err := h.holdOf(ctx, c)
	if err != nil {
		return response{}, err
	}
	return ok(hold), nil
}

type usageBody struct {
	DurationMS int64 `json:"duration_ms"`
	Images     int   `json:"images"`
}

type captureBody struct {
	Usage  *usageBody `json:"usage"`
	Amount amount     `json:"amount"`
}

func (h *Handler) capture(ctx context.Context, c *call) (response, error) {
	var b captureBody
	key, err := h.write(c, &b, keyOptional)
	if err != nil {
		return response{}, err
	}
	var usage usageBody
	if b.Usage != nil {
		usage = *b.Usage
	}
	d, err := millis("usage.duration_ms", usage.DurationMS)
	if err != nil {
		return response{}, err
	}
	amt, err := b.Amount.parse("amount")
	if err != nil {
		return response{}, err
	}
	// The ledger charges the whole quote for a capture that says nothing
	// (no usage, no amount). A worker that says "it used nothing" (usage
	// all zero) or "charge 0" means the opposite: refuse it rather than
	// charge the quote; a job that produced nothing is released.
	if b.Amount.given() && amt.IsZero() {
		return response{}, &httpError{code: "invalid_amount", status: http.StatusBadRequest, field: "amount",
			detail: "amount is 0: to charge nothing, release the hold; to charge the quote, send no amount"}
	}
	if b.Usage != nil && usage == (usageBody{}) && !amt.IsPositive() {
		return response{}, badField("usage", "is all zero: to charge nothing, release the hold; to charge the quote, send no usage")
	}
	req := credits.CaptureRequest{Hold: c.r.PathValue("hold"), ReserveKey: c.r.PathValue("job"), Account: c.account,
		Usage: credits.Usage{Duration: d, Images: usage.Images}, Amount: amt, Key: key}
	res, err := h.cfg.Ledger.Capture(ctx, req)
	if err != nil {
		return response{}, jobField(err)
	}
	return response{status: http.StatusOK, body: res, replayed: res.Replayed}, nil
}

type releaseBody struct {
	Reason string `json:"reason"`
}

func (h *Handler) release(ctx context.Context, c *call) (response, error) {
	var b releaseBody
	key, err := h.write(c, &b, keyOptional)
	if err != nil {
		return response{}, err
	}
	res, err := h.cfg.Ledger.Release(ctx, credits.ReleaseRequest{Hold: c.r.PathValue("hold"), ReserveKey: c.r.PathValue("job"), Account: c.account, Reason: b.Reason, Key: key})
	if err != nil {
		return response{}, jobField(err)
	}
	return response{status: http.StatusOK, body: res, replayed: res.Replayed}, nil
}

// jobField renames the ledger's reserve_key field to the path's job.
func jobField(err error) error {
	var fe *credits.FieldError
	if errors.As(err, &fe) && fe.Field == "reserve_key" {
		return badField("job", fe.Reason)
	}
	return err
}

// pathField names the path parameter an unknown hold, charge or grant
// came from.
func pathField(err error, r *http.Request) error {
	var fe *credits.FieldError
	if err == nil || errors.As(err, &fe) {
		return err
	}
	for _, name := range []string{"job", "hold", "charge", "grant"} {
		if r.PathValue(name) == "" {
			continue
		}
		if errors.Is(err, credits.ErrUnknownHold) || errors.Is(err, credits.ErrUnknownGrant) {
			code, status := credits.Code(err)
			return &httpError{code: code, status: status, field: name, detail: name + " " + r.PathValue(name) + " is not known on this account"}
		}
	}
	return err
}

// noBodyQuery refuses query parameters on an endpoint that takes none.
func noBodyQuery(r *http.Request) error { return newQuery(r).err }

func (h *Handler) account(ctx context.Context, c *call) (response, error) {
	if err := noBodyQuery(c.r); err != nil {
		return response{}, err
	}
	a, err := h.cfg.Ledger.Account(ctx, c.account)
	if err != nil {
		return response{}, err
	}
	return ok(a), nil
}

func (h *Handler) balance(ctx context.Context, c *call) (response, error) {
	if err := noBodyQuery(c.r); err != nil {
		return response{}, err
	}
	b, err := h.cfg.Ledger.Balance(ctx, c.account)
	if err != nil {
		return response{}, err
	}
	return ok(b), nil
}

func (h *Handler) grants(ctx context.Context, c *call) (response, error) {
	q := newQuery(c.r, "all", "limit", "after")
	req := credits.GrantsRequest{Account: c.account, All: q.bool("all"), Limit: q.int("limit"), After: q.one("after")}
	if q.err != nil {
		return response{}, q.err
	}
	page, err := h.cfg.Ledger.Grants(ctx, req)
	if err != nil {
		return response{}, err
	}
	if page.Grants == nil {
		page.Grants = []credits.Bucket{}
	}
	return ok(page), nil
}

func (h *Handler) history(ctx context.Context, c *call) (response, error) {
	q := newQuery(c.r, "before", "after", "limit", "type", "since", "until")
	req := credits.HistoryRequest{Account: c.account, Newest: true, Before: q.int64("before"), Limit: q.int("limit"), Since: q.time("since"), Until: q.time("until")}
	if _, ok := q.v["after"]; ok {
		if req.Before != 0 {
			q.fail(badField("after", "cannot be combined with before"))
		}
		req.Newest, req.After = false, q.int64("after")
	}
	for _, t := range q.v["type"] {
		req.Types = append(req.Types, credits.EntryType(t))
	}
	if q.err != nil {
		return response{}, q.err
	}
	page, err := h.cfg.Ledger.History(ctx, req)
	var fe *credits.FieldError
	if errors.As(err, &fe) && fe.Field == "types" {
		return response{}, badField("type", fe.Reason)
	}
	if err != nil {
		return response{}, err
	}
	if page.Entries == nil {
		page.Entries = []credits.Entry{}
	}
	return ok(page), nil
}

func (h *Handler) activity(ctx context.Context, c *call) (response, error) {
	q := newQuery(c.r, "member", "before", "limit", "since", "until")
	req := credits.ActivityRequest{Account: c.account, Member: q.one("member"), Before: q.int64("before"), Limit: q.int("limit"), Since: q.time("since"), Until: q.time("until")}
	if q.err != nil {
		return response{}, q.err
	}
	page, err := h.cfg.Ledger.Activity(ctx, req)
	if err != nil {
		return response{}, err
	}
	return ok(page), nil
}

func (h *Handler) spending(ctx context.Context, c *call) (response, error) {
	q := newQuery(c.r, "by", "since", "until")
	req := credits.SpendingRequest{Account: c.account, By: credits.GroupBy(q.one("by")), Since: q.time("since"), Until: q.time("until")}
	if q.err != nil {
		return response{}, q.err
	}
	rep, err := h.cfg.Ledger.Spending(ctx, req)
	if err != nil {
		return response{}, err
	}
	if rep.Lines == nil {
		rep.Lines = []credits.SpendLine{}
	}
	return ok(rep), nil
}

type grantBody struct {
	Amount    amount `json:"amount"`
	Kind      string `json:"kind"`
	ExpiresAt string `json:"expires_at"`
	Note      string `json:"note"`
}

func (h *Handler) grant(ctx context.Context, c *call) (response, error) {
	var b grantBody
	key, err := h.write(c, &b, keyRequired)
	if err != nil {
		return response{}, err
	}
	amt, err := b.Amount.parse("amount")
	if err != nil {
		return response{}, err
	}
	req := credits.GrantRequest{Account: c.account, Amount: amt, Kind: credits.GrantKind(b.Kind), Key: key, Note: b.Note}
	if b.ExpiresAt != "" {
		t, err := time.Parse(time.RFC3339Nano, b.ExpiresAt)
		if err != nil {
			return response{}, badField("expires_at", "must be an RFC 3339 time such as 2027-01-01T00:00:00Z")
		}
		req.ExpiresAt = t
	}
	res, err := h.cfg.Ledger.Grant(ctx, req)
	if err != nil {
		return response{}, err
	}
	return response{status: http.StatusCreated, body: res, replayed: res.Replayed}, nil
}

type debitBody struct {
	Amount  amount   `json:"amount"`
	Grant   string   `json:"grant"`
	Kinds   []string `json:"kinds"`
	Partial bool     `json:"partial"`
	Reason  string   `json:"reason"`
}

func (h *Handler) debit(ctx context.Context, c *call) (response, error) {
	var b debitBody
	key, err := h.write(c, &b, keyRequired)
	if err != nil {
		return response{}, err
	}
	amt, err := b.Amount.parse("amount")
	if err != nil {
		return response{}, err
	}
	req := credits.DebitRequest{Account: c.account, Amount: amt, Grant: b.Grant, Partial: b.Partial, Reason: b.Reason, Key: key}
	for _, k := range b.Kinds {
		req.Kinds = append(req.Kinds, credits.GrantKind(k))
	}
	res, err := h.cfg.Ledger.Debit(ctx, req)
	var fe *credits.FieldError
	if errors.Is(err, credits.ErrUnknownGrant) && !errors.As(err, &fe) {
		code, status := credits.Code(err)
		return response{}, &httpError{code: code, status: status, field: "grant", detail: "grant " + b.Grant + " is not known on this account"}
	}
	if err != nil {
		return response{}, err
	}
	return response{status: http.StatusOK, body: res, replayed: res.Replayed}, nil
}

type reasonBody struct {
	Reason string `json:"reason"`
}

func (h *Handler) void(ctx context.Context, c *call) (response, error) {
	var b reasonBody
	key, err := h.write(c, &b, keyRequired)
	if err != nil {
		return response{}, err
	}
	res, err := h.cfg.Ledger.VoidGrant(ctx, credits.VoidGrantRequest{Account: c.account, Grant: c.r.PathValue("grant"), Reason: b.Reason, Key: key})
	if err != nil {
		return response{}, err
	}
	return response{status: http.StatusOK, body: res, replayed: res.Replayed}, nil
}

type refundBody struct {
	Amount amount `json:"amount"`
	Reason string `json:"reason"`
}

func (h *Handler) refund(ctx context.Context, c *call) (response, error) {
	var b refundBody
	key, err := h.write(c, &b, keyRequired)
	if err != nil {
		return response{}, err
	}
	amt, err := b.Amount.parse("amount")
	if err != nil {
		return response{}, err
	}
	res, err := h.cfg.Ledger.Refund(ctx, credits.RefundRequest{Charge: c.r.PathValue("charge"), Account: c.account, Amount: amt, Reason: b.Reason, Key: key})
	if err != nil {
		return response{}, err
	}
	return response{status: http.StatusOK, body: res, replayed: res.Replayed}, nil
}

type limitsBody struct {
	Period  string            `json:"period"`
	Default amount            `json:"default"`
	Members map[string]amount `json:"members"`
}

func (h *Handler) memberLimits(ctx context.Context, c *call) (response, error) {
	var b limitsBody
	key, err := h.write(c, &b, keyRequired)
	if err != nil {
		return response{}, err
	}
	req := credits.MemberLimitsRequest{Account: c.account, Period: credits.Period(b.Period), Key: key}
	if b.Default.given() {
		d, err := b.Default.parse("default")
		if err != nil {
			return response{}, err
		}
		req.Default = &d
	}
	for _, m := range slices.Sorted(maps.Keys(b.Members)) { // the first bad one, always the same
		a := b.Members[m]
		if !a.given() { // null would read as 0: "may not spend"
			return response{}, &httpError{code: "invalid_amount", status: http.StatusBadRequest, field: "members." + m,
				detail: "members." + m + " is null: give an amount (0: may not spend), or leave the member out for the default"}
		}
		v, err := a.parse("members." + m)
		if err != nil {
			return response{}, err
		}
		if req.Members == nil {
			req.Members = map[string]credits.Credits{}
		}
		req.Members[m] = v
	}
	res, err := h.cfg.Ledger.SetMemberLimits(ctx, req)
	if errors.Is(err, credits.ErrNotMember) {
		return response{}, &httpError{code: "not_member", status: http.StatusForbidden, field: "members", detail: err.Error()}
	}
	if err != nil {
		return response{}, err
	}
	return response{status: http.StatusOK, body: res, replayed: res.Replayed}, nil
}

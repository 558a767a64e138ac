package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"

	"github.com/creditkit/credits"
)

// creditPack is a bundle of credits on sale.
type creditPack struct {
	ID      string          `json:"id"`
	Credits credits.Credits `json:"credits"`
	// Price is what the payment provider charges, for display.
	Price string `json:"price"`
}

// creditPacks are the packs the Buy button sells.
var creditPacks = []creditPack{
	{ID: "starter", Credits: credits.Whole(100), Price: "$9"},
	{ID: "creator", Credits: credits.Whole(500), Price: "$39"},
	{ID: "studio", Credits: credits.Whole(2000), Price: "$129"},
}

// purchaseIDPattern is what a purchase ID made by the page looks like.
var purchaseIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{8,64}$`)

// buyRequest is the page's Buy: which pack, for which account, under the
// purchase ID the page made when it showed the button. A second click
// sends the same ID.
type buyRequest struct {
	Account    string `json:"account"`
	Pack       string `json:"pack"`
	PurchaseID string `json:"purchase_id"`
}

// paymentEvent is the simulated payment provider's webhook: the payment
// of a purchase succeeded.
type paymentEvent struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	PurchaseID string          `json:"purchase_id"`
	Account    string          `json:"account"`
	Pack       string          `json:"pack"`
	Credits    credits.Credits `json:"credits"`
	Price      string          `json:"price"`
}

// delivery is what one delivery of a webhook got back.
type delivery struct {
	Status   int    `json:"status"`
	Credited bool   `json:"credited"`
	Detail   string `json:"detail,omitempty"`
	Code     string `json:"code,omitempty"` // a refusal's problem code
}

// buy pays for a pack (the simulated provider always accepts) and then
// plays the provider's part: it delivers the payment's webhook twice, as
// providers do (at least once, sometimes more). The webhook grants the
// credits under a key of the purchase, so however many times it comes,
// and however many times the button was clicked, the purchase credits
// once.
func (p *platform) buy(w http.ResponseWriter, r *http.Request) {
	user := sessionUser(r)
	if user == "" {
		writeProblem(w, http.StatusUnauthorized, "unauthenticated", "sign in first")
		return
	}
	var req buyRequest
	if !decodeJSON(w, r, &req, "{account, pack, purchase_id}") {
		return
	}
	if _, ok := access(user, req.Account); !ok {
		writeProblem(w, http.StatusForbidden, "forbidden", fmt.Sprintf("%s may not buy credits for account %q", user, req.Account))
		return
	}
	if !purchaseIDPattern.MatchString(req.PurchaseID) {
		writeProblem(w, http.StatusBadRequest, "invalid_request", "purchase_id must be 8 to 64 letters, digits, _ or -")
		return
	}
	var pack *creditPack
	for i := range creditPacks {
		if creditPacks[i].ID == req.Pack {
			pack = &creditPacks[i]
		}
	}
	if pack == nil {
		writeProblem(w, http.StatusBadRequest, "invalid_request", fmt.Sprintf("no credit pack %q", req.Pack))
		return
	}
	event := paymentEvent{
		ID: "evt_" + req.PurchaseID, Type: "payment.succeeded", PurchaseID: req.PurchaseID,
		Account: req.Account, Pack: pack.ID, Credits: pack.Credits, Price: pack.Price,
	}
	var deliveries []delivery
	for range 2 {
		d, err := p.deliverWebhook(r.Context(), event)
		if err != nil {
			slog.ErrorContext(r.Context(), "delivering the payment webhook", "purchase", req.PurchaseID, "err", err)
			writeProblem(w, http.StatusInternalServerError, "internal", "internal error")
			return
		}
		deliveries = append(deliveries, d)
		switch {
		case d.Status == http.StatusOK:
		case d.Status >= 400 && d.Status < 500 && d.Status != http.StatusUnauthorized:
			// The ledger refused the purchase's grant for a reason of the
			// purchase's own (its account is unknown, its ID was used for
			// another pack): the webhook's code and message say which,
			// and carry no server-side cause.
			writeProblem(w, d.Status, d.Code, d.Detail)
			return
		default:
			// The webhook failed (its cause is logged where it failed),
			// or refused the provider's signature: nothing the buyer can
			// act on, except to try again.
			slog.ErrorContext(r.Context(), "the payment webhook did not credit the purchase",
				"purchase", req.PurchaseID, "status", d.Status, "code", d.Code)
			writeProblem(w, http.StatusBadGateway, "payment_not_credited",
				"the payment went through but could not be credited yet: click Buy again (the same purchase credits once)")
			return
		}
	}
	reply := map[string]any{
		"purchase_id": req.PurchaseID,
		"credits":     pack.Credits,
		// credited: this request's deliveries credited the purchase (the
		// first one did); false when an earlier click already had.
		"credited":   deliveries[0].Credited || deliveries[1].Credited,
		"deliveries": deliveries,
	}
	// The purchase is credited: a balance that cannot be read now does not
	// make it fail (the page reloads the balance anyway).
	if b, err := p.ledger.Balance(r.Context(), req.Account); err != nil {
		slog.WarnContext(r.Context(), "reading the balance after a purchase", "account", req.Account, "err", err)
	} else {
		reply["available"] = b.Available
	}
	writeJSON(w, http.StatusOK, reply)
}

// deliverWebhook plays the payment provider: it signs event and posts it
// to the platform's webhook handler. (In-process, to keep the demo one
// program; a provider posts to /webhooks/payment over the internet.)
func (p *platform) deliverWebhook(ctx context.Context, event paymentEvent) (delivery, error) {
	body, err := json.Marshal(event)
	if err != nil {
		return delivery{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "/webhooks/payment", bytes.NewReader(body))
	if err != nil {
		return delivery{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Payment-Signature", p.sign(body))
	rec := httptest.NewRecorder()
	p.paymentWebhook(rec, req)
	var reply struct {
		Credited bool   `json:"credited"`
		Detail   string `json:"detail"`
		Code     string `json:"code"`
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &reply)
	return delivery{Status: rec.Code, Credited: reply.Credited, Detail: reply.Detail, Code: reply.Code}, nil
}

// sign is the provider's signature of a webhook body.
func (p *platform) sign(body []byte) string {
	mac := hmac.New(sha256.New, p.webhookSecret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// paymentWebhook receives the payment provider's webhooks. It checks the
// signature, then grants the purchased credits under the key
// payment:<purchase ID>: a delivery that comes again is a replay of the
// first, and credits nothing more.
func (p *platform) paymentWebhook(w http.ResponseWriter, r *http.Request) {
	if !requireJSON(w, r) {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeProblem(w, http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("the body is larger than %d bytes", mbe.Limit))
		} else {
			writeProblem(w, http.StatusBadRequest, "invalid_request", "the body could not be read")
		}
		return
	}
	got := strings.TrimSpace(r.Header.Get("Payment-Signature"))
	if !hmac.Equal([]byte(got), []byte(p.sign(body))) {
		writeProblem(w, http.StatusUnauthorized, "unauthenticated", "bad or missing Payment-Signature")
		return
	}
	var event paymentEvent
	if err := json.Unmarshal(body, &event); err != nil {
		// The error describes the provider's own (signed) body.
		writeProblem(w, http.StatusBadRequest, "invalid_request", "the event is not valid JSON: "+err.Error())
		return
	}
	if event.Type != "payment.succeeded" {
		writeJSON(w, http.StatusOK, map[string]any{"credited": false, "detail": "ignored: " + event.Type})
		return
	}
	res, err := p.ledger.Grant(r.Context(), credits.GrantRequest{
		Account: event.Account,
		Amount:  event.Credits,
		Kind:    credits.KindPurchase,
		Key:     "payment:" + event.PurchaseID,
		Note:    fmt.Sprintf("purchase %s: %s pack (%s)", event.PurchaseID, event.Pack, event.Price),
	})
	if err != nil {
		// The provider delivers again after an error: a 5xx (a store's
		// failure) may get better, a 4xx (an unknown account, a purchase
		// ID used for another pack) will not, and says so.
		ledgerFailed(w, r, "crediting a payment", err, "purchase", event.PurchaseID, "account", event.Account)
		return
	}
	p.api.Notify(event.Account) // the page shows the purchase at once
	detail := "credited"
	if res.Replayed {
		detail = "already credited: a repeated delivery changes nothing"
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"credited":  !res.Replayed,
		"detail":    detail,
		"grant":     res.Grant.ID,
		"available": res.Available,
	})
}

// ledgerFailed answers err, an error of the ledger's, as a problem. One
// that is the client's business (credits.Code gives a 4xx: an unknown
// account, an idempotency conflict) gets its code and a message in words;
// any other (a store's failure, a timeout) is logged with its cause and
// answered with a fixed message, as credithttp does: a store's error text
// can name a host or a statement, no business of the client's. what and
// args say what was being done, for the log.
func ledgerFailed(w http.ResponseWriter, r *http.Request, what string, err error, args ...any) {
	code, status := credits.Code(err)
	args = append(args, "method", r.Method, "path", r.URL.Path, "code", code, "err", err)
	if status >= 400 && status < 500 {
		slog.InfoContext(r.Context(), what+": refused", args...)
		writeProblem(w, status, code, refusalMessage(code))
		return
	}
	slog.ErrorContext(r.Context(), what+": failed", args...)
	detail := "internal error"
	switch code {
	case "transient":
		detail = "the ledger's store failed for a moment: try again"
	case "timeout":
		detail = "the ledger did not answer in time: try again"
	}
	if status < 500 {
		status = http.StatusInternalServerError
	}
	writeProblem(w, status, code, detail)
}

// refusalMessages put the ledger's refusals that this platform's own
// endpoints can meet in words.
var refusalMessages = map[string]string{
	"unknown_account":      "there is no such account",
	"idempotency_conflict": "this purchase ID was already used for another pack or account: a purchase credits once, as first made",
	"invalid_amount":       "the amount is not one the ledger accepts",
	"overflow":             "the amount would overflow the account's balance",
	"invalid_request":      "the ledger refused the request as malformed",
	"canceled":             "the request was cancelled",
}

// refusalMessage is the ledger's refusal code in words, for the client.
func refusalMessage(code string) string {
	if m, ok := refusalMessages[code]; ok {
		return m
	}
	return "the ledger refused the request: " + strings.ReplaceAll(code, "_", " ")
}

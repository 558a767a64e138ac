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
	if err := decodeJSON(w, r, &req); err != nil {
		writeProblem(w, http.StatusBadRequest, "invalid_request", "the body must be {account, pack, purchase_id}: "+err.Error())
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
			writeProblem(w, http.StatusBadGateway, "internal", "delivering the payment webhook: "+err.Error())
			return
		}
		deliveries = append(deliveries, d)
		if d.Status != http.StatusOK {
			writeProblem(w, d.Status, "payment_not_credited", d.Detail)
			return
		}
	}
	b, err := p.ledger.Balance(r.Context(), req.Account)
	if err != nil {
		writeProblem(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"purchase_id": req.PurchaseID,
		"credits":     pack.Credits,
		// credited: this request's deliveries credited the purchase (the
		// first one did); false when an earlier click already had.
		"credited":   deliveries[0].Credited || deliveries[1].Credited,
		"deliveries": deliveries,
		"available":  b.Available,
	})
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
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &reply)
	return delivery{Status: rec.Code, Credited: reply.Credited, Detail: reply.Detail}, nil
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
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		writeProblem(w, http.StatusRequestEntityTooLarge, "body_too_large", err.Error())
		return
	}
	got := strings.TrimSpace(r.Header.Get("Payment-Signature"))
	if !hmac.Equal([]byte(got), []byte(p.sign(body))) {
		writeProblem(w, http.StatusUnauthorized, "unauthenticated", "bad or missing Payment-Signature")
		return
	}
	var event paymentEvent
	if err := json.Unmarshal(body, &event); err != nil {
		writeProblem(w, http.StatusBadRequest, "invalid_request", err.Error())
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
		// The provider delivers again after an error; a conflict or an
		// unknown account will not get better, so say so plainly.
		code, status := credits.Code(err)
		if errors.Is(err, credits.ErrTransient) {
			status = http.StatusServiceUnavailable
		}
		writeProblem(w, status, code, err.Error())
		return
	}
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

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creditkit/credits"
	"github.com/creditkit/credits/sqlstore"
)

// flakyStore fails the next fails calls of Update with a transient error,
// as a store that lost its connection for a moment does.
type flakyStore struct {
	credits.Store
	fails atomic.Int32
}

func (s *flakyStore) Update(ctx context.Context, q credits.Query, apply func(*credits.State) (*credits.Change, error)) error {
	if s.fails.Add(-1) >= 0 {
		return fmt.Errorf("flaky: connection to db.internal:5432 reset: %w", credits.ErrTransient)
	}
	s.fails.Store(0)
	return s.Store.Update(ctx, q, apply)
}

// newTestPlatform builds the platform on a fresh SQLite file, behind a
// store the test can make fail; its worker does not run.
func newTestPlatform(t *testing.T) (*platform, *flakyStore) {
	t.Helper()
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, "file:"+filepath.Join(t.TempDir(), "server.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	flaky := &flakyStore{Store: store}
	p, err := newPlatform(ctx, flaky, defaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	return p, flaky
}

// readProblem decodes a problem document, failing the test if rec holds
// none.
func readProblem(t *testing.T, rec *httptest.ResponseRecorder) problem {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json; body %s", ct, rec.Body)
	}
	var p problem
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatal(err)
	}
	if p.Status != rec.Code || p.Title != codeTitle(p.Code) || !strings.HasSuffix(p.Type, "/"+p.Code) {
		t.Fatalf("problem %+v for status %d", p, rec.Code)
	}
	return p
}

// TestPostsNeedJSON: the platform's own POSTs take only a JSON
// Content-Type, as credithttp's do, so that another site's form cannot buy
// credits or sign the user out with their cookie.
func TestPostsNeedJSON(t *testing.T) {
	p, _ := newTestPlatform(t)
	h := p.Handler()
	ctx := context.Background()
	before, err := p.ledger.Balance(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	post := func(path, contentType, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: "alice"})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}

	buy := `{"account":"alice","pack":"starter","purchase_id":"pur_crosssite1"}`
	for _, ct := range []string{"text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "", "application/jsonx", "json"} {
		rec := post("/app/buy", ct, buy)
		if rec.Code != http.StatusUnsupportedMediaType {
			t.Fatalf("POST /app/buy with Content-Type %q: %d %s; want 415", ct, rec.Code, rec.Body)
		}
		if pr := readProblem(t, rec); pr.Code != "unsupported_media_type" || pr.Field != "Content-Type" || pr.Title != "Unsupported media type" {
			t.Fatalf("POST /app/buy with Content-Type %q: %+v", ct, pr)
		}
	}
	after, err := p.ledger.Balance(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if after.Available != before.Available || !after.Paid.IsZero() {
		t.Fatalf("refused purchases credited alice: available %s → %s, paid %s", before.Available, after.Available, after.Paid)
	}

	// The same body as JSON (a +json type will do too) credits the pack,
	// once.
	for _, ct := range []string{"application/json", "application/vnd.lumen+json; charset=utf-8"} {
		if rec := post("/app/buy", ct, buy); rec.Code != http.StatusOK {
			t.Fatalf("POST /app/buy with Content-Type %q: %d %s", ct, rec.Code, rec.Body)
		}
	}
	if b, err := p.ledger.Balance(ctx, "alice"); err != nil {
		t.Fatal(err)
	} else if b.Paid != credits.Whole(100) {
		t.Fatalf("after the JSON purchase alice has %s paid credits, want 100", b.Paid)
	}

	// The purchase ID again, for another pack: the ledger refuses the
	// grant, and the buyer is told why in words, with the ledger's code.
	rec := post("/app/buy", "application/json", `{"account":"alice","pack":"creator","purchase_id":"pur_crosssite1"}`)
	if pr := readProblem(t, rec); rec.Code != http.StatusConflict || pr.Code != "idempotency_conflict" || pr.Detail != refusalMessages["idempotency_conflict"] {
		t.Fatalf("a purchase ID reused for another pack: %d %+v", rec.Code, pr)
	}

	// Signing out, the same: refused as a form (the cookie stays), done as
	// JSON with an empty body.
	rec = post("/logout", "application/x-www-form-urlencoded", "")
	if rec.Code != http.StatusUnsupportedMediaType || rec.Header().Get("Set-Cookie") != "" {
		t.Fatalf("POST /logout as a form: %d, Set-Cookie %q; want 415 and no cookie", rec.Code, rec.Header().Get("Set-Cookie"))
	}
	readProblem(t, rec)
	rec = post("/logout", "application/json", "")
	if rec.Code != http.StatusNoContent || !strings.Contains(rec.Header().Get("Set-Cookie"), "Max-Age=0") {
		t.Fatalf("POST /logout as JSON: %d, Set-Cookie %q; want 204 and the cookie cleared", rec.Code, rec.Header().Get("Set-Cookie"))
	}

	// The webhook too (the provider sends JSON).
	rec = post("/webhooks/payment", "text/plain", `{}`)
	if rec.Code != http.StatusUnsupportedMediaType {
		t.Fatalf("POST /webhooks/payment as text/plain: %d", rec.Code)
	}
}

// TestLedgerFailures: an error of the ledger's is answered with its code;
// a server-side cause is logged, never shown.
func TestLedgerFailures(t *testing.T) {
	for _, c := range []struct {
		err    error
		status int
		code   string
	}{
		{fmt.Errorf("sqlstore: commit: %w: dial tcp db.internal:5432: connection refused", credits.ErrTransient), http.StatusServiceUnavailable, "transient"},
		{errors.New(`pq: relation "credits_entries" does not exist at db.internal`), http.StatusInternalServerError, "internal"},
		{fmt.Errorf("store db.internal: %w", context.DeadlineExceeded), http.StatusGatewayTimeout, "timeout"},
		{fmt.Errorf("%w: %q", credits.ErrUnknownAccount, "carol"), http.StatusNotFound, "unknown_account"},
		{fmt.Errorf("%w: key payment:x at db.internal", credits.ErrIdempotencyConflict), http.StatusConflict, "idempotency_conflict"},
	} {
		rec := httptest.NewRecorder()
		ledgerFailed(rec, httptest.NewRequest(http.MethodPost, "/webhooks/payment", nil), "testing", c.err)
		p := readProblem(t, rec)
		if rec.Code != c.status || p.Code != c.code {
			t.Errorf("%v: %d %s; want %d %s", c.err, rec.Code, p.Code, c.status, c.code)
		}
		if p.Detail == "" || strings.Contains(rec.Body.String(), "db.internal") {
			t.Errorf("%v: the answer %s shows the cause, or no detail", c.err, rec.Body)
		}
	}
	rec := httptest.NewRecorder()
	writeProblem(rec, http.StatusPaymentRequired, "insufficient_credits", "x")
	if p := readProblem(t, rec); p.Title != "Insufficient credits" {
		t.Errorf("title %q", p.Title)
	}
}

// TestCaptureRetries: a finished job's capture that fails for a moment is
// tried again, and charges once; one that keeps failing gives up after
// CaptureAttempts, leaving the hold to lapse; a refused one is not retried.
func TestCaptureRetries(t *testing.T) {
	p, flaky := newTestPlatform(t)
	ctx := context.Background()
	w := newWorker(p.ledger, workerConfig{CaptureAttempts: 3, CaptureBackoff: time.Millisecond})
	n := 0
	reserve := func() credits.Hold {
		t.Helper()
		q, err := p.ledger.QuoteFor(ctx, "alice", credits.QuoteRequest{Tool: "video", Resolution: "480p", Duration: 4 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		n++
		r, err := p.ledger.Reserve(ctx, credits.ReserveRequest{Account: "alice", Quote: q, Key: fmt.Sprintf("test-%d", n)})
		if err != nil {
			t.Fatal(err)
		}
		return r.Hold
	}
	status := func(h credits.Hold) credits.HoldStatus {
		t.Helper()
		got, err := p.ledger.Hold(ctx, h.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got.Status
	}
	usage := credits.Usage{Duration: 3 * time.Second}

	h := reserve()
	flaky.fails.Store(2)
	if !w.capture(ctx, h, usage) || status(h) != credits.HoldCaptured {
		t.Fatalf("two transient failures, three attempts: the hold is %s", status(h))
	}

	h = reserve()
	flaky.fails.Store(3)
	if w.capture(ctx, h, usage) || status(h) != credits.HoldOpen {
		t.Fatalf("three transient failures, three attempts: captured, or the hold is %s", status(h))
	}
	if left := flaky.fails.Load(); left != 0 {
		t.Fatalf("%d failures left: the capture was not tried three times", left)
	}

	// Released meanwhile: refused, and not tried again.
	if _, err := p.ledger.Release(ctx, credits.ReleaseRequest{Hold: h.ID, Account: h.Account, Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	flaky.fails.Store(0)
	if w.capture(ctx, h, usage) || status(h) != credits.HoldReleased {
		t.Fatalf("a released hold: captured, or it is %s", status(h))
	}
}

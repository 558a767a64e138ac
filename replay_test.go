package credits_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/creditkit/credits"
	"github.com/creditkit/credits/memstore"
)

// replayLedger is a ledger on memstore at *now (the clock reads it on
// every call) with an account "a".
func replayLedger(t *testing.T, now *time.Time) (*memstore.Store, *credits.Ledger) {
	t.Helper()
	store := memstore.New()
	l, err := credits.NewLedger(store, &credits.Config{Now: func() time.Time { return *now }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.CreateAccount(context.Background(), credits.CreateAccountRequest{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	return store, l
}

// recordOf reads the idempotency record of key on account from the store.
func recordOf(t *testing.T, store credits.Store, account, key string) *credits.Record {
	t.Helper()
	st, err := store.View(context.Background(), credits.Query{Account: account, Keys: []string{key}})
	if err != nil || st.Records[key] == nil {
		t.Fatalf("record %q of %q: %v", key, account, err)
	}
	return st.Records[key]
}

// holdOf reads a hold of account from the store.
func holdOf(t *testing.T, store credits.Store, account, id string) *credits.Hold {
	t.Helper()
	st, err := store.View(context.Background(), credits.Query{Account: account, Holds: []string{id}})
	if err != nil || st.Holds[id] == nil {
		t.Fatalf("hold %q of %q: %v", id, account, err)
	}
	return st.Holds[id]
}

// TestSlimRecords: a charge's record keeps its hold by ID (no quote, no
// portions), and every replay rebuilds the hold as its operation left it,
// however the hold changed since: refunded, captured, released, expired,
// loading the hold when the operation's query did not name it.
func TestSlimRecords(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	store, l := replayLedger(t, &now)
	if _, err := l.Grant(ctx, credits.GrantRequest{Account: "a", Amount: credits.Whole(100), Kind: credits.KindPurchase, Key: "g"}); err != nil {
		t.Fatal(err)
	}
	image, _ := l.Quote(credits.QuoteRequest{Tool: "image"})
	video, _ := l.Quote(credits.QuoteRequest{Tool: "video", Resolution: "720p", Duration: 5 * time.Second})

	charge, err := l.Charge(ctx, credits.ChargeRequest{Account: "a", Quote: image, Key: "charge"})
	if err != nil {
		t.Fatal(err)
	}
	rec := recordOf(t, store, "a", "k:charge")
	if len(rec.Result) > 200 || strings.Contains(string(rec.Result), image.Breakdown) || !strings.HasPrefix(string(rec.Result), `{"ok_hold_by_id":{"hold":{"id":`) {
		t.Errorf("the charge's record keeps %d bytes: %s", len(rec.Result), rec.Result)
	}
	if _, err := earlierVersionReplay[credits.ChargeResult](rec.Result); err == nil {
		t.Errorf("a version from before records kept holds by ID reads this record without an error: %s", rec.Result)
	}
	reserved, err := l.Reserve(ctx, credits.ReserveRequest{Account: "a", Quote: video, Key: "job"})
	if err != nil {
		t.Fatal(err)
	}
	captured, err := l.Capture(ctx, credits.CaptureRequest{Hold: reserved.Hold.ID, Usage: credits.Usage{Duration: 3 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	toRelease, err := l.Reserve(ctx, credits.ReserveRequest{Account: "a", Quote: video, Key: "failed-job"})
	if err != nil {
		t.Fatal(err)
	}
	released, err := l.Release(ctx, credits.ReleaseRequest{Hold: toRelease.Hold.ID})
	if err != nil {
		t.Fatal(err)
	}
	toExpire, err := l.Reserve(ctx, credits.ReserveRequest{Account: "a", Quote: video, Key: "lost-job", TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	// Change every hold after its operation: refunds, an expiry.
	if _, err := l.Refund(ctx, credits.RefundRequest{Charge: charge.Hold.ID, Amount: credits.Whole(2), Key: "r1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Refund(ctx, credits.RefundRequest{Charge: reserved.Hold.ID, Key: "r2"}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Minute)
	if _, err := l.Grant(ctx, credits.GrantRequest{Account: "a", Amount: credits.Whole(1), Kind: credits.KindPromo, Key: "g2"}); err != nil { // writes the expiry
		t.Fatal(err)
	}
	if h := holdOf(t, store, "a", toExpire.Hold.ID); h.Status != credits.HoldExpired {
		t.Fatalf("the lost job's hold is %s, want expired", h.Status)
	}

	check := func(name string, got, want any, err error) {
		t.Helper()
		if err != nil {
			t.Errorf("%s replay: %v", name, err)
			return
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s replay:\n got  %+v\n want %+v", name, got, want)
		}
	}
	charge.Replayed, reserved.Replayed, captured.Replayed, released.Replayed, toExpire.Replayed = true, true, true, true, true
	again1, err := l.Charge(ctx, credits.ChargeRequest{Account: "a", Quote: image, Key: "charge"})
	check("charge (refunded since)", again1, charge, err)
	again2, err := l.Reserve(ctx, credits.ReserveRequest{Account: "a", Quote: video, Key: "job"})
	check("reserve (captured and refunded since)", again2, reserved, err)
	again3, err := l.Capture(ctx, credits.CaptureRequest{Hold: reserved.Hold.ID, Usage: credits.Usage{Duration: 3 * time.Second}})
	check("capture (refunded since)", again3, captured, err)
	again4, err := l.Release(ctx, credits.ReleaseRequest{Hold: toRelease.Hold.ID})
	check("release", again4, released, err)
	again5, err := l.Reserve(ctx, credits.ReserveRequest{Account: "a", Quote: video, Key: "lost-job", TTL: time.Minute})
	check("reserve (expired since)", again5, toExpire, err)
}

// TestFullRecordsStillReplay: a record written before records kept holds
// by ID (the whole hold in its result) replays as it is, without the hold.
func TestFullRecordsStillReplay(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	store, l := replayLedger(t, &now)
	image, _ := l.Quote(credits.QuoteRequest{Tool: "image"})
	if _, err := l.Grant(ctx, credits.GrantRequest{Account: "a", Amount: credits.Whole(10), Kind: credits.KindPurchase, Key: "g"}); err != nil {
		t.Fatal(err)
	}
	// The whole canonical request, as records kept it before they kept a
	// Reserve's or Charge's request by its hold.
	request := fmt.Sprintf(`{"op":"charge","account":"a","quote":{"tool":"image","images":1,"total":"%s","catalog_version":"%s"}}`, image.Total, image.CatalogVersion)
	want := credits.ChargeResult{Hold: credits.Hold{ID: "hold_gone", Account: "a", Key: "old", Status: credits.HoldCaptured, Amount: image.Total,
		Captured: image.Total, Portions: []credits.Portion{{Bucket: "grant_x", Amount: image.Total, Captured: image.Total}}, Quote: image,
		CreatedAt: now, Deadline: now, SettledAt: now}, Charged: image.Total, Available: credits.Whole(1)}
	res, _ := json.Marshal(want)
	old := &credits.Record{Key: "k:old", Operation: "charge", Request: []byte(request), Result: []byte(`{"ok":` + string(res) + `}`), CreatedAt: now}
	if err := store.Update(ctx, credits.Query{Account: "a"}, func(*credits.State) (*credits.Change, error) {
		return &credits.Change{Record: old}, nil
	}); err != nil {
		t.Fatal(err)
	}

	got, err := l.Charge(ctx, credits.ChargeRequest{Account: "a", Quote: image, Key: "old"})
	want.Replayed = true
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("replay of a full record = %+v, %v\nwant %+v", got, err, want)
	}
}

// earlierVersionReplay is how a version from before records kept holds by
// ID replays a record (mutate's replay branch and decodeResult's success
// branch, as they were): it reads "ok" only. Such a version may still run
// on the same database during a rolling deploy, or after a rollback. It
// must fail on a record that keeps its hold by ID: read as a success, the
// hold would be empty (no status, amount or quote), and Run, retried on
// it, would run the job with that hold, fail to price its usage and
// release the hold: a job done for free. (Found by review.)
func earlierVersionReplay[R any](result []byte) (R, error) {
	var (
		r  R
		rr struct {
			OK    json.RawMessage `json:"ok,omitempty"`
			Error string          `json:"error,omitempty"`
		}
	)
	if err := json.Unmarshal(result, &rr); err != nil {
		return r, err
	}
	if rr.Error != "" {
		return r, errors.New(rr.Error)
	}
	return r, json.Unmarshal(rr.OK, &r)
}

// TestRequestKeptByHold: the record of a Reserve or Charge keeps its
// request by the hold it made. A retry with the same request replays; one
// that differs is refused naming exactly the fields that differ, as when
// the record kept the whole request.
func TestRequestKeptByHold(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	_, l := replayLedger(t, &now)
	image, _ := l.Quote(credits.QuoteRequest{Tool: "image"})
	video, _ := l.Quote(credits.QuoteRequest{Tool: "video", Resolution: "720p", Duration: 5 * time.Second})
	if _, err := l.Grant(ctx, credits.GrantRequest{Account: "a", Amount: credits.Whole(500), Kind: credits.KindPurchase, Key: "g"}); err != nil {
		t.Fatal(err)
	}
	meta := map[string]string{"prompt": "a cat"}
	charged, err := l.Charge(ctx, credits.ChargeRequest{Account: "a", Quote: image, Key: "c", Metadata: meta})
	if err != nil {
		t.Fatal(err)
	}
	reserved, err := l.Reserve(ctx, credits.ReserveRequest{Account: "a", Quote: video, Key: "r", TTL: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	again, err := l.Charge(ctx, credits.ChargeRequest{Account: "a", Quote: image, Key: "c", Metadata: map[string]string{"prompt": "a cat"}})
	if err != nil || !again.Replayed || again.Hold.ID != charged.Hold.ID {
		t.Fatalf("charge retried: %+v, %v", again, err)
	}
	for _, c := range []struct {
		name   string
		call   func() error
		fields []string
	}{
		{"other metadata", func() error {
			_, err := l.Charge(ctx, credits.ChargeRequest{Account: "a", Quote: image, Key: "c", Metadata: map[string]string{"prompt": "a dog"}})
			return err
		}, []string{"metadata"}},
		{"other quote and member", func() error {
			_, err := l.Charge(ctx, credits.ChargeRequest{Account: "a", Member: "bob", Quote: video, Key: "c", Metadata: meta})
			return err
		}, []string{"member", "quote"}},
		{"other TTL", func() error {
			_, err := l.Reserve(ctx, credits.ReserveRequest{Account: "a", Quote: video, Key: "r"})
			return err
		}, []string{"ttl_ms"}},
		{"other operation", func() error {
			_, err := l.Charge(ctx, credits.ChargeRequest{Account: "a", Quote: video, Key: "r"})
			return err
		}, []string{"operation"}},
	} {
		var ce *credits.IdempotencyConflictError
		if err := c.call(); !errors.As(err, &ce) || !reflect.DeepEqual(ce.Fields, c.fields) {
			t.Errorf("%s: %v (fields %v), want a conflict on %v", c.name, err, ce, c.fields)
		}
	}
	same, err := l.Reserve(ctx, credits.ReserveRequest{Account: "a", Quote: video, Key: "r", TTL: 10 * time.Minute})
	if err != nil || !same.Replayed || same.Hold.ID != reserved.Hold.ID {
		t.Fatalf("reserve retried: %+v, %v", same, err)
	}
}

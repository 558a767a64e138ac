package credits

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// memStore is the smallest Store there is, for tests of this package that
// cannot import memstore (it imports this package): whole state per
// account, copied in and out, with an Update that applies under one lock.
type memStore struct {
	accounts map[string]*State
}

func newMemStore() *memStore { return &memStore{accounts: map[string]*State{}} }

func (m *memStore) state(id string) *State {
	st := m.accounts[id]
	if st == nil {
		st = &State{Buckets: map[string]*Bucket{}, Holds: map[string]*Hold{}, Records: map[string]*Record{}}
		m.accounts[id] = st
	}
	return st
}

func (m *memStore) copyOf(q Query) *State {
	src := m.state(q.Account)
	st := &State{Buckets: map[string]*Bucket{}, Holds: map[string]*Hold{}, Records: map[string]*Record{}}
	if src.Account != nil {
		a := src.Account.Clone()
		st.Account = &a
	}
	for id, b := range src.Buckets {
		c := *b
		st.Buckets[id] = &c
	}
	// Like the SQL stores, only the holds a query names or that are due.
	for id, h := range src.Holds {
		if slices.Contains(q.Holds, id) || (h.Status == HoldOpen && !q.Due.IsZero() && !q.Due.Before(h.Deadline)) {
			c := h.Clone()
			st.Holds[id] = &c
		}
	}
	for _, k := range q.Keys {
		if r := src.Records[k]; r != nil {
			c := *r
			st.Records[k] = &c
		}
	}
	return st
}

func (m *memStore) Update(_ context.Context, q Query, apply func(*State) (*Change, error)) error {
	ch, err := apply(m.copyOf(q))
	if err != nil || ch == nil {
		return err
	}
	m.state(q.Account).Fold(ch)
	return nil
}

func (m *memStore) View(_ context.Context, q Query) (*State, error) { return m.copyOf(q), nil }

func (m *memStore) HoldAccount(_ context.Context, holdID string) (string, error) {
	for id, st := range m.accounts {
		if st.Holds[holdID] != nil {
			return id, nil
		}
	}
	return "", ErrUnknownHold
}

func (m *memStore) Entries(context.Context, EntryFilter) ([]Entry, error) { return nil, nil }

func (m *memStore) DueAccounts(context.Context, time.Time, int) ([]string, error) { return nil, nil }

// TestRecordedFormsMatchResults: the form a record keeps of each result
// whose hold is kept by ID has exactly the result's JSON fields, the same
// values but for the hold, and reads back into the result with the hold's
// ID. A field added to a result but not to its recorded form fails here
// (a replay would lose it).
func TestRecordedFormsMatchResults(t *testing.T) {
	hold := Hold{ID: "hold_1", Account: "a", Status: HoldCaptured, Amount: Whole(7), Captured: Whole(7),
		Portions: []Portion{{Bucket: "b", Amount: Whole(7), Captured: Whole(7)}}, Quote: Quote{Tool: "image", Total: Whole(7)}}
	for _, r := range []heldResult{
		&ReserveResult{Hold: hold, Available: Whole(3)},
		&ChargeResult{Hold: hold, Charged: Whole(5), Released: Whole(2), Capped: true, Available: Whole(3)},
		&ReleaseResult{Hold: hold, Released: Whole(7), Available: Whole(3)},
	} {
		name := reflect.TypeOf(r).Elem().Name()
		full, slim := fields(t, r), fields(t, r.recorded())
		if !slices.Equal(slices.Sorted(maps.Keys(full)), slices.Sorted(maps.Keys(slim))) {
			t.Errorf("%s: recorded fields %v, result fields %v", name, slices.Sorted(maps.Keys(slim)), slices.Sorted(maps.Keys(full)))
			continue
		}
		for k, v := range full {
			if k == "hold" {
				if got := string(slim[k]); got != `{"id":"hold_1"}` {
					t.Errorf("%s: recorded hold %s", name, got)
				}
			} else if string(slim[k]) != string(v) {
				t.Errorf("%s: recorded %s = %s, result has %s", name, k, slim[k], v)
			}
		}
		b, _ := json.Marshal(r.recorded())
		back := reflect.New(reflect.TypeOf(r).Elem()).Interface().(heldResult)
		if err := json.Unmarshal(b, back); err != nil {
			t.Fatal(err)
		}
		want := reflect.ValueOf(r).Elem().Interface()
		*back.heldHold() = hold
		if got := reflect.ValueOf(back).Elem().Interface(); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: read back as %+v, want %+v", name, got, want)
		}
	}
}

func fields(t *testing.T, v any) map[string]json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestSlimRecords: a charge's record keeps its hold by ID (no quote, no
// portions), and every replay rebuilds the hold as its operation left it,
// however the hold changed since: refunded, captured, released, expired,
// loading the hold when the operation's query did not name it.
func TestSlimRecords(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	store := newMemStore()
	l, err := NewLedger(store, &Config{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.CreateAccount(ctx, CreateAccountRequest{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Grant(ctx, GrantRequest{Account: "a", Amount: Whole(100), Kind: KindPurchase, Key: "g"}); err != nil {
		t.Fatal(err)
	}
	image, _ := l.Quote(QuoteRequest{Tool: "image"})
	video, _ := l.Quote(QuoteRequest{Tool: "video", Resolution: "720p", Duration: 5 * time.Second})

	charge, err := l.Charge(ctx, ChargeRequest{Account: "a", Quote: image, Key: "charge"})
	if err != nil {
		t.Fatal(err)
	}
	rec := store.accounts["a"].Records["k:charge"]
	if len(rec.Result) > 200 || strings.Contains(string(rec.Result), image.Breakdown) || !strings.HasPrefix(string(rec.Result), `{"ok_hold_by_id":{"hold":{"id":`) {
		t.Errorf("the charge's record keeps %d bytes: %s", len(rec.Result), rec.Result)
	}
	if _, err := earlierVersionReplay[ChargeResult](rec.Result); err == nil {
		t.Errorf("a version from before records kept holds by ID reads this record without an error: %s", rec.Result)
	}
	reserved, err := l.Reserve(ctx, ReserveRequest{Account: "a", Quote: video, Key: "job"})
	if err != nil {
		t.Fatal(err)
	}
	captured, err := l.Capture(ctx, CaptureRequest{Hold: reserved.Hold.ID, Usage: Usage{Duration: 3 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	toRelease, err := l.Reserve(ctx, ReserveRequest{Account: "a", Quote: video, Key: "failed-job"})
	if err != nil {
		t.Fatal(err)
	}
	released, err := l.Release(ctx, ReleaseRequest{Hold: toRelease.Hold.ID})
	if err != nil {
		t.Fatal(err)
	}
	toExpire, err := l.Reserve(ctx, ReserveRequest{Account: "a", Quote: video, Key: "lost-job", TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	// Change every hold after its operation: refunds, an expiry.
	if _, err := l.Refund(ctx, RefundRequest{Charge: charge.Hold.ID, Amount: Whole(2), Key: "r1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Refund(ctx, RefundRequest{Charge: reserved.Hold.ID, Key: "r2"}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Minute)
	if _, err := l.Grant(ctx, GrantRequest{Account: "a", Amount: Whole(1), Kind: KindPromo, Key: "g2"}); err != nil { // writes the expiry
		t.Fatal(err)
	}
	if h := store.accounts["a"].Holds[toExpire.Hold.ID]; h.Status != HoldExpired {
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
	again1, err := l.Charge(ctx, ChargeRequest{Account: "a", Quote: image, Key: "charge"})
	check("charge (refunded since)", again1, charge, err)
	again2, err := l.Reserve(ctx, ReserveRequest{Account: "a", Quote: video, Key: "job"})
	check("reserve (captured and refunded since)", again2, reserved, err)
	again3, err := l.Capture(ctx, CaptureRequest{Hold: reserved.Hold.ID, Usage: Usage{Duration: 3 * time.Second}})
	check("capture (refunded since)", again3, captured, err)
	again4, err := l.Release(ctx, ReleaseRequest{Hold: toRelease.Hold.ID})
	check("release", again4, released, err)
	again5, err := l.Reserve(ctx, ReserveRequest{Account: "a", Quote: video, Key: "lost-job", TTL: time.Minute})
	check("reserve (expired since)", again5, toExpire, err)
}

// TestFullRecordsStillReplay: a record written before records kept holds
// by ID (the whole hold in its result) replays as it is, without the hold.
func TestFullRecordsStillReplay(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	store := newMemStore()
	l, err := NewLedger(store, &Config{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.CreateAccount(ctx, CreateAccountRequest{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	image, _ := l.Quote(QuoteRequest{Tool: "image"})
	want := ChargeResult{Hold: Hold{ID: "hold_gone", Account: "a", Key: "old", Status: HoldCaptured, Amount: image.Total,
		Captured: image.Total, Portions: []Portion{{Bucket: "grant_x", Amount: image.Total, Captured: image.Total}}, Quote: image,
		CreatedAt: now, Deadline: now, SettledAt: now}, Charged: image.Total, Available: Whole(1)}
	req, _ := json.Marshal(spendRequest{Op: opCharge, Account: "a", Quote: fingerprint(image)})
	res, _ := json.Marshal(want)
	old := &Record{Key: keyOf("old"), Operation: opCharge, Request: req, Result: []byte(`{"ok":` + string(res) + `}`), CreatedAt: now}
	store.state("a").Records[old.Key] = old

	got, err := l.Charge(ctx, ChargeRequest{Account: "a", Quote: image, Key: "old"})
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

// TestHoldFieldsKnownToReplays is a tripwire: a replay rebuilds a hold as
// Reserve, Charge, Capture or Release left it by undoing what later
// operations change (reservedHold, capturedHold, releasedHold). A field
// added to Hold may be one that a later operation changes: check those
// functions, then add it here.
func TestHoldFieldsKnownToReplays(t *testing.T) {
	known := []string{"ID", "Account", "Member", "Key", "Status", "Amount", "Captured", "Refunded", "Portions", "Quote", "CreatedAt", "Deadline", "SettledAt", "Metadata"}
	var fields []string
	for f := range reflect.TypeFor[Hold]().Fields() {
		fields = append(fields, f.Name)
	}
	if !slices.Equal(fields, known) {
		t.Errorf("Hold's fields are %v; replays know %v", fields, known)
	}
	var portion []string
	for f := range reflect.TypeFor[Portion]().Fields() {
		portion = append(portion, f.Name)
	}
	if want := []string{"Bucket", "Amount", "Captured", "Refunded"}; !slices.Equal(portion, want) {
		t.Errorf("Portion's fields are %v; replays know %v", portion, want)
	}
}

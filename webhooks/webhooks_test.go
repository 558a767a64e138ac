package webhooks_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creditkit/credits"
	"github.com/creditkit/credits/memstore"
	"github.com/creditkit/credits/webhooks"
)

var (
	secret    = []byte("whsec-0123456789abcdef0123456789")
	newSecret = []byte("whsec-fedcba9876543210fedcba9876")
	quiet     = slog.New(slog.DiscardHandler)
	t0        = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
)

// clock is a settable clock, safe for concurrent use.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newLedger is a ledger on memstore with two accounts and a few
// operations: 5 entries (alice#1 grant, alice#2 charge, bob#1 grant,
// bob#2 grant, alice#3 grant).
func newLedger(t *testing.T, clk *clock) *credits.Ledger {
	t.Helper()
	ctx := context.Background()
	l, err := credits.NewLedger(memstore.New(), &credits.Config{
		Now:    clk.Now,
		Signup: credits.Reward{Amount: credits.Whole(50)},
	})
	if err != nil {
		t.Fatal(err)
	}
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(l.CreateAccount(ctx, credits.CreateAccountRequest{ID: "alice"}))
	q, err := l.QuoteFor(ctx, "alice", credits.QuoteRequest{Tool: "image"})
	must(q, err)
	must(l.Charge(ctx, credits.ChargeRequest{Account: "alice", Quote: q, Key: "gen-1"}))
	must(l.CreateAccount(ctx, credits.CreateAccountRequest{ID: "bob"}))
	must(l.Grant(ctx, credits.GrantRequest{Account: "bob", Amount: credits.Whole(100), Kind: credits.KindPurchase, Key: "order-1"}))
	must(l.Grant(ctx, credits.GrantRequest{Account: "alice", Amount: credits.Whole(10), Kind: credits.KindPromo, Key: "promo-1"}))
	return l
}

// allEvents reads every event of l through a consumer of its own.
func allEvents(t *testing.T, l *credits.Ledger) []credits.Event {
	t.Helper()
	f, err := l.Feed(credits.FeedConfig{Name: "truth", Holder: "truth", Batch: 1000})
	if err != nil {
		t.Fatal(err)
	}
	es, err := f.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func feed(t *testing.T, l *credits.Ledger, holder string) *credits.Feed {
	t.Helper()
	f, err := l.Feed(credits.FeedConfig{Name: "webhook", Holder: holder})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// receiver verifies every request and records what it got, as a real
// receiver would: every verified delivery, and the events deduplicated by
// ID. fail, if set, may answer a verified delivery with an error status
// after recording it (a receiver that handled the event but failed to say
// so), given how many times that event arrived so far.
type receiver struct {
	secrets [][]byte
	now     func() time.Time
	fail    func(e credits.Event, n int) int

	mu         sync.Mutex
	deliveries []credits.Event
	unique     []credits.Event
	seen       map[string]int
	refused    []error
	raw        []*http.Request // headers of every request, bodies in bodies
	bodies     [][]byte
}

func newReceiver(t *testing.T, secrets ...[]byte) (*receiver, *httptest.Server) {
	rc := &receiver{secrets: secrets, now: time.Now, seen: map[string]int{}}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	return rc, srv
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e, body, err := webhooks.VerifyRequest(r, rc.secrets, rc.now(), 0)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.raw = append(rc.raw, r.Clone(context.Background()))
	rc.bodies = append(rc.bodies, body)
	if err != nil {
		rc.refused = append(rc.refused, err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rc.deliveries = append(rc.deliveries, e)
	rc.seen[e.ID]++
	if rc.seen[e.ID] == 1 {
		rc.unique = append(rc.unique, e)
	}
	if rc.fail != nil {
		if code := rc.fail(e, rc.seen[e.ID]); code != 0 {
			w.WriteHeader(code)
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) snapshot() (deliveries, unique []credits.Event, seen map[string]int, refused []error) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	seen = map[string]int{}
	for k, v := range rc.seen {
		seen[k] = v
	}
	return append([]credits.Event(nil), rc.deliveries...), append([]credits.Event(nil), rc.unique...), seen, append([]error(nil), rc.refused...)
}

// sleeper records the waits a Sender asks for, without waiting.
type sleeper struct {
	mu    sync.Mutex
	waits []time.Duration
	// then, if set, runs on each wait (after recording it) and its error
	// is returned.
	then func(n int) error
}

func (s *sleeper) Sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.waits = append(s.waits, d)
	n := len(s.waits)
	s.mu.Unlock()
	if s.then != nil {
		if err := s.then(n); err != nil {
			return err
		}
	}
	return ctx.Err()
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// sameEvents fails unless got are want, in order, field for field.
func sameEvents(t *testing.T, got, want []credits.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d:\n%s\n%s", len(got), len(want), jsonOf(t, got), jsonOf(t, want))
	}
	for i := range want {
		if g, w := jsonOf(t, got[i]), jsonOf(t, want[i]); g != w {
			t.Errorf("event %d:\n got %s\nwant %s", i, g, w)
		}
	}
}

// drain steps s until the feed has nothing new.
func drain(t *testing.T, s *webhooks.Sender) {
	t.Helper()
	for range 100 {
		n, err := s.Step(context.Background())
		if err != nil {
			t.Fatalf("Step: %v", err)
		}
		if n == 0 {
			return
		}
	}
	t.Fatal("the feed never ran dry")
}

func TestDeliversEveryEventSignedInOrder(t *testing.T) {
	clk := &clock{t: t0}
	l := newLedger(t, clk)
	rc, srv := newReceiver(t, secret)
	s := &webhooks.Sender{Source: feed(t, l, "a"), URL: srv.URL, Secret: secret, Logger: quiet, Sleep: (&sleeper{}).Sleep}
	drain(t, s)

	deliveries, unique, _, refused := rc.snapshot()
	if len(refused) > 0 {
		t.Fatalf("refused: %v", refused)
	}
	want := allEvents(t, l)
	if len(want) != 5 {
		t.Fatalf("the ledger wrote %d entries, want 5", len(want))
	}
	sameEvents(t, deliveries, want) // each once, in feed order
	sameEvents(t, unique, want)

	// The request as documented.
	r, body := rc.raw[0], rc.bodies[0]
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("%s with Content-Type %q", r.Method, r.Header.Get("Content-Type"))
	}
	if got := r.Header.Get(webhooks.HeaderEventID); got != "alice#1" {
		t.Errorf("%s = %q", webhooks.HeaderEventID, got)
	}
	ts := r.Header.Get(webhooks.HeaderTimestamp)
	if n, err := strconv.ParseInt(ts, 10, 64); err != nil || time.Since(time.Unix(n, 0)).Abs() > time.Minute {
		t.Errorf("%s = %q, not now in Unix seconds", webhooks.HeaderTimestamp, ts)
	}
	if got, want := r.Header.Get(webhooks.HeaderSignature), webhooks.Sign(mustInt(t, ts), body, secret); got != want {
		t.Errorf("signature %q, want %q", got, want)
	}
	var fields map[string]any
	if err := json.Unmarshal(body, &fields); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]any{"id": "alice#1", "account": "alice", "seq": 1.0, "type": "grant", "amount": "50", "available": "50"} {
		if fields[k] != v {
			t.Errorf("body %s = %#v, want %#v (body %s)", k, fields[k], v, body)
		}
	}

	// Everything was acknowledged: the consumer resumes after it.
	if es, err := feed(t, l, "a").Next(context.Background()); err != nil || len(es) != 0 {
		t.Errorf("after delivery, Next = %d events, %v", len(es), err)
	}
}

func mustInt(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A receiver that handles the event but fails to answer, three times,
// gets it four times (at least once), and once after deduplication.
func TestFailingThreeTimesThenSucceeding(t *testing.T) {
	clk := &clock{t: t0}
	l := newLedger(t, clk)
	rc, srv := newReceiver(t, secret)
	rc.fail = func(e credits.Event, n int) int {
		if e.ID == "alice#2" && n <= 3 {
			return []int{http.StatusInternalServerError, http.StatusServiceUnavailable, http.StatusTooManyRequests}[n-1]
		}
		return 0
	}
	sl := &sleeper{}
	var dead []credits.Event
	s := &webhooks.Sender{
		Source: feed(t, l, "a"), URL: srv.URL, Secret: secret, Logger: quiet, Sleep: sl.Sleep,
		OnDeadLetter: func(_ context.Context, e credits.Event, _ error) error { dead = append(dead, e); return nil },
	}
	drain(t, s)

	deliveries, unique, seen, refused := rc.snapshot()
	if len(refused) > 0 || len(dead) > 0 {
		t.Fatalf("refused %v, dead letters %v", refused, dead)
	}
	if seen["alice#2"] != 4 || len(deliveries) != 8 {
		t.Errorf("alice#2 arrived %d times (want 4), %d deliveries in all (want 8)", seen["alice#2"], len(deliveries))
	}
	sameEvents(t, unique, allEvents(t, l))
	// Retries of one event come before the next event.
	for i, want := range []string{"alice#1", "alice#2", "alice#2", "alice#2", "alice#2", "bob#1"} {
		if deliveries[i].ID != want {
			t.Errorf("delivery %d is %s, want %s", i, deliveries[i].ID, want)
		}
	}
	// Three waits of the default backoff: 1 s, 2 s, 4 s, each jittered
	// down to no less than half.
	if len(sl.waits) != 3 {
		t.Fatalf("waits %v, want 3", sl.waits)
	}
	for i, w := range sl.waits {
		max := time.Second << i
		if w < max/2 || w > max {
			t.Errorf("wait %d is %v, want within [%v, %v]", i+1, w, max/2, max)
		}
	}
}

func TestDefaultBackoffBounded(t *testing.T) {
	for attempt := -1; attempt < 100; attempt++ {
		for range 20 {
			d := webhooks.DefaultBackoff(attempt)
			if d < 500*time.Millisecond || d > time.Minute {
				t.Fatalf("DefaultBackoff(%d) = %v", attempt, d)
			}
		}
	}
	if d := webhooks.DefaultBackoff(7); d < 30*time.Second {
		t.Errorf("DefaultBackoff(7) = %v, want the cap (30 s to 1 min)", d)
	}
}

// captured is one real delivery, recorded by a server on 127.0.0.1.
func captured(t *testing.T) (http.Header, []byte) {
	t.Helper()
	clk := &clock{t: t0}
	l := newLedger(t, clk)
	rc, srv := newReceiver(t, secret)
	s := &webhooks.Sender{Source: feed(t, l, "a"), URL: srv.URL, Secret: secret, Logger: quiet}
	if _, err := s.Step(context.Background()); err != nil {
		t.Fatal(err)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.raw[1].Header.Clone(), rc.bodies[1] // alice#2, the charge
}

func TestVerifyRefuses(t *testing.T) {
	h, body := captured(t)
	now := time.Unix(mustInt(t, h.Get(webhooks.HeaderTimestamp)), 0)
	e, err := webhooks.Verify(h, body, [][]byte{secret}, now, 0)
	if err != nil || e.ID != "alice#2" || e.Type != credits.EntryCharge || e.Job != "gen-1" || e.Amount != credits.Whole(7) {
		t.Fatalf("the genuine delivery: %+v, %v", e, err)
	}

	with := func(k, v string) http.Header {
		c := h.Clone()
		if v == "" {
			c.Del(k)
		} else {
			c.Set(k, v)
		}
		return c
	}
	tampered := bytes.Replace(body, []byte(`"amount":"7"`), []byte(`"amount":"700"`), 1)
	if bytes.Equal(tampered, body) {
		t.Fatalf("the body has no amount 7: %s", body)
	}
	ts := h.Get(webhooks.HeaderTimestamp)
	goodSig := h.Get(webhooks.HeaderSignature)
	for _, c := range []struct {
		name    string
		h       http.Header
		body    []byte
		secrets [][]byte
		want    error
	}{
		{"tampered body", h, tampered, [][]byte{secret}, webhooks.ErrBadSignature},
		{"a byte appended", h, append(bytes.Clone(body), ' '), [][]byte{secret}, webhooks.ErrBadSignature},
		{"empty body", h, nil, [][]byte{secret}, webhooks.ErrBadSignature},
		{"tampered timestamp", with(webhooks.HeaderTimestamp, strconv.FormatInt(mustInt(t, ts)+1, 10)), body, [][]byte{secret}, webhooks.ErrBadSignature},
		{"wrong secret", h, body, [][]byte{newSecret}, webhooks.ErrBadSignature},
		{"a prefix of the secret", h, body, [][]byte{secret[:16]}, webhooks.ErrBadSignature},
		{"another scheme only", with(webhooks.HeaderSignature, strings.Replace(goodSig, "v1=", "v0=", 1)), body, [][]byte{secret}, webhooks.ErrMalformed},
		{"signature flipped", with(webhooks.HeaderSignature, "v1="+strings.Repeat("0", 64)), body, [][]byte{secret}, webhooks.ErrBadSignature},
		{"signature truncated", with(webhooks.HeaderSignature, goodSig[:len(goodSig)-2]), body, [][]byte{secret}, webhooks.ErrMalformed},
		{"signature not hex", with(webhooks.HeaderSignature, "v1="+strings.Repeat("zz", 32)), body, [][]byte{secret}, webhooks.ErrMalformed},
		{"no signature", with(webhooks.HeaderSignature, ""), body, [][]byte{secret}, webhooks.ErrMalformed},
		{"empty signature", with(webhooks.HeaderSignature, "v1="), body, [][]byte{secret}, webhooks.ErrMalformed},
		{"no timestamp", with(webhooks.HeaderTimestamp, ""), body, [][]byte{secret}, webhooks.ErrMalformed},
		{"timestamp not a number", with(webhooks.HeaderTimestamp, "yesterday"), body, [][]byte{secret}, webhooks.ErrMalformed},
		{"negative timestamp", with(webhooks.HeaderTimestamp, "-"+ts), body, [][]byte{secret}, webhooks.ErrMalformed},
		{"timestamp with a sign", with(webhooks.HeaderTimestamp, "+"+ts), body, [][]byte{secret}, webhooks.ErrMalformed},
		{"id header not the body's", with(webhooks.HeaderEventID, "alice#1"), body, [][]byte{secret}, webhooks.ErrMalformed},
		{"no secret", h, body, nil, webhooks.ErrNoSecret},
		{"an empty secret", h, body, [][]byte{{}}, webhooks.ErrNoSecret},
	} {
		t.Run(c.name, func(t *testing.T) {
			e, err := webhooks.Verify(c.h, c.body, c.secrets, now, 0)
			if !errors.Is(err, c.want) {
				t.Errorf("Verify = %+v, %v; want %v", e, err, c.want)
			}
			if err != nil && e.ID != "" {
				t.Errorf("an event with the error: %+v", e)
			}
		})
	}

	// A signed body that is not an event is refused too.
	sig := webhooks.Sign(mustInt(t, ts), []byte(`{"id":1}`), secret)
	if _, err := webhooks.Verify(with(webhooks.HeaderSignature, sig), []byte(`{"id":1}`), [][]byte{secret}, now, 0); !errors.Is(err, webhooks.ErrMalformed) {
		t.Errorf("a signed non-event: %v", err)
	}
	// Without the id header, the signed body's id is the one.
	if e, err := webhooks.Verify(with(webhooks.HeaderEventID, ""), body, [][]byte{secret}, now, 0); err != nil || e.ID != "alice#2" {
		t.Errorf("without %s: %v, %v", webhooks.HeaderEventID, e.ID, err)
	}
}

// A tampered body posted to a real receiver is refused with 400, and the
// receiver records nothing.
func TestTamperedBodyRefusedOverHTTP(t *testing.T) {
	h, body := captured(t)
	rc, srv := newReceiver(t, secret)
	rc.now = func() time.Time { return time.Unix(mustInt(t, h.Get(webhooks.HeaderTimestamp)), 0) }
	post := func(b []byte) int {
		req, err := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		req.Header = h.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(bytes.Replace(body, []byte(`"available":"43"`), []byte(`"available":"4300"`), 1)); code != http.StatusBadRequest {
		t.Errorf("tampered: %d", code)
	}
	deliveries, _, _, refused := rc.snapshot()
	if len(deliveries) != 0 || len(refused) != 1 || !errors.Is(refused[0], webhooks.ErrBadSignature) {
		t.Errorf("tampered: deliveries %v, refused %v", deliveries, refused)
	}
	if code := post(body); code != http.StatusNoContent {
		t.Errorf("genuine: %d", code)
	}
}

func TestTimestampTolerance(t *testing.T) {
	body := []byte(`{"id":"alice#1","account":"alice","seq":1,"type":"grant","amount":"50","available":"50","held":"0","at":"2026-12-01T09:00:00Z"}`)
	sent := time.Unix(1_800_000_000, 0)
	h := http.Header{}
	h.Set(webhooks.HeaderTimestamp, strconv.FormatInt(sent.Unix(), 10))
	h.Set(webhooks.HeaderSignature, webhooks.Sign(sent.Unix(), body, secret))
	for _, c := range []struct {
		now       time.Time
		tolerance time.Duration
		ok        bool
	}{
		{sent, 0, true},
		{sent.Add(5 * time.Minute), 0, true},
		{sent.Add(-5 * time.Minute), 0, true},
		{sent.Add(5*time.Minute + time.Nanosecond), 0, false},  // stale
		{sent.Add(-5*time.Minute - time.Nanosecond), 0, false}, // from the future
		{sent.Add(time.Hour), 0, false},
		{sent.Add(-time.Hour), 0, false},
		{sent.Add(30 * time.Second), 30 * time.Second, true},
		{sent.Add(31 * time.Second), 30 * time.Second, false},
		{sent.Add(-31 * time.Second), 30 * time.Second, false},
		{sent.Add(-6 * time.Minute), -1, false}, // a negative tolerance is the default
	} {
		_, err := webhooks.Verify(h, body, [][]byte{secret}, c.now, c.tolerance)
		if c.ok && err != nil || !c.ok && !errors.Is(err, webhooks.ErrStaleTimestamp) {
			t.Errorf("now = sent%+v, tolerance %v: %v", c.now.Sub(sent), c.tolerance, err)
		}
	}
	// A forged signature is a bad signature, however old.
	h.Set(webhooks.HeaderSignature, webhooks.Sign(sent.Unix(), body, newSecret))
	if _, err := webhooks.Verify(h, body, [][]byte{secret}, sent.Add(time.Hour), 0); !errors.Is(err, webhooks.ErrBadSignature) {
		t.Errorf("forged and stale: %v", err)
	}
}

// A sender whose clock is off by more than the tolerance, either way, is
// refused by a real receiver, every attempt, and the event dead-letters.
func TestStaleAndFutureTimestampsRefusedOverHTTP(t *testing.T) {
	for _, skew := range []time.Duration{-5*time.Minute - 2*time.Second, 5*time.Minute + 2*time.Second} {
		t.Run(skew.String(), func(t *testing.T) {
			l := newLedger(t, &clock{t: t0})
			rc, srv := newReceiver(t, secret)
			var dead []error
			s := &webhooks.Sender{
				Source: feed(t, l, "a"), URL: srv.URL, Secret: secret, Logger: quiet, Sleep: (&sleeper{}).Sleep,
				MaxAttempts:  2,
				Now:          func() time.Time { return time.Now().Add(skew) },
				OnDeadLetter: func(_ context.Context, _ credits.Event, err error) error { dead = append(dead, err); return nil },
			}
			drain(t, s)
			deliveries, _, _, refused := rc.snapshot()
			if len(deliveries) != 0 || len(refused) != 10 || len(dead) != 5 {
				t.Fatalf("deliveries %d, refused %d, dead letters %d", len(deliveries), len(refused), len(dead))
			}
			for _, err := range refused {
				if !errors.Is(err, webhooks.ErrStaleTimestamp) {
					t.Errorf("refused with %v", err)
				}
			}
			var se *webhooks.StatusError
			if !errors.As(dead[0], &se) || se.StatusCode != http.StatusBadRequest || !errors.Is(dead[0], webhooks.ErrUndelivered) {
				t.Errorf("dead letter's error %v", dead[0])
			}
		})
	}
}

func TestSecretRotation(t *testing.T) {
	for _, c := range []struct {
		name       string
		sign       []byte
		extra      [][]byte
		verifyWith [][]byte
		ok         bool
	}{
		{"receiver knows old and new, sender signs with new", newSecret, nil, [][]byte{secret, newSecret}, true},
		{"receiver knows old and new, sender signs with old", secret, nil, [][]byte{secret, newSecret}, true},
		{"sender signs with both, receiver knows only old", newSecret, [][]byte{secret}, [][]byte{secret}, true},
		{"sender signs with both, receiver knows only new", newSecret, [][]byte{secret}, [][]byte{newSecret}, true},
		{"sender signs with new, receiver knows only old", newSecret, nil, [][]byte{secret}, false},
		{"sender signs with both, receiver knows neither", newSecret, [][]byte{secret}, [][]byte{[]byte("whsec-some-other-secret-entirely")}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := newLedger(t, &clock{t: t0})
			rc, srv := newReceiver(t, c.verifyWith...)
			s := &webhooks.Sender{
				Source: feed(t, l, "a"), URL: srv.URL, Secret: c.sign, ExtraSecrets: c.extra, Logger: quiet,
				Sleep: (&sleeper{}).Sleep, MaxAttempts: 1,
				OnDeadLetter: func(context.Context, credits.Event, error) error { return nil },
			}
			drain(t, s)
			deliveries, _, _, refused := rc.snapshot()
			if c.ok && (len(deliveries) != 5 || len(refused) != 0) || !c.ok && (len(deliveries) != 0 || len(refused) != 5) {
				t.Fatalf("deliveries %d, refused %v", len(deliveries), refused)
			}
			for _, err := range refused {
				if !errors.Is(err, webhooks.ErrBadSignature) {
					t.Errorf("refused with %v", err)
				}
			}
			if n := strings.Count(rc.raw[0].Header.Get(webhooks.HeaderSignature), "v1="); n != 1+len(c.extra) {
				t.Errorf("%d v1= values", n)
			}
		})
	}
}

// An event that fails MaxAttempts times is dead-lettered and acknowledged;
// delivery goes on with the next event.
func TestDeadLetterThenNextEvent(t *testing.T) {
	l := newLedger(t, &clock{t: t0})
	rc, srv := newReceiver(t, secret)
	rc.fail = func(e credits.Event, _ int) int {
		if e.ID == "alice#2" {
			return http.StatusGone
		}
		return 0
	}
	type letter struct {
		e   credits.Event
		err error
	}
	var dead []letter
	sl := &sleeper{}
	s := &webhooks.Sender{
		Source: feed(t, l, "a"), URL: srv.URL, Secret: secret, Logger: quiet, Sleep: sl.Sleep,
		MaxAttempts: 3, Backoff: func(n int) time.Duration { return time.Duration(n) * time.Millisecond },
		OnDeadLetter: func(_ context.Context, e credits.Event, err error) error {
			dead = append(dead, letter{e, err})
			return nil
		},
	}
	drain(t, s)
	deliveries, unique, seen, _ := rc.snapshot()
	if seen["alice#2"] != 3 || len(deliveries) != 7 {
		t.Errorf("alice#2 tried %d times (want 3), %d deliveries (want 7)", seen["alice#2"], len(deliveries))
	}
	sameEvents(t, unique, allEvents(t, l))
	if len(dead) != 1 || dead[0].e.ID != "alice#2" {
		t.Fatalf("dead letters %+v", dead)
	}
	var se *webhooks.StatusError
	if !errors.Is(dead[0].err, webhooks.ErrUndelivered) || !errors.As(dead[0].err, &se) || se.StatusCode != http.StatusGone {
		t.Errorf("dead letter's error: %v", dead[0].err)
	}
	if fmt.Sprint(sl.waits) != "[1ms 2ms]" {
		t.Errorf("waits %v, want the Backoff's [1ms 2ms]", sl.waits)
	}
	if es, err := feed(t, l, "a").Next(context.Background()); err != nil || len(es) != 0 {
		t.Errorf("after the dead letter, Next = %d events, %v", len(es), err)
	}
}

// A dead letter that OnDeadLetter fails to record is not acknowledged: it
// is tried again.
func TestDeadLetterNotRecordedIsNotAcknowledged(t *testing.T) {
	l := newLedger(t, &clock{t: t0})
	rc, srv := newReceiver(t, secret)
	healthy := false
	rc.fail = func(e credits.Event, _ int) int {
		if !healthy && e.ID == "alice#2" {
			return http.StatusInternalServerError
		}
		return 0
	}
	boom := errors.New("dead-letter table unavailable")
	s := &webhooks.Sender{
		Source: feed(t, l, "a"), URL: srv.URL, Secret: secret, Logger: quiet, Sleep: (&sleeper{}).Sleep,
		MaxAttempts:  2,
		OnDeadLetter: func(context.Context, credits.Event, error) error { return boom },
	}
	n, err := s.Step(context.Background())
	if n != 1 || !errors.Is(err, boom) {
		t.Fatalf("Step = %d, %v; want 1 acknowledged and the OnDeadLetter error", n, err)
	}
	rc.mu.Lock()
	healthy = true
	rc.mu.Unlock()
	drain(t, s)
	_, unique, seen, _ := rc.snapshot()
	if seen["alice#1"] != 1 || seen["alice#2"] != 3 {
		t.Errorf("seen %v", seen)
	}
	sameEvents(t, unique, allEvents(t, l))
}

// A sender killed while retrying an event never acknowledged it: a new
// sender on the same consumer (another server, once the lease expired)
// delivers it again, and everything after it.
func TestKilledSenderRedeliversUnacknowledged(t *testing.T) {
	clk := &clock{t: t0}
	l := newLedger(t, clk)
	rc, srv := newReceiver(t, secret)
	down := true
	rc.fail = func(e credits.Event, _ int) int {
		if down && e.ID == "alice#2" {
			return http.StatusBadGateway
		}
		return 0
	}
	ctx, kill := context.WithCancel(context.Background())
	defer kill()
	sl := &sleeper{then: func(n int) error {
		if n == 2 {
			kill() // the process dies during its second backoff
		}
		return nil
	}}
	var dead []credits.Event
	first := &webhooks.Sender{
		Source: feed(t, l, "server-1"), URL: srv.URL, Secret: secret, Logger: quiet, Sleep: sl.Sleep,
		OnDeadLetter: func(_ context.Context, e credits.Event, _ error) error { dead = append(dead, e); return nil },
	}
	n, err := first.Step(ctx)
	if n != 1 || !errors.Is(err, context.Canceled) {
		t.Fatalf("Step = %d, %v; want alice#1 acknowledged, then cancelled", n, err)
	}
	if len(dead) != 0 {
		t.Fatalf("a killed sender dead-lettered %v", dead)
	}

	// Another server takes over once server-1's lease expired.
	if _, err := feed(t, l, "server-2").Next(context.Background()); !errors.Is(err, credits.ErrFeedLeased) {
		t.Fatalf("while server-1 holds the lease: %v", err)
	}
	clk.Add(31 * time.Second)
	rc.mu.Lock()
	down = false
	rc.mu.Unlock()
	second := &webhooks.Sender{Source: feed(t, l, "server-2"), URL: srv.URL, Secret: secret, Logger: quiet, Sleep: (&sleeper{}).Sleep}
	drain(t, second)

	deliveries, unique, seen, _ := rc.snapshot()
	if seen["alice#1"] != 1 || seen["alice#2"] != 3 {
		t.Errorf("alice#1 arrived %d times (want 1: acknowledged), alice#2 %d (want 3: two attempts, then again)", seen["alice#1"], seen["alice#2"])
	}
	if len(deliveries) != 7 {
		t.Errorf("%d deliveries, want 7", len(deliveries))
	}
	sameEvents(t, unique, allEvents(t, l))
}

func TestNetworkErrorsAndTimeoutsAreRetried(t *testing.T) {
	t.Run("connection refused", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		l := newLedger(t, &clock{t: t0})
		var dead []error
		sl := &sleeper{}
		s := &webhooks.Sender{
			Source: feed(t, l, "a"), URL: url, Secret: secret, Logger: quiet, Sleep: sl.Sleep, MaxAttempts: 4,
			OnDeadLetter: func(_ context.Context, _ credits.Event, err error) error { dead = append(dead, err); return nil },
		}
		drain(t, s)
		if len(dead) != 5 || len(sl.waits) != 15 {
			t.Fatalf("dead letters %d (want 5), waits %d (want 15)", len(dead), len(sl.waits))
		}
		var se *webhooks.StatusError
		if !errors.Is(dead[0], webhooks.ErrUndelivered) || errors.As(dead[0], &se) {
			t.Errorf("dead letter's error: %v", dead[0])
		}
	})
	t.Run("timeout", func(t *testing.T) {
		l := newLedger(t, &clock{t: t0})
		rc := &receiver{secrets: [][]byte{secret}, now: time.Now, seen: map[string]int{}}
		release := make(chan struct{})
		var mu sync.Mutex
		calls := 0
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			calls++
			slow := calls == 1
			mu.Unlock()
			if slow { // the first attempt hangs past the sender's timeout
				select {
				case <-r.Context().Done():
				case <-release:
				}
				return
			}
			rc.ServeHTTP(w, r)
		}))
		defer srv.Close()
		defer close(release) // before srv.Close, which waits for the handler
		var dead []credits.Event
		s := &webhooks.Sender{
			Source: feed(t, l, "a"), URL: srv.URL, Secret: secret, Logger: quiet, Sleep: (&sleeper{}).Sleep,
			Timeout:      100 * time.Millisecond,
			OnDeadLetter: func(_ context.Context, e credits.Event, _ error) error { dead = append(dead, e); return nil },
		}
		start := time.Now()
		drain(t, s)
		if time.Since(start) > 4*time.Second {
			t.Errorf("the timeout did not cut the first attempt short")
		}
		_, unique, _, _ := rc.snapshot()
		if len(dead) != 0 {
			t.Errorf("dead letters %v", dead)
		}
		sameEvents(t, unique, allEvents(t, l))
	})
	t.Run("redirect not followed", func(t *testing.T) {
		l := newLedger(t, &clock{t: t0})
		rc, target := newReceiver(t, secret)
		srv := httptest.NewServer(http.RedirectHandler(target.URL, http.StatusTemporaryRedirect))
		defer srv.Close()
		var dead []error
		s := &webhooks.Sender{
			Source: feed(t, l, "a"), URL: srv.URL, Secret: secret, Logger: quiet, Sleep: (&sleeper{}).Sleep, MaxAttempts: 1,
			OnDeadLetter: func(_ context.Context, _ credits.Event, err error) error { dead = append(dead, err); return nil },
		}
		drain(t, s)
		var se *webhooks.StatusError
		if len(dead) != 5 || !errors.As(dead[0], &se) || se.StatusCode != http.StatusTemporaryRedirect {
			t.Errorf("dead letters %v", dead)
		}
		if deliveries, _, _, _ := rc.snapshot(); len(deliveries) != 0 {
			t.Errorf("the redirect was followed: %d deliveries", len(deliveries))
		}
	})
}

// Run delivers what the ledger writes, as it writes it, until cancelled;
// a second server running the same consumer meanwhile delivers nothing
// (the lease), so nothing arrives twice.
func TestRunTwoServers(t *testing.T) {
	clk := &clock{t: t0}
	l := newLedger(t, clk)
	rc, srv := newReceiver(t, secret)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 2)
	for _, holder := range []string{"server-1", "server-2"} {
		s := &webhooks.Sender{Source: feed(t, l, holder), URL: srv.URL, Secret: secret, Logger: quiet, PollInterval: 5 * time.Millisecond}
		go func() { done <- s.Run(ctx) }()
	}
	waitFor := func(n int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if _, unique, _, _ := rc.snapshot(); len(unique) >= n {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Fatalf("fewer than %d events delivered", n)
	}
	waitFor(5)
	if _, err := l.Grant(context.Background(), credits.GrantRequest{Account: "bob", Amount: credits.Whole(5), Kind: credits.KindPromo, Key: "promo-2"}); err != nil {
		t.Fatal(err)
	}
	waitFor(6)
	time.Sleep(20 * time.Millisecond) // a few more polls, delivering nothing
	cancel()
	for range 2 {
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v", err)
		}
	}
	deliveries, unique, _, refused := rc.snapshot()
	if len(refused) > 0 {
		t.Errorf("refused %v", refused)
	}
	sameEvents(t, deliveries, allEvents(t, l))
	sameEvents(t, unique, allEvents(t, l))
}

func TestInvalidConfig(t *testing.T) {
	l := newLedger(t, &clock{t: t0})
	f := feed(t, l, "a")
	for name, s := range map[string]*webhooks.Sender{
		"no source":         {URL: "http://127.0.0.1:1/", Secret: secret},
		"no URL":            {Source: f, Secret: secret},
		"not http":          {Source: f, URL: "ftp://127.0.0.1/", Secret: secret},
		"no host":           {Source: f, URL: "http:///x", Secret: secret},
		"no secret":         {Source: f, URL: "http://127.0.0.1:1/"},
		"short secret":      {Source: f, URL: "http://127.0.0.1:1/", Secret: []byte("short")},
		"short extra":       {Source: f, URL: "http://127.0.0.1:1/", Secret: secret, ExtraSecrets: [][]byte{nil}},
		"negative attempts": {Source: f, URL: "http://127.0.0.1:1/", Secret: secret, MaxAttempts: -1},
		"negative timeout":  {Source: f, URL: "http://127.0.0.1:1/", Secret: secret, Timeout: -1},
		"negative poll":     {Source: f, URL: "http://127.0.0.1:1/", Secret: secret, PollInterval: -1},
	} {
		if _, err := s.Step(context.Background()); !errors.Is(err, webhooks.ErrInvalidConfig) {
			t.Errorf("%s: Step = %v", name, err)
		}
		if err := s.Run(context.Background()); !errors.Is(err, webhooks.ErrInvalidConfig) {
			t.Errorf("%s: Run = %v", name, err)
		}
	}
	// Nothing was read or acknowledged.
	if es, err := feed(t, l, "a").Next(context.Background()); err != nil || len(es) != 5 {
		t.Errorf("Next = %d events, %v", len(es), err)
	}
}

func TestVerifyRequestBoundsTheBody(t *testing.T) {
	body := bytes.Repeat([]byte("x"), webhooks.MaxBodyBytes+1)
	r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	r.Header.Set(webhooks.HeaderTimestamp, "1800000000")
	r.Header.Set(webhooks.HeaderSignature, webhooks.Sign(1800000000, body, secret))
	if _, _, err := webhooks.VerifyRequest(r, [][]byte{secret}, time.Unix(1800000000, 0), 0); !errors.Is(err, webhooks.ErrBodyTooLarge) {
		t.Errorf("VerifyRequest = %v", err)
	}
	r = httptest.NewRequest(http.MethodPost, "/", io.NopCloser(strings.NewReader("")))
	if _, _, err := webhooks.VerifyRequest(r, [][]byte{secret}, time.Unix(1800000000, 0), 0); !errors.Is(err, webhooks.ErrMalformed) {
		t.Errorf("no headers: %v", err)
	}
}

// The test vector of the package documentation.
func TestSignatureTestVector(t *testing.T) {
	got := webhooks.Sign(1800000000, []byte(`{"id":"alice#1","amount":"50"}`), []byte("whsec-test-secret"))
	if want := "v1=d477a0bf2047d4ac08f934fd22982ac014e52203441258049791c31e5bcbd8a3"; got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
	two := webhooks.Sign(1800000000, []byte(`{}`), []byte("whsec-test-secret"), []byte("whsec-other-secret"))
	if strings.Count(two, ",v1=") != 1 || !strings.HasPrefix(two, "v1=") {
		t.Errorf("two secrets: %s", two)
	}
}

func TestDeliverRefusesBadConfigWithoutTrying(t *testing.T) {
	s := &webhooks.Sender{URL: "http://127.0.0.1:1/", Logger: quiet}
	if err := s.Deliver(context.Background(), credits.Event{ID: "a#1"}); !errors.Is(err, webhooks.ErrInvalidConfig) {
		t.Errorf("Deliver without a secret = %v", err)
	}
}

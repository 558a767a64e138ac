package credits_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/creditkit/credits"
	"github.com/creditkit/credits/memstore"
)

var (
	sealKey      = bytes.Repeat([]byte("k"), 32)
	otherSealKey = bytes.Repeat([]byte("o"), 32)
)

// sealLedger is a ledger on memstore at *now with the given quote keys and
// an account "a" holding 100 purchased credits.
func sealLedger(t *testing.T, now *time.Time, key []byte, earlier ...[]byte) *credits.Ledger {
	t.Helper()
	l, err := credits.NewLedger(memstore.New(), &credits.Config{Now: func() time.Time { return *now }, QuoteKey: key, EarlierQuoteKeys: earlier})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := l.CreateAccount(ctx, credits.CreateAccountRequest{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Grant(ctx, credits.GrantRequest{Account: "a", Amount: credits.Whole(100), Kind: credits.KindPurchase, Key: "g"}); err != nil {
		t.Fatal(err)
	}
	return l
}

func mustQuote(t *testing.T, l *credits.Ledger, req credits.QuoteRequest) credits.Quote {
	t.Helper()
	q, err := l.QuoteFor(context.Background(), "a", req)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func mustSeal(t *testing.T, l *credits.Ledger, q credits.Quote) string {
	t.Helper()
	s, err := l.SealQuote(q)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// wantInvalidQuote fails unless err is a refused sealed quote.
func wantInvalidQuote(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, credits.ErrInvalidQuote) || !errors.Is(err, credits.ErrInvalidRequest) {
		t.Errorf("%s: %v; want ErrInvalidQuote and ErrInvalidRequest", what, err)
		return
	}
	if code, status := credits.Code(err); code != "invalid_quote" || status != 400 {
		t.Errorf("%s: Code = %s, %d", what, code, status)
	}
}

// wantQuoteField fails unless err is a *FieldError for "quote" (with the
// message, if not "").
func wantQuoteField(t *testing.T, what string, err error, message string) {
	t.Helper()
	var fe *credits.FieldError
	if !errors.As(err, &fe) || fe.Field != "quote" || fe.Reason == "" {
		t.Errorf("%s: %v (%#v); want a *FieldError for quote", what, err, fe)
	}
	if message != "" && (err == nil || err.Error() != message) {
		t.Errorf("%s: message %q, want %q", what, err, message)
	}
}

func TestSealQuoteRoundTrip(t *testing.T) {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	l := sealLedger(t, &now, sealKey)
	for _, req := range []credits.QuoteRequest{
		{Tool: "video", Resolution: "720p", Duration: 5 * time.Second},
		{Tool: "video-pro", Resolution: "1080p", Duration: 10*time.Minute - time.Nanosecond}, // a fraction of a ms
		{Tool: "image", Images: 4},
		{Tool: "upscale"},
	} {
		q := mustQuote(t, l, req)
		s := mustSeal(t, l, q)
		if !strings.HasPrefix(s, "q1.") || strings.ContainsAny(s, "+/=") || len(s) > credits.MaxSealedQuoteLength {
			t.Errorf("%s: not a URL-safe q1 string: %s", req.Tool, s)
		}
		t.Logf("%s: %d bytes", req.Tool, len(s))
		got, err := l.OpenQuote(s)
		if err != nil || !reflect.DeepEqual(got, q) {
			t.Errorf("%s: OpenQuote = %+v, %v\nwant %+v", req.Tool, got, err, q)
		}
		// Deterministic: the same quote seals to the same string.
		if again := mustSeal(t, l, q); again != s {
			t.Errorf("%s: sealed twice differently", req.Tool)
		}
	}
	// The length the doc comments state: about 450 bytes for a 5-second
	// video quote, about 325 for an image.
	for _, c := range []struct {
		req      credits.QuoteRequest
		min, max int
	}{
		{credits.QuoteRequest{Tool: "video", Resolution: "720p", Duration: 5 * time.Second}, 430, 480},
		{credits.QuoteRequest{Tool: "image"}, 300, 350},
	} {
		if n := len(mustSeal(t, l, mustQuote(t, l, c.req))); n < c.min || n > c.max {
			t.Errorf("%s seals to %d bytes; the doc says about %d", c.req.Tool, n, (c.min+c.max)/2)
		}
	}
}

// The longest quote a catalog can make (every ID and version at its
// longest, a plan's discount, the largest numbers, a duration to the
// nanosecond) seals well within MaxSealedQuoteLength.
func TestSealQuoteLongest(t *testing.T) {
	id := func(c byte) string {
		if c == 'r' {
			return strings.Repeat("r", 32) // a resolution's longest
		}
		return strings.Repeat(string(c), 64)
	}
	c, err := credits.NewCatalog(credits.CatalogConfig{Version: id('v'),
		Tools: []credits.Tool{{ID: id('t'), Unit: credits.UnitSecond, Rates: map[string]credits.Credits{id('r'): credits.MustParse("999999.999")},
			IncrementMillis: 7, Rounding: credits.RoundNearest, MaxDurationMillis: 24 * 60 * 60 * 1000}},
		Plans: []credits.Plan{{ID: id('p'), DiscountBasisPoints: 1234}},
	})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	l, err := credits.NewLedger(memstore.New(), &credits.Config{Now: func() time.Time { return now }, Catalog: c, QuoteKey: sealKey})
	if err != nil {
		t.Fatal(err)
	}
	q, err := l.Quote(credits.QuoteRequest{Tool: id('t'), Resolution: id('r'), Plan: id('p'), Duration: 24*time.Hour - 123456789})
	if err != nil {
		t.Fatal(err)
	}
	s := mustSeal(t, l, q)
	if len(s) > credits.MaxSealedQuoteLength*3/4 {
		t.Errorf("the longest quote seals to %d bytes, close to the limit of %d", len(s), credits.MaxSealedQuoteLength)
	}
	t.Logf("the longest quote seals to %d bytes", len(s))
	if got, err := l.OpenQuote(s); err != nil || !reflect.DeepEqual(got, q) {
		t.Errorf("OpenQuote = %+v, %v", got, err)
	}
}

// Any change to a sealed quote, at any position, is refused; so is every
// prefix of it (a truncated link).
func TestSealQuoteTamperAndTruncate(t *testing.T) {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	l := sealLedger(t, &now, sealKey)
	s := mustSeal(t, l, mustQuote(t, l, credits.QuoteRequest{Tool: "video", Resolution: "720p", Duration: 5 * time.Second}))
	for i := range len(s) {
		for _, c := range []byte{'A', 'B', '_', '-', '.', 'z'} {
			if s[i] == c {
				continue
			}
			b := []byte(s)
			b[i] = c
			if _, err := l.OpenQuote(string(b)); err == nil {
				t.Fatalf("byte %d changed to %q: opened", i, c)
			} else if !errors.Is(err, credits.ErrInvalidQuote) {
				t.Fatalf("byte %d changed to %q: %v", i, c, err)
			}
		}
	}
	for n := range len(s) {
		if _, err := l.OpenQuote(s[:n]); !errors.Is(err, credits.ErrInvalidQuote) {
			t.Fatalf("first %d bytes: %v", n, err)
		}
	}
	// The payload replaced and its tag left alone: a forged price.
	payloadEnd := strings.LastIndexByte(s, '.')
	forged := "q1." + base64.RawURLEncoding.EncodeToString([]byte(`{"tool":"video","total":"1"}`)) + s[payloadEnd:]
	_, err := l.OpenQuote(forged)
	wantInvalidQuote(t, "forged payload", err)
	if err != nil && err.Error() != "credits: invalid sealed quote: the tag does not match (altered, or sealed with another key)" {
		t.Errorf("forged payload: message %q", err)
	}
	if !strings.Contains(err.Error(), "tag does not match") {
		t.Errorf("forged payload: %v", err)
	}
}

func TestSealQuoteGarbage(t *testing.T) {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	l := sealLedger(t, &now, sealKey)
	tag := strings.Repeat("A", 43)
	for s, reason := range map[string]string{
		"":                                "empty",
		"hello":                           `does not start with "q1."`,
		"q1.":                             "no tag",
		"q1..":                            "tag is not 32 bytes",
		"q1.." + tag:                      "tag does not match",
		"q1.e30." + tag:                   "tag does not match",
		"q1.e30." + tag + "A":             "tag is not 32 bytes",
		"q1.e30." + tag[:42] + "B":        "tag is not 32 bytes", // non-canonical trailing bits
		"q1.e30." + tag[:42] + "!":        "tag is not 32 bytes",
		"q1.e30.QUFB=" + tag[:38]:         "tag is not 32 bytes",
		"q2.e30." + tag:                   `version "q2" is not one this ledger opens`,
		"q10.e30." + tag:                  `version "q10"`,
		"Q1.e30." + tag:                   `does not start with "q1."`,
		"q1.\x00\xff." + tag:              "tag does not match",
		strings.Repeat("q", 10000):        "longer than the 2048",
		"q1." + strings.Repeat("A", 2046): "longer than the 2048",
	} {
		_, err := l.OpenQuote(s)
		wantInvalidQuote(t, truncateForLog(s), err)
		if err != nil && !strings.Contains(err.Error(), reason) {
			t.Errorf("%q: %v; want it to say %q", truncateForLog(s), err, reason)
		}
	}
}

func truncateForLog(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

// A quote sealed with another key does not open; rotation opens quotes of
// the earlier keys and seals with the current one only.
func TestSealQuoteKeys(t *testing.T) {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	oldServer := sealLedger(t, &now, otherSealKey)
	q := mustQuote(t, oldServer, credits.QuoteRequest{Tool: "video", Resolution: "480p", Duration: 8 * time.Second})
	sealedOld := mustSeal(t, oldServer, q)

	stranger := sealLedger(t, &now, sealKey)
	_, err := stranger.OpenQuote(sealedOld)
	wantInvalidQuote(t, "another key", err)

	rotated := sealLedger(t, &now, sealKey, otherSealKey)
	if got, err := rotated.OpenQuote(sealedOld); err != nil || !reflect.DeepEqual(got, q) {
		t.Errorf("rotated opens an earlier key's quote: %+v, %v", got, err)
	}
	sealedNew := mustSeal(t, rotated, q)
	if sealedNew == sealedOld {
		t.Error("rotated seals with the earlier key")
	}
	if _, err := stranger.OpenQuote(sealedNew); err != nil {
		t.Errorf("the current key's quote: %v", err)
	}
	_, err = oldServer.OpenQuote(sealedNew)
	wantInvalidQuote(t, "the old server opens the new key's quote", err)

	// The ledger keeps its own copy of the keys.
	key := bytes.Clone(sealKey)
	own := sealLedger(t, &now, key)
	s := mustSeal(t, own, q)
	key[0] ^= 1
	if _, err := own.OpenQuote(s); err != nil {
		t.Errorf("after the caller changed its key slice: %v", err)
	}
}

func TestSealQuoteConfig(t *testing.T) {
	for name, cfg := range map[string]credits.Config{
		"short key":               {QuoteKey: make([]byte, 31)},
		"short earlier key":       {QuoteKey: sealKey, EarlierQuoteKeys: [][]byte{sealKey, make([]byte, 16)}},
		"earlier key, no current": {EarlierQuoteKeys: [][]byte{sealKey}},
	} {
		if _, err := credits.NewLedger(memstore.New(), &cfg); !errors.Is(err, credits.ErrInvalidRequest) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Without a key: a clear error, a server's fault (500).
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	l := sealLedger(t, &now, nil)
	q := mustQuote(t, l, credits.QuoteRequest{Tool: "image"})
	_, err := l.SealQuote(q)
	if !errors.Is(err, credits.ErrNoQuoteKey) {
		t.Errorf("SealQuote without a key: %v", err)
	}
	if code, status := credits.Code(err); code != "no_quote_key" || status != 500 {
		t.Errorf("Code = %s, %d", code, status)
	}
	if _, err := l.OpenQuote("q1.e30." + strings.Repeat("A", 43)); !errors.Is(err, credits.ErrNoQuoteKey) {
		t.Errorf("OpenQuote without a key: %v", err)
	}
	_, err = l.Reserve(context.Background(), credits.ReserveRequest{Account: "a", SealedQuote: "q1.e30.x", Key: "k"})
	if !errors.Is(err, credits.ErrNoQuoteKey) {
		t.Errorf("Reserve of a sealed quote without a key: %v", err)
	}
	// A quote too long to seal.
	keyed := sealLedger(t, &now, sealKey)
	q.Breakdown = strings.Repeat("x", credits.MaxSealedQuoteLength)
	_, err = keyed.SealQuote(q)
	wantInvalidQuote(t, "a quote too long to seal", err)
}

// Reserve, Charge and Run take a sealed quote, from Go or from a JSON
// body, and check it as any quote: an expired one is refused.
func TestSealQuoteReserve(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	l := sealLedger(t, &now, sealKey)
	video := mustQuote(t, l, credits.QuoteRequest{Tool: "video", Resolution: "720p", Duration: 5 * time.Second})
	sealed := mustSeal(t, l, video)

	// An app server decodes the confirm request's body.
	var req credits.ReserveRequest
	body := `{"account":"a","quote":"` + sealed + `","ttl_ms":600000,"metadata":{"prompt":"a cat"}}`
	if err := json.Unmarshal([]byte(body), &req); err != nil {
		t.Fatal(err)
	}
	req.Key = "job-1" // from the Idempotency-Key header
	res, err := l.Reserve(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(res.Hold.Quote, video) || res.Hold.Amount != video.Total || !res.Hold.Deadline.Equal(now.Add(10*time.Minute)) {
		t.Errorf("hold: %+v", res.Hold)
	}
	// Retried with the same sealed quote (even once it expired): a replay.
	now = now.Add(time.Hour)
	again, err := l.Reserve(ctx, req)
	if err != nil || !again.Replayed || again.Hold.ID != res.Hold.ID {
		t.Errorf("retry: %+v, %v", again, err)
	}
	// The same sealed quote under a new key, after it expired: refused.
	req.Key = "job-2"
	_, err = l.Reserve(ctx, req)
	if !errors.Is(err, credits.ErrQuoteExpired) {
		t.Errorf("expired sealed quote: %v", err)
	}
	_, err = l.Charge(ctx, credits.ChargeRequest{Account: "a", SealedQuote: sealed, Key: "c-expired"})
	if !errors.Is(err, credits.ErrQuoteExpired) {
		t.Errorf("charge of an expired sealed quote: %v", err)
	}

	image := mustQuote(t, l, credits.QuoteRequest{Tool: "image"})
	sealedImage := mustSeal(t, l, image)
	var creq credits.ChargeRequest
	if err := json.Unmarshal([]byte(`{"account":"a","quote":"`+sealedImage+`"}`), &creq); err != nil {
		t.Fatal(err)
	}
	creq.Key = "img-1"
	charged, err := l.Charge(ctx, creq)
	if err != nil || charged.Charged != image.Total || !reflect.DeepEqual(charged.Hold.Quote, image) {
		t.Errorf("charge: %+v, %v", charged, err)
	}
	run, err := l.Run(ctx, credits.ReserveRequest{Account: "a", SealedQuote: mustSeal(t, l, mustQuote(t, l, credits.QuoteRequest{Tool: "video", Resolution: "480p", Duration: 2 * time.Second})), Key: "run-1"},
		func(context.Context, credits.Hold) (credits.Usage, error) { return credits.Usage{}, nil })
	if err != nil || run.Hold.Status != credits.HoldCaptured {
		t.Errorf("run: %+v, %v", run, err)
	}

	// Refused before anything is written: a bad string, both quotes.
	before, _ := l.Balance(ctx, "a")
	_, err = l.Reserve(ctx, credits.ReserveRequest{Account: "a", SealedQuote: sealed[:len(sealed)-1], Key: "bad"})
	wantInvalidQuote(t, "truncated", err)
	wantQuoteField(t, "truncated", err, "credits: invalid sealed quote: quote does not open: its tag is not 32 bytes of base64url")
	_, err = l.Charge(ctx, credits.ChargeRequest{Account: "a", SealedQuote: "q1.garbage", Key: "bad"})
	wantInvalidQuote(t, "garbage", err)
	wantQuoteField(t, "garbage", err, "")
	_, err = l.Reserve(ctx, credits.ReserveRequest{Account: "a", Quote: image, SealedQuote: sealedImage, Key: "both"})
	if !errors.Is(err, credits.ErrInvalidRequest) || errors.Is(err, credits.ErrInvalidQuote) {
		t.Errorf("both quotes: %v", err)
	}
	wantQuoteField(t, "both quotes", err, "credits: invalid request: quote is given twice, as Quote and as SealedQuote: give it one way")
	// A quote sealed by a server with another key, on any other server.
	stranger := sealLedger(t, &now, otherSealKey)
	_, err = l.Reserve(ctx, credits.ReserveRequest{Account: "a", SealedQuote: mustSeal(t, stranger, mustQuote(t, stranger, credits.QuoteRequest{Tool: "image"})), Key: "stranger"})
	wantInvalidQuote(t, "another ledger's quote", err)
	wantQuoteField(t, "another ledger's quote", err, "credits: invalid sealed quote: quote does not open: the tag does not match (altered, or sealed with another key)")
	if after, _ := l.Balance(ctx, "a"); after != before {
		t.Errorf("refused requests changed the balance: %+v → %+v", before, after)
	}
	for _, k := range []string{"bad", "both", "stranger"} {
		if _, err := l.HoldByKey(ctx, "a", k); !errors.Is(err, credits.ErrUnknownHold) {
			t.Errorf("key %q: %v", k, err)
		}
	}
}

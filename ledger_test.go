package credits_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/creditkit/credits"
	"github.com/creditkit/credits/memstore"
	"github.com/creditkit/credits/storetest"
)

func TestNewLedgerConfig(t *testing.T) {
	if _, err := credits.NewLedger(nil, nil); !errors.Is(err, credits.ErrInvalidRequest) {
		t.Errorf("nil store: %v", err)
	}
	bad := []credits.Config{
		{HoldTTL: -time.Second},
		{HoldTTL: 2 * time.Hour, MaxHoldTTL: time.Hour},
		{RestoreGrace: -1},
		{Signup: credits.Reward{Amount: credits.FromUnits(-1)}},
		{Daily: credits.Reward{Amount: credits.Whole(1), ValidFor: -time.Hour}},
		{LowBalanceThreshold: credits.FromUnits(-5)},
	}
	for _, cfg := range bad {
		if _, err := credits.NewLedger(memstore.New(), &cfg); !errors.Is(err, credits.ErrInvalidRequest) {
			t.Errorf("NewLedger(%+v) = %v, want ErrInvalidRequest", cfg, err)
		}
	}
	l, err := credits.NewLedger(memstore.New(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if l.Catalog() != credits.DefaultCatalog() {
		t.Error("a nil catalog must default to DefaultCatalog")
	}
	if _, err := l.ClaimDaily(context.Background(), "a"); !errors.Is(err, credits.ErrDailyUnavailable) {
		t.Errorf("ClaimDaily with no daily reward: %v", err)
	}
}

// Overflow is an error that writes nothing, never a wrap.
func TestGrantOverflow(t *testing.T) {
	h := storetest.NewHarness(t, memstore.New(), func(c *credits.Config) { c.Signup = credits.Reward{} })
	h.Account(t, credits.CreateAccountRequest{ID: "a"})
	huge := credits.FromUnits(credits.MaxUnits - 10)
	if _, err := h.Ledger.Grant(h.Ctx, credits.GrantRequest{Account: "a", Amount: huge, Kind: credits.KindPurchase, Key: "1"}); err != nil {
		t.Fatal(err)
	}
	before := h.History(t, "a")
	_, err := h.Ledger.Grant(h.Ctx, credits.GrantRequest{Account: "a", Amount: credits.Whole(1), Kind: credits.KindPurchase, Key: "2"})
	if !errors.Is(err, credits.ErrOverflow) {
		t.Fatalf("grant past the int64 limit: %v, want ErrOverflow", err)
	}
	if after := h.History(t, "a"); len(after) != len(before) {
		t.Fatalf("an overflowing grant wrote %d entries", len(after)-len(before))
	}
	if b := h.Balance(t, "a"); b.Available != huge {
		t.Fatalf("balance changed: %s", b.Available)
	}
	// The key was not consumed by the failure: a valid request under it works.
	if _, err := h.Ledger.Grant(h.Ctx, credits.GrantRequest{Account: "a", Amount: credits.FromUnits(10), Kind: credits.KindPurchase, Key: "2"}); err != nil {
		t.Fatalf("grant up to the limit: %v", err)
	}
	storetest.CheckInvariants(t, h, "a")
}

// A hold whose bucket expired while it was open gives its credits back into
// a restored grant; a refund of a charge whose bucket expired does too.
func TestRefundIntoExpiredGrant(t *testing.T) {
	h := storetest.NewHarness(t, memstore.New(), func(c *credits.Config) {
		c.Signup = credits.Reward{}
		c.RestoreGrace = time.Hour
	})
	h.Account(t, credits.CreateAccountRequest{ID: "a"})
	at := h.Clock.Now().Add(time.Minute)
	if _, err := h.Ledger.Grant(h.Ctx, credits.GrantRequest{Account: "a", Amount: credits.Whole(7), Kind: credits.KindPromo, ExpiresAt: at, Key: "p"}); err != nil {
		t.Fatal(err)
	}
	q := h.Quote(t, credits.QuoteRequest{Tool: "image"})
	ch, err := h.Ledger.Charge(h.Ctx, credits.ChargeRequest{Account: "a", Quote: q, Key: "c"})
	if err != nil {
		t.Fatal(err)
	}
	h.Clock.Set(at.Add(30 * time.Minute))
	r, err := h.Ledger.Refund(h.Ctx, credits.RefundRequest{Charge: ch.Hold.ID, Key: "r"})
	if err != nil || r.Available != credits.Whole(7) {
		t.Fatalf("refund: %+v %v", r, err)
	}
	b := h.Balance(t, "a")
	if b.NextExpiry == nil || !b.NextExpiry.At.Equal(at.Add(time.Hour)) || b.Free != credits.Whole(7) {
		t.Fatalf("the refund must come back as promo credits valid for the grace: %+v %+v", b, b.NextExpiry)
	}
	storetest.CheckInvariants(t, h, "a")
}

func TestCancelledContextWritesNothing(t *testing.T) {
	h := storetest.NewHarness(t, memstore.New(), nil)
	h.Account(t, credits.CreateAccountRequest{ID: "a"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	q := h.Quote(t, credits.QuoteRequest{Tool: "image"})
	if _, err := h.Ledger.Charge(ctx, credits.ChargeRequest{Account: "a", Quote: q, Key: "c"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("charge on a cancelled context: %v", err)
	}
	if b := h.Balance(t, "a"); b.Spent.IsPositive() {
		t.Fatalf("a cancelled charge was applied: %+v", b)
	}
	if _, err := h.Ledger.Charge(h.Ctx, credits.ChargeRequest{Account: "a", Quote: q, Key: "c"}); err != nil {
		t.Fatalf("the key must still be free: %v", err)
	}
}

// Regressions the state machine found, pinned as plain tests: a retry must
// be replayed even when time-dependent checks would now refuse the request.
func TestRegressionReplayAfterTimeMoved(t *testing.T) {
	h := storetest.NewHarness(t, memstore.New(), nil)
	h.Account(t, credits.CreateAccountRequest{ID: "a"})
	grant := credits.GrantRequest{Account: "a", Amount: credits.Whole(1), Kind: credits.KindPromo, Key: "g",
		ExpiresAt: h.Clock.Now().Add(time.Minute)}
	if _, err := h.Ledger.Grant(h.Ctx, grant); err != nil {
		t.Fatal(err)
	}
	q := h.Quote(t, credits.QuoteRequest{Tool: "image"})
	reserve := credits.ReserveRequest{Account: "a", Quote: q, Key: "r"}
	first, err := h.Ledger.Reserve(h.Ctx, reserve)
	if err != nil {
		t.Fatal(err)
	}
	h.Clock.Advance(time.Hour) // the grant's expiry and the quote's have both passed
	if g, err := h.Ledger.Grant(h.Ctx, grant); err != nil || !g.Replayed {
		t.Fatalf("retried grant after its expiry: %+v %v", g, err)
	}
	if r, err := h.Ledger.Reserve(h.Ctx, reserve); err != nil || !r.Replayed || r.Hold.ID != first.Hold.ID {
		t.Fatalf("retried reserve after its quote expired: %+v %v", r, err)
	}
}

// A release's reason is a note: Run's release, then the application's own
// Release of the same hold, is one release, not a conflict.
func TestRegressionReleaseReasonIsNotPartOfTheRequest(t *testing.T) {
	h := storetest.NewHarness(t, memstore.New(), nil)
	h.Account(t, credits.CreateAccountRequest{ID: "a"})
	q := h.Quote(t, credits.QuoteRequest{Tool: "image"})
	var holdID string
	_, err := h.Ledger.Run(h.Ctx, credits.ReserveRequest{Account: "a", Quote: q, Key: "job"}, func(_ context.Context, hold credits.Hold) (credits.Usage, error) {
		holdID = hold.ID
		return credits.Usage{}, errors.New("failed")
	})
	if err == nil {
		t.Fatal("want the job's error")
	}
	r, err := h.Ledger.Release(h.Ctx, credits.ReleaseRequest{Hold: holdID, Reason: "worker gave up"})
	if err != nil || !r.Replayed {
		t.Fatalf("second release: %+v %v", r, err)
	}
}

// A replay returns a value identical to the first result (not just equal
// instants): times in UTC, empty metadata as nil.
func TestRegressionReplayIsIdentical(t *testing.T) {
	cet := time.FixedZone("CET", 3600)
	h := storetest.NewHarness(t, memstore.New(), func(c *credits.Config) { c.DayLocation = cet })
	clock := h.Clock
	l, err := credits.NewLedger(h.Store, &credits.Config{
		Now:         func() time.Time { return clock.Now().In(cet) },
		Daily:       credits.Reward{Amount: credits.Whole(5)},
		DayLocation: cet,
		Signup:      credits.Reward{Amount: credits.Whole(50)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.CreateAccount(h.Ctx, credits.CreateAccountRequest{ID: "a", Metadata: map[string]string{}}); err != nil {
		t.Fatal(err)
	}
	first, err := l.ClaimDaily(h.Ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	again, _ := l.ClaimDaily(h.Ctx, "a")
	again.Replayed = false
	if !reflect.DeepEqual(first, again) {
		t.Fatalf("replay differs:\n%#v\n%#v", first, again)
	}
	q, _ := l.Quote(credits.QuoteRequest{Tool: "image"})
	req := credits.ReserveRequest{Account: "a", Quote: q, Key: "k", Metadata: map[string]string{}}
	r1, _ := l.Reserve(h.Ctx, req)
	r2, _ := l.Reserve(h.Ctx, req)
	r2.Replayed = false
	if !reflect.DeepEqual(r1, r2) {
		t.Fatalf("replay differs:\n%#v\n%#v", r1, r2)
	}
	// The same instant written in another zone is the same request.
	exp := clock.Now().Add(time.Hour)
	g := credits.GrantRequest{Account: "a", Amount: credits.Whole(1), Kind: credits.KindPromo, ExpiresAt: exp, Key: "g"}
	if _, err := l.Grant(h.Ctx, g); err != nil {
		t.Fatal(err)
	}
	g.ExpiresAt = exp.In(cet)
	if r, err := l.Grant(h.Ctx, g); err != nil || !r.Replayed {
		t.Fatalf("same grant in another zone: %+v %v", r, err)
	}
}

// Where daylight saving skips midnight, the next claim is at the first
// instant of the next local day, not an hour before it.
func TestRegressionNextClaimAcrossDST(t *testing.T) {
	santiago, err := time.LoadLocation("America/Santiago")
	if err != nil {
		t.Skip("no time zone database:", err)
	}
	// In 2026, Chile moves its clocks from 00:00 to 01:00 on September 6.
	h := storetest.NewHarness(t, memstore.New(), func(c *credits.Config) { c.DayLocation = santiago })
	h.Account(t, credits.CreateAccountRequest{ID: "a"})
	h.Clock.Set(time.Date(2026, 9, 5, 20, 0, 0, 0, santiago))
	r, err := h.Ledger.ClaimDaily(h.Ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	local := r.NextClaimAt.In(santiago)
	before := r.NextClaimAt.Add(-time.Nanosecond).In(santiago).Format(time.DateOnly)
	if local.Format(time.DateOnly) != "2026-09-06" || before != "2026-09-05" {
		t.Fatalf("NextClaimAt = %s", local)
	}
	h.Clock.Set(r.NextClaimAt)
	if r2, err := h.Ledger.ClaimDaily(h.Ctx, "a"); err != nil || r2.Replayed {
		t.Fatalf("claim at NextClaimAt: %+v %v", r2, err)
	}
}

// A refused operation that stores the expiries it found still reports the
// low balance they caused.
func TestRegressionLowBalanceOnRefusal(t *testing.T) {
	h := storetest.NewHarness(t, memstore.New(), func(c *credits.Config) {
		c.Signup = credits.Reward{}
		c.LowBalanceThreshold = credits.Whole(20)
	})
	h.Account(t, credits.CreateAccountRequest{ID: "a"})
	at := h.Clock.Now().Add(time.Hour)
	for i, g := range []credits.GrantRequest{
		{Amount: credits.Whole(8), Kind: credits.KindPurchase},
		{Amount: credits.Whole(30), Kind: credits.KindPromo, ExpiresAt: at},
	} {
		g.Account, g.Key = "a", fmt.Sprint("g", i)
		if _, err := h.Ledger.Grant(h.Ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	h.Clock.Set(at)
	q := h.Quote(t, credits.QuoteRequest{Tool: "video", Resolution: "720p", Duration: 5 * time.Second})
	_, err := h.Ledger.Reserve(h.Ctx, credits.ReserveRequest{Account: "a", Quote: q, Key: "big"})
	if !errors.Is(err, credits.ErrInsufficientCredits) {
		t.Fatal(err)
	}
	// The first grant (8 of a threshold of 20) signalled low, the promo
	// recovered it, and the expiry stored with the refusal signals it
	// again.
	if n := len(h.LowBalance); n != 2 || h.LowBalance[1].Available != credits.Whole(8) || !h.LowBalance[1].At.Equal(at) {
		t.Fatalf("low-balance events: %+v", h.LowBalance)
	}
}

// cappedStore returns at most 10 entries a call, as the Store contract allows.
type cappedStore struct{ credits.Store }

func (c cappedStore) Entries(ctx context.Context, f credits.EntryFilter) ([]credits.Entry, error) {
	if f.Limit == 0 || f.Limit > 10 {
		f.Limit = 10
	}
	return c.Store.Entries(ctx, f)
}

func TestRegressionHistoryOnACappedStore(t *testing.T) {
	h := storetest.NewHarness(t, cappedStore{memstore.New()}, nil)
	h.Account(t, credits.CreateAccountRequest{ID: "a"})
	for i := range 29 {
		if _, err := h.Ledger.Grant(h.Ctx, credits.GrantRequest{Account: "a", Amount: credits.Whole(1), Kind: credits.KindPromo, Key: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	p, err := h.Ledger.History(h.Ctx, credits.HistoryRequest{Account: "a", Limit: 25})
	if err != nil || len(p.Entries) != 25 || p.Next != 25 {
		t.Fatalf("page: %d entries, next %d, %v", len(p.Entries), p.Next, err)
	}
}

// A job that succeeds without reporting usage is charged as quoted, never 0.
func TestRegressionRunWithoutUsageChargesTheQuote(t *testing.T) {
	h := storetest.NewHarness(t, memstore.New(), nil)
	h.Account(t, credits.CreateAccountRequest{ID: "a"})
	q := h.Quote(t, credits.QuoteRequest{Tool: "image", Images: 2})
	res, err := h.Ledger.Run(h.Ctx, credits.ReserveRequest{Account: "a", Quote: q, Key: "img"}, func(context.Context, credits.Hold) (credits.Usage, error) {
		return credits.Usage{}, nil
	})
	if err != nil || res.Charged != credits.Whole(14) {
		t.Fatalf("run: %+v %v", res, err)
	}
	storetest.CheckInvariants(t, h, "a")
}

// memstore keeps nothing for an account that does not exist.
func TestRegressionUnknownAccountsLeaveNoTrace(t *testing.T) {
	s := memstore.New()
	h := storetest.NewHarness(t, s, nil)
	for i := range 100 {
		_, _ = h.Ledger.Grant(h.Ctx, credits.GrantRequest{Account: fmt.Sprint("ghost", i), Amount: credits.Whole(1), Kind: credits.KindPromo, Key: "k"})
	}
	if ids, err := s.DueAccounts(h.Ctx, h.Clock.Now().Add(1000*time.Hour), 0, 1000); err != nil || len(ids) != 0 {
		t.Fatalf("due: %v %v", ids, err)
	}
	if n := s.Len(); n != 0 {
		t.Fatalf("memstore keeps %d accounts that were never created", n)
	}
}

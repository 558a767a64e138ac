package credits_test

import (
	"context"
	"errors"
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
	h.Clock.Set(at.Add(time.Hour))
	r, err := h.Ledger.Refund(h.Ctx, credits.RefundRequest{Charge: ch.Hold.ID, Key: "r"})
	if err != nil || r.Available != credits.Whole(7) {
		t.Fatalf("refund: %+v %v", r, err)
	}
	b := h.Balance(t, "a")
	if b.NextExpiry == nil || !b.NextExpiry.At.Equal(h.Clock.Now().Add(time.Hour)) || b.Free != credits.Whole(7) {
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

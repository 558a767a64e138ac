package credits_test

import (
	"testing"
	"time"

	"github.com/creditkit/credits"
	"github.com/creditkit/credits/memstore"
	"github.com/creditkit/credits/storetest"
)

// The low-balance signals alternate, one per crossing, whatever the
// threshold does (cases a review found).
func TestBalanceSignalsAlternate(t *testing.T) {
	signals := func(h *storetest.Harness, account string) string {
		t.Helper()
		var s string
		for _, e := range h.History(t, account) {
			switch e.Type {
			case credits.EntryBalanceLow:
				s += "L"
			case credits.EntryBalanceRecovered:
				s += "R"
			}
		}
		return s
	}
	th := func(c credits.Credits) *credits.Credits { return &c }
	t.Run("created below, topped up above: nothing to recover from", func(t *testing.T) {
		h := storetest.NewHarness(t, memstore.New(), func(c *credits.Config) { c.Signup, c.LowBalanceThreshold = credits.Reward{}, credits.Whole(20) })
		h.Account(t, credits.CreateAccountRequest{ID: "a"})
		if _, err := h.Ledger.Grant(h.Ctx, credits.GrantRequest{Account: "a", Amount: credits.Whole(100), Kind: credits.KindPurchase, Key: "buy"}); err != nil {
			t.Fatal(err)
		}
		if got := signals(h, "a"); got != "" {
			t.Fatalf("signals %q", got)
		}
		storetest.CheckInvariants(t, h, "a")
	})
	t.Run("threshold lowered while low: one low, not two", func(t *testing.T) {
		h := storetest.NewHarness(t, memstore.New(), func(c *credits.Config) { c.LowBalanceThreshold = credits.Whole(20) })
		h.Account(t, credits.CreateAccountRequest{ID: "a"})                                                 // 50
		q := h.Quote(t, credits.QuoteRequest{Tool: "video", Resolution: "720p", Duration: 4 * time.Second}) // 32
		if _, err := h.Ledger.Charge(h.Ctx, credits.ChargeRequest{Account: "a", Quote: q, Key: "v"}); err != nil {
			t.Fatal(err) // 18: low
		}
		if _, err := h.Ledger.UpdateAccount(h.Ctx, credits.UpdateAccountRequest{Account: "a", LowBalanceThreshold: th(credits.Whole(10)), Key: "th"}); err != nil {
			t.Fatal(err)
		}
		img := h.Quote(t, credits.QuoteRequest{Tool: "image"})
		if _, err := h.Ledger.Charge(h.Ctx, credits.ChargeRequest{Account: "a", Quote: img, Key: "i"}); err != nil {
			t.Fatal(err) // 11: above the new threshold: recovered
		}
		if _, err := h.Ledger.Charge(h.Ctx, credits.ChargeRequest{Account: "a", Quote: img, Key: "j"}); err != nil {
			t.Fatal(err) // 4: low again
		}
		if got := signals(h, "a"); got != "LRL" || len(h.LowBalance) != 2 {
			t.Fatalf("signals %q, %d hook calls", got, len(h.LowBalance))
		}
		storetest.CheckInvariants(t, h, "a")
	})
	t.Run("an expiry in the operation that changes the threshold: signalled by the next", func(t *testing.T) {
		h := storetest.NewHarness(t, memstore.New(), func(c *credits.Config) { c.Signup, c.LowBalanceThreshold = credits.Reward{}, credits.Whole(20) })
		h.Account(t, credits.CreateAccountRequest{ID: "a"})
		at := h.Clock.Now().Add(time.Hour)
		for i, g := range []credits.GrantRequest{{Amount: credits.Whole(10), Kind: credits.KindPurchase}, {Amount: credits.Whole(20), Kind: credits.KindPromo, ExpiresAt: at}} {
			g.Account, g.Key = "a", string(rune('a'+i))
			if _, err := h.Ledger.Grant(h.Ctx, g); err != nil {
				t.Fatal(err)
			}
		}
		h.Clock.Set(at) // 30 → 10, applied by the threshold change
		if _, err := h.Ledger.UpdateAccount(h.Ctx, credits.UpdateAccountRequest{Account: "a", LowBalanceThreshold: th(credits.Whole(25)), Key: "th"}); err != nil {
			t.Fatal(err)
		}
		img := h.Quote(t, credits.QuoteRequest{Tool: "image"})
		if _, err := h.Ledger.Charge(h.Ctx, credits.ChargeRequest{Account: "a", Quote: img, Key: "i"}); err != nil {
			t.Fatal(err)
		}
		// The first grant (10 of 20) was low, the promo recovered it; the
		// expiry that the threshold change applied is signalled by the
		// charge after it.
		if got := signals(h, "a"); got != "LRL" || len(h.LowBalance) != 2 || !h.Balance(t, "a").Low {
			t.Fatalf("signals %q, %d hook calls", got, len(h.LowBalance))
		}
		storetest.CheckInvariants(t, h, "a")
	})
	t.Run("a hold is not low; Balance.Low agrees with the signal", func(t *testing.T) {
		h := storetest.NewHarness(t, memstore.New(), func(c *credits.Config) { c.LowBalanceThreshold = credits.Whole(20) })
		h.Account(t, credits.CreateAccountRequest{ID: "a"}) // 50
		q := h.Quote(t, credits.QuoteRequest{Tool: "video", Resolution: "720p", Duration: 5 * time.Second})
		if _, err := h.Ledger.Reserve(h.Ctx, credits.ReserveRequest{Account: "a", Quote: q, Key: "r"}); err != nil {
			t.Fatal(err)
		}
		if b := h.Balance(t, "a"); b.Low || signals(h, "a") != "" {
			t.Fatalf("a hold of 40 of 50 reads low: %+v", b)
		}
	})
}

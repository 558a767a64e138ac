package credits_test

// Amounts near the int64 limit through every arithmetic path of the ledger
// and of pricing (issue 6, item 7): each one either works exactly or fails
// with an error wrapping credits.ErrOverflow (or the documented sentinel),
// and a failed call writes nothing: the balance, the history and the
// invariants are as they were.
//
// The helpers of this file are prefixed with ov so that they cannot collide
// with the helpers of other test files of the package.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/creditkit/credits"
	"github.com/creditkit/credits/memstore"
	"github.com/creditkit/credits/storetest"
)

// ovMax is the largest amount: credits.MaxUnits millicredits.
var ovMax = credits.FromUnits(credits.MaxUnits)

func ovUnits(n int64) credits.Credits { return credits.FromUnits(n) }

// ovHarness is a ledger on a fresh memstore with no signup grant.
func ovHarness(t *testing.T, edit func(*credits.Config)) *storetest.Harness {
	t.Helper()
	return storetest.NewHarness(t, memstore.New(), func(c *credits.Config) {
		c.Signup = credits.Reward{}
		if edit != nil {
			edit(c)
		}
	})
}

// ovLimitCatalog prices at the catalog's limits: 1,000,000 credits per image
// (up to 1000 images) and per second (for up to 24 hours), and plans that
// take 1 basis point off, all but 1, and everything.
func ovLimitCatalog(t *testing.T) *credits.Catalog {
	t.Helper()
	top := credits.Whole(1_000_000)
	cat, err := credits.NewCatalog(credits.CatalogConfig{
		Version:        "limits-1",
		QuoteTTLMillis: 24 * 60 * 60 * 1000,
		Tools: []credits.Tool{
			{ID: "img", Unit: credits.UnitImage, Price: top, MaxImages: 1000},
			{ID: "vid", Unit: credits.UnitSecond, Rates: map[string]credits.Credits{"8k": top},
				IncrementMillis: 60_000, MaxDurationMillis: 24 * 60 * 60 * 1000},
			{ID: "ms", Unit: credits.UnitSecond, Rates: map[string]credits.Credits{"x": credits.MustParse("999999.999")},
				IncrementMillis: 1, Rounding: credits.RoundNearest, MaxDurationMillis: 24 * 60 * 60 * 1000},
		},
		Plans: []credits.Plan{
			{ID: "bp1", DiscountBasisPoints: 1},
			{ID: "bp9999", DiscountBasisPoints: 9999},
			{ID: "free", DiscountBasisPoints: 10_000},
			{ID: "over", DiscountBasisPoints: 5000, Overrides: map[string]credits.PlanOverride{
				"img": {Price: top}, "vid": {Rates: map[string]credits.Credits{"8k": top}},
			}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

// ovTopVideo is the largest quote the limit catalog makes: 24 h at
// 1,000,000 credits/s = 86,400,000,000 credits.
var ovTopVideo = credits.QuoteRequest{Tool: "vid", Resolution: "8k", Duration: 24 * time.Hour}

const ovTopVideoUnits = 86_400_000_000 * credits.UnitsPerCredit

type ovSnap struct {
	bal     credits.Balance
	entries int
}

func ovSnapshot(t *testing.T, h *storetest.Harness, account string) ovSnap {
	t.Helper()
	return ovSnap{bal: h.Balance(t, account), entries: len(h.History(t, account))}
}

// ovWroteNothing fails unless account's balance and history are as in
// before, and every invariant holds.
func ovWroteNothing(t *testing.T, h *storetest.Harness, account string, before ovSnap, what string) {
	t.Helper()
	after := ovSnapshot(t, h, account)
	if diff := cmp.Diff(before.bal, after.bal); diff != "" {
		t.Fatalf("%s changed the balance (-before +after):\n%s", what, diff)
	}
	if after.entries != before.entries {
		t.Fatalf("%s wrote %d history entries", what, after.entries-before.entries)
	}
	storetest.CheckInvariants(t, h, account)
}

// ovWantOverflow checks that a call failed with ErrOverflow and wrote nothing.
func ovWantOverflow(t *testing.T, h *storetest.Harness, account string, before ovSnap, what string, err error) {
	t.Helper()
	if !errors.Is(err, credits.ErrOverflow) {
		t.Fatalf("%s: %v, want ErrOverflow", what, err)
	}
	ovWroteNothing(t, h, account, before, what)
}

func ovGrant(h *storetest.Harness, account string, amount credits.Credits, key string) (credits.GrantResult, error) {
	return h.Ledger.Grant(h.Ctx, credits.GrantRequest{Account: account, Amount: amount, Kind: credits.KindPurchase, Key: key})
}

func ovMustGrant(t *testing.T, h *storetest.Harness, account string, amount credits.Credits, kind credits.GrantKind, expiresAt time.Time, key string) {
	t.Helper()
	if _, err := h.Ledger.Grant(h.Ctx, credits.GrantRequest{Account: account, Amount: amount, Kind: kind, ExpiresAt: expiresAt, Key: key}); err != nil {
		t.Fatalf("grant %s: %v", amount, err)
	}
}

func ovWantBalance(t *testing.T, h *storetest.Harness, account string, available, held, granted, spent, expired int64) {
	t.Helper()
	b := h.Balance(t, account)
	got := [5]int64{b.Available.Units(), b.Held.Units(), b.Granted.Units(), b.Spent.Units(), b.Expired.Units()}
	if want := [5]int64{available, held, granted, spent, expired}; got != want {
		t.Fatalf("balance [available held granted spent expired] = %v, want %v", got, want)
	}
	storetest.CheckInvariants(t, h, account)
}

// TestOverflowGrants: grants that add up to the int64 limit work exactly;
// one more millicredit is ErrOverflow, writes nothing, and leaves the key
// free.
func TestOverflowGrants(t *testing.T) {
	const max = credits.MaxUnits
	tests := []struct {
		name   string
		grants []int64 // all succeed
	}{
		{"one grant of MaxUnits", []int64{max}},
		{"MaxUnits-1 then 1", []int64{max - 1, 1}},
		{"two halves", []int64{max / 2, max/2 + 1}},
		{"eight eighths and the remainder", []int64{max / 8, max / 8, max / 8, max / 8, max / 8, max / 8, max / 8, max / 8, max % 8}},
		{"200 equal grants and the remainder", append(ovRepeat(max/200, 200), max%200)},
		{"1 millicredit then the rest", []int64{1, max - 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := ovHarness(t, nil)
			h.Account(t, credits.CreateAccountRequest{ID: "a"})
			for i, g := range tt.grants {
				if _, err := ovGrant(h, "a", ovUnits(g), fmt.Sprint("g", i)); err != nil {
					t.Fatalf("grant %d of %d: %v", i, g, err)
				}
			}
			ovWantBalance(t, h, "a", max, 0, max, 0, 0)
			before := ovSnapshot(t, h, "a")
			for _, extra := range []int64{1, 1000, max} {
				_, err := ovGrant(h, "a", ovUnits(extra), "over")
				ovWantOverflow(t, h, "a", before, fmt.Sprintf("a grant of %d units past the limit", extra), err)
			}
			// Not recorded: the same request fails the same way, not as a replay.
			if r, err := ovGrant(h, "a", ovUnits(1), "over"); !errors.Is(err, credits.ErrOverflow) || r.Replayed {
				t.Fatalf("retry of an overflowing grant: %+v %v", r, err)
			}
		})
	}

	t.Run("a grant that would cross the limit", func(t *testing.T) {
		h := ovHarness(t, nil)
		h.Account(t, credits.CreateAccountRequest{ID: "a"})
		for i := range 2 {
			if _, err := ovGrant(h, "a", ovUnits(max/3+1), fmt.Sprint("g", i)); err != nil {
				t.Fatal(err)
			}
		}
		before := ovSnapshot(t, h, "a")
		_, err := ovGrant(h, "a", ovUnits(max/3+1), "g2")
		ovWantOverflow(t, h, "a", before, "the third third", err)
		// The key of the refused grant is still free for one that fits.
		if r, err := ovGrant(h, "a", ovUnits(max-2*(max/3+1)), "g2"); err != nil || r.Available != ovMax {
			t.Fatalf("a grant up to the limit under the refused key: %+v %v", r, err)
		}
		storetest.CheckInvariants(t, h, "a")
	})

	t.Run("kinds and expiries mixed", func(t *testing.T) {
		h := ovHarness(t, nil)
		h.Account(t, credits.CreateAccountRequest{ID: "a"})
		at := h.Clock.Now().Add(time.Hour)
		ovMustGrant(t, h, "a", ovUnits(max/4), credits.KindPromo, at, "p")
		ovMustGrant(t, h, "a", ovUnits(max/4), credits.KindPlan, at.Add(time.Hour), "l")
		ovMustGrant(t, h, "a", ovUnits(max/4), credits.KindAdjustment, time.Time{}, "j")
		ovMustGrant(t, h, "a", ovUnits(max-3*(max/4)), credits.KindPurchase, time.Time{}, "b")
		b := h.Balance(t, "a")
		if b.Available != ovMax || b.Free.Units() != 3*(max/4) || b.Paid.Units() != max-3*(max/4) ||
			b.NextExpiry == nil || b.NextExpiry.Amount.Units() != max/4 {
			t.Fatalf("balance at the limit: %+v %+v", b, b.NextExpiry)
		}
		before := ovSnapshot(t, h, "a")
		_, err := h.Ledger.Grant(h.Ctx, credits.GrantRequest{Account: "a", Amount: ovUnits(1), Kind: credits.KindPromo, ExpiresAt: at, Key: "x"})
		ovWantOverflow(t, h, "a", before, "a promo past the limit", err)
	})
}

func ovRepeat(n int64, times int) []int64 {
	out := make([]int64, times)
	for i := range out {
		out[i] = n
	}
	return out
}

// TestOverflowGranted: the granted total counts spent, held and expired
// credits too, so it reaches the limit while the available balance does not;
// a grant that would pass it is ErrOverflow all the same, and writes nothing.
func TestOverflowGranted(t *testing.T) {
	const max = credits.MaxUnits
	q := func(t *testing.T, h *storetest.Harness) credits.Quote {
		return h.Quote(t, credits.QuoteRequest{Tool: "image"})
	}

	t.Run("spent", func(t *testing.T) {
		h := ovHarness(t, nil)
		h.Account(t, credits.CreateAccountRequest{ID: "a"})
		ovMustGrant(t, h, "a", ovMax, credits.KindPurchase, time.Time{}, "g")
		if _, err := h.Ledger.Charge(h.Ctx, credits.ChargeRequest{Account: "a", Quote: q(t, h), Key: "c"}); err != nil {
			t.Fatal(err)
		}
		ovWantBalance(t, h, "a", max-7000, 0, max, 7000, 0)
		before := ovSnapshot(t, h, "a")
		_, err := ovGrant(h, "a", ovUnits(1), "x")
		ovWantOverflow(t, h, "a", before, "a grant with available below the limit but granted at it", err)
	})

	t.Run("held", func(t *testing.T) {
		h := ovHarness(t, nil)
		h.Account(t, credits.CreateAccountRequest{ID: "a"})
		ovMustGrant(t, h, "a", ovMax, credits.KindPurchase, time.Time{}, "g")
		if _, err := h.Ledger.Reserve(h.Ctx, credits.ReserveRequest{Account: "a", Quote: q(t, h), Key: "r"}); err != nil {
			t.Fatal(err)
		}
		ovWantBalance(t, h, "a", max-7000, 7000, max, 0, 0)
		before := ovSnapshot(t, h, "a")
		_, err := ovGrant(h, "a", ovUnits(7000), "x")
		ovWantOverflow(t, h, "a", before, "a grant while the limit is held", err)
	})

	t.Run("expired", func(t *testing.T) {
		h := ovHarness(t, nil)
		h.Account(t, credits.CreateAccountRequest{ID: "a"})
		ovMustGrant(t, h, "a", ovMax, credits.KindPromo, h.Clock.Now().Add(time.Hour), "g")
		h.Clock.Advance(time.Hour)
		ovWantBalance(t, h, "a", 0, 0, max, 0, max)
		before := ovSnapshot(t, h, "a")
		_, err := ovGrant(h, "a", ovUnits(1), "x")
		// The refused grant stores nothing, not even the expiry it found due
		// (a grant refusal is not a recorded business outcome).
		ovWantOverflow(t, h, "a", before, "a grant after the limit expired", err)
		// A sweep writes the expiry of the whole limit in one entry.
		if r, err := h.Ledger.Sweep(h.Ctx); err != nil || r.GrantsExpired != 1 {
			t.Fatalf("sweep: %+v %v", r, err)
		}
		es := h.History(t, "a")
		if last := es[len(es)-1]; last.Type != credits.EntryExpiry || last.Amount != ovMax || last.Available.Units() != 0 {
			t.Fatalf("the expiry entry: %+v", last)
		}
		ovWantBalance(t, h, "a", 0, 0, max, 0, max)
	})
}

// TestOverflowSignupAndDaily: rewards from the config at the limit.
func TestOverflowSignupAndDaily(t *testing.T) {
	const max = credits.MaxUnits
	h := storetest.NewHarness(t, memstore.New(), func(c *credits.Config) {
		c.Signup = credits.Reward{Amount: ovMax}
		c.Daily = credits.Reward{Amount: credits.Whole(10)}
	})
	res, err := h.Ledger.CreateAccount(h.Ctx, credits.CreateAccountRequest{ID: "a"})
	if err != nil || res.Signup == nil || res.Signup.Amount != ovMax {
		t.Fatalf("signup of MaxUnits: %+v %v", res, err)
	}
	ovWantBalance(t, h, "a", max, 0, max, 0, 0)
	before := ovSnapshot(t, h, "a")
	for range 2 { // an overflowing claim is not recorded: the retry fails the same way
		r, err := h.Ledger.ClaimDaily(h.Ctx, "a")
		if r.Replayed {
			t.Fatal("an overflowing claim was replayed")
		}
		ovWantOverflow(t, h, "a", before, "a daily claim past the limit", err)
	}
	h.Clock.Advance(24 * time.Hour)
	before = ovSnapshot(t, h, "a")
	_, err = h.Ledger.ClaimDaily(h.Ctx, "a")
	ovWantOverflow(t, h, "a", before, "the next day's claim", err)

	// A team gets no signup grant: it can be funded up to the limit itself.
	h.Account(t, credits.CreateAccountRequest{ID: "team", Team: true, Members: []string{"m"}})
	if _, err := ovGrant(h, "team", ovMax, "fund"); err != nil {
		t.Fatal(err)
	}
	ovWantBalance(t, h, "team", max, 0, max, 0, 0)

	// A daily reward of MaxUnits: the first claim fills the account, the
	// next day's overflows.
	h2 := ovHarness(t, func(c *credits.Config) { c.Daily = credits.Reward{Amount: ovMax, ValidFor: 48 * time.Hour} })
	h2.Account(t, credits.CreateAccountRequest{ID: "b"})
	if r, err := h2.Ledger.ClaimDaily(h2.Ctx, "b"); err != nil || r.Available != ovMax {
		t.Fatalf("a claim of MaxUnits: %+v %v", r, err)
	}
	h2.Clock.Advance(24 * time.Hour)
	before = ovSnapshot(t, h2, "b")
	_, err = h2.Ledger.ClaimDaily(h2.Ctx, "b")
	ovWantOverflow(t, h2, "b", before, "a second claim of MaxUnits", err)
}

// TestOverflowPricingAtTheLimits: the largest quotes a valid catalog makes
// are exact (checked with math/big), a plan's discount at the limits too,
// and a request past a limit is ErrInvalidRequest, never a wrapped total.
func TestOverflowPricingAtTheLimits(t *testing.T) {
	cat := ovLimitCatalog(t)
	now := storetest.Epoch
	bigTotal := func(rateUnits, billedMs int64) int64 {
		r := new(big.Int).Mul(big.NewInt(rateUnits), big.NewInt(billedMs))
		return r.Quo(r, big.NewInt(1000)).Int64()
	}
	const top = 1_000_000 * credits.UnitsPerCredit
	const day = 24 * 60 * 60 * 1000
	tests := []struct {
		req        credits.QuoteRequest
		rate, want int64
	}{
		{ovTopVideo, top, ovTopVideoUnits},
		{credits.QuoteRequest{Tool: "vid", Resolution: "8k", Duration: 24*time.Hour - time.Nanosecond}, top, bigTotal(top, day)},
		{credits.QuoteRequest{Tool: "vid", Resolution: "8k", Duration: time.Nanosecond}, top, bigTotal(top, 60_000)},
		{credits.QuoteRequest{Tool: "ms", Resolution: "x", Duration: 24 * time.Hour}, 999_999_999, bigTotal(999_999_999, day)},
		{credits.QuoteRequest{Tool: "ms", Resolution: "x", Duration: 24*time.Hour - 500*time.Microsecond}, 999_999_999, bigTotal(999_999_999, day)},
		{credits.QuoteRequest{Tool: "ms", Resolution: "x", Duration: 24*time.Hour - 500*time.Microsecond - 1}, 999_999_999, bigTotal(999_999_999, day-1)},
		{credits.QuoteRequest{Tool: "img", Images: 1000}, top, 1000 * top},
		{credits.QuoteRequest{Tool: "img", Images: 1000, Plan: "bp1"}, top / 10_000 * 9_999, 1000 * (top / 10_000 * 9_999)},
		{credits.QuoteRequest{Tool: "img", Images: 1000, Plan: "bp9999"}, top / 10_000, 1000 * (top / 10_000)},
		{credits.QuoteRequest{Tool: "img", Images: 1000, Plan: "free"}, 0, 0},
		{credits.QuoteRequest{Tool: "img", Images: 1000, Plan: "over"}, top, 1000 * top},
		{credits.QuoteRequest{Tool: "vid", Resolution: "8k", Duration: 24 * time.Hour, Plan: "bp1"}, top / 10_000 * 9_999, bigTotal(top/10_000*9_999, day)},
		{credits.QuoteRequest{Tool: "vid", Resolution: "8k", Duration: 24 * time.Hour, Plan: "over"}, top, ovTopVideoUnits},
		{credits.QuoteRequest{Tool: "ms", Resolution: "x", Duration: 24 * time.Hour, Plan: "bp9999"}, 99_999, bigTotal(99_999, day)},
	}
	for _, tt := range tests {
		q, err := cat.Quote(tt.req, now)
		if err != nil || q.UnitRate.Units() != tt.rate || q.Total.Units() != tt.want {
			t.Errorf("Quote(%+v) = rate %d total %d, %v; want rate %d total %d", tt.req, q.UnitRate.Units(), q.Total.Units(), err, tt.rate, tt.want)
			continue
		}
		// The quoted usage costs the total; any larger usage is capped at it.
		for _, u := range []credits.Usage{{Duration: q.Duration, Images: q.Images}, ovHugeUsage(q)} {
			c, _, err := q.Cost(u)
			if err != nil || c != q.Total {
				t.Errorf("Cost(%+v) of %+v = %v, %v; want the total %v", u, tt.req, c, err, q.Total)
			}
		}
	}

	// Past a limit: a clear refusal, no total.
	for _, req := range []credits.QuoteRequest{
		{Tool: "vid", Resolution: "8k", Duration: 24*time.Hour + time.Nanosecond},
		{Tool: "vid", Resolution: "8k", Duration: math.MaxInt64},
		{Tool: "vid", Resolution: "8k", Duration: math.MinInt64},
		{Tool: "ms", Resolution: "x", Duration: math.MaxInt64},
		{Tool: "img", Images: 1001},
		{Tool: "img", Images: math.MaxInt},
		{Tool: "img", Images: math.MinInt},
	} {
		if q, err := cat.Quote(req, now); !errors.Is(err, credits.ErrInvalidRequest) || !reflect.DeepEqual(q, credits.Quote{}) {
			t.Errorf("Quote(%+v) = %+v, %v; want ErrInvalidRequest", req, q, err)
		}
	}
}

// ovHugeUsage is usage far beyond what q priced.
func ovHugeUsage(q credits.Quote) credits.Usage {
	if q.Unit == credits.UnitImage {
		return credits.Usage{Images: math.MaxInt}
	}
	return credits.Usage{Duration: math.MaxInt64}
}

// TestOverflowCatalogValues: every catalog number is accepted at its limit
// and refused just past it, and a number beyond int64 is refused (as a
// *CatalogError naming the field) by NewCatalog and by ParseCatalog, never
// wrapped into a small one.
func TestOverflowCatalogValues(t *testing.T) {
	base := func() credits.CatalogConfig {
		return credits.CatalogConfig{Version: "v", Tools: []credits.Tool{
			{ID: "i", Unit: credits.UnitImage, Price: credits.Whole(1)},
			{ID: "s", Unit: credits.UnitSecond, Rates: map[string]credits.Credits{"p": credits.Whole(1)}},
		}, Plans: []credits.Plan{{ID: "p"}}}
	}
	top := credits.Whole(1_000_000)
	above := ovUnits(top.Units() + 1)
	tests := []struct {
		name  string
		edit  func(*credits.CatalogConfig)
		field string // "" when valid
	}{
		{"price at the limit", func(c *credits.CatalogConfig) { c.Tools[0].Price = top }, ""},
		{"price past the limit", func(c *credits.CatalogConfig) { c.Tools[0].Price = above }, "tools[0].price"},
		{"price of MaxUnits", func(c *credits.CatalogConfig) { c.Tools[0].Price = ovMax }, "tools[0].price"},
		{"price of MinInt64", func(c *credits.CatalogConfig) { c.Tools[0].Price = ovUnits(math.MinInt64) }, "tools[0].price"},
		{"rate at the limit", func(c *credits.CatalogConfig) { c.Tools[1].Rates["p"] = top }, ""},
		{"rate of MaxUnits", func(c *credits.CatalogConfig) { c.Tools[1].Rates["p"] = ovMax }, `tools[1].rates["p"]`},
		{"override of MaxUnits", func(c *credits.CatalogConfig) {
			c.Plans[0].Overrides = map[string]credits.PlanOverride{"i": {Price: ovMax}}
		}, `plans[0].overrides["i"].price`},
		{"override rate past the limit", func(c *credits.CatalogConfig) {
			c.Plans[0].Overrides = map[string]credits.PlanOverride{"s": {Rates: map[string]credits.Credits{"p": above}}}
		}, `plans[0].overrides["s"].rates["p"]`},
		{"max_images at the limit", func(c *credits.CatalogConfig) { c.Tools[0].MaxImages = 1000 }, ""},
		{"max_images of MaxInt", func(c *credits.CatalogConfig) { c.Tools[0].MaxImages = math.MaxInt }, "tools[0].max_images"},
		{"max_images of MinInt", func(c *credits.CatalogConfig) { c.Tools[0].MaxImages = math.MinInt }, "tools[0].max_images"},
		{"increment at the limit", func(c *credits.CatalogConfig) { c.Tools[1].IncrementMillis = 60_000 }, ""},
		{"increment of MaxInt64", func(c *credits.CatalogConfig) { c.Tools[1].IncrementMillis = math.MaxInt64 }, "tools[1].increment_ms"},
		{"increment of MinInt64", func(c *credits.CatalogConfig) { c.Tools[1].IncrementMillis = math.MinInt64 }, "tools[1].increment_ms"},
		{"max duration at the limit", func(c *credits.CatalogConfig) { c.Tools[1].MaxDurationMillis = 86_400_000 }, ""},
		{"max duration of MaxInt64", func(c *credits.CatalogConfig) { c.Tools[1].MaxDurationMillis = math.MaxInt64 }, "tools[1].max_duration_ms"},
		{"quote TTL at the limit", func(c *credits.CatalogConfig) { c.QuoteTTLMillis = 86_400_000 }, ""},
		{"quote TTL of MaxInt64", func(c *credits.CatalogConfig) { c.QuoteTTLMillis = math.MaxInt64 }, "quote_ttl_ms"},
		{"discount at the limit", func(c *credits.CatalogConfig) { c.Plans[0].DiscountBasisPoints = 10_000 }, ""},
		{"discount of MaxInt64", func(c *credits.CatalogConfig) { c.Plans[0].DiscountBasisPoints = math.MaxInt64 }, "plans[0].discount_bp"},
		{"discount of MinInt64", func(c *credits.CatalogConfig) { c.Plans[0].DiscountBasisPoints = math.MinInt64 }, "plans[0].discount_bp"},
	}
	for _, tt := range tests {
		cfg := base()
		tt.edit(&cfg)
		_, err := credits.NewCatalog(cfg)
		ovWantCatalogErr(t, "NewCatalog: "+tt.name, err, tt.field)
	}

	// The same limits in JSON, and numbers JSON can write but int64 cannot
	// hold.
	const tools = `"tools":[{"id":"i","unit":"image","price":%s},{"id":"s","unit":"second","rates":{"p":1},"increment_ms":%s}]`
	jsonTests := []struct {
		name, price, inc string
		field            string
	}{
		{"price at the limit", `"1000000"`, "1000", ""},
		{"price past the limit", `"1000000.001"`, "1000", "tools[0].price"},
		{"price of MaxUnits", `"9223372036854775.807"`, "1000", "tools[0].price"},
		{"price past int64", `"9223372036854775.808"`, "1000", "tools[0].price"},
		{"price past int64 as a number", `9223372036854775.808`, "1000", "tools[0].price"},
		{"price of 1e30", `1e30`, "1000", "tools[0].price"},
		{"price of -MaxUnits-1", `"-9223372036854775.808"`, "1000", "tools[0].price"},
		{"increment of MaxInt64", `1`, "9223372036854775807", "tools[1].increment_ms"},
		{"increment past int64", `1`, "9223372036854775808", "tools[1].increment_ms"},
		{"increment of MinInt64", `1`, "-9223372036854775808", "tools[1].increment_ms"},
		{"increment past MinInt64", `1`, "-9223372036854775809", "tools[1].increment_ms"},
		{"increment of 1e19", `1`, "1e19", "tools[1].increment_ms"},
	}
	for _, tt := range jsonTests {
		js := `{"version":"v",` + fmt.Sprintf(tools, tt.price, tt.inc) + `}`
		_, err := credits.ParseCatalog([]byte(js))
		ovWantCatalogErr(t, "ParseCatalog: "+tt.name+": "+js, err, tt.field)
	}
	for _, field := range []string{"quote_ttl_ms", "max_images", "max_duration_ms"} {
		for _, n := range []string{"9223372036854775807", "9223372036854775808", "-9223372036854775809", "18446744073709551616"} {
			var js string
			switch field {
			case "quote_ttl_ms":
				js = `{"version":"v","quote_ttl_ms":` + n + `,"tools":[]}`
			case "max_images":
				js = `{"version":"v","tools":[{"id":"i","unit":"image","price":1,"max_images":` + n + `}]}`
			default:
				js = `{"version":"v","tools":[{"id":"s","unit":"second","rates":{"p":1},"max_duration_ms":` + n + `}]}`
			}
			_, err := credits.ParseCatalog([]byte(js))
			var ce *credits.CatalogError
			if !errors.As(err, &ce) {
				t.Errorf("ParseCatalog(%s) = %v, want a *CatalogError", js, err)
			}
		}
	}
}

func ovWantCatalogErr(t *testing.T, what string, err error, field string) {
	t.Helper()
	if field == "" {
		if err != nil {
			t.Errorf("%s: %v, want it accepted", what, err)
		}
		return
	}
	var ce *credits.CatalogError
	if !errors.As(err, &ce) || !errors.Is(err, credits.ErrInvalidCatalog) || ce.Field != field {
		t.Errorf("%s: %v, want a *CatalogError on %s", what, err, field)
	}
}

// TestOverflowQuoteCost: Cost on quotes at the int64 limit (built by hand:
// no catalog makes them) is exact where the result fits and capped at the
// total where it does not; a negative rate or total is refused.
func TestOverflowQuoteCost(t *testing.T) {
	const max = credits.MaxUnits
	img := credits.Quote{Tool: "i", Unit: credits.UnitImage, UnitRate: ovMax, Total: ovMax, Images: 1}
	sec := credits.Quote{Tool: "s", Unit: credits.UnitSecond, UnitRate: ovMax, Total: ovMax, Increment: time.Millisecond, Rounding: credits.RoundUp}
	wholeMs := time.Duration(math.MaxInt64) / time.Millisecond * time.Millisecond
	bigCost := func(rate, billedMs int64) int64 {
		r := new(big.Int).Mul(big.NewInt(rate), big.NewInt(billedMs))
		return r.Quo(r, big.NewInt(1000)).Int64()
	}
	with := func(q credits.Quote, edit func(*credits.Quote)) credits.Quote { edit(&q); return q }
	tests := []struct {
		name   string
		q      credits.Quote
		u      credits.Usage
		want   int64
		capped bool
	}{
		{"one image at MaxUnits", img, credits.Usage{Images: 1}, max, false},
		{"two images at MaxUnits", img, credits.Usage{Images: 2}, max, true},
		{"MaxInt images at MaxUnits", img, credits.Usage{Images: math.MaxInt}, max, true},
		{"MaxInt images at 1 millicredit", with(img, func(q *credits.Quote) { q.UnitRate = ovUnits(1) }), credits.Usage{Images: math.MaxInt}, max, math.MaxInt > max},
		{"MaxInt images at 0", with(img, func(q *credits.Quote) { q.UnitRate = ovUnits(0) }), credits.Usage{Images: math.MaxInt}, 0, false},
		{"no images", img, credits.Usage{}, 0, false},
		{"1 s at MaxUnits/s", sec, credits.Usage{Duration: time.Second}, max, false},
		{"1.001 s at MaxUnits/s", sec, credits.Usage{Duration: 1001 * time.Millisecond}, max, true},
		{"MaxInt64 ns at MaxUnits/s", sec, credits.Usage{Duration: math.MaxInt64}, max, true},
		{"MaxInt64 ns at 1 millicredit/s", with(sec, func(q *credits.Quote) { q.UnitRate = ovUnits(1) }),
			credits.Usage{Duration: math.MaxInt64}, bigCost(1, int64(wholeMs/time.Millisecond)+1), false},
		{"MaxInt64 ns rounded down", with(sec, func(q *credits.Quote) { q.UnitRate = ovUnits(1); q.Rounding = credits.RoundDown }),
			credits.Usage{Duration: math.MaxInt64}, bigCost(1, int64(wholeMs/time.Millisecond)), false},
		{"MaxInt64 ns at 0/s", with(sec, func(q *credits.Quote) { q.UnitRate = ovUnits(0) }), credits.Usage{Duration: math.MaxInt64}, 0, false},
		{"the largest increment, 1 ns used", with(sec, func(q *credits.Quote) { q.UnitRate = ovUnits(1); q.Increment = wholeMs }),
			credits.Usage{Duration: 1}, bigCost(1, int64(wholeMs/time.Millisecond)), false},
		{"the largest increment at MaxUnits/s", with(sec, func(q *credits.Quote) { q.Increment = wholeMs }),
			credits.Usage{Duration: 1}, max, true},
		// Two increments of about 292 years: the billed milliseconds are
		// past int64 nanoseconds but still fit in 64 bits.
		{"the largest increment, MaxInt64 ns used", with(sec, func(q *credits.Quote) { q.UnitRate = ovUnits(1000); q.Increment = wholeMs }),
			credits.Usage{Duration: math.MaxInt64}, bigCost(1000, 2*int64(wholeMs/time.Millisecond)), false},
		{"the largest increment, MaxInt64 ns used, at MaxUnits/s", with(sec, func(q *credits.Quote) { q.Increment = wholeMs }),
			credits.Usage{Duration: math.MaxInt64}, max, true},
	}
	for _, tt := range tests {
		c, capped, err := tt.q.Cost(tt.u)
		if err != nil || c.Units() != tt.want || capped != tt.capped {
			t.Errorf("%s: Cost = %d (capped %v), %v; want %d (capped %v)", tt.name, c.Units(), capped, err, tt.want, tt.capped)
		}
	}
	for _, q := range []credits.Quote{
		with(img, func(q *credits.Quote) { q.Total = ovUnits(math.MinInt64) }),
		with(img, func(q *credits.Quote) { q.UnitRate = ovUnits(math.MinInt64) }),
		with(sec, func(q *credits.Quote) { q.UnitRate = ovUnits(-1) }),
	} {
		if _, _, err := q.Cost(credits.Usage{Images: 1, Duration: 0}); !errors.Is(err, credits.ErrInvalidRequest) {
			t.Errorf("Cost on a quote with a negative rate or total: %v", err)
		}
	}
}

// TestOverflowHugeQuotesOnTheLedger: the largest quote reserved, captured
// (by usage far beyond it, by an amount at the int64 limit), released,
// charged and refunded on an account at the int64 limit: every balance
// exact, every refusal writing nothing.
func TestOverflowHugeQuotesOnTheLedger(t *testing.T) {
	const max = credits.MaxUnits
	const T = ovTopVideoUnits
	h := ovHarness(t, func(c *credits.Config) { c.Catalog = ovLimitCatalog(t) })
	h.Account(t, credits.CreateAccountRequest{ID: "a"})
	ovMustGrant(t, h, "a", ovMax, credits.KindPurchase, time.Time{}, "fund")
	q := h.Quote(t, ovTopVideo)
	if q.Total.Units() != T {
		t.Fatalf("the top quote: %v", q.Total)
	}

	reserve := func(key string) credits.Hold {
		t.Helper()
		r, err := h.Ledger.Reserve(h.Ctx, credits.ReserveRequest{Account: "a", Quote: q, Key: key})
		if err != nil {
			t.Fatalf("reserve %s: %v", key, err)
		}
		return r.Hold
	}

	// Capture by usage far beyond the quote: capped at it, exactly.
	h1 := reserve("r1")
	ovWantBalance(t, h, "a", max-T, T, max, 0, 0)
	ch, err := h.Ledger.Capture(h.Ctx, credits.CaptureRequest{Hold: h1.ID, Usage: credits.Usage{Duration: math.MaxInt64}})
	if err != nil || ch.Charged.Units() != T || !ch.Capped || !ch.Released.IsZero() {
		t.Fatalf("capture by MaxInt64 ns: %+v %v", ch, err)
	}
	ovWantBalance(t, h, "a", max-T, 0, max, T, 0)

	// Capture by an amount at the int64 limit: refused, nothing written;
	// by exactly the hold: taken.
	h2 := reserve("r2")
	before := ovSnapshot(t, h, "a")
	for _, amount := range []credits.Credits{ovMax, ovUnits(T + 1)} {
		_, err := h.Ledger.Capture(h.Ctx, credits.CaptureRequest{Hold: h2.ID, Amount: amount})
		if !errors.Is(err, credits.ErrExceedsHold) {
			t.Fatalf("capture of %v: %v, want ErrExceedsHold", amount, err)
		}
		ovWroteNothing(t, h, "a", before, "a capture above the hold")
	}
	_, err = h.Ledger.Capture(h.Ctx, credits.CaptureRequest{Hold: h2.ID, Amount: ovUnits(math.MinInt64)})
	if !errors.Is(err, credits.ErrInvalidAmount) {
		t.Fatalf("capture of MinInt64: %v", err)
	}
	ovWroteNothing(t, h, "a", before, "a capture of MinInt64")
	if ch, err := h.Ledger.Capture(h.Ctx, credits.CaptureRequest{Hold: h2.ID, Amount: ovUnits(T - 1)}); err != nil || ch.Released.Units() != 1 {
		t.Fatalf("capture of all but 1: %+v %v", ch, err)
	}
	ovWantBalance(t, h, "a", max-T-T+1, 0, max, 2*T-1, 0)

	// Release a top hold: every millicredit back.
	h3 := reserve("r3")
	if r, err := h.Ledger.Release(h.Ctx, credits.ReleaseRequest{Hold: h3.ID}); err != nil || r.Released.Units() != T {
		t.Fatalf("release: %+v %v", r, err)
	}
	ovWantBalance(t, h, "a", max-2*T+1, 0, max, 2*T-1, 0)

	// Refund at the limit: refused above what is left, then exact, back to
	// MaxUnits available.
	before = ovSnapshot(t, h, "a")
	for _, amount := range []credits.Credits{ovMax, ovUnits(T + 1)} {
		_, err := h.Ledger.Refund(h.Ctx, credits.RefundRequest{Charge: h1.ID, Amount: amount, Key: "f" + amount.String()})
		if !errors.Is(err, credits.ErrRefundExceedsCharge) {
			t.Fatalf("refund of %v: %v, want ErrRefundExceedsCharge", amount, err)
		}
		ovWroteNothing(t, h, "a", before, "a refund above the charge")
	}
	for _, r := range []credits.RefundRequest{{Charge: h1.ID, Key: "f1"}, {Charge: h2.ID, Key: "f2"}} {
		if _, err := h.Ledger.Refund(h.Ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	ovWantBalance(t, h, "a", max, 0, max, 0, 0)

	// A one-step charge of the top quote, refunded.
	c, err := h.Ledger.Charge(h.Ctx, credits.ChargeRequest{Account: "a", Quote: q, Key: "c"})
	if err != nil || c.Available.Units() != max-T {
		t.Fatalf("charge: %+v %v", c, err)
	}
	if _, err := h.Ledger.Refund(h.Ctx, credits.RefundRequest{Charge: c.Hold.ID, Key: "fc"}); err != nil {
		t.Fatal(err)
	}
	ovWantBalance(t, h, "a", max, 0, max, 0, 0)

	// A forged quote of MaxUnits is refused before anything is taken.
	forged := q
	forged.Total = ovMax
	before = ovSnapshot(t, h, "a")
	if _, err := h.Ledger.Charge(h.Ctx, credits.ChargeRequest{Account: "a", Quote: forged, Key: "forged"}); !errors.Is(err, credits.ErrQuoteMismatch) {
		t.Fatalf("a forged quote of MaxUnits: %v", err)
	}
	ovWroteNothing(t, h, "a", before, "a forged quote of MaxUnits")

	// An account holding exactly three top quotes: three reserves take all
	// of it; a fourth is refused with exactly one quote missing.
	h.Account(t, credits.CreateAccountRequest{ID: "b"})
	ovMustGrant(t, h, "b", ovUnits(3*T), credits.KindPurchase, time.Time{}, "fund")
	for i := range 3 {
		if _, err := h.Ledger.Reserve(h.Ctx, credits.ReserveRequest{Account: "b", Quote: q, Key: fmt.Sprint("r", i)}); err != nil {
			t.Fatal(err)
		}
	}
	before = ovSnapshot(t, h, "b")
	_, err = h.Ledger.Reserve(h.Ctx, credits.ReserveRequest{Account: "b", Quote: q, Key: "r3"})
	var ie *credits.InsufficientCreditsError
	if !errors.As(err, &ie) || ie.Missing().Units() != T || !ie.Available.IsZero() {
		t.Fatalf("the fourth reserve: %v", err)
	}
	ovWroteNothing(t, h, "b", before, "an unaffordable reserve")
	ovWantBalance(t, h, "b", 0, 3*T, 3*T, 0, 0)

	// A zero quote (a plan that takes everything off) cannot be reserved.
	free := h.Quote(t, credits.QuoteRequest{Tool: "img", Images: 1000, Plan: "free"})
	if _, err := h.Ledger.Reserve(h.Ctx, credits.ReserveRequest{Account: "a", Quote: free, Key: "free"}); !errors.Is(err, credits.ErrInvalidAmount) {
		t.Fatalf("a zero quote: %v", err)
	}
}

// TestOverflowInsufficientCreditsError: the missing amount at the limits.
func TestOverflowInsufficientCreditsError(t *testing.T) {
	tests := []struct {
		available, requested, missing int64
	}{
		{0, credits.MaxUnits, credits.MaxUnits},
		{credits.MaxUnits - 1, credits.MaxUnits, 1},
		{1, credits.MaxUnits, credits.MaxUnits - 1},
		// Not a state the ledger reaches (available is never negative): the
		// difference does not fit, and Missing says the most it can.
		{-1, credits.MaxUnits, credits.MaxUnits},
		{math.MinInt64, 1, credits.MaxUnits},
	}
	for _, tt := range tests {
		e := &credits.InsufficientCreditsError{Account: "a", Available: ovUnits(tt.available), Requested: ovUnits(tt.requested)}
		if got := e.Missing().Units(); got != tt.missing {
			t.Errorf("Missing() with available %d, requested %d = %d, want %d", tt.available, tt.requested, got, tt.missing)
		}
		if e.Error() == "" || !errors.Is(e, credits.ErrInsufficientCredits) {
			t.Errorf("Error() of %+v", e)
		}
	}
}

// TestOverflowRestoredGrantsAtTheLimit: credits given back after the grant
// they came from expired (a release and a refund into the restore grace), on
// an account whose granted total is at the limit: exact, and the granted
// total stays at the limit, so a further grant still overflows.
func TestOverflowRestoredGrantsAtTheLimit(t *testing.T) {
	const max = credits.MaxUnits
	const T = ovTopVideoUnits
	h := ovHarness(t, func(c *credits.Config) {
		c.Catalog = ovLimitCatalog(t)
		c.RestoreGrace = time.Hour
	})
	h.Account(t, credits.CreateAccountRequest{ID: "a"})
	expires := h.Clock.Now().Add(time.Hour)
	ovMustGrant(t, h, "a", ovMax, credits.KindPromo, expires, "promo")
	q := h.Quote(t, ovTopVideo)
	r, err := h.Ledger.Reserve(h.Ctx, credits.ReserveRequest{Account: "a", Quote: q, TTL: 3 * time.Hour, Key: "r"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := h.Ledger.Charge(h.Ctx, credits.ChargeRequest{Account: "a", Quote: q, Key: "c"})
	if err != nil {
		t.Fatal(err)
	}
	h.Clock.Set(expires.Add(30 * time.Minute))
	ovWantBalance(t, h, "a", 0, T, max, T, max-2*T)

	if rel, err := h.Ledger.Release(h.Ctx, credits.ReleaseRequest{Hold: r.Hold.ID}); err != nil || rel.Available.Units() != T {
		t.Fatalf("release into the grace: %+v %v", rel, err)
	}
	if ref, err := h.Ledger.Refund(h.Ctx, credits.RefundRequest{Charge: c.Hold.ID, Key: "f"}); err != nil || ref.Available.Units() != 2*T {
		t.Fatalf("refund into the grace: %+v %v", ref, err)
	}
	ovWantBalance(t, h, "a", 2*T, 0, max, 0, max-2*T)
	if b := h.Balance(t, "a"); b.NextExpiry == nil || b.NextExpiry.Amount.Units() != 2*T || !b.NextExpiry.At.Equal(expires.Add(time.Hour)) {
		t.Fatalf("the restored credits: %+v", b.NextExpiry)
	}
	before := ovSnapshot(t, h, "a")
	_, err = ovGrant(h, "a", ovUnits(1), "x")
	ovWantOverflow(t, h, "a", before, "a grant with the limit granted, partly restored", err)

	// The grace ends: everything granted has expired, exactly.
	h.Clock.Set(expires.Add(time.Hour))
	ovWantBalance(t, h, "a", 0, 0, max, 0, max)
}

// TestOverflowTeamBalance: a team funded to the limit, members spending the
// largest quotes, spending by member exact.
func TestOverflowTeamBalance(t *testing.T) {
	const max = credits.MaxUnits
	const T = ovTopVideoUnits
	h := ovHarness(t, func(c *credits.Config) { c.Catalog = ovLimitCatalog(t) })
	h.Account(t, credits.CreateAccountRequest{ID: "team", Team: true, Members: []string{"m1", "m2"}})
	ovMustGrant(t, h, "team", ovMax, credits.KindPurchase, time.Time{}, "fund")
	q := h.Quote(t, ovTopVideo)
	for i, m := range []string{"m1", "m2", "m2"} {
		if _, err := h.Ledger.Charge(h.Ctx, credits.ChargeRequest{Account: "team", Member: m, Quote: q, Key: fmt.Sprint("c", i)}); err != nil {
			t.Fatal(err)
		}
	}
	before := ovSnapshot(t, h, "team")
	if _, err := h.Ledger.Charge(h.Ctx, credits.ChargeRequest{Account: "team", Member: "x", Quote: q, Key: "x"}); !errors.Is(err, credits.ErrNotMember) {
		t.Fatalf("an outsider: %v", err)
	}
	ovWroteNothing(t, h, "team", before, "an outsider's charge")
	_, err := ovGrant(h, "team", ovUnits(1), "over")
	ovWantOverflow(t, h, "team", before, "a grant to a team at the limit", err)
	ovWantBalance(t, h, "team", max-3*T, 0, max, 3*T, 0)
	rep, err := h.Ledger.Spending(h.Ctx, credits.SpendingRequest{Account: "team", By: credits.ByMember})
	if err != nil || len(rep.Lines) != 2 || rep.Lines[0].Net.Units() != T || rep.Lines[1].Net.Units() != 2*T || rep.Total.Net.Units() != 3*T {
		t.Fatalf("spending by member: %+v %v", rep, err)
	}
}

// ovHistoryStore serves a fixed history for its reads of entries, as a
// store could hold it after more charges than a test can make: enough to
// take a spending report past the int64 limit.
type ovHistoryStore struct {
	credits.Store
	entries []credits.Entry
}

func (s ovHistoryStore) Entries(_ context.Context, f credits.EntryFilter) ([]credits.Entry, error) {
	var out []credits.Entry
	for i := range s.entries {
		if f.Match(&s.entries[i]) {
			out = append(out, s.entries[i])
			if f.Limit > 0 && len(out) == f.Limit {
				break
			}
		}
	}
	return out, nil
}

// TestOverflowSpendingReport: spending reports summing charges and refunds
// near the int64 limit: exact up to it, ErrOverflow past it (in a line or in
// the total), never a wrapped sum.
func TestOverflowSpendingReport(t *testing.T) {
	const max = credits.MaxUnits
	day1 := storetest.Epoch
	day2 := day1.Add(24 * time.Hour)
	type e struct {
		typ    credits.EntryType
		amount int64
		tool   string
		member string
		at     time.Time
	}
	history := func(es ...e) []credits.Entry {
		out := make([]credits.Entry, len(es))
		for i, x := range es {
			out[i] = credits.Entry{Account: "a", Seq: int64(i + 1), Type: x.typ, Amount: ovUnits(x.amount), Tool: x.tool, Member: x.member, At: x.at}
		}
		return out
	}
	charge, capture, refund := credits.EntryCharge, credits.EntryCapture, credits.EntryRefund
	tests := []struct {
		name    string
		entries []credits.Entry
		req     credits.SpendingRequest
		total   [3]int64 // charged, refunded, net
		lines   int
		err     error
	}{
		{"charges summing to MaxUnits", history(e{charge, max / 2, "vid", "m1", day1}, e{capture, max/2 + 1, "img", "m2", day1}),
			credits.SpendingRequest{By: credits.ByTool}, [3]int64{max, 0, max}, 2, nil},
		{"charges summing past MaxUnits", history(e{charge, max / 2, "vid", "m1", day1}, e{capture, max/2 + 2, "vid", "m1", day1}),
			credits.SpendingRequest{By: credits.ByTool}, [3]int64{}, 0, credits.ErrOverflow},
		{"each line fits, the total does not", history(e{charge, max/2 + 1, "vid", "m1", day1}, e{capture, max/2 + 1, "img", "m2", day2}),
			credits.SpendingRequest{By: credits.ByDay}, [3]int64{}, 0, credits.ErrOverflow},
		{"one line past the limit, by member", history(e{charge, max, "vid", "m1", day1}, e{charge, 1, "img", "m1", day2}),
			credits.SpendingRequest{By: credits.ByMember}, [3]int64{}, 0, credits.ErrOverflow},
		{"the window keeps it within the limit", history(e{charge, max, "vid", "m1", day1}, e{charge, 1, "img", "m1", day2}),
			credits.SpendingRequest{By: credits.ByDay, Until: day2}, [3]int64{max, 0, max}, 1, nil},
		{"charged and refunded at MaxUnits", history(e{charge, max, "vid", "m1", day1}, e{refund, max, "vid", "m1", day2}),
			credits.SpendingRequest{By: credits.ByTool}, [3]int64{max, max, 0}, 1, nil},
		{"refunds past MaxUnits", history(e{refund, max, "vid", "m1", day1}, e{refund, 1, "vid", "m1", day2}),
			credits.SpendingRequest{By: credits.ByTool}, [3]int64{}, 0, credits.ErrOverflow},
		{"a window with only the refund of MaxUnits", history(e{charge, max, "vid", "m1", day1}, e{refund, max, "vid", "m1", day2}),
			credits.SpendingRequest{By: credits.ByTool, Since: day2}, [3]int64{0, max, -max}, 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := credits.NewLedger(ovHistoryStore{Store: memstore.New(), entries: tt.entries}, nil)
			if err != nil {
				t.Fatal(err)
			}
			tt.req.Account = "a"
			rep, err := l.Spending(context.Background(), tt.req)
			if tt.err != nil {
				if !errors.Is(err, tt.err) || !reflect.DeepEqual(rep, credits.SpendingReport{}) {
					t.Fatalf("Spending = %+v, %v; want %v and no report", rep, err, tt.err)
				}
				return
			}
			got := [3]int64{rep.Total.Charged.Units(), rep.Total.Refunded.Units(), rep.Total.Net.Units()}
			if err != nil || got != tt.total || len(rep.Lines) != tt.lines {
				t.Fatalf("Spending = %+v, %v; want total %v in %d lines", rep, err, tt.total, tt.lines)
			}
			var sum [3]*big.Int
			for i := range sum {
				sum[i] = new(big.Int)
			}
			for _, line := range rep.Lines {
				sum[0].Add(sum[0], big.NewInt(line.Charged.Units()))
				sum[1].Add(sum[1], big.NewInt(line.Refunded.Units()))
				sum[2].Add(sum[2], big.NewInt(line.Net.Units()))
			}
			for i := range sum {
				if !sum[i].IsInt64() || sum[i].Int64() != got[i] {
					t.Fatalf("the lines sum to %v, the total is %v", sum, got)
				}
			}
		})
	}
}

// TestOverflowHistoryRunningSums: on an account taken to the limit and back,
// every entry's balances are the exact running sums of the history (checked
// without wrapping), and the history ends at the balance.
func TestOverflowHistoryRunningSums(t *testing.T) {
	const max = credits.MaxUnits
	h := ovHarness(t, func(c *credits.Config) { c.Catalog = ovLimitCatalog(t) })
	h.Account(t, credits.CreateAccountRequest{ID: "a"})
	ovMustGrant(t, h, "a", ovUnits(max-1), credits.KindPurchase, time.Time{}, "g1")
	ovMustGrant(t, h, "a", ovUnits(1), credits.KindPromo, h.Clock.Now().Add(time.Hour), "g2")
	q := h.Quote(t, ovTopVideo)
	r, err := h.Ledger.Reserve(h.Ctx, credits.ReserveRequest{Account: "a", Quote: q, Key: "r"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Ledger.Capture(h.Ctx, credits.CaptureRequest{Hold: r.Hold.ID, Usage: credits.Usage{Duration: time.Hour}}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Ledger.Refund(h.Ctx, credits.RefundRequest{Charge: r.Hold.ID, Key: "f"}); err != nil {
		t.Fatal(err)
	}
	h.Clock.Advance(2 * time.Hour)
	if _, err := h.Ledger.Sweep(h.Ctx); err != nil {
		t.Fatal(err)
	}
	es := h.History(t, "a")
	var avail, held credits.Credits
	sawLimit := false
	for _, e := range es {
		if avail, err = avail.Add(e.AvailableDelta()); err != nil {
			t.Fatalf("entry %d: the running available sum overflows: %v", e.Seq, err)
		}
		if held, err = held.Add(e.HeldDelta()); err != nil {
			t.Fatalf("entry %d: the running held sum overflows: %v", e.Seq, err)
		}
		if e.Available != avail || e.Held != held {
			t.Fatalf("entry %d (%s %s) says available %s held %s; the running sums are %s and %s", e.Seq, e.Type, e.Amount, e.Available, e.Held, avail, held)
		}
		sawLimit = sawLimit || e.Available == ovMax
	}
	if !sawLimit {
		t.Fatal("the history never reached MaxUnits available")
	}
	b := h.Balance(t, "a")
	if b.Available != avail || b.Held != held || avail.Units() != max-1 || b.Expired.Units() != 1 {
		t.Fatalf("the history sums to %s/%s; the balance is %+v", avail, held, b)
	}
	storetest.CheckInvariants(t, h, "a")
}

// TestOverflowLowBalanceThreshold: a threshold of MaxUnits compares, it does
// not compute.
func TestOverflowLowBalanceThreshold(t *testing.T) {
	h := ovHarness(t, nil)
	h.Account(t, credits.CreateAccountRequest{ID: "a", LowBalanceThreshold: ovMax})
	if b := h.Balance(t, "a"); !b.Low || b.Threshold != ovMax {
		t.Fatalf("an empty account under a MaxUnits threshold: %+v", b)
	}
	ovMustGrant(t, h, "a", ovMax, credits.KindPurchase, time.Time{}, "g")
	if b := h.Balance(t, "a"); b.Low {
		t.Fatalf("an account at MaxUnits under a MaxUnits threshold: %+v", b)
	}
	q := h.Quote(t, credits.QuoteRequest{Tool: "image"})
	if _, err := h.Ledger.Charge(h.Ctx, credits.ChargeRequest{Account: "a", Quote: q, Key: "c"}); err != nil {
		t.Fatal(err)
	}
	if len(h.LowBalance) != 1 || h.LowBalance[0].Threshold != ovMax || h.LowBalance[0].Available.Units() != credits.MaxUnits-7000 {
		t.Fatalf("low-balance events: %+v", h.LowBalance)
	}
	if _, err := h.Ledger.CreateAccount(h.Ctx, credits.CreateAccountRequest{ID: "b", LowBalanceThreshold: ovUnits(math.MinInt64)}); !errors.Is(err, credits.ErrInvalidAmount) {
		t.Fatalf("a threshold of MinInt64: %v", err)
	}
}

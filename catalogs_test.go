package credits_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/creditkit/credits"
	"github.com/creditkit/credits/memstore"
	"github.com/creditkit/credits/storetest"
)

// repriced is the default catalog under another version, with the image
// tool at 9 credits instead of 7.
func repriced(t *testing.T, version string) *credits.Catalog {
	t.Helper()
	cfg := credits.DefaultCatalog().Config()
	cfg.Version = version
	for i := range cfg.Tools {
		if cfg.Tools[i].ID == "image" {
			cfg.Tools[i].Price = credits.Whole(9)
		}
	}
	c, err := credits.NewCatalog(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func fundedHarness(t *testing.T, edit func(*credits.Config)) *storetest.Harness {
	t.Helper()
	h := storetest.NewHarness(t, memstore.New(), func(c *credits.Config) {
		c.Signup = credits.Reward{}
		if edit != nil {
			edit(c)
		}
	})
	h.Account(t, credits.CreateAccountRequest{ID: "a"})
	if _, err := h.Ledger.Grant(h.Ctx, credits.GrantRequest{Account: "a", Amount: credits.Whole(100000), Kind: credits.KindPurchase, Key: "fund"}); err != nil {
		t.Fatal(err)
	}
	return h
}

var imageReq = credits.QuoteRequest{Tool: "image"}

// A price change must not fail the quotes users are looking at: a quote of
// the replaced catalog is taken at its own price until it expires.
func TestSetCatalogKeepsEarlierQuotesUntilTheyExpire(t *testing.T) {
	h := fundedHarness(t, nil)
	old := h.Quote(t, imageReq) // 7, valid 15 minutes
	h.Clock.Advance(5 * time.Minute)
	if err := h.Ledger.SetCatalog(repriced(t, "v2")); err != nil {
		t.Fatal(err)
	}
	if v := h.Ledger.Catalog().Version(); v != "v2" {
		t.Fatalf("Catalog().Version() = %q after SetCatalog", v)
	}
	fresh := h.Quote(t, imageReq)
	if fresh.Total != credits.Whole(9) || fresh.CatalogVersion != "v2" {
		t.Fatalf("quote after the price change: %+v", fresh)
	}
	r, err := h.Ledger.Reserve(h.Ctx, credits.ReserveRequest{Account: "a", Quote: old, Key: "old"})
	if err != nil || r.Hold.Amount != credits.Whole(7) {
		t.Fatalf("Reserve of a quote of the replaced catalog: %+v, %v; want it at 7", r, err)
	}
	// A tampered quote of the earlier version is still checked against it.
	cheap := old
	cheap.Total, cheap.UnitRate = credits.Whole(1), credits.Whole(1)
	if _, err := h.Ledger.Reserve(h.Ctx, credits.ReserveRequest{Account: "a", Quote: cheap, Key: "cheap"}); !errors.Is(err, credits.ErrQuoteMismatch) {
		t.Fatalf("a tampered quote of the earlier catalog: %v, want ErrQuoteMismatch", err)
	}
	h.Clock.Advance(10 * time.Minute) // the old quote's end
	if _, err := h.Ledger.Reserve(h.Ctx, credits.ReserveRequest{Account: "a", Quote: old, Key: "old-late"}); !errors.Is(err, credits.ErrQuoteExpired) {
		t.Fatalf("an expired quote of the replaced catalog: %v, want ErrQuoteExpired", err)
	}
	// Once its quotes have all expired, the version is forgotten.
	h.Clock.Advance(time.Hour)
	if err := h.Ledger.SetCatalog(repriced(t, "v3")); err != nil {
		t.Fatal(err)
	}
	forged := old
	forged.ExpiresAt = h.Clock.Now().Add(time.Minute)
	if _, err := h.Ledger.Reserve(h.Ctx, credits.ReserveRequest{Account: "a", Quote: forged, Key: "forged"}); !errors.Is(err, credits.ErrQuoteMismatch) {
		t.Fatalf("a quote of a forgotten version with its expiry moved: %v, want ErrQuoteMismatch", err)
	}
	storetest.CheckInvariants(t, h, "a")
}

func TestSetCatalogVersionNamesOnePriceList(t *testing.T) {
	h := fundedHarness(t, nil)
	def := credits.DefaultCatalog()
	if err := h.Ledger.SetCatalog(def); err != nil {
		t.Fatalf("setting the current catalog again: %v", err)
	}
	var ce *credits.CatalogError
	if err := h.Ledger.SetCatalog(repriced(t, def.Version())); !errors.As(err, &ce) || !errors.Is(err, credits.ErrInvalidCatalog) || ce.Field != "version" {
		t.Fatalf("other prices under the current version: %v, want a *CatalogError on version", err)
	}
	if err := h.Ledger.SetCatalog(repriced(t, "v2")); err != nil {
		t.Fatal(err)
	}
	cfg := def.Config()
	cfg.QuoteTTLMillis = 60_000 // same version, other terms
	short, err := credits.NewCatalog(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Ledger.SetCatalog(short); !errors.Is(err, credits.ErrInvalidCatalog) {
		t.Fatalf("other prices under an earlier version: %v, want ErrInvalidCatalog", err)
	}
	if v := h.Ledger.Catalog().Version(); v != "v2" {
		t.Fatalf("a refused SetCatalog changed the catalog to %q", v)
	}
	// Going back to the earlier version (a rollback) is allowed.
	if err := h.Ledger.SetCatalog(def); err != nil || h.Ledger.Catalog() != def {
		t.Fatalf("rollback to the earlier version: %v", err)
	}
	if err := h.Ledger.SetCatalog(nil); !errors.Is(err, credits.ErrInvalidRequest) {
		t.Fatalf("SetCatalog(nil): %v", err)
	}
}

// A found bug: a quote whose expiry was moved far ahead kept an earlier
// version's price for ever. A quote lives its catalog's TTL from now at the
// most (plus a minute of clock skew between servers).
func TestQuoteExpiryCannotBeStretched(t *testing.T) {
	h := fundedHarness(t, func(c *credits.Config) { c.EarlierCatalogs = []*credits.Catalog{repriced(t, "v0")} })
	q := h.Quote(t, imageReq)
	for _, c := range []struct {
		name  string
		shift time.Duration
		ok    bool
	}{
		{"as made", 0, true},
		{"within the skew", time.Minute, true},
		{"past the skew", time.Minute + time.Nanosecond, false},
		{"ten years", 10 * 365 * 24 * time.Hour, false},
	} {
		stretched := q
		stretched.ExpiresAt = q.ExpiresAt.Add(c.shift)
		_, err := h.Ledger.Charge(h.Ctx, credits.ChargeRequest{Account: "a", Quote: stretched, Key: c.name})
		if c.ok != (err == nil) || !c.ok && !errors.Is(err, credits.ErrQuoteMismatch) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	// The same for a version listed as earlier: a year on, a quote of it
	// with its expiry moved is refused.
	old, err := repriced(t, "v0").Quote(imageReq, h.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	h.Clock.Advance(365 * 24 * time.Hour)
	old.ExpiresAt = old.ExpiresAt.Add(10 * 365 * 24 * time.Hour)
	if _, err := h.Ledger.Charge(h.Ctx, credits.ChargeRequest{Account: "a", Quote: old, Key: "old"}); !errors.Is(err, credits.ErrQuoteMismatch) {
		t.Fatalf("an earlier version's quote stretched over a year: %v", err)
	}
	storetest.CheckInvariants(t, h, "a")
}

// During a rolling deploy of a price change, a server on the new version
// takes the quotes that servers still on the old one made.
func TestEarlierCatalogsForARollingDeploy(t *testing.T) {
	v2 := repriced(t, "v2")
	h := fundedHarness(t, func(c *credits.Config) {
		c.Catalog = v2
		c.EarlierCatalogs = []*credits.Catalog{credits.DefaultCatalog()}
	})
	oldServer, err := credits.NewLedger(h.Store, &credits.Config{Now: h.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	q, err := oldServer.Quote(imageReq)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := h.Ledger.Charge(h.Ctx, credits.ChargeRequest{Account: "a", Quote: q, Key: "c"}); err != nil || r.Charged != credits.Whole(7) {
		t.Fatalf("the new server charging the old server's quote: %+v, %v", r, err)
	}
	for _, cfg := range []credits.Config{
		{EarlierCatalogs: []*credits.Catalog{nil}},
		{EarlierCatalogs: []*credits.Catalog{credits.DefaultCatalog()}},
		{Catalog: v2, EarlierCatalogs: []*credits.Catalog{credits.DefaultCatalog(), credits.DefaultCatalog()}},
	} {
		if _, err := credits.NewLedger(memstore.New(), &cfg); !errors.Is(err, credits.ErrInvalidRequest) {
			t.Errorf("NewLedger with EarlierCatalogs %v: %v, want ErrInvalidRequest", cfg.EarlierCatalogs, err)
		}
	}
}

// Replacing the catalog while callers quote and charge is safe (run with
// -race): every quote made by either version is charged at its own price.
func TestSetCatalogConcurrently(t *testing.T) {
	h := fundedHarness(t, nil)
	cats := []*credits.Catalog{credits.DefaultCatalog(), repriced(t, "v2")}
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	wg.Go(func() {
		for i := range 200 {
			if err := h.Ledger.SetCatalog(cats[i%2]); err != nil {
				errs <- err
				return
			}
		}
	})
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				q, err := h.Ledger.Quote(imageReq)
				if err != nil {
					errs <- err
					return
				}
				want := map[string]credits.Credits{"2026-11-default": credits.Whole(7), "v2": credits.Whole(9)}[q.CatalogVersion]
				r, err := h.Ledger.Charge(h.Ctx, credits.ChargeRequest{Account: "a", Quote: q, Key: fmt.Sprint(g, "-", i)})
				if err != nil || r.Charged != want || want.IsZero() {
					errs <- fmt.Errorf("charge of a %s quote: %+v, %v (want %s)", q.CatalogVersion, r, err, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	storetest.CheckInvariants(t, h, "a")
}

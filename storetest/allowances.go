package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/creditkit/credits"
)

// RunAllowances checks plans' allowances on a store: the first period
// granted on joining, renewal at exactly the period's end with its
// rollover, calendar months anchored at the join day, periods that passed
// unseen, upgrades and downgrades mid-period, leaving a plan, a sweep
// renewing an account nobody touches, and one renewal per period with 64
// goroutines on the account at the boundary. [Run] runs it. It uses the
// default catalog: "pro" gives 500 credits a month (rollover up to 100),
// "studio" 2,000 (up to 500).
func RunAllowances(t *testing.T, newStore NewStore) {
	start := Epoch                                        // 2026-11-25 10:00 UTC
	end := time.Date(2026, 12, 25, 10, 0, 0, 0, time.UTC) // the first period's end
	setup := func(t *testing.T, plan string) *Harness {
		h := NewHarness(t, newStore(t), noSignup)
		h.Account(t, credits.CreateAccountRequest{ID: "alice", Plan: plan})
		return h
	}
	at := func(h *Harness, tm time.Time) { h.Clock.Set(tm) }
	balance := func(t *testing.T, h *Harness, available, granted, expired int64, next time.Time, nextAmount int64) {
		t.Helper()
		b := h.Balance(t, "alice")
		got := fmt.Sprint(b.Available, " ", b.Granted, " ", b.Expired)
		want := fmt.Sprint(whole(available), " ", whole(granted), " ", whole(expired))
		if got != want {
			t.Fatalf("at %s: available granted expired = %s, want %s", h.Clock.Now().Format(time.RFC3339Nano), got, want)
		}
		if next.IsZero() != (b.NextExpiry == nil) || b.NextExpiry != nil && (!b.NextExpiry.At.Equal(next) || b.NextExpiry.Amount != whole(nextAmount)) {
			t.Fatalf("at %s: next expiry %+v, want %d at %s", h.Clock.Now().Format(time.RFC3339Nano), b.NextExpiry, nextAmount, next)
		}
	}
	sweep := func(t *testing.T, h *Harness) credits.SweepResult {
		t.Helper()
		r, err := h.Ledger.Sweep(h.Ctx)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	// tail returns the last n entries as "type amount kind" lines with their time.
	tail := func(t *testing.T, h *Harness, n int) []string {
		t.Helper()
		hist := h.History(t, "alice")
		var out []string
		for _, e := range hist[max(0, len(hist)-n):] {
			out = append(out, fmt.Sprintf("%s %s %s @%s", e.Type, e.Amount, e.Kind, e.At.Format("2006-01-02T15:04")))
		}
		return out
	}
	wantLines := func(t *testing.T, what string, got []string, want ...string) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%s:\n got %q\nwant %q", what, got, want)
		}
	}

	t.Run("RenewAtThePeriodEnd", func(t *testing.T) {
		h := setup(t, "pro")
		balance(t, h, 500, 500, 0, end, 500)
		q, err := h.Ledger.QuoteFor(h.Ctx, "alice", credits.QuoteRequest{Tool: "video-pro", Resolution: "1080p", Duration: 20 * time.Second})
		if err != nil || q.Total != whole(414) {
			t.Fatalf("QuoteFor: %+v, %v; want 414 (20 s × 20.7)", q, err)
		}
		if _, err := h.Ledger.Charge(h.Ctx, credits.ChargeRequest{Account: "alice", Quote: q, Key: "c"}); err != nil {
			t.Fatal(err)
		}
		at(h, end.Add(-time.Nanosecond))
		balance(t, h, 86, 500, 0, end, 86)
		at(h, end)
		// 86 unused: they expire, and carry over (up to 100), then 500 more.
		balance(t, h, 586, 1086, 86, time.Date(2027, 1, 25, 10, 0, 0, 0, time.UTC), 586)
		if r := sweep(t, h); r.AllowancesGranted != 2 || r.GrantsExpired != 1 {
			t.Fatalf("sweep at the period end: %+v", r)
		}
		wantLines(t, "the renewal's entries", tail(t, h, 3),
			"expiry 86 plan @2026-12-25T10:00", "grant 86 plan @2026-12-25T10:00", "grant 500 plan @2026-12-25T10:00")
		if r := sweep(t, h); r.AllowancesGranted != 0 || r.Accounts != 0 {
			t.Fatalf("a second sweep in the same period: %+v", r)
		}
		CheckInvariants(t, h, "alice")
	})

	t.Run("CalendarMonthsFromTheJoinDay", func(t *testing.T) {
		h := NewHarness(t, newStore(t), noSignup)
		at(h, time.Date(2027, 1, 31, 10, 0, 0, 0, time.UTC))
		h.Account(t, credits.CreateAccountRequest{ID: "alice", Plan: "pro"})
		for _, next := range []time.Time{
			time.Date(2027, 2, 28, 10, 0, 0, 0, time.UTC),
			time.Date(2027, 3, 31, 10, 0, 0, 0, time.UTC),
			time.Date(2027, 4, 30, 10, 0, 0, 0, time.UTC),
			time.Date(2027, 5, 31, 10, 0, 0, 0, time.UTC),
		} {
			b := h.Balance(t, "alice")
			if b.NextExpiry == nil || !b.NextExpiry.At.Equal(next) {
				t.Fatalf("at %s the allowance expires at %+v, want %s", h.Clock.Now(), b.NextExpiry, next)
			}
			at(h, next)
			sweep(t, h)
		}
		CheckInvariants(t, h, "alice")
	})

	t.Run("PeriodsPassedUnseen", func(t *testing.T) {
		h := setup(t, "pro")
		at(h, time.Date(2027, 2, 26, 0, 0, 0, 0, time.UTC)) // three renewals later
		// Each period was granted at its start and expired at its end; only
		// the rollover carried (100 of each period's 500).
		balance(t, h, 600, 500+3*600, 500+2*600, time.Date(2027, 3, 25, 10, 0, 0, 0, time.UTC), 600)
		if r := sweep(t, h); r.AllowancesGranted != 6 {
			t.Fatalf("sweep after three periods: %+v, want 6 allowance grants", r)
		}
		wantLines(t, "the last renewal", tail(t, h, 4),
			"expiry 100 plan @2027-02-25T10:00", "expiry 500 plan @2027-02-25T10:00", "grant 100 plan @2027-02-25T10:00", "grant 500 plan @2027-02-25T10:00")
		CheckInvariants(t, h, "alice")
	})

	t.Run("UpgradeNowDowngradeNextPeriod", func(t *testing.T) {
		h := setup(t, "pro")
		at(h, start.Add(10*24*time.Hour))
		update := func(plan, key string) {
			t.Helper()
			if _, err := h.Ledger.UpdateAccount(h.Ctx, credits.UpdateAccountRequest{Account: "alice", Plan: &plan, Key: key}); err != nil {
				t.Fatal(err)
			}
		}
		update("studio", "up")
		balance(t, h, 2000, 2000, 0, end, 2000) // the difference, 1500, now, until the same end
		update("pro", "down")
		balance(t, h, 2000, 2000, 0, end, 2000) // a downgrade takes nothing back
		update("studio", "up-again")
		balance(t, h, 2000, 2000, 0, end, 2000) // this period already had studio's 2000
		update("pro", "down-again")
		at(h, end)
		// pro from now: 500, and pro's rollover (up to 100) of the 2000 unused.
		balance(t, h, 600, 2600, 2000, time.Date(2027, 1, 25, 10, 0, 0, 0, time.UTC), 600)
		CheckInvariants(t, h, "alice")
	})

	t.Run("SwitchingPeriodLengthsGrantsNothingMore", func(t *testing.T) {
		// A found bug: switching between a monthly and a weekly plan (or a
		// catalog changing the period) started a new schedule, and a full
		// allowance, on every switch.
		cfg := credits.DefaultCatalog().Config()
		cfg.Version = "weekly-pro"
		cfg.Plans = append(cfg.Plans, credits.Plan{ID: "weekly", Allowance: &credits.Allowance{Amount: whole(500), Period: credits.PeriodWeek}})
		cat, err := credits.NewCatalog(cfg)
		if err != nil {
			t.Fatal(err)
		}
		h := NewHarness(t, newStore(t), func(c *credits.Config) { c.Signup = credits.Reward{}; c.Catalog = cat })
		h.Account(t, credits.CreateAccountRequest{ID: "alice", Plan: "pro"})
		for i, plan := range []string{"weekly", "pro", "weekly", "pro", "weekly"} {
			h.Clock.Advance(time.Minute)
			if _, err := h.Ledger.UpdateAccount(h.Ctx, credits.UpdateAccountRequest{Account: "alice", Plan: &plan, Key: fmt.Sprint("switch-", i)}); err != nil {
				t.Fatal(err)
			}
		}
		balance(t, h, 500, 500, 0, end, 500) // the first period's 500, once
		cfg.Version = "pro-weekly"
		for i := range cfg.Plans {
			if cfg.Plans[i].ID == "pro" {
				cfg.Plans[i].Allowance.Period = credits.PeriodWeek
			}
		}
		changed, err := credits.NewCatalog(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Ledger.SetCatalog(changed); err != nil {
			t.Fatal(err)
		}
		pro := "pro"
		if _, err := h.Ledger.UpdateAccount(h.Ctx, credits.UpdateAccountRequest{Account: "alice", Plan: &pro, Key: "back"}); err != nil {
			t.Fatal(err)
		}
		balance(t, h, 500, 500, 0, end, 500) // pro now renews weekly, from the end of this month
		at(h, end)                           // 500 more, and pro's rollover: 100 of the 500 unused
		balance(t, h, 600, 1100, 500, end.Add(7*24*time.Hour), 600)
		CheckInvariants(t, h, "alice")
	})

	t.Run("LeavingAndRejoining", func(t *testing.T) {
		h := setup(t, "pro")
		none, pro := "", "pro"
		if _, err := h.Ledger.UpdateAccount(h.Ctx, credits.UpdateAccountRequest{Account: "alice", Plan: &none, Key: "leave"}); err != nil {
			t.Fatal(err)
		}
		balance(t, h, 500, 500, 0, end, 500) // what was granted runs to its end
		at(h, end)
		balance(t, h, 0, 500, 500, time.Time{}, 0) // and nothing renews
		sweep(t, h)
		st, err := h.Store.View(h.Ctx, credits.Query{Account: "alice"})
		if err != nil || st.Account.Allowance != nil || !st.Account.RenewsAt.IsZero() {
			t.Fatalf("after leaving the plan and its period's end: %+v, %v", st.Account, err)
		}
		at(h, end.Add(5*24*time.Hour))
		if _, err := h.Ledger.UpdateAccount(h.Ctx, credits.UpdateAccountRequest{Account: "alice", Plan: &pro, Key: "rejoin"}); err != nil {
			t.Fatal(err)
		}
		// Rejoining starts a new schedule, anchored now.
		balance(t, h, 500, 1000, 500, time.Date(2027, 1, 30, 10, 0, 0, 0, time.UTC), 500)
		CheckInvariants(t, h, "alice")
	})

	t.Run("SweepRenewsASpentAllowance", func(t *testing.T) {
		cat, err := credits.NewCatalog(credits.CatalogConfig{Version: "allowance-test",
			Tools: []credits.Tool{{ID: "image", Unit: credits.UnitImage, Price: whole(7)}},
			Plans: []credits.Plan{{ID: "sub", Allowance: &credits.Allowance{Amount: whole(7), Period: credits.PeriodWeek}}}})
		if err != nil {
			t.Fatal(err)
		}
		h := NewHarness(t, newStore(t), func(c *credits.Config) { c.Signup = credits.Reward{}; c.Catalog = cat })
		h.Account(t, credits.CreateAccountRequest{ID: "alice", Plan: "sub"})
		q, err := h.Ledger.QuoteFor(h.Ctx, "alice", credits.QuoteRequest{Tool: "image"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.Ledger.Charge(h.Ctx, credits.ChargeRequest{Account: "alice", Quote: q, Key: "c"}); err != nil {
			t.Fatal(err)
		}
		// Nothing is left to expire, so only the renewal makes it due.
		week := start.Add(7 * 24 * time.Hour)
		at(h, week)
		if r := sweep(t, h); r.Accounts != 1 || r.AllowancesGranted != 1 || r.GrantsExpired != 0 {
			t.Fatalf("sweep at the week's end: %+v, want the account renewed", r)
		}
		st, err := h.Store.View(h.Ctx, credits.Query{Account: "alice"})
		if err != nil || st.Account.Available != whole(7) || !st.Account.RenewsAt.Equal(week.Add(7*24*time.Hour)) {
			t.Fatalf("stored after the sweep: %+v, %v", st.Account, err)
		}
		CheckInvariants(t, h, "alice")
	})

	t.Run("OneRenewalUnder64Goroutines", func(t *testing.T) {
		h := setup(t, "pro")
		at(h, end.Add(-time.Second))
		q, err := h.Ledger.QuoteFor(h.Ctx, "alice", credits.QuoteRequest{Tool: "image"}) // 6.3 on pro, valid past the end
		if err != nil {
			t.Fatal(err)
		}
		at(h, end)
		hammer(t, 64, func(g int) (err error) {
			switch g % 4 {
			case 0:
				_, err = h.Ledger.Balance(h.Ctx, "alice")
			case 1:
				_, err = h.Ledger.Sweep(h.Ctx)
			default:
				_, err = h.Ledger.Charge(h.Ctx, credits.ChargeRequest{Account: "alice", Quote: q, Key: fmt.Sprint("c-", g)})
			}
			return err
		})
		var renewals []string
		for _, e := range h.History(t, "alice") {
			if e.Type == credits.EntryGrant && e.At.Equal(end) {
				renewals = append(renewals, e.Amount.String())
			}
		}
		// The rollover (100 of the 500 unused) and the period's 500, once.
		wantLines(t, "the grants at the period's start", renewals, "100", "500")
		CheckInvariants(t, h, "alice")
	})
}

package storetest

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creditkit/credits"
)

// RunMemberLimits checks team members' spending limits on a store: the
// refusal with what remains, recorded under its key; holds counting while
// open and coming back on release, on a capture's unused part and on a
// refund; a new period starting afresh; the limit held under 64 goroutines
// of one member and of several; bad input writing nothing. [Run] runs it.
func RunMemberLimits(t *testing.T, newStore NewStore) {
	image := credits.QuoteRequest{Tool: "image"} // 7
	setup := func(t *testing.T, limits credits.MemberLimitsRequest) *Harness {
		h := NewHarness(t, newStore(t), noSignup)
		h.Account(t, credits.CreateAccountRequest{ID: "team", Team: true, Members: []string{"m1", "m2", "m3", "m4"}})
		grant(t, h, "team", whole(100000), credits.KindPurchase, time.Time{}, "fund")
		limits.Account, limits.Key = "team", "limits"
		if _, err := h.Ledger.SetMemberLimits(h.Ctx, limits); err != nil {
			t.Fatal(err)
		}
		return h
	}
	usage := func(t *testing.T, h *Harness) string {
		t.Helper()
		rep, err := h.Ledger.Spending(h.Ctx, credits.SpendingRequest{Account: "team", By: credits.ByMember})
		if err != nil {
			t.Fatal(err)
		}
		s := ""
		for _, u := range rep.Members {
			if u.Limit == nil {
				s += fmt.Sprintf("%s:%s/- ", u.Member, u.Used)
			} else {
				s += fmt.Sprintf("%s:%s/%s ", u.Member, u.Used, *u.Limit)
			}
		}
		return s
	}
	wantUsage := func(t *testing.T, h *Harness, want string) {
		t.Helper()
		if got := usage(t, h); got != want {
			t.Fatalf("usage: %q, want %q", got, want)
		}
	}
	d30 := whole(30)

	t.Run("RefusedWithWhatRemains", func(t *testing.T) {
		h := setup(t, credits.MemberLimitsRequest{Period: credits.PeriodMonth, Default: &d30, Members: map[string]credits.Credits{"m1": whole(50), "m3": {}}})
		wantUsage(t, h, "m1:0/50 m2:0/30 m3:0/0 m4:0/30 ")
		video := h.Quote(t, credits.QuoteRequest{Tool: "video", Resolution: "720p", Duration: 5 * time.Second}) // 40
		r, err := h.Ledger.Reserve(h.Ctx, credits.ReserveRequest{Account: "team", Member: "m1", Quote: video, Key: "v1"})
		if err != nil {
			t.Fatal(err)
		}
		wantUsage(t, h, "m1:40/50 m2:0/30 m3:0/0 m4:0/30 ") // an open hold counts
		img := h.Quote(t, image)
		twice := credits.ChargeRequest{Account: "team", Member: "m1", Quote: h.Quote(t, credits.QuoteRequest{Tool: "image", Images: 2}), Key: "i2"}
		for range 2 { // refused, and the refusal is recorded under its key
			_, err = h.Ledger.Charge(h.Ctx, twice)
			var le *credits.MemberLimitError
			if !errors.As(err, &le) || !errors.Is(err, credits.ErrMemberLimit) || le.Member != "m1" || le.Limit != whole(50) || le.Used != whole(40) ||
				le.Requested != whole(14) || le.Remaining() != whole(10) || le.Period != credits.PeriodMonth {
				t.Fatalf("14 more of m1's 50 with 40 used: %v (%+v)", err, le)
			}
		}
		if _, err := h.Ledger.Charge(h.Ctx, credits.ChargeRequest{Account: "team", Member: "m3", Quote: img, Key: "m3"}); !errors.Is(err, credits.ErrMemberLimit) {
			t.Fatalf("m3, whose limit is zero: %v", err)
		}
		// The capture's unused part comes back: 40 held, 24 charged.
		if _, err := h.Ledger.Capture(h.Ctx, credits.CaptureRequest{Hold: r.Hold.ID, Usage: credits.Usage{Duration: 3 * time.Second}}); err != nil {
			t.Fatal(err)
		}
		wantUsage(t, h, "m1:24/50 m2:0/30 m3:0/0 m4:0/30 ")
		c, err := h.Ledger.Charge(h.Ctx, credits.ChargeRequest{Account: "team", Member: "m1", Quote: img, Key: "i1"})
		if err != nil {
			t.Fatal(err)
		}
		// A refund gives back; so does a release.
		if _, err := h.Ledger.Refund(h.Ctx, credits.RefundRequest{Charge: c.Hold.ID, Amount: whole(3), Key: "refund"}); err != nil {
			t.Fatal(err)
		}
		wantUsage(t, h, "m1:28/50 m2:0/30 m3:0/0 m4:0/30 ")
		r2, err := h.Ledger.Reserve(h.Ctx, credits.ReserveRequest{Account: "team", Member: "m2", Quote: h.Quote(t, credits.QuoteRequest{Tool: "avatar-video", Resolution: "720p", Duration: 10 * time.Second}), Key: "a2"})
		if err != nil {
			t.Fatal(err)
		}
		wantUsage(t, h, "m1:28/50 m2:30/30 m3:0/0 m4:0/30 ")
		if _, err := h.Ledger.Release(h.Ctx, credits.ReleaseRequest{Hold: r2.Hold.ID}); err != nil {
			t.Fatal(err)
		}
		wantUsage(t, h, "m1:28/50 m2:0/30 m3:0/0 m4:0/30 ")
		CheckInvariants(t, h, "team")
	})

	t.Run("NewPeriodStartsAfresh", func(t *testing.T) {
		h := setup(t, credits.MemberLimitsRequest{Period: credits.PeriodDay, Members: map[string]credits.Credits{"m1": whole(14)}})
		q := h.Quote(t, image)
		for i := range 2 {
			if _, err := h.Ledger.Reserve(h.Ctx, credits.ReserveRequest{Account: "team", Member: "m1", Quote: q, Key: fmt.Sprint("r", i), TTL: 20 * time.Hour}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := h.Ledger.Charge(h.Ctx, credits.ChargeRequest{Account: "team", Member: "m1", Quote: q, Key: "over"}); !errors.Is(err, credits.ErrMemberLimit) {
			t.Fatalf("a third image the same day: %v", err)
		}
		h.Clock.Set(time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)) // midnight: a new day
		wantUsage(t, h, "m1:0/14 m2:0/- m3:0/- m4:0/- ")
		q = h.Quote(t, image)
		if _, err := h.Ledger.Charge(h.Ctx, credits.ChargeRequest{Account: "team", Member: "m1", Quote: q, Key: "today"}); err != nil {
			t.Fatalf("the first image of a new day: %v", err)
		}
		wantUsage(t, h, "m1:7/14 m2:0/- m3:0/- m4:0/- ")
		// Yesterday's holds expire today (06:00) without giving anything
		// back to today's usage.
		h.Clock.Set(time.Date(2026, 11, 26, 11, 0, 0, 0, time.UTC))
		wantUsage(t, h, "m1:7/14 m2:0/- m3:0/- m4:0/- ")
		CheckInvariants(t, h, "team")
	})

	t.Run("ChangingLimitsKeepsTheUsage", func(t *testing.T) {
		// A found bug: setting another period length (or removing the
		// limits and setting them again) started counting from zero, and
		// a member could spend their limit again in the same month.
		h := setup(t, credits.MemberLimitsRequest{Period: credits.PeriodMonth, Members: map[string]credits.Credits{"m1": whole(14)}})
		q := h.Quote(t, image)
		if _, err := h.Ledger.Reserve(h.Ctx, credits.ReserveRequest{Account: "team", Member: "m1", Quote: q, Key: "r"}); err != nil {
			t.Fatal(err)
		}
		if _, err := h.Ledger.Charge(h.Ctx, credits.ChargeRequest{Account: "team", Member: "m1", Quote: q, Key: "c"}); err != nil {
			t.Fatal(err)
		}
		for i, p := range []credits.Period{credits.PeriodDay, "", credits.PeriodMonth} {
			req := credits.MemberLimitsRequest{Account: "team", Period: p, Key: fmt.Sprint("change-", i)}
			if p != "" {
				req.Members = map[string]credits.Credits{"m1": whole(14)}
			}
			if _, err := h.Ledger.SetMemberLimits(h.Ctx, req); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := h.Ledger.Charge(h.Ctx, credits.ChargeRequest{Account: "team", Member: "m1", Quote: q, Key: "over"}); !errors.Is(err, credits.ErrMemberLimit) {
			t.Fatalf("a third image of 7 under a monthly limit of 14, after the limits changed and came back: %v", err)
		}
		wantUsage(t, h, "m1:14/14 m2:0/- m3:0/- m4:0/- ")
		CheckInvariants(t, h, "team")
	})

	t.Run("LimitsSetAfterSpendingCountIt", func(t *testing.T) {
		h := setup(t, credits.MemberLimitsRequest{}) // no limits yet: the usage is kept all the same
		video := h.Quote(t, credits.QuoteRequest{Tool: "video", Resolution: "720p", Duration: 5 * time.Second})
		if _, err := h.Ledger.Reserve(h.Ctx, credits.ReserveRequest{Account: "team", Member: "m1", Quote: video, Key: "v"}); err != nil {
			t.Fatal(err)
		}
		wantUsage(t, h, "m1:40/- m2:0/- m3:0/- m4:0/- ")
		if _, err := h.Ledger.SetMemberLimits(h.Ctx, credits.MemberLimitsRequest{Account: "team", Period: credits.PeriodWeek, Default: new(whole(50)), Key: "now"}); err != nil {
			t.Fatal(err)
		}
		wantUsage(t, h, "m1:40/50 m2:0/50 m3:0/50 m4:0/50 ")
		_, err := h.Ledger.Charge(h.Ctx, credits.ChargeRequest{Account: "team", Member: "m1", Quote: h.Quote(t, credits.QuoteRequest{Tool: "image", Images: 2}), Key: "i"})
		if !errors.Is(err, credits.ErrMemberLimit) {
			t.Fatalf("14 more with 40 held of a new limit of 50: %v", err)
		}
		CheckInvariants(t, h, "team")
	})

	t.Run("OneMemberUnder64Goroutines", func(t *testing.T) {
		h := setup(t, credits.MemberLimitsRequest{Period: credits.PeriodMonth, Members: map[string]credits.Credits{"m1": whole(100)}})
		q := h.Quote(t, image)
		var accepted atomic.Int64
		hammer(t, 64, func(g int) error {
			_, err := h.Ledger.Charge(h.Ctx, credits.ChargeRequest{Account: "team", Member: "m1", Quote: q, Key: fmt.Sprint("c", g)})
			if err == nil {
				accepted.Add(1)
			}
			if errors.Is(err, credits.ErrMemberLimit) {
				return nil
			}
			return err
		})
		if accepted.Load() != 14 { // 14 × 7 = 98 of 100
			t.Fatalf("%d charges of 7 accepted under a limit of 100, want 14", accepted.Load())
		}
		wantUsage(t, h, "m1:98/100 m2:0/- m3:0/- m4:0/- ")
		CheckInvariants(t, h, "team")
	})

	t.Run("SeveralMembersUnder64Goroutines", func(t *testing.T) {
		h := setup(t, credits.MemberLimitsRequest{Period: credits.PeriodWeek, Default: new(whole(50))})
		q := h.Quote(t, image)
		var accepted [4]atomic.Int64
		hammer(t, 64, func(g int) error {
			_, err := h.Ledger.Charge(h.Ctx, credits.ChargeRequest{Account: "team", Member: fmt.Sprint("m", g%4+1), Quote: q, Key: fmt.Sprint("c", g)})
			if err == nil {
				accepted[g%4].Add(1)
			}
			if errors.Is(err, credits.ErrMemberLimit) {
				return nil
			}
			return err
		})
		for i := range accepted {
			if n := accepted[i].Load(); n != 7 { // 7 × 7 = 49 of 50
				t.Fatalf("m%d: %d charges of 7 accepted under a limit of 50, want 7", i+1, n)
			}
		}
		wantUsage(t, h, "m1:49/50 m2:49/50 m3:49/50 m4:49/50 ")
		CheckInvariants(t, h, "team")
	})

	t.Run("BadInputWritesNothing", func(t *testing.T) {
		h := setup(t, credits.MemberLimitsRequest{Period: credits.PeriodMonth, Default: &d30})
		h.Account(t, credits.CreateAccountRequest{ID: "solo"})
		n := len(h.History(t, "team"))
		neg := whole(-1)
		for _, c := range []struct {
			name string
			req  credits.MemberLimitsRequest
			want error
		}{
			{"a personal account", credits.MemberLimitsRequest{Account: "solo", Period: credits.PeriodDay, Default: &d30, Key: "k"}, credits.ErrInvalidRequest},
			{"a negative default", credits.MemberLimitsRequest{Account: "team", Period: credits.PeriodDay, Default: &neg, Key: "k"}, credits.ErrInvalidAmount},
			{"a negative limit", credits.MemberLimitsRequest{Account: "team", Period: credits.PeriodDay, Members: map[string]credits.Credits{"m1": neg}, Key: "k"}, credits.ErrInvalidAmount},
			{"a period of zero", credits.MemberLimitsRequest{Account: "team", Default: &d30, Key: "k"}, credits.ErrInvalidRequest},
			{"an unknown period", credits.MemberLimitsRequest{Account: "team", Period: "year", Default: &d30, Key: "k"}, credits.ErrInvalidRequest},
			{"a period without limits", credits.MemberLimitsRequest{Account: "team", Period: credits.PeriodDay, Key: "k"}, credits.ErrInvalidRequest},
			{"a limit for a non-member", credits.MemberLimitsRequest{Account: "team", Period: credits.PeriodDay, Members: map[string]credits.Credits{"stranger": d30}, Key: "k"}, credits.ErrNotMember},
			{"no key", credits.MemberLimitsRequest{Account: "team", Period: credits.PeriodDay, Default: &d30}, credits.ErrInvalidRequest},
			{"an unknown account", credits.MemberLimitsRequest{Account: "nobody", Period: credits.PeriodDay, Default: &d30, Key: "k"}, credits.ErrUnknownAccount},
		} {
			_, err := h.Ledger.SetMemberLimits(h.Ctx, c.req)
			wantErr(t, "SetMemberLimits, "+c.name, err, c.want)
		}
		if len(h.History(t, "team")) != n {
			t.Fatal("a refused SetMemberLimits wrote an entry")
		}
		wantUsage(t, h, "m1:0/30 m2:0/30 m3:0/30 m4:0/30 ")
		// Removing every limit.
		if _, err := h.Ledger.SetMemberLimits(h.Ctx, credits.MemberLimitsRequest{Account: "team", Key: "k"}); err != nil {
			t.Fatal(err)
		}
		wantUsage(t, h, "m1:0/- m2:0/- m3:0/- m4:0/- ")
	})
}

// hammer runs f(0)…f(n-1) on n goroutines at once and fails on the first
// error.
func hammer(t *testing.T, n int, f func(g int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for g := range n {
		wg.Go(func() { errs <- f(g) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

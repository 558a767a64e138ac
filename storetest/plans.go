package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creditkit/credits"
)

// RunPlans checks that an account's plan is the account's: quotes priced
// with another plan are refused and write nothing, plan changes are
// recorded in the history, holds keep the price they were made at, and a
// plan flipped while 64 goroutines reserve never lets a hold through at
// another plan's price. [Run] runs it.
func RunPlans(t *testing.T, newStore NewStore) {
	video := credits.QuoteRequest{Tool: "video", Resolution: "720p", Duration: 5 * time.Second} // 8/s → 40; pro 36; studio 32
	setup := func(t *testing.T) *Harness {
		h := NewHarness(t, newStore(t), noSignup)
		h.Account(t, credits.CreateAccountRequest{ID: "alice"})
		grant(t, h, "alice", whole(5000), credits.KindPurchase, time.Time{}, "fund")
		return h
	}

	t.Run("ForgedPlanRefused", func(t *testing.T) {
		h := setup(t)
		before, hist := h.Balance(t, "alice"), len(h.History(t, "alice"))
		forged := h.Quote(t, credits.QuoteRequest{Tool: video.Tool, Resolution: video.Resolution, Duration: video.Duration, Plan: "studio"}) // 32, not 40
		_, err := h.Ledger.Reserve(h.Ctx, credits.ReserveRequest{Account: "alice", Quote: forged, Key: "r"})
		wantPlanMismatch(t, "Reserve", err, "alice", "", "studio")
		_, err = h.Ledger.Charge(h.Ctx, credits.ChargeRequest{Account: "alice", Quote: forged, Key: "c"})
		wantPlanMismatch(t, "Charge", err, "alice", "", "studio")
		_, err = h.Ledger.Run(h.Ctx, credits.ReserveRequest{Account: "alice", Quote: forged, Key: "run"},
			func(context.Context, credits.Hold) (credits.Usage, error) {
				t.Fatal("Run ran a job on a forged quote")
				return credits.Usage{}, nil
			})
		wantPlanMismatch(t, "Run", err, "alice", "", "studio")
		studioReq := video
		studioReq.Plan = "studio"
		_, err = h.Ledger.QuoteFor(h.Ctx, "alice", studioReq)
		wantPlanMismatch(t, "QuoteFor", err, "alice", "", "studio")
		if after := h.Balance(t, "alice"); after != before || len(h.History(t, "alice")) != hist {
			t.Fatalf("a refused forged quote wrote something: balance %+v → %+v, %d → %d entries", before, after, hist, len(h.History(t, "alice")))
		}
		// Nothing was recorded under the keys: the right quote goes through.
		q, err := h.Ledger.QuoteFor(h.Ctx, "alice", video)
		if err != nil || q.Plan != "" || q.Total != whole(40) {
			t.Fatalf("QuoteFor alice: %+v, %v; want the list price 40", q, err)
		}
		if _, err := h.Ledger.Reserve(h.Ctx, credits.ReserveRequest{Account: "alice", Quote: q, Key: "r"}); err != nil {
			t.Fatalf("Reserve at alice's price under the key a forged quote was refused under: %v", err)
		}
		CheckInvariants(t, h, "alice")
	})

	t.Run("PlanChange", func(t *testing.T) {
		h := setup(t)
		list := h.Quote(t, video)
		early := reserve(t, h, "alice", list, "early")

		pro := "pro"
		req := credits.UpdateAccountRequest{Account: "alice", Plan: &pro, Key: "to-pro"}
		res, err := h.Ledger.UpdateAccount(h.Ctx, req)
		if err != nil || !res.Changed || res.Account.Plan != "pro" || res.Replayed {
			t.Fatalf("UpdateAccount to pro: %+v, %v", res, err)
		}
		hist := h.History(t, "alice")
		if last := hist[len(hist)-2]; last.Type != credits.EntryAccount || last.Plan != "pro" || !last.Amount.IsZero() || last.Key != "to-pro" || last.Note != `plan no plan → plan "pro"` {
			t.Fatalf("the plan change's entry: %+v", last)
		}
		// Joining pro grants its monthly allowance at once.
		if g := hist[len(hist)-1]; g.Type != credits.EntryGrant || g.Kind != credits.KindPlan || g.Amount != whole(500) {
			t.Fatalf("joining pro: %+v, want its allowance of 500", g)
		}
		again, err := h.Ledger.UpdateAccount(h.Ctx, req)
		if err != nil || !again.Replayed || again.Account.Plan != "pro" || !again.Changed || len(h.History(t, "alice")) != len(hist) {
			t.Fatalf("UpdateAccount retried: %+v, %v", again, err)
		}
		studio := "studio"
		_, err = h.Ledger.UpdateAccount(h.Ctx, credits.UpdateAccountRequest{Account: "alice", Plan: &studio, Key: "to-pro"})
		var ce *credits.IdempotencyConflictError
		if !errors.As(err, &ce) || fmt.Sprint(ce.Fields) != "[plan]" {
			t.Fatalf("the key of a plan change reused for another plan: %v, want a conflict naming plan", err)
		}

		// The old price is refused from now on; the new one is what
		// QuoteFor shows and what Reserve takes.
		_, err = h.Ledger.Reserve(h.Ctx, credits.ReserveRequest{Account: "alice", Quote: list, Key: "late"})
		wantPlanMismatch(t, "Reserve at the old plan's price", err, "alice", "pro", "")
		q, err := h.Ledger.QuoteFor(h.Ctx, "alice", video)
		if err != nil || q.Plan != "pro" || q.Total != whole(36) {
			t.Fatalf("QuoteFor alice on pro: %+v, %v; want 36", q, err)
		}
		late := reserve(t, h, "alice", q, "late")
		// A hold keeps the price it was made at.
		for _, c := range []struct {
			hold credits.Hold
			want credits.Credits
		}{{early, whole(40)}, {late, whole(36)}} {
			got, err := h.Ledger.Capture(h.Ctx, credits.CaptureRequest{Hold: c.hold.ID})
			if err != nil || got.Charged != c.want {
				t.Fatalf("Capture of %s: %+v, %v; want %s", c.hold.ID, got, err, c.want)
			}
		}

		// The same plan again changes nothing and appends nothing.
		n := len(h.History(t, "alice"))
		same, err := h.Ledger.UpdateAccount(h.Ctx, credits.UpdateAccountRequest{Account: "alice", Plan: &pro, Key: "pro-again"})
		if err != nil || same.Changed || len(h.History(t, "alice")) != n {
			t.Fatalf("UpdateAccount to the plan it is on: %+v, %v", same, err)
		}
		// Threshold and metadata; an empty map clears the metadata.
		th := whole(25)
		upd, err := h.Ledger.UpdateAccount(h.Ctx, credits.UpdateAccountRequest{Account: "alice", LowBalanceThreshold: &th, Metadata: map[string]string{"tier": "gold"}, Key: "meta"})
		if err != nil || !upd.Changed || upd.Account.Plan != "pro" || upd.Account.LowBalanceThreshold != th || upd.Account.Metadata["tier"] != "gold" {
			t.Fatalf("UpdateAccount threshold and metadata: %+v, %v", upd, err)
		}
		cleared, err := h.Ledger.UpdateAccount(h.Ctx, credits.UpdateAccountRequest{Account: "alice", Metadata: map[string]string{}, Key: "clear"})
		if err != nil || !cleared.Changed || cleared.Account.Metadata != nil || cleared.Account.LowBalanceThreshold != th {
			t.Fatalf("UpdateAccount clearing metadata: %+v, %v", cleared, err)
		}
		hist = h.History(t, "alice")
		if notes := fmt.Sprint(hist[len(hist)-2].Note, " | ", hist[len(hist)-1].Note); notes != "low-balance threshold 0 → 25; metadata | metadata" {
			t.Fatalf("the update entries say %q", notes)
		}
		CheckInvariants(t, h, "alice")
	})

	t.Run("BadInputWritesNothing", func(t *testing.T) {
		h := setup(t)
		_, err := h.Ledger.CreateAccount(h.Ctx, credits.CreateAccountRequest{ID: "bob", Plan: "platinum"})
		wantErr(t, "CreateAccount on an unknown plan", err, credits.ErrUnknownPlan)
		if _, err := h.Ledger.Balance(h.Ctx, "bob"); !errors.Is(err, credits.ErrUnknownAccount) {
			t.Fatalf("an account refused for its plan exists: %v", err)
		}
		before, hist := h.Balance(t, "alice"), len(h.History(t, "alice"))
		bad, neg, ok := "platinum", whole(-1), "studio"
		for _, c := range []struct {
			name string
			req  credits.UpdateAccountRequest
			want error
		}{
			{"unknown plan", credits.UpdateAccountRequest{Account: "alice", Plan: &bad, Key: "k"}, credits.ErrUnknownPlan},
			{"negative threshold", credits.UpdateAccountRequest{Account: "alice", LowBalanceThreshold: &neg, Key: "k"}, credits.ErrInvalidAmount},
			{"no key", credits.UpdateAccountRequest{Account: "alice", Plan: &ok}, credits.ErrInvalidRequest},
			{"no account", credits.UpdateAccountRequest{Plan: &ok, Key: "k"}, credits.ErrInvalidRequest},
			{"unknown account", credits.UpdateAccountRequest{Account: "nobody", Plan: &ok, Key: "k"}, credits.ErrUnknownAccount},
		} {
			_, err := h.Ledger.UpdateAccount(h.Ctx, c.req)
			wantErr(t, "UpdateAccount, "+c.name, err, c.want)
		}
		if after := h.Balance(t, "alice"); after != before || len(h.History(t, "alice")) != hist || accountPlan(t, h, "alice") != "" {
			t.Fatalf("refused updates wrote something: %+v → %+v", before, after)
		}
		// The refused request under "k" was not recorded: a valid one goes through.
		res, err := h.Ledger.UpdateAccount(h.Ctx, credits.UpdateAccountRequest{Account: "alice", Plan: &ok, Key: "k"})
		if err != nil || res.Account.Plan != "studio" {
			t.Fatalf("UpdateAccount under a key only refused requests used: %+v, %v", res, err)
		}
	})

	t.Run("PlanFlipsUnderLoad", func(t *testing.T) {
		h := setup(t)
		quotes := map[string]credits.Quote{}
		for _, p := range []string{"", "pro", "studio"} {
			r := video
			r.Plan = p
			quotes[p] = h.Quote(t, r)
		}
		var accepted atomic.Int64
		hammer(t, 64, func(g int) error {
			plan := []string{"", "pro", "studio"}[g%3]
			if g%8 == 0 {
				_, err := h.Ledger.UpdateAccount(h.Ctx, credits.UpdateAccountRequest{Account: "alice", Plan: &plan, Key: fmt.Sprint("flip-", g)})
				return err
			}
			_, err := h.Ledger.Reserve(h.Ctx, credits.ReserveRequest{Account: "alice", Quote: quotes[plan], Key: fmt.Sprint("r-", g)})
			switch {
			case err == nil:
				accepted.Add(1)
			case errors.Is(err, credits.ErrWrongPlan), errors.Is(err, credits.ErrInsufficientCredits):
				err = nil
			}
			return err
		})
		if accepted.Load() == 0 {
			t.Fatal("no reserve was accepted while the plan flipped")
		}
		// Every accepted hold was priced with the plan the history says
		// the account was on when it was made.
		CheckInvariants(t, h, "alice")
	})
}

func wantPlanMismatch(t *testing.T, what string, err error, account, plan, quotePlan string) {
	t.Helper()
	var pe *credits.PlanMismatchError
	if !errors.As(err, &pe) || pe.Account != account || pe.Plan != plan || pe.QuotePlan != quotePlan ||
		!errors.Is(err, credits.ErrWrongPlan) || !errors.Is(err, credits.ErrQuoteMismatch) {
		t.Fatalf("%s: %v; want a *PlanMismatchError (account %q on %q, quote of %q)", what, err, account, plan, quotePlan)
	}
}

func accountPlan(t *testing.T, h *Harness, account string) string {
	t.Helper()
	st, err := h.Store.View(h.Ctx, credits.Query{Account: account})
	if err != nil || st.Account == nil {
		t.Fatalf("View(%q): %+v, %v", account, st, err)
	}
	return st.Account.Plan
}

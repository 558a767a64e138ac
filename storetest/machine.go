package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"

	"github.com/creditkit/credits"
)

// RunStateMachine runs the rapid state machine: random interleavings of
// grants, daily claims, reserves, captures, releases, charges, refunds, job
// runs, retries with the same key, the same key with a different request,
// clock jumps (to exact deadlines too) and sweeps, and, on a store that
// implements [Batcher], several of these run as one batch, on a fresh store per run,
// each step checked against the reference model and every invariant checked
// after every step.
//
// All runs share one store (so that a SQL store is not created a hundred
// times); each run works on accounts of its own.
func RunStateMachine(t *testing.T, newStore NewStore) {
	store := newStore(t)
	run := 0
	rapid.Check(t, func(rt *rapid.T) {
		run++
		m := newMachine(rt, store, fmt.Sprintf("r%d-", run))
		rt.Repeat(rapid.StateMachineActions(m))
	})
}

type pastCall struct {
	desc    string
	again   func() (any, error) // the identical request
	variant func() error        // a different request under the same key
	result  any
	err     error
}

type machine struct {
	h        *Harness
	m        *model
	accounts []*mAccount
	holds    []*mHold
	past     []*pastCall
	keys     int
	daily    map[string]map[string]credits.GrantResult // account → day → first claim
	ordered  *orderedStore                             // when the store is a Batcher
}

var (
	signup = credits.Reward{Amount: credits.Whole(20), ValidFor: 48 * time.Hour}
	daily  = credits.Reward{Amount: credits.Whole(5), ValidFor: 24 * time.Hour}
)

func newMachine(t *rapid.T, store credits.Store, prefix string) *machine {
	var ordered *orderedStore
	if b, ok := store.(Batcher); ok {
		ordered = &orderedStore{Batcher: b}
		store = ordered
	}
	h := NewHarness(t, store, func(c *credits.Config) {
		c.Catalog = machineCatalog()
		c.Signup = signup
		c.Daily = daily
		c.OnLowBalance = nil
		c.ExpiryWarning = 2 * time.Hour // warnings interleave with expiries, deadlines and renewals
	})
	mc := &machine{h: h, m: &model{grace: 24 * time.Hour, plans: machineAllowances}, daily: map[string]map[string]credits.GrantResult{}, ordered: ordered}
	soloPlan := rapid.SampledFrom(plans).Draw(t, "solo plan")
	for _, req := range []credits.CreateAccountRequest{{ID: prefix + "solo", Plan: soloPlan}, {ID: prefix + "team", Team: true, Members: []string{"m1", "m2"}}} {
		res, err := h.Ledger.CreateAccount(h.Ctx, req)
		if err != nil {
			t.Fatalf("create %s: %v", req.ID, err)
		}
		if res.Account.Plan != req.Plan {
			t.Fatalf("create %s on plan %q: the account says plan %q", req.ID, req.Plan, res.Account.Plan)
		}
		a := &mAccount{id: req.ID, plan: req.Plan, team: req.Team, members: req.Members, records: map[string]mOutcome{}}
		// Joining the plan's allowance comes before the signup grant; a
		// team gets no signup credits: fund it.
		mc.m.sync(a, h.Clock.Now())
		if req.Team {
			if _, err := h.Ledger.Grant(h.Ctx, credits.GrantRequest{Account: req.ID, Amount: signup.Amount, Kind: credits.KindPurchase, Key: "fund"}); err != nil {
				t.Fatalf("fund %s: %v", req.ID, err)
			}
			mc.m.grant(a, credits.KindPurchase, signup.Amount.Units(), time.Time{})
		} else {
			mc.m.grant(a, credits.KindSignup, signup.Amount.Units(), h.Clock.Now().Add(signup.ValidFor))
		}
		if b := h.Balance(t, req.ID); b.Available != credits.FromUnits(a.available()) || res.Replayed {
			t.Fatalf("signup: %+v", res)
		}
		mc.accounts = append(mc.accounts, a)
	}
	return mc
}

func (mc *machine) now() time.Time { return mc.h.Clock.Now() }

func (mc *machine) key(prefix string) string {
	mc.keys++
	return fmt.Sprintf("%s-%d", prefix, mc.keys)
}

func (mc *machine) account(t *rapid.T) *mAccount {
	return rapid.SampledFrom(mc.accounts).Draw(t, "account")
}

func (mc *machine) member(t *rapid.T, a *mAccount) string {
	if !a.team {
		return rapid.SampledFrom([]string{"", "someone"}).Draw(t, "member")
	}
	return rapid.SampledFrom([]string{"m1", "m2", "m1", "m2", "outsider"}).Draw(t, "member")
}

// plans are the plans an account may be on, and a quote priced with.
var plans = []string{"", "pro", "studio", "max"}

// machineAllowances are the allowances of the machine's catalog, in the
// model's terms: pro and studio renew every day (the machine's clock jumps
// cross many days: renewals, rollovers, skipped days, upgrades and
// downgrades between the two), max every calendar month.
var machineAllowances = map[string]mAllowance{
	"pro":    {amount: 10_000, rollover: 5_000, period: credits.PeriodDay},
	"studio": {amount: 25_000, rollover: 25_000, period: credits.PeriodDay},
	"max":    {amount: 100_000, rollover: 50_000, period: credits.PeriodMonth},
}

// machineCatalog is the default catalog with the machine's plans and
// allowances.
func machineCatalog() *credits.Catalog {
	cfg := credits.DefaultCatalog().Config()
	cfg.Version = "storetest-machine"
	cfg.Plans = append(cfg.Plans, credits.Plan{ID: "max", Name: "Max", DiscountBasisPoints: 3000})
	for i := range cfg.Plans {
		p := &cfg.Plans[i]
		a := machineAllowances[p.ID]
		p.Allowance = &credits.Allowance{Amount: credits.FromUnits(a.amount), RolloverMax: credits.FromUnits(a.rollover), Period: a.period}
	}
	c, err := credits.NewCatalog(cfg)
	if err != nil {
		panic(err)
	}
	return c
}

// quote prices a random request for a: mostly with a's plan (as
// Ledger.QuoteFor does), sometimes with another one, which Reserve and
// Charge must refuse.
func (mc *machine) quote(t *rapid.T, a *mAccount) credits.Quote {
	var req credits.QuoteRequest
	switch rapid.IntRange(0, 4).Draw(t, "tool") {
	case 0:
		req = credits.QuoteRequest{Tool: "image", Images: rapid.IntRange(1, 3).Draw(t, "images")}
	case 1:
		req = credits.QuoteRequest{Tool: "upscale"}
	case 2:
		req = credits.QuoteRequest{Tool: "video", Resolution: rapid.SampledFrom([]string{"480p", "720p"}).Draw(t, "res"),
			Duration: time.Duration(rapid.IntRange(500, 8000).Draw(t, "ms")) * time.Millisecond}
	case 3:
		req = credits.QuoteRequest{Tool: "avatar-video", Resolution: "480p", Duration: time.Duration(rapid.IntRange(1, 20).Draw(t, "s")) * time.Second}
	default:
		req = credits.QuoteRequest{Tool: "video-pro", Resolution: "1080p", Duration: time.Second}
	}
	if rapid.IntRange(0, 5).Draw(t, "forge plan") == 0 {
		req.Plan = rapid.SampledFrom(plans).Draw(t, "quote plan")
		q, err := mc.h.Ledger.Quote(req)
		if err != nil {
			t.Fatalf("quote %+v: %v", req, err)
		}
		return q
	}
	q, err := mc.h.Ledger.QuoteFor(mc.h.Ctx, a.id, req)
	if err != nil {
		t.Fatalf("quote %+v for %s: %v", req, a.id, err)
	}
	if q.Plan != a.plan {
		t.Fatalf("QuoteFor(%s) priced with plan %q; the account is on %q", a.id, q.Plan, a.plan)
	}
	return q
}

// wrongPlan checks a refusal of a quote priced with another plan than the
// account's: it names both plans, and it is not recorded (nothing was
// written), so the same request is refused again the same way.
func (mc *machine) wrongPlan(t *rapid.T, what string, a *mAccount, q credits.Quote, err error, again func() error) {
	var pe *credits.PlanMismatchError
	if !errors.As(err, &pe) || pe.Account != a.id || pe.Plan != a.plan || pe.QuotePlan != q.Plan || !errors.Is(err, credits.ErrQuoteMismatch) {
		t.Fatalf("%s with a quote of plan %q on %s (plan %q): %v, want a *PlanMismatchError naming both", what, q.Plan, a.id, a.plan, err)
	}
	if err := again(); !errors.Is(err, credits.ErrWrongPlan) {
		t.Fatalf("%s again with a quote of plan %q: %v, want ErrWrongPlan again", what, q.Plan, err)
	}
}

func (mc *machine) wantAvailable(t *rapid.T, what string, a *mAccount, got credits.Credits) {
	if want := credits.FromUnits(a.available()); got != want {
		t.Fatalf("%s: result says available %s, the model %s", what, got, want)
	}
}

func (mc *machine) remember(c *pastCall) { mc.past = append(mc.past, c) }

// Grant adds a grant of a random kind, amount and expiry.
func (mc *machine) Grant(t *rapid.T) {
	a := mc.account(t)
	kind := rapid.SampledFrom([]credits.GrantKind{credits.KindPurchase, credits.KindPromo, credits.KindPlan, credits.KindAdjustment}).Draw(t, "kind")
	amount := credits.FromUnits(rapid.Int64Range(1, 60_000).Draw(t, "units"))
	var exp time.Time
	if kind != credits.KindPurchase && rapid.Bool().Draw(t, "expires") {
		exp = mc.now().Add(time.Duration(rapid.Int64Range(1, 72*60).Draw(t, "minutes")) * time.Minute)
	}
	req := credits.GrantRequest{Account: a.id, Amount: amount, Kind: kind, ExpiresAt: exp, Key: mc.key("grant")}
	res, err := mc.h.Ledger.Grant(mc.h.Ctx, req)
	if err != nil {
		t.Fatalf("grant %+v: %v", req, err)
	}
	mc.m.advance(a, mc.now())
	mc.m.grant(a, kind, amount.Units(), exp)
	a.buckets[len(a.buckets)-1].id = res.Grant.ID
	mc.wantAvailable(t, "grant", a, res.Available)
	mc.remember(&pastCall{desc: "grant", result: res,
		again: func() (any, error) { return mc.h.Ledger.Grant(mc.h.Ctx, req) },
		variant: func() error {
			r := req
			r.Amount, _ = r.Amount.Add(credits.FromUnits(1))
			_, err := mc.h.Ledger.Grant(mc.h.Ctx, r)
			return err
		}})
}

// ClaimDaily claims the daily reward: once per day, a replay after that.
func (mc *machine) ClaimDaily(t *rapid.T) {
	a := mc.account(t)
	res, err := mc.h.Ledger.ClaimDaily(mc.h.Ctx, a.id)
	if err != nil {
		t.Fatalf("claim: %v", err)
	}
	day := mc.now().UTC().Format(time.DateOnly)
	if mc.daily[a.id] == nil {
		mc.daily[a.id] = map[string]credits.GrantResult{}
	}
	if first, ok := mc.daily[a.id][day]; ok {
		first.Replayed = true
		if diff := cmp.Diff(first, res); diff != "" {
			t.Fatalf("second claim on %s is not the first's replay (-first +got):\n%s", day, diff)
		}
		return
	}
	if res.Replayed {
		t.Fatalf("first claim of %s flagged as a replay", day)
	}
	mc.daily[a.id][day] = res
	mc.m.advance(a, mc.now())
	mc.m.grant(a, credits.KindDaily, daily.Amount.Units(), mc.now().Add(daily.ValidFor))
	mc.wantAvailable(t, "claim", a, res.Available)
}

// spend runs Reserve (captureNow false) or Charge on the model and returns
// the expected error, or the new model hold.
func (mc *machine) spend(a *mAccount, member string, q credits.Quote, ttl time.Duration, charge bool) (*mHold, error) {
	mc.m.advance(a, mc.now())
	if q.Plan != a.plan {
		return nil, credits.ErrWrongPlan
	}
	if a.team && !slices.Contains(a.members, member) {
		return nil, credits.ErrNotMember
	}
	if limit, ok := a.limits.limit(member); ok && member != "" && a.limits.usedBy(member)+q.Total.Units() > limit {
		return nil, credits.ErrMemberLimit
	}
	portions, ok := mc.m.take(a, q.Total.Units(), mc.now())
	if !ok {
		return nil, credits.ErrInsufficientCredits
	}
	if ttl == 0 {
		ttl = time.Hour
	}
	if a.limits != nil && member != "" {
		for _, w := range a.limits.windows {
			w.used[member] += q.Total.Units()
		}
	}
	h := &mHold{account: a, member: member, created: mc.now(), amount: q.Total.Units(), portions: portions, status: credits.HoldOpen, deadline: mc.now().Add(ttl), quote: q, order: mc.m.next()}
	if charge {
		for i := range h.portions {
			h.portions[i].captured = h.portions[i].amount
		}
		h.status, h.captured = credits.HoldCaptured, h.amount
		h.deadline = mc.now()
		a.spent += h.amount
	} else {
		a.held += h.amount
	}
	a.holds = append(a.holds, h)
	mc.holds = append(mc.holds, h)
	return h, nil
}

func checkOutcome(t *rapid.T, what string, err, want error) {
	if want == nil && err != nil || want != nil && !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, the model expects %v", what, err, want)
	}
}

// Reserve holds a random quote, sometimes unaffordable, sometimes by an outsider.
func (mc *machine) Reserve(t *rapid.T) {
	a := mc.account(t)
	req := credits.ReserveRequest{Account: a.id, Member: mc.member(t, a), Quote: mc.quote(t, a), Key: mc.key("reserve"),
		TTL: rapid.SampledFrom([]time.Duration{0, time.Minute, 10 * time.Minute, 3 * time.Hour}).Draw(t, "ttl"), Metadata: mc.metadata(t)}
	res, err := mc.h.Ledger.Reserve(mc.h.Ctx, req)
	h, want := mc.spend(a, req.Member, req.Quote, req.TTL, false)
	checkOutcome(t, "reserve", err, want)
	if want == credits.ErrWrongPlan {
		mc.wrongPlan(t, "reserve", a, req.Quote, err, func() error { _, err := mc.h.Ledger.Reserve(mc.h.Ctx, req); return err })
		return
	}
	if err == nil {
		h.id = res.Hold.ID
		mc.wantAvailable(t, "reserve", a, res.Available)
		if res.Hold.Amount != req.Quote.Total || !res.Hold.Deadline.Equal(h.deadline) {
			t.Fatalf("hold: %+v", res.Hold)
		}
	}
	mc.remember(&pastCall{desc: "reserve", result: res, err: err,
		again: func() (any, error) { return mc.h.Ledger.Reserve(mc.h.Ctx, req) },
		variant: func() error {
			r := req
			r.Member += "x"
			_, err := mc.h.Ledger.Reserve(mc.h.Ctx, r)
			return err
		}})
}

// Charge charges a random quote in one step.
func (mc *machine) Charge(t *rapid.T) {
	a := mc.account(t)
	req := credits.ChargeRequest{Account: a.id, Member: mc.member(t, a), Quote: mc.quote(t, a), Key: mc.key("charge"), Metadata: mc.metadata(t)}
	res, err := mc.h.Ledger.Charge(mc.h.Ctx, req)
	h, want := mc.spend(a, req.Member, req.Quote, 0, true)
	checkOutcome(t, "charge", err, want)
	if want == credits.ErrWrongPlan {
		mc.wrongPlan(t, "charge", a, req.Quote, err, func() error { _, err := mc.h.Ledger.Charge(mc.h.Ctx, req); return err })
		return
	}
	if err == nil {
		h.id = res.Hold.ID
		mc.wantAvailable(t, "charge", a, res.Available)
		if res.Charged != req.Quote.Total {
			t.Fatalf("charged %s for a quote of %s", res.Charged, req.Quote.Total)
		}
	}
	mc.remember(&pastCall{desc: "charge", result: res, err: err,
		again: func() (any, error) { return mc.h.Ledger.Charge(mc.h.Ctx, req) },
		variant: func() error {
			r := req
			r.Metadata = map[string]string{"changed": "yes"}
			_, err := mc.h.Ledger.Charge(mc.h.Ctx, r)
			return err
		}})
}

// metadata is none, or some: a retry replays only if the store kept the
// hold's metadata exactly (a Reserve's or Charge's record keeps its request
// by its hold).
func (mc *machine) metadata(t *rapid.T) map[string]string {
	return rapid.SampledFrom([]map[string]string{nil, {"job": "j-1"}, {"job": "j-2", "model": "fast"}}).Draw(t, "metadata")
}

func (mc *machine) pickHold(t *rapid.T) *mHold {
	if len(mc.holds) == 0 {
		t.Skip("no holds yet")
	}
	return rapid.SampledFrom(mc.holds).Draw(t, "hold")
}

func (mc *machine) usage(t *rapid.T, q credits.Quote) credits.Usage {
	if q.Unit == credits.UnitImage {
		return credits.Usage{Images: rapid.IntRange(0, q.Images+1).Draw(t, "images")}
	}
	return credits.Usage{Duration: time.Duration(rapid.Int64Range(0, 25_000).Draw(t, "usage ms")) * time.Millisecond}
}

// settleOutcome is the rule error for capturing or releasing a hold that is
// not open, after lazy expiry.
func settleOutcome(h *mHold) error {
	switch h.status {
	case credits.HoldOpen:
		return nil
	case credits.HoldExpired:
		return credits.ErrHoldExpired
	}
	return credits.ErrHoldSettled
}

// replayed compares a call under a used key with its first outcome.
func replayed(t *rapid.T, what string, prev mOutcome, res any, err error) {
	if prev.err != nil {
		if kindOf(err) != kindOf(prev.err) {
			t.Fatalf("%s: replay of a refused request: got %v, want %v", what, err, prev.err)
		}
		return
	}
	if err != nil {
		t.Fatalf("%s: replay failed: %v", what, err)
	}
	if diff := cmp.Diff(markReplayed(prev.result), res); diff != "" {
		t.Fatalf("%s: replay differs from the first result (-first +replay):\n%s", what, diff)
	}
}

// Capture captures a random hold by random usage (over the quote too, and
// the zero Usage, which charges the quote as quoted).
func (mc *machine) Capture(t *rapid.T) {
	h := mc.pickHold(t)
	a := h.account
	u := mc.usage(t, h.quote)
	res, err := mc.h.Ledger.Capture(mc.h.Ctx, credits.CaptureRequest{Hold: h.id, Usage: u})
	key := "capture:" + h.id
	request := fmt.Sprint(u)
	// Without a key, a capture is idempotent per hold: only a success is
	// recorded, and only the same usage replays it.
	if prev, ok := a.records[key]; ok && prev.request == request {
		replayed(t, "capture", prev, res, err)
		return
	}
	mc.m.advance(a, mc.now())
	want := settleOutcome(h)
	checkOutcome(t, "capture", err, want)
	if want != nil {
		return
	}
	a.records[key] = mOutcome{request: request, result: res}
	charged := h.amount
	if u != (credits.Usage{}) {
		cost, _, cerr := h.quote.Cost(u)
		if cerr != nil {
			t.Fatalf("cost: %v", cerr)
		}
		charged = min(cost.Units(), h.amount)
	}
	if res.Charged.Units() != charged || res.Charged.Units()+res.Released.Units() != h.amount {
		t.Fatalf("capture of %v on a hold of %d: charged %s released %s, want %d", u, h.amount, res.Charged, res.Released, charged)
	}
	if res.Charged.Cmp(h.quote.Total) > 0 {
		t.Fatalf("charged %s above the quote %s", res.Charged, h.quote.Total)
	}
	revoked := a.revoked
	mc.m.capture(a, h, charged, mc.now())
	if res.Revoked.Units() != a.revoked-revoked {
		t.Fatalf("capture: revoked %s; the model %d", res.Revoked, a.revoked-revoked)
	}
	mc.m.advance(a, mc.now())
	mc.wantAvailable(t, "capture", a, res.Available)
}

// Release releases a random hold.
func (mc *machine) Release(t *rapid.T) {
	h := mc.pickHold(t)
	a := h.account
	res, err := mc.h.Ledger.Release(mc.h.Ctx, credits.ReleaseRequest{Hold: h.id})
	key := "release:" + h.id
	if prev, ok := a.records[key]; ok {
		if prev.loose {
			if err != nil || !res.Replayed {
				t.Fatalf("release after Run released: %+v %v", res, err)
			}
			return
		}
		replayed(t, "release", prev, res, err)
		return
	}
	mc.m.advance(a, mc.now())
	want := settleOutcome(h)
	checkOutcome(t, "release", err, want)
	if want != nil {
		return
	}
	a.records[key] = mOutcome{result: res}
	if res.Released.Units() != h.amount {
		t.Fatalf("released %s of a hold of %d", res.Released, h.amount)
	}
	revoked := a.revoked
	mc.m.release(a, h, mc.now())
	if res.Revoked.Units() != a.revoked-revoked {
		t.Fatalf("release: revoked %s; the model %d", res.Revoked, a.revoked-revoked)
	}
	mc.m.advance(a, mc.now())
	mc.wantAvailable(t, "release", a, res.Available)
}

// Refund refunds a random hold: all, part, or more than is left.
func (mc *machine) Refund(t *rapid.T) {
	h := mc.pickHold(t)
	a := h.account
	amount := credits.FromUnits(0)
	if rapid.Bool().Draw(t, "partial") {
		amount = credits.FromUnits(rapid.Int64Range(1, h.amount+2000).Draw(t, "refund units"))
	}
	req := credits.RefundRequest{Charge: h.id, Amount: amount, Key: mc.key("refund")}
	res, err := mc.h.Ledger.Refund(mc.h.Ctx, req)
	mc.m.advance(a, mc.now())
	left := h.captured - h.refunded
	var want error
	n := amount.Units()
	if n == 0 {
		n = left
	}
	switch {
	case h.status != credits.HoldCaptured:
		want = credits.ErrNotCaptured
	case n == 0 || n > left:
		want = credits.ErrRefundExceedsCharge
	}
	checkOutcome(t, "refund", err, want)
	if want == nil {
		if res.Refunded.Units() != n {
			t.Fatalf("refunded %s, want %d", res.Refunded, n)
		}
		revoked := a.revoked
		mc.m.refund(a, h, n, mc.now())
		if res.Revoked.Units() != a.revoked-revoked {
			t.Fatalf("refund: revoked %s; the model %d", res.Revoked, a.revoked-revoked)
		}
		mc.m.advance(a, mc.now())
		mc.wantAvailable(t, "refund", a, res.Available)
	}
	mc.remember(&pastCall{desc: "refund", result: res, err: err,
		again: func() (any, error) { return mc.h.Ledger.Refund(mc.h.Ctx, req) },
		variant: func() error {
			r := req
			r.Amount, _ = r.Amount.Add(credits.FromUnits(1))
			_, err := mc.h.Ledger.Refund(mc.h.Ctx, r)
			return err
		}})
}

// RunJob runs a job through Ledger.Run that succeeds, fails or panics.
func (mc *machine) RunJob(t *rapid.T) {
	a := mc.account(t)
	q := mc.quote(t, a)
	member := mc.member(t, a)
	fate := rapid.SampledFrom([]string{"ok", "error", "panic"}).Draw(t, "fate")
	u := mc.usage(t, q)
	var holdID string
	boom := errors.New("job failed")
	var res credits.ChargeResult
	var err error
	req := credits.ReserveRequest{Account: a.id, Member: member, Quote: q, Key: mc.key("run")}
	// Run retried under its key never runs a settled job again: it
	// replays the charge, or says the job failed before.
	again := func() (any, error) {
		return mc.h.Ledger.Run(mc.h.Ctx, req, func(context.Context, credits.Hold) (credits.Usage, error) {
			return credits.Usage{}, errors.New("storetest: Run ran a settled job again")
		})
	}
	variant := func() error {
		r := req
		r.TTL = 2 * time.Hour
		_, err := mc.h.Ledger.Run(mc.h.Ctx, r, func(context.Context, credits.Hold) (credits.Usage, error) {
			return credits.Usage{}, errors.New("storetest: Run ran a job under a conflicting key")
		})
		return err
	}
	func() {
		defer func() {
			if p := recover(); p != nil && p != "job panicked" {
				panic(p)
			}
		}()
		res, err = mc.h.Ledger.Run(mc.h.Ctx, req,
			func(_ context.Context, hold credits.Hold) (credits.Usage, error) {
				holdID = hold.ID
				switch fate {
				case "error":
					return credits.Usage{}, boom
				case "panic":
					panic("job panicked")
				}
				return u, nil
			})
	}()
	h, want := mc.spend(a, member, q, 0, false)
	if want != nil {
		checkOutcome(t, "run", err, want)
		if want != credits.ErrWrongPlan { // a plan refusal is not recorded
			mc.remember(&pastCall{desc: "run", err: err, again: again, variant: variant})
		}
		return
	}
	h.id = holdID
	if fate != "ok" {
		mc.remember(&pastCall{desc: "failed run", err: credits.ErrHoldSettled, again: again, variant: variant})
		if fate == "error" && !errors.Is(err, boom) {
			t.Fatalf("run: got %v, want the job's error", err)
		}
		mc.m.release(a, h, mc.now())
		mc.m.advance(a, mc.now())
		// Run released the hold under the release's own key; the machine
		// did not see that result, so a later Release only checks that it
		// is a successful replay.
		a.records["release:"+h.id] = mOutcome{loose: true}
		return
	}
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	charged := h.amount
	if u != (credits.Usage{}) {
		cost, _, _ := q.Cost(u)
		charged = min(cost.Units(), h.amount)
	}
	if res.Charged.Units() != charged {
		t.Fatalf("run charged %s, want %d", res.Charged, charged)
	}
	mc.m.capture(a, h, charged, mc.now())
	mc.m.advance(a, mc.now())
	a.records["capture:"+h.id] = mOutcome{request: fmt.Sprint(u), result: res}
	mc.wantAvailable(t, "run", a, res.Available)
	mc.remember(&pastCall{desc: "run", result: res, again: again, variant: variant})
}

// Extend sends a worker's heartbeat for a random hold: an open one lasts
// longer (never past its creation plus the 7 days of MaxHoldTTL, never
// shorter than it was); a settled or expired one is refused.
func (mc *machine) Extend(t *rapid.T) {
	h := mc.pickHold(t)
	if h.id == "" {
		t.Skip("hold never made")
	}
	ttl := rapid.SampledFrom([]time.Duration{0, time.Minute, 30 * time.Minute, 3 * time.Hour, 7 * 24 * time.Hour}).Draw(t, "extend ttl")
	res, err := mc.h.Ledger.Extend(mc.h.Ctx, credits.ExtendRequest{Hold: h.id, TTL: ttl})
	mc.m.advance(h.account, mc.now())
	switch h.status {
	case credits.HoldExpired:
		checkOutcome(t, "extend", err, credits.ErrHoldExpired)
		return
	case credits.HoldCaptured, credits.HoldReleased:
		checkOutcome(t, "extend", err, credits.ErrHoldSettled)
		return
	}
	if err != nil {
		t.Fatalf("extend %s: %v", h.id, err)
	}
	if ttl == 0 {
		ttl = time.Hour
	}
	want, limit := mc.now().Add(ttl), h.created.Add(7*24*time.Hour)
	capped := want.After(limit)
	if capped {
		want = limit
	}
	if want.After(h.deadline) {
		h.deadline = want
	}
	if !res.Hold.Deadline.Equal(h.deadline) || res.Capped != capped || res.Hold.Status != credits.HoldOpen {
		t.Fatalf("extend %s by %s: deadline %s (capped %v); the model: %s (%v)", h.id, ttl, res.Hold.Deadline, res.Capped, h.deadline, capped)
	}
}

// grantOf picks one of the grants the machine made on a (nil when none).
func (mc *machine) grantOf(t *rapid.T, a *mAccount) *mBucket {
	var known []*mBucket
	for _, b := range a.buckets {
		if b.id != "" {
			known = append(known, b)
		}
	}
	if len(known) == 0 {
		return nil
	}
	return rapid.SampledFrom(known).Draw(t, "grant")
}

// Debit takes credits out: from any grant, from some kinds, or from one
// grant (a voided one too, or one that does not exist); all of it or,
// when partial, what is there.
func (mc *machine) Debit(t *rapid.T) {
	a := mc.account(t)
	req := credits.DebitRequest{Account: a.id, Amount: credits.FromUnits(rapid.Int64Range(1, 40_000).Draw(t, "debit units")),
		Partial: rapid.Bool().Draw(t, "partial"), Reason: "correction", Key: mc.key("debit")}
	keep := func(*mBucket) bool { return true }
	var grant *mBucket
	switch rapid.IntRange(0, 3).Draw(t, "debit from") {
	case 1:
		req.Kinds = []credits.GrantKind{credits.KindPurchase}
		keep = func(b *mBucket) bool { return b.kind == credits.KindPurchase }
	case 2:
		req.Kinds = []credits.GrantKind{credits.KindPromo, credits.KindPlan, credits.KindSignup}
		keep = func(b *mBucket) bool { return slices.Contains(req.Kinds, b.kind) }
	case 3:
		if grant = mc.grantOf(t, a); grant == nil {
			req.Grant = "grant_nowhere"
		} else {
			req.Grant = grant.id
			keep = func(b *mBucket) bool { return b == grant }
		}
	}
	res, err := mc.h.Ledger.Debit(mc.h.Ctx, req)
	mc.m.advance(a, mc.now())
	switch {
	case req.Grant == "grant_nowhere":
		checkOutcome(t, "debit of an unknown grant", err, credits.ErrUnknownGrant)
		return // not recorded: nothing to replay
	case grant != nil && grant.voided:
		checkOutcome(t, "debit of a voided grant", err, credits.ErrGrantVoided)
	default:
		taken, ok := mc.m.debit(a, req.Amount.Units(), req.Partial, keep)
		if !ok {
			checkOutcome(t, "debit", err, credits.ErrInsufficientCredits)
			break
		}
		if err != nil {
			t.Fatalf("debit %+v: %v", req, err)
		}
		var sum int64
		for _, p := range res.Portions {
			sum += p.Amount.Units()
		}
		if res.Debited.Units() != taken || res.Short.Units() != req.Amount.Units()-taken || sum != taken {
			t.Fatalf("debit of %s (partial %v): debited %s short %s in %d portions; the model took %d", req.Amount, req.Partial, res.Debited, res.Short, len(res.Portions), taken)
		}
		mc.wantAvailable(t, "debit", a, res.Available)
	}
	mc.remember(&pastCall{desc: "debit", result: res, err: err,
		again: func() (any, error) { return mc.h.Ledger.Debit(mc.h.Ctx, req) },
		variant: func() error {
			r := req
			r.Partial = !r.Partial
			_, err := mc.h.Ledger.Debit(mc.h.Ctx, r)
			return err
		}})
}

// VoidGrant revokes one of the machine's grants (voided already at times).
func (mc *machine) VoidGrant(t *rapid.T) {
	a := mc.account(t)
	g := mc.grantOf(t, a)
	if g == nil {
		t.Skip("no grant of the machine's on this account")
	}
	req := credits.VoidGrantRequest{Account: a.id, Grant: g.id, Reason: "revoked", Key: mc.key("void")}
	res, err := mc.h.Ledger.VoidGrant(mc.h.Ctx, req)
	mc.m.advance(a, mc.now())
	if g.voided {
		checkOutcome(t, "void of a voided grant", err, credits.ErrGrantVoided)
	} else {
		if err != nil {
			t.Fatalf("void %s: %v", g.id, err)
		}
		n := mc.m.void(a, g)
		if res.Voided.Units() != n || res.Grant.ID != g.id || res.Grant.VoidedAt.IsZero() || !res.Grant.Remaining.IsZero() {
			t.Fatalf("void %s: %+v; the model voided %d", g.id, res, n)
		}
		mc.wantAvailable(t, "void", a, res.Available)
	}
	mc.remember(&pastCall{desc: "void", result: res, err: err,
		again: func() (any, error) { return mc.h.Ledger.VoidGrant(mc.h.Ctx, req) },
		variant: func() error {
			r := req
			r.Grant += "x"
			_, err := mc.h.Ledger.VoidGrant(mc.h.Ctx, r)
			return err
		}})
}

// UpdateAccount moves an account to a random plan (its own again, at
// times: no change), and sometimes changes its low-balance threshold.
func (mc *machine) UpdateAccount(t *rapid.T) {
	a := mc.account(t)
	plan := rapid.SampledFrom(plans).Draw(t, "plan")
	req := credits.UpdateAccountRequest{Account: a.id, Plan: &plan, Key: mc.key("update")}
	threshold := a.threshold
	if rapid.Bool().Draw(t, "set threshold") {
		th := credits.FromUnits(rapid.Int64Range(0, 3).Draw(t, "threshold") * 5000)
		req.LowBalanceThreshold, threshold = &th, th.Units()
	}
	res, err := mc.h.Ledger.UpdateAccount(mc.h.Ctx, req)
	if err != nil {
		t.Fatalf("update %s to plan %q: %v", a.id, plan, err)
	}
	mc.m.advance(a, mc.now())
	changed := plan != a.plan || threshold != a.threshold
	a.plan, a.threshold = plan, threshold
	if changed {
		mc.m.sync(a, mc.now()) // an upgrade's difference, or joining a schedule
	}
	if res.Account.Plan != plan || res.Account.LowBalanceThreshold.Units() != threshold || res.Changed != changed || res.Replayed {
		t.Fatalf("update %s to plan %q, threshold %d: %+v (changed: want %v)", a.id, plan, threshold, res, changed)
	}
	mc.wantAvailable(t, "update", a, res.Account.Available)
	mc.remember(&pastCall{desc: "update", result: res,
		again: func() (any, error) { return mc.h.Ledger.UpdateAccount(mc.h.Ctx, req) },
		variant: func() error {
			r := req
			other := plan + "x"
			r.Plan = &other
			_, err := mc.h.Ledger.UpdateAccount(mc.h.Ctx, r)
			return err
		}})
}

// SetMemberLimits gives the team's members random limits per day, week or
// month (or none), and checks the usage the ledger reports against the
// model's.
func (mc *machine) SetMemberLimits(t *rapid.T) {
	var a *mAccount
	for _, x := range mc.accounts {
		if x.team {
			a = x
		}
	}
	req := credits.MemberLimitsRequest{Account: a.id, Key: mc.key("limits")}
	if rapid.IntRange(0, 4).Draw(t, "limits") > 0 {
		req.Period = rapid.SampledFrom([]credits.Period{credits.PeriodDay, credits.PeriodWeek, credits.PeriodMonth}).Draw(t, "limit period")
		if rapid.Bool().Draw(t, "default limit") {
			d := credits.FromUnits(rapid.Int64Range(0, 6).Draw(t, "default") * 5_000)
			req.Default = &d
		}
		for _, m := range []string{"m1", "m2"} {
			if rapid.Bool().Draw(t, "limit of "+m) {
				if req.Members == nil {
					req.Members = map[string]credits.Credits{}
				}
				req.Members[m] = credits.FromUnits(rapid.Int64Range(0, 6).Draw(t, "limit "+m) * 5_000)
			}
		}
		if req.Default == nil && req.Members == nil {
			req.Period = ""
		}
	}
	res, err := mc.h.Ledger.SetMemberLimits(mc.h.Ctx, req)
	if err != nil {
		t.Fatalf("set member limits %+v: %v", req, err)
	}
	mc.m.advance(a, mc.now())
	// The limits are replaced; the usage is kept, whatever they were.
	l := a.limits
	l.period, l.def, l.members = req.Period, nil, map[string]int64{}
	if req.Default != nil {
		d := req.Default.Units()
		l.def = &d
	}
	for m, c := range req.Members {
		l.members[m] = c.Units()
	}
	mc.wantAvailable(t, "set member limits", a, res.Account.Available)
	mc.checkUsage(t, a)
	mc.remember(&pastCall{desc: "member limits", result: res,
		again: func() (any, error) { return mc.h.Ledger.SetMemberLimits(mc.h.Ctx, req) },
		variant: func() error {
			r := req
			r.Period, r.Default, r.Members = credits.PeriodDay, new(credits.Whole(999)), nil
			if req.Period == credits.PeriodDay && req.Default != nil && *req.Default == credits.Whole(999) {
				r.Period = credits.PeriodWeek
			}
			_, err := mc.h.Ledger.SetMemberLimits(mc.h.Ctx, r)
			return err
		}})
}

// checkReads checks Ledger.Account and Ledger.Hold against the model: a
// read shows what the next operation will find.
func (mc *machine) checkReads(t *rapid.T, a *mAccount) {
	acct, err := mc.h.Ledger.Account(mc.h.Ctx, a.id)
	if err != nil {
		t.Fatal(err)
	}
	got := [7]int64{acct.Available.Units(), acct.Held.Units(), acct.Spent.Units(), acct.Expired.Units(), acct.Granted.Units(), acct.Debited.Units(), int64(len(acct.Members))}
	want := [7]int64{a.available(), a.held, a.spent, a.expired, a.granted, a.debited, int64(len(a.members))}
	if got != want || acct.Plan != a.plan || acct.Team != a.team || (acct.Allowance == nil) != (a.sched == nil) {
		t.Fatalf("Account(%s) = %v plan %q allowance %+v; the model %v plan %q schedule %+v", a.id, got, acct.Plan, acct.Allowance, want, a.plan, a.sched)
	}
	if s := a.sched; s != nil && !acct.RenewsAt.Equal(s.start(s.index+1)) {
		t.Fatalf("Account(%s) renews at %s; the model at %s", a.id, acct.RenewsAt, s.start(s.index+1))
	}
	mc.checkActivity(t, a)
	for _, h := range a.holds {
		if h.id == "" {
			continue
		}
		got, err := mc.h.Ledger.Hold(mc.h.Ctx, h.id)
		if err != nil {
			t.Fatalf("Hold(%s): %v", h.id, err)
		}
		if got.Status != h.status || got.Captured.Units() != h.captured || got.Refunded.Units() != h.refunded || got.Account != a.id {
			t.Fatalf("Hold(%s) = %s captured %s refunded %s; the model: %s %d %d", h.id, got.Status, got.Captured, got.Refunded, h.status, h.captured, h.refunded)
		}
	}
}

// checkActivity reads a's generations, a few to a page, and compares them
// with the model's holds: each exactly once, newest first, with its status
// as of now and amounts that add up.
func (mc *machine) checkActivity(t *rapid.T, a *mAccount) {
	want := map[string]*mHold{}
	for _, h := range a.holds {
		if h.id != "" {
			want[h.id] = h
		}
	}
	seen := map[string]bool{}
	req := credits.ActivityRequest{Account: a.id, Limit: 4}
	var last int64
	for {
		page, err := mc.h.Ledger.Activity(mc.h.Ctx, req)
		if err != nil {
			t.Fatalf("Activity(%s): %v", a.id, err)
		}
		for _, g := range page.Generations {
			h := want[g.Hold]
			if h == nil || seen[g.Hold] || last != 0 && g.Seq >= last {
				t.Fatalf("Activity(%s): %s unknown to the model, listed twice or out of order", a.id, g.Hold)
			}
			seen[g.Hold], last = true, g.Seq
			released := h.amount - h.captured
			if h.status == credits.HoldOpen {
				released = 0
			}
			got := [4]int64{g.Held.Units(), g.Charged.Units(), g.Refunded.Units(), g.Released.Units()}
			if g.Status != h.status || got != [4]int64{h.amount, h.captured, h.refunded, released} ||
				g.Returned.Units() != released+h.refunded || g.Net.Units() != h.captured-h.refunded {
				t.Fatalf("Activity(%s): %+v; the model: %s held %d charged %d refunded %d", a.id, g, h.status, h.amount, h.captured, h.refunded)
			}
		}
		if page.Next == 0 {
			break
		}
		req.Before = page.Next
	}
	if len(seen) != len(want) {
		t.Fatalf("Activity(%s) lists %d generations; the model has %d", a.id, len(seen), len(want))
	}
}

// ReadGrants reads every grant of an account, a few to a page, and
// compares them with the model: the machine's own grants one by one, and
// what all of them hold with the available balance; the grants with
// credits left alone hold it too. (An action, not a check after every
// step: Grants stores what fell due first, as a sweep, which the next
// operation would otherwise apply lazily.)
func (mc *machine) ReadGrants(t *rapid.T) {
	a := mc.account(t)
	mc.m.advance(a, mc.now())
	list := func(all bool) []credits.Bucket {
		var out []credits.Bucket
		req := credits.GrantsRequest{Account: a.id, All: all, Limit: 3}
		for {
			page, err := mc.h.Ledger.Grants(mc.h.Ctx, req)
			if err != nil {
				t.Fatalf("Grants(%s): %v", a.id, err)
			}
			out = append(out, page.Grants...)
			if page.Next == "" {
				return out
			}
			req.After = page.Next
		}
	}
	all := list(true)
	byID := map[string]credits.Bucket{}
	var held int64
	for i, b := range all {
		if _, dup := byID[b.ID]; dup || i > 0 && (b.Seq < all[i-1].Seq || b.Seq == all[i-1].Seq && b.ID <= all[i-1].ID) {
			t.Fatalf("Grants(%s): %s listed twice or out of (seq, id) order", a.id, b.ID)
		}
		byID[b.ID] = b
		held += b.Remaining.Units()
	}
	var live int64
	for _, b := range list(false) {
		if !b.Live() {
			t.Fatalf("Grants(%s) without All lists %s, which holds nothing", a.id, b.ID)
		}
		live += b.Remaining.Units()
	}
	if held != a.available() || live != a.available() {
		t.Fatalf("Grants(%s): all grants hold %d, the live ones %d; the model's available is %d", a.id, held, live, a.available())
	}
	for _, mb := range a.buckets {
		if mb.id == "" {
			continue
		}
		b, ok := byID[mb.id]
		if !ok || b.Remaining.Units() != mb.remaining || b.Debited.Units() != mb.debited || b.VoidedAt.IsZero() == mb.voided || b.Kind != mb.kind {
			t.Fatalf("Grants(%s): grant %s is %+v (listed: %v); the model: remaining %d debited %d voided %v", a.id, mb.id, b, ok, mb.remaining, mb.debited, mb.voided)
		}
	}
}

// checkUsage compares the members' usage a spending report shows with the
// model's.
func (mc *machine) checkUsage(t *rapid.T, a *mAccount) {
	rep, err := mc.h.Ledger.Spending(mc.h.Ctx, credits.SpendingRequest{Account: a.id, By: credits.ByMember})
	if err != nil {
		t.Fatal(err)
	}
	mc.m.advance(a, mc.now())
	for _, u := range rep.Members {
		used := a.limits.usedBy(u.Member)
		limit, ok := a.limits.limit(u.Member)
		if u.Used.Units() != used || (u.Limit != nil) != ok || ok && (u.Limit.Units() != limit || u.Remaining.Units() != max(0, limit-used)) {
			t.Fatalf("member %s of %s: usage %+v (limit %v, remaining %v); the model: used %d, limit %d (%v)", u.Member, a.id, u, u.Limit, u.Remaining, used, limit, ok)
		}
	}
	if len(rep.Members) != len(a.members) {
		t.Fatalf("the report lists %d members of %s, the team has %d", len(rep.Members), a.id, len(a.members))
	}
}

// Retry repeats a past keyed request exactly: same result, flagged as a
// replay, nothing changed.
func (mc *machine) Retry(t *rapid.T) {
	if len(mc.past) == 0 {
		t.Skip("nothing to retry")
	}
	c := rapid.SampledFrom(mc.past).Draw(t, "call")
	res, err := c.again()
	if c.err != nil {
		if kindOf(err) != kindOf(c.err) {
			t.Fatalf("retry of %s: got %v, first call got %v", c.desc, err, c.err)
		}
		return
	}
	if err != nil {
		t.Fatalf("retry of %s: %v", c.desc, err)
	}
	if diff := cmp.Diff(markReplayed(c.result), res); diff != "" {
		t.Fatalf("retry of %s differs from the first result (-first +retry):\n%s", c.desc, diff)
	}
}

// Conflict sends a different request under a used key.
func (mc *machine) Conflict(t *rapid.T) {
	if len(mc.past) == 0 {
		t.Skip("no key used yet")
	}
	c := rapid.SampledFrom(mc.past).Draw(t, "call")
	err := c.variant()
	checkOutcome(t, "conflict on "+c.desc, err, credits.ErrIdempotencyConflict)
	var ce *credits.IdempotencyConflictError
	if !errors.As(err, &ce) || len(ce.Fields) == 0 {
		t.Fatalf("conflict on %s does not name what differs: %v", c.desc, err)
	}
}

// Advance moves the clock: a little, a lot, or exactly to a deadline or an
// expiry (the boundary where off-by-one bugs live).
func (mc *machine) Advance(t *rapid.T) {
	switch rapid.IntRange(0, 2).Draw(t, "how") {
	case 0:
		mc.h.Clock.Advance(time.Duration(rapid.Int64Range(1, 20*60).Draw(t, "seconds")) * time.Second)
	case 1:
		mc.h.Clock.Advance(time.Duration(rapid.Int64Range(1, 72).Draw(t, "hours")) * time.Hour)
	default:
		var next []time.Time
		now := mc.now()
		for _, a := range mc.accounts {
			for _, b := range a.buckets {
				if b.remaining > 0 && b.expiresAt.After(now) {
					next = append(next, b.expiresAt)
				}
			}
			for _, h := range a.holds {
				if h.status == credits.HoldOpen && h.deadline.After(now) {
					next = append(next, h.deadline)
				}
			}
		}
		if len(next) == 0 {
			t.Skip("nothing ahead")
		}
		at := rapid.SampledFrom(next).Draw(t, "instant")
		at = at.Add(time.Duration(rapid.IntRange(-1, 0).Draw(t, "nudge")))
		mc.h.Clock.Set(at)
	}
}

// Sweep applies due expiries in storage, then compares every stored bucket
// and hold with the model.
func (mc *machine) Sweep(t *rapid.T) {
	if _, err := mc.h.Ledger.Sweep(mc.h.Ctx); err != nil {
		t.Fatalf("sweep: %v", err)
	}
	type bucketKey struct {
		Kind      credits.GrantKind
		Remaining int64
		ExpiresAt int64
	}
	for _, a := range mc.accounts {
		mc.m.advance(a, mc.now())
		var ids []string
		for _, h := range a.holds {
			ids = append(ids, h.id)
		}
		st, err := mc.h.Store.View(mc.h.Ctx, credits.Query{Account: a.id, Holds: ids})
		if err != nil {
			t.Fatalf("view: %v", err)
		}
		var got, want []bucketKey
		unix := func(t time.Time) int64 {
			if t.IsZero() {
				return 0
			}
			return t.UnixNano()
		}
		for _, b := range st.Buckets {
			if b.Live() {
				got = append(got, bucketKey{b.Kind, b.Remaining.Units(), unix(b.ExpiresAt)})
			}
		}
		for _, b := range a.buckets {
			if b.remaining > 0 {
				want = append(want, bucketKey{b.kind, b.remaining, unix(b.expiresAt)})
			}
		}
		order := func(x, y bucketKey) int {
			return cmpAll(string(x.Kind) < string(y.Kind), string(x.Kind) > string(y.Kind), x.Remaining-y.Remaining, x.ExpiresAt-y.ExpiresAt)
		}
		slices.SortFunc(got, order)
		slices.SortFunc(want, order)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("account %s: stored buckets differ from the model (-model +store):\n%s", a.id, diff)
		}
		for _, h := range a.holds {
			sh := st.Holds[h.id]
			if sh == nil || sh.Status != h.status || sh.Captured.Units() != h.captured || sh.Refunded.Units() != h.refunded {
				t.Fatalf("hold %s: stored %+v, model status %s captured %d refunded %d", h.id, sh, h.status, h.captured, h.refunded)
			}
		}
	}
}

func cmpAll(less, more bool, rest ...int64) int {
	switch {
	case less:
		return -1
	case more:
		return 1
	}
	for _, d := range rest {
		switch {
		case d < 0:
			return -1
		case d > 0:
			return 1
		}
	}
	return 0
}

// Check runs after every step: every invariant, and the balance against
// the model.
func (mc *machine) Check(t *rapid.T) {
	for _, a := range mc.accounts {
		if err := checkInvariants(mc.h, a.id); err != nil {
			t.Fatal(err)
		}
		mc.m.advance(a, mc.now())
		b, err := mc.h.Ledger.Balance(mc.h.Ctx, a.id)
		if err != nil {
			t.Fatal(err)
		}
		if a.team {
			mc.checkUsage(t, a)
		}
		mc.checkReads(t, a)
		free, paid := a.freePaid()
		got := [8]int64{b.Available.Units(), b.Held.Units(), b.Spent.Units(), b.Expired.Units(), b.Granted.Units(), b.Debited.Units(), b.Free.Units(), b.Paid.Units()}
		want := [8]int64{a.available(), a.held, a.spent, a.expired, a.granted, a.debited, free, paid}
		if got != want {
			t.Fatalf("account %s at %s: balance [available held spent expired granted debited free paid] = %v, model %v",
				a.id, mc.now().Format(time.RFC3339Nano), got, want)
		}
	}
}

// markReplayed returns a copy of a result with Replayed set, as a replay
// returns it.
func markReplayed(r any) any {
	switch v := r.(type) {
	case credits.GrantResult:
		v.Replayed = true
		return v
	case credits.ReserveResult:
		v.Replayed = true
		return v
	case credits.ChargeResult:
		v.Replayed = true
		return v
	case credits.ReleaseResult:
		v.Replayed = true
		return v
	case credits.RefundResult:
		v.Replayed = true
		return v
	case credits.UpdateAccountResult:
		v.Replayed = true
		return v
	case credits.MemberLimitsResult:
		v.Replayed = true
		return v
	case credits.DebitResult:
		v.Replayed = true
		return v
	case credits.VoidGrantResult:
		v.Replayed = true
		return v
	}
	return r
}

// kindOf classifies an error by the sentinel it matches.
func kindOf(err error) error {
	for _, k := range []error{
		credits.ErrInsufficientCredits, credits.ErrHoldExpired, credits.ErrHoldSettled, credits.ErrNotCaptured,
		credits.ErrExceedsHold, credits.ErrRefundExceedsCharge, credits.ErrNotMember, credits.ErrIdempotencyConflict,
		credits.ErrQuoteExpired, credits.ErrQuoteMismatch, credits.ErrInvalidRequest, credits.ErrInvalidAmount,
		credits.ErrUnknownAccount, credits.ErrUnknownHold, credits.ErrWrongPlan, credits.ErrMemberLimit,
		credits.ErrUnknownGrant, credits.ErrGrantVoided,
	} {
		if errors.Is(err, k) {
			return k
		}
	}
	return err
}

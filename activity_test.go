package credits_test

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/creditkit/credits"
	"github.com/creditkit/credits/memstore"
	"github.com/creditkit/credits/storetest"
)

func noSignup(c *credits.Config) { c.Signup = credits.Reward{} }

// allActivity reads every page of req (Before is set per page) and checks
// that the rows are newest first.
func allActivity(t *testing.T, h *storetest.Harness, req credits.ActivityRequest) []credits.Generation {
	t.Helper()
	var all []credits.Generation
	for pages := 0; ; pages++ {
		p, err := h.Ledger.Activity(h.Ctx, req)
		if err != nil {
			t.Fatalf("Activity(%+v): %v", req, err)
		}
		if limit := cmp.Or(req.Limit, credits.DefaultActivityLimit); len(p.Generations) > limit {
			t.Fatalf("page of %d rows, limit %d", len(p.Generations), limit)
		}
		if p.Next != 0 && (len(p.Generations) == 0 || p.Next != p.Generations[len(p.Generations)-1].Seq) {
			t.Fatalf("Next %d is not the last row's Seq", p.Next)
		}
		for _, g := range p.Generations {
			if n := len(all); n > 0 && all[n-1].Seq <= g.Seq {
				t.Fatalf("rows not newest first: seq %d after %d", g.Seq, all[n-1].Seq)
			}
			all = append(all, g)
		}
		if p.Next == 0 {
			return all
		}
		if pages > 10000 {
			t.Fatal("Activity pages without end")
		}
		req.Before = p.Next
	}
}

func jobsOf(gs []credits.Generation) string {
	var js []string
	for _, g := range gs {
		js = append(js, g.Job)
	}
	return strings.Join(js, " ")
}

// Every generation shows exactly once, across pages of every size, whether
// it is open, captured, released or refunded, however many entries it
// wrote after it started (and whatever was written in between).
func TestActivityPaging(t *testing.T) {
	h := storetest.NewHarness(t, memstore.New(), noSignup)
	h.Account(t, credits.CreateAccountRequest{ID: "a"})
	if _, err := h.Ledger.Grant(h.Ctx, credits.GrantRequest{Account: "a", Amount: credits.Whole(100000), Kind: credits.KindPurchase, Key: "fund"}); err != nil {
		t.Fatal(err)
	}
	video := h.Quote(t, credits.QuoteRequest{Tool: "video", Resolution: "720p", Duration: 5 * time.Second}) // 40
	image := h.Quote(t, credits.QuoteRequest{Tool: "image"})                                                // 7
	// 80 rounds, 60 generations: charges (every other one refunded), and
	// reserves settled a round later, after other generations started.
	var want, open []string // the generations' jobs, oldest first; holds not yet settled
	for i := range 80 {
		h.Clock.Advance(time.Second)
		job := fmt.Sprint("job-", i)
		if i%4 != 3 {
			want = append(want, job)
		}
		switch i % 4 {
		case 0:
			c, err := h.Ledger.Charge(h.Ctx, credits.ChargeRequest{Account: "a", Quote: image, Key: job})
			if err != nil {
				t.Fatal(err)
			}
			if i%8 == 0 {
				if _, err := h.Ledger.Refund(h.Ctx, credits.RefundRequest{Charge: c.Hold.ID, Key: "refund-" + job}); err != nil {
					t.Fatal(err)
				}
			}
		case 1, 2:
			r, err := h.Ledger.Reserve(h.Ctx, credits.ReserveRequest{Account: "a", Quote: video, Key: job})
			if err != nil {
				t.Fatal(err)
			}
			open = append(open, r.Hold.ID)
		case 3: // settle the holds opened before: their entries come after other generations started
			for j, id := range open {
				var err error
				if j%2 == 0 {
					_, err = h.Ledger.Capture(h.Ctx, credits.CaptureRequest{Hold: id, Usage: credits.Usage{Duration: 2 * time.Second}})
				} else {
					_, err = h.Ledger.Release(h.Ctx, credits.ReleaseRequest{Hold: id})
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			open = nil
			if _, err := h.Ledger.Grant(h.Ctx, credits.GrantRequest{Account: "a", Amount: credits.Whole(1), Kind: credits.KindPromo, Key: "promo-" + job}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The last two holds stay open.
	newestFirst := make([]string, len(want))
	for i, j := range want {
		newestFirst[len(want)-1-i] = j
	}
	for _, limit := range []int{1, 2, 3, 5, 7, 59, 60, 61, credits.MaxActivityLimit, 0} {
		gs := allActivity(t, h, credits.ActivityRequest{Account: "a", Limit: limit})
		if got := jobsOf(gs); got != strings.Join(newestFirst, " ") {
			t.Fatalf("pages of %d: jobs\n%s\nwant\n%s", limit, got, strings.Join(newestFirst, " "))
		}
		for _, g := range gs {
			checkGeneration(t, h, g)
		}
	}
	// A page boundary does not move when new generations are made meanwhile.
	p, err := h.Ledger.Activity(h.Ctx, credits.ActivityRequest{Account: "a", Limit: 10})
	if err != nil || p.Next == 0 {
		t.Fatalf("first page: %+v, %v", p, err)
	}
	for i := range 3 {
		if _, err := h.Ledger.Charge(h.Ctx, credits.ChargeRequest{Account: "a", Quote: image, Key: fmt.Sprint("late-", i)}); err != nil {
			t.Fatal(err)
		}
	}
	rest := allActivity(t, h, credits.ActivityRequest{Account: "a", Limit: 10, Before: p.Next})
	if got := jobsOf(append(p.Generations, rest...)); got != strings.Join(newestFirst, " ") {
		t.Fatalf("paging while generations are made: %s", got)
	}
	// The default page is DefaultActivityLimit rows.
	p, err = h.Ledger.Activity(h.Ctx, credits.ActivityRequest{Account: "a"})
	if err != nil || len(p.Generations) != credits.DefaultActivityLimit || p.Next == 0 {
		t.Fatalf("default page: %d rows, next %d, %v", len(p.Generations), p.Next, err)
	}
	// Since and Until bound when a generation started.
	p, err = h.Ledger.Activity(h.Ctx, credits.ActivityRequest{Account: "a",
		Since: storetest.Epoch.Add(3 * time.Second), Until: storetest.Epoch.Add(6 * time.Second)})
	if got := jobsOf(p.Generations); err != nil || got != "job-4 job-2" || p.Next != 0 {
		t.Fatalf("started in [3 s, 6 s): %q, next %d, %v", got, p.Next, err)
	}
	storetest.CheckInvariants(t, h, "a")
}

// checkGeneration checks that a row says what its hold says and that its
// amounts add up.
func checkGeneration(t *testing.T, h *storetest.Harness, g credits.Generation) {
	t.Helper()
	hold, err := h.Ledger.Hold(h.Ctx, g.Hold)
	if err != nil {
		t.Fatal(err)
	}
	if g.Job != hold.Key || g.Status != hold.Status || g.Held != hold.Amount || g.Quote.Total != hold.Quote.Total ||
		g.Quote.Tool != hold.Quote.Tool || g.Seq != hold.Seq || g.Member != hold.Member || !g.StartedAt.Equal(hold.CreatedAt) {
		t.Fatalf("row %+v\nfor hold %+v", g, hold)
	}
	sum := func(a, b credits.Credits) credits.Credits {
		c, err := a.Add(b)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if g.Status == credits.HoldOpen {
		if !g.Charged.IsZero() || !g.Returned.IsZero() || !g.Net.IsZero() || !g.Deadline.Equal(hold.Deadline) || !g.SettledAt.IsZero() {
			t.Fatalf("open row %+v", g)
		}
		return
	}
	if g.Charged != hold.Captured || g.Refunded != hold.Refunded || sum(g.Charged, g.Released) != g.Held ||
		sum(g.Net, g.Refunded) != g.Charged || sum(g.Released, g.Refunded) != g.Returned || sum(g.Net, g.Returned) != g.Held ||
		!g.Deadline.IsZero() || !g.SettledAt.Equal(hold.SettledAt) {
		t.Fatalf("settled row %+v\nfor hold %+v", g, hold)
	}
}

// A hold past its deadline reads as expired, every credit returned, and
// reading it writes nothing.
func TestActivityLazyExpiry(t *testing.T) {
	store := memstore.New()
	h := storetest.NewHarness(t, store, noSignup)
	h.Account(t, credits.CreateAccountRequest{ID: "a"})
	if _, err := h.Ledger.Grant(h.Ctx, credits.GrantRequest{Account: "a", Amount: credits.Whole(100), Kind: credits.KindPurchase, Key: "fund"}); err != nil {
		t.Fatal(err)
	}
	q := h.Quote(t, credits.QuoteRequest{Tool: "video", Resolution: "720p", Duration: 5 * time.Second})
	r, err := h.Ledger.Reserve(h.Ctx, credits.ReserveRequest{Account: "a", Quote: q, Key: "job", TTL: time.Minute,
		Metadata: map[string]string{"prompt": "a cat"}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := h.Ledger.Activity(h.Ctx, credits.ActivityRequest{Account: "a"})
	if err != nil || len(p.Generations) != 1 {
		t.Fatalf("%+v, %v", p, err)
	}
	if g := p.Generations[0]; g.Status != credits.HoldOpen || g.Held != credits.Whole(40) || !g.Deadline.Equal(r.Hold.Deadline) ||
		g.Metadata["prompt"] != "a cat" || g.Quote.DurationMS != 5000 || g.Quote.Resolution != "720p" || g.OneStep {
		t.Fatalf("open row: %+v", g)
	}
	entries := len(h.History(t, "a"))
	h.Clock.Advance(time.Minute)
	p, err = h.Ledger.Activity(h.Ctx, credits.ActivityRequest{Account: "a"})
	if err != nil || len(p.Generations) != 1 {
		t.Fatalf("%+v, %v", p, err)
	}
	g := p.Generations[0]
	if g.Status != credits.HoldExpired || g.Released != credits.Whole(40) || g.Returned != credits.Whole(40) ||
		!g.Net.IsZero() || !g.Charged.IsZero() || !g.SettledAt.Equal(r.Hold.Deadline) || !g.Deadline.IsZero() {
		t.Fatalf("row past the deadline: %+v", g)
	}
	checkGeneration(t, h, g)
	st, err := store.View(h.Ctx, credits.Query{Account: "a", Holds: []string{r.Hold.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if st.Holds[r.Hold.ID].Status != credits.HoldOpen || len(h.History(t, "a")) != entries {
		t.Fatalf("reading the activity wrote: stored status %s", st.Holds[r.Hold.ID].Status)
	}
	// The next mutation agrees with what was read.
	_, err = h.Ledger.Capture(h.Ctx, credits.CaptureRequest{Hold: r.Hold.ID})
	if !errors.Is(err, credits.ErrHoldExpired) {
		t.Fatalf("capture after the deadline: %v", err)
	}
}

// A refund shows on the row of the charge it reverses, whether the charge
// was one step or a captured hold.
func TestActivityRefund(t *testing.T) {
	h := storetest.NewHarness(t, memstore.New(), noSignup)
	h.Account(t, credits.CreateAccountRequest{ID: "a"})
	if _, err := h.Ledger.Grant(h.Ctx, credits.GrantRequest{Account: "a", Amount: credits.Whole(100), Kind: credits.KindPurchase, Key: "fund"}); err != nil {
		t.Fatal(err)
	}
	img := h.Quote(t, credits.QuoteRequest{Tool: "image"})
	c, err := h.Ledger.Charge(h.Ctx, credits.ChargeRequest{Account: "a", Quote: img, Key: "img"})
	if err != nil {
		t.Fatal(err)
	}
	vid := h.Quote(t, credits.QuoteRequest{Tool: "video", Resolution: "720p", Duration: 5 * time.Second})
	r, err := h.Ledger.Reserve(h.Ctx, credits.ReserveRequest{Account: "a", Quote: vid, Key: "vid"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Ledger.Capture(h.Ctx, credits.CaptureRequest{Hold: r.Hold.ID, Usage: credits.Usage{Duration: 4 * time.Second}}); err != nil {
		t.Fatal(err)
	}
	h.Clock.Advance(time.Hour)
	for _, rf := range []credits.RefundRequest{
		{Charge: c.Hold.ID, Amount: credits.Whole(3), Key: "r1"},
		{Charge: r.Hold.ID, Amount: credits.Whole(10), Key: "r2"},
		{Charge: c.Hold.ID, Amount: credits.Whole(1), Key: "r3"},
	} {
		if _, err := h.Ledger.Refund(h.Ctx, rf); err != nil {
			t.Fatal(err)
		}
	}
	gs := allActivity(t, h, credits.ActivityRequest{Account: "a", Limit: 1})
	if len(gs) != 2 {
		t.Fatalf("%d rows, want 2: %+v", len(gs), gs)
	}
	for _, g := range gs {
		checkGeneration(t, h, g)
	}
	got := fmt.Sprintf("%s %s one-step=%v charged %s released %s refunded %s returned %s net %s settled %s; %s %s one-step=%v charged %s released %s refunded %s returned %s net %s",
		gs[0].Job, gs[0].Status, gs[0].OneStep, gs[0].Charged, gs[0].Released, gs[0].Refunded, gs[0].Returned, gs[0].Net, gs[0].SettledAt.Sub(storetest.Epoch),
		gs[1].Job, gs[1].Status, gs[1].OneStep, gs[1].Charged, gs[1].Released, gs[1].Refunded, gs[1].Returned, gs[1].Net)
	want := "vid captured one-step=false charged 32 released 8 refunded 10 returned 18 net 22 settled 0s; img captured one-step=true charged 7 released 0 refunded 4 returned 4 net 3"
	if got != want {
		t.Fatalf("rows:\n%s\nwant\n%s", got, want)
	}
	// The JSON a dashboard gets: snake_case, amounts as decimal strings,
	// the duration in milliseconds.
	b, err := json.Marshal(gs[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{`"job":"vid"`, `"held":"40"`, `"returned":"18"`, `"duration_ms":5000`, `"started_at":`, `"settled_at":`} {
		if !strings.Contains(string(b), s) {
			t.Errorf("JSON %s lacks %s", b, s)
		}
	}
	if strings.Contains(string(b), `"deadline"`) {
		t.Errorf("a settled row's JSON has a deadline: %s", b)
	}
}

// A team's activity by member: each member's own generations, paged.
func TestActivityMember(t *testing.T) {
	h := storetest.NewHarness(t, memstore.New(), noSignup)
	h.Account(t, credits.CreateAccountRequest{ID: "team", Team: true, Members: []string{"ann", "bob"}})
	if _, err := h.Ledger.Grant(h.Ctx, credits.GrantRequest{Account: "team", Amount: credits.Whole(1000), Kind: credits.KindPurchase, Key: "fund"}); err != nil {
		t.Fatal(err)
	}
	img := h.Quote(t, credits.QuoteRequest{Tool: "image"})
	members := []string{"ann", "bob", "bob", "bob", "ann", "bob", "bob", "bob", "bob", "ann"}
	for i, m := range members {
		if _, err := h.Ledger.Charge(h.Ctx, credits.ChargeRequest{Account: "team", Member: m, Quote: img, Key: fmt.Sprint(m, "-", i)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, limit := range []int{1, 2, 3, 0} {
		gs := allActivity(t, h, credits.ActivityRequest{Account: "team", Member: "ann", Limit: limit})
		if got := jobsOf(gs); got != "ann-9 ann-4 ann-0" {
			t.Fatalf("ann's activity in pages of %d: %s", limit, got)
		}
	}
	if gs := allActivity(t, h, credits.ActivityRequest{Account: "team", Member: "bob", Limit: 4}); len(gs) != 7 || gs[0].Member != "bob" {
		t.Fatalf("bob's activity: %s", jobsOf(gs))
	}
	if gs := allActivity(t, h, credits.ActivityRequest{Account: "team", Member: "cy"}); len(gs) != 0 {
		t.Fatalf("a non-member's activity: %s", jobsOf(gs))
	}
	if gs := allActivity(t, h, credits.ActivityRequest{Account: "team"}); len(gs) != len(members) {
		t.Fatalf("the team's activity: %s", jobsOf(gs))
	}
}

func TestActivityBadInput(t *testing.T) {
	h := storetest.NewHarness(t, memstore.New(), nil)
	h.Account(t, credits.CreateAccountRequest{ID: "a"})
	p, err := h.Ledger.Activity(h.Ctx, credits.ActivityRequest{Account: "a"})
	if err != nil || len(p.Generations) != 0 || p.Generations == nil || p.Next != 0 {
		t.Fatalf("no generations yet: %+v, %v", p, err)
	}
	for _, c := range []struct {
		req  credits.ActivityRequest
		want error
	}{
		{credits.ActivityRequest{Account: "nobody"}, credits.ErrUnknownAccount},
		{credits.ActivityRequest{}, credits.ErrInvalidRequest},
		{credits.ActivityRequest{Account: "a\x00"}, credits.ErrInvalidRequest},
		{credits.ActivityRequest{Account: "a", Member: strings.Repeat("m", credits.MaxIDLength+1)}, credits.ErrInvalidRequest},
		{credits.ActivityRequest{Account: "a", Before: -1}, credits.ErrInvalidRequest},
		{credits.ActivityRequest{Account: "a", Limit: -1}, credits.ErrInvalidRequest},
		{credits.ActivityRequest{Account: "a", Limit: credits.MaxActivityLimit + 1}, credits.ErrInvalidRequest},
		{credits.ActivityRequest{Account: "a", Since: storetest.Epoch, Until: storetest.Epoch.Add(-time.Second)}, credits.ErrInvalidRequest},
	} {
		if _, err := h.Ledger.Activity(h.Ctx, c.req); !errors.Is(err, c.want) {
			t.Errorf("Activity(%+v) = %v, want %v", c.req, err, c.want)
		}
	}
}

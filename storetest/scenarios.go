package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/creditkit/credits"
)

var (
	c1  = credits.Whole(1)
	c3  = credits.Whole(3)
	c7  = credits.Whole(7)
	c10 = credits.Whole(10)
)

func whole(n int64) credits.Credits { return credits.Whole(n) }

// scenario is one named test of the ledger's rules on a fresh store.
type scenario struct {
	name string
	run  func(t *testing.T, h *Harness)
	edit func(*credits.Config)
}

func runScenarios(t *testing.T, newStore NewStore) {
	for _, s := range scenarios() {
		t.Run(s.name, func(t *testing.T) {
			h := NewHarness(t, newStore(t), s.edit)
			s.run(t, h)
		})
	}
}

func noSignup(c *credits.Config) { c.Signup = credits.Reward{} }

func grant(t *testing.T, h *Harness, account string, amount credits.Credits, kind credits.GrantKind, expiresAt time.Time, key string) credits.GrantResult {
	t.Helper()
	r, err := h.Ledger.Grant(h.Ctx, credits.GrantRequest{Account: account, Amount: amount, Kind: kind, ExpiresAt: expiresAt, Key: key})
	if err != nil {
		t.Fatalf("Grant %s %s: %v", amount, kind, err)
	}
	return r
}

func reserve(t *testing.T, h *Harness, account string, q credits.Quote, key string) credits.Hold {
	t.Helper()
	r, err := h.Ledger.Reserve(h.Ctx, credits.ReserveRequest{Account: account, Quote: q, Key: key})
	if err != nil {
		t.Fatalf("Reserve %s: %v", key, err)
	}
	return r.Hold
}

func wantAvailable(t *testing.T, h *Harness, account string, want credits.Credits) {
	t.Helper()
	if got := h.Balance(t, account).Available; got != want {
		t.Fatalf("available = %s, want %s", got, want)
	}
}

// remainders returns the remaining credits of every live bucket, by kind
// and expiry, as the ledger would apply them now.
func remainders(t *testing.T, h *Harness, account string) map[string]credits.Credits {
	t.Helper()
	if _, err := h.Ledger.Sweep(h.Ctx); err != nil {
		t.Fatal(err)
	}
	st, err := h.Store.View(h.Ctx, credits.Query{Account: account})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]credits.Credits{}
	for id, b := range st.Buckets {
		if b.Live() {
			out[id] = b.Remaining
		}
	}
	return out
}

func scenarios() []scenario {
	video := credits.QuoteRequest{Tool: "video", Resolution: "720p", Duration: 5 * time.Second} // 8/s → 40
	image := credits.QuoteRequest{Tool: "image"}                                                // 7
	return []scenario{
		{name: "RunNeverRunsASettledJobAgain", edit: noSignup, run: func(t *testing.T, h *Harness) {
			// A found bug: Run retried under a used key ran the job again —
			// after a success, a second generation for one charge; after a
			// failure, a generation nobody paid for.
			h.Account(t, credits.CreateAccountRequest{ID: "a"})
			grant(t, h, "a", whole(500), credits.KindPurchase, time.Time{}, "fund")
			q := h.Quote(t, video) // 40
			calls := 0
			job := func(u credits.Usage, err error) credits.Job {
				return func(context.Context, credits.Hold) (credits.Usage, error) {
					calls++
					return u, err
				}
			}
			never := func(context.Context, credits.Hold) (credits.Usage, error) {
				t.Fatal("Run ran a settled job again")
				return credits.Usage{}, nil
			}
			ok := credits.ReserveRequest{Account: "a", Quote: q, Key: "ok"}
			first, err := h.Ledger.Run(h.Ctx, ok, job(credits.Usage{Duration: 3 * time.Second}, nil))
			if err != nil || first.Charged != whole(24) || calls != 1 {
				t.Fatalf("Run: %+v, %v, %d calls", first, err, calls)
			}
			again, err := h.Ledger.Run(h.Ctx, ok, never)
			first.Replayed = true
			if err != nil || !cmp.Equal(first, again) {
				t.Fatalf("Run retried after a success: %v\n%s", err, cmp.Diff(first, again))
			}

			failed := credits.ReserveRequest{Account: "a", Quote: q, Key: "failed"}
			if _, err := h.Ledger.Run(h.Ctx, failed, job(credits.Usage{}, errors.New("model crashed"))); err == nil || calls != 2 {
				t.Fatalf("Run of a failing job: %v, %d calls", err, calls)
			}
			if _, err := h.Ledger.Run(h.Ctx, failed, never); !errors.Is(err, credits.ErrHoldSettled) {
				t.Fatalf("Run retried after the job failed: %v, want ErrHoldSettled", err)
			}

			late := credits.ReserveRequest{Account: "a", Quote: q, Key: "late", TTL: time.Minute}
			_, err = h.Ledger.Run(h.Ctx, late, func(context.Context, credits.Hold) (credits.Usage, error) {
				h.Clock.Advance(2 * time.Minute) // the job outlives its hold
				return credits.Usage{}, nil
			})
			if !errors.Is(err, credits.ErrHoldExpired) {
				t.Fatalf("Run of a job outliving its hold: %v", err)
			}
			if _, err := h.Ledger.Run(h.Ctx, late, never); !errors.Is(err, credits.ErrHoldExpired) {
				t.Fatalf("Run retried after its hold expired: %v, want ErrHoldExpired", err)
			}

			// A Run that died mid-job left its hold open: the retry runs
			// the job, and charges once.
			crashed := credits.ReserveRequest{Account: "a", Quote: q, Key: "crashed"}
			if _, err := h.Ledger.Reserve(h.Ctx, crashed); err != nil {
				t.Fatal(err)
			}
			if r, err := h.Ledger.Run(h.Ctx, crashed, job(credits.Usage{}, nil)); err != nil || r.Charged != whole(40) || calls != 3 {
				t.Fatalf("Run retried over a hold left open: %+v, %v, %d calls", r, err, calls)
			}
			wantAvailable(t, h, "a", whole(500-24-40))
			CheckInvariants(t, h, "a")
		}},
		{name: "ReplayedRefusalSaysSo", edit: noSignup, run: func(t *testing.T, h *Harness) {
			h.Account(t, credits.CreateAccountRequest{ID: "a"})
			grant(t, h, "a", c3, credits.KindPurchase, time.Time{}, "fund")
			req := credits.ChargeRequest{Account: "a", Quote: h.Quote(t, image), Key: "img"} // 7 of 3
			_, first := h.Ledger.Charge(h.Ctx, req)
			var re *credits.ReplayedError
			if !errors.Is(first, credits.ErrInsufficientCredits) || errors.As(first, &re) {
				t.Fatalf("the first refusal: %v", first)
			}
			h.Clock.Advance(time.Minute)
			grant(t, h, "a", c10, credits.KindPurchase, time.Time{}, "top-up")
			_, again := h.Ledger.Charge(h.Ctx, req)
			var ie *credits.InsufficientCreditsError
			if !errors.As(again, &re) || !re.DecidedAt.Equal(Epoch) || !errors.As(again, &ie) || ie.Available != c3 || re.Err.Error() != first.Error() {
				t.Fatalf("the refusal retried after a top-up: %v; want a *ReplayedError of the first, decided at %s, with its figures", again, Epoch)
			}
			if _, err := h.Ledger.Charge(h.Ctx, credits.ChargeRequest{Account: "a", Quote: req.Quote, Key: "img-2"}); err != nil {
				t.Fatalf("the same charge under a new key: %v", err)
			}
		}},
		{name: "HistoryFiltersAndNewestFirst", edit: noSignup, run: func(t *testing.T, h *Harness) {
			h.Account(t, credits.CreateAccountRequest{ID: "a"})
			grant(t, h, "a", whole(500), credits.KindPurchase, time.Time{}, "fund")
			q := h.Quote(t, image)
			for i := range 5 {
				h.Clock.Advance(time.Minute)
				if _, err := h.Ledger.Charge(h.Ctx, credits.ChargeRequest{Account: "a", Quote: q, Key: fmt.Sprint("img-", i)}); err != nil {
					t.Fatal(err)
				}
			}
			r := reserve(t, h, "a", h.Quote(t, video), "vid")
			if _, err := h.Ledger.Capture(h.Ctx, credits.CaptureRequest{Hold: r.ID, Usage: credits.Usage{Duration: time.Second}}); err != nil {
				t.Fatal(err)
			}
			all := h.History(t, "a") // 1 grant, 5 charges, hold, capture, release
			// Newest first, paged by 4: the same entries, reversed, each with its job.
			var newest []credits.Entry
			for before := int64(0); ; {
				p, err := h.Ledger.History(h.Ctx, credits.HistoryRequest{Account: "a", Newest: true, Before: before, Limit: 4})
				if err != nil {
					t.Fatal(err)
				}
				newest = append(newest, p.Entries...)
				if p.Next == 0 {
					break
				}
				before = p.Next
			}
			if len(newest) != len(all) || len(all) != 9 {
				t.Fatalf("newest first: %d entries, oldest first %d, want 9", len(newest), len(all))
			}
			for i, e := range newest {
				want := all[len(all)-1-i]
				if e.Seq != want.Seq || e.Job != want.Job {
					t.Fatalf("newest-first entry %d: seq %d job %q, want seq %d job %q", i, e.Seq, e.Job, want.Seq, want.Job)
				}
			}
			var jobs []string
			for _, e := range all {
				jobs = append(jobs, e.Job)
			}
			if got := fmt.Sprint(jobs); got != "[ img-0 img-1 img-2 img-3 img-4 vid vid vid]" {
				t.Fatalf("jobs of the entries: %s", got)
			}
			// Filtered by type and time.
			p, err := h.Ledger.History(h.Ctx, credits.HistoryRequest{Account: "a", Types: []credits.EntryType{credits.EntryCharge},
				Since: Epoch.Add(2 * time.Minute), Until: Epoch.Add(4 * time.Minute)})
			if err != nil || len(p.Entries) != 2 || p.Entries[0].Job != "img-1" || p.Entries[1].Job != "img-2" {
				t.Fatalf("charges in [2 min, 4 min): %+v, %v", p.Entries, err)
			}
			_, err = h.Ledger.History(h.Ctx, credits.HistoryRequest{Account: "a", Before: -1})
			wantErr(t, "History with a negative Before", err, credits.ErrInvalidRequest)
		}},
		{name: "ActivityOneRowPerGeneration", edit: noSignup, run: func(t *testing.T, h *Harness) {
			h.Account(t, credits.CreateAccountRequest{ID: "a"})
			grant(t, h, "a", whole(500), credits.KindPurchase, time.Time{}, "fund")
			c, err := h.Ledger.Charge(h.Ctx, credits.ChargeRequest{Account: "a", Quote: h.Quote(t, image), Key: "img"})
			wantErr(t, "charge", err, nil)
			ok := reserve(t, h, "a", h.Quote(t, video), "ok")
			failed := reserve(t, h, "a", h.Quote(t, video), "failed")
			_, err = h.Ledger.Reserve(h.Ctx, credits.ReserveRequest{Account: "a", Quote: h.Quote(t, video), Key: "lost", TTL: time.Minute})
			wantErr(t, "reserve", err, nil)
			_, err = h.Ledger.Capture(h.Ctx, credits.CaptureRequest{Hold: ok.ID, Usage: credits.Usage{Duration: 3 * time.Second}})
			wantErr(t, "capture", err, nil)
			_, err = h.Ledger.Release(h.Ctx, credits.ReleaseRequest{Hold: failed.ID})
			wantErr(t, "release", err, nil)
			_, err = h.Ledger.Refund(h.Ctx, credits.RefundRequest{Charge: c.Hold.ID, Amount: whole(2), Key: "refund"})
			wantErr(t, "refund", err, nil)
			h.Clock.Advance(time.Minute) // "lost" reads expired, unswept
			var rows []string
			for before := int64(0); ; {
				p, err := h.Ledger.Activity(h.Ctx, credits.ActivityRequest{Account: "a", Before: before, Limit: 1})
				wantErr(t, "Activity", err, nil)
				for _, g := range p.Generations {
					rows = append(rows, fmt.Sprint(g.Job, " ", g.Status, " held ", g.Held, " charged ", g.Charged, " returned ", g.Returned, " net ", g.Net))
				}
				if p.Next == 0 {
					break
				}
				before = p.Next
			}
			want := []string{
				"lost expired held 40 charged 0 returned 40 net 0",
				"failed released held 40 charged 0 returned 40 net 0",
				"ok captured held 40 charged 24 returned 16 net 24",
				"img captured held 7 charged 7 returned 2 net 5",
			}
			if !cmp.Equal(rows, want) {
				t.Fatalf("activity:\n%s", cmp.Diff(want, rows))
			}
			_, err = h.Ledger.Activity(h.Ctx, credits.ActivityRequest{Account: "nobody"})
			wantErr(t, "Activity of an unknown account", err, credits.ErrUnknownAccount)
		}},
		{name: "HoldsByTheReserveKey", edit: noSignup, run: func(t *testing.T, h *Harness) {
			h.Account(t, credits.CreateAccountRequest{ID: "a"})
			h.Account(t, credits.CreateAccountRequest{ID: "b"})
			grant(t, h, "a", whole(100), credits.KindPurchase, time.Time{}, "fund")
			r := reserve(t, h, "a", h.Quote(t, video), "job-1")
			hd, err := h.Ledger.HoldByKey(h.Ctx, "a", "job-1")
			if err != nil || hd.ID != r.ID || hd.Status != credits.HoldOpen {
				t.Fatalf("HoldByKey: %+v, %v; want hold %s", hd, err, r.ID)
			}
			for _, c := range []struct {
				name string
				req  credits.CaptureRequest
				want error
			}{
				{"an unknown key", credits.CaptureRequest{Account: "a", ReserveKey: "job-2"}, credits.ErrUnknownHold},
				{"the key on another account", credits.CaptureRequest{Account: "b", ReserveKey: "job-1"}, credits.ErrUnknownHold},
				{"the key of a grant", credits.CaptureRequest{Account: "a", ReserveKey: "fund"}, credits.ErrUnknownHold},
				{"no account", credits.CaptureRequest{ReserveKey: "job-1"}, credits.ErrInvalidRequest},
				{"both ID and key", credits.CaptureRequest{Account: "a", Hold: r.ID, ReserveKey: "job-1"}, credits.ErrInvalidRequest},
			} {
				_, err := h.Ledger.Capture(h.Ctx, c.req)
				wantErr(t, "Capture by "+c.name, err, c.want)
			}
			if _, err := h.Ledger.Extend(h.Ctx, credits.ExtendRequest{Account: "a", ReserveKey: "job-1", TTL: 2 * time.Hour}); err != nil {
				t.Fatal(err)
			}
			byKey, err := h.Ledger.Capture(h.Ctx, credits.CaptureRequest{Account: "a", ReserveKey: "job-1", Usage: credits.Usage{Duration: 2 * time.Second}})
			if err != nil || byKey.Hold.ID != r.ID || byKey.Charged != whole(16) {
				t.Fatalf("Capture by the reserve key: %+v, %v", byKey, err)
			}
			// By ID or by key, it is the same capture: a retry either way replays it.
			byID, err := h.Ledger.Capture(h.Ctx, credits.CaptureRequest{Hold: r.ID, Usage: credits.Usage{Duration: 2 * time.Second}})
			byKey.Replayed = true
			if err != nil || !cmp.Equal(byID, byKey) {
				t.Fatalf("the capture retried by ID: %v\n%s", err, cmp.Diff(byKey, byID))
			}
			// A refused Reserve made no hold.
			_, err = h.Ledger.Reserve(h.Ctx, credits.ReserveRequest{Account: "b", Quote: h.Quote(t, video), Key: "broke"})
			wantErr(t, "Reserve on an empty account", err, credits.ErrInsufficientCredits)
			if _, err := h.Ledger.Release(h.Ctx, credits.ReleaseRequest{Account: "b", ReserveKey: "broke"}); !errors.Is(err, credits.ErrUnknownHold) {
				t.Fatalf("Release by the key of a refused Reserve: %v", err)
			}
			CheckInvariants(t, h, "a")
		}},
		{name: "ExtendKeepsALongJobHeld", edit: noSignup, run: func(t *testing.T, h *Harness) {
			h.Account(t, credits.CreateAccountRequest{ID: "a"})
			grant(t, h, "a", whole(100), credits.KindPurchase, time.Time{}, "fund")
			req := credits.ReserveRequest{Account: "a", Quote: h.Quote(t, video), TTL: 10 * time.Minute, Key: "job"}
			r, err := h.Ledger.Reserve(h.Ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			h.Clock.Advance(8 * time.Minute)
			e, err := h.Ledger.Extend(h.Ctx, credits.ExtendRequest{Hold: r.Hold.ID, TTL: 10 * time.Minute})
			if want := Epoch.Add(18 * time.Minute); err != nil || !e.Hold.Deadline.Equal(want) || e.Capped {
				t.Fatalf("Extend: %+v, %v; want the deadline at %s", e, err, want)
			}
			// A shorter TTL never brings the deadline closer.
			if e, err := h.Ledger.Extend(h.Ctx, credits.ExtendRequest{Hold: r.Hold.ID, TTL: time.Minute}); err != nil || !e.Hold.Deadline.Equal(Epoch.Add(18*time.Minute)) {
				t.Fatalf("Extend by less: %+v, %v", e, err)
			}
			h.Clock.Advance(5 * time.Minute) // past the first deadline
			if hd, err := h.Ledger.Hold(h.Ctx, r.Hold.ID); err != nil || hd.Status != credits.HoldOpen {
				t.Fatalf("the extended hold past its first deadline: %+v, %v", hd, err)
			}
			// The Reserve's replay still says the deadline it gave.
			again, err := h.Ledger.Reserve(h.Ctx, req)
			if err != nil || !again.Replayed || !again.Hold.Deadline.Equal(r.Hold.Deadline) || !again.Hold.FirstDeadline.IsZero() {
				t.Fatalf("Reserve replayed after Extend: %+v, %v; want the deadline %s", again.Hold, err, r.Hold.Deadline)
			}
			// Never past the creation plus MaxHoldTTL (7 days).
			e, err = h.Ledger.Extend(h.Ctx, credits.ExtendRequest{Hold: r.Hold.ID, TTL: 7 * 24 * time.Hour})
			if want := Epoch.Add(7 * 24 * time.Hour); err != nil || !e.Hold.Deadline.Equal(want) || !e.Capped {
				t.Fatalf("Extend past MaxHoldTTL: %+v, %v; want %s, capped", e, err, want)
			}
			if _, err := h.Ledger.Capture(h.Ctx, credits.CaptureRequest{Hold: r.Hold.ID}); err != nil {
				t.Fatal(err)
			}
			if _, err := h.Ledger.Extend(h.Ctx, credits.ExtendRequest{Hold: r.Hold.ID}); !errors.Is(err, credits.ErrHoldSettled) {
				t.Fatalf("Extend of a captured hold: %v", err)
			}
			short, err := h.Ledger.Reserve(h.Ctx, credits.ReserveRequest{Account: "a", Quote: h.Quote(t, video), TTL: time.Minute, Key: "short"})
			if err != nil {
				t.Fatal(err)
			}
			h.Clock.Advance(time.Minute)
			if _, err := h.Ledger.Extend(h.Ctx, credits.ExtendRequest{Hold: short.Hold.ID}); !errors.Is(err, credits.ErrHoldExpired) {
				t.Fatalf("Extend at the deadline: %v, want ErrHoldExpired", err)
			}
			CheckInvariants(t, h, "a")
		}},
		{name: "SignupOnce", run: func(t *testing.T, h *Harness) {
			req := credits.CreateAccountRequest{ID: "alice"}
			first, err := h.Ledger.CreateAccount(h.Ctx, req)
			wantErr(t, "create", err, nil)
			if first.Signup == nil || first.Signup.Amount != whole(50) || first.Replayed {
				t.Fatalf("first create: %+v", first)
			}
			again, err := h.Ledger.CreateAccount(h.Ctx, req)
			wantErr(t, "create again", err, nil)
			if !again.Replayed || again.Signup.ID != first.Signup.ID {
				t.Fatalf("second create is not a replay of the first: %+v", again)
			}
			_, err = h.Ledger.CreateAccount(h.Ctx, credits.CreateAccountRequest{ID: "alice", Team: true})
			wantErr(t, "create different", err, credits.ErrAccountExists)
			wantAvailable(t, h, "alice", whole(50))
			CheckInvariants(t, h, "alice")
		}},
		{name: "UnknownAccount", run: func(t *testing.T, h *Harness) {
			_, err := h.Ledger.Balance(h.Ctx, "nobody")
			wantErr(t, "balance", err, credits.ErrUnknownAccount)
			_, err = h.Ledger.Grant(h.Ctx, credits.GrantRequest{Account: "nobody", Amount: c1, Kind: credits.KindPromo, Key: "k"})
			wantErr(t, "grant", err, credits.ErrUnknownAccount)
			_, err = h.Ledger.History(h.Ctx, credits.HistoryRequest{Account: "nobody"})
			wantErr(t, "history", err, credits.ErrUnknownAccount)
			_, err = h.Ledger.Capture(h.Ctx, credits.CaptureRequest{Hold: "hold_nope"})
			wantErr(t, "capture", err, credits.ErrUnknownHold)
		}},
		{name: "SpendOrder", edit: noSignup, run: func(t *testing.T, h *Harness) {
			h.Account(t, credits.CreateAccountRequest{ID: "a"})
			now := h.Clock.Now()
			paid := grant(t, h, "a", c10, credits.KindPurchase, time.Time{}, "buy").Grant
			late := grant(t, h, "a", c3, credits.KindPromo, now.Add(72*time.Hour), "late").Grant
			soon := grant(t, h, "a", c3, credits.KindPromo, now.Add(24*time.Hour), "soon").Grant
			soon2 := grant(t, h, "a", c3, credits.KindPromo, now.Add(24*time.Hour), "soon2").Grant
			// 7 credits: soon (3), then soon2 (3, same expiry, younger), then 1 of late.
			hold := reserve(t, h, "a", h.Quote(t, image), "img")
			want := []credits.Portion{{Bucket: soon.ID, Amount: c3}, {Bucket: soon2.ID, Amount: c3}, {Bucket: late.ID, Amount: c1}}
			if diff := cmp.Diff(want, hold.Portions); diff != "" {
				t.Fatalf("portions (-want +got):\n%s", diff)
			}
			got := remainders(t, h, "a")
			if got[paid.ID] != c10 || got[late.ID] != whole(2) || len(got) != 2 {
				t.Fatalf("remainders after hold: %v", got)
			}
			_, err := h.Ledger.Release(h.Ctx, credits.ReleaseRequest{Hold: hold.ID})
			wantErr(t, "release", err, nil)
			got = remainders(t, h, "a")
			want2 := map[string]credits.Credits{paid.ID: c10, late.ID: c3, soon.ID: c3, soon2.ID: c3}
			if diff := cmp.Diff(want2, got); diff != "" {
				t.Fatalf("release did not restore every bucket (-want +got):\n%s", diff)
			}
			b := h.Balance(t, "a")
			if b.Paid != c10 || b.Free != whole(9) || b.NextExpiry == nil || b.NextExpiry.Amount != whole(6) || !b.NextExpiry.At.Equal(now.Add(24*time.Hour)) {
				t.Fatalf("balance: %+v next %+v", b, b.NextExpiry)
			}
			CheckInvariants(t, h, "a")
		}},
		{name: "PurchaseNeverExpires", edit: noSignup, run: func(t *testing.T, h *Harness) {
			h.Account(t, credits.CreateAccountRequest{ID: "a"})
			_, err := h.Ledger.Grant(h.Ctx, credits.GrantRequest{Account: "a", Amount: c10, Kind: credits.KindPurchase, ExpiresAt: h.Clock.Now().Add(time.Hour), Key: "k"})
			wantErr(t, "expiring purchase", err, credits.ErrInvalidRequest)
			grant(t, h, "a", c10, credits.KindPurchase, time.Time{}, "k")
			h.Clock.Advance(10 * 365 * 24 * time.Hour)
			wantAvailable(t, h, "a", c10)
		}},
		{name: "ReserveCaptureByUsage", edit: noSignup, run: func(t *testing.T, h *Harness) {
			h.Account(t, credits.CreateAccountRequest{ID: "a"})
			grant(t, h, "a", whole(100), credits.KindPurchase, time.Time{}, "buy")
			q := h.Quote(t, video)
			if q.Total != whole(40) {
				t.Fatalf("quote total %s, want 40", q.Total)
			}
			hold := reserve(t, h, "a", q, "job")
			b := h.Balance(t, "a")
			if b.Available != whole(60) || b.Held != whole(40) {
				t.Fatalf("after reserve: %+v", b)
			}
			// The video came out 3.2 s long: billed 4 s at 8/s.
			res, err := h.Ledger.Capture(h.Ctx, credits.CaptureRequest{Hold: hold.ID, Usage: credits.Usage{Duration: 3200 * time.Millisecond}})
			wantErr(t, "capture", err, nil)
			if res.Charged != whole(32) || res.Released != whole(8) || res.Capped || res.Available != whole(68) {
				t.Fatalf("capture: %+v", res)
			}
			again, err := h.Ledger.Capture(h.Ctx, credits.CaptureRequest{Hold: hold.ID, Usage: credits.Usage{Duration: 3200 * time.Millisecond}})
			wantErr(t, "capture retry", err, nil)
			if !again.Replayed || again.Charged != res.Charged {
				t.Fatalf("retried capture is not a replay: %+v", again)
			}
			_, err = h.Ledger.Capture(h.Ctx, credits.CaptureRequest{Hold: hold.ID, Usage: credits.Usage{Duration: time.Second}})
			wantErr(t, "capture with other usage", err, credits.ErrHoldSettled)
			_, err = h.Ledger.Release(h.Ctx, credits.ReleaseRequest{Hold: hold.ID})
			wantErr(t, "release captured", err, credits.ErrHoldSettled)
			b = h.Balance(t, "a")
			if b.Available != whole(68) || b.Held.IsPositive() || b.Spent != whole(32) {
				t.Fatalf("after capture: %+v", b)
			}
			CheckInvariants(t, h, "a")
		}},
		{name: "CaptureNeverAboveQuote", edit: noSignup, run: func(t *testing.T, h *Harness) {
			h.Account(t, credits.CreateAccountRequest{ID: "a"})
			grant(t, h, "a", whole(100), credits.KindPurchase, time.Time{}, "buy")
			hold := reserve(t, h, "a", h.Quote(t, video), "job")
			res, err := h.Ledger.Capture(h.Ctx, credits.CaptureRequest{Hold: hold.ID, Usage: credits.Usage{Duration: time.Minute}})
			wantErr(t, "capture", err, nil)
			if res.Charged != whole(40) || !res.Capped {
				t.Fatalf("capture above quote: %+v", res)
			}
			hold2 := reserve(t, h, "a", h.Quote(t, video), "job2")
			_, err = h.Ledger.Capture(h.Ctx, credits.CaptureRequest{Hold: hold2.ID, Amount: whole(41)})
			wantErr(t, "explicit amount above hold", err, credits.ErrExceedsHold)
			CheckInvariants(t, h, "a")
		}},
		{name: "InsufficientUpFront", edit: noSignup, run: func(t *testing.T, h *Harness) {
			h.Account(t, credits.CreateAccountRequest{ID: "a"})
			grant(t, h, "a", whole(50), credits.KindPurchase, time.Time{}, "buy")
			// Holds count against available: 40 held leaves 10; a second 40 is refused.
			reserve(t, h, "a", h.Quote(t, video), "j1")
			_, err := h.Ledger.Reserve(h.Ctx, credits.ReserveRequest{Account: "a", Quote: h.Quote(t, video), Key: "j2"})
			var ie *credits.InsufficientCreditsError
			if !errors.As(err, &ie) || !errors.Is(err, credits.ErrInsufficientCredits) {
				t.Fatalf("second reserve: %v", err)
			}
			if ie.Available != c10 || ie.Requested != whole(40) || ie.Missing() != whole(30) {
				t.Fatalf("detail: %+v missing %s", ie, ie.Missing())
			}
			// The failure is recorded under the key: after a top-up, the same
			// key still fails the same way; a new key succeeds.
			grant(t, h, "a", whole(100), credits.KindPurchase, time.Time{}, "buy2")
			_, err = h.Ledger.Reserve(h.Ctx, credits.ReserveRequest{Account: "a", Quote: h.Quote(t, video), Key: "j2"})
			wantErr(t, "retry of a refused key", err, credits.ErrInsufficientCredits)
			reserve(t, h, "a", h.Quote(t, video), "j3")
			CheckInvariants(t, h, "a")
		}},
		{name: "RefundExact", edit: noSignup, run: func(t *testing.T, h *Harness) {
			h.Account(t, credits.CreateAccountRequest{ID: "a"})
			now := h.Clock.Now()
			grant(t, h, "a", c3, credits.KindPromo, now.Add(time.Hour), "promo")
			grant(t, h, "a", c10, credits.KindPurchase, time.Time{}, "buy")
			before := remainders(t, h, "a")
			ch, err := h.Ledger.Charge(h.Ctx, credits.ChargeRequest{Account: "a", Quote: h.Quote(t, image), Key: "img"})
			wantErr(t, "charge", err, nil)
			if ch.Charged != c7 || ch.Available != whole(6) {
				t.Fatalf("charge: %+v", ch)
			}
			r1, err := h.Ledger.Refund(h.Ctx, credits.RefundRequest{Charge: ch.Hold.ID, Amount: whole(2), Key: "r1"})
			wantErr(t, "partial refund", err, nil)
			if r1.Refunded != whole(2) {
				t.Fatalf("refund: %+v", r1)
			}
			r2, err := h.Ledger.Refund(h.Ctx, credits.RefundRequest{Charge: ch.Hold.ID, Key: "r2"})
			wantErr(t, "rest of refund", err, nil)
			if r2.Refunded != whole(5) || r2.Available != whole(13) {
				t.Fatalf("refund rest: %+v", r2)
			}
			again, err := h.Ledger.Refund(h.Ctx, credits.RefundRequest{Charge: ch.Hold.ID, Key: "r2"})
			if err != nil || !again.Replayed || again.Refunded != r2.Refunded {
				t.Fatalf("retried refund: %+v %v", again, err)
			}
			_, err = h.Ledger.Refund(h.Ctx, credits.RefundRequest{Charge: ch.Hold.ID, Key: "r3"})
			wantErr(t, "refund beyond the charge", err, credits.ErrRefundExceedsCharge)
			if diff := cmp.Diff(before, remainders(t, h, "a")); diff != "" {
				t.Fatalf("refund did not restore every bucket (-before +after):\n%s", diff)
			}
			b := h.Balance(t, "a")
			if b.Spent.IsPositive() || b.Available != whole(13) {
				t.Fatalf("balance: %+v", b)
			}
			hold := reserve(t, h, "a", h.Quote(t, image), "img2")
			_, err = h.Ledger.Release(h.Ctx, credits.ReleaseRequest{Hold: hold.ID})
			wantErr(t, "release", err, nil)
			_, err = h.Ledger.Refund(h.Ctx, credits.RefundRequest{Charge: hold.ID, Key: "r4"})
			wantErr(t, "refund of a released hold", err, credits.ErrNotCaptured)
			CheckInvariants(t, h, "a")
		}},
		{name: "HoldDeadline", edit: noSignup, run: func(t *testing.T, h *Harness) {
			h.Account(t, credits.CreateAccountRequest{ID: "a"})
			grant(t, h, "a", whole(100), credits.KindPurchase, time.Time{}, "buy")
			r, err := h.Ledger.Reserve(h.Ctx, credits.ReserveRequest{Account: "a", Quote: h.Quote(t, video), Key: "j", TTL: time.Minute})
			wantErr(t, "reserve", err, nil)
			h.Clock.Advance(time.Minute - time.Nanosecond)
			if b := h.Balance(t, "a"); b.Held != whole(40) {
				t.Fatalf("just before the deadline: %+v", b)
			}
			h.Clock.Advance(time.Nanosecond)
			if b := h.Balance(t, "a"); b.Held.IsPositive() || b.Available != whole(100) {
				t.Fatalf("at the deadline the hold must be released: %+v", b)
			}
			_, err = h.Ledger.Capture(h.Ctx, credits.CaptureRequest{Hold: r.Hold.ID, Usage: credits.Usage{Duration: time.Second}})
			wantErr(t, "capture after deadline", err, credits.ErrHoldExpired)
			_, err = h.Ledger.Release(h.Ctx, credits.ReleaseRequest{Hold: r.Hold.ID})
			wantErr(t, "release after deadline", err, credits.ErrHoldExpired)
			if _, err := h.Ledger.Sweep(h.Ctx); err != nil {
				t.Fatal(err)
			}
			es := h.History(t, "a")
			if last := es[len(es)-1]; last.Type != credits.EntryHoldExpired || !last.At.Equal(r.Hold.Deadline) {
				t.Fatalf("last entry: %+v", last)
			}
			CheckInvariants(t, h, "a")
		}},
		{name: "GrantExpiryExact", edit: noSignup, run: func(t *testing.T, h *Harness) {
			h.Account(t, credits.CreateAccountRequest{ID: "a"})
			at := h.Clock.Now().Add(time.Hour)
			grant(t, h, "a", c10, credits.KindPromo, at, "promo")
			_, err := h.Ledger.Charge(h.Ctx, credits.ChargeRequest{Account: "a", Quote: h.Quote(t, image), Key: "img"})
			wantErr(t, "charge", err, nil)
			h.Clock.Set(at.Add(-time.Nanosecond))
			wantAvailable(t, h, "a", c3)
			h.Clock.Set(at)
			b := h.Balance(t, "a")
			if !b.Available.IsZero() || b.Expired != c3 {
				t.Fatalf("at expiry exactly the remainder (3) expires: %+v", b)
			}
			res, err := h.Ledger.Sweep(h.Ctx)
			wantErr(t, "sweep", err, nil)
			if res.GrantsExpired != 1 {
				t.Fatalf("sweep: %+v", res)
			}
			res, err = h.Ledger.Sweep(h.Ctx)
			if err != nil || res.GrantsExpired != 0 {
				t.Fatalf("second sweep: %+v %v", res, err)
			}
			_, err = h.Ledger.Charge(h.Ctx, credits.ChargeRequest{Account: "a", Quote: h.Quote(t, credits.QuoteRequest{Tool: "upscale"}), Key: "up"})
			wantErr(t, "spend expired credits", err, credits.ErrInsufficientCredits)
			CheckInvariants(t, h, "a")
		}},
		{name: "GrantExpiringSoon", edit: func(c *credits.Config) { c.Signup, c.ExpiryWarning = credits.Reward{}, 24*time.Hour }, run: func(t *testing.T, h *Harness) {
			// A grant is warned about once, ExpiryWarning before its
			// credits expire, by a sweep or by the account's next
			// operation; purchased credits never expire, so never warn.
			start := h.Clock.Now()
			h.Account(t, credits.CreateAccountRequest{ID: "a"})
			promo := grant(t, h, "a", whole(30), credits.KindPromo, start.Add(72*time.Hour), "promo").Grant
			grant(t, h, "a", whole(10), credits.KindPurchase, time.Time{}, "buy")
			warnings := func(account string) []credits.Entry {
				t.Helper()
				es, err := h.Store.Entries(h.Ctx, credits.EntryFilter{Account: account, Types: []credits.EntryType{credits.EntryGrantExpiring}})
				if err != nil {
					t.Fatal(err)
				}
				return es
			}
			sweep := func() credits.SweepResult {
				t.Helper()
				r, err := h.Ledger.Sweep(h.Ctx)
				if err != nil {
					t.Fatal(err)
				}
				return r
			}
			h.Clock.Set(start.Add(48*time.Hour - time.Nanosecond))
			if r := sweep(); r.GrantsWarned != 0 || len(warnings("a")) != 0 {
				t.Fatalf("warned before ExpiresAt − 24 h: %+v", r)
			}
			h.Clock.Set(start.Add(48 * time.Hour))
			if r := sweep(); r.GrantsWarned != 1 {
				t.Fatalf("sweep at ExpiresAt − 24 h: %+v, want 1 warning", r)
			}
			if r := sweep(); r.GrantsWarned != 0 {
				t.Fatalf("a second sweep warned again: %+v", r)
			}
			w := warnings("a")
			if len(w) != 1 || w[0].Bucket != promo.ID || w[0].Amount != whole(30) || !w[0].At.Equal(start.Add(48*time.Hour)) || w[0].Kind != credits.KindPromo {
				t.Fatalf("warnings: %+v", w)
			}
			// Lazily: the account's next operation writes it, before its own
			// entry, at the instant it fell due.
			h.Account(t, credits.CreateAccountRequest{ID: "b"})
			grant(t, h, "b", whole(30), credits.KindPromo, h.Clock.Now().Add(30*time.Hour), "promo")
			h.Clock.Advance(7 * time.Hour)
			if _, err := h.Ledger.Charge(h.Ctx, credits.ChargeRequest{Account: "b", Quote: h.Quote(t, image), Key: "img"}); err != nil {
				t.Fatal(err)
			}
			hist := h.History(t, "b")
			if n := len(hist); n < 2 || hist[n-2].Type != credits.EntryGrantExpiring || hist[n-1].Type != credits.EntryCharge || !hist[n-2].At.Equal(h.Clock.Now().Add(-time.Hour)) {
				t.Fatalf("history of b: %+v", hist)
			}
			if r := sweep(); r.GrantsWarned != 0 {
				t.Fatalf("a sweep after the lazy warning warned again: %+v", r)
			}
			h.Clock.Set(start.Add(73 * time.Hour)) // a's promo expires: no new warning
			sweep()
			if len(warnings("a")) != 1 {
				t.Fatalf("warnings of a after its expiry: %+v", warnings("a"))
			}
			CheckInvariants(t, h, "a")
			CheckInvariants(t, h, "b")
		}},
		{name: "BalanceLowAndRecovered", run: func(t *testing.T, h *Harness) {
			// The case: reserving 40 of 50 credits under a threshold
			// of 20 is not low (the job may give them back); the capture
			// that leaves 26 is not either; a charge that takes the balance
			// below is, once, retried or not; a top-up recovers it, once.
			h.Account(t, credits.CreateAccountRequest{ID: "a", LowBalanceThreshold: whole(20)}) // signup 50
			count := func() (low, recovered int) {
				t.Helper()
				es, err := h.Store.Entries(h.Ctx, credits.EntryFilter{Account: "a", Types: []credits.EntryType{credits.EntryBalanceLow, credits.EntryBalanceRecovered}})
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range es {
					if e.Type == credits.EntryBalanceLow {
						low++
					} else {
						recovered++
					}
				}
				return low, recovered
			}
			r := reserve(t, h, "a", h.Quote(t, video), "job") // 40 held
			if low, _ := count(); low != 0 || len(h.LowBalance) != 0 {
				t.Fatalf("a hold alone signalled low: %d entries, %v", low, h.LowBalance)
			}
			if _, err := h.Ledger.Capture(h.Ctx, credits.CaptureRequest{Hold: r.ID, Usage: credits.Usage{Duration: 3 * time.Second}}); err != nil {
				t.Fatal(err) // 24 charged: 26 left
			}
			if low, _ := count(); low != 0 {
				t.Fatal("26 of a threshold of 20 signalled low")
			}
			charge := credits.ChargeRequest{Account: "a", Quote: h.Quote(t, image), Key: "img"}
			for range 2 { // 7: 19 left; the retry replays, signalling nothing more
				if _, err := h.Ledger.Charge(h.Ctx, charge); err != nil {
					t.Fatal(err)
				}
			}
			if low, rec := count(); low != 1 || rec != 0 || len(h.LowBalance) != 1 || h.LowBalance[0].Available != whole(19) {
				t.Fatalf("below the threshold: %d low entries, %d recovered, events %+v", low, rec, h.LowBalance)
			}
			grant(t, h, "a", whole(1), credits.KindPurchase, time.Time{}, "top-up")
			if low, rec := count(); low != 1 || rec != 1 {
				t.Fatalf("back at the threshold: %d low entries, %d recovered", low, rec)
			}
			CheckInvariants(t, h, "a")
		}},
		{name: "VoidTakesTheGrantsRestoredCredits", edit: noSignup, run: func(t *testing.T, h *Harness) {
			// A found bug: a grant that expired while a hold had its
			// credits out gets them back in a restored grant; voiding the
			// original left the restored one spendable. Voiding takes the
			// restored grants too, live or with their credits out again.
			h.Account(t, credits.CreateAccountRequest{ID: "a"})
			grant(t, h, "a", whole(100), credits.KindPurchase, time.Time{}, "fund")
			at := h.Clock.Now().Add(10 * time.Minute)
			promo := grant(t, h, "a", c10, credits.KindPromo, at, "promo").Grant
			first := reserve(t, h, "a", h.Quote(t, image), "img-1") // 7 of the promo
			h.Clock.Set(at.Add(time.Minute))                        // the promo's other 3 expire
			if _, err := h.Ledger.Release(h.Ctx, credits.ReleaseRequest{Hold: first.ID}); err != nil {
				t.Fatal(err)
			}
			wantAvailable(t, h, "a", whole(107))                     // 7 back, in a grant restored from the promo
			second := reserve(t, h, "a", h.Quote(t, image), "img-2") // all 7 of the restored grant
			if second.Portions[0].Amount != c7 {
				t.Fatalf("the second hold took %+v, want the restored grant's 7 first", second.Portions)
			}
			v, err := h.Ledger.VoidGrant(h.Ctx, credits.VoidGrantRequest{Account: "a", Grant: promo.ID, Reason: "abuse", Key: "void"})
			if err != nil || !v.Voided.IsZero() || v.Available != whole(100) {
				t.Fatalf("void: %+v %v (nothing left in the promo nor in its restored grant)", v, err)
			}
			rel, err := h.Ledger.Release(h.Ctx, credits.ReleaseRequest{Hold: second.ID})
			if err != nil || rel.Available != whole(100) {
				t.Fatalf("release into the voided promo's restored grant: %+v %v; want the 7 revoked, 100 available", rel, err)
			}
			b := h.Balance(t, "a")
			if b.Debited != c7 || b.Expired != c3 || b.Available != whole(100) {
				t.Fatalf("balance: %+v", b)
			}
			// The restored grant is voided: a charge can never reach it.
			if _, err := h.Ledger.Charge(h.Ctx, credits.ChargeRequest{Account: "a", Quote: h.Quote(t, image), Key: "img-3"}); err != nil {
				t.Fatal(err)
			}
			wantAvailable(t, h, "a", whole(93))
			CheckInvariants(t, h, "a")

			// Live when the original is voided: revoked at once.
			h.Account(t, credits.CreateAccountRequest{ID: "b"})
			at = h.Clock.Now().Add(10 * time.Minute)
			promo = grant(t, h, "b", c10, credits.KindPromo, at, "promo").Grant
			third := reserve(t, h, "b", h.Quote(t, image), "img-1")
			h.Clock.Set(at.Add(time.Minute))
			if _, err := h.Ledger.Release(h.Ctx, credits.ReleaseRequest{Hold: third.ID}); err != nil {
				t.Fatal(err)
			}
			v, err = h.Ledger.VoidGrant(h.Ctx, credits.VoidGrantRequest{Account: "b", Grant: promo.ID, Reason: "abuse", Key: "void"})
			if err != nil || v.Voided != c7 || !v.Available.IsZero() {
				t.Fatalf("void with a live restored grant: %+v %v, want 7 voided", v, err)
			}
			CheckInvariants(t, h, "b")
		}},
		{name: "ReleaseIntoExpiredGrant", edit: noSignup, run: func(t *testing.T, h *Harness) {
			// The rule: credits given back to a grant that expired in the
			// meantime come back in a new grant of the same kind that
			// expires RestoreGrace (24 h) after the original did. They are
			// never lost to a failed job, and never stretched further.
			h.Account(t, credits.CreateAccountRequest{ID: "a"})
			at := h.Clock.Now().Add(10 * time.Minute)
			promo := grant(t, h, "a", c10, credits.KindPromo, at, "promo").Grant
			hold := reserve(t, h, "a", h.Quote(t, image), "img")
			h.Clock.Set(at.Add(5 * time.Minute))
			b := h.Balance(t, "a")
			if b.Available.IsPositive() || b.Expired != c3 || b.Held != c7 {
				t.Fatalf("after expiry: %+v", b)
			}
			rel, err := h.Ledger.Release(h.Ctx, credits.ReleaseRequest{Hold: hold.ID})
			wantErr(t, "release", err, nil)
			if rel.Available != c7 {
				t.Fatalf("release: %+v", rel)
			}
			st, err := h.Store.View(h.Ctx, credits.Query{Account: "a"})
			wantErr(t, "view", err, nil)
			var restored *credits.Bucket
			for _, bk := range st.Buckets {
				if bk.RestoredFrom == promo.ID {
					restored = bk
				}
			}
			if restored == nil || restored.Kind != credits.KindPromo || restored.Remaining != c7 ||
				!restored.ExpiresAt.Equal(at.Add(24*time.Hour)) {
				t.Fatalf("restored bucket: %+v", restored)
			}
			// Held again and released after the restored grant expired: the
			// credits keep the restored grant's deadline, so they expire at once.
			r2, err := h.Ledger.Reserve(h.Ctx, credits.ReserveRequest{Account: "a", Quote: h.Quote(t, credits.QuoteRequest{Tool: "upscale"}), Key: "up", TTL: 48 * time.Hour})
			wantErr(t, "second reserve", err, nil)
			hold2 := r2.Hold
			h.Clock.Set(at.Add(25 * time.Hour))
			_, err = h.Ledger.Release(h.Ctx, credits.ReleaseRequest{Hold: hold2.ID})
			wantErr(t, "second release", err, nil)
			b = h.Balance(t, "a")
			if b.Available.IsPositive() || b.Expired != c10 {
				t.Fatalf("after the grace: %+v", b)
			}
			CheckInvariants(t, h, "a")
		}},
		{name: "Idempotency", edit: noSignup, run: func(t *testing.T, h *Harness) {
			h.Account(t, credits.CreateAccountRequest{ID: "a"})
			g1 := grant(t, h, "a", c10, credits.KindPurchase, time.Time{}, "topup-1")
			g2 := grant(t, h, "a", c10, credits.KindPurchase, time.Time{}, "topup-1")
			if !g2.Replayed || g2.Grant.ID != g1.Grant.ID {
				t.Fatalf("the same top-up twice must be applied once: %+v", g2)
			}
			_, err := h.Ledger.Grant(h.Ctx, credits.GrantRequest{Account: "a", Amount: whole(11), Kind: credits.KindPurchase, Key: "topup-1"})
			var ce *credits.IdempotencyConflictError
			if !errors.As(err, &ce) || ce.Key != "topup-1" || !cmp.Equal(ce.Fields, []string{"amount"}) {
				t.Fatalf("conflict: %v (%+v)", err, ce)
			}
			q := h.Quote(t, image)
			_, err = h.Ledger.Reserve(h.Ctx, credits.ReserveRequest{Account: "a", Quote: q, Key: "topup-1"})
			wantErr(t, "key reused for another operation", err, credits.ErrIdempotencyConflict)
			r1, err := h.Ledger.Reserve(h.Ctx, credits.ReserveRequest{Account: "a", Quote: q, Key: "job"})
			wantErr(t, "reserve", err, nil)
			h.Clock.Advance(time.Minute) // a later retry, with a re-quoted (same price) quote
			r2, err := h.Ledger.Reserve(h.Ctx, credits.ReserveRequest{Account: "a", Quote: h.Quote(t, image), Key: "job"})
			wantErr(t, "retry", err, nil)
			if !r2.Replayed || r2.Hold.ID != r1.Hold.ID {
				t.Fatalf("retry: %+v", r2)
			}
			r1.Replayed = true
			if diff := cmp.Diff(r1, r2); diff != "" {
				t.Fatalf("a replay returns the first result (-first +replay):\n%s", diff)
			}
			if b := h.Balance(t, "a"); b.Held != c7 {
				t.Fatalf("one hold only: %+v", b)
			}
			CheckInvariants(t, h, "a")
		}},
		{name: "Daily", edit: func(c *credits.Config) {
			c.Signup = credits.Reward{}
			c.DayLocation = time.FixedZone("UTC+2", 2*3600)
		}, run: func(t *testing.T, h *Harness) {
			h.Account(t, credits.CreateAccountRequest{ID: "a"})
			h.Clock.Set(time.Date(2026, 11, 25, 21, 30, 0, 0, time.UTC)) // 23:30 at UTC+2
			d1, err := h.Ledger.ClaimDaily(h.Ctx, "a")
			wantErr(t, "claim", err, nil)
			if d1.Replayed || d1.Grant.Amount != c10 || !d1.NextClaimAt.Equal(time.Date(2026, 11, 25, 22, 0, 0, 0, time.UTC)) {
				t.Fatalf("claim: %+v", d1)
			}
			h.Clock.Advance(20 * time.Minute)
			d2, err := h.Ledger.ClaimDaily(h.Ctx, "a")
			if err != nil || !d2.Replayed || d2.Grant.ID != d1.Grant.ID {
				t.Fatalf("second claim the same day: %+v %v", d2, err)
			}
			h.Clock.Advance(20 * time.Minute) // 00:10 the next day at UTC+2
			d3, err := h.Ledger.ClaimDaily(h.Ctx, "a")
			if err != nil || d3.Replayed {
				t.Fatalf("claim the next day: %+v %v", d3, err)
			}
			wantAvailable(t, h, "a", whole(20))
			CheckInvariants(t, h, "a")
		}},
		{name: "Teams", edit: noSignup, run: func(t *testing.T, h *Harness) {
			h.Account(t, credits.CreateAccountRequest{ID: "team", Team: true, Members: []string{"bob", "ann"}})
			grant(t, h, "team", whole(100), credits.KindPurchase, time.Time{}, "buy")
			q := h.Quote(t, image)
			_, err := h.Ledger.Charge(h.Ctx, credits.ChargeRequest{Account: "team", Member: "eve", Quote: q, Key: "e1"})
			wantErr(t, "outsider", err, credits.ErrNotMember)
			_, err = h.Ledger.Reserve(h.Ctx, credits.ReserveRequest{Account: "team", Quote: q, Key: "e2"})
			wantErr(t, "no member", err, credits.ErrNotMember)
			for i, m := range []string{"ann", "bob", "ann"} {
				_, err = h.Ledger.Charge(h.Ctx, credits.ChargeRequest{Account: "team", Member: m, Quote: q, Key: fmt.Sprint("c", i)})
				wantErr(t, "member charge", err, nil)
			}
			_, err = h.Ledger.UpdateMembers(h.Ctx, credits.MembersRequest{Account: "team", Remove: []string{"bob"}, Add: []string{"cy"}})
			wantErr(t, "members", err, nil)
			_, err = h.Ledger.Charge(h.Ctx, credits.ChargeRequest{Account: "team", Member: "bob", Quote: q, Key: "c9"})
			wantErr(t, "removed member", err, credits.ErrNotMember)
			rep, err := h.Ledger.Spending(h.Ctx, credits.SpendingRequest{Account: "team", By: credits.ByMember})
			wantErr(t, "spending", err, nil)
			want := []credits.SpendLine{
				{Group: "ann", Charged: whole(14), Net: whole(14), Charges: 2},
				{Group: "bob", Charged: c7, Net: c7, Charges: 1},
			}
			if diff := cmp.Diff(want, rep.Lines); diff != "" {
				t.Fatalf("spending by member (-want +got):\n%s", diff)
			}
			CheckInvariants(t, h, "team")
		}},
		{name: "SpendingByToolAndDay", edit: noSignup, run: func(t *testing.T, h *Harness) {
			h.Account(t, credits.CreateAccountRequest{ID: "a"})
			grant(t, h, "a", whole(1000), credits.KindPurchase, time.Time{}, "buy")
			start := h.Clock.Now()
			ch, err := h.Ledger.Charge(h.Ctx, credits.ChargeRequest{Account: "a", Quote: h.Quote(t, image), Key: "i1"})
			wantErr(t, "charge", err, nil)
			h.Clock.Advance(24 * time.Hour)
			hold := reserve(t, h, "a", h.Quote(t, video), "v1")
			_, err = h.Ledger.Capture(h.Ctx, credits.CaptureRequest{Hold: hold.ID, Usage: credits.Usage{Duration: 2 * time.Second}})
			wantErr(t, "capture", err, nil)
			_, err = h.Ledger.Refund(h.Ctx, credits.RefundRequest{Charge: ch.Hold.ID, Key: "r"})
			wantErr(t, "refund", err, nil)
			rep, err := h.Ledger.Spending(h.Ctx, credits.SpendingRequest{Account: "a", By: credits.ByTool})
			wantErr(t, "by tool", err, nil)
			want := []credits.SpendLine{
				{Group: "image", Charged: c7, Refunded: c7, Charges: 1},
				{Group: "video", Charged: whole(16), Net: whole(16), Charges: 1},
			}
			if diff := cmp.Diff(want, rep.Lines); diff != "" {
				t.Fatalf("by tool (-want +got):\n%s", diff)
			}
			rep, err = h.Ledger.Spending(h.Ctx, credits.SpendingRequest{Account: "a", By: credits.ByDay, Since: start.Add(time.Hour)})
			wantErr(t, "by day", err, nil)
			if len(rep.Lines) != 1 || rep.Lines[0].Group != "2026-11-26" || rep.Total.Net != whole(9) {
				t.Fatalf("by day since the second day: %+v", rep)
			}
		}},
		{name: "LowBalance", edit: func(c *credits.Config) { c.LowBalanceThreshold = whole(20) }, run: func(t *testing.T, h *Harness) {
			h.Account(t, credits.CreateAccountRequest{ID: "a"}) // 50 signup
			for i := range 4 {
				_, err := h.Ledger.Charge(h.Ctx, credits.ChargeRequest{Account: "a", Quote: h.Quote(t, image), Key: fmt.Sprint("i", i)})
				wantErr(t, "charge", err, nil)
			}
			// 50 → 43 → 36 → 29 → 22: still above 20; the fifth crosses it.
			if len(h.LowBalance) != 0 {
				t.Fatalf("early signal: %+v", h.LowBalance)
			}
			_, err := h.Ledger.Charge(h.Ctx, credits.ChargeRequest{Account: "a", Quote: h.Quote(t, image), Key: "i5"})
			wantErr(t, "charge", err, nil)
			_, err = h.Ledger.Charge(h.Ctx, credits.ChargeRequest{Account: "a", Quote: h.Quote(t, image), Key: "i5"}) // replay: no new signal
			wantErr(t, "replay", err, nil)
			_, err = h.Ledger.Charge(h.Ctx, credits.ChargeRequest{Account: "a", Quote: h.Quote(t, image), Key: "i6"}) // already below
			wantErr(t, "charge", err, nil)
			if len(h.LowBalance) != 1 || h.LowBalance[0].Available != whole(15) || h.LowBalance[0].Threshold != whole(20) {
				t.Fatalf("signals: %+v", h.LowBalance)
			}
			if b := h.Balance(t, "a"); !b.Low {
				t.Fatalf("balance not low: %+v", b)
			}
		}},
		{name: "RunHelper", edit: noSignup, run: func(t *testing.T, h *Harness) {
			h.Account(t, credits.CreateAccountRequest{ID: "a"})
			grant(t, h, "a", whole(100), credits.KindPurchase, time.Time{}, "buy")
			q := h.Quote(t, video)
			boom := errors.New("model crashed")
			_, err := h.Ledger.Run(h.Ctx, credits.ReserveRequest{Account: "a", Quote: q, Key: "fail"}, func(ctx context.Context, hold credits.Hold) (credits.Usage, error) {
				if b := h.Balance(t, "a"); b.Held != whole(40) {
					t.Errorf("during the job: %+v", b)
				}
				return credits.Usage{}, boom
			})
			if !errors.Is(err, boom) {
				t.Fatalf("Run returns the job's error, got %v", err)
			}
			wantAvailable(t, h, "a", whole(100))
			func() {
				defer func() {
					if p := recover(); p != "kaboom" {
						t.Fatalf("Run must re-panic the job's panic, got %v", p)
					}
				}()
				_, _ = h.Ledger.Run(h.Ctx, credits.ReserveRequest{Account: "a", Quote: q, Key: "panic"}, func(context.Context, credits.Hold) (credits.Usage, error) {
					panic("kaboom")
				})
			}()
			wantAvailable(t, h, "a", whole(100))
			ctx, cancel := context.WithCancel(h.Ctx)
			_, err = h.Ledger.Run(ctx, credits.ReserveRequest{Account: "a", Quote: q, Key: "cancel"}, func(ctx context.Context, _ credits.Hold) (credits.Usage, error) {
				cancel()
				return credits.Usage{}, ctx.Err()
			})
			wantErr(t, "cancelled job", err, context.Canceled)
			wantAvailable(t, h, "a", whole(100))
			res, err := h.Ledger.Run(h.Ctx, credits.ReserveRequest{Account: "a", Quote: q, Key: "ok"}, func(context.Context, credits.Hold) (credits.Usage, error) {
				return credits.Usage{Duration: 3 * time.Second}, nil
			})
			if err != nil || res.Charged != whole(24) {
				t.Fatalf("successful job: %+v %v", res, err)
			}
			wantAvailable(t, h, "a", whole(76))
			CheckInvariants(t, h, "a")
		}},
		{name: "HistoryPaging", run: func(t *testing.T, h *Harness) {
			h.Account(t, credits.CreateAccountRequest{ID: "a"})
			for i := range 20 {
				grant(t, h, "a", c1, credits.KindPromo, time.Time{}, fmt.Sprint("g", i))
			}
			all := h.History(t, "a") // pages of 7
			if len(all) != 21 {
				t.Fatalf("entries: %d, want 21", len(all))
			}
			for i, e := range all {
				if e.Seq != int64(i+1) {
					t.Fatalf("entry %d has seq %d", i, e.Seq)
				}
			}
			if all[20].Available != whole(70) {
				t.Fatalf("last entry available %s", all[20].Available)
			}
		}},
		{name: "ConcurrentCreate", run: func(t *testing.T, h *Harness) {
			var wg sync.WaitGroup
			var mu sync.Mutex
			created, replayed := 0, 0
			for range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r, err := h.Ledger.CreateAccount(h.Ctx, credits.CreateAccountRequest{ID: "race"})
					if err != nil {
						t.Errorf("create: %v", err)
						return
					}
					mu.Lock()
					defer mu.Unlock()
					if r.Replayed {
						replayed++
					} else {
						created++
					}
				}()
			}
			wg.Wait()
			if created != 1 || replayed != 15 {
				t.Fatalf("created %d, replayed %d", created, replayed)
			}
			wantAvailable(t, h, "race", whole(50))
		}},
	}
}

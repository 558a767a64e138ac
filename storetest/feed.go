package storetest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creditkit/credits"
)

// RunFeed checks a store's feed ([credits.FeedStore]) through
// [credits.Ledger.Feed]:
//
//   - "Order": every entry, once, each account's in Seq order, resumed
//     from any cursor, in pages of any size;
//   - "Consumer": Next starts after what was acknowledged, so what was not
//     is delivered again; a second holder is refused the lease until the
//     first one's expires, then resumes after the first one's last
//     acknowledgement, and the first one can no longer acknowledge;
//   - "Crashes": 16 writers on many accounts while a consumer reads,
//     killed and restarted at random points (by its own holder, or by
//     another once the lease expired); afterwards every entry was
//     delivered at least once, each account's in order, and the
//     deduplicated deliveries are exactly every account's history.
func RunFeed(t *testing.T, newStore NewStore) {
	t.Run("Order", func(t *testing.T) { runFeedOrder(t, newStore(t)) })
	t.Run("Consumer", func(t *testing.T) { runFeedConsumer(t, newStore(t)) })
	t.Run("Crashes", func(t *testing.T) { runFeedCrashes(t, newStore(t)) })
}

func feedStore(t *testing.T, s credits.Store) credits.FeedStore {
	t.Helper()
	fs, ok := s.(credits.FeedStore)
	if !ok {
		t.Fatalf("%T does not implement credits.FeedStore: the ledger's feed cannot run on it", s)
	}
	return fs
}

// feedWork makes n accounts and some history on each: grants, a charge, a
// hold and its capture or release.
func feedWork(t TB, h *Harness, prefix string, n int) []string {
	t.Helper()
	var ids []string
	image := h.Quote(t, credits.QuoteRequest{Tool: "image"})
	for i := range n {
		id := fmt.Sprintf("%s%d", prefix, i)
		ids = append(ids, id)
		h.Account(t, credits.CreateAccountRequest{ID: id})
		if _, err := h.Ledger.Charge(h.Ctx, credits.ChargeRequest{Account: id, Quote: image, Key: "c"}); err != nil {
			t.Fatalf("charge: %v", err)
		}
		r, err := h.Ledger.Reserve(h.Ctx, credits.ReserveRequest{Account: id, Quote: image, Key: "r"})
		if err != nil {
			t.Fatalf("reserve: %v", err)
		}
		if i%2 == 0 {
			_, err = h.Ledger.Capture(h.Ctx, credits.CaptureRequest{Hold: r.Hold.ID, Account: id})
		} else {
			_, err = h.Ledger.Release(h.Ctx, credits.ReleaseRequest{Hold: r.Hold.ID, Account: id})
		}
		if err != nil {
			t.Fatalf("settle: %v", err)
		}
	}
	return ids
}

// histories reads every entry of the accounts from the store.
func histories(t TB, h *Harness, accounts []string) map[string][]credits.Entry {
	t.Helper()
	out := map[string][]credits.Entry{}
	for _, a := range accounts {
		es, err := h.Store.Entries(h.Ctx, credits.EntryFilter{Account: a})
		if err != nil {
			t.Fatalf("Entries(%s): %v", a, err)
		}
		out[a] = es
	}
	return out
}

func runFeedOrder(t *testing.T, store credits.Store) {
	fs := feedStore(t, store)
	h := NewHarness(t, store, nil)
	// What the store held before (a store shared by other tests) is read
	// first, to know where this test's entries start.
	start := ""
	for {
		items, err := fs.ReadFeed(h.Ctx, start, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(items) == 0 {
			break
		}
		start = items[len(items)-1].Cursor
	}
	accounts := feedWork(t, h, "order-", 5)
	want := histories(t, h, accounts)
	for _, page := range []int{1, 3, 1000} {
		got := map[string][]credits.Entry{}
		cursor, reads := start, 0
		for {
			items, err := fs.ReadFeed(h.Ctx, cursor, page)
			if err != nil {
				t.Fatal(err)
			}
			if len(items) > page {
				t.Fatalf("ReadFeed returned %d items for a limit of %d", len(items), page)
			}
			if len(items) == 0 {
				break
			}
			for _, it := range items {
				got[it.Entry.Account] = append(got[it.Entry.Account], it.Entry)
			}
			cursor = items[len(items)-1].Cursor
			if reads++; reads > 10_000 {
				t.Fatal("the feed does not end")
			}
		}
		for _, a := range accounts {
			if !sameEntries(got[a], want[a]) {
				t.Fatalf("pages of %d: the feed has %d entries of %s, %v; the history %d, %v", page, len(got[a]), a, seqsOf(got[a]), len(want[a]), seqsOf(want[a]))
			}
		}
	}
	if _, err := fs.ReadFeed(h.Ctx, "not a cursor", 10); !errors.Is(err, credits.ErrInvalidRequest) {
		t.Fatalf("a cursor ReadFeed never made: %v, want ErrInvalidRequest", err)
	}
}

func sameEntries(a, b []credits.Entry) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		x.Job, y.Job = "", ""
		if x.Account != y.Account || x.Seq != y.Seq || x.Type != y.Type || x.Amount != y.Amount || x.Available != y.Available || !x.At.Equal(y.At) || x.Hold != y.Hold || x.Bucket != y.Bucket {
			return false
		}
	}
	return true
}

func seqsOf(es []credits.Entry) []int64 {
	out := make([]int64, len(es))
	for i, e := range es {
		out[i] = e.Seq
	}
	return out
}

func runFeedConsumer(t *testing.T, store credits.Store) {
	h := NewHarness(t, store, nil)
	name := fmt.Sprintf("consumer-%x", time.Now().UnixNano())
	one, err := h.Ledger.Feed(credits.FeedConfig{Name: name, Holder: "one", LeaseTTL: time.Minute, Batch: 4})
	if err != nil {
		t.Fatal(err)
	}
	// A new consumer starts at the first entry ever written: skip what
	// other tests wrote, acknowledging as it goes.
	drain := func(f *credits.Feed) []credits.Event {
		t.Helper()
		var all []credits.Event
		for {
			evs, err := f.Next(h.Ctx)
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			if len(evs) == 0 {
				return all
			}
			all = append(all, evs...)
			if err := f.Ack(h.Ctx, evs[len(evs)-1]); err != nil {
				t.Fatalf("Ack: %v", err)
			}
		}
	}
	drain(one)
	accounts := feedWork(t, h, name+"-", 2)
	evs, err := one.Next(h.Ctx)
	if err != nil || len(evs) != 4 {
		t.Fatalf("Next: %d events, %v; want a batch of 4", len(evs), err)
	}
	again, err := one.Next(h.Ctx)
	if err != nil || len(again) != 4 || again[0].ID != evs[0].ID {
		t.Fatalf("Next without an Ack must deliver the same events again: %v %v", again, err)
	}
	if evs[0].ID != credits.EventID(evs[0].Account, evs[0].Seq) {
		t.Fatalf("event ID %q", evs[0].ID)
	}
	for _, e := range evs {
		if e.Hold != "" && e.Job == "" {
			t.Fatalf("event %s about hold %s has no job", e.ID, e.Hold)
		}
	}
	if err := one.Ack(h.Ctx, evs[1]); err != nil {
		t.Fatal(err)
	}
	// An event of another consumer cannot move this one's cursor.
	stranger, err := h.Ledger.Feed(credits.FeedConfig{Name: name + "-other", Holder: "one"})
	if err != nil {
		t.Fatal(err)
	}
	if err := stranger.Ack(h.Ctx, evs[3]); !errors.Is(err, credits.ErrInvalidRequest) {
		t.Fatalf("Ack of another consumer's event: %v, want ErrInvalidRequest", err)
	}
	// Another holder: refused while the lease lasts.
	two, err := h.Ledger.Feed(credits.FeedConfig{Name: name, Holder: "two", LeaseTTL: time.Minute, Batch: 4})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := two.Next(h.Ctx); !errors.Is(err, credits.ErrFeedLeased) {
		t.Fatalf("a second holder while the lease lasts: %v, want ErrFeedLeased", err)
	}
	// Renewed, the lease lasts a TTL from the renewal.
	h.Clock.Advance(50 * time.Second)
	if err := one.Renew(h.Ctx); err != nil {
		t.Fatalf("Renew by the holder: %v", err)
	}
	h.Clock.Advance(30 * time.Second)
	if _, err := two.Next(h.Ctx); !errors.Is(err, credits.ErrFeedLeased) {
		t.Fatalf("a second holder after the lease was renewed: %v, want ErrFeedLeased", err)
	}
	if err := two.Renew(h.Ctx); !errors.Is(err, credits.ErrFeedLeased) {
		t.Fatalf("Renew by another holder: %v, want ErrFeedLeased", err)
	}
	h.Clock.Advance(30 * time.Second) // the first holder's lease expires
	taken, err := two.Next(h.Ctx)
	if err != nil || len(taken) == 0 || taken[0].ID != evs[2].ID {
		t.Fatalf("the second holder resumes after the first one's last Ack (%s): %v %v", evs[1].ID, taken, err)
	}
	if err := one.Ack(h.Ctx, evs[3]); !errors.Is(err, credits.ErrFeedLeased) {
		t.Fatalf("an Ack by a holder that lost the lease: %v, want ErrFeedLeased", err)
	}
	rest := append(taken[:0:0], taken...)
	if err := two.Ack(h.Ctx, taken[len(taken)-1]); err != nil {
		t.Fatal(err)
	}
	rest = append(rest, drain(two)...)
	want := histories(t, h, accounts)
	got := map[string][]credits.Entry{}
	for _, e := range append(evs[:2:2], rest...) {
		got[e.Account] = append(got[e.Account], e.Entry)
	}
	for _, a := range accounts {
		if !sameEntries(got[a], want[a]) {
			t.Fatalf("%s: delivered %v, history %v", a, seqsOf(got[a]), seqsOf(want[a]))
		}
	}
}

// runFeedCrashes runs 16 writers on many accounts while one consumer reads,
// and kills it at random points.
func runFeedCrashes(t *testing.T, store credits.Store) {
	h := NewHarness(t, store, func(c *credits.Config) { c.OnLowBalance = nil })
	name := fmt.Sprintf("crashes-%x", time.Now().UnixNano())
	// Start after what other tests wrote.
	skip, err := h.Ledger.Feed(credits.FeedConfig{Name: name, Holder: "setup", LeaseTTL: time.Second, Batch: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for {
		evs, err := skip.Next(h.Ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			break
		}
		if err := skip.Ack(h.Ctx, evs[len(evs)-1]); err != nil {
			t.Fatal(err)
		}
	}
	h.Clock.Advance(time.Second) // the set-up holder's lease expires
	const writers, accounts, rounds = 16, 40, 12
	var ids []string
	for i := range accounts {
		id := fmt.Sprintf("%s-%d", name, i)
		ids = append(ids, id)
		h.Account(t, credits.CreateAccountRequest{ID: id})
	}
	image := h.Quote(t, credits.QuoteRequest{Tool: "image"})
	var wg sync.WaitGroup
	var writing atomic.Int32
	writing.Store(writers)
	for w := range writers {
		wg.Go(func() {
			defer writing.Add(-1)
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for r := range rounds {
				id := ids[rng.IntN(len(ids))]
				key := fmt.Sprintf("w%d-%d", w, r)
				var err error
				switch rng.IntN(3) {
				case 0:
					_, err = h.Ledger.Grant(h.Ctx, credits.GrantRequest{Account: id, Amount: credits.Whole(5), Kind: credits.KindPromo, Key: key})
				case 1:
					_, err = h.Ledger.Charge(h.Ctx, credits.ChargeRequest{Account: id, Quote: image, Key: key})
				default:
					var res credits.ReserveResult
					if res, err = h.Ledger.Reserve(h.Ctx, credits.ReserveRequest{Account: id, Quote: image, Key: key}); err == nil {
						_, err = h.Ledger.Release(h.Ctx, credits.ReleaseRequest{Hold: res.Hold.ID, Account: id})
					}
				}
				if err != nil && !errors.Is(err, credits.ErrInsufficientCredits) {
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		})
	}
	// The consumer: reads, sometimes acknowledges, and crashes at random
	// (a new Feed, by the same holder restarting, or by another holder
	// once the dead one's lease expired).
	rng := rand.New(rand.NewPCG(7, 7))
	var delivered []credits.Event
	crashes, takeovers := 0, 0
	newFeed := func(holder string) *credits.Feed {
		f, err := h.Ledger.Feed(credits.FeedConfig{Name: name, Holder: holder, LeaseTTL: time.Second, Batch: 1 + rng.IntN(20)})
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	holder := "a"
	f := newFeed(holder)
	quiet, polls := 0, 0
	for quiet < 3 {
		if polls++; polls > 100_000 {
			t.Fatalf("the feed never ran dry: %d events delivered", len(delivered))
		}
		done := writing.Load() == 0
		evs, err := f.Next(h.Ctx)
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		delivered = append(delivered, evs...)
		switch {
		case len(evs) > 0 && rng.IntN(5) == 0: // crash before acknowledging
			crashes++
			if rng.IntN(2) == 0 {
				f = newFeed(holder) // the same holder restarts
			} else {
				h.Clock.Advance(time.Second) // it never comes back: another takes over
				holder += "x"
				f, takeovers = newFeed(holder), takeovers+1
			}
		case len(evs) > 0:
			// Acknowledge all, or only part, of the batch.
			if err := f.Ack(h.Ctx, evs[rng.IntN(len(evs))]); err != nil {
				t.Fatalf("Ack: %v", err)
			}
		}
		if done && len(evs) == 0 {
			quiet++
		}
		if len(evs) == 0 && !done {
			time.Sleep(time.Millisecond)
		}
	}
	wg.Wait()
	// Every account's deliveries: in order (a redelivery may go back to an
	// earlier entry, never forward past one not yet delivered), and,
	// deduplicated, exactly its history.
	got := map[string][]credits.Entry{}
	next := map[string]int64{}
	for _, e := range delivered {
		if e.Seq > next[e.Account]+1 {
			t.Fatalf("%s: entry %d delivered before entry %d", e.Account, e.Seq, next[e.Account]+1)
		}
		if e.Seq == next[e.Account]+1 {
			next[e.Account] = e.Seq
			got[e.Account] = append(got[e.Account], e.Entry)
		}
	}
	want := histories(t, h, ids)
	for _, a := range ids {
		if !sameEntries(got[a], want[a]) {
			t.Fatalf("%s: delivered %v; the history %v", a, seqsOf(got[a]), seqsOf(want[a]))
		}
	}
	t.Logf("%d deliveries of %d entries, %d crashes (%d taken over by another holder)", len(delivered), func() (n int) {
		for _, es := range want {
			n += len(es)
		}
		return n
	}(), crashes, takeovers)
}

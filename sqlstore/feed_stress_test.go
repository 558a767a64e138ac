package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creditkit/credits"
	"github.com/creditkit/credits/sqlstore"
	"github.com/creditkit/credits/storetest"
)

// The feed on PostgreSQL under late commits (written in review): writers in
// caller transactions (WithTx) with savepoints released or rolled back,
// transaction IDs taken early and random delays before COMMIT (so commit
// order is not xid order), rollbacks, plus plain operations (group commit,
// kept states), while a consumer reads in batches of 3 and acknowledges
// each. Strict: each account's events come exactly as Seq 1, 2, 3…, with
// no gap and no duplicate, and all of them.
func TestFeedUnderLateCommits(t *testing.T) {
	for _, c := range []struct {
		name string
		opts sqlstore.Options
	}{{"GroupCommit", sqlstore.Options{}}, {"NoKeptStates", sqlstore.Options{KeptStates: -1}}, {"NoGroupCommit", sqlstore.Options{NoGroupCommit: true}}} {
		t.Run(c.name, func(t *testing.T) { feedUnderLateCommits(t, c.opts) })
	}
}

func feedUnderLateCommits(t *testing.T, opts sqlstore.Options) {
	ctx := context.Background()
	s := newPostgresWith(t, opts)
	h := storetest.NewHarness(t, s, func(c *credits.Config) { c.OnLowBalance = nil; c.Now = time.Now })
	const n = 12
	var ids []string
	for i := range n {
		id := fmt.Sprintf("acct-%02d", i)
		ids = append(ids, id)
		h.Account(t, credits.CreateAccountRequest{ID: id})
	}
	f, err := h.Ledger.Feed(credits.FeedConfig{Name: "stress", Holder: "x", Batch: 3})
	if err != nil {
		t.Fatal(err)
	}
	next := map[string]int64{}
	check := func(evs []credits.Event) {
		for _, e := range evs {
			if e.Seq != next[e.Account]+1 {
				t.Errorf("%s: got seq %d, want %d", e.Account, e.Seq, next[e.Account]+1)
			}
			next[e.Account] = e.Seq
		}
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	var commits, rollbacks, fails atomic.Int64
	for w := range 12 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 9))
			for r := 0; !stop.Load(); r++ {
				tx, err := s.DB().BeginTx(ctx, nil)
				if err != nil {
					t.Error(err)
					return
				}
				l := h.Ledger.WithStore(s.WithTx(tx))
				// take an xid early sometimes, then sleep: the xid is old at commit
				if rng.IntN(2) == 0 {
					_, _ = tx.Exec("SELECT pg_current_xact_id()")
				}
				a, b := rng.IntN(n), rng.IntN(n)
				if a > b {
					a, b = b, a
				}
				ok := true
				for i, acc := range []int{a, b} {
					sp := rng.IntN(3)
					if sp > 0 {
						if _, err := tx.Exec(fmt.Sprintf("SAVEPOINT sp%d", i)); err != nil {
							ok = false
							break
						}
					}
					_, err := l.Grant(ctx, credits.GrantRequest{Account: ids[acc], Amount: credits.Whole(1), Kind: credits.KindPromo, Key: fmt.Sprintf("w%d-%d-%d", w, r, i)})
					if err != nil {
						ok = false
						break
					}
					switch sp {
					case 1:
						_, _ = tx.Exec(fmt.Sprintf("RELEASE SAVEPOINT sp%d", i))
					case 2:
						_, _ = tx.Exec(fmt.Sprintf("ROLLBACK TO SAVEPOINT sp%d", i))
					}
					time.Sleep(time.Duration(rng.IntN(3)) * time.Millisecond)
				}
				if !ok || rng.IntN(8) == 0 {
					_ = tx.Rollback()
					if ok {
						rollbacks.Add(1)
					} else {
						fails.Add(1)
					}
					continue
				}
				time.Sleep(time.Duration(rng.IntN(4)) * time.Millisecond)
				if err := tx.Commit(); err != nil {
					fails.Add(1)
				} else {
					commits.Add(1)
				}
			}
		})
	}
	for w := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 3))
			for r := 0; !stop.Load(); r++ {
				_, err := h.Ledger.Grant(ctx, credits.GrantRequest{Account: ids[rng.IntN(n)], Amount: credits.Whole(1), Kind: credits.KindPromo, Key: fmt.Sprintf("p%d-%d", w, r)})
				if err != nil && !errors.Is(err, credits.ErrTransient) {
					t.Error(err)
					return
				}
			}
		})
	}
	deadline := time.Now().Add(3 * time.Second) // how long the writers write, not a measure
	reads := 0
	for time.Now().Before(deadline) {
		evs, err := f.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		reads++
		check(evs)
		if len(evs) > 0 {
			if err := f.Ack(ctx, evs[len(evs)-1]); err != nil {
				t.Fatal(err)
			}
		}
	}
	stop.Store(true)
	wg.Wait()
	for range 3 {
		for {
			evs, err := f.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) == 0 {
				break
			}
			check(evs)
			if err := f.Ack(ctx, evs[len(evs)-1]); err != nil {
				t.Fatal(err)
			}
		}
	}
	total := 0
	var missing []string
	for _, id := range ids {
		es, err := s.Entries(ctx, credits.EntryFilter{Account: id})
		if err != nil {
			t.Fatal(err)
		}
		total += len(es)
		if int64(len(es)) != next[id] {
			missing = append(missing, fmt.Sprintf("%s: history %d, delivered up to %d", id, len(es), next[id]))
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Error(m)
	}
	t.Logf("%d entries, %d commits, %d rollbacks, %d failed tx, %d reads", total, commits.Load(), rollbacks.Load(), fails.Load(), reads)
}

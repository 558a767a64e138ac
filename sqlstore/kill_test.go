package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creditkit/credits"
	"github.com/creditkit/credits/sqlstore"
	"github.com/creditkit/credits/storetest"
)

// PostgreSQL backends killed (pg_terminate_backend) over and over while 16
// workers charge, reserve and capture on a hot account and on a few others,
// grouped and not: every operation is retried with its key until it
// succeeds, and at the end every key had exactly one effect — no credit
// lost or taken twice — and the store still works on fresh connections.
// Every error the application saw says it may be retried.
func TestKilledBackendsUnderLoad(t *testing.T) {
	for _, grouped := range []bool{true, false} {
		t.Run(fmt.Sprintf("grouped=%v", grouped), func(t *testing.T) {
			testKilledBackends(t, grouped)
		})
	}
}

func testKilledBackends(t *testing.T, grouped bool) {
	dsn := postgresDSN(t)
	app := randomName("credits_kill_")
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	qv := u.Query()
	qv.Set("application_name", app)
	u.RawQuery = qv.Encode()
	schema := randomName("credits_test_")
	ctx := context.Background()
	s, err := sqlstore.Open(ctx, u.String(), &sqlstore.Options{Schema: schema, NoGroupCommit: !grouped})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = s.DB().ExecContext(context.Background(), `DROP SCHEMA "`+schema+`" CASCADE`)
		_ = s.Close()
	})
	h := storetest.NewHarness(t, s, func(c *credits.Config) { c.Signup = credits.Reward{} })
	accounts := []string{"hot", "a", "b", "c"}
	for _, a := range accounts {
		h.Account(t, credits.CreateAccountRequest{ID: a})
		if _, err := h.Ledger.Grant(ctx, credits.GrantRequest{Account: a, Amount: credits.Whole(1_000_000), Kind: credits.KindPurchase, Key: "fund"}); err != nil {
			t.Fatal(err)
		}
	}
	image := h.Quote(t, credits.QuoteRequest{Tool: "image"}) // 7 credits

	// The killer: every few milliseconds, end one of the store's backends.
	killer := newPostgresConn(t)
	stop := make(chan struct{})
	var kills atomic.Int64
	var killerDone sync.WaitGroup
	killerDone.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			// Count only the backends pg_terminate_backend did end (false:
			// gone already).
			var killed int
			err := killer.QueryRowContext(ctx, `SELECT count(*) FILTER (WHERE k.ok) FROM (SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
				WHERE application_name = $1 AND state <> 'idle' ORDER BY random() LIMIT 1) k`, app).Scan(&killed)
			if err == nil {
				kills.Add(int64(killed))
			}
		}
	})

	// Each worker runs at least minJobs jobs, and goes on (up to maxJobs)
	// until minKills backends were killed: on a fast run the minimum can
	// end before the killer's first tick.
	const workers, minJobs, maxJobs, minKills = 16, 12, 2000, 5
	var jobsDone atomic.Int64
	var (
		mu       sync.Mutex
		errKinds = map[string]int{}
		bad      []string
		charged  = map[string]int{} // account → successful keys (charges + captures)
	)
	retry := func(what string, f func() error) {
		for attempt := 0; ; attempt++ {
			err := f()
			if err == nil {
				return
			}
			mu.Lock()
			if errors.Is(err, credits.ErrTransient) {
				errKinds["ErrTransient"]++
			} else {
				errKinds[err.Error()]++
				bad = append(bad, fmt.Sprintf("%s: %v", what, err))
			}
			mu.Unlock()
			if attempt > 200 {
				t.Errorf("%s: still failing after %d attempts: %v", what, attempt, err)
				return
			}
		}
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for j := 0; j < maxJobs && (j < minJobs || kills.Load() < minKills); j++ {
				acct := accounts[(w+j)%len(accounts)]
				if w%2 == 0 {
					acct = "hot"
				}
				key := fmt.Sprintf("w%d-j%d", w, j)
				if j%2 == 0 {
					retry("charge "+key, func() error {
						_, err := h.Ledger.Charge(ctx, credits.ChargeRequest{Account: acct, Quote: image, Key: key})
						return err
					})
				} else {
					var hold credits.Hold
					retry("reserve "+key, func() error {
						r, err := h.Ledger.Reserve(ctx, credits.ReserveRequest{Account: acct, Quote: image, Key: key})
						hold = r.Hold
						return err
					})
					retry("capture "+key, func() error {
						_, err := h.Ledger.Capture(ctx, credits.CaptureRequest{Hold: hold.ID, Account: acct})
						return err
					})
				}
				mu.Lock()
				charged[acct]++
				mu.Unlock()
				jobsDone.Add(1)
			}
		})
	}
	wg.Wait()
	close(stop)
	killerDone.Wait()
	// A kill aimed at a backend that had just finished its last statement
	// lands on a connection back in the pool: the checks below would meet
	// its FATAL. Drop the idle connections (as Open set the pool up again).
	s.DB().SetMaxIdleConns(0)
	s.DB().SetMaxIdleConns(16)

	if kills.Load() < minKills {
		t.Fatalf("%d backends killed in %d jobs, want at least %d: the test proved too little", kills.Load(), jobsDone.Load(), minKills)
	}
	sort.Strings(bad)
	for i, b := range bad {
		if i == 5 {
			t.Errorf("… and %d more", len(bad)-5)
			break
		}
		t.Errorf("an error that does not say it may be retried: %s", b)
	}
	total := 0
	for _, a := range accounts {
		b := h.Balance(t, a)
		want := credits.Whole(7 * int64(charged[a]))
		if b.Spent != want || b.Held.IsPositive() {
			t.Errorf("account %s: spent %s held %s; %d charges of 7 were made: want spent %s", a, b.Spent, b.Held, charged[a], want)
		}
		storetest.CheckInvariants(t, h, a)
		total += charged[a]
	}
	if int64(total) != jobsDone.Load() {
		t.Fatalf("%d operations counted, want %d", total, jobsDone.Load())
	}
	t.Logf("%d backends killed during %d charges; errors seen and retried: %v; group commit: %+v", kills.Load(), total, errKinds, s.Stats())
}

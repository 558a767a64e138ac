package sqlstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creditkit/credits"
	"github.com/creditkit/credits/sqlstore"
	"github.com/creditkit/credits/sqlstore/internal/core"
	"github.com/creditkit/credits/storetest"
)

// Tests of the group commit: what the conformance suite (which runs with
// grouping on, and whose state machine builds batches of a known order)
// cannot reach from outside — failed commits, Close, cancellation while
// queued, panics, and an operation the database refuses inside a batch.

// waitQueued waits until n operations wait in the store's queues.
func waitQueued(t *testing.T, s *sqlstore.Store, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().Queued != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d operations queued, want %d", s.Stats().Queued, n)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// A commit that fails, before it (nothing written) or after it (written,
// but the caller is told it failed), fails every operation of its batch
// with an error wrapping credits.ErrTransient; callers that retry with the
// same keys end with exactly one effect each.
func TestGroupCommitFailedCommits(t *testing.T) {
	dialects(t, func(t *testing.T, s *sqlstore.Store, _ func() *sqlstore.Store) {
		h := storetest.NewHarness(t, s, nil)
		const workers, jobs = 16, 12
		h.Account(t, credits.CreateAccountRequest{ID: "team", Team: true, Members: []string{"m"}})
		if _, err := h.Ledger.Grant(h.Ctx, credits.GrantRequest{Account: "team", Amount: credits.Whole(100_000), Kind: credits.KindPurchase, Key: "fund"}); err != nil {
			t.Fatal(err)
		}
		for w := range workers {
			h.Account(t, credits.CreateAccountRequest{ID: fmt.Sprint("solo-", w)})
		}
		image := h.Quote(t, credits.QuoteRequest{Tool: "image"})
		video := h.Quote(t, credits.QuoteRequest{Tool: "video", Resolution: "720p", Duration: 5 * time.Second})
		used, _, err := video.Cost(credits.Usage{Duration: 3 * time.Second})
		if err != nil {
			t.Fatal(err)
		}

		// Every fourth commit fails before it (nothing is written), and
		// every fifth of the others after it (written, reported failed).
		var before, after, failedBefore, failedAfter atomic.Int64
		core.SetCommitFault(s, func(committed bool) error {
			if !committed && before.Add(1)%4 == 0 {
				failedBefore.Add(1)
				return errors.New("injected failure before the commit")
			}
			if committed && after.Add(1)%5 == 0 {
				failedAfter.Add(1)
				return errors.New("injected failure after the commit")
			}
			return nil
		})

		// retry runs op until it succeeds; only transient failures may
		// happen on the way.
		retry := func(what string, op func() error) error {
			var err error
			for range 50 {
				if err = op(); err == nil || !errors.Is(err, credits.ErrTransient) {
					return err
				}
			}
			return fmt.Errorf("%s: still failing after 50 tries: %w", what, err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := range workers {
			wg.Go(func() {
				solo := fmt.Sprint("solo-", w)
				for j := range jobs {
					key := fmt.Sprintf("w%d-j%d", w, j)
					err := retry("grant", func() error {
						_, err := h.Ledger.Grant(h.Ctx, credits.GrantRequest{Account: solo, Amount: credits.Whole(10), Kind: credits.KindPromo, Key: key})
						return err
					})
					if err == nil {
						err = retry("charge", func() error {
							_, err := h.Ledger.Charge(h.Ctx, credits.ChargeRequest{Account: "team", Member: "m", Quote: image, Key: key})
							return err
						})
					}
					var hold string
					if err == nil {
						err = retry("reserve", func() error {
							r, err := h.Ledger.Reserve(h.Ctx, credits.ReserveRequest{Account: "team", Member: "m", Quote: video, Key: key + "-video"})
							hold = r.Hold.ID
							return err
						})
					}
					if err == nil {
						err = retry("capture", func() error {
							_, err := h.Ledger.Capture(h.Ctx, credits.CaptureRequest{Hold: hold, Usage: credits.Usage{Duration: 3 * time.Second}})
							return err
						})
					}
					if err != nil {
						errs <- fmt.Errorf("worker %d job %d: %w", w, j, err)
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
		core.SetCommitFault(s, nil)
		st := s.Stats()
		t.Logf("%d failed before the commit, %d after it; %+v", failedBefore.Load(), failedAfter.Load(), st)
		if failedBefore.Load() == 0 || failedAfter.Load() == 0 || st.Failed == 0 || st.MaxBatch < 2 {
			t.Fatalf("the test did not exercise failed commits of shared batches: %+v", st)
		}

		// Exactly one effect per operation.
		per, err := image.Total.Add(used)
		if err != nil {
			t.Fatal(err)
		}
		want, err := per.Mul(workers * jobs)
		if err != nil {
			t.Fatal(err)
		}
		if b := h.Balance(t, "team"); b.Spent != want || b.Held.IsPositive() {
			t.Fatalf("team: spent %s, held %s; want spent %s, nothing held", b.Spent, b.Held, want)
		}
		storetest.CheckInvariants(t, h, "team")
		for w := range workers {
			solo := fmt.Sprint("solo-", w)
			if b := h.Balance(t, solo); b.Granted != credits.Whole(50+10*jobs) { // the signup grant and the jobs'
				t.Fatalf("%s: granted %s, want %s", solo, b.Granted, credits.Whole(50+10*jobs))
			}
			storetest.CheckInvariants(t, h, solo)
		}
	})
}

// Close answers every queued operation before it returns; later operations
// fail with ErrClosed.
func TestGroupCommitCloseDrains(t *testing.T) {
	dialects(t, func(t *testing.T, s *sqlstore.Store, open func() *sqlstore.Store) {
		s2 := open() // closed by the test
		h := storetest.NewHarness(t, s2, nil)
		h.Account(t, credits.CreateAccountRequest{ID: "a"})
		if _, err := h.Ledger.Grant(h.Ctx, credits.GrantRequest{Account: "a", Amount: credits.Whole(1000), Kind: credits.KindPurchase, Key: "fund"}); err != nil {
			t.Fatal(err)
		}
		q := h.Quote(t, credits.QuoteRequest{Tool: "upscale"})
		const n = 40
		core.PauseBatches(s2, true)
		var wg sync.WaitGroup
		var ok atomic.Int64
		for i := range n {
			wg.Go(func() {
				_, err := h.Ledger.Charge(h.Ctx, credits.ChargeRequest{Account: "a", Quote: q, Key: fmt.Sprint("c", i)})
				if err != nil {
					t.Errorf("charge %d: %v", i, err)
					return
				}
				ok.Add(1)
			})
		}
		waitQueued(t, s2, n)
		if err := s2.Close(); err != nil {
			t.Fatal(err)
		}
		// Committed before Close returned: another store on the same
		// database sees every charge.
		h2 := storetest.NewHarness(t, s, nil)
		want, _ := q.Total.Mul(n)
		if b := h2.Balance(t, "a"); b.Spent != want {
			t.Fatalf("spent %s when Close returned, want %s", b.Spent, want)
		}
		wg.Wait()
		if ok.Load() != n {
			t.Fatalf("%d of %d queued charges succeeded", ok.Load(), n)
		}
		if _, err := h.Ledger.Charge(h.Ctx, credits.ChargeRequest{Account: "a", Quote: q, Key: "late"}); !errors.Is(err, sqlstore.ErrClosed) {
			t.Fatalf("charge after Close: %v, want ErrClosed", err)
		}
		storetest.CheckInvariants(t, h2, "a")
	})
}

// A caller whose context ends while its operation waits in the queue gets
// the context's error and the operation never runs; once a batch has taken
// it, the caller gets what the commit decided.
func TestGroupCommitCancellation(t *testing.T) {
	dialects(t, func(t *testing.T, s *sqlstore.Store, _ func() *sqlstore.Store) {
		h := storetest.NewHarness(t, s, nil)
		h.Account(t, credits.CreateAccountRequest{ID: "a"})
		q := h.Quote(t, credits.QuoteRequest{Tool: "upscale"})
		before := h.Balance(t, "a")

		// Queued, then cancelled: removed, nothing written.
		core.PauseBatches(s, true)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := h.Ledger.Charge(ctx, credits.ChargeRequest{Account: "a", Quote: q, Key: "queued"})
			done <- err
		}()
		waitQueued(t, s, 1)
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled while queued: %v, want context.Canceled", err)
		}
		if n := s.Stats().Queued; n != 0 {
			t.Fatalf("%d operations still queued after the cancellation", n)
		}
		core.PauseBatches(s, false)
		if b := h.Balance(t, "a"); b.Available != before.Available || b.Spent != before.Spent || len(h.History(t, "a")) != 1 {
			t.Fatalf("a cancelled, never-run charge changed the account: %+v", b)
		}
		if st := s.Stats(); st.Cancelled != 1 {
			t.Fatalf("Stats.Cancelled = %d, want 1", st.Cancelled)
		}

		// Taken, then cancelled while the commit is under way: the caller
		// gets the commit's outcome (here a success) and the charge stands.
		inCommit, release := make(chan struct{}), make(chan struct{})
		var once sync.Once
		core.SetCommitFault(s, func(bool) error {
			once.Do(func() {
				close(inCommit)
				<-release
			})
			return nil
		})
		defer core.SetCommitFault(s, nil)
		ctx, cancel = context.WithCancel(context.Background())
		core.PauseBatches(s, true) // queued, so that a committer takes it (an idle one would let the caller run it on its own context)
		go func() {
			_, err := h.Ledger.Charge(ctx, credits.ChargeRequest{Account: "a", Quote: q, Key: "taken"})
			done <- err
		}()
		waitQueued(t, s, 1)
		core.PauseBatches(s, false)
		<-inCommit
		cancel()
		close(release)
		if err := <-done; err != nil {
			t.Fatalf("cancelled after being taken: %v, want the commit's success", err)
		}
		if b := h.Balance(t, "a"); b.Spent != q.Total {
			t.Fatalf("spent %s, want the taken charge's %s", b.Spent, q.Total)
		}
		storetest.CheckInvariants(t, h, "a")
	})
}

// Inside one batch: a retry of a key sees the first result, a different
// request under the key is a conflict, a refusal refuses only its own
// operation, and the order of arrival is the order of application.
func TestGroupCommitOneBatch(t *testing.T) {
	dialects(t, func(t *testing.T, s *sqlstore.Store, _ func() *sqlstore.Store) {
		h := storetest.NewHarness(t, s, nil) // a new account gets 50 credits
		h.Account(t, credits.CreateAccountRequest{ID: "a"})
		image := h.Quote(t, credits.QuoteRequest{Tool: "image"}) // 7 credits
		big := h.Quote(t, credits.QuoteRequest{Tool: "video-pro", Resolution: "1080p", Duration: 3 * time.Second})

		type call struct {
			res credits.ChargeResult
			err error
		}
		reqs := []credits.ChargeRequest{
			{Account: "a", Quote: image, Key: "k1"},
			{Account: "a", Quote: image, Key: "k1"},                                        // retry: the first result
			{Account: "a", Quote: image, Key: "k1", Metadata: map[string]string{"x": "y"}}, // conflict
			{Account: "a", Quote: big, Key: "k2"},                                          // 69 credits: refused
			{Account: "a", Quote: image, Key: "k3"},
		}
		calls := make([]call, len(reqs))
		core.PauseBatches(s, true)
		var wg sync.WaitGroup
		for i, r := range reqs {
			wg.Go(func() {
				calls[i].res, calls[i].err = h.Ledger.Charge(h.Ctx, r)
			})
			waitQueued(t, s, i+1) // arrival order is the order given
		}
		batches := s.Stats().Batches
		core.PauseBatches(s, false)
		wg.Wait()
		if st := s.Stats(); st.Batches != batches+1 || st.MaxBatch < len(reqs) {
			t.Fatalf("the calls did not share one batch: %+v", st)
		}
		if calls[0].err != nil || calls[0].res.Replayed || calls[0].res.Available != credits.Whole(43) {
			t.Fatalf("first charge: %+v %v", calls[0].res, calls[0].err)
		}
		if calls[1].err != nil || !calls[1].res.Replayed || calls[1].res.Hold.ID != calls[0].res.Hold.ID || calls[1].res.Available != credits.Whole(43) {
			t.Fatalf("retry in the same batch: %+v %v", calls[1].res, calls[1].err)
		}
		if !errors.Is(calls[2].err, credits.ErrIdempotencyConflict) {
			t.Fatalf("conflict in the same batch: %v", calls[2].err)
		}
		var ie *credits.InsufficientCreditsError
		if !errors.As(calls[3].err, &ie) || ie.Available != credits.Whole(43) {
			t.Fatalf("unaffordable charge: %v", calls[3].err)
		}
		if calls[4].err != nil || calls[4].res.Available != credits.Whole(36) {
			t.Fatalf("charge after the refusal: %+v %v", calls[4].res, calls[4].err)
		}
		if b := h.Balance(t, "a"); b.Available != credits.Whole(36) || b.Spent != credits.Whole(14) {
			t.Fatalf("balance %+v", b)
		}
		storetest.CheckInvariants(t, h, "a")
	})
}

// An operation that panics, or whose change the database refuses, fails
// alone: the other operations of its batch are committed.
func TestGroupCommitOneBadOperation(t *testing.T) {
	dialects(t, func(t *testing.T, s *sqlstore.Store, _ func() *sqlstore.Store) {
		h := storetest.NewHarness(t, s, nil)
		h.Account(t, credits.CreateAccountRequest{ID: "a"})
		h.Account(t, credits.CreateAccountRequest{ID: "b"})
		q := h.Quote(t, credits.QuoteRequest{Tool: "upscale"})
		ctx := context.Background()

		core.PauseBatches(s, true)
		var wg sync.WaitGroup
		good := func(key string) {
			wg.Go(func() {
				if _, err := h.Ledger.Charge(ctx, credits.ChargeRequest{Account: "a", Quote: q, Key: key}); err != nil {
					t.Errorf("good charge %s: %v", key, err)
				}
			})
		}
		good("g1")
		waitQueued(t, s, 1)
		var panicked atomic.Value
		wg.Go(func() {
			defer func() { panicked.Store(fmt.Sprint(recover())) }()
			_ = s.Update(ctx, credits.Query{Account: "a"}, func(*credits.State) (*credits.Change, error) { panic("boom") })
		})
		waitQueued(t, s, 2)
		good("g2")
		waitQueued(t, s, 3)
		var refused error
		wg.Go(func() {
			// A change the schema refuses: a negative balance.
			refused = s.Update(ctx, credits.Query{Account: "b"}, func(st *credits.State) (*credits.Change, error) {
				a := st.Account.Clone()
				a.Available = credits.FromUnits(-1)
				a.Seq++
				return &credits.Change{Account: &a}, nil
			})
		})
		waitQueued(t, s, 4)
		good("g3")
		waitQueued(t, s, 5)
		core.PauseBatches(s, false)
		wg.Wait()
		if p, _ := panicked.Load().(string); p != "boom" {
			t.Fatalf("the panicking operation's caller recovered %q, want boom", p)
		}
		if refused == nil {
			t.Fatal("the database accepted a negative balance")
		}
		if errors.Is(refused, credits.ErrTransient) {
			t.Fatalf("a write the schema refuses was reported as transient (a retry would be refused again): %v", refused)
		}
		want, _ := q.Total.Mul(3)
		if b := h.Balance(t, "a"); b.Spent != want {
			t.Fatalf("spent %s, want the three good charges' %s", b.Spent, want)
		}
		storetest.CheckInvariants(t, h, "a")
		storetest.CheckInvariants(t, h, "b")
	})
}

// Operations in the caller's transaction bypass the committers.
func TestWithTxBypassesGrouping(t *testing.T) {
	dialects(t, func(t *testing.T, s *sqlstore.Store, _ func() *sqlstore.Store) {
		h := storetest.NewHarness(t, s, nil)
		h.Account(t, credits.CreateAccountRequest{ID: "a"})
		before := s.Stats()
		tx, err := s.DB().BeginTx(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		l := h.Ledger.WithStore(s.WithTx(tx))
		for i := range 3 {
			if _, err := l.Grant(h.Ctx, credits.GrantRequest{Account: "a", Amount: credits.Whole(1), Kind: credits.KindPromo, Key: fmt.Sprint(i)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		if after := s.Stats(); after.Operations != before.Operations {
			t.Fatalf("operations in the caller's transaction went through the committers: %+v", after)
		}
		if b := h.Balance(t, "a"); b.Granted != credits.Whole(53) {
			t.Fatalf("granted %s, want 53", b.Granted)
		}
	})
}

// noBatcher hides the test hooks, so the state machine does not try to
// build batches on a store that does not group; it still serves the feed.
type noBatcher struct {
	credits.Store
	credits.FeedStore
}

// cutProxy forwards TCP to PostgreSQL; once armed, it swallows the next
// server reply that carries its command tag (COMMIT, say) and cuts the
// connection: the server committed, the client never hears it.
type cutProxy struct {
	ln     net.Listener
	target string
	tag    []byte
	armed  atomic.Bool
	cut    atomic.Int64
}

func (p *cutProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		go func() { _, _ = io.Copy(s, c); _ = s.Close() }()
		go func() {
			buf := make([]byte, 64<<10)
			for {
				n, err := s.Read(buf)
				if n > 0 {
					if p.armed.Load() && bytes.Contains(buf[:n], p.tag) {
						p.armed.Store(false)
						p.cut.Add(1)
						_ = c.Close()
						_ = s.Close()
						return
					}
					if _, err := c.Write(buf[:n]); err != nil {
						return
					}
				}
				if err != nil {
					_ = c.Close()
					return
				}
			}
		}()
	}
}

// openViaProxy opens a store on PostgreSQL, in a schema of its own, whose
// connections go through a cutProxy that loses the next reply carrying tag
// once armed.
func openViaProxy(t *testing.T, opts sqlstore.Options, tag string) (*sqlstore.Store, *cutProxy) {
	u, err := url.Parse(postgresDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	p := &cutProxy{ln: ln, target: u.Host, tag: []byte(tag)}
	go p.serve()
	u.Host = ln.Addr().String()
	schema := randomName("credits_test_")
	opts.Schema = schema
	s, err := sqlstore.Open(context.Background(), u.String(), &opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = s.DB().ExecContext(context.Background(), `DROP SCHEMA "`+schema+`" CASCADE`)
		_ = s.Close()
	})
	return s, p
}

// storedThreshold reads account's low-balance threshold straight from its
// row.
func storedThreshold(t *testing.T, s *sqlstore.Store, account string) int64 {
	t.Helper()
	var threshold int64
	if err := s.DB().QueryRowContext(context.Background(), "SELECT low_balance_threshold FROM "+s.TableName("accounts")+" WHERE id = $1", account).Scan(&threshold); err != nil {
		t.Fatal(err)
	}
	return threshold
}

// bump is a store-level operation that is not idempotent: one more unit
// of threshold each time it is applied.
func bump(st *credits.State) (*credits.Change, error) {
	a := st.Account.Clone()
	a.LowBalanceThreshold, _ = a.LowBalanceThreshold.Add(credits.FromUnits(1))
	a.Seq++
	ch := &credits.Change{Account: &a}
	st.Fold(ch)
	return ch, nil
}

// The connection dies after the server committed a batch but before the
// store heard it: every operation of the batch gets an error wrapping
// ErrTransient (it may have happened), and the batch is not run again.
// (Found by a review: the store used to rerun such a batch.) Both ways a
// batch writes: in a transaction (its COMMIT's reply is lost), and on a
// kept state in one guarded autocommit statement (its reply is lost).
func TestGroupCommitLostCommitReply(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts sqlstore.Options
		tag  string
	}{
		{"transaction", sqlstore.Options{KeptStates: -1}, "COMMIT\x00"},
		{"kept-state", sqlstore.Options{}, "SELECT 1\x00"},
	} {
		t.Run(tc.name, func(t *testing.T) { lostCommitReply(t, tc.opts, tc.tag) })
	}
}

func lostCommitReply(t *testing.T, opts sqlstore.Options, tag string) {
	s, p := openViaProxy(t, opts, tag)
	ctx := context.Background()
	h := storetest.NewHarness(t, s, nil)
	h.Account(t, credits.CreateAccountRequest{ID: "a"})
	core.SetCommitFault(s, func(committed bool) error {
		if !committed && p.cut.Load() == 0 {
			p.armed.Store(true) // the next reply carrying COMMIT is lost
		}
		return nil
	})
	defer core.SetCommitFault(s, nil)
	core.PauseBatches(s, true)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Go(func() { errs[i] = s.Update(ctx, credits.Query{Account: "a"}, bump) })
		waitQueued(t, s, i+1)
	}
	core.PauseBatches(s, false)
	wg.Wait()
	if p.cut.Load() != 1 {
		t.Fatal("the proxy did not cut a COMMIT reply")
	}
	for i, err := range errs {
		if !errors.Is(err, credits.ErrTransient) {
			t.Errorf("operation %d: %v, want an error wrapping ErrTransient", i, err)
		}
	}
	threshold := storedThreshold(t, s, "a")
	if threshold != 2 {
		t.Fatalf("threshold %d after one committed batch of two bumps, want 2", threshold)
	}
	st := s.Stats()
	if st.Failed == 0 {
		t.Fatalf("Stats.Failed = 0 after an unconfirmed commit: %+v", st)
	}
	if kept := opts.KeptStates >= 0; kept != (st.KeptRuns > 0) {
		t.Fatalf("KeptStates %d, yet %d runs on a kept state", opts.KeptStates, st.KeptRuns)
	}
}

// A lone operation on a kept state whose write's reply is lost (found by a
// review: the store then read the account and applied it a second time).
// The write took effect; the caller gets ErrTransient, the operation is
// applied once, and a ledger call in that spot is no replay.
func TestKeptLoneLostReply(t *testing.T) {
	for _, opts := range []sqlstore.Options{{}, {NoGroupCommit: true}} {
		t.Run(fmt.Sprint("NoGroupCommit=", opts.NoGroupCommit), func(t *testing.T) {
			s, p := openViaProxy(t, opts, "SELECT 1\x00")
			ctx := context.Background()
			h := storetest.NewHarness(t, s, nil)
			h.Account(t, credits.CreateAccountRequest{ID: "a"}) // written, so kept
			before := s.Stats().KeptRuns
			p.armed.Store(true)
			err := s.Update(ctx, credits.Query{Account: "a"}, bump)
			if p.cut.Load() != 1 || s.Stats().KeptRuns == before {
				t.Fatalf("the proxy cut %d replies, %d runs on a kept state", p.cut.Load(), s.Stats().KeptRuns-before)
			}
			if !errors.Is(err, credits.ErrTransient) {
				t.Errorf("Update whose reply was lost: %v, want ErrTransient", err)
			}
			threshold := storedThreshold(t, s, "a")
			if threshold != 1 {
				t.Fatalf("threshold %d after one bump whose reply was lost, want 1", threshold)
			}

			q := h.Quote(t, credits.QuoteRequest{Tool: "image"})
			if _, err := h.Ledger.Charge(ctx, credits.ChargeRequest{Account: "a", Quote: q, Key: "c0"}); err != nil {
				t.Fatal(err)
			}
			p.armed.Store(true)
			res, err := h.Ledger.Charge(ctx, credits.ChargeRequest{Account: "a", Quote: q, Key: "c1"})
			if !errors.Is(err, credits.ErrTransient) || res.Replayed {
				t.Fatalf("first call of c1, its reply lost: replayed %v, %v; want ErrTransient", res.Replayed, err)
			}
			res, err = h.Ledger.Charge(ctx, credits.ChargeRequest{Account: "a", Quote: q, Key: "c1"})
			if err != nil || !res.Replayed {
				t.Fatalf("retry of c1: replayed %v, %v; want the first call's charge, replayed", res.Replayed, err)
			}
			want, _ := q.Total.Mul(2)
			if b := h.Balance(t, "a"); b.Spent != want {
				t.Fatalf("spent %s after c0 and c1, want %s", b.Spent, want)
			}
			// (No CheckInvariants: bump moved the Seq without an entry.)
		})
	}
}

// An operation its caller runs on an idle committer honours the caller's
// deadline, as one without group commit does.
func TestGroupCommitDirectHonoursDeadline(t *testing.T) {
	s := newPostgres(t)
	ctx := context.Background()
	h := storetest.NewHarness(t, s, nil)
	h.Account(t, credits.CreateAccountRequest{ID: "a"})
	other := newPostgresConn(t)
	tx, err := other.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, "SELECT 1 FROM "+s.TableName("accounts")+" WHERE id = 'a' FOR UPDATE"); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	req := credits.GrantRequest{Account: "a", Amount: credits.Whole(1), Kind: credits.KindPromo, Key: "g"}
	start := time.Now()
	_, err = h.Ledger.Grant(cctx, req)
	if took := time.Since(start); took > 2*time.Second || err == nil {
		t.Fatalf("a grant with a 200 ms deadline on a locked account returned after %s: %v", took, err)
	}
	_ = tx.Rollback()
	if _, err := h.Ledger.Grant(ctx, req); err != nil {
		t.Fatal(err)
	}
	if b := h.Balance(t, "a"); b.Granted != credits.Whole(51) {
		t.Fatalf("granted %s after the retry, want 51 (one effect)", b.Granted)
	}
}

// After Close every call fails with ErrClosed, group commit or not.
func TestCloseThenErrClosed(t *testing.T) {
	for _, noGroup := range []bool{false, true} {
		t.Run(fmt.Sprint("NoGroupCommit=", noGroup), func(t *testing.T) {
			ctx := context.Background()
			s, err := sqlstore.Open(ctx, "file:"+filepath.Join(t.TempDir(), "c.db"), &sqlstore.Options{NoGroupCommit: noGroup})
			if err != nil {
				t.Fatal(err)
			}
			h := storetest.NewHarness(t, s, nil)
			h.Account(t, credits.CreateAccountRequest{ID: "a"})
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			_, err = h.Ledger.Grant(ctx, credits.GrantRequest{Account: "a", Amount: credits.Whole(1), Kind: credits.KindPromo, Key: "late"})
			if !errors.Is(err, sqlstore.ErrClosed) {
				t.Fatalf("grant after Close: %v, want ErrClosed", err)
			}
			if _, err := h.Ledger.Balance(ctx, "a"); !errors.Is(err, sqlstore.ErrClosed) {
				t.Fatalf("balance after Close: %v, want ErrClosed", err)
			}
		})
	}
}

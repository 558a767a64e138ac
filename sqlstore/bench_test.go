package sqlstore_test

// Benchmarks of the SQL store against the naive baseline the design brief
// measures every design with: one autocommit
//
//	UPDATE naive SET balance = balance - $1 WHERE id = $2 AND balance >= $1
//
// per operation, on the same database, in the same run.
//
// A measurement is a fixed number of operations (b.N) pulled from a shared
// counter by exactly 1 or 16 goroutines ("callers"): the naive baseline
// first, then the ledger (only the ledger is on the benchmark timer, so
// ns/op is the ledger's wall time per operation). Every operation's latency
// is recorded. For reserve-capture one operation is one job: a Reserve and a
// Capture by usage (two UPDATEs for the naive: take the quote, give back the
// unused part).
//
//	CREDITS_TEST_POSTGRES='postgres://postgres@127.0.0.1:5432/test?sslmode=disable' \
//	  go test -run XXX -bench 'BenchmarkSQL|BenchmarkRoundTrips' -benchtime 2000x -count 3 ./sqlstore/
//
// Metrics: ops/s and naive-ops/s (throughput), x-naive (ledger ops/s ÷
// naive ops/s: above 1 the ledger is faster than the naive baseline),
// p50-ms, p99-ms, naive-p50-ms, naive-p99-ms (latency of one operation as
// its caller sees it), late/early (the ledger's mean latency over the last
// tenth of the operations ÷ over the first tenth: above 1, the operations
// got slower as the tables grew). BenchmarkRoundTrips counts what the store
// sends to PostgreSQL per operation (roundtrips/op) through a counting
// database/sql driver around pgx's.

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/creditkit/credits"
	"github.com/creditkit/credits/sqlstore"
	"github.com/creditkit/credits/sqlstore/postgres"
)

// benchBalance is what every benchmark account starts with: far more than
// any run spends.
const benchBalance = 1_000_000_000_000 // credits

// sqlWorkload is one kind of operation, run on the ledger and on the naive
// table.
type sqlWorkload struct {
	name   string
	ledger func(ctx context.Context, f *sqlFixture, account, key string) error
	naive  func(ctx context.Context, f *sqlFixture, account string) error
}

var sqlWorkloads = []sqlWorkload{
	{
		name: "charge",
		ledger: func(ctx context.Context, f *sqlFixture, account, key string) error {
			res, err := f.ledger.Charge(ctx, credits.ChargeRequest{Account: account, Quote: f.image, Key: key})
			if err != nil {
				return err
			}
			if res.Charged != f.image.Total {
				return fmt.Errorf("charged %s, want %s", res.Charged, f.image.Total)
			}
			return nil
		},
		naive: func(ctx context.Context, f *sqlFixture, account string) error {
			return f.naiveUpdate(ctx, account, f.image.Total.Units())
		},
	},
	{
		name: "reserve-capture",
		ledger: func(ctx context.Context, f *sqlFixture, account, key string) error {
			r, err := f.ledger.Reserve(ctx, credits.ReserveRequest{Account: account, Quote: f.video, Key: key})
			if err != nil {
				return fmt.Errorf("reserve: %w", err)
			}
			c, err := f.ledger.Capture(ctx, credits.CaptureRequest{Hold: r.Hold.ID, Account: account, Usage: credits.Usage{Duration: 4 * time.Second}})
			if err != nil {
				return fmt.Errorf("capture: %w", err)
			}
			if c.Charged != f.videoUsed {
				return fmt.Errorf("captured %s, want %s", c.Charged, f.videoUsed)
			}
			return nil
		},
		naive: func(ctx context.Context, f *sqlFixture, account string) error {
			if err := f.naiveUpdate(ctx, account, f.video.Total.Units()); err != nil {
				return err
			}
			// Give back the unused part: the same statement, a negative amount.
			return f.naiveUpdate(ctx, account, -(f.video.Total.Units() - f.videoUsed.Units()))
		},
	},
}

// sqlCase is the shape of the load: how many accounts, how many callers.
type sqlCase struct {
	name     string
	accounts int // 1: a fresh hot account per measurement
	callers  int
}

var sqlCases = []sqlCase{
	{"hot-1caller", 1, 1},
	{"hot-16callers", 1, 16},
	{"hot-64callers", 1, 64},
	{"10k-accounts-1caller", 10_000, 1},
	{"10k-accounts-16callers", 10_000, 16},
	{"10k-accounts-64callers", 10_000, 64},
}

// sqlFixture is one store with its ledger and its naive table, shared by
// every sub-benchmark of that store (so the 10,000 accounts are made once).
type sqlFixture struct {
	store  *sqlstore.Store
	schema string // the store's schema on PostgreSQL
	db     *sql.DB
	ledger *credits.Ledger
	naive  string // the naive table
	update string // the naive UPDATE
	insert string // one naive row: id, balance

	image, video credits.Quote
	videoUsed    credits.Credits // what a 4 s capture of the video quote charges

	many []string // the 10,000 accounts, once made

	counts *callCounts // the counting driver's, if the store runs on it
}

func newSQLFixture(b testing.TB, store *sqlstore.Store, schema string) *sqlFixture {
	ctx := context.Background()
	l, err := credits.NewLedger(store, nil)
	if err != nil {
		b.Fatal(err)
	}
	f := &sqlFixture{store: store, schema: schema, db: store.DB(), ledger: l, naive: randomName("naive_")}
	p1, p2 := "$1", "$2"
	if store.Dialect() == "sqlite" {
		p1, p2 = "?1", "?2"
	}
	f.update = fmt.Sprintf("UPDATE %s SET balance = balance - %s WHERE id = %s AND balance >= %s", f.naive, p1, p2, p1)
	f.insert = fmt.Sprintf("INSERT INTO %s (id, balance) VALUES (%s, %s)", f.naive, p1, p2)
	if _, err := f.db.ExecContext(ctx, "CREATE TABLE "+f.naive+" (id text primary key, balance bigint not null)"); err != nil {
		b.Fatalf("create the naive table: %v", err)
	}
	b.Cleanup(func() { _, _ = f.db.ExecContext(context.Background(), "DROP TABLE "+f.naive) })
	return f
}

// quote prices the two workloads' quotes afresh (a quote lasts 15 minutes).
func (f *sqlFixture) quote(b testing.TB) {
	var err error
	if f.image, err = f.ledger.Quote(credits.QuoteRequest{Tool: "image"}); err != nil {
		b.Fatal(err)
	}
	if f.video, err = f.ledger.Quote(credits.QuoteRequest{Tool: "video", Resolution: "720p", Duration: 5 * time.Second}); err != nil {
		b.Fatal(err)
	}
	if f.videoUsed, _, err = f.video.Cost(credits.Usage{Duration: 4 * time.Second}); err != nil {
		b.Fatal(err)
	}
}

func (f *sqlFixture) naiveUpdate(ctx context.Context, account string, units int64) error {
	res, err := f.db.ExecContext(ctx, f.update, units, account)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("naive update of %q: %d rows, %v", account, n, err)
	}
	return nil
}

// account makes one ledger account with one big purchase, and its naive row.
func (f *sqlFixture) account(ctx context.Context, id string) error {
	if _, err := f.ledger.CreateAccount(ctx, credits.CreateAccountRequest{ID: id}); err != nil {
		return fmt.Errorf("create account %s: %w", id, err)
	}
	if _, err := f.ledger.Grant(ctx, credits.GrantRequest{Account: id, Amount: credits.Whole(benchBalance), Kind: credits.KindPurchase, Key: "seed"}); err != nil {
		return fmt.Errorf("grant %s: %w", id, err)
	}
	return nil
}

// hot makes a fresh hot account for a measurement.
func (f *sqlFixture) hot(b *testing.B) []string {
	ctx := context.Background()
	id := randomName("hot_")
	if err := f.account(ctx, id); err != nil {
		b.Fatal(err)
	}
	if _, err := f.db.ExecContext(ctx, f.insert, id, credits.Whole(benchBalance).Units()); err != nil {
		b.Fatal(err)
	}
	return []string{id}
}

// makeMany makes n accounts through the ledger, 8 goroutines at a time, and
// their naive rows.
func (f *sqlFixture) makeMany(b *testing.B, n int) {
	ctx := context.Background()
	start := time.Now()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("acct_%05d", i)
	}
	var next atomic.Int64
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := f.account(ctx, ids[i]); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	// The naive rows, 1,000 to a statement (the IDs are ours: no quoting needed).
	for lo := 0; lo < n; lo += 1000 {
		var vals []string
		for _, id := range ids[lo:min(lo+1000, n)] {
			vals = append(vals, fmt.Sprintf("('%s', %d)", id, credits.Whole(benchBalance).Units()))
		}
		if _, err := f.db.ExecContext(ctx, "INSERT INTO "+f.naive+" (id, balance) VALUES "+strings.Join(vals, ", ")); err != nil {
			b.Fatal(err)
		}
	}
	// PostgreSQL plans by the tables' statistics, which autovacuum updates
	// a minute or so after a bulk load: until then it may scan whole tables,
	// and the results would depend on when autovacuum came. Analyze now, as
	// a database in service would be. (The holds table is still empty here;
	// Open's enable_seqscan=off keeps a plan made on it an index lookup as
	// it fills.)
	if f.schema != "" {
		for _, t := range []string{"accounts", "buckets", "holds", "entries", "records"} {
			if _, err := f.db.ExecContext(ctx, `ANALYZE "`+f.schema+`".credits_`+t); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := f.db.ExecContext(ctx, "ANALYZE "+f.naive); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("set up %d accounts (ledger and naive) in %s", n, time.Since(start).Round(time.Millisecond))
	f.many = ids
}

// drive runs n operations on exactly callers goroutines that take operation
// numbers from a shared counter, and returns the wall time, every
// operation's latency, sorted, and the mean latency of the last tenth of the
// operations over that of the first tenth (above 1: the operations got
// slower as the run went on).
func drive(b *testing.B, n, callers int, op func(i int) error) (time.Duration, []time.Duration, float64) {
	lat := make([]time.Duration, n)
	var (
		next     atomic.Int64
		failures atomic.Int64
		first    error
		once     sync.Once
		wg       sync.WaitGroup
	)
	start := time.Now()
	for range callers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				t0 := time.Now()
				err := op(i)
				lat[i] = time.Since(t0)
				if err != nil {
					failures.Add(1)
					once.Do(func() { first = err })
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if first != nil {
		b.Fatalf("%d of %d operations failed; the first: %v", failures.Load(), n, first)
	}
	// The first and last callers operations ramp up and drain the queue:
	// leave them out when there are enough.
	tenth, skip := max(1, n/10), 0
	if n >= 2*callers+2*tenth {
		skip = callers
	}
	var early, late time.Duration
	for i := range tenth {
		early += lat[skip+i]
		late += lat[n-skip-tenth+i]
	}
	slices.Sort(lat)
	return elapsed, lat, float64(late) / float64(early)
}

// percentile of sorted latencies, in milliseconds.
func percentile(sorted []time.Duration, q float64) float64 {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	i = max(0, min(i, len(sorted)-1))
	return float64(sorted[i].Nanoseconds()) / 1e6
}

// BenchmarkSQL: the ledger on PostgreSQL and on a SQLite file, one-step
// charges and reserve-then-capture jobs, on one hot account (1 or 16
// callers) and on 10,000 accounts (16 callers), each beside the naive
// baseline on the same database in the same run.
//
// A hot-account measurement runs on a store of its own, opened for it, so
// that its result does not depend on what ran before. The 10,000 accounts
// are made once per store and shared by the two workloads that use them
// (reserve-capture runs after charge there, on its history).
func BenchmarkSQL(b *testing.B) {
	for _, st := range []struct {
		name string
		open func(testing.TB) (*sqlstore.Store, string)
	}{
		{"postgres", openPostgres},
		{"sqlite-full", func(tb testing.TB) (*sqlstore.Store, string) { return openSQLite(tb, "FULL"), "" }},
		{"sqlite-normal", func(tb testing.TB) (*sqlstore.Store, string) { return openSQLite(tb, "NORMAL"), "" }},
	} {
		b.Run(st.name, func(b *testing.B) {
			var many *sqlFixture
			for _, c := range sqlCases {
				for _, w := range sqlWorkloads {
					b.Run(c.name+"/"+w.name, func(sub *testing.B) {
						sub.StopTimer()
						f := many
						if c.accounts == 1 {
							store, schema := st.open(sub)
							f = newSQLFixture(sub, store, schema)
						} else if many == nil {
							// Lives as long as the store's benchmark: its
							// clean-ups go there, its failures here.
							tb := outliving{B: sub, parent: b}
							store, schema := st.open(tb)
							f = newSQLFixture(tb, store, schema)
							f.makeMany(sub, c.accounts)
							many = f
						}
						f.measure(sub, w, c)
					})
				}
			}
		})
	}
}

// openSQLite opens a SQLite file in WAL mode with the given synchronous
// setting (Open's default is FULL: a commit survives a power loss; NORMAL
// may lose the last commits, never corrupts).
func openSQLite(tb testing.TB, synchronous string) *sqlstore.Store {
	path := filepath.Join(tb.TempDir(), "credits.db")
	s, err := sqlstore.Open(context.Background(), "file:"+path+"?_pragma=synchronous("+synchronous+")", nil)
	if err != nil {
		tb.Fatalf("open SQLite: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// openPostgres opens a store in a schema of its own, dropped at the end, as
// newPostgres does, and says which.
func openPostgres(tb testing.TB) (*sqlstore.Store, string) {
	schema := randomName("credits_bench_")
	s, err := sqlstore.Open(context.Background(), postgresDSN(tb), &sqlstore.Options{Schema: schema})
	if err != nil {
		tb.Fatalf("open PostgreSQL: %v", err)
	}
	tb.Cleanup(func() {
		_, _ = s.DB().ExecContext(context.Background(), `DROP SCHEMA "`+schema+`" CASCADE`)
		_ = s.Close()
	})
	return s, schema
}

// outliving is a sub-benchmark whose clean-ups and temporary directories
// belong to its parent.
type outliving struct {
	*testing.B
	parent *testing.B
}

func (o outliving) Cleanup(f func()) { o.parent.Cleanup(f) }
func (o outliving) TempDir() string  { return o.parent.TempDir() }

func (f *sqlFixture) measure(b *testing.B, w sqlWorkload, c sqlCase) {
	ctx := context.Background()
	ids := f.many
	if c.accounts == 1 {
		ids = f.hot(b)
	}
	f.quote(b)
	// Both sides touch the same sequence of accounts.
	pick := make([]int32, b.N)
	if len(ids) > 1 {
		for i := range pick {
			pick[i] = rand.Int32N(int32(len(ids)))
		}
	}
	keys := randomName("k") + "-"

	naiveTime, naiveLat, _ := drive(b, b.N, c.callers, func(i int) error {
		return w.naive(ctx, f, ids[pick[i]])
	})
	stats := f.store.Stats()
	b.StartTimer()
	ledgerTime, ledgerLat, growth := drive(b, b.N, c.callers, func(i int) error {
		return w.ledger(ctx, f, ids[pick[i]], keys+fmt.Sprint(i))
	})
	b.StopTimer()
	after := f.store.Stats()
	if batches := after.Batches - stats.Batches; batches > 0 {
		b.ReportMetric(float64(after.Operations-stats.Operations)/float64(batches), "ops/batch")
	}

	ops := float64(b.N) / ledgerTime.Seconds()
	naiveOps := float64(b.N) / naiveTime.Seconds()
	b.ReportMetric(ops, "ops/s")
	b.ReportMetric(naiveOps, "naive-ops/s")
	b.ReportMetric(ops/naiveOps, "x-naive")
	b.ReportMetric(percentile(ledgerLat, 0.50), "p50-ms")
	b.ReportMetric(percentile(ledgerLat, 0.99), "p99-ms")
	b.ReportMetric(percentile(naiveLat, 0.50), "naive-p50-ms")
	b.ReportMetric(percentile(naiveLat, 0.99), "naive-p99-ms")
	b.ReportMetric(growth, "late/early")
}

// BenchmarkRoundTrips counts, on PostgreSQL, the round trips one ledger
// operation costs: every Begin, Exec, Query, Commit, Rollback, Prepare and
// Ping the store sends through database/sql is one round trip with pgx
// (begins/op is the share of operations that took a transaction). With one
// caller it also splits an operation's time into the time spent waiting on
// those calls (wait-ms/op: read-ms/op, write-ms/op for the statement that
// writes the change set, commit-ms/op) and the rest (client-ms/op: the
// ledger's rules, JSON, database/sql), and reports the naive UPDATE's cost
// through the same driver. "hot" is one fresh account on a fresh store (1
// or 16 callers); "10k-accounts" picks one of 10,000 accounts at random per
// operation, to show what the size of the tables costs.
func BenchmarkRoundTrips(b *testing.B) {
	postgresDSN(b)
	var many *sqlFixture
	for _, c := range []sqlCase{{"hot", 1, 1}, {"hot-16callers", 1, 16}, {"10k-accounts", 10_000, 1}} {
		for _, w := range sqlWorkloads {
			b.Run(c.name+"/"+w.name, func(sub *testing.B) {
				sub.StopTimer()
				f := many
				if c.accounts == 1 {
					f = openCounting(sub)
				} else if many == nil {
					f = openCounting(outliving{B: sub, parent: b})
					f.makeMany(sub, c.accounts)
					many = f
				}
				f.countTrips(sub, w, c.callers)
			})
		}
	}
}

// openCounting opens a store on PostgreSQL, in a schema of its own, on
// pgx connections that count their round trips.
func openCounting(tb testing.TB) *sqlFixture {
	ctx := context.Background()
	cfg, err := pgx.ParseConfig(postgres.DSN(postgresDSN(tb))) // as postgres.Open sets it up
	if err != nil {
		tb.Fatal(err)
	}
	tr := &tracer{}
	cfg.Tracer = tr
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(16) // as postgres.Open
	db.SetMaxIdleConns(16)
	schema := randomName("credits_bench_")
	store, err := postgres.New(ctx, db, &postgres.Options{Schema: schema, Migrate: true})
	if err != nil {
		_ = db.Close()
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_, _ = db.ExecContext(context.Background(), `DROP SCHEMA "`+schema+`" CASCADE`)
		_ = db.Close()
	})
	f := newSQLFixture(tb, store, schema)
	f.counts = &tr.c
	return f
}

func (f *sqlFixture) countTrips(b *testing.B, w sqlWorkload, callers int) {
	ctx := context.Background()
	ids := f.many
	if ids == nil {
		ids = f.hot(b)
	}
	f.quote(b)
	pick := func() string { return ids[rand.IntN(len(ids))] }
	keys := randomName("k") + "-"
	// Warm up: pgx prepares each new statement once per connection.
	if _, _, _ = drive(b, 2*callers, callers, func(i int) error {
		if err := w.ledger(ctx, f, pick(), keys+"warm"+fmt.Sprint(i)); err != nil {
			return err
		}
		return w.naive(ctx, f, pick())
	}); b.Failed() {
		return
	}

	before := f.counts.snapshot()
	b.StartTimer()
	elapsed, _, _ := drive(b, b.N, callers, func(i int) error { return w.ledger(ctx, f, pick(), keys+fmt.Sprint(i)) })
	b.StopTimer()
	led := f.counts.snapshot().minus(before)

	before = f.counts.snapshot()
	naiveElapsed, _, _ := drive(b, b.N, callers, func(int) error { return w.naive(ctx, f, pick()) })
	nv := f.counts.snapshot().minus(before)

	n := float64(b.N)
	perOp := func(k callKind) float64 { return float64(led.calls[k]) / n }
	b.ReportMetric(float64(led.trips())/n, "roundtrips/op")
	b.ReportMetric(perOp(callBatch), "pipelined/op")
	b.ReportMetric(perOp(callWrite), "guarded-writes/op") // one autocommit statement on kept states
	b.ReportMetric(perOp(callQuery)+perOp(callExec)+perOp(callBegin)+perOp(callCommit), "other/op")
	b.ReportMetric(float64(nv.trips())/n, "naive-roundtrips/op")
	if callers > 1 {
		return // concurrent calls overlap: no split of the time
	}
	perOpMs := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 / n }
	b.ReportMetric(perOpMs(led.wait()), "wait-ms/op")
	b.ReportMetric(perOpMs(led.time[callBatch]), "pipelined-ms/op")
	b.ReportMetric(perOpMs(led.time[callWrite]), "guarded-write-ms/op")
	b.ReportMetric(perOpMs(elapsed-led.wait()), "client-ms/op")
	b.ReportMetric(perOpMs(elapsed), "ms/op")
	b.ReportMetric(perOpMs(naiveElapsed), "naive-ms/op")
}

// A pgx tracer that counts and times every round trip to the server: a
// statement sent alone, or a pipelined batch of them.

type callKind int

const (
	callBegin callKind = iota
	callExec
	callQuery // a read
	callWrite // a statement that writes (WITH … INSERT/UPDATE …)
	callBatch // a pipelined batch: BEGIN + lock + loads, or write + COMMIT
	callCommit
	callRollback
	numCalls
)

type callCounts struct {
	calls [numCalls]atomic.Int64
	nanos [numCalls]atomic.Int64
}

func (c *callCounts) add(k callKind, start time.Time) {
	c.calls[k].Add(1)
	c.nanos[k].Add(int64(time.Since(start)))
}

type callSnapshot struct {
	calls [numCalls]int64
	time  [numCalls]time.Duration
}

func (c *callCounts) snapshot() callSnapshot {
	var s callSnapshot
	for k := range numCalls {
		s.calls[k] = c.calls[k].Load()
		s.time[k] = time.Duration(c.nanos[k].Load())
	}
	return s
}

func (s callSnapshot) minus(o callSnapshot) callSnapshot {
	for k := range numCalls {
		s.calls[k] -= o.calls[k]
		s.time[k] -= o.time[k]
	}
	return s
}

func (s callSnapshot) trips() int64 {
	var n int64
	for _, c := range s.calls {
		n += c
	}
	return n
}

func (s callSnapshot) wait() time.Duration {
	var d time.Duration
	for _, t := range s.time {
		d += t
	}
	return d
}

// tracer implements pgx.QueryTracer and pgx.BatchTracer.
type tracer struct{ c callCounts }

type traceStart struct{}

type started struct {
	at   time.Time
	kind callKind
}

func (t *tracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	q := strings.ToUpper(strings.TrimSpace(d.SQL))
	kind := callExec
	switch {
	case strings.HasPrefix(q, "BEGIN"):
		kind = callBegin
	case strings.HasPrefix(q, "COMMIT"):
		kind = callCommit
	case strings.HasPrefix(q, "ROLLBACK"):
		kind = callRollback
	case strings.HasPrefix(q, "WITH") && (strings.Contains(q, "INSERT") || strings.Contains(q, "UPDATE")):
		kind = callWrite
	case strings.HasPrefix(q, "SELECT"):
		kind = callQuery
	}
	return context.WithValue(ctx, traceStart{}, started{time.Now(), kind})
}

func (t *tracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryEndData) {
	if s, ok := ctx.Value(traceStart{}).(started); ok {
		t.c.add(s.kind, s.at)
	}
}

func (t *tracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return context.WithValue(ctx, traceStart{}, started{time.Now(), callBatch})
}

func (t *tracer) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}

func (t *tracer) TraceBatchEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchEndData) {
	if s, ok := ctx.Value(traceStart{}).(started); ok {
		t.c.add(s.kind, s.at)
	}
}

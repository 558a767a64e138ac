// Loadtest measures the ledger on your own database beside the naive
// baseline, a bare
//
//	UPDATE naive SET balance = balance - $1 WHERE id = $2 AND balance >= $1
//
// per operation, in the same run: ops/s, the ratio to the naive UPDATE,
// p50/p99 latency and the mean batch size of the group commit, for one hot
// account and for many accounts, at several numbers of concurrent callers.
// On PostgreSQL it also prints the bytes of write-ahead log each operation
// cost, ledger and naive: much steadier than the ratio on a noisy machine,
// and the figure that sizes replication and the commit's flush. On Linux it
// prints the machine's CPU time per operation too (this program and the
// database together, from /proc/stat), ledger and naive, and their ratio.
//
//	go run ./examples/loadtest                                  # SQLite file in the temp dir
//	go run ./examples/loadtest -db 'postgres://user@localhost/db?sslmode=disable'
//	go run ./examples/loadtest -db … -callers 1,16,64 -accounts 10000 -duration 5s -workload reserve-capture
//
// It connects to the given database only, and works in tables of its own
// (on PostgreSQL a schema of its own; on SQLite tables with a prefix of
// their own), dropped at the end. It runs for about 2 × duration per line,
// plus the set-up of the accounts.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"log"
	"math"
	mrand "math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/creditkit/credits"
	"github.com/creditkit/credits/sqlstore"
)

type config struct {
	dsn        string
	duration   time.Duration
	callers    []int
	accounts   int
	workload   string
	committers int
	maxBatch   int
	noGroup    bool
	keptStates int
	hot        bool
	cpuProfile string
	history    int64 // entries of history to load before the long run's windows
	windows    int   // the long run's windows (0: the usual measurements)
}

func main() {
	var (
		c       config
		callers string
	)
	flag.StringVar(&c.dsn, "db", "", "database: a postgres:// URL, or a SQLite file: URI or path (default: a new SQLite file in the temp dir)")
	flag.DurationVar(&c.duration, "duration", 3*time.Second, "how long each measurement runs (ledger and naive each)")
	flag.StringVar(&callers, "callers", "1,16,64", "numbers of concurrent callers, comma-separated")
	flag.IntVar(&c.accounts, "accounts", 10_000, "how many accounts the many-accounts lines spread over (0: skip them)")
	flag.StringVar(&c.workload, "workload", "charge", "charge (one step) or reserve-capture (a hold, then a capture by usage)")
	flag.IntVar(&c.committers, "committers", 0, "sqlstore Options.Committers (0: the default)")
	flag.IntVar(&c.maxBatch, "max-batch", 0, "sqlstore Options.MaxBatch (0: the default)")
	flag.BoolVar(&c.noGroup, "no-group-commit", false, "run every operation in a transaction of its own")
	flag.IntVar(&c.keptStates, "kept-states", 0, "sqlstore Options.KeptStates (0: the default; -1: keep none, read every account)")
	flag.BoolVar(&c.hot, "hot", true, "measure the hot account (false: only the many accounts)")
	flag.Int64Var(&c.history, "history", 0, "long run: entries of history to bulk-load before the windows (PostgreSQL; see -windows)")
	flag.IntVar(&c.windows, "windows", 0, "long run: measure this many windows of -duration each, on -accounts accounts made in bulk, after -history entries of history (PostgreSQL)")
	flag.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of the measurements (not the set-up) to this file")
	flag.Parse()
	for _, f := range strings.Split(callers, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 1024 {
			log.Fatalf("loadtest: -callers: %q is not a number from 1 to 1024", f)
		}
		c.callers = append(c.callers, n)
	}
	if c.workload != "charge" && c.workload != "reserve-capture" {
		log.Fatalf("loadtest: -workload: %q is neither charge nor reserve-capture", c.workload)
	}
	if c.windows < 0 || c.history < 0 || (c.history > 0 && c.windows == 0) {
		log.Fatalf("loadtest: -history needs -windows, and neither may be negative")
	}
	if c.duration <= 0 || c.duration > 10*time.Minute {
		log.Fatalf("loadtest: -duration: %s is not between 0 and 10m", c.duration)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, c); err != nil {
		log.SetFlags(0)
		log.Fatalf("loadtest: %v", err)
	}
}

// bench is the store, the ledger and the naive table under test.
type bench struct {
	cfg     config
	store   *sqlstore.Store
	ledger  *credits.Ledger
	naive   string // the naive table
	update  string // the naive UPDATE
	image   credits.Quote
	video   credits.Quote
	used    credits.Credits // what a 4 s capture of the video quote charges
	balance credits.Credits // every account's starting balance
	entries int64           // the long run's entries so far
}

func run(ctx context.Context, c config) error {
	suffix := randomHex()
	dsn, opts, cleanup, err := placement(c, suffix)
	if err != nil {
		return err
	}
	defer cleanup()
	store, err := sqlstore.Open(ctx, dsn, opts)
	if err != nil {
		return err
	}
	b := &bench{cfg: c, store: store, balance: credits.Whole(1_000_000_000_000)}
	defer func() {
		b.dropTables()
		_ = store.Close()
	}()
	if b.ledger, err = credits.NewLedger(store, nil); err != nil {
		return err
	}
	if err := b.setUp(ctx, suffix); err != nil {
		return err
	}
	if c.windows > 0 {
		return b.longRun(ctx)
	}
	type line struct {
		name string
		ids  []string
	}
	var lines []line
	if c.hot {
		ids, err := b.accounts(ctx, 1)
		if err != nil {
			return err
		}
		lines = append(lines, line{"1 (hot)", ids})
	}
	if c.accounts > 1 {
		ids, err := b.accounts(ctx, c.accounts)
		if err != nil {
			return err
		}
		lines = append(lines, line{fmt.Sprint(c.accounts), ids})
	}
	if c.cpuProfile != "" {
		f, err := os.Create(c.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	fmt.Printf("credits load test: %s, %s, %s per measurement, %s\n\n", describe(store), c.workload, c.duration, grouping(store.Options()))
	const row = "%9s %7s %12s %11s %7s %7s %7s %9s %9s %9s %6s %10s %9s %10s %9s %8s\n"
	fmt.Printf(row, "accounts", "callers", "ledger ops/s", "naive ops/s", "x naive", "p50 ms", "p99 ms", "naive p50", "naive p99", "ops/batch", "kept",
		"WAL B/op", "naive WAL", "CPU µs/op", "naive CPU", "CPU x")
	for _, l := range lines {
		for _, n := range c.callers {
			if err := ctx.Err(); err != nil {
				return err
			}
			r, err := b.measure(ctx, l.ids, n)
			if err != nil {
				return err
			}
			fmt.Printf(row, l.name, fmt.Sprint(n), fmt.Sprintf("%.0f", r.ops), fmt.Sprintf("%.0f", r.naiveOps), fmt.Sprintf("%.2f", r.ops/r.naiveOps),
				fmt.Sprintf("%.2f", r.p50), fmt.Sprintf("%.2f", r.p99), fmt.Sprintf("%.2f", r.naiveP50), fmt.Sprintf("%.2f", r.naiveP99), fmt.Sprintf("%.1f", r.perBatch),
				fmt.Sprintf("%.0f%%", r.kept), column(r.wal, "%.0f"), column(r.naiveWal, "%.0f"),
				column(r.cpu, "%.0f"), column(r.naiveCPU, "%.0f"), ratio(r.cpu, r.naiveCPU))
		}
	}
	fmt.Println("\nx naive: ledger ops/s ÷ naive ops/s, same database, same run (above 1: faster than the bare UPDATE).")
	fmt.Println("CPU µs/op: the machine's busy CPU time (all cores, /proc/stat: this program and the database) per operation;")
	fmt.Println("CPU x: the ledger's ÷ the naive's (below 1: cheaper than the bare UPDATE). Steadier than ops/s on a noisy machine.")
	fmt.Println("kept: share of the batches that ran on a kept state, without reading the account (sqlstore Options.KeptStates).")
	if store.Dialect() == "postgres" {
		fmt.Println("WAL B/op: bytes of write-ahead log the server wrote per operation (what a commit flushes and replication ships; other")
		fmt.Println("activity on the server in the same seconds counts too).")
	} else {
		fmt.Println("WAL B/op: measured on PostgreSQL only.")
	}
	return nil
}

// placement decides where the test's tables go: a schema of their own on
// PostgreSQL, a table prefix of their own on SQLite (a new file in the
// temp dir unless -db names one).
func placement(c config, suffix string) (string, *sqlstore.Options, func(), error) {
	opts := &sqlstore.Options{Committers: c.committers, MaxBatch: c.maxBatch, NoGroupCommit: c.noGroup, KeptStates: c.keptStates}
	dsn := c.dsn
	cleanup := func() {}
	switch {
	case strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://"):
		opts.Schema = "credits_loadtest_" + suffix
	case dsn == "":
		dir, err := os.MkdirTemp("", "credits-loadtest-")
		if err != nil {
			return "", nil, nil, err
		}
		dsn = "file:" + filepath.Join(dir, "loadtest.db")
		cleanup = func() { _ = os.RemoveAll(dir) }
		fallthrough
	default:
		opts.TablePrefix = "credits_loadtest_" + suffix + "_"
	}
	return dsn, opts, cleanup, nil
}

func describe(s *sqlstore.Store) string {
	ctx := context.Background()
	if s.Dialect() == "postgres" {
		var v string
		_ = s.DB().QueryRowContext(ctx, "SHOW server_version").Scan(&v)
		return "PostgreSQL " + v
	}
	var sync int
	_ = s.DB().QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync)
	return "SQLite, synchronous=" + []string{"OFF", "NORMAL", "FULL", "EXTRA"}[min(max(sync, 0), 3)]
}

func grouping(o sqlstore.Options) string {
	if o.NoGroupCommit {
		return "group commit off"
	}
	return fmt.Sprintf("group commit: %d committers, at most %d per batch", o.Committers, o.MaxBatch)
}

// setUp creates the naive table and prices the quotes.
func (b *bench) setUp(ctx context.Context, suffix string) error {
	p1, p2 := "$1", "$2"
	b.naive = b.store.TableName("naive")
	if b.store.Dialect() == "sqlite" {
		p1, p2 = "?1", "?2"
	}
	b.update = fmt.Sprintf("UPDATE %s SET balance = balance - %s WHERE id = %s AND balance >= %s", b.naive, p1, p2, p1)
	if _, err := b.store.DB().ExecContext(ctx, "CREATE TABLE "+b.naive+" (id TEXT PRIMARY KEY, balance BIGINT NOT NULL)"); err != nil {
		return fmt.Errorf("create the naive table: %w", err)
	}
	var err error
	if b.image, err = b.ledger.Quote(credits.QuoteRequest{Tool: "image"}); err != nil {
		return err
	}
	if b.video, err = b.ledger.Quote(credits.QuoteRequest{Tool: "video", Resolution: "720p", Duration: 5 * time.Second}); err != nil {
		return err
	}
	b.used, _, err = b.video.Cost(credits.Usage{Duration: 4 * time.Second})
	return err
}

// dropTables removes what the test made (a schema on PostgreSQL).
func (b *bench) dropTables() {
	ctx := context.Background()
	db := b.store.DB()
	if s := b.store.Options().Schema; s != "" {
		_, _ = db.ExecContext(ctx, `DROP SCHEMA "`+s+`" CASCADE`)
		return
	}
	for _, t := range []string{"naive", "entries", "records", "holds", "buckets", "accounts", "schema_versions"} {
		_, _ = db.ExecContext(ctx, "DROP TABLE IF EXISTS "+b.store.TableName(t))
	}
}

// accounts makes n funded accounts (and their naive rows), 64 at a time.
func (b *bench) accounts(ctx context.Context, n int) ([]string, error) {
	start := time.Now()
	ids := make([]string, n)
	prefix := "hot-" + randomHex() + "-"
	if n > 1 {
		prefix = "acct-"
	}
	for i := range ids {
		ids[i] = fmt.Sprintf("%s%06d", prefix, i)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for range min(n, 64) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := b.account(ctx, ids[i]); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	if n > 1 {
		fmt.Fprintf(os.Stderr, "set up %d accounts in %s\n", n, time.Since(start).Round(time.Millisecond))
	}
	// Fresh statistics, as a database in service would have.
	if b.store.Dialect() == "postgres" {
		if err := b.analyze(ctx); err != nil {
			return nil, err
		}
	}
	return ids, ctx.Err()
}

func (b *bench) account(ctx context.Context, id string) error {
	if _, err := b.ledger.CreateAccount(ctx, credits.CreateAccountRequest{ID: id}); err != nil {
		return err
	}
	if _, err := b.ledger.Grant(ctx, credits.GrantRequest{Account: id, Amount: b.balance, Kind: credits.KindPurchase, Key: "seed"}); err != nil {
		return err
	}
	p1, p2 := "$1", "$2"
	if b.store.Dialect() == "sqlite" {
		p1, p2 = "?1", "?2"
	}
	_, err := b.store.DB().ExecContext(ctx, "INSERT INTO "+b.naive+" (id, balance) VALUES ("+p1+", "+p2+")", id, b.balance.Units())
	return err
}

type result struct {
	ops, naiveOps      float64
	p50, p99           float64 // ms
	naiveP50, naiveP99 float64
	perBatch           float64
	kept               float64 // % of batches run on a kept state
	wal, naiveWal      float64 // bytes of WAL per operation (PostgreSQL; -1: not measured)
	cpu, naiveCPU      float64 // µs of the machine's busy CPU per operation (-1: not measured)
}

// clockTicks is Linux's USER_HZ, the unit of /proc/stat.
const clockTicks = 100

// cpuBusy is the machine's busy CPU time so far, all cores (Linux
// /proc/stat: every state but idle, iowait and steal), in µs; -1 where it
// cannot be read. It counts the database server's work as well as this
// program's, which is the point: both are what an operation costs.
func cpuBusy() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return -1
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return -1
	}
	var busy int64
	for i, v := range f[1:9] { // user nice system idle iowait irq softirq steal
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return -1
		}
		if i != 3 && i != 4 && i != 7 {
			busy += n
		}
	}
	return float64(busy) * 1e6 / clockTicks
}

// perOp is what was spent between two readings, per operation; -1 when
// either reading failed.
func perOp(from, to float64, ops int) float64 {
	if from < 0 || to < 0 || ops == 0 {
		return -1
	}
	return (to - from) / float64(ops)
}

// column formats a per-operation figure; "-" when not measured.
func column(v float64, format string) string {
	if v < 0 {
		return "-"
	}
	return fmt.Sprintf(format, v)
}

// ratio formats a ÷ b; "-" when either was not measured.
func ratio(a, b float64) string {
	if a < 0 || b <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", a/b)
}

// walPosition is the server's current WAL position in bytes, or -1 when
// the database is not PostgreSQL or does not say.
func (b *bench) walPosition(ctx context.Context) float64 {
	if b.store.Dialect() != "postgres" {
		return -1
	}
	var pos float64
	if err := b.store.DB().QueryRowContext(ctx, "SELECT pg_current_wal_lsn() - '0/0'").Scan(&pos); err != nil {
		return -1
	}
	return pos
}

// measure runs the naive baseline, then the ledger, each for the duration.
func (b *bench) measure(ctx context.Context, ids []string, callers int) (result, error) {
	var r result
	// The naive charge is one UPDATE; the naive job two: take the quote,
	// give back the unused part.
	naive := func(ctx context.Context, id string, _ int) error {
		return b.naiveUpdate(ctx, id, b.image.Total.Units())
	}
	if b.cfg.workload == "reserve-capture" {
		naive = func(ctx context.Context, id string, _ int) error {
			if err := b.naiveUpdate(ctx, id, b.video.Total.Units()); err != nil {
				return err
			}
			return b.naiveUpdate(ctx, id, -(b.video.Total.Units() - b.used.Units()))
		}
	}
	wal, cpu := b.walPosition(ctx), cpuBusy()
	n, lat, ended, err := drive(ctx, b.cfg.duration, callers, ids, naive)
	r.naiveCPU = perOp(cpu, cpuBusy(), ended)
	if err != nil {
		return r, fmt.Errorf("naive: %w", err)
	}
	r.naiveOps, r.naiveP50, r.naiveP99 = float64(n)/b.cfg.duration.Seconds(), percentile(lat, 0.50), percentile(lat, 0.99)
	next := b.walPosition(ctx)
	r.naiveWal = perOp(wal, next, ended)
	wal = next

	keys := randomHex() + "-"
	before, cpu := b.store.Stats(), cpuBusy()
	n, lat, ended, err = drive(ctx, b.cfg.duration, callers, ids, func(ctx context.Context, id string, i int) error {
		return b.ledgerOp(ctx, id, keys+strconv.Itoa(i))
	})
	if err != nil {
		return r, fmt.Errorf("ledger: %w", err)
	}
	r.cpu = perOp(cpu, cpuBusy(), ended)
	after := b.store.Stats()
	r.ops, r.p50, r.p99 = float64(n)/b.cfg.duration.Seconds(), percentile(lat, 0.50), percentile(lat, 0.99)
	r.wal = perOp(wal, b.walPosition(ctx), ended)
	if batches := after.Batches - before.Batches; batches > 0 {
		r.perBatch = float64(after.Operations-before.Operations) / float64(batches)
		r.kept = 100 * float64((after.KeptRuns-before.KeptRuns)-(after.KeptStale-before.KeptStale)) / float64(batches)
	}
	return r, nil
}

func (b *bench) naiveUpdate(ctx context.Context, id string, units int64) error {
	res, err := b.store.DB().ExecContext(ctx, b.update, units, id)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("naive update of %s: %d rows, %v", id, n, err)
	}
	return nil
}

// ledgerOp is one operation of the workload, checked.
func (b *bench) ledgerOp(ctx context.Context, id, key string) error {
	if b.cfg.workload == "charge" {
		res, err := b.ledger.Charge(ctx, credits.ChargeRequest{Account: id, Quote: b.image, Key: key})
		if err == nil && res.Charged != b.image.Total {
			err = fmt.Errorf("charged %s, want %s", res.Charged, b.image.Total)
		}
		return err
	}
	r, err := b.ledger.Reserve(ctx, credits.ReserveRequest{Account: id, Quote: b.video, Key: key})
	if err != nil {
		return err
	}
	c, err := b.ledger.Capture(ctx, credits.CaptureRequest{Hold: r.Hold.ID, Account: id, Usage: credits.Usage{Duration: 4 * time.Second}})
	if err == nil && c.Charged != b.used {
		err = fmt.Errorf("captured %s, want %s", c.Charged, b.used)
	}
	return err
}

// drive runs op on callers goroutines, each on a random account per
// operation, until the duration ends; it returns how many operations
// finished in time and their latencies, sorted, and how many finished in
// all (those that finished late included: the database did their work).
func drive(parent context.Context, d time.Duration, callers int, ids []string, op func(ctx context.Context, id string, i int) error) (int, []time.Duration, int, error) {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	deadline := time.Now().Add(d)
	var (
		next  atomic.Int64
		ended atomic.Int64
		mu    sync.Mutex
		all   []time.Duration
		first error
		wg    sync.WaitGroup
	)
	for range callers {
		wg.Go(func() {
			var lat []time.Duration
			for ctx.Err() == nil {
				t0 := time.Now()
				if t0.After(deadline) {
					break
				}
				if err := op(ctx, ids[mrand.IntN(len(ids))], int(next.Add(1))); err != nil {
					mu.Lock()
					if first == nil && ctx.Err() == nil {
						first = err
					}
					mu.Unlock()
					cancel() // one failure stops the measurement
					break
				}
				ended.Add(1)
				if time.Now().After(deadline) {
					break // finished late: not counted
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		})
	}
	wg.Wait()
	if first == nil {
		first = parent.Err()
	}
	slices.Sort(all)
	return len(all), all, int(ended.Load()), first
}

// percentile of sorted latencies, in milliseconds.
func percentile(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	i := min(max(int(math.Ceil(q*float64(len(sorted))))-1, 0), len(sorted)-1)
	return float64(sorted[i].Nanoseconds()) / 1e6
}

func randomHex() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

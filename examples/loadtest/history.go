package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/creditkit/credits"
)

// The long-run mode (-windows N, PostgreSQL): does a charge cost the same
// on a ledger that has run for years as on a new one? It makes the
// accounts in bulk, measures one window of charges on them with no
// history, loads -history entries of history in bulk (rows shaped exactly
// like the ledger's own: each a copy of a real charge's hold, record and
// entry, with their own IDs and keys), then measures N windows of charges
// on top, each -duration long and starting at a checkpoint, and prints per
// window the throughput, latency, WAL and full-page images, CPU and disk
// per charge. The first window on the accounts warms the caches and is not
// counted.
//
//	go run ./examples/loadtest -db postgres://… -accounts 1000000 -history 20000000 -windows 5 -duration 60s -callers 64
//
// Turn autovacuum on (as in production) for such a run: the database's
// setting is printed with the results.

// longRun is the long-run mode: see above.
func (b *bench) longRun(ctx context.Context) error {
	c := b.cfg
	if b.store.Dialect() != "postgres" {
		return fmt.Errorf("-windows: the long-run mode needs PostgreSQL")
	}
	if len(c.callers) != 1 || c.accounts < 1 {
		return fmt.Errorf("-windows: give one number of -callers and at least one account")
	}
	start := time.Now()
	t, err := b.template(ctx)
	if err != nil {
		return err
	}
	ids, err := b.bulkAccounts(ctx, t)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "made %d accounts in %s\n", len(ids), time.Since(start).Round(time.Second))
	var autovacuum, walCompression string
	db := b.store.DB()
	_ = db.QueryRowContext(ctx, "SHOW autovacuum").Scan(&autovacuum)
	_ = db.QueryRowContext(ctx, "SHOW wal_compression").Scan(&walCompression)
	fmt.Printf("credits long run: %s, charges on %d accounts, %d callers, windows of %s, autovacuum %s, wal_compression %s\n\n",
		describe(b.store), len(ids), c.callers[0], c.duration, autovacuum, walCompression)
	const row = "%-10s %11s %8s %7s %7s %9s %8s %9s %10s %6s\n"
	fmt.Printf(row, "window", "entries", "ops/s", "p50 ms", "p99 ms", "WAL B/op", "FPI/op", "CPU µs/op", "disk B/op", "ckpts")
	print := func(name string, w window) {
		fmt.Printf(row, name, strconv.FormatInt(w.entries, 10), fmt.Sprintf("%.0f", w.ops), fmt.Sprintf("%.2f", w.p50), fmt.Sprintf("%.2f", w.p99),
			fmt.Sprintf("%.0f", w.wal), fmt.Sprintf("%.2f", w.fpi), column(w.cpu, "%.0f"), fmt.Sprintf("%.0f", w.disk), strconv.FormatInt(w.checkpoints, 10))
	}
	if _, err := b.window(ctx, ids); err != nil { // warm-up
		return err
	}
	empty, err := b.window(ctx, ids)
	if err != nil {
		return err
	}
	print("empty", empty)
	if c.history > 0 {
		loadStart := time.Now()
		if err := b.bulkHistory(ctx, t, ids); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "loaded %d entries of history in %s\n", c.history, time.Since(loadStart).Round(time.Second))
	}
	var first, last window
	for i := range c.windows {
		w, err := b.window(ctx, ids)
		if err != nil {
			return err
		}
		print(fmt.Sprint(i+1), w)
		if i == 0 {
			first = w
		}
		last = w
	}
	fmt.Printf("\nlast window ÷ empty: p99 %s, CPU per charge %s, WAL per charge %s; last ÷ first: WAL %s, p99 %s\n",
		ratio(last.p99, empty.p99), ratio(last.cpu, empty.cpu), ratio(last.wal, empty.wal), ratio(last.wal, first.wal), ratio(last.p99, first.p99))
	fmt.Println("FPI/op: full-page images per charge (a page's first change after a checkpoint logs the whole 8 KB page);")
	fmt.Println("disk B/op: growth of the ledger's tables and indexes per charge; ckpts: checkpoints during the window.")
	return nil
}

// template is a real account's rows, made by the ledger, that the bulk
// load copies: the account and its grant before a charge, and the hold,
// record and entry of one charge.
type template struct {
	seq    int64 // the account's Seq before the charge
	bucket string
	amount int64 // what one charge takes, in units
}

func (b *bench) template(ctx context.Context) (template, error) {
	if err := b.account(ctx, "tmpl"); err != nil {
		return template{}, err
	}
	var seq int64
	if err := b.store.DB().QueryRowContext(ctx, "SELECT seq FROM "+b.store.TableName("accounts")+" WHERE id = 'tmpl'").Scan(&seq); err != nil {
		return template{}, err
	}
	res, err := b.ledger.Charge(ctx, credits.ChargeRequest{Account: "tmpl", Quote: b.image, Key: "tmpl-charge"})
	if err != nil {
		return template{}, err
	}
	if len(res.Hold.Portions) != 1 {
		return template{}, fmt.Errorf("the template charge took from %d grants, want 1", len(res.Hold.Portions))
	}
	return template{seq: seq, bucket: res.Hold.Portions[0].Bucket, amount: res.Charged.Units()}, nil
}

// bulkAccounts copies the template's account, grant and their entries
// (as they were before its charge) to -accounts accounts.
func (b *bench) bulkAccounts(ctx context.Context, t template) ([]string, error) {
	n := b.cfg.accounts
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("acct-%07d", i)
	}
	acct := `'acct-' || lpad(i::text, 7, '0')`
	grant := `'grant_' || lpad(to_hex(i), 32, '0')`
	bal := strconv.FormatInt(b.balance.Units(), 10)
	err := b.exec(ctx,
		`INSERT INTO {accounts} (id, created_at, team, members, low_balance_threshold, available, held, granted, spent, expired, seq, metadata, version)
		 SELECT `+acct+`, created_at, team, members, low_balance_threshold, `+bal+`, 0, `+bal+`, 0, 0, `+fmt.Sprint(t.seq)+`, metadata, 0
		 FROM {accounts} a, generate_series(0, $1 - 1) i WHERE a.id = 'tmpl'`,
		`INSERT INTO {buckets} (id, account, kind, amount, remaining, expired, expires_at, created_at, seq, restored_from, note, live)
		 SELECT `+grant+`, `+acct+`, kind, amount, `+bal+`, expired, expires_at, created_at, seq, restored_from, note, live
		 FROM {buckets} g, generate_series(0, $1 - 1) i WHERE g.id = '`+t.bucket+`'`,
		`INSERT INTO {entries} (account, seq, type, amount, available, held, at, hold, bucket, kind, tool, member, key, note)
		 SELECT `+acct+`, seq, type, amount, available, held, at, hold, CASE WHEN bucket = '' THEN '' ELSE `+grant+` END, kind, tool, member, key, note
		 FROM {entries} e, generate_series(0, $1 - 1) i WHERE e.account = 'tmpl' AND e.seq <= `+fmt.Sprint(t.seq),
		`INSERT INTO {records} (account, key, operation, request, result, created_at)
		 SELECT `+acct+`, key, operation, replace(request, '"tmpl"', '"' || `+acct+` || '"'), result, created_at
		 FROM {records} r, generate_series(0, $1 - 1) i WHERE r.account = 'tmpl' AND r.key <> 'k:tmpl-charge'`,
		`INSERT INTO {naive} (id, balance) SELECT `+acct+`, `+bal+` FROM generate_series(0, $1 - 1) i`,
	)(n)
	if err != nil {
		return nil, err
	}
	b.entries = int64(n) * t.seq
	return ids, b.analyze(ctx)
}

// bulkHistory gives every account -history ÷ -accounts charges, each a
// copy of the template's charge (its hold, record and entry), written in
// time order across the accounts, a million rows at a time.
func (b *bench) bulkHistory(ctx context.Context, t template, ids []string) error {
	n := int64(len(ids))
	per := b.cfg.history / n
	if per < 1 {
		return fmt.Errorf("-history %d is less than one entry per account", b.cfg.history)
	}
	// Each account's history goes after its entries so far (a.seq); i is
	// the account's number, from its ID.
	i := `substr(a.id, 6)::bigint`
	grant := `'grant_' || lpad(to_hex(` + i + `), 32, '0')`
	hold := `'hold_' || lpad(to_hex(j * $3 + ` + i + `), 32, '0')`
	amount := fmt.Sprint(t.amount)
	accounts := `{accounts} a, generate_series($1::bigint, $2) j`
	mine := ` AND a.id LIKE 'acct-%' AND $3 > 0`
	chunk := max(1, 1_000_000/n)
	for from := int64(1); from <= per; from += chunk {
		to := min(per, from+chunk-1)
		err := b.exec(ctx,
			`INSERT INTO {entries} (account, seq, type, amount, available, held, at, hold, bucket, kind, tool, member, key, note)
			 SELECT a.id, a.seq + j, type, e.amount, a.available - j * `+amount+`, e.held, at, `+hold+`, bucket, kind, tool, member, 'h' || j, note
			 FROM {entries} e, `+accounts+` WHERE e.account = 'tmpl' AND e.type = 'charge'`+mine,
			`INSERT INTO {holds} (id, account, member, key, status, amount, captured, refunded, portions, quote, created_at, deadline, settled_at, metadata)
			 SELECT `+hold+`, a.id, member, 'h' || j, status, amount, captured, refunded, replace(portions, '`+t.bucket+`', `+grant+`), quote, h.created_at, deadline, settled_at, h.metadata
			 FROM {holds} h, `+accounts+` WHERE h.account = 'tmpl'`+mine,
			`INSERT INTO {records} (account, key, operation, request, result, created_at)
			 SELECT a.id, 'k:h' || j, operation, replace(request, '"tmpl"', '"' || a.id || '"'), replace(result, h.id, `+hold+`), r.created_at
			 FROM {records} r JOIN {holds} h ON h.account = r.account, `+accounts+`
			 WHERE r.account = 'tmpl' AND r.key = 'k:tmpl-charge'`+mine,
		)(from, to, n)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "history: %d of %d charges per account\n", to, per)
	}
	taken := strconv.FormatInt(per*t.amount, 10)
	err := b.exec(ctx,
		`UPDATE {accounts} SET available = available - `+taken+`, spent = spent + `+taken+`, seq = seq + $1, version = version + 1 WHERE id <> 'tmpl'`,
		`UPDATE {buckets} SET remaining = remaining - `+taken+` WHERE account <> 'tmpl'`,
	)(per)
	if err != nil {
		return err
	}
	b.entries += per * n
	return b.analyze(ctx)
}

// exec runs each statement with args, its {table} names replaced by the
// store's.
func (b *bench) exec(ctx context.Context, stmts ...string) func(args ...any) error {
	return func(args ...any) error {
		for _, s := range stmts {
			for _, t := range []string{"accounts", "buckets", "holds", "entries", "records", "naive"} {
				s = strings.ReplaceAll(s, "{"+t+"}", b.store.TableName(t))
			}
			if _, err := b.store.DB().ExecContext(ctx, s, args[:countParams(s, len(args))]...); err != nil {
				return fmt.Errorf("bulk load: %w\n%s", err, s)
			}
		}
		return nil
	}
}

// countParams is how many of the n arguments statement s uses ($1…$n).
func countParams(s string, n int) int {
	for n > 0 && !strings.Contains(s, "$"+strconv.Itoa(n)) {
		n--
	}
	return n
}

// analyze gives the planner fresh statistics of the tables (PostgreSQL), as
// a database in service would have.
func (b *bench) analyze(ctx context.Context) error {
	for _, t := range []string{"accounts", "buckets", "holds", "entries", "records", "naive"} {
		if _, err := b.store.DB().ExecContext(ctx, "ANALYZE "+b.store.TableName(t)); err != nil {
			return err
		}
	}
	return nil
}

// window is one measurement of the long run.
type window struct {
	entries       int64
	ops, p50, p99 float64
	wal, fpi, cpu float64 // per charge
	disk          float64 // bytes of tables and indexes per charge
	checkpoints   int64
}

// serverCounters reads the WAL position, full-page images, checkpoints and
// the ledger's size on disk.
func (b *bench) serverCounters(ctx context.Context) (wal, fpi float64, ckpts int64, disk float64, err error) {
	db := b.store.DB()
	if err = db.QueryRowContext(ctx, `SELECT pg_current_wal_lsn() - '0/0', (SELECT wal_fpi FROM pg_stat_wal),
		(SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter)`).Scan(&wal, &fpi, &ckpts); err != nil {
		return
	}
	q := "SELECT 0"
	for _, t := range []string{"accounts", "buckets", "holds", "entries", "records"} {
		q += " + pg_total_relation_size('" + b.store.TableName(t) + "')"
	}
	err = db.QueryRowContext(ctx, q).Scan(&disk)
	return
}

// window charges for -duration on random accounts and measures it.
func (b *bench) window(ctx context.Context, ids []string) (window, error) {
	var w window
	var err error
	if b.image, err = b.ledger.Quote(credits.QuoteRequest{Tool: "image"}); err != nil { // quotes expire
		return w, err
	}
	// Every window starts at a checkpoint, so that each one pays the
	// full-page images of the pages it touches the same way: a charge
	// that writes to pages at random in indexes larger than memory pays
	// more of them as the history grows; one that appends, no more.
	if err := b.exec(ctx, "CHECKPOINT")(); err != nil {
		return w, err
	}
	wal0, fpi0, ck0, disk0, err := b.serverCounters(ctx)
	if err != nil {
		return w, err
	}
	cpu0 := cpuBusy()
	keys := randomHex() + "-"
	n, lat, ended, err := drive(ctx, b.cfg.duration, b.cfg.callers[0], ids, func(ctx context.Context, id string, i int) error {
		return b.ledgerOp(ctx, id, keys+strconv.Itoa(i))
	})
	if err != nil {
		return w, err
	}
	w.cpu = perOp(cpu0, cpuBusy(), ended)
	wal1, fpi1, ck1, disk1, err := b.serverCounters(ctx)
	if err != nil {
		return w, err
	}
	w.ops, w.p50, w.p99 = float64(n)/b.cfg.duration.Seconds(), percentile(lat, 0.50), percentile(lat, 0.99)
	w.wal, w.fpi, w.disk = (wal1-wal0)/float64(ended), (fpi1-fpi0)/float64(ended), (disk1-disk0)/float64(ended)
	w.checkpoints = ck1 - ck0
	b.entries += int64(ended) // a charge writes one entry
	w.entries = b.entries
	return w, nil
}

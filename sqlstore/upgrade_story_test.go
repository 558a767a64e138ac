package sqlstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/creditkit/credits"
	"github.com/creditkit/credits/sqlstore"
	"github.com/creditkit/credits/storetest"
)

// The story fixture: testdata/v3-story.db (SQLite) and v3-story.pg.sql (a
// pg_dump of a PostgreSQL schema) are databases that the release with
// schema v3 (commit 52e5d98) wrote by running upgradeStory, and
// testdata/v3-story.json is what each step returned then. It was made
// by copying this file into a checkout of that commit and running
//
//	CREDITS_WRITE_FIXTURE=$PWD/sqlstore/testdata CREDITS_TEST_POSTGRES=postgres://… \
//	    go test -run TestUpgradeStory ./sqlstore
//
// Every step is keyed, so run again on the upgraded database each one must
// be a replay, and return exactly what it returned the first time.
const storyFixture = "v3-story"

// storyStart is the fixed clock the story runs on, both times.
var storyStart = time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)

// upgradeStory runs every kind of keyed operation once on an empty ledger
// (and, run again on the same database, replays each of them): accounts
// personal and team, grants of each kind, the daily reward, charges,
// holds captured by usage, released and expired, a refund, a refusal for
// insufficient credits, a grant expiry. It returns each step's result (or
// error) as JSON, and whether the step was a replay.
func upgradeStory(ctx context.Context, t *testing.T, store credits.Store) (steps []string, replays []bool) {
	t.Helper()
	now := storyStart
	h := storetest.NewHarness(t, store, func(c *credits.Config) {
		c.Now = func() time.Time { return now }
		c.NewID = storetest.SequentialIDs("story_")
		c.Signup = credits.Reward{Amount: credits.Whole(50), ValidFor: 30 * 24 * time.Hour}
		c.Daily = credits.Reward{Amount: credits.Whole(5), ValidFor: 48 * time.Hour}
	})
	l := h.Ledger
	step := func(name string, res any, err error) {
		t.Helper()
		out := map[string]any{"step": name}
		if err != nil {
			// A refusal replayed by a release that marks replays (a
			// *credits.ReplayedError, found by its field so that this file
			// still compiles in the previous release's checkout, which
			// writes the fixture) is compared as the refusal it wraps.
			if v := reflect.ValueOf(err); v.Kind() == reflect.Pointer && v.Elem().Kind() == reflect.Struct && v.Elem().FieldByName("DecidedAt").IsValid() {
				replays = append(replays, true)
				err = errors.Unwrap(err)
			}
			out["error"] = err.Error()
			var ie *credits.InsufficientCreditsError
			if errors.As(err, &ie) {
				out["insufficient"] = ie
			}
		} else {
			out["result"] = res
			replays = append(replays, reflect.ValueOf(res).FieldByName("Replayed").Bool())
		}
		b, jerr := json.Marshal(out)
		if jerr != nil {
			t.Fatal(jerr)
		}
		steps = append(steps, string(b))
	}
	quote := func(req credits.QuoteRequest) credits.Quote {
		t.Helper()
		q, err := l.Quote(req)
		if err != nil {
			t.Fatal(err)
		}
		return q
	}
	image := quote(credits.QuoteRequest{Tool: "image"})
	video := quote(credits.QuoteRequest{Tool: "video", Resolution: "720p", Duration: 5 * time.Second})
	huge := quote(credits.QuoteRequest{Tool: "video", Resolution: "1080p", Duration: 60 * time.Second})

	created, err := l.CreateAccount(ctx, credits.CreateAccountRequest{ID: "alice", LowBalanceThreshold: credits.Whole(20), Metadata: map[string]string{"tier": "free"}})
	step("create alice", created, err)
	bought, err := l.Grant(ctx, credits.GrantRequest{Account: "alice", Amount: credits.Whole(100), Kind: credits.KindPurchase, Key: "order-1", Note: "order 1"})
	step("buy", bought, err)
	daily, err := l.ClaimDaily(ctx, "alice")
	step("daily", daily, err)
	img, err := l.Charge(ctx, credits.ChargeRequest{Account: "alice", Quote: image, Key: "img-1", Metadata: map[string]string{"prompt": "a cat"}})
	step("charge", img, err)
	vid, err := l.Reserve(ctx, credits.ReserveRequest{Account: "alice", Quote: video, Key: "vid-1"})
	step("reserve vid-1", vid, err)
	now = now.Add(time.Minute)
	captured, err := l.Capture(ctx, credits.CaptureRequest{Hold: vid.Hold.ID, Usage: credits.Usage{Duration: 3200 * time.Millisecond}})
	step("capture vid-1", captured, err)
	vid2, err := l.Reserve(ctx, credits.ReserveRequest{Account: "alice", Quote: video, Key: "vid-2", TTL: 10 * time.Minute})
	step("reserve vid-2", vid2, err)
	released, err := l.Release(ctx, credits.ReleaseRequest{Hold: vid2.Hold.ID, Reason: "the model crashed"})
	step("release vid-2", released, err)
	refunded, err := l.Refund(ctx, credits.RefundRequest{Charge: img.Hold.ID, Amount: credits.Whole(3), Reason: "blurry", Key: "refund-1"})
	step("refund", refunded, err)
	_, err = l.Charge(ctx, credits.ChargeRequest{Account: "alice", Quote: huge, Key: "too-much"})
	step("refused", nil, err)

	team, err := l.CreateAccount(ctx, credits.CreateAccountRequest{ID: "studio", Team: true, Members: []string{"bob", "carol"}})
	step("create studio", team, err)
	promo, err := l.Grant(ctx, credits.GrantRequest{Account: "studio", Amount: credits.Whole(60), Kind: credits.KindPromo, ExpiresAt: now.Add(time.Hour), Key: "promo-1"})
	step("promo", promo, err)
	bob, err := l.Charge(ctx, credits.ChargeRequest{Account: "studio", Member: "bob", Quote: image, Key: "bob-1"})
	step("charge bob", bob, err)
	carol, err := l.Reserve(ctx, credits.ReserveRequest{Account: "studio", Member: "carol", Quote: video, Key: "carol-1", TTL: 10 * time.Minute})
	step("reserve carol", carol, err)
	now = now.Add(2 * time.Hour) // carol's hold and the promo lapse
	if _, err := l.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	adj, err := l.Grant(ctx, credits.GrantRequest{Account: "studio", Amount: credits.Whole(10), Kind: credits.KindAdjustment, Key: "adj-1", Note: "sorry"})
	step("adjust", adj, err)
	return steps, replays
}

// TestUpgradeStory opens the story's database, written by the previous
// release, with this code: the migration keeps every row, and each of the
// story's keyed operations, run again, is a replay identical to the first
// run's result. On PostgreSQL the fixture is a pg_dump of the schema the
// story was written into, restored into a schema of the test's own.
func TestUpgradeStory(t *testing.T) {
	ctx := context.Background()
	if dir := os.Getenv("CREDITS_WRITE_FIXTURE"); dir != "" {
		writeStoryFixture(ctx, t, dir)
		return
	}
	var want []string
	raw, err := os.ReadFile(filepath.Join("testdata", storyFixture+".json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	t.Run("sqlite", func(t *testing.T) {
		checkStoryUpgrade(ctx, t, "file:"+copyFixture(t, storyFixture+".db"), sqlstore.Options{}, want)
	})
	t.Run("postgres", func(t *testing.T) {
		dump, err := os.ReadFile(filepath.Join("testdata", storyFixture+".pg.sql"))
		if err != nil {
			t.Fatal(err)
		}
		schema := randomName("credits_story_")
		db := newPostgresConn(t)
		if _, err := db.ExecContext(ctx, strings.ReplaceAll(string(dump), storySchema, schema)); err != nil {
			t.Fatalf("restore the fixture: %v", err)
		}
		t.Cleanup(func() { _, _ = db.ExecContext(context.Background(), `DROP SCHEMA "`+schema+`" CASCADE`) })
		checkStoryUpgrade(ctx, t, postgresDSN(t), sqlstore.Options{Schema: schema}, want)
	})
}

// storySchema is the PostgreSQL schema the fixture was written into.
const storySchema = "credits_story_v3"

func checkStoryUpgrade(ctx context.Context, t *testing.T, dsn string, opts sqlstore.Options, want []string) {
	before := dumpTables(ctx, t, dsn, opts, 3)
	s, err := sqlstore.Open(ctx, dsn, &opts)
	if err != nil {
		t.Fatalf("open (migrating v3 → current): %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	got, replays := upgradeStory(ctx, t, s)
	if len(got) != len(want) {
		t.Fatalf("%d steps, the fixture has %d", len(got), len(want))
	}
	for i := range want {
		if g, w := reencodeQuotes(t, got[i]), reencodeQuotes(t, want[i]); g != w {
			t.Errorf("step %d after the upgrade:\n got %s\nwant %s", i, g, w)
		}
	}
	for i, r := range replays {
		if !r {
			t.Errorf("successful step %d was not a replay: it ran again", i)
		}
	}
	after := dumpTables(ctx, t, dsn, opts, s.SchemaVersion())
	for table, rows := range before {
		if after[table] != rows {
			t.Errorf("%s changed by the upgrade and the replays:\n%s\nbefore:\n%s", table, after[table], rows)
		}
	}
}

// reencodeQuotes returns a step's JSON with every quote in it decoded as a
// credits.Quote and encoded again. The fixture's quotes have their
// durations in nanoseconds ("duration": 5000000000), as the release that
// wrote it encoded them; this code encodes them in milliseconds
// ("duration_ms": 5000). Read through the decoder, which takes both, the
// fixture's quotes must be exactly the ones the replays return.
func reencodeQuotes(t *testing.T, step string) string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(step))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	var walk func(v any) any
	walk = func(v any) any {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				if m, ok := e.(map[string]any); ok && k == "quote" {
					raw, _ := json.Marshal(m)
					var q credits.Quote
					if err := json.Unmarshal(raw, &q); err != nil {
						t.Fatalf("quote %s: %v", raw, err)
					}
					raw, _ = json.Marshal(q)
					d := json.NewDecoder(strings.NewReader(string(raw)))
					d.UseNumber()
					var again any
					if err := d.Decode(&again); err != nil {
						t.Fatal(err)
					}
					v[k] = again
					continue
				}
				v[k] = walk(e)
			}
		case []any:
			for i, e := range v {
				v[i] = walk(e)
			}
		}
		return v
	}
	b, err := json.Marshal(walk(v))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// writeStoryFixture runs the story on a new SQLite file in dir and, with
// CREDITS_TEST_POSTGRES set, in a new PostgreSQL schema that it dumps to a
// file beside it; it writes the story's results too (the same on both).
func writeStoryFixture(ctx context.Context, t *testing.T, dir string) {
	path := filepath.Join(dir, storyFixture+".db")
	_ = os.Remove(path)
	write := func(dsn string, opts *sqlstore.Options) []string {
		s, err := sqlstore.Open(ctx, dsn, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		steps, replays := upgradeStory(ctx, t, s)
		for i, r := range replays {
			if r {
				t.Fatalf("step %d replayed on an empty database", i)
			}
		}
		return steps
	}
	steps := write("file:"+path, nil)
	if dsn := os.Getenv("CREDITS_TEST_POSTGRES"); dsn != "" {
		db := newPostgresConn(t)
		_, _ = db.ExecContext(ctx, `DROP SCHEMA IF EXISTS `+storySchema+` CASCADE`)
		if pg := write(dsn, &sqlstore.Options{Schema: storySchema}); !slices.Equal(pg, steps) {
			t.Fatalf("the story gave other results on PostgreSQL:\n%q\n%q", pg, steps)
		}
		out, err := exec.Command("pg_dump", "--dbname="+strings.Split(dsn, "?")[0], "--schema="+storySchema,
			"--inserts", "--no-owner", "--no-privileges", "--no-comments").Output()
		if err != nil {
			t.Fatalf("pg_dump: %v", err)
		}
		// Without psql's meta-commands (\restrict), so that one Exec runs it.
		var sqlText []string
		for line := range strings.Lines(string(out)) {
			if !strings.HasPrefix(line, `\`) {
				sqlText = append(sqlText, line)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, storyFixture+".pg.sql"), []byte(strings.Join(sqlText, "")), 0o644); err != nil {
			t.Fatal(err)
		}
		_, _ = db.ExecContext(ctx, `DROP SCHEMA `+storySchema+` CASCADE`)
	}
	b, err := json.MarshalIndent(steps, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, storyFixture+".json"), append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s and its results (%d steps)", path, len(steps))
}

// copyFixture copies testdata/name into the test's temporary directory, so
// that the test never changes the committed file.
func copyFixture(t *testing.T, name string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// addedColumns are the columns that migrations after the fixtures' schema
// (v2, v3) added to a table the dump reads, each with the version that
// added it and, as SQL, the value every row written before it must read.
// A column added later to a table dumped whole (SELECT *) and missing here
// makes every comparison across the upgrade fail.
var addedColumns = map[string][]struct {
	name    string
	version int
	before  string
	dialect string // "": both
}{
	"accounts": {{"plan", 5, "''", ""}, {"allowance", 5, "'null'", ""}, {"renews_at", 5, "NULL", ""}, {"limits", 5, "'null'", ""}, {"debited", 7, "0", ""}, {"low", 9, "0", ""}},
	"buckets":  {{"debited", 7, "0", ""}, {"voided_at", 7, "NULL", ""}, {"warned_at", 9, "NULL", ""}},
	"holds":    {{"seq", 5, "0", ""}, {"first_deadline", 6, "NULL", ""}},
	"entries":  {{"plan", 5, "''", ""}, {"xid", 8, "NULL", "postgres"}},
}

// dumpTables reads every row of the ledger's tables in the database at
// dsn (with opts), whose schema must be at version, as text, in a fixed
// order: each table whole but accounts, whose version (a counter the
// store owns, absent before v3) is left out. A column that a later
// migration added (addedColumns) reads, at a version before it, as the
// value the migration must give the row: so a dump from before an upgrade
// equals one from after it only if every old column kept its value and
// every new column holds its default.
func dumpTables(ctx context.Context, t *testing.T, dsn string, opts sqlstore.Options, version int) map[string]string {
	t.Helper()
	s, err := openUnchecked(ctx, dsn, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, err := s.Version(ctx); err != nil || v != version {
		t.Fatalf("%s is at version %d (%v), want %d", dsn, v, err, version)
	}
	listed := map[string]string{"accounts": "id, created_at, team, members, low_balance_threshold, available, held, granted, spent, expired, seq, metadata"}
	out := map[string]string{}
	for _, table := range []string{"accounts", "entries", "buckets", "holds", "records"} {
		sel, ok := listed[table]
		if !ok {
			sel = "*"
		}
		for _, c := range addedColumns[table] {
			switch {
			case c.dialect != "" && c.dialect != s.Dialect():
			case version < c.version:
				sel += ", " + c.before + " AS " + c.name
			case ok: // SELECT * has it, after the columns before it
				sel += ", " + c.name
			}
		}
		query := "SELECT " + sel + " FROM " + s.TableName(table) + " ORDER BY 1, 2"
		rows, err := s.DB().QueryContext(ctx, query)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		var text string
		for rows.Next() {
			vals, dest := make([]any, len(cols)), make([]any, len(cols))
			for i := range vals {
				dest[i] = &vals[i]
			}
			if err := rows.Scan(dest...); err != nil {
				t.Fatal(err)
			}
			text += fmt.Sprintln(vals...)
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
		out[table] = text
	}
	return out
}

package sqlstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/creditkit/credits"
)

// TestTypedLoadMatchesJSONLoad: on PostgreSQL, the pipelined batch's
// typed load (typedLock/typedHolds/typedBuckets/typedRecords) gives exactly
// the states the database/sql JSON load (lockAndLoad) gives, for a batch of
// two accounts naming holds of every status (settled_at NULL and not),
// buckets with and without expires_at, due holds, present and absent keys
// (one pair twice) and a hold of the other account.
func TestTypedLoadMatchesJSONLoad(t *testing.T) {
	ctx := context.Background()
	s := openPostgresInternal(t)
	now := time.Date(2026, 11, 30, 9, 0, 0, 123456789, time.UTC)
	l, err := credits.NewLedger(s, &credits.Config{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	video, _ := l.Quote(credits.QuoteRequest{Tool: "video", Resolution: "720p", Duration: 5 * time.Second})
	image, _ := l.Quote(credits.QuoteRequest{Tool: "image", Images: 2})
	for _, a := range []string{"a", "b"} {
		if _, err := l.CreateAccount(ctx, credits.CreateAccountRequest{ID: a}); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Grant(ctx, credits.GrantRequest{Account: a, Amount: credits.MustParse("30.5"), Kind: credits.KindPromo, Key: "g1", ExpiresAt: now.Add(10 * time.Minute)}); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Grant(ctx, credits.GrantRequest{Account: a, Amount: credits.Whole(500), Kind: credits.KindPurchase, Key: "g2"}); err != nil {
			t.Fatal(err)
		}
		r1, err := l.Reserve(ctx, credits.ReserveRequest{Account: a, Quote: video, Key: "r1", Metadata: map[string]string{"x": "y"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Capture(ctx, credits.CaptureRequest{Hold: r1.Hold.ID, Usage: credits.Usage{Duration: 2 * time.Second}, Key: "c1"}); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Charge(ctx, credits.ChargeRequest{Account: a, Quote: image, Key: "ch"}); err != nil {
			t.Fatal(err)
		}
		r2, err := l.Reserve(ctx, credits.ReserveRequest{Account: a, Quote: video, Key: "r2"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Release(ctx, credits.ReleaseRequest{Hold: r2.Hold.ID}); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Reserve(ctx, credits.ReserveRequest{Account: a, Quote: video, Key: "r3", TTL: time.Minute}); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Reserve(ctx, credits.ReserveRequest{Account: a, Quote: image, Key: "r4", TTL: time.Hour}); err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(15 * time.Minute)

	// Every hold and record key, by account.
	holds := map[string][]string{}
	keys := map[string][]string{}
	rows, err := s.db.QueryContext(ctx, "SELECT account, id FROM "+s.t.holds+" ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var a, id string
		_ = rows.Scan(&a, &id)
		holds[a] = append(holds[a], id)
	}
	rows.Close()
	rows, err = s.db.QueryContext(ctx, "SELECT account, key FROM "+s.t.records+" ORDER BY key")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var a, k string
		_ = rows.Scan(&a, &k)
		keys[a] = append(keys[a], k)
	}
	rows.Close()
	if len(holds["a"]) < 4 || len(keys["a"]) < 4 {
		t.Fatalf("holds %v keys %v", holds, keys)
	}

	cases := map[string][]credits.Query{
		"named holds, keys, due": {
			{Account: "a", Holds: append(append([]string{}, holds["a"][:2]...), holds["b"][0]), Keys: append(append([]string{}, keys["a"]...), "k:absent", keys["a"][0]), Due: now},
			{Account: "b", Holds: holds["b"][1:], Keys: keys["b"][:2]},
		},
		"due only":   {{Account: "a", Due: now.Add(2 * time.Hour)}},
		"nothing":    {{Account: "b"}},
		"all named":  {{Account: "a", Holds: holds["a"], Keys: keys["a"]}, {Account: "b", Holds: holds["b"], Keys: keys["b"], Due: now}},
		"two of one": {{Account: "a", Holds: holds["a"][:1]}, {Account: "a", Holds: holds["a"][1:], Keys: keys["a"][:1], Due: now}},
	}
	for name, qs := range cases {
		t.Run(name, func(t *testing.T) {
			// The JSON path: database/sql, lockAndLoad.
			tx, err := s.db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			want, err := s.lockAndLoad(ctx, s.on(tx), qs)
			_ = tx.Rollback()
			if err != nil {
				t.Fatal(err)
			}
			// The typed path: pipelined, with applies that only look.
			got := map[string]*credits.State{}
			var live []*pending
			for _, q := range qs {
				live = append(live, &pending{ctx: ctx, q: q, done: make(chan error, 1), apply: func(st *credits.State) (*credits.Change, error) {
					got[q.Account] = st
					return nil, nil
				}})
			}
			conn, err := s.db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if err := conn.Raw(func(dc any) error {
				return s.pipelined(ctx, dc.(*stdlib.Conn).Conn(), live)
			}); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				for a := range want {
					if !reflect.DeepEqual(got[a], want[a]) {
						t.Errorf("account %s: typed load\n%s\nJSON load\n%s", a, dump(got[a]), dump(want[a]))
					}
				}
			}
			n, settled, open, expiring, never, recs := 0, 0, 0, 0, 0, 0
			for _, st := range got {
				n += len(st.Holds)
				recs += len(st.Records)
				for _, h := range st.Holds {
					if h.SettledAt.IsZero() {
						open++
					} else {
						settled++
					}
				}
				for _, b := range st.Buckets {
					if b.ExpiresAt.IsZero() {
						never++
					} else {
						expiring++
					}
				}
			}
			t.Logf("holds %d (settled %d, unsettled %d), buckets expiring %d, never %d, records %d", n, settled, open, expiring, never, recs)
			if n == 0 && name != "nothing" {
				t.Errorf("nothing loaded")
			}
		})
	}
}

// TestTypedLoadErrors: a statement of the typed load that fails
// (a hold whose portions are not JSON makes the buckets' branches fail)
// is an error wrapping ErrTransient, as on the JSON path, and the
// connection is usable afterwards.
func TestTypedLoadErrors(t *testing.T) {
	ctx := context.Background()
	s := openPostgresInternal(t)
	l, _ := credits.NewLedger(s, nil)
	if _, err := l.CreateAccount(ctx, credits.CreateAccountRequest{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(ctx, "INSERT INTO "+s.t.holds+" VALUES ('hx', 'a', '', '', 'open', 1, 0, 0, 'not json', 'null', 0, 0, NULL, 'null')"); err != nil {
		t.Fatal(err)
	}
	qs := []credits.Query{{Account: "a", Holds: []string{"hx"}}}
	tx, _ := s.db.BeginTx(ctx, nil)
	_, jerr := s.lockAndLoad(ctx, s.on(tx), qs)
	_ = tx.Rollback()
	conn, err := s.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var perr, perr2 error
	_ = conn.Raw(func(dc any) error {
		pc := dc.(*stdlib.Conn).Conn()
		live := []*pending{{ctx: ctx, q: qs[0], done: make(chan error, 1), apply: func(*credits.State) (*credits.Change, error) { return nil, nil }}}
		perr = s.pipelined(ctx, pc, live)
		live[0].q.Holds = nil
		perr2 = s.pipelined(ctx, pc, live)
		return nil
	})
	t.Logf("JSON path: %v", jerr)
	t.Logf("typed path: %v", perr)
	t.Logf("typed path again, without the bad hold: %v", perr2)
	if !errors.Is(jerr, credits.ErrTransient) || !errors.Is(perr, credits.ErrTransient) || perr2 != nil {
		t.Errorf("want both ErrTransient and a usable connection")
	}
}

func dump(st *credits.State) string {
	if st == nil {
		return "<nil>"
	}
	out := ""
	if st.Account != nil {
		out += "account " + st.Account.ID + "\n"
	}
	for id, h := range st.Holds {
		out += "hold " + id + " " + string(h.Status) + "\n"
	}
	for id, b := range st.Buckets {
		out += "bucket " + id + " " + b.Remaining.String() + "\n"
	}
	for k := range st.Records {
		out += "record " + k + "\n"
	}
	return out
}

// openPostgresInternal opens a PostgreSQL store in a schema of its own,
// dropped at the end, for tests inside the package. Without
// CREDITS_TEST_POSTGRES the test is skipped, except under CI=true, where
// it fails (as postgresDSN in the external tests).
func openPostgresInternal(t *testing.T) *Store {
	dsn := os.Getenv("CREDITS_TEST_POSTGRES")
	if dsn == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("CREDITS_TEST_POSTGRES is not set: the PostgreSQL tests must run in CI")
		}
		t.Skip("CREDITS_TEST_POSTGRES is not set: skipping the PostgreSQL tests")
	}
	var rb [6]byte
	_, _ = rand.Read(rb[:])
	schema := "credits_internal_" + hex.EncodeToString(rb[:])
	s, err := Open(context.Background(), dsn, &Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = s.db.ExecContext(context.Background(), `DROP SCHEMA "`+schema+`" CASCADE`)
		_ = s.Close()
	})
	return s
}

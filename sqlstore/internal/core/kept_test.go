package core

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/creditkit/credits"
)

func keptFixture(id string, holds int) *credits.State {
	at := time.Date(2026, 11, 30, 12, 0, 0, 123456789, time.FixedZone("X", 3600))
	st := &credits.State{
		Account: &credits.Account{ID: id, CreatedAt: at, Members: []string{"m"}, Available: credits.Whole(5), Held: credits.Whole(int64(holds)), Seq: 7},
		Buckets: map[string]*credits.Bucket{
			"live":  {ID: "live", Account: id, Kind: credits.KindPurchase, Amount: credits.Whole(9), Remaining: credits.Whole(5), CreatedAt: at},
			"empty": {ID: "empty", Account: id, Kind: credits.KindPurchase, Amount: credits.Whole(9), CreatedAt: at},
			"drawn": {ID: "drawn", Account: id, Kind: credits.KindPromo, Amount: credits.Whole(9), CreatedAt: at},
		},
		Holds:   map[string]*credits.Hold{},
		Records: map[string]*credits.Record{"k": {Key: "k"}},
	}
	for i := range holds {
		hid := fmt.Sprint("open", i)
		st.Holds[hid] = &credits.Hold{ID: hid, Account: id, Status: credits.HoldOpen, Amount: credits.Whole(1),
			Portions: []credits.Portion{{Bucket: "drawn", Amount: credits.Whole(1)}}, CreatedAt: at, Deadline: at.Add(time.Hour)}
	}
	st.Holds["done"] = &credits.Hold{ID: "done", Account: id, Status: credits.HoldCaptured, Amount: credits.Whole(1),
		Portions: []credits.Portion{{Bucket: "empty", Amount: credits.Whole(1)}}, CreatedAt: at, Deadline: at}
	return st
}

// A kept state is what a load would return: rows through the columns'
// encoding (UTC, whole nanoseconds), the open holds, the live buckets and
// those the open holds took from, no records; and what get hands out is a
// copy.
func TestKeptStateShape(t *testing.T) {
	c := newKeptStates(4)
	c.put("a", keptFixture("a", 1), 1)
	st, version, known, ok := c.get("a", nil)
	if version != 1 {
		t.Fatalf("kept version %d, want 1", version)
	}
	if !ok {
		t.Fatal("not kept")
	}
	if !slices.Equal(known, []string{"open0"}) {
		t.Fatalf("known open holds %v, want [open0]", known)
	}
	if got := slices.Sorted(func(yield func(string) bool) {
		for id := range st.Buckets {
			if !yield(id) {
				return
			}
		}
	}); !slices.Equal(got, []string{"drawn", "live"}) {
		t.Fatalf("kept buckets %v, want the live one and the one the open hold took from", got)
	}
	if len(st.Records) != 0 || st.Holds["done"] != nil {
		t.Fatalf("kept records %v, settled hold %v", st.Records, st.Holds["done"])
	}
	if loc := st.Account.CreatedAt.Location(); loc != time.UTC {
		t.Fatalf("kept time in %v, want UTC as a load returns it", loc)
	}
	// The copy is the caller's.
	st.Account.Members[0] = "changed"
	st.Holds["open0"].Portions[0].Amount = credits.Whole(99)
	st.Buckets["live"].Remaining = credits.Whole(0)
	again, _, _, _ := c.get("a", nil)
	if again.Account.Members[0] != "m" || again.Holds["open0"].Portions[0].Amount != credits.Whole(1) || again.Buckets["live"].Remaining != credits.Whole(5) {
		t.Fatal("changing a state get returned changed the kept state")
	}
	// A query naming a hold the state does not keep is not served.
	if _, _, _, ok := c.get("a", []string{"done"}); ok {
		t.Fatal("served a query naming a settled hold the state does not keep")
	}
	// A hold whose bucket the state lacks: not kept at all.
	bad := keptFixture("b", 1)
	delete(bad.Buckets, "drawn")
	c.put("b", bad, 1)
	if _, _, _, ok := c.get("b", nil); ok {
		t.Fatal("kept a state whose open hold names a bucket it does not have")
	}
}

// The cache stays within its accounts and rows, and a nil cache keeps
// nothing.
func TestKeptStateBounds(t *testing.T) {
	c := newKeptStates(8)
	for i := range 100 {
		c.put(fmt.Sprint("acct", i), keptFixture(fmt.Sprint("acct", i), 0), 1)
		if len(c.states) > 8 {
			t.Fatalf("%d accounts kept, at most 8", len(c.states))
		}
	}
	// 20 rows each: the row budget (16 × 8) holds 6.
	for i := range 10 {
		c.put(fmt.Sprint("big", i), keptFixture(fmt.Sprint("big", i), 18), 1)
		if c.rows > rowsPerKept*8 {
			t.Fatalf("%d rows kept, at most %d", c.rows, rowsPerKept*8)
		}
	}
	rows := 0
	for _, k := range c.states {
		rows += len(k.st.Buckets) + len(k.st.Holds)
	}
	if rows != c.rows {
		t.Fatalf("row count %d, the states have %d", c.rows, rows)
	}
	c.put("huge", keptFixture("huge", maxKeptRows), 1)
	if _, _, _, ok := c.get("huge", nil); ok {
		t.Fatal("kept a state of more than maxKeptRows rows")
	}
	var none *keptStates
	none.put("a", keptFixture("a", 0), 1)
	if _, _, _, ok := none.get("a", nil); ok || newKeptStates(-1) != nil {
		t.Fatal("a disabled cache kept a state")
	}
}

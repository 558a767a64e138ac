package credits

import (
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"
)

// TestRecordedFormsMatchResults: the form a record keeps of each result
// whose hold is kept by ID has exactly the result's JSON fields, the same
// values but for the hold, and reads back into the result with the hold's
// ID. A field added to a result but not to its recorded form fails here
// (a replay would lose it).
func TestRecordedFormsMatchResults(t *testing.T) {
	hold := Hold{ID: "hold_1", Account: "a", Status: HoldCaptured, Amount: Whole(7), Captured: Whole(7),
		Portions: []Portion{{Bucket: "b", Amount: Whole(7), Captured: Whole(7)}}, Quote: Quote{Tool: "image", Total: Whole(7)}}
	for _, r := range []heldResult{
		&ReserveResult{Hold: hold, Available: Whole(3)},
		&ChargeResult{Hold: hold, Charged: Whole(5), Released: Whole(2), Capped: true, Available: Whole(3)},
		&ReleaseResult{Hold: hold, Released: Whole(7), Available: Whole(3)},
	} {
		name := reflect.TypeOf(r).Elem().Name()
		full, slim := fields(t, r), fields(t, r.recorded())
		if !slices.Equal(slices.Sorted(maps.Keys(full)), slices.Sorted(maps.Keys(slim))) {
			t.Errorf("%s: recorded fields %v, result fields %v", name, slices.Sorted(maps.Keys(slim)), slices.Sorted(maps.Keys(full)))
			continue
		}
		for k, v := range full {
			if k == "hold" {
				if got := string(slim[k]); got != `{"id":"hold_1"}` {
					t.Errorf("%s: recorded hold %s", name, got)
				}
			} else if string(slim[k]) != string(v) {
				t.Errorf("%s: recorded %s = %s, result has %s", name, k, slim[k], v)
			}
		}
		b, _ := json.Marshal(r.recorded())
		back := reflect.New(reflect.TypeOf(r).Elem()).Interface().(heldResult)
		if err := json.Unmarshal(b, back); err != nil {
			t.Fatal(err)
		}
		want := reflect.ValueOf(r).Elem().Interface()
		*back.heldHold() = hold
		if got := reflect.ValueOf(back).Elem().Interface(); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: read back as %+v, want %+v", name, got, want)
		}
	}
}

func fields(t *testing.T, v any) map[string]json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestHoldFieldsKnownToReplays is a tripwire: a replay rebuilds a hold as
// Reserve, Charge, Capture or Release left it by undoing what later
// operations change (reservedHold, capturedHold, releasedHold). A field
// added to Hold may be one that a later operation changes: check those
// functions, then add it here.
func TestHoldFieldsKnownToReplays(t *testing.T) {
	known := []string{"ID", "Account", "Member", "Key", "Seq", "Status", "Amount", "Captured", "Refunded", "Portions", "Quote", "CreatedAt", "Deadline", "FirstDeadline", "SettledAt", "Metadata"}
	var fields []string
	for f := range reflect.TypeFor[Hold]().Fields() {
		fields = append(fields, f.Name)
	}
	if !slices.Equal(fields, known) {
		t.Errorf("Hold's fields are %v; replays know %v", fields, known)
	}
	var portion []string
	for f := range reflect.TypeFor[Portion]().Fields() {
		portion = append(portion, f.Name)
	}
	if want := []string{"Bucket", "Amount", "Captured", "Refunded"}; !slices.Equal(portion, want) {
		t.Errorf("Portion's fields are %v; replays know %v", portion, want)
	}
}

// The default IDs sort in the order they were made (by the ledger's clock,
// to the millisecond), are unique within a millisecond and when the clock
// goes back, and keep the length of the random IDs they replaced.
func TestTimeOrderedIDs(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	seen := map[string]bool{}
	prev := ""
	for i := range 2000 {
		at := t0.Add(time.Duration(i/10) * time.Millisecond) // ten per millisecond
		id := timeOrderedID("hold", at)
		if len(id) != len("hold_")+32 || id[:5] != "hold_" {
			t.Fatalf("id %q: want hold_ and 32 hex digits", id)
		}
		if seen[id] {
			t.Fatalf("id %q made twice", id)
		}
		seen[id] = true
		if i%10 == 0 && id <= prev {
			t.Fatalf("id %q made at %v sorts before %q, made a millisecond earlier", id, at, prev)
		}
		prev = id
	}
	back := timeOrderedID("hold", t0.Add(-time.Hour))
	if seen[back] || back >= prev {
		t.Fatalf("id made an hour back: %q (last %q)", back, prev)
	}
}

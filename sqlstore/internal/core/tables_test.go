package core

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/creditkit/credits"
)

// An account's allowance (JSON text) and renewal (NULL for none) go
// through the columns' encoding and back unchanged; the text 'null' (the
// encoding of none, and the column's default) reads back as no allowance,
// never as an empty one, and text that is not JSON (the empty text
// included) is an error, not an empty allowance.
func TestAllowanceColumns(t *testing.T) {
	col := func(name string) int {
		i := slices.Index(Accounts.Names, name)
		if i < 0 {
			t.Fatalf("no column %s", name)
		}
		return i
	}
	allowance, renews := col("allowance"), col("renews_at")
	at := time.Date(2026, 1, 31, 9, 30, 0, 123456789, time.UTC)
	for _, a := range []credits.Account{
		{ID: "none", CreatedAt: at},
		{ID: "some", CreatedAt: at, Plan: "pro", RenewsAt: at.AddDate(0, 1, 0), Allowance: &credits.AllowanceState{
			Period: credits.PeriodMonth, Anchor: at, Index: 3, Granted: credits.Whole(250), Buckets: []string{"bkt_1", "bkt_2"}}},
		{ID: "empty", CreatedAt: at, RenewsAt: at, Allowance: &credits.AllowanceState{}},
	} {
		var cd codec
		vals := Accounts.encode(&AccountRow{Account: a}, &cd)
		if a.Allowance == nil && vals[allowance] != "null" {
			t.Errorf("%s: allowance column %q, want \"null\"", a.ID, vals[allowance])
		}
		if n := vals[renews].(*int64); (n == nil) != a.RenewsAt.IsZero() {
			t.Errorf("%s: renews_at column %v for RenewsAt %v", a.ID, n, a.RenewsAt)
		}
		// As scanned: text, and an integer or nil.
		scanned := slices.Clone(vals)
		if n := vals[renews].(*int64); n != nil {
			scanned[renews] = *n
		} else {
			scanned[renews] = nil
		}
		scanned[allowance] = []byte(vals[allowance].(string))
		for _, v := range [][]any{vals, scanned} {
			got := Accounts.decode(v, &cd).Account
			if cd.err != nil {
				t.Fatal(cd.err)
			}
			if !reflect.DeepEqual(got.Allowance, a.Allowance) || !got.RenewsAt.Equal(a.RenewsAt) {
				t.Errorf("%s: read back Allowance %+v, RenewsAt %v; want %+v, %v", a.ID, got.Allowance, got.RenewsAt, a.Allowance, a.RenewsAt)
			}
		}
	}
	for _, text := range []string{"", "{", "[]"} {
		var cd codec
		e := AccountRow{Account: credits.Account{ID: "bad", CreatedAt: at}}
		vals := Accounts.encode(&e, &cd)
		vals[allowance] = text
		got := Accounts.decode(vals, &cd)
		if cd.err == nil || !strings.Contains(cd.err.Error(), "allowance") {
			t.Errorf("allowance %q: read %+v, error %v; want an error naming the column", text, got.Allowance, cd.err)
		}
	}
}

// A hold's quote is stored with its durations in milliseconds and, for a
// server of the previous release, in nanoseconds too; both read back.
func TestQuoteStoredForBothReleases(t *testing.T) {
	h := credits.Hold{Quote: credits.Quote{Tool: "video", Duration: 5 * time.Second, BilledDuration: 5 * time.Second, Increment: time.Second, Total: credits.Whole(40)}}
	var cd codec
	col := Holds.Columns[slices.IndexFunc(Holds.Columns, func(c Column[credits.Hold]) bool { return c.Name == "quote" })]
	text := col.get(&h, &cd).(string)
	var previous struct {
		Duration       time.Duration `json:"duration"`
		BilledDuration time.Duration `json:"billed_duration"`
		Increment      time.Duration `json:"increment"`
	}
	if err := json.Unmarshal([]byte(text), &previous); err != nil || previous.Duration != 5*time.Second || previous.BilledDuration != 5*time.Second || previous.Increment != time.Second {
		t.Fatalf("the previous release reads %s as %+v (%v)", text, previous, err)
	}
	var back credits.Hold
	col.set(&back, text, &cd)
	if cd.err != nil || back.Quote.Duration != h.Quote.Duration || back.Quote.Increment != h.Quote.Increment || back.Quote.Total != h.Quote.Total {
		t.Fatalf("read back %+v (%v) from %s", back.Quote, cd.err, text)
	}
}

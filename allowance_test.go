package credits_test

import (
	"encoding/json"
	"testing"
	"time"
	_ "time/tzdata" // America/New_York on any machine

	"github.com/creditkit/credits"
)

func TestPeriodStartByTheCalendar(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	day := func(y int, m time.Month, d, h int, loc *time.Location) time.Time {
		return time.Date(y, m, d, h, 0, 0, 0, loc)
	}
	for _, c := range []struct {
		name   string
		anchor time.Time
		period credits.Period
		loc    *time.Location
		want   []time.Time // periods 0, 1, 2, …
	}{
		{"joined Jan 31: month ends clamp, never drift", day(2027, 1, 31, 10, time.UTC), credits.PeriodMonth, time.UTC,
			[]time.Time{day(2027, 1, 31, 10, time.UTC), day(2027, 2, 28, 10, time.UTC), day(2027, 3, 31, 10, time.UTC), day(2027, 4, 30, 10, time.UTC), day(2027, 5, 31, 10, time.UTC)}},
		{"leap year", day(2028, 1, 31, 0, time.UTC), credits.PeriodMonth, time.UTC,
			[]time.Time{day(2028, 1, 31, 0, time.UTC), day(2028, 2, 29, 0, time.UTC), day(2028, 3, 31, 0, time.UTC)}},
		{"joined Feb 29: Mar 29, then Feb 28", day(2028, 2, 29, 12, time.UTC), credits.PeriodMonth, time.UTC,
			[]time.Time{day(2028, 2, 29, 12, time.UTC), day(2028, 3, 29, 12, time.UTC)}},
		{"over a year end", day(2026, 12, 15, 8, time.UTC), credits.PeriodMonth, time.UTC,
			[]time.Time{day(2026, 12, 15, 8, time.UTC), day(2027, 1, 15, 8, time.UTC), day(2027, 2, 15, 8, time.UTC)}},
		{"weeks", day(2026, 12, 30, 9, time.UTC), credits.PeriodWeek, time.UTC,
			[]time.Time{day(2026, 12, 30, 9, time.UTC), day(2027, 1, 6, 9, time.UTC), day(2027, 1, 13, 9, time.UTC)}},
		{"days keep the local time across a DST change", day(2027, 3, 13, 9, ny), credits.PeriodDay, ny,
			[]time.Time{day(2027, 3, 13, 9, ny), day(2027, 3, 14, 9, ny), day(2027, 3, 15, 9, ny)}},
		{"months in the ledger's time zone", day(2027, 1, 31, 22, ny), credits.PeriodMonth, ny,
			[]time.Time{day(2027, 1, 31, 22, ny), day(2027, 2, 28, 22, ny), day(2027, 3, 31, 22, ny)}},
	} {
		s := credits.AllowanceState{Period: c.period, Anchor: c.anchor.UTC()}
		for k, want := range c.want {
			if got := s.PeriodStart(int64(k), c.loc); !got.Equal(want) || got.Location() != time.UTC {
				t.Errorf("%s: period %d starts %s, want %s (in UTC)", c.name, k, got, want.UTC())
			}
		}
	}
}

func TestAllowanceInCatalogJSON(t *testing.T) {
	cat, err := credits.ParseCatalog([]byte(`{"version":"v","tools":[{"id":"i","unit":"image","price":7}],
		"plans":[{"id":"sub","allowance":{"amount":"500","period":"month","rollover_max":"100.5"}},{"id":"free"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := cat.Plan("sub")
	want := credits.Allowance{Amount: credits.Whole(500), Period: credits.PeriodMonth, RolloverMax: credits.MustParse("100.5")}
	if p.Allowance == nil || *p.Allowance != want {
		t.Fatalf("Plan(sub).Allowance = %+v, want %+v", p.Allowance, want)
	}
	p.Allowance.Amount = credits.Whole(1) // a copy: the catalog does not change
	if again, _ := cat.Plan("sub"); again.Allowance.Amount != credits.Whole(500) {
		t.Fatal("Catalog.Plan handed out the catalog's own allowance")
	}
	if free, _ := cat.Plan("free"); free.Allowance != nil {
		t.Fatalf("a plan without an allowance has %+v", free.Allowance)
	}
	data, err := json.Marshal(cat.Config())
	if err != nil {
		t.Fatal(err)
	}
	back, err := credits.ParseCatalog(data)
	if err != nil {
		t.Fatalf("ParseCatalog(Config()) = %v for %s", err, data)
	}
	if p, _ := back.Plan("sub"); p.Allowance == nil || *p.Allowance != want {
		t.Fatalf("the allowance did not survive Config → JSON → ParseCatalog: %s", data)
	}
}

package credits

import (
	"encoding/json"
	"errors"
	"maps"
	"math"
	"math/big"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/shopspring/decimal"
	"pgregory.net/rapid"
)

// The helpers of this file are prefixed with pt so that they cannot collide
// with the helpers of other test files of the package.

var ptNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// ptCmp compares Credits values, whose field is unexported, with ==.
var ptCmp = cmp.Comparer(func(a, b Credits) bool { return a == b })

func ptDiff(want, got any) string { return cmp.Diff(want, got, ptCmp) }

func ptEqual(a, b any) bool { return cmp.Equal(a, b, ptCmp) }

func ptQuote(t testing.TB, c *Catalog, req QuoteRequest) Quote {
	t.Helper()
	q, err := c.Quote(req, ptNow)
	if err != nil {
		t.Fatalf("Quote(%+v): %v", req, err)
	}
	return q
}

func ptCatalog(t testing.TB, cfg CatalogConfig) *Catalog {
	t.Helper()
	c, err := NewCatalog(cfg)
	if err != nil {
		t.Fatalf("NewCatalog: %v", err)
	}
	return c
}

// ptConfig is a valid catalog with every kind of field: tools[0] "img" and
// tools[1] "img2" per image, tools[2] "vid" per second; plans[0] "pro" a
// discount, plans[1] "studio" overrides.
func ptConfig() CatalogConfig {
	return CatalogConfig{
		Version: "test-1",
		Tools: []Tool{
			{ID: "img", Name: "Image", Unit: UnitImage, Price: Whole(7)},
			{ID: "img2", Unit: UnitImage, Price: MustParse("2.003"), MaxImages: 4},
			{ID: "vid", Name: "Video", Unit: UnitSecond, Rates: map[string]Credits{
				"480p": Whole(5), "720p": Whole(8), "1080p": Whole(12),
			}, IncrementMillis: 500, Rounding: RoundNearest, MaxDurationMillis: 60_000},
		},
		Plans: []Plan{
			{ID: "pro", DiscountBasisPoints: 1000},
			{ID: "studio", Name: "Studio", DiscountBasisPoints: 2000, Overrides: map[string]PlanOverride{
				"img": {Price: Whole(5)},
				"vid": {Rates: map[string]Credits{"720p": Whole(6)}},
			}},
		},
	}
}

func TestPricingDefaultCatalogQuotes(t *testing.T) {
	c := DefaultCatalog()
	tests := []struct {
		req       QuoteRequest
		unitRate  string
		baseRate  string
		total     string
		billed    time.Duration
		images    int
		breakdown string
	}{
		{QuoteRequest{Tool: "image"}, "7", "7", "7", 0, 1, "1 image × 7 credits = 7 credits"},
		{QuoteRequest{Tool: "image", Images: 1}, "7", "7", "7", 0, 1, "1 image × 7 credits = 7 credits"},
		{QuoteRequest{Tool: "image", Images: 3}, "7", "7", "21", 0, 3, "3 images × 7 credits = 21 credits"},
		{QuoteRequest{Tool: "upscale"}, "3", "3", "3", 0, 1, "1 image × 3 credits = 3 credits"},
		{QuoteRequest{Tool: "remove-background", Images: 16}, "3", "3", "48", 0, 16, "16 images × 3 credits = 48 credits"},
		{QuoteRequest{Tool: "image-edit", Images: 2, Plan: "pro"}, "2.7", "3", "5.4", 0, 2, "2 images × 2.7 credits (plan pro: 10% off 3) = 5.4 credits"},
		{QuoteRequest{Tool: "image", Plan: "studio"}, "5", "7", "5", 0, 1, "1 image × 5 credits (plan studio: instead of 7) = 5 credits"},
		{QuoteRequest{Tool: "upscale", Images: 2, Plan: "studio"}, "2.4", "3", "4.8", 0, 2, "2 images × 2.4 credits (plan studio: 20% off 3) = 4.8 credits"},
		{QuoteRequest{Tool: "video-pro", Resolution: "720p", Duration: 5 * time.Second}, "15", "15", "75", 5 * time.Second, 0,
			"5 s × 15 credits/s at 720p = 75 credits"},
		{QuoteRequest{Tool: "video-pro", Resolution: "720p", Duration: 5 * time.Second, Plan: "pro"}, "13.5", "15", "67.5", 5 * time.Second, 0,
			"5 s × 13.5 credits/s at 720p (plan pro: 10% off 15) = 67.5 credits"},
		{QuoteRequest{Tool: "video", Resolution: "1080p", Duration: 4200 * time.Millisecond}, "12", "12", "60", 5 * time.Second, 0,
			"5 s (4.2 s rounded up to a multiple of 1 s) × 12 credits/s at 1080p = 60 credits"},
		{QuoteRequest{Tool: "video-pro", Resolution: "1080p", Duration: 1, Plan: "studio"}, "18.4", "23", "18.4", time.Second, 0,
			"1 s (0.000000001 s rounded up to a multiple of 1 s) × 18.4 credits/s at 1080p (plan studio: 20% off 23) = 18.4 credits"},
		{QuoteRequest{Tool: "avatar-video", Resolution: "480p", Duration: 10 * time.Minute}, "2", "2", "1200", 10 * time.Minute, 0,
			"600 s × 2 credits/s at 480p = 1200 credits"},
		{QuoteRequest{Tool: "avatar-video", Resolution: "720p", Duration: 2 * time.Second, Plan: "pro"}, "2.7", "3", "5.4", 2 * time.Second, 0,
			"2 s × 2.7 credits/s at 720p (plan pro: 10% off 3) = 5.4 credits"},
	}
	for _, tt := range tests {
		q := ptQuote(t, c, tt.req)
		want := Quote{
			Tool:           tt.req.Tool,
			Resolution:     tt.req.Resolution,
			Plan:           tt.req.Plan,
			BaseRate:       MustParse(tt.baseRate),
			UnitRate:       MustParse(tt.unitRate),
			Images:         tt.images,
			Total:          MustParse(tt.total),
			Breakdown:      tt.breakdown,
			CatalogVersion: "2026-11-default",
			ExpiresAt:      ptNow.Add(15 * time.Minute),
		}
		if tt.req.Resolution == "" {
			want.Unit = UnitImage
		} else {
			want.Unit = UnitSecond
			want.Duration = tt.req.Duration
			want.BilledDuration = tt.billed
			want.Increment = time.Second
			want.Rounding = RoundUp
		}
		if diff := ptDiff(want, q); diff != "" {
			t.Errorf("Quote(%+v) mismatch (-want +got):\n%s", tt.req, diff)
		}
	}
}

func TestPricingDefaultCatalogContents(t *testing.T) {
	c := DefaultCatalog()
	if c != DefaultCatalog() {
		t.Error("DefaultCatalog is rebuilt on every call")
	}
	if c.Version() != "2026-11-default" {
		t.Errorf("Version() = %q", c.Version())
	}
	var ids []string
	for _, tool := range c.Tools() {
		ids = append(ids, tool.ID)
	}
	wantIDs := []string{"upscale", "remove-background", "image-edit", "image", "avatar-video", "video", "video-pro"}
	if diff := ptDiff(wantIDs, ids); diff != "" {
		t.Errorf("tool order (-want +got):\n%s", diff)
	}
	vp, ok := c.Tool("video-pro")
	want := Tool{ID: "video-pro", Name: "Top video model", Unit: UnitSecond,
		Rates:           map[string]Credits{"480p": Whole(10), "720p": Whole(15), "1080p": Whole(23)},
		IncrementMillis: 1000, Rounding: RoundUp, MaxDurationMillis: 600_000}
	if diff := ptDiff(want, vp); !ok || diff != "" {
		t.Errorf("Tool(video-pro) (-want +got):\n%s", diff)
	}
	studio, ok := c.Plan("studio")
	wantPlan := Plan{ID: "studio", Name: "Studio", DiscountBasisPoints: 2000,
		Overrides: map[string]PlanOverride{"image": {Price: Whole(5)}},
		Allowance: &Allowance{Amount: Whole(2000), Period: PeriodMonth, RolloverMax: Whole(500)}}
	if diff := ptDiff(wantPlan, studio); !ok || diff != "" {
		t.Errorf("Plan(studio) (-want +got):\n%s", diff)
	}
	if _, ok := c.Tool("nope"); ok {
		t.Error("Tool(nope) exists")
	}
	if _, ok := c.Plan("nope"); ok {
		t.Error("Plan(nope) exists")
	}
}

func TestPricingRounding(t *testing.T) {
	rate := Whole(1000) // 1 credit per millisecond: the total reads as billed milliseconds
	cfg := CatalogConfig{Version: "r", Tools: []Tool{
		{ID: "up", Unit: UnitSecond, Rates: map[string]Credits{"p": rate}},
		{ID: "nearest", Unit: UnitSecond, Rates: map[string]Credits{"p": rate}, Rounding: RoundNearest},
		{ID: "down", Unit: UnitSecond, Rates: map[string]Credits{"p": rate}, Rounding: RoundDown},
		{ID: "up500", Unit: UnitSecond, Rates: map[string]Credits{"p": rate}, IncrementMillis: 500},
		{ID: "nearest3", Unit: UnitSecond, Rates: map[string]Credits{"p": rate}, IncrementMillis: 3, Rounding: RoundNearest},
		{ID: "down1", Unit: UnitSecond, Rates: map[string]Credits{"p": rate}, IncrementMillis: 1, Rounding: RoundDown},
	}}
	c := ptCatalog(t, cfg)
	ms := time.Millisecond
	tests := []struct {
		tool   string
		d      time.Duration
		billed time.Duration
	}{
		{"up", time.Second, time.Second},                // exact multiple
		{"up", time.Second + ms, 2 * time.Second},       // 1 ms over
		{"up", time.Second + 1, 2 * time.Second},        // 1 ns over
		{"up", 1500 * ms, 2 * time.Second},              // half
		{"up", 2*time.Second - 1, 2 * time.Second},      // 1 ns under
		{"up", 1, time.Second},                          // the smallest duration
		{"nearest", time.Second, time.Second},           // exact multiple
		{"nearest", time.Second + ms, time.Second},      // 1 ms over
		{"nearest", 1500*ms - 1, time.Second},           // just under half
		{"nearest", 1500 * ms, 2 * time.Second},         // half rounds up
		{"nearest", 2500 * ms, 3 * time.Second},         // half rounds up, odd or even
		{"nearest", 500 * ms, time.Second},              // half of the first increment
		{"nearest", 499 * ms, time.Second},              // rounds to 0: at least one increment
		{"nearest", 1, time.Second},                     // at least one increment
		{"down", time.Second, time.Second},              // exact multiple
		{"down", time.Second + ms, time.Second},         // 1 ms over
		{"down", 1500 * ms, time.Second},                // half
		{"down", 2*time.Second - 1, time.Second},        // 1 ns under
		{"down", 2 * time.Second, 2 * time.Second},      // exact multiple
		{"down", 999 * ms, time.Second},                 // at least one increment
		{"down", 1, time.Second},                        // at least one increment
		{"up500", 1200 * ms, 1500 * ms},                 // sub-second increments
		{"up500", 1500 * ms, 1500 * ms},                 // exact multiple
		{"up500", 1500*ms + 1, 2 * time.Second},         // 1 ns over
		{"nearest3", 1500 * time.Microsecond, 3 * ms},   // half of an odd increment rounds up
		{"nearest3", 1500*time.Microsecond - 1, 3 * ms}, // rounds to 0: at least one increment
		{"nearest3", 4500 * time.Microsecond, 6 * ms},   // half
		{"nearest3", 4500*time.Microsecond - 1, 3 * ms}, // just under half
		{"down1", 1, ms},                                // sub-millisecond: at least 1 ms
		{"down1", 2*ms + 999*time.Microsecond, 2 * ms},  // whole milliseconds
	}
	for _, tt := range tests {
		q := ptQuote(t, c, QuoteRequest{Tool: tt.tool, Resolution: "p", Duration: tt.d})
		if q.BilledDuration != tt.billed {
			t.Errorf("%s %v: billed %v, want %v", tt.tool, tt.d, q.BilledDuration, tt.billed)
		}
		if want := FromUnits(int64(tt.billed/ms) * 1000); q.Total != want {
			t.Errorf("%s %v: total %v, want %v", tt.tool, tt.d, q.Total, want)
		}
		// The quoted usage costs exactly the total.
		if cost, capped, err := q.Cost(Usage{Duration: tt.d}); err != nil || capped || cost != q.Total {
			t.Errorf("%s %v: Cost(quoted) = %v, %v, %v; want %v", tt.tool, tt.d, cost, capped, err, q.Total)
		}
	}

	breakdowns := []struct {
		tool string
		d    time.Duration
		want string
	}{
		{"up500", 1200 * ms, "1.5 s (1.2 s rounded up to a multiple of 0.5 s) × 1000 credits/s at p = 1500 credits"},
		{"nearest", 2400 * ms, "2 s (2.4 s rounded to the nearest multiple of 1 s) × 1000 credits/s at p = 2000 credits"},
		{"down", 2900 * ms, "2 s (2.9 s rounded down to a multiple of 1 s) × 1000 credits/s at p = 2000 credits"},
		{"down", 400 * ms, "1 s (0.4 s billed at least one 1 s increment) × 1000 credits/s at p = 1000 credits"},
		{"nearest3", time.Microsecond, "0.003 s (0.000001 s billed at least one 0.003 s increment) × 1000 credits/s at p = 3 credits"},
		{"down1", 2 * ms, "0.002 s × 1000 credits/s at p = 2 credits"},
	}
	for _, tt := range breakdowns {
		q := ptQuote(t, c, QuoteRequest{Tool: tt.tool, Resolution: "p", Duration: tt.d})
		if q.Breakdown != tt.want {
			t.Errorf("%s %v: breakdown\n got %q\nwant %q", tt.tool, tt.d, q.Breakdown, tt.want)
		}
	}
}

func TestPricingTotalRoundsDown(t *testing.T) {
	c := ptCatalog(t, CatalogConfig{Version: "r", Tools: []Tool{
		{ID: "cheap", Unit: UnitSecond, Rates: map[string]Credits{"p": MustParse("0.007")}, IncrementMillis: 500},
		{ID: "odd", Unit: UnitSecond, Rates: map[string]Credits{"p": MustParse("1.333")}, IncrementMillis: 100, Rounding: RoundDown},
	}})
	tests := []struct {
		tool  string
		d     time.Duration
		total string
	}{
		{"cheap", 500 * time.Millisecond, "0.003"}, // 0.0035 → 0.003
		{"cheap", time.Second, "0.007"},
		{"cheap", 1500 * time.Millisecond, "0.01"}, // 0.0105 → 0.010
		{"odd", 100 * time.Millisecond, "0.133"},   // 0.1333 → 0.133
		{"odd", 250 * time.Millisecond, "0.266"},   // 0.2 s: 0.2666 → 0.266
		{"odd", 3 * time.Second, "3.999"},
	}
	for _, tt := range tests {
		q := ptQuote(t, c, QuoteRequest{Tool: tt.tool, Resolution: "p", Duration: tt.d})
		if q.Total != MustParse(tt.total) {
			t.Errorf("%s %v: total %v, want %s (%s)", tt.tool, tt.d, q.Total, tt.total, q.Breakdown)
		}
	}
}

func TestPricingPlanDiscountRoundsDown(t *testing.T) {
	cfg := CatalogConfig{Version: "d", Tools: []Tool{
		{ID: "a", Unit: UnitImage, Price: MustParse("2.003")},
		{ID: "tiny", Unit: UnitImage, Price: MustParse("0.001")},
		{ID: "b", Unit: UnitImage, Price: Whole(7)},
		{ID: "v", Unit: UnitSecond, Rates: map[string]Credits{"p": MustParse("2.003")}},
	}, Plans: []Plan{
		{ID: "ten", DiscountBasisPoints: 1000},
		{ID: "odd", DiscountBasisPoints: 1250},
		{ID: "bp1", DiscountBasisPoints: 1},
		{ID: "free", DiscountBasisPoints: 10000},
		{ID: "none"},
	}}
	c := ptCatalog(t, cfg)
	tests := []struct {
		tool, plan string
		rate       string
		note       string
	}{
		{"a", "ten", "1.802", "(plan ten: 10% off 2.003)"},   // 1.8027 → 1.802
		{"a", "odd", "1.752", "(plan odd: 12.5% off 2.003)"}, // 1.752625 → 1.752
		{"v", "ten", "1.802", "(plan ten: 10% off 2.003)"},
		{"tiny", "ten", "0", "(plan ten: 10% off 0.001)"}, // 0.0009 → 0
		{"b", "bp1", "6.999", "(plan bp1: 0.01% off 7)"},  // 6.9993 → 6.999
		{"b", "free", "0", "(plan free: 100% off 7)"},
		{"b", "none", "7", "(plan none: list price)"},
	}
	for _, tt := range tests {
		req := QuoteRequest{Tool: tt.tool, Plan: tt.plan}
		if tt.tool == "v" {
			req.Resolution, req.Duration = "p", time.Second
		}
		q := ptQuote(t, c, req)
		if q.UnitRate != MustParse(tt.rate) || q.Total != MustParse(tt.rate) {
			t.Errorf("%s/%s: rate %v total %v, want %s", tt.tool, tt.plan, q.UnitRate, q.Total, tt.rate)
		}
		if !strings.Contains(q.Breakdown, tt.note) {
			t.Errorf("%s/%s: breakdown %q lacks %q", tt.tool, tt.plan, q.Breakdown, tt.note)
		}
		if q.Plan != tt.plan {
			t.Errorf("%s/%s: Plan = %q", tt.tool, tt.plan, q.Plan)
		}
	}
	// Discount then multiply: 3 images × 1.802 = 5.406 (not 3 × 2.003 × 0.9 = 5.4081 → 5.408).
	q := ptQuote(t, c, QuoteRequest{Tool: "a", Images: 3, Plan: "ten"})
	if q.Total != MustParse("5.406") {
		t.Errorf("3 × a with ten: total %v, want 5.406", q.Total)
	}
}

func TestPricingOverrides(t *testing.T) {
	c := ptCatalog(t, ptConfig())
	tests := []struct {
		req   QuoteRequest
		rate  string
		total string
		note  string
	}{
		{QuoteRequest{Tool: "img", Plan: "studio"}, "5", "5", "(plan studio: instead of 7)"},
		{QuoteRequest{Tool: "img2", Plan: "studio", Images: 2}, "1.602", "3.204", "(plan studio: 20% off 2.003)"},
		// The override replaces the 720p rate, without the discount on top.
		{QuoteRequest{Tool: "vid", Resolution: "720p", Duration: 2 * time.Second, Plan: "studio"}, "6", "12", "(plan studio: instead of 8)"},
		// A resolution the override does not list keeps the plan's discount.
		{QuoteRequest{Tool: "vid", Resolution: "1080p", Duration: 2 * time.Second, Plan: "studio"}, "9.6", "19.2", "(plan studio: 20% off 12)"},
		{QuoteRequest{Tool: "vid", Resolution: "720p", Duration: 2 * time.Second, Plan: "pro"}, "7.2", "14.4", "(plan pro: 10% off 8)"},
		{QuoteRequest{Tool: "vid", Resolution: "720p", Duration: 2 * time.Second}, "8", "16", ""},
	}
	for _, tt := range tests {
		q := ptQuote(t, c, tt.req)
		if q.UnitRate != MustParse(tt.rate) || q.Total != MustParse(tt.total) {
			t.Errorf("%+v: rate %v total %v, want %s, %s", tt.req, q.UnitRate, q.Total, tt.rate, tt.total)
		}
		if tt.note != "" && !strings.Contains(q.Breakdown, tt.note) {
			t.Errorf("%+v: breakdown %q lacks %q", tt.req, q.Breakdown, tt.note)
		}
		if tt.note == "" && strings.Contains(q.Breakdown, "plan") {
			t.Errorf("%+v: breakdown %q names a plan", tt.req, q.Breakdown)
		}
	}
}

func TestPricingRequestErrors(t *testing.T) {
	c := DefaultCatalog()
	tests := []struct {
		name string
		req  QuoteRequest
		want error
		msg  string // a part of the message
	}{
		{"unknown tool", QuoteRequest{Tool: "nope"}, ErrUnknownTool, `credits: unknown tool "nope"`},
		{"empty tool", QuoteRequest{}, ErrUnknownTool, `unknown tool ""`},
		{"unknown plan", QuoteRequest{Tool: "image", Plan: "gold"}, ErrUnknownPlan, `credits: unknown plan "gold"`},
		{"unknown resolution", QuoteRequest{Tool: "video-pro", Resolution: "4k", Duration: time.Second}, ErrUnknownResolution,
			`credits: unknown resolution "4k" for tool "video-pro" (offered: 480p, 720p, 1080p)`},
		{"resolution case", QuoteRequest{Tool: "video", Resolution: "720P", Duration: time.Second}, ErrUnknownResolution, `"720P"`},
		{"missing resolution", QuoteRequest{Tool: "video", Duration: time.Second}, ErrInvalidRequest,
			`resolution is required by tool "video", priced per second (offered: 480p, 720p, 1080p)`},
		{"resolution on image", QuoteRequest{Tool: "image", Resolution: "720p"}, ErrInvalidRequest, "resolution is not taken"},
		{"duration on image", QuoteRequest{Tool: "image", Duration: time.Second}, ErrInvalidRequest, "duration_ms is not taken"},
		{"images on video", QuoteRequest{Tool: "video", Resolution: "720p", Duration: time.Second, Images: 1}, ErrInvalidRequest, "images is not taken"},
		{"negative images", QuoteRequest{Tool: "image", Images: -1}, ErrInvalidRequest, "images is negative"},
		{"too many images", QuoteRequest{Tool: "image", Images: 17}, ErrInvalidRequest, "at most 16 images"},
		{"huge images", QuoteRequest{Tool: "image", Images: math.MaxInt}, ErrInvalidRequest, "at most 16 images"},
		{"zero duration", QuoteRequest{Tool: "video", Resolution: "720p"}, ErrInvalidRequest, "positive duration"},
		{"negative duration", QuoteRequest{Tool: "video", Resolution: "720p", Duration: -time.Second}, ErrInvalidRequest, "positive duration"},
		{"duration too long", QuoteRequest{Tool: "video", Resolution: "720p", Duration: 10*time.Minute + 1}, ErrInvalidRequest, "at most 10m0s"},
		{"max duration", QuoteRequest{Tool: "video", Resolution: "720p", Duration: math.MaxInt64}, ErrInvalidRequest, "at most 10m0s"},
	}
	wantField := map[string]string{
		"missing resolution": "resolution", "resolution on image": "resolution", "duration on image": "duration_ms",
		"images on video": "images", "negative images": "images", "too many images": "images", "huge images": "images",
		"zero duration": "duration_ms", "negative duration": "duration_ms", "duration too long": "duration_ms", "max duration": "duration_ms",
	}
	for _, tt := range tests {
		q, err := c.Quote(tt.req, ptNow)
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: error %v, want %v", tt.name, err, tt.want)
			continue
		}
		if !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%s: error %q lacks %q", tt.name, err, tt.msg)
		}
		if !ptEqual(q, Quote{}) {
			t.Errorf("%s: a quote %+v came with the error", tt.name, q)
		}
		// A refusal of one field of the request names it by its JSON name.
		var fe *FieldError
		if want := wantField[tt.name]; want != "" && (!errors.As(err, &fe) || fe.Field != want) {
			t.Errorf("%s: %v does not name the field %s", tt.name, err, want)
		}
	}
	// The limit is the tool's own.
	c2 := ptCatalog(t, ptConfig())
	if _, err := c2.Quote(QuoteRequest{Tool: "img2", Images: 5}, ptNow); !errors.Is(err, ErrInvalidRequest) || !strings.Contains(err.Error(), "at most 4 images") {
		t.Errorf("img2 × 5: %v", err)
	}
	if _, err := c2.Quote(QuoteRequest{Tool: "vid", Resolution: "480p", Duration: time.Minute + 1}, ptNow); !errors.Is(err, ErrInvalidRequest) || !strings.Contains(err.Error(), "at most 1m0s") {
		t.Errorf("vid 1m+1ns: %v", err)
	}
	// The boundaries themselves are accepted.
	ptQuote(t, c, QuoteRequest{Tool: "image", Images: 16})
	ptQuote(t, c, QuoteRequest{Tool: "video", Resolution: "720p", Duration: 10 * time.Minute})
}

func TestPricingQuoteExpiry(t *testing.T) {
	cfg := ptConfig()
	cfg.QuoteTTLMillis = 90_000
	c := ptCatalog(t, cfg)
	loc := time.FixedZone("UTC+2", 2*60*60)
	now := time.Date(2026, 11, 25, 14, 0, 0, 5, loc)
	q, err := c.Quote(QuoteRequest{Tool: "img"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if want := now.Add(90 * time.Second); !q.ExpiresAt.Equal(want) || q.ExpiresAt.Location() != loc {
		t.Errorf("ExpiresAt = %v, want %v", q.ExpiresAt, want)
	}
	if q.CatalogVersion != "test-1" {
		t.Errorf("CatalogVersion = %q", q.CatalogVersion)
	}
	cfg.QuoteTTLMillis = 0
	q = ptQuote(t, ptCatalog(t, cfg), QuoteRequest{Tool: "img"})
	if want := ptNow.Add(15 * time.Minute); !q.ExpiresAt.Equal(want) {
		t.Errorf("default ExpiresAt = %v, want %v", q.ExpiresAt, want)
	}
}

func TestPricingCatalogValidation(t *testing.T) {
	type mut = func(c *CatalogConfig)
	tests := []struct {
		name  string
		mut   mut
		field string
	}{
		{"empty version", func(c *CatalogConfig) { c.Version = "" }, "version"},
		{"version with a space", func(c *CatalogConfig) { c.Version = "v 1" }, "version"},
		{"version too long", func(c *CatalogConfig) { c.Version = strings.Repeat("v", 65) }, "version"},
		{"negative ttl", func(c *CatalogConfig) { c.QuoteTTLMillis = -1 }, "quote_ttl_ms"},
		{"ttl above a day", func(c *CatalogConfig) { c.QuoteTTLMillis = 24*60*60*1000 + 1 }, "quote_ttl_ms"},

		{"empty tool id", func(c *CatalogConfig) { c.Tools[0].ID = "" }, "tools[0].id"},
		{"upper-case tool id", func(c *CatalogConfig) { c.Tools[1].ID = "Img" }, "tools[1].id"},
		{"tool id with a space", func(c *CatalogConfig) { c.Tools[1].ID = "a b" }, "tools[1].id"},
		{"tool id too long", func(c *CatalogConfig) { c.Tools[0].ID = strings.Repeat("a", 65) }, "tools[0].id"},
		{"duplicate tool id", func(c *CatalogConfig) { c.Tools[1].ID = "img" }, "tools[1].id"},
		{"tool name too long", func(c *CatalogConfig) { c.Tools[0].Name = strings.Repeat("n", 129) }, "tools[0].name"},
		{"tool name not UTF-8", func(c *CatalogConfig) { c.Tools[0].Name = "\xff" }, "tools[0].name"},
		{"empty unit", func(c *CatalogConfig) { c.Tools[0].Unit = "" }, "tools[0].unit"},
		{"unknown unit", func(c *CatalogConfig) { c.Tools[2].Unit = "minute" }, "tools[2].unit"},

		{"image without price", func(c *CatalogConfig) { c.Tools[0].Price = Credits{} }, "tools[0].price"},
		{"negative price", func(c *CatalogConfig) { c.Tools[0].Price = Whole(-1) }, "tools[0].price"},
		{"price too high", func(c *CatalogConfig) { c.Tools[0].Price = MustParse("1000000.001") }, "tools[0].price"},
		{"image with rates", func(c *CatalogConfig) { c.Tools[0].Rates = map[string]Credits{"p": Whole(1)} }, "tools[0].rates"},
		{"image with increment", func(c *CatalogConfig) { c.Tools[0].IncrementMillis = 1000 }, "tools[0].increment_ms"},
		{"image with rounding", func(c *CatalogConfig) { c.Tools[0].Rounding = RoundUp }, "tools[0].rounding"},
		{"image with max duration", func(c *CatalogConfig) { c.Tools[0].MaxDurationMillis = 1000 }, "tools[0].max_duration_ms"},
		{"negative max images", func(c *CatalogConfig) { c.Tools[1].MaxImages = -1 }, "tools[1].max_images"},
		{"too many max images", func(c *CatalogConfig) { c.Tools[1].MaxImages = 1001 }, "tools[1].max_images"},

		{"video without rates", func(c *CatalogConfig) { c.Tools[2].Rates = nil }, "tools[2].rates"},
		{"video with empty rates", func(c *CatalogConfig) { c.Tools[2].Rates = map[string]Credits{} }, "tools[2].rates"},
		{"video with a price", func(c *CatalogConfig) { c.Tools[2].Price = Whole(1) }, "tools[2].price"},
		{"video with max images", func(c *CatalogConfig) { c.Tools[2].MaxImages = 4 }, "tools[2].max_images"},
		{"zero rate", func(c *CatalogConfig) { c.Tools[2].Rates["720p"] = Credits{} }, `tools[2].rates["720p"]`},
		{"negative rate", func(c *CatalogConfig) { c.Tools[2].Rates["720p"] = MustParse("-0.001") }, `tools[2].rates["720p"]`},
		{"rate too high", func(c *CatalogConfig) { c.Tools[2].Rates["1080p"] = Whole(1_000_001) }, `tools[2].rates["1080p"]`},
		{"empty resolution", func(c *CatalogConfig) { c.Tools[2].Rates[""] = Whole(1) }, `tools[2].rates[""]`},
		{"resolution too long", func(c *CatalogConfig) { c.Tools[2].Rates[strings.Repeat("r", 33)] = Whole(1) }, `tools[2].rates["` + strings.Repeat("r", 33) + `"]`},
		{"unprintable resolution", func(c *CatalogConfig) { c.Tools[2].Rates["7\n"] = Whole(1) }, `tools[2].rates["7\n"]`},
		{"negative increment", func(c *CatalogConfig) { c.Tools[2].IncrementMillis = -1 }, "tools[2].increment_ms"},
		{"increment above a minute", func(c *CatalogConfig) { c.Tools[2].IncrementMillis = 60_001 }, "tools[2].increment_ms"},
		{"unknown rounding", func(c *CatalogConfig) { c.Tools[2].Rounding = "sideways" }, "tools[2].rounding"},
		{"upper-case rounding", func(c *CatalogConfig) { c.Tools[2].Rounding = "UP" }, "tools[2].rounding"},
		{"negative max duration", func(c *CatalogConfig) { c.Tools[2].MaxDurationMillis = -1 }, "tools[2].max_duration_ms"},
		{"max duration above a day", func(c *CatalogConfig) { c.Tools[2].MaxDurationMillis = 24*60*60*1000 + 1 }, "tools[2].max_duration_ms"},
		{"max duration under an increment", func(c *CatalogConfig) { c.Tools[2].MaxDurationMillis = 499 }, "tools[2].max_duration_ms"},
		{"default max duration under the increment", func(c *CatalogConfig) {
			c.Tools[2].IncrementMillis, c.Tools[2].MaxDurationMillis = 60_000, 59_999
		}, "tools[2].max_duration_ms"},

		{"empty plan id", func(c *CatalogConfig) { c.Plans[0].ID = "" }, "plans[0].id"},
		{"bad plan id", func(c *CatalogConfig) { c.Plans[0].ID = "Pro!" }, "plans[0].id"},
		{"duplicate plan id", func(c *CatalogConfig) { c.Plans[1].ID = "pro" }, "plans[1].id"},
		{"plan name not UTF-8", func(c *CatalogConfig) { c.Plans[1].Name = "\xc3" }, "plans[1].name"},
		{"negative discount", func(c *CatalogConfig) { c.Plans[0].DiscountBasisPoints = -1 }, "plans[0].discount_bp"},
		{"discount above 100%", func(c *CatalogConfig) { c.Plans[0].DiscountBasisPoints = 10_001 }, "plans[0].discount_bp"},
		{"override of an unknown tool", func(c *CatalogConfig) { c.Plans[1].Overrides["nope"] = PlanOverride{Price: Whole(1)} }, `plans[1].overrides["nope"]`},
		{"image override with rates", func(c *CatalogConfig) {
			c.Plans[1].Overrides["img"] = PlanOverride{Rates: map[string]Credits{"p": Whole(1)}}
		}, `plans[1].overrides["img"].rates`},
		{"image override without price", func(c *CatalogConfig) { c.Plans[1].Overrides["img"] = PlanOverride{} }, `plans[1].overrides["img"].price`},
		{"image override negative price", func(c *CatalogConfig) { c.Plans[1].Overrides["img"] = PlanOverride{Price: Whole(-5)} }, `plans[1].overrides["img"].price`},
		{"image override price too high", func(c *CatalogConfig) {
			c.Plans[1].Overrides["img"] = PlanOverride{Price: Whole(1_000_001)}
		}, `plans[1].overrides["img"].price`},
		{"video override with a price", func(c *CatalogConfig) { c.Plans[1].Overrides["vid"] = PlanOverride{Price: Whole(1)} }, `plans[1].overrides["vid"].price`},
		{"video override without rates", func(c *CatalogConfig) { c.Plans[1].Overrides["vid"] = PlanOverride{} }, `plans[1].overrides["vid"].rates`},
		{"video override of a missing resolution", func(c *CatalogConfig) {
			c.Plans[1].Overrides["vid"].Rates["4k"] = Whole(1)
		}, `plans[1].overrides["vid"].rates["4k"]`},
		{"video override zero rate", func(c *CatalogConfig) { c.Plans[1].Overrides["vid"].Rates["720p"] = Credits{} }, `plans[1].overrides["vid"].rates["720p"]`},
		{"video override rate too high", func(c *CatalogConfig) {
			c.Plans[1].Overrides["vid"].Rates["480p"] = Whole(2_000_000)
		}, `plans[1].overrides["vid"].rates["480p"]`},
	}
	for _, tt := range tests {
		cfg := ptConfig()
		tt.mut(&cfg)
		c, err := NewCatalog(cfg)
		if !errors.Is(err, ErrInvalidCatalog) {
			t.Errorf("%s: NewCatalog = %v, %v; want ErrInvalidCatalog", tt.name, c, err)
			continue
		}
		var ce *CatalogError
		if !errors.As(err, &ce) {
			t.Errorf("%s: %v is not a *CatalogError", tt.name, err)
			continue
		}
		if ce.Field != tt.field {
			t.Errorf("%s: Field = %q, want %q (%v)", tt.name, ce.Field, tt.field, err)
		}
		if ce.Reason == "" || !strings.Contains(err.Error(), tt.field) {
			t.Errorf("%s: unclear error %q", tt.name, err)
		}
		if c != nil {
			t.Errorf("%s: a catalog came with the error", tt.name)
		}
	}
}

func TestPricingCatalogLimitsAccepted(t *testing.T) {
	tests := []struct {
		name string
		mut  func(c *CatalogConfig)
	}{
		{"ttl of a day", func(c *CatalogConfig) { c.QuoteTTLMillis = 24 * 60 * 60 * 1000 }},
		{"price of a million", func(c *CatalogConfig) { c.Tools[0].Price = Whole(1_000_000) }},
		{"price of a millicredit", func(c *CatalogConfig) { c.Tools[0].Price = FromUnits(1) }},
		{"1000 images", func(c *CatalogConfig) { c.Tools[1].MaxImages = 1000 }},
		{"1 image", func(c *CatalogConfig) { c.Tools[1].MaxImages = 1 }},
		{"1 ms increment", func(c *CatalogConfig) { c.Tools[2].IncrementMillis = 1 }},
		{"1 minute increment", func(c *CatalogConfig) { c.Tools[2].IncrementMillis, c.Tools[2].MaxDurationMillis = 60_000, 60_000 }},
		{"a day max", func(c *CatalogConfig) { c.Tools[2].MaxDurationMillis = 24 * 60 * 60 * 1000 }},
		{"max of one increment", func(c *CatalogConfig) { c.Tools[2].MaxDurationMillis = 500 }},
		{"32-byte resolution", func(c *CatalogConfig) { c.Tools[2].Rates[strings.Repeat("r", 32)] = Whole(1) }},
		{"unicode resolution", func(c *CatalogConfig) { c.Tools[2].Rates["4K HDR ✓"] = Whole(1) }},
		{"64-byte ids", func(c *CatalogConfig) {
			c.Tools[1].ID, c.Plans[0].ID = strings.Repeat("a", 64), strings.Repeat("b", 64)
		}},
		{"id charset", func(c *CatalogConfig) { c.Tools[1].ID = "a.b_c-9" }},
		{"no plans", func(c *CatalogConfig) { c.Plans = nil }},
		{"no tools", func(c *CatalogConfig) { c.Tools, c.Plans = nil, nil }},
		{"no discount", func(c *CatalogConfig) { c.Plans[0].DiscountBasisPoints = 0 }},
		{"full discount", func(c *CatalogConfig) { c.Plans[0].DiscountBasisPoints = 10_000 }},
		{"version chars", func(c *CatalogConfig) { c.Version = "2026-11-25T10:00Z+v1.2" }},
	}
	for _, tt := range tests {
		cfg := ptConfig()
		tt.mut(&cfg)
		if _, err := NewCatalog(cfg); err != nil {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
}

func TestPricingConfigDefaults(t *testing.T) {
	c := ptCatalog(t, CatalogConfig{Version: "v", Tools: []Tool{
		{ID: "i", Unit: UnitImage, Price: Whole(1)},
		{ID: "s", Unit: UnitSecond, Rates: map[string]Credits{"p": Whole(1)}},
	}, Plans: []Plan{{ID: "p", Overrides: map[string]PlanOverride{}}}})
	want := CatalogConfig{
		Version:        "v",
		QuoteTTLMillis: 15 * 60 * 1000,
		Tools: []Tool{
			{ID: "i", Unit: UnitImage, Price: Whole(1), MaxImages: 16},
			{ID: "s", Unit: UnitSecond, Rates: map[string]Credits{"p": Whole(1)},
				IncrementMillis: 1000, Rounding: RoundUp, MaxDurationMillis: 10 * 60 * 1000},
		},
		Plans: []Plan{{ID: "p"}},
	}
	if diff := ptDiff(want, c.Config()); diff != "" {
		t.Errorf("Config() (-want +got):\n%s", diff)
	}
	// Building from the filled-in config changes nothing.
	if diff := ptDiff(want, ptCatalog(t, c.Config()).Config()); diff != "" {
		t.Errorf("rebuilt Config() (-want +got):\n%s", diff)
	}
}

func TestPricingCatalogImmutable(t *testing.T) {
	cfg := ptConfig()
	c := ptCatalog(t, cfg)
	req := QuoteRequest{Tool: "vid", Resolution: "720p", Duration: 2 * time.Second, Plan: "studio"}
	before := ptQuote(t, c, req)
	beforeCfg := c.Config()

	// Editing the input after NewCatalog...
	cfg.Version = "changed"
	cfg.Tools[2].Rates["720p"] = Whole(100)
	cfg.Tools[2].Rates["8k"] = Whole(100)
	cfg.Tools[0].Price = Whole(100)
	cfg.Plans[1].Overrides["vid"].Rates["720p"] = Whole(100)
	cfg.Plans[1].Overrides["img"] = PlanOverride{Price: Whole(100)}
	cfg.Plans[0].DiscountBasisPoints = 0
	// ...and everything handed out.
	tool, _ := c.Tool("vid")
	tool.Rates["720p"] = Whole(100)
	for _, tl := range c.Tools() {
		for k := range tl.Rates {
			tl.Rates[k] = Whole(100)
		}
	}
	plan, _ := c.Plan("studio")
	plan.Overrides["vid"].Rates["720p"] = Whole(100)
	plan.Overrides["img"] = PlanOverride{Price: Whole(100)}
	out := c.Config()
	out.Tools[2].Rates["720p"] = Whole(100)
	out.Plans[1].Overrides["vid"].Rates["720p"] = Whole(100)
	out.Tools[0].ID = "changed"

	if after := ptQuote(t, c, req); !ptEqual(before, after) {
		t.Errorf("the quote changed:\n%s", ptDiff(before, after))
	}
	if diff := ptDiff(beforeCfg, c.Config()); diff != "" {
		t.Errorf("the config changed (-before +after):\n%s", diff)
	}
	if _, err := c.Quote(QuoteRequest{Tool: "vid", Resolution: "8k", Duration: time.Second}, ptNow); !errors.Is(err, ErrUnknownResolution) {
		t.Errorf("a resolution added to the input after NewCatalog is quoted: %v", err)
	}
}

func TestPricingConcurrentUse(t *testing.T) {
	c := ptCatalog(t, ptConfig())
	want := ptQuote(t, c, QuoteRequest{Tool: "vid", Resolution: "1080p", Duration: 3 * time.Second, Plan: "pro"})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				q, err := c.Quote(QuoteRequest{Tool: "vid", Resolution: "1080p", Duration: 3 * time.Second, Plan: "pro"}, ptNow)
				if err != nil || !q.Matches(want) {
					t.Errorf("concurrent quote = %+v, %v", q, err)
					return
				}
				cfg := c.Config()
				cfg.Tools[2].Rates["1080p"] = Whole(1)
				_ = c.Tools()
			}
		})
	}
	wg.Wait()
}

func TestPricingParseCatalogFile(t *testing.T) {
	data, err := os.ReadFile("testdata/catalog.json")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseCatalog(data)
	if err != nil {
		t.Fatalf("ParseCatalog: %v", err)
	}
	if c.Version() != "2026-12-studio-a" {
		t.Errorf("Version() = %q", c.Version())
	}
	var ids []string
	for _, tool := range c.Tools() {
		ids = append(ids, tool.ID)
	}
	if diff := ptDiff([]string{"sketch", "portrait", "clip", "lipsync"}, ids); diff != "" {
		t.Errorf("tools (-want +got):\n%s", diff)
	}
	clip, _ := c.Tool("clip")
	wantClip := Tool{ID: "clip", Name: "Short clip", Unit: UnitSecond,
		Rates:           map[string]Credits{"480p": MustParse("4.25"), "720p": MustParse("6.5"), "1080p": Whole(9)},
		IncrementMillis: 500, Rounding: RoundNearest, MaxDurationMillis: 30_000}
	if diff := ptDiff(wantClip, clip); diff != "" {
		t.Errorf("clip (-want +got):\n%s", diff)
	}

	tests := []struct {
		req       QuoteRequest
		total     string
		breakdown string
	}{
		{QuoteRequest{Tool: "clip", Resolution: "1080p", Duration: 2700 * time.Millisecond, Plan: "agency"}, "15",
			"2.5 s (2.7 s rounded to the nearest multiple of 0.5 s) × 6 credits/s at 1080p (plan agency: instead of 9) = 15 credits"},
		{QuoteRequest{Tool: "clip", Resolution: "720p", Duration: 3 * time.Second, Plan: "agency"}, "14.625",
			"3 s × 4.875 credits/s at 720p (plan agency: 25% off 6.5) = 14.625 credits"},
		{QuoteRequest{Tool: "sketch", Images: 3, Plan: "creator"}, "6.561",
			"3 images × 2.187 credits (plan creator: 12.5% off 2.5) = 6.561 credits"},
		{QuoteRequest{Tool: "portrait", Plan: "agency"}, "4",
			"1 image × 4 credits (plan agency: instead of 6) = 4 credits"},
		{QuoteRequest{Tool: "lipsync", Resolution: "720p", Duration: 250 * time.Millisecond}, "0.266",
			"0.2 s (0.25 s rounded down to a multiple of 0.1 s) × 1.333 credits/s at 720p = 0.266 credits"},
	}
	for _, tt := range tests {
		q := ptQuote(t, c, tt.req)
		if q.Total != MustParse(tt.total) || q.Breakdown != tt.breakdown {
			t.Errorf("%+v:\n got %v %q\nwant %s %q", tt.req, q.Total, q.Breakdown, tt.total, tt.breakdown)
		}
		if !q.ExpiresAt.Equal(ptNow.Add(10 * time.Minute)) {
			t.Errorf("ExpiresAt = %v", q.ExpiresAt)
		}
	}
	if _, err := c.Quote(QuoteRequest{Tool: "sketch", Images: 9}, ptNow); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("sketch × 9: %v", err)
	}
	if _, err := c.Quote(QuoteRequest{Tool: "clip", Resolution: "480p", Duration: 31 * time.Second}, ptNow); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("clip 31 s: %v", err)
	}
}

func TestPricingJSONRoundTrip(t *testing.T) {
	file, err := os.ReadFile("testdata/catalog.json")
	if err != nil {
		t.Fatal(err)
	}
	fromFile, err := ParseCatalog(file)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*Catalog{
		"default":  DefaultCatalog(),
		"testdata": fromFile,
		"config":   ptCatalog(t, ptConfig()),
	} {
		cfg := c.Config()
		data, err := json.MarshalIndent(cfg, "", "  ")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		back, err := ParseCatalog(data)
		if err != nil {
			t.Fatalf("%s: ParseCatalog(Marshal(Config())): %v\n%s", name, err, data)
		}
		if diff := ptDiff(cfg, back.Config()); diff != "" {
			t.Errorf("%s: round trip (-want +got):\n%s", name, diff)
		}
		// Money is written as strings, and zero prices are left out.
		if strings.Contains(string(data), `"price": "0"`) || !strings.Contains(string(data), `"price": "`) {
			t.Errorf("%s: unexpected price encoding:\n%s", name, data)
		}
	}

	// An edited config is re-built and re-marshaled.
	cfg := DefaultCatalog().Config()
	cfg.Version = "2026-12-edited"
	cfg.Tools = append(cfg.Tools, Tool{ID: "music", Unit: UnitSecond, Rates: map[string]Credits{"stereo": MustParse("0.5")}})
	cfg.Plans[0].Overrides = map[string]PlanOverride{"music": {Rates: map[string]Credits{"stereo": MustParse("0.25")}}}
	edited := ptCatalog(t, cfg)
	data, err := json.Marshal(edited.Config())
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseCatalog(data)
	if err != nil {
		t.Fatal(err)
	}
	q := ptQuote(t, back, QuoteRequest{Tool: "music", Resolution: "stereo", Duration: 10 * time.Second, Plan: "pro"})
	if q.Total != MustParse("2.5") || q.CatalogVersion != "2026-12-edited" {
		t.Errorf("edited catalog quote: %+v", q)
	}
}

func TestPricingParseCatalogErrors(t *testing.T) {
	const tool = `{"id":"v","unit":"second","rates":{"720p":"8"}}`
	tests := []struct {
		name  string
		json  string
		field string
		msg   string
	}{
		{"unknown root field", `{"version":"v","tools":[],"colour":1}`, "colour", "unknown field"},
		{"key in the wrong case", `{"Version":"v","tools":[]}`, "Version", "unknown field"},
		{"unknown tool field", `{"version":"v","tools":[` + tool + `,{"id":"w","unit":"image","price":1,"colour":"red"}]}`, "tools[1].colour", "unknown field"},
		{"unknown plan field", `{"version":"v","tools":[],"plans":[{"id":"p","discount":10}]}`, "plans[0].discount", "unknown field"},
		{"unknown override field", `{"version":"v","tools":[` + tool + `],"plans":[{"id":"p","overrides":{"v":{"rates":{},"bonus":1}}}]}`,
			`plans[0].overrides["v"].bonus`, "unknown field"},
		{"trailing garbage", `{"version":"v","tools":[]} x`, "(root)", ""},
		{"trailing object", `{"version":"v","tools":[]}{}`, "(root)", "unexpected data"},
		{"trailing comma", `{"version":"v","tools":[],}`, "", "malformed JSON"},
		{"inexact float rate", `{"version":"v","tools":[{"id":"v","unit":"second","rates":{"720p":0.0001}}]}`, `tools[0].rates["720p"]`, "more than 3 decimals"},
		{"inexact string rate", `{"version":"v","tools":[{"id":"v","unit":"second","rates":{"720p":"8.0005"}}]}`, `tools[0].rates["720p"]`, "more than 3 decimals"},
		{"inexact price", `{"version":"v","tools":[{"id":"i","unit":"image","price":7.1234}]}`, "tools[0].price", "more than 3 decimals"},
		{"inexact override", `{"version":"v","tools":[` + tool + `],"plans":[{"id":"p","overrides":{"v":{"rates":{"720p":1e-9}}}}]}`,
			`plans[0].overrides["v"].rates["720p"]`, "more than 3 decimals"},
		{"amount too large", `{"version":"v","tools":[{"id":"i","unit":"image","price":1e20}]}`, "tools[0].price", "overflow"},
		{"amount not a number", `{"version":"v","tools":[{"id":"i","unit":"image","price":"seven"}]}`, "tools[0].price", "invalid amount"},
		{"amount of the wrong type", `{"version":"v","tools":[{"id":"i","unit":"image","price":true}]}`, "tools[0].price", "got a boolean"},
		{"duplicate root key", `{"version":"a","version":"b","tools":[]}`, "version", "duplicate key"},
		{"duplicate rate", `{"version":"v","tools":[{"id":"v","unit":"second","rates":{"720p":8,"720p":1}}]}`, `tools[0].rates["720p"]`, "duplicate key"},
		{"id of the wrong type", `{"version":"v","tools":[{"id":5}]}`, "tools[0].id", "want a string"},
		{"fractional integer", `{"version":"v","tools":[{"id":"v","unit":"second","rates":{"p":1},"increment_ms":1.5}]}`, "tools[0].increment_ms", "not an integer"},
		{"exponent integer", `{"version":"v","tools":[{"id":"i","unit":"image","price":1,"max_images":1e2}]}`, "tools[0].max_images", "not an integer"},
		{"integer as a string", `{"version":"v","quote_ttl_ms":"1000","tools":[]}`, "quote_ttl_ms", "want an integer"},
		{"integer out of range", `{"version":"v","quote_ttl_ms":99999999999999999999,"tools":[]}`, "quote_ttl_ms", "not an integer"},
		{"tools not an array", `{"version":"v","tools":{}}`, "tools", "want an array"},
		{"rates not an object", `{"version":"v","tools":[{"id":"v","unit":"second","rates":[]}]}`, "tools[0].rates", "want an object"},
		{"syntax error", `{"version": }`, "version", "malformed JSON"},
		{"truncated", `{"version":"v","tools":[`, "", ""},
		{"empty", ``, "(root)", "want a JSON object"},
		{"null", `null`, "(root)", "want a JSON object"},
		{"array", `[]`, "(root)", "want a JSON object"},
		{"string", `"catalog"`, "(root)", "want a JSON object"},
		// Valid JSON, invalid catalog: NewCatalog names the field.
		{"invalid discount", `{"version":"v","tools":[],"plans":[{"id":"p","discount_bp":20000}]}`, "plans[0].discount_bp", "outside"},
		{"missing version", `{"tools":[]}`, "version", "required"},
	}
	for _, tt := range tests {
		c, err := ParseCatalog([]byte(tt.json))
		if !errors.Is(err, ErrInvalidCatalog) {
			t.Errorf("%s: ParseCatalog = %v, %v; want ErrInvalidCatalog", tt.name, c, err)
			continue
		}
		var ce *CatalogError
		if !errors.As(err, &ce) {
			t.Errorf("%s: %v is not a *CatalogError", tt.name, err)
			continue
		}
		if tt.field != "" && ce.Field != tt.field {
			t.Errorf("%s: Field = %q, want %q (%v)", tt.name, ce.Field, tt.field, err)
		}
		if ce.Field == "" {
			t.Errorf("%s: no field in %v", tt.name, err)
		}
		if !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%s: error %q lacks %q", tt.name, err, tt.msg)
		}
	}

	// Nulls and both forms of amounts are accepted.
	ok := `{"version":"v","quote_ttl_ms":null,"tools":[{"id":"a","name":null,"unit":"image","price":"2.5"},` +
		`{"id":"b","unit":"image","price":2.5,"rates":null}],"plans":null}`
	c, err := ParseCatalog([]byte(ok))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := c.Tool("a")
	b, _ := c.Tool("b")
	if a.Price != MustParse("2.5") || b.Price != a.Price {
		t.Errorf("prices %v and %v", a.Price, b.Price)
	}
}

func TestPricingCost(t *testing.T) {
	c := DefaultCatalog()
	img := ptQuote(t, c, QuoteRequest{Tool: "image", Images: 3}) // 21
	vid := ptQuote(t, c, QuoteRequest{Tool: "video-pro", Resolution: "720p", Duration: 5 * time.Second, Plan: "pro"})
	// 67.5
	down := vid
	down.Rounding, down.Increment = RoundDown, 500*time.Millisecond
	noRounding := vid
	noRounding.Rounding = "" // as a hand-built quote might: RoundUp

	tests := []struct {
		name   string
		q      Quote
		u      Usage
		cost   string
		capped bool
	}{
		{"no image", img, Usage{}, "0", false},
		{"fewer images", img, Usage{Images: 1}, "7", false},
		{"quoted images", img, Usage{Images: 3}, "21", false},
		{"more images", img, Usage{Images: 4}, "21", true},
		{"absurd images", img, Usage{Images: math.MaxInt}, "21", true},
		{"no video", vid, Usage{}, "0", false},
		{"1 ns of video", vid, Usage{Duration: 1}, "13.5", false},
		{"shorter video", vid, Usage{Duration: 2500 * time.Millisecond}, "40.5", false},
		{"quoted video", vid, Usage{Duration: 5 * time.Second}, "67.5", false},
		{"quoted video, rounded", vid, Usage{Duration: 4001 * time.Millisecond}, "67.5", false},
		{"longer video", vid, Usage{Duration: 5*time.Second + 1}, "67.5", true},
		{"absurd video", vid, Usage{Duration: math.MaxInt64}, "67.5", true},
		{"the quote's rounding", down, Usage{Duration: 4200 * time.Millisecond}, "54", false},
		{"the quote's increment", down, Usage{Duration: 2700 * time.Millisecond}, "33.75", false},
		{"empty rounding rounds up", noRounding, Usage{Duration: 2100 * time.Millisecond}, "40.5", false},
		{"huge rate, capped without overflow", Quote{Unit: UnitSecond, UnitRate: FromUnits(MaxUnits), Increment: time.Hour, Total: FromUnits(MaxUnits)},
			Usage{Duration: math.MaxInt64}, FromUnits(MaxUnits).String(), true},
		{"huge increment, capped without overflow",
			Quote{Unit: UnitSecond, UnitRate: FromUnits(MaxUnits), Increment: math.MaxInt64 / time.Millisecond * time.Millisecond, Total: Whole(5)},
			Usage{Duration: 1}, "5", true},
		{"huge image rate, capped without overflow", Quote{Unit: UnitImage, UnitRate: FromUnits(MaxUnits), Total: Whole(5)}, Usage{Images: 2}, "5", true},
		{"free rate", Quote{Unit: UnitSecond, Increment: time.Hour}, Usage{Duration: math.MaxInt64}, "0", false},
		{"rounding of a sub-millisecond rate", Quote{Unit: UnitSecond, UnitRate: MustParse("0.007"), Increment: time.Millisecond, Total: Whole(1)},
			Usage{Duration: 3 * time.Millisecond}, "0", false},
	}
	for _, tt := range tests {
		cost, capped, err := tt.q.Cost(tt.u)
		if err != nil || cost != MustParse(tt.cost) || capped != tt.capped {
			t.Errorf("%s: Cost(%+v) = %v, %v, %v; want %s, %v", tt.name, tt.u, cost, capped, err, tt.cost, tt.capped)
		}
	}

	bad := []struct {
		name string
		q    Quote
		u    Usage
	}{
		{"negative images", img, Usage{Images: -1}},
		{"duration on an image quote", img, Usage{Duration: time.Second}},
		{"negative duration", vid, Usage{Duration: -1}},
		{"images on a per-second quote", vid, Usage{Images: 1}},
		{"images and duration", vid, Usage{Images: 1, Duration: time.Second}},
		{"unknown unit", Quote{Unit: "minute", Total: Whole(1)}, Usage{}},
		{"zero quote", Quote{}, Usage{}},
		{"zero increment", Quote{Unit: UnitSecond, UnitRate: Whole(1), Total: Whole(1)}, Usage{Duration: time.Second}},
		{"sub-millisecond increment", Quote{Unit: UnitSecond, UnitRate: Whole(1), Increment: 1500 * time.Microsecond, Total: Whole(1)}, Usage{Duration: time.Second}},
		{"unknown rounding", Quote{Unit: UnitSecond, UnitRate: Whole(1), Increment: time.Second, Rounding: "sideways", Total: Whole(1)}, Usage{Duration: time.Second}},
		{"negative rate", Quote{Unit: UnitImage, UnitRate: Whole(-1), Total: Whole(1)}, Usage{Images: 1}},
		{"negative total", Quote{Unit: UnitImage, UnitRate: Whole(1), Total: Whole(-1)}, Usage{Images: 1}},
	}
	for _, tt := range bad {
		cost, capped, err := tt.q.Cost(tt.u)
		if !errors.Is(err, ErrInvalidRequest) || !cost.IsZero() || capped {
			t.Errorf("%s: Cost(%+v) = %v, %v, %v; want ErrInvalidRequest", tt.name, tt.u, cost, capped, err)
		}
	}
}

func TestPricingMulDiv(t *testing.T) {
	tests := []struct {
		a, b, c uint64
		want    int64
		ok      bool
	}{
		{3, 7, 2, 10, true},
		{0, math.MaxUint64, 1, 0, true},
		{math.MaxInt64, 1, 1, math.MaxInt64, true},
		{math.MaxInt64, 1000, 1000, math.MaxInt64, true},
		{math.MaxInt64, 10_000, 10_000, math.MaxInt64, true},
		{math.MaxInt64 + 1, 1, 1, 0, false}, // fits 64 bits, not int64
		{1 << 63, 2, 2, 0, false},
		{math.MaxUint64, math.MaxUint64, 1, 0, false},    // quotient needs 128 bits
		{math.MaxUint64, math.MaxUint64, 1000, 0, false}, // still too large
		{1 << 40, 1 << 40, 1 << 20, 1 << 60, true},       // 128-bit intermediate
		{2003, 9000, 10_000, 1802, true},                 // rounds down
		{math.MaxUint64, 3, 4, 0, false},                 // 13835058055282163711 > MaxInt64
		{math.MaxInt64, 3, 4, math.MaxInt64/4*3 + 2, true},
	}
	for _, tt := range tests {
		got, ok := mulDivDown(tt.a, tt.b, tt.c)
		if ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("mulDivDown(%d, %d, %d) = %d, %v; want %d, %v", tt.a, tt.b, tt.c, got, ok, tt.want, tt.ok)
		}
		if ok {
			// Cross-check with math/big.
			z := new(big.Int).Mul(new(big.Int).SetUint64(tt.a), new(big.Int).SetUint64(tt.b))
			z.Quo(z, new(big.Int).SetUint64(tt.c))
			if !z.IsInt64() || z.Int64() != got {
				t.Errorf("mulDivDown(%d, %d, %d) = %d, math/big says %s", tt.a, tt.b, tt.c, got, z)
			}
		}
	}
}

// TestPricingOverflowIsAnError reaches the overflow checks of Quote, which a
// valid catalog's limits make unreachable, by corrupting a private copy of a
// catalog.
func TestPricingOverflowIsAnError(t *testing.T) {
	c := ptCatalog(t, DefaultCatalog().Config())
	c.tools["image"].price = math.MaxInt64
	c.tools["video"].rates["720p"] = math.MaxInt64
	c.tools["video"].maxDur = math.MaxInt64
	c.tools["video-pro"].maxDur = math.MaxInt64
	tests := []QuoteRequest{
		{Tool: "image", Images: 2},
		{Tool: "video", Resolution: "720p", Duration: 10 * time.Minute},
		{Tool: "video-pro", Resolution: "720p", Duration: math.MaxInt64}, // the billed duration overflows
	}
	for _, req := range tests {
		q, err := c.Quote(req, ptNow)
		if !errors.Is(err, ErrOverflow) || !ptEqual(q, Quote{}) {
			t.Errorf("Quote(%+v) = %+v, %v; want ErrOverflow", req, q, err)
		}
	}
	// A discount cannot overflow, even on the largest rate.
	if q, err := c.Quote(QuoteRequest{Tool: "image", Plan: "pro"}, ptNow); err != nil || q.UnitRate.Units() != math.MaxInt64/10*9+6 {
		t.Errorf("pro on MaxInt64: %v, %v", q.UnitRate.Units(), err)
	}
}

func TestPricingMatches(t *testing.T) {
	c := DefaultCatalog()
	req := QuoteRequest{Tool: "video-pro", Resolution: "720p", Duration: 4200 * time.Millisecond, Plan: "pro"}
	q := ptQuote(t, c, req)
	later, err := c.Quote(req, ptNow.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !q.Matches(later) || !later.Matches(q) {
		t.Error("the same request quoted later does not match")
	}
	same := q
	same.ExpiresAt = time.Time{}
	same.Breakdown = "edited"
	same.Duration = 4500 * time.Millisecond // billed the same
	same.BaseRate = Whole(1)
	if !q.Matches(same) {
		t.Error("ExpiresAt, Breakdown, Duration or BaseRate changed the match")
	}
	edits := map[string]func(*Quote){
		"Tool":           func(q *Quote) { q.Tool = "video" },
		"Resolution":     func(q *Quote) { q.Resolution = "480p" },
		"Plan":           func(q *Quote) { q.Plan = "" },
		"Unit":           func(q *Quote) { q.Unit = UnitImage },
		"UnitRate":       func(q *Quote) { q.UnitRate = Whole(1) },
		"Images":         func(q *Quote) { q.Images = 1 },
		"BilledDuration": func(q *Quote) { q.BilledDuration = time.Hour },
		"Increment":      func(q *Quote) { q.Increment = time.Hour },
		"Rounding":       func(q *Quote) { q.Rounding = RoundDown },
		"Total":          func(q *Quote) { q.Total = FromUnits(1) },
		"CatalogVersion": func(q *Quote) { q.CatalogVersion = "other" },
	}
	for _, field := range slices.Sorted(maps.Keys(edits)) {
		other := q
		edits[field](&other)
		if q.Matches(other) || other.Matches(q) {
			t.Errorf("a different %s matches", field)
		}
	}
}

func TestPricingQuoteJSON(t *testing.T) {
	q := ptQuote(t, DefaultCatalog(), QuoteRequest{Tool: "video-pro", Resolution: "720p", Duration: 5 * time.Second, Plan: "pro"})
	data, err := json.Marshal(q)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"total":"67.5"`, `"unit_rate":"13.5"`, `"base_rate":"15"`, `"unit":"second"`, `"expires_at":"2026-11-25T12:15:00Z"`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("%s lacks %s", data, want)
		}
	}
	var back Quote
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if diff := ptDiff(q, back); diff != "" || !back.Matches(q) {
		t.Errorf("JSON round trip (-want +got):\n%s", diff)
	}
}

func TestPricingOfferedOrder(t *testing.T) {
	got := offeredResolutions(map[string]Credits{
		"1080p": {}, "480p": {}, "720p": {}, "4k": {}, "audio": {}, "240p": {}, "8k": {}, "99999999999999999999999p": {},
	})
	if want := "4k, 8k, 240p, 480p, 720p, 1080p, 99999999999999999999999p, audio"; got != want {
		t.Errorf("offeredResolutions = %q, want %q", got, want)
	}
}

// TestPricingRapidCostNeverAboveQuote: for any quote of the default catalog
// and any usage, 0 ≤ Cost ≤ Total, and the quoted usage costs exactly Total.
// The quote's own total is checked against an independent computation in
// decimal arithmetic.
func TestPricingRapidCostNeverAboveQuote(t *testing.T) {
	c := DefaultCatalog()
	tools := c.Tools()
	rapid.Check(t, func(rt *rapid.T) {
		tool := rapid.SampledFrom(tools).Draw(rt, "tool")
		plan := rapid.SampledFrom([]string{"", "pro", "studio"}).Draw(rt, "plan")
		req := QuoteRequest{Tool: tool.ID, Plan: plan}
		if tool.Unit == UnitImage {
			req.Images = rapid.IntRange(0, tool.MaxImages).Draw(rt, "images")
		} else {
			req.Resolution = rapid.SampledFrom(slices.Sorted(maps.Keys(tool.Rates))).Draw(rt, "resolution")
			req.Duration = time.Duration(rapid.OneOf(
				rapid.Int64Range(1, int64(10*time.Minute)),
				rapid.Int64Range(1, int64(3*time.Second)),
				rapid.Map(rapid.Int64Range(1, 600), func(s int64) int64 { return s * int64(time.Second) }),
			).Draw(rt, "duration"))
		}
		q, err := c.Quote(req, ptNow)
		if err != nil {
			rt.Fatalf("Quote(%+v): %v", req, err)
		}

		// Independent reference, in decimal: the rate after the plan rounded
		// down once, times the billed seconds, rounded down once.
		base := tool.Price
		if tool.Unit == UnitSecond {
			base = tool.Rates[req.Resolution]
		}
		rate := base.Decimal()
		switch {
		case plan == "studio" && tool.ID == "image":
			rate = decimal.NewFromInt(5)
		case plan == "studio":
			rate = rate.Mul(decimal.RequireFromString("0.8")).RoundFloor(3)
		case plan == "pro":
			rate = rate.Mul(decimal.RequireFromString("0.9")).RoundFloor(3)
		}
		var want decimal.Decimal
		if tool.Unit == UnitImage {
			n := max(req.Images, 1)
			want = rate.Mul(decimal.NewFromInt(int64(n)))
		} else {
			secs := decimal.NewFromInt(int64(req.Duration)).Div(decimal.NewFromInt(int64(time.Second))).Ceil()
			want = rate.Mul(secs).RoundFloor(3)
			if q.BilledDuration != time.Duration(secs.IntPart())*time.Second {
				rt.Fatalf("billed %v for %v", q.BilledDuration, req.Duration)
			}
		}
		if !q.UnitRate.Decimal().Equal(rate) || !q.Total.Decimal().Equal(want) {
			rt.Fatalf("quote %v × … = %v, reference %s × … = %s (%s)", q.UnitRate, q.Total, rate, want, q.Breakdown)
		}

		// The quoted usage costs exactly the total.
		quoted := Usage{Images: q.Images, Duration: q.Duration}
		if cost, capped, err := q.Cost(quoted); err != nil || capped || cost != q.Total {
			rt.Fatalf("Cost(quoted %+v) = %v, %v, %v; want %v", quoted, cost, capped, err, q.Total)
		}

		// Any usage costs between 0 and the total.
		var u Usage
		if tool.Unit == UnitImage {
			u.Images = rapid.OneOf(rapid.IntRange(0, 2*tool.MaxImages), rapid.IntRange(0, math.MaxInt)).Draw(rt, "used images")
		} else {
			u.Duration = time.Duration(rapid.OneOf(
				rapid.Int64Range(0, int64(2*q.BilledDuration)),
				rapid.Int64Range(0, math.MaxInt64),
			).Draw(rt, "used duration"))
		}
		cost, capped, err := q.Cost(u)
		if err != nil {
			rt.Fatalf("Cost(%+v): %v", u, err)
		}
		if cost.IsNegative() || q.Total.Less(cost) || (capped && cost != q.Total) {
			rt.Fatalf("Cost(%+v) = %v (capped %v), total %v", u, cost, capped, q.Total)
		}
		// Uncapped, the cost is the same rule applied to the usage.
		if !capped {
			var ref decimal.Decimal
			if tool.Unit == UnitImage {
				ref = q.UnitRate.Decimal().Mul(decimal.NewFromInt(int64(u.Images)))
			} else if u.Duration > 0 {
				secs := decimal.NewFromInt(int64(u.Duration)).Div(decimal.NewFromInt(int64(time.Second))).Ceil()
				ref = q.UnitRate.Decimal().Mul(secs).RoundFloor(3)
			}
			if !cost.Decimal().Equal(ref) {
				rt.Fatalf("Cost(%+v) = %v, reference %s", u, cost, ref)
			}
		}
	})
}

// TestPricingRapidPerSecondRules checks the per-second rule on random valid
// tools: the billed duration is a positive whole number of increments that
// the rounding mode puts where it says, and the total is the rate times the
// billed milliseconds / 1000, rounded down, computed with math/big.
func TestPricingRapidPerSecondRules(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		incMs := rapid.OneOf(rapid.Int64Range(1, 60_000), rapid.SampledFrom([]int64{1, 3, 100, 250, 500, 1000, 60_000})).Draw(rt, "increment")
		maxMs := rapid.Int64Range(incMs, 24*60*60*1000).Draw(rt, "max")
		rounding := rapid.SampledFrom([]Rounding{RoundUp, RoundNearest, RoundDown}).Draw(rt, "rounding")
		rate := FromUnits(rapid.OneOf(rapid.Int64Range(1, 100_000), rapid.Int64Range(1, 1_000_000_000)).Draw(rt, "rate"))
		bp := rapid.Int64Range(0, 10_000).Draw(rt, "discount")
		c, err := NewCatalog(CatalogConfig{Version: "r",
			Tools: []Tool{{ID: "t", Unit: UnitSecond, Rates: map[string]Credits{"p": rate},
				IncrementMillis: incMs, Rounding: rounding, MaxDurationMillis: maxMs}},
			Plans: []Plan{{ID: "p", DiscountBasisPoints: bp}},
		})
		if err != nil {
			rt.Fatal(err)
		}
		maxDur := time.Duration(maxMs) * time.Millisecond
		d := time.Duration(rapid.OneOf(
			rapid.Int64Range(1, int64(maxDur)),
			rapid.Int64Range(1, min(int64(maxDur), 3*incMs*int64(time.Millisecond))),
		).Draw(rt, "duration"))
		usePlan := rapid.Bool().Draw(rt, "plan")
		req := QuoteRequest{Tool: "t", Resolution: "p", Duration: d}
		if usePlan {
			req.Plan = "p"
		}
		q, err := c.Quote(req, ptNow)
		if err != nil {
			rt.Fatalf("Quote(%+v): %v", req, err)
		}
		inc := time.Duration(incMs) * time.Millisecond
		b := q.BilledDuration
		if b <= 0 || b%inc != 0 || b > maxDur+inc {
			rt.Fatalf("billed %v for %v at billingIncrements of %v", b, d, inc)
		}
		switch rounding {
		case RoundUp:
			if b < d || b-d >= inc {
				rt.Fatalf("up: billed %v for %v", b, d)
			}
		case RoundDown:
			if (b > d && b != inc) || d-b >= inc {
				rt.Fatalf("down: billed %v for %v", b, d)
			}
		case RoundNearest:
			diff := b - d
			if diff < 0 {
				diff = -diff
			}
			if b != inc && (2*diff > inc || (2*diff == inc && b < d)) {
				rt.Fatalf("nearest: billed %v for %v", b, d)
			}
		}
		wantRate := rate.Units()
		if usePlan {
			wantRate = new(big.Int).Quo(new(big.Int).Mul(big.NewInt(rate.Units()), big.NewInt(10_000-bp)), big.NewInt(10_000)).Int64()
		}
		want := new(big.Int).Mul(big.NewInt(wantRate), big.NewInt(int64(b/time.Millisecond)))
		want.Quo(want, big.NewInt(1000))
		if q.UnitRate.Units() != wantRate || !want.IsInt64() || q.Total.Units() != want.Int64() {
			rt.Fatalf("total %v at %v, want %s units at %d", q.Total, q.UnitRate, want, wantRate)
		}
		if cost, capped, err := q.Cost(Usage{Duration: d}); err != nil || capped || cost != q.Total {
			rt.Fatalf("Cost(quoted) = %v, %v, %v; want %v", cost, capped, err, q.Total)
		}
	})
}

var ptSink int64

// BenchmarkQuote compares Catalog.Quote (validation, plan, rounding, exact
// arithmetic, breakdown) with the naive alternative: a map lookup and an
// int64 multiply. The ratio of the two ns/op is the price of the checks.
func BenchmarkQuote(b *testing.B) {
	c := DefaultCatalog()
	req := QuoteRequest{Tool: "video-pro", Resolution: "720p", Duration: 5 * time.Second, Plan: "pro"}
	b.Run("catalog", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			q, err := c.Quote(req, ptNow)
			if err != nil {
				b.Fatal(err)
			}
			ptSink += q.Total.Units()
		}
	})
	b.Run("naive", func(b *testing.B) {
		rates := map[string]int64{"video-pro": 15_000, "video": 8_000, "image": 7_000}
		seconds := int64(req.Duration / time.Second)
		b.ReportAllocs()
		for b.Loop() {
			ptSink += rates[req.Tool] * seconds
		}
	})
}

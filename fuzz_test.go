package credits_test

// Fuzz targets (issue 6, item 6). Each one runs its seeds and the committed
// corpus under testdata/fuzz/<Name>/ as an ordinary test in `go test`; CI
// also fuzzes each one briefly:
//
//	go test -run '^$' -fuzz '^FuzzParse$' -fuzztime 10s .
//
// The helpers of this file are prefixed with fz so that they cannot collide
// with the helpers of other test files of the package.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/big"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/shopspring/decimal"

	"github.com/creditkit/credits"
	"github.com/creditkit/credits/memstore"
	"github.com/creditkit/credits/storetest"
)

// ---- amounts ----

// fzAmountErr fails unless err wraps one of the sentinels an amount is
// rejected with.
func fzAmountErr(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, credits.ErrInvalidAmount) && !errors.Is(err, credits.ErrOverflow) {
		t.Fatalf("%s: error %v wraps neither ErrInvalidAmount nor ErrOverflow", what, err)
	}
}

// fzRoundTrip checks that every way of formatting c reads back as c.
func fzRoundTrip(t *testing.T, c credits.Credits) {
	t.Helper()
	s := c.String()
	if back, err := credits.Parse(s); err != nil || back != c {
		t.Fatalf("Parse(String() = %q) = %v, %v; want %d units", s, back.Units(), err, c.Units())
	}
	text, err := c.MarshalText()
	if err != nil || string(text) != s {
		t.Fatalf("MarshalText = %q, %v; want %q", text, err, s)
	}
	var fromText credits.Credits
	if err := fromText.UnmarshalText(text); err != nil || fromText != c {
		t.Fatalf("UnmarshalText(%q) = %v, %v", text, fromText, err)
	}
	js, err := json.Marshal(c)
	if err != nil || string(js) != strconv.Quote(s) {
		t.Fatalf("json.Marshal = %s, %v; want %q", js, err, s)
	}
	var fromJSON credits.Credits
	if err := json.Unmarshal(js, &fromJSON); err != nil || fromJSON != c {
		t.Fatalf("json.Unmarshal(%s) = %v, %v", js, fromJSON, err)
	}
	// The bare number form is accepted too.
	var fromNumber credits.Credits
	if err := fromNumber.UnmarshalJSON([]byte(s)); err != nil || fromNumber != c {
		t.Fatalf("UnmarshalJSON(%s) = %v, %v", s, fromNumber, err)
	}
	// Inside a document, as a field and as a map key.
	type doc struct {
		C credits.Credits         `json:"c"`
		M map[credits.Credits]int `json:"m"`
	}
	in := doc{C: c, M: map[credits.Credits]int{c: 1}}
	djs, err := json.Marshal(in)
	if err != nil {
		t.Fatalf("json.Marshal(doc): %v", err)
	}
	var out doc
	if err := json.Unmarshal(djs, &out); err != nil || !reflect.DeepEqual(in, out) {
		t.Fatalf("doc round trip %s: %+v, %v", djs, out, err)
	}
	// SQL: Value stores int64 millicredits, Scan reads them back.
	v, err := c.Value()
	if err != nil || v != c.Units() {
		t.Fatalf("Value() = %#v, %v", v, err)
	}
	for _, src := range []any{v, strconv.FormatInt(c.Units(), 10), []byte(strconv.FormatInt(c.Units(), 10))} {
		var sc credits.Credits
		if err := sc.Scan(src); err != nil || sc != c {
			t.Fatalf("Scan(%#v) = %v, %v", src, sc, err)
		}
	}
	// The decimal bridge.
	if d, err := credits.FromDecimal(c.Decimal()); err != nil || d != c {
		t.Fatalf("FromDecimal(Decimal()) = %v, %v", d, err)
	}
}

// fzPlainNumber is the decimal syntax an independent reader (math/big) can
// check Parse against: a sign, digits with an optional point, and an
// exponent small enough to compute with.
var fzPlainNumber = regexp.MustCompile(`^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d{1,3})?$`)

// fzExactUnits reads s with math/big and returns its value in millicredits,
// whether that is a whole number, and whether it fits in an int64.
func fzExactUnits(s string) (units int64, exact, fits, ok bool) {
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return 0, false, false, false
	}
	r.Mul(r, big.NewRat(credits.UnitsPerCredit, 1))
	if !r.IsInt() {
		return 0, false, false, true
	}
	n := r.Num()
	if !n.IsInt64() {
		return 0, true, false, true
	}
	return n.Int64(), true, true, true
}

// FuzzParse: Parse, UnmarshalText, UnmarshalJSON and Scan never panic; what
// they accept formats back (String, MarshalText, MarshalJSON, Value) to
// something that reads back to the same value; what they reject is an error
// wrapping ErrInvalidAmount or ErrOverflow that leaves the receiver as it
// was; and Parse agrees with an exact reading by math/big on plain decimals.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"0", "7", "2.5", "0.125", "-3", "1e3", "1E3", "1e+3", "1.5e-1", "-0", "+1", ".5", "5.", "-.5", "00012",
		"0.001", "0.0001", "1.0000", "1.2340", "1e-3", "1e-4", "0.0e5", "1000e-6",
		"9223372036854775.807", "9223372036854775.808", "-9223372036854775.808", "-9223372036854775.809",
		"9223372036854775807e-3", "9.223372036854775807e15", "1e30", "1e31", "1e400", "1e-400", "1e2147483647",
		"0.1e-2147483648", "0e99999", "NaN", "Inf", "-Inf", "", " 1", "1 ", "1_000", "0x10", "1/2", "1,5",
		"\"5\"", "null", "true", "{}", "[]", "\u22125", "٣", "1e", "e5", "--1", "-", ".", "1..2", "1e1e1",
		strings.Repeat("9", 64), strings.Repeat("9", 65), "0." + strings.Repeat("0", 60) + "1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 400 {
			// Beyond any amount, even JSON-escaped: rejected, whatever it is.
			// (Kept cheap, so that the fuzzer does not spend its time on
			// long inputs.)
			_, err := credits.Parse(s)
			fzAmountErr(t, "Parse of a long input", err)
			var c credits.Credits
			fzAmountErr(t, "UnmarshalJSON of a long input", c.UnmarshalJSON([]byte(s)))
			if _, perr := strconv.ParseInt(s, 10, 64); perr != nil { // leading zeros are fine
				fzAmountErr(t, "Scan of a long input", c.Scan(s))
			}
			return
		}
		c, err := credits.Parse(s)
		if err != nil {
			fzAmountErr(t, fmt.Sprintf("Parse(%q)", s), err)
			if !c.IsZero() {
				t.Fatalf("Parse(%q) failed but returned %v", s, c)
			}
		} else {
			fzRoundTrip(t, c)
		}

		// An exact reading of plain decimal numbers: Parse accepts exactly
		// those that are whole millicredits within int64, with their value.
		if len(s) <= 64 && fzPlainNumber.MatchString(s) {
			if units, exact, fits, ok := fzExactUnits(s); ok {
				switch {
				case !exact && !errors.Is(err, credits.ErrInvalidAmount):
					t.Fatalf("Parse(%q) = %v, %v; it has a digit below 1/1000: want ErrInvalidAmount", s, c, err)
				case exact && !fits && !errors.Is(err, credits.ErrOverflow):
					t.Fatalf("Parse(%q) = %v, %v; it does not fit: want ErrOverflow", s, c, err)
				case exact && fits && (err != nil || c.Units() != units):
					t.Fatalf("Parse(%q) = %d units, %v; want %d units", s, c.Units(), err, units)
				}
			}
		}

		// UnmarshalText is Parse, and leaves the receiver alone on error.
		sentinel := credits.FromUnits(-424242)
		ct := sentinel
		errT := ct.UnmarshalText([]byte(s))
		switch {
		case (err == nil) != (errT == nil):
			t.Fatalf("UnmarshalText(%q) = %v but Parse = %v", s, errT, err)
		case err == nil && ct != c:
			t.Fatalf("UnmarshalText(%q) = %v but Parse = %v", s, ct, c)
		case err != nil && ct != sentinel:
			t.Fatalf("UnmarshalText(%q) changed the value on error", s)
		}

		// UnmarshalJSON on the raw bytes: a JSON string is read with Parse,
		// a JSON number likewise, null is nothing; anything else an error.
		cj := sentinel
		errJ := cj.UnmarshalJSON([]byte(s))
		if errJ != nil {
			fzAmountErr(t, fmt.Sprintf("UnmarshalJSON(%q)", s), errJ)
			if cj != sentinel {
				t.Fatalf("UnmarshalJSON(%q) changed the value on error", s)
			}
		} else {
			fzRoundTrip(t, cj)
		}
		dec := json.NewDecoder(strings.NewReader(s))
		dec.UseNumber()
		var v any
		if json.Valid([]byte(s)) && dec.Decode(&v) == nil && strings.TrimSpace(s) == s {
			var want credits.Credits
			var wantErr error
			switch v := v.(type) {
			case string:
				want, wantErr = credits.Parse(v)
			case json.Number:
				want, wantErr = credits.Parse(string(v))
			case nil:
				want = sentinel
			default:
				wantErr = credits.ErrInvalidAmount
			}
			if (wantErr == nil) != (errJ == nil) || (errJ == nil && cj != want) {
				t.Fatalf("UnmarshalJSON(%q) = %v, %v; want %v, %v", s, cj, errJ, want, wantErr)
			}
		} else if errJ == nil && s != "null" {
			t.Fatalf("UnmarshalJSON(%q) accepted what is not a JSON value: %v", s, cj)
		}

		// json.Unmarshal of s as a JSON string agrees with Parse.
		if utf8.ValidString(s) {
			js, _ := json.Marshal(s)
			var cs credits.Credits
			errS := json.Unmarshal(js, &cs)
			if (errS == nil) != (err == nil) || cs != c {
				t.Fatalf("json.Unmarshal(%s) = %v, %v but Parse = %v, %v", js, cs, errS, c, err)
			}
		}

		// Scan reads an integer number of millicredits and nothing else.
		n, perr := strconv.ParseInt(s, 10, 64)
		for _, src := range []any{s, []byte(s)} {
			sc := sentinel
			errSc := sc.Scan(src)
			switch {
			case perr == nil && (errSc != nil || sc.Units() != n):
				t.Fatalf("Scan(%#v) = %v, %v; want %d units", src, sc, errSc, n)
			case perr != nil && errSc == nil:
				t.Fatalf("Scan(%#v) accepted %v; strconv says %v", src, sc, perr)
			case perr != nil:
				fzAmountErr(t, fmt.Sprintf("Scan(%#v)", src), errSc)
				if errors.Is(perr, strconv.ErrRange) != errors.Is(errSc, credits.ErrOverflow) {
					t.Fatalf("Scan(%#v) = %v; strconv says %v", src, errSc, perr)
				}
				if sc != sentinel {
					t.Fatalf("Scan(%#v) changed the value on error", src)
				}
			}
		}

		// The decimal bridge agrees with Parse where decimal reads s.
		if d, derr := decimal.NewFromString(s); derr == nil && err == nil && len(s) <= 64 {
			if fd, ferr := credits.FromDecimal(d); ferr != nil || fd != c {
				t.Fatalf("FromDecimal(%s) = %v, %v; Parse(%q) = %v", d, fd, ferr, s, c)
			}
		}
	})
}

// FuzzCreditsRoundTrip: every int64 number of millicredits survives String,
// MarshalText, JSON (as a string, a number, a field, a map key), Value/Scan
// and the decimal bridge; and Add, Sub, Mul, Neg, Cmp and Min agree with
// math/big, returning ErrOverflow exactly when the result does not fit.
func FuzzCreditsRoundTrip(f *testing.F) {
	for _, p := range [][2]int64{
		{0, 0}, {1, -1}, {2500, 1000}, {-1, math.MinInt64}, {math.MaxInt64, 1}, {math.MinInt64, -1},
		{math.MaxInt64, math.MaxInt64}, {math.MinInt64, math.MinInt64}, {3037000500, 3037000500},
		{-3037000500, 3037000500}, {math.MaxInt64 / 2, 2}, {math.MaxInt64/2 + 1, 2}, {999, 1001},
	} {
		f.Add(p[0], p[1])
	}
	f.Fuzz(func(t *testing.T, a, b int64) {
		ca, cb := credits.FromUnits(a), credits.FromUnits(b)
		fzRoundTrip(t, ca)
		fzRoundTrip(t, cb)

		ba, bb := big.NewInt(a), big.NewInt(b)
		check := func(op string, got credits.Credits, err error, want *big.Int) {
			t.Helper()
			if !want.IsInt64() {
				if !errors.Is(err, credits.ErrOverflow) || !got.IsZero() {
					t.Fatalf("%d %s %d = %v, %v; want ErrOverflow", a, op, b, got, err)
				}
				return
			}
			if err != nil || got.Units() != want.Int64() {
				t.Fatalf("%d %s %d = %d, %v; want %s", a, op, b, got.Units(), err, want)
			}
		}
		sum, err := ca.Add(cb)
		check("+", sum, err, new(big.Int).Add(ba, bb))
		diff, err := ca.Sub(cb)
		check("-", diff, err, new(big.Int).Sub(ba, bb))
		prod, err := ca.Mul(b)
		check("×", prod, err, new(big.Int).Mul(ba, bb))
		neg, err := ca.Neg()
		check("neg", neg, err, new(big.Int).Neg(ba))

		if got, want := ca.Cmp(cb), ba.Cmp(bb); got != want {
			t.Fatalf("Cmp(%d, %d) = %d, want %d", a, b, got, want)
		}
		if ca.Less(cb) != (a < b) || ca.Equal(cb) != (a == b) || ca.Min(cb).Units() != min(a, b) {
			t.Fatalf("Less/Equal/Min(%d, %d) disagree with int64", a, b)
		}
		if ca.IsZero() != (a == 0) || ca.IsPositive() != (a > 0) || ca.IsNegative() != (a < 0) {
			t.Fatalf("sign predicates of %d", a)
		}
		// FromInt(n) is n × 1000 or ErrOverflow.
		fi, err := credits.FromInt(a)
		check("FromInt×1000 of", fi, err, new(big.Int).Mul(ba, big.NewInt(credits.UnitsPerCredit)))
	})
}

// ---- catalogs ----

// fzQuoteErrors are the sentinels Catalog.Quote may return.
var fzQuoteErrors = []error{
	credits.ErrUnknownTool, credits.ErrUnknownPlan, credits.ErrUnknownResolution,
	credits.ErrInvalidRequest, credits.ErrOverflow,
}

func fzIsOneOf(err error, targets []error) bool {
	for _, e := range targets {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// fzNow is the instant FuzzCatalog quotes at (storetest's Epoch, so that a
// harness' ledger agrees).
var fzNow = storetest.Epoch

// FuzzCatalog: ParseCatalog never panics and rejects with a *CatalogError; a
// catalog it accepts survives a JSON round trip unchanged (Config → JSON →
// ParseCatalog → Config, and NewCatalog(Config)), and prices the same; a
// fuzzed quote request (raw, and one made valid by picking a tool,
// resolution and plan of the catalog) either fails with a pricing sentinel,
// for the documented reason, or returns a deterministic quote whose total is
// non-negative and follows the pricing rules (checked with math/big); its
// cost never exceeds the total; and a ledger on the catalog reserves and
// captures it, invariants intact.
func FuzzCatalog(f *testing.F) {
	file, err := os.ReadFile("testdata/catalog.json")
	if err != nil {
		f.Fatal(err)
	}
	def, err := json.Marshal(credits.DefaultCatalog().Config())
	if err != nil {
		f.Fatal(err)
	}
	limits := []byte(`{"version":"limits","quote_ttl_ms":86400000,"tools":[` +
		`{"id":"img","unit":"image","price":"1000000","max_images":1000},` +
		`{"id":"vid","unit":"second","rates":{"8k":"1000000","tiny":"0.001"},"increment_ms":60000,"rounding":"up","max_duration_ms":86400000},` +
		`{"id":"ms","unit":"second","rates":{"x":"999999.999"},"increment_ms":1,"rounding":"nearest","max_duration_ms":86400000}],` +
		`"plans":[{"id":"free","discount_bp":10000},{"id":"odd","discount_bp":1,"overrides":{"img":{"price":"0.001"},"vid":{"rates":{"8k":"1000000"}}}}]}`)
	for _, seed := range []struct {
		data                []byte
		tool, res, plan     string
		toolI, resI, planI  uint8
		dur, usage          int64
		images, usageImages int
	}{
		{file, "clip", "720p", "agency", 2, 1, 2, int64(7300 * time.Millisecond), int64(3 * time.Second), 0, 0},
		{file, "sketch", "", "creator", 0, 0, 1, 0, 0, 8, 3},
		{file, "lipsync", "720p", "", 3, 0, 0, int64(time.Hour), int64(59 * time.Minute), 0, 0},
		{def, "video-pro", "1080p", "pro", 6, 0, 1, int64(10 * time.Minute), int64(11 * time.Minute), 0, 0},
		{def, "image", "", "studio", 3, 0, 2, 0, 0, 16, 17},
		{def, "nope", "480p", "gold", 200, 9, 7, -1, -1, -1, -1},
		{limits, "img", "", "odd", 0, 0, 2, 0, 0, 1000, math.MaxInt},
		{limits, "vid", "8k", "", 1, 0, 0, int64(24 * time.Hour), math.MaxInt64, 0, 0},
		{limits, "ms", "x", "free", 2, 0, 1, int64(24*time.Hour - time.Nanosecond), 1, 0, 0},
		{[]byte(`{"version":"v","tools":[]}`), "", "", "", 0, 0, 0, 0, 0, 0, 0},
		{[]byte(`{"version":"v","tools":[{"id":"a","unit":"image","price":0.0001}]}`), "a", "", "", 0, 0, 0, 0, 0, 1, 1},
		{[]byte(`{"version":"v","tools":[{"id":"a","unit":"second","rates":{"p":1e3}}],"Version":"w"}`), "a", "p", "", 0, 0, 0, 1, 1, 0, 0},
		{[]byte(`[]`), "", "", "", 0, 0, 0, 0, 0, 0, 0},
		{[]byte(`{"version":"v","tools":null,"plans":[{"id":"p","overrides":{"a":{"price":"1"}}}]}`), "", "", "p", 0, 0, 0, 0, 0, 0, 0},
	} {
		f.Add(seed.data, seed.tool, seed.res, seed.plan, seed.toolI, seed.resI, seed.planI, seed.dur, seed.images, seed.usage, seed.usageImages)
	}
	f.Fuzz(func(t *testing.T, data []byte, tool, res, plan string, toolI, resI, planI uint8, dur int64, images int, usageDur int64, usageImages int) {
		cat, err := credits.ParseCatalog(data)
		if err != nil {
			var ce *credits.CatalogError
			if !errors.As(err, &ce) || !errors.Is(err, credits.ErrInvalidCatalog) || ce.Field == "" {
				t.Fatalf("ParseCatalog: %v is not a *CatalogError naming a field", err)
			}
			if cat != nil {
				t.Fatal("ParseCatalog returned a catalog with its error")
			}
			cat = credits.DefaultCatalog() // still fuzz the quoting
		} else {
			fzCatalogRoundTrip(t, cat)
		}

		usage := credits.Usage{Duration: time.Duration(usageDur), Images: usageImages}
		raw := credits.QuoteRequest{Tool: tool, Resolution: res, Plan: plan, Duration: time.Duration(dur), Images: images}
		fzCheckQuote(t, cat, raw, usage)

		// A request made valid, or nearly, from the catalog's own names.
		tools := cat.Tools()
		if len(tools) == 0 {
			return
		}
		tl := tools[int(toolI)%len(tools)]
		req := credits.QuoteRequest{Tool: tl.ID}
		if plans := cat.Config().Plans; int(planI)%(len(plans)+1) > 0 {
			req.Plan = plans[int(planI)%(len(plans)+1)-1].ID
		}
		switch tl.Unit {
		case credits.UnitImage:
			req.Images = int(fzClamp(int64(images), int64(tl.MaxImages)))
		case credits.UnitSecond:
			resolutions := slices.Sorted(maps.Keys(tl.Rates))
			req.Resolution = resolutions[int(resI)%len(resolutions)]
			req.Duration = time.Duration(fzClamp(dur, tl.MaxDurationMillis*int64(time.Millisecond)))
			if req.Duration == 0 {
				req.Duration = time.Nanosecond
			}
		}
		q, ok := fzCheckQuote(t, cat, req, usage)
		if !ok {
			t.Fatalf("Quote(%+v) of a request made valid from the catalog failed", req)
		}
		fzLedgerSpends(t, cat, req, q, usage)
	})
}

// fzMaxRate is the catalog's limit on a price or rate: 1,000,000 credits.
const fzMaxRate = 1_000_000 * credits.UnitsPerCredit

// FuzzCatalogValues: NewCatalog on a catalog whose numbers are fuzzed —
// prices, rates and plan overrides up to and past the 1,000,000-credit
// limit, increments, maximum durations, image counts, quote TTLs, discounts
// and roundings, valid or not — accepts exactly the catalogs the documented
// limits allow, rejects the others with a *CatalogError, and an accepted
// catalog survives the JSON round trip and prices every request by the
// rules, without overflow, up to its largest quote (the top rate for the
// longest duration, under a discount or an override), which a ledger
// reserves and captures.
func FuzzCatalogValues(f *testing.F) {
	type seed struct {
		imagePrice, rate, override, inc, maxDur, ttl, bp int64
		rounding                                         uint8
		maxImages                                        int
		dur                                              int64
		images                                           int
		usage                                            int64
	}
	for _, s := range []seed{
		{7000, 15000, 0, 0, 0, 0, 1000, 0, 0, int64(5 * time.Second), 2, int64(4 * time.Second)},
		{fzMaxRate, fzMaxRate, fzMaxRate, 60_000, 86_400_000, 86_400_000, 10_000, 1, 1000, int64(24 * time.Hour), 1000, math.MaxInt64},
		{1, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1, 1},
		{fzMaxRate + 1, fzMaxRate + 1, -1, 60_001, 86_400_001, 86_400_001, 10_001, 3, 1001, -1, -1, -1},
		{-1, 0, 0, -1, -1, -1, -1, 4, -1, 0, 0, 0},
		{3000, 2500, 1, 333, 1000, 60_000, 9_999, 2, 16, int64(1500 * time.Millisecond), 3, int64(999 * time.Millisecond)},
		{3000, 999_999_999, 0, 7, 6, 0, 0, 0, 0, 1, 0, 0}, // max duration shorter than one increment
		{math.MaxInt64, math.MaxInt64, math.MaxInt64, math.MaxInt64, math.MaxInt64, math.MaxInt64, math.MaxInt64, 255, math.MaxInt, math.MaxInt64, math.MaxInt, math.MaxInt64},
		{math.MinInt64, math.MinInt64, math.MinInt64, math.MinInt64, math.MinInt64, math.MinInt64, math.MinInt64, 0, math.MinInt, math.MinInt64, math.MinInt, math.MinInt64},
	} {
		f.Add(s.imagePrice, s.rate, s.override, s.inc, s.maxDur, s.ttl, s.bp, s.rounding, s.maxImages, s.dur, s.images, s.usage)
	}
	roundings := []credits.Rounding{"", credits.RoundUp, credits.RoundNearest, credits.RoundDown, "sideways"}
	f.Fuzz(func(t *testing.T, imagePrice, rate, override, inc, maxDur, ttl, bp int64, rounding uint8, maxImages int, dur int64, images int, usageDur int64) {
		cfg := credits.CatalogConfig{
			Version:        "fz-1",
			QuoteTTLMillis: ttl,
			Tools: []credits.Tool{
				{ID: "img", Unit: credits.UnitImage, Price: credits.FromUnits(imagePrice), MaxImages: maxImages},
				{ID: "vid", Unit: credits.UnitSecond, Rates: map[string]credits.Credits{
					"720p": credits.FromUnits(rate), "8k": credits.FromUnits(fzMaxRate),
				}, IncrementMillis: inc, Rounding: roundings[int(rounding)%len(roundings)], MaxDurationMillis: maxDur},
			},
			Plans: []credits.Plan{
				{ID: "discount", DiscountBasisPoints: bp},
				{ID: "override", DiscountBasisPoints: bp, Overrides: map[string]credits.PlanOverride{
					"img": {Price: credits.FromUnits(override)},
					"vid": {Rates: map[string]credits.Credits{"720p": credits.FromUnits(override)}},
				}},
			},
		}
		if override == 0 {
			cfg.Plans[1].Overrides = nil
		}
		effInc, effMaxDur := inc, maxDur
		if effInc == 0 {
			effInc = 1000
		}
		if effMaxDur == 0 {
			effMaxDur = 10 * 60 * 1000
		}
		rateOK := func(u int64) bool { return u > 0 && u <= fzMaxRate }
		valid := ttl >= 0 && ttl <= 86_400_000 &&
			rateOK(imagePrice) && maxImages >= 0 && maxImages <= 1000 &&
			rateOK(rate) && inc >= 0 && inc <= 60_000 && int(rounding)%len(roundings) < 4 &&
			maxDur >= 0 && maxDur <= 86_400_000 && effMaxDur >= effInc &&
			bp >= 0 && bp <= 10_000 && (override == 0 || rateOK(override))

		cat, err := credits.NewCatalog(cfg)
		if err != nil {
			var ce *credits.CatalogError
			if !errors.As(err, &ce) || !errors.Is(err, credits.ErrInvalidCatalog) || ce.Field == "" || cat != nil {
				t.Fatalf("NewCatalog: %v is not a *CatalogError naming a field", err)
			}
			if valid {
				t.Fatalf("NewCatalog(%+v) refused a catalog within the limits: %v", cfg, err)
			}
			// The same catalog as JSON is refused too.
			if js, err := json.Marshal(cfg); err == nil {
				if _, err := credits.ParseCatalog(js); !errors.Is(err, credits.ErrInvalidCatalog) {
					t.Fatalf("ParseCatalog(%s) = %v, NewCatalog refused it", js, err)
				}
			}
			return
		}
		if !valid {
			t.Fatalf("NewCatalog(%+v) accepted a catalog outside the limits", cfg)
		}
		fzCatalogRoundTrip(t, cat)

		usage := credits.Usage{Duration: time.Duration(usageDur)}
		fzCheckQuote(t, cat, credits.QuoteRequest{Tool: "vid", Resolution: "720p", Duration: time.Duration(dur), Plan: "override"}, usage)
		fzCheckQuote(t, cat, credits.QuoteRequest{Tool: "img", Images: images, Plan: "discount"}, credits.Usage{Images: images})
		longest := time.Duration(effMaxDur) * time.Millisecond
		clamped := time.Duration(fzClamp(dur, int64(longest)))
		if clamped == 0 {
			clamped = longest
		}
		for _, req := range []credits.QuoteRequest{
			{Tool: "vid", Resolution: "720p", Duration: clamped},
			{Tool: "vid", Resolution: "720p", Duration: clamped, Plan: "discount"},
			{Tool: "vid", Resolution: "720p", Duration: clamped, Plan: "override"},
			{Tool: "vid", Resolution: "8k", Duration: longest},
			{Tool: "vid", Resolution: "8k", Duration: longest, Plan: "override"},
			{Tool: "img", Images: int(fzClamp(int64(images), int64(cat.Config().Tools[0].MaxImages)))},
			{Tool: "img", Images: cat.Config().Tools[0].MaxImages, Plan: "override"},
		} {
			q, ok := fzCheckQuote(t, cat, req, usage)
			if !ok {
				t.Fatalf("Quote(%+v) on a valid catalog failed", req)
			}
			if req.Resolution == "8k" && req.Plan == "" {
				fzLedgerSpends(t, cat, req, q, usage)
			}
		}
	})
}

// fzClamp maps n into 0..max (max ≥ 0) without overflow.
func fzClamp(n, max int64) int64 {
	if n >= 0 && n <= max {
		return n
	}
	m := n % (max + 1)
	if m < 0 {
		m += max + 1
	}
	return m
}

func fzCatalogRoundTrip(t *testing.T, cat *credits.Catalog) {
	t.Helper()
	cfg := cat.Config()
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatalf("json.Marshal(Config): %v", err)
	}
	back, err := credits.ParseCatalog(js)
	if err != nil {
		t.Fatalf("ParseCatalog(json.Marshal(Config)) = %v\n%s", err, js)
	}
	if diff := cmp.Diff(cfg, back.Config()); diff != "" {
		t.Fatalf("Config changed by a JSON round trip (-before +after):\n%s", diff)
	}
	js2, err := json.Marshal(back.Config())
	if err != nil || !bytes.Equal(js, js2) {
		t.Fatalf("JSON of the round-tripped catalog differs:\n%s\n%s", js, js2)
	}
	rebuilt, err := credits.NewCatalog(cfg)
	if err != nil {
		t.Fatalf("NewCatalog(Config()) = %v", err)
	}
	if diff := cmp.Diff(cfg, rebuilt.Config()); diff != "" {
		t.Fatalf("NewCatalog(Config()) changed it (-before +after):\n%s", diff)
	}
	if cat.Version() != cfg.Version {
		t.Fatalf("Version() = %q, Config().Version = %q", cat.Version(), cfg.Version)
	}
	for _, tl := range cfg.Tools {
		if got, ok := cat.Tool(tl.ID); !ok || !cmp.Equal(got, tl) {
			t.Fatalf("Tool(%q) = %+v, %v; Config has %+v", tl.ID, got, ok, tl)
		}
	}
	for _, p := range cfg.Plans {
		if got, ok := cat.Plan(p.ID); !ok || !cmp.Equal(got, p) {
			t.Fatalf("Plan(%q) = %+v, %v; Config has %+v", p.ID, got, ok, p)
		}
	}
}

// fzCheckQuote quotes req twice on cat and checks the outcome against the
// pricing rules. It reports whether the quote succeeded.
func fzCheckQuote(t *testing.T, cat *credits.Catalog, req credits.QuoteRequest, usage credits.Usage) (credits.Quote, bool) {
	t.Helper()
	q, err := cat.Quote(req, fzNow)
	q2, err2 := cat.Quote(req, fzNow)
	if !reflect.DeepEqual(q, q2) || fmt.Sprint(err) != fmt.Sprint(err2) {
		t.Fatalf("Quote(%+v) is not deterministic: %+v, %v then %+v, %v", req, q, err, q2, err2)
	}
	want := fzExpectedQuoteError(cat, req)
	if err != nil {
		if !fzIsOneOf(err, fzQuoteErrors) {
			t.Fatalf("Quote(%+v) = %v: not a pricing sentinel", req, err)
		}
		if want == nil || !errors.Is(err, want) {
			t.Fatalf("Quote(%+v) = %v, want %v", req, err, want)
		}
		if !reflect.DeepEqual(q, credits.Quote{}) {
			t.Fatalf("Quote(%+v) failed but returned %+v", req, q)
		}
		return q, false
	}
	if want != nil {
		t.Fatalf("Quote(%+v) = %+v, want %v", req, q, want)
	}
	fzCheckQuoteRules(t, cat, req, q)

	// The same catalog rebuilt from its definition prices the same.
	rebuilt, err := credits.NewCatalog(cat.Config())
	if err != nil {
		t.Fatal(err)
	}
	if q3, err := rebuilt.Quote(req, fzNow); err != nil || !reflect.DeepEqual(q, q3) {
		t.Fatalf("the rebuilt catalog quotes %+v, %v; the original %+v", q3, err, q)
	}
	// A quote survives JSON.
	js, err := json.Marshal(q)
	if err != nil {
		t.Fatal(err)
	}
	var back credits.Quote
	if err := json.Unmarshal(js, &back); err != nil || !reflect.DeepEqual(q, back) {
		t.Fatalf("quote JSON round trip: %s → %+v, %v", js, back, err)
	}
	if !q.Matches(q) || !q.Matches(back) {
		t.Fatalf("a quote does not match itself: %+v", q)
	}

	// Cost: the quoted usage costs the total; any usage costs at most it.
	quoted := credits.Usage{Duration: q.Duration, Images: q.Images}
	if c, capped, err := q.Cost(quoted); err != nil || c != q.Total || capped {
		t.Fatalf("Cost of the quoted usage %+v = %v, %v, %v; want the total %v", quoted, c, capped, err, q.Total)
	}
	c, capped, err := q.Cost(usage)
	c2, capped2, err2 := q.Cost(usage)
	if c != c2 || capped != capped2 || fmt.Sprint(err) != fmt.Sprint(err2) {
		t.Fatalf("Cost(%+v) is not deterministic", usage)
	}
	if err != nil {
		if !errors.Is(err, credits.ErrInvalidRequest) {
			t.Fatalf("Cost(%+v) = %v, want ErrInvalidRequest", usage, err)
		}
	} else if c.IsNegative() || q.Total.Less(c) || (capped && c != q.Total) {
		t.Fatalf("Cost(%+v) = %v (capped %v) for a quote of %v", usage, c, capped, q.Total)
	}
	return q, true
}

// fzExpectedQuoteError is the sentinel the pricing rules say req fails with
// on cat, or nil when it must succeed.
func fzExpectedQuoteError(cat *credits.Catalog, req credits.QuoteRequest) error {
	tl, ok := cat.Tool(req.Tool)
	if !ok {
		return credits.ErrUnknownTool
	}
	if req.Plan != "" {
		if _, ok := cat.Plan(req.Plan); !ok {
			return credits.ErrUnknownPlan
		}
	}
	if tl.Unit == credits.UnitImage {
		if req.Resolution != "" || req.Duration != 0 || req.Images < 0 || req.Images > tl.MaxImages {
			return credits.ErrInvalidRequest
		}
		return nil
	}
	if req.Images != 0 || req.Resolution == "" {
		return credits.ErrInvalidRequest
	}
	if _, ok := tl.Rates[req.Resolution]; !ok {
		return credits.ErrUnknownResolution
	}
	if req.Duration <= 0 || req.Duration > time.Duration(tl.MaxDurationMillis)*time.Millisecond {
		return credits.ErrInvalidRequest
	}
	return nil
}

// fzCheckQuoteRules recomputes a successful quote from the catalog's
// definition with math/big.
func fzCheckQuoteRules(t *testing.T, cat *credits.Catalog, req credits.QuoteRequest, q credits.Quote) {
	t.Helper()
	tl, _ := cat.Tool(req.Tool)
	var p credits.Plan
	if req.Plan != "" {
		p, _ = cat.Plan(req.Plan)
	}
	base := tl.Price
	if tl.Unit == credits.UnitSecond {
		base = tl.Rates[req.Resolution]
	}
	rate := base
	o, overridden := p.Overrides[tl.ID]
	switch {
	case overridden && tl.Unit == credits.UnitImage && o.Price.IsPositive():
		rate = o.Price
	case overridden && tl.Unit == credits.UnitSecond && o.Rates[req.Resolution].IsPositive():
		rate = o.Rates[req.Resolution]
	default:
		r := new(big.Int).Mul(big.NewInt(base.Units()), big.NewInt(10000-p.DiscountBasisPoints))
		rate = credits.FromUnits(r.Quo(r, big.NewInt(10000)).Int64())
	}
	total := new(big.Int)
	switch tl.Unit {
	case credits.UnitImage:
		n := req.Images
		if n == 0 {
			n = 1
		}
		if q.Images != n || q.Duration != 0 || q.BilledDuration != 0 || q.Resolution != "" {
			t.Fatalf("image quote %+v for %+v", q, req)
		}
		total.Mul(big.NewInt(rate.Units()), big.NewInt(int64(n)))
	case credits.UnitSecond:
		inc := time.Duration(tl.IncrementMillis) * time.Millisecond
		n, rem := req.Duration/inc, req.Duration%inc
		switch tl.Rounding {
		case credits.RoundUp:
			if rem > 0 {
				n++
			}
		case credits.RoundNearest:
			if 2*rem >= inc {
				n++
			}
		}
		if n == 0 {
			n = 1
		}
		billed := n * inc
		if q.Duration != req.Duration || q.BilledDuration != billed || q.Increment != inc || q.Rounding != tl.Rounding ||
			q.Resolution != req.Resolution || q.Images != 0 {
			t.Fatalf("per-second quote %+v for %+v: want billed %v at increment %v", q, req, billed, inc)
		}
		total.Mul(big.NewInt(rate.Units()), big.NewInt(billed.Milliseconds()))
		total.Quo(total, big.NewInt(1000))
	}
	if q.Tool != tl.ID || q.Unit != tl.Unit || q.Plan != req.Plan || q.CatalogVersion != cat.Version() ||
		q.BaseRate != base || q.UnitRate != rate || !total.IsInt64() || q.Total.Units() != total.Int64() ||
		q.Total.IsNegative() || !q.ExpiresAt.After(fzNow) || q.Breakdown == "" {
		t.Fatalf("quote %+v for %+v: want base %v, rate %v, total %s millicredits", q, req, base, rate, total)
	}
}

// fzLedgerSpends reserves a quote on a ledger that prices with cat and
// captures it by usage.
func fzLedgerSpends(t *testing.T, cat *credits.Catalog, req credits.QuoteRequest, q credits.Quote, usage credits.Usage) {
	t.Helper()
	h := storetest.NewHarness(t, memstore.New(), func(c *credits.Config) {
		c.Catalog = cat
		c.Signup = credits.Reward{}
	})
	h.Account(t, credits.CreateAccountRequest{ID: "a", Plan: req.Plan})
	fund := credits.FromUnits(credits.MaxUnits) // less the plan's allowance, which joining the plan granted
	if p, _ := cat.Plan(req.Plan); p.Allowance != nil {
		fund = credits.FromUnits(credits.MaxUnits - p.Allowance.Amount.Units())
	}
	if _, err := h.Ledger.Grant(h.Ctx, credits.GrantRequest{Account: "a", Amount: fund, Kind: credits.KindPurchase, Key: "fund"}); err != nil {
		t.Fatal(err)
	}
	lq, err := h.Ledger.Quote(req)
	if err != nil || !reflect.DeepEqual(lq, q) {
		t.Fatalf("Ledger.Quote(%+v) = %+v, %v; the catalog says %+v", req, lq, err, q)
	}
	forAccount := req
	forAccount.Plan = "" // the account's plan applies
	if aq, err := h.Ledger.QuoteFor(h.Ctx, "a", forAccount); err != nil || !reflect.DeepEqual(aq, q) {
		t.Fatalf("Ledger.QuoteFor(a on plan %q, %+v) = %+v, %v; the catalog says %+v", req.Plan, forAccount, aq, err, q)
	}
	res, err := h.Ledger.Reserve(h.Ctx, credits.ReserveRequest{Account: "a", Quote: q, Key: "r"})
	if q.Total.IsZero() {
		if !errors.Is(err, credits.ErrInvalidAmount) {
			t.Fatalf("Reserve of a zero quote: %v, want ErrInvalidAmount", err)
		}
		return
	}
	if err != nil || res.Hold.Amount != q.Total {
		t.Fatalf("Reserve(%+v) = %+v, %v", q, res, err)
	}
	want, capped, costErr := q.Cost(usage)
	if usage == (credits.Usage{}) {
		want, capped = q.Total, false
	}
	ch, err := h.Ledger.Capture(h.Ctx, credits.CaptureRequest{Hold: res.Hold.ID, Usage: usage})
	switch {
	case usage.Duration < 0 || usage.Images < 0 || costErr != nil:
		if !errors.Is(err, credits.ErrInvalidRequest) {
			t.Fatalf("Capture with usage %+v = %+v, %v; want ErrInvalidRequest (Cost: %v)", usage, ch, err, costErr)
		}
	case err != nil || ch.Charged != want || ch.Capped != capped:
		t.Fatalf("Capture with usage %+v = %+v, %v; want %v (capped %v)", usage, ch, err, want, capped)
	}
	storetest.CheckInvariants(t, h, "a")
}

// ---- the ledger ----

// fzAccounts are the accounts FuzzLedger acts on; "team" is a team account
// of m1 and m2. Any of them may be created (or not yet) when an operation
// names it.
var fzAccounts = []string{"solo", "duo", "team", "ghost"}

// fzSentinels are every error the ledger returns for a domain outcome.
var fzSentinels = []error{
	credits.ErrInvalidAmount, credits.ErrOverflow, credits.ErrInvalidRequest, credits.ErrInsufficientCredits,
	credits.ErrUnknownAccount, credits.ErrAccountExists, credits.ErrUnknownTool, credits.ErrUnknownResolution,
	credits.ErrUnknownPlan, credits.ErrUnknownHold, credits.ErrHoldExpired, credits.ErrHoldSettled,
	credits.ErrNotCaptured, credits.ErrExceedsHold, credits.ErrRefundExceedsCharge, credits.ErrQuoteExpired,
	credits.ErrQuoteMismatch, credits.ErrNotMember, credits.ErrIdempotencyConflict, credits.ErrDailyUnavailable,
}

// fzRecordedRefusals are the refusals a mutation under a caller's key
// records, so that a retry fails the same way.
var fzRecordedRefusals = []error{
	credits.ErrInsufficientCredits, credits.ErrHoldExpired, credits.ErrHoldSettled, credits.ErrNotCaptured,
	credits.ErrRefundExceedsCharge, credits.ErrNotMember,
}

// fzQuoteRequests are the quotes FuzzLedger spends, on the default catalog.
var fzQuoteRequests = []credits.QuoteRequest{
	{Tool: "image"},
	{Tool: "image", Images: 16},
	{Tool: "upscale"},
	{Tool: "video", Resolution: "480p", Duration: 1500 * time.Millisecond},
	{Tool: "video", Resolution: "720p", Duration: 10 * time.Minute},
	{Tool: "video-pro", Resolution: "1080p", Duration: 10 * time.Minute},
	{Tool: "avatar-video", Resolution: "480p", Duration: time.Second},
	{Tool: "image", Images: 2, Plan: "studio"},
	{Tool: "video-pro", Resolution: "720p", Duration: 7 * time.Second, Plan: "pro"},
	{Tool: "video", Resolution: "1080p", Duration: 3200 * time.Millisecond, Plan: "studio"},
}

// fzGrantAmount decodes a grant amount, from invalid through tiny to the
// int64 limit.
func fzGrantAmount(sel, x, y byte) credits.Credits {
	const max = credits.MaxUnits
	switch sel % 16 {
	case 0:
		return credits.Credits{}
	case 1:
		return credits.FromUnits(-1)
	case 2:
		return credits.FromUnits(1)
	case 3:
		return credits.Whole(1)
	case 4:
		return credits.MustParse("7.5")
	case 5:
		return credits.Whole(50)
	case 6:
		return credits.Whole(1000)
	case 7:
		return credits.FromUnits(max / 2)
	case 8:
		return credits.FromUnits(max/2 + 1)
	case 9:
		return credits.FromUnits(max - 1)
	case 10:
		return credits.FromUnits(max)
	case 11:
		return credits.FromUnits(max - 50*credits.UnitsPerCredit) // fills up an account holding its signup
	}
	return credits.FromUnits(int64(x)*int64(y)*37 + 1)
}

type fzCall struct {
	desc    string
	account string  // the account it acts on ("" when unknown)
	rec     string  // the idempotency record it runs under ("" when none)
	userKey bool    // rec is the caller's key
	origin  *fzCall // the first call of this request; retries share it
	do      func() (any, error)
	// check verifies a successful first run against the balances before
	// and after it; nil checks nothing more.
	check func(before, after credits.Balance, res any) string
	res   any
	err   error
}

// fzRecordable reports whether c's outcome is stored under its record.
func (c *fzCall) recordable(res any, err error) bool {
	if c.rec == "" {
		return false
	}
	if err == nil {
		return !fzReplayed(res)
	}
	return c.userKey && fzIsOneOf(err, fzRecordedRefusals)
}

type fzHold struct {
	id, account string
	quote       credits.Quote
}

type fzSnap struct {
	bal     credits.Balance
	entries int
}

type fzLedger struct {
	t       *testing.T
	h       *storetest.Harness
	created []string
	holds   []fzHold
	quotes  []credits.Quote
	calls   []*fzCall
	records map[string]*fzCall // account + "\x00" + record → the call whose outcome it stores
	log     []string
}

func (fz *fzLedger) fatalf(format string, args ...any) {
	fz.t.Helper()
	fz.t.Fatalf("%s\nafter the steps:\n  %s", fmt.Sprintf(format, args...), strings.Join(fz.log, "\n  "))
}

func fzReplayed(res any) bool {
	v := reflect.ValueOf(res)
	if !v.IsValid() {
		return false
	}
	f := v.FieldByName("Replayed")
	return f.IsValid() && f.Bool()
}

// fzFirst returns res as its first run returned it: Replayed cleared.
func fzFirst(res any) any {
	v := reflect.ValueOf(res)
	if !v.IsValid() || !v.FieldByName("Replayed").IsValid() {
		return res
	}
	c := reflect.New(v.Type()).Elem()
	c.Set(v)
	c.FieldByName("Replayed").SetBool(false)
	return c.Interface()
}

func (fz *fzLedger) snapshot() map[string]fzSnap {
	out := make(map[string]fzSnap, len(fz.created))
	for _, a := range fz.created {
		b, err := fz.h.Ledger.Balance(fz.h.Ctx, a)
		if err != nil {
			fz.fatalf("Balance(%q): %v", a, err)
		}
		es, err := fz.h.Store.Entries(fz.h.Ctx, credits.EntryFilter{Account: a})
		if err != nil {
			fz.fatalf("Entries(%q): %v", a, err)
		}
		out[a] = fzSnap{bal: b, entries: len(es)}
	}
	return out
}

// unchanged fails unless account a's projected balance is as it was and
// its history grew only by expiries that had fallen due, and the signals
// they raise (a balance that fell below its threshold, or recovered; a
// grant about to expire).
func (fz *fzLedger) unchanged(what, a string, before, after fzSnap) {
	fz.t.Helper()
	if !reflect.DeepEqual(before.bal, after.bal) { // cmp.Diff only to explain: it is slow
		fz.fatalf("%s changed the balance of %q (-before +after):\n%s", what, a, cmp.Diff(before.bal, after.bal))
	}
	if after.entries == before.entries {
		return
	}
	es, err := fz.h.Store.Entries(fz.h.Ctx, credits.EntryFilter{Account: a, AfterSeq: int64(before.entries)})
	if err != nil {
		fz.fatalf("Entries(%q): %v", a, err)
	}
	for _, e := range es {
		switch e.Type {
		case credits.EntryExpiry, credits.EntryHoldExpired, credits.EntryBalanceLow, credits.EntryBalanceRecovered, credits.EntryGrantExpiring:
		default:
			fz.fatalf("%s wrote a %s entry of %s on %q", what, e.Type, e.Amount, a)
		}
	}
}

func (fz *fzLedger) exists(a string) bool { return slices.Contains(fz.created, a) }

// run makes call c (a first call, or a retry of an earlier one) and checks
// what it did.
func (fz *fzLedger) run(c *fzCall) {
	fz.t.Helper()
	fz.log = append(fz.log, c.desc)
	before := fz.snapshot()
	res, err := c.do()
	if res != nil && c.account != "" && !fz.exists(c.account) && err == nil {
		if _, ok := res.(credits.AccountResult); ok {
			fz.created = append(fz.created, c.account)
		}
	}
	after := fz.snapshot()
	fz.log[len(fz.log)-1] += fmt.Sprintf(" → err=%v", err)
	for _, a := range fz.created {
		storetest.CheckInvariants(fz.t, fz.h, a)
	}

	if err != nil && !fzIsOneOf(err, fzSentinels) {
		fz.fatalf("%s: error %v matches no sentinel", c.desc, err)
	}
	if err != nil && res != nil && !reflect.ValueOf(fzFirst(res)).IsZero() {
		fz.fatalf("%s: failed with %v but returned %+v", c.desc, err, res)
	}
	newEffect := err == nil && !fzReplayed(res)
	for a, b := range before {
		if newEffect && a == c.account {
			continue
		}
		fz.unchanged(c.desc, a, b, after[a])
	}
	if newEffect && c.check != nil {
		b0 := before[c.account].bal
		if msg := c.check(b0, after[c.account].bal, res); msg != "" {
			fz.fatalf("%s: %s\nbefore %+v\nafter  %+v\nresult %+v", c.desc, msg, b0, after[c.account].bal, res)
		}
	}
	if err == nil && fzReplayed(res) && c.rec == "" {
		fz.fatalf("%s: replayed without an idempotency record", c.desc)
	}

	// Idempotency: under a record that holds an outcome, the call replays
	// it — or, for a different request, is refused without effect.
	if c.rec == "" || c.account == "" {
		return
	}
	rk := c.account + "\x00" + c.rec
	first := fz.records[rk]
	if first == nil {
		if c.recordable(res, err) {
			fz.records[rk] = c
			c.res, c.err = res, err
		} else if err == nil && fzReplayed(res) {
			fz.fatalf("%s: replayed a result no call of this run recorded", c.desc)
		}
		return
	}
	// A replayed refusal is the first refusal, said to be a replay.
	var re *credits.ReplayedError
	sameErr := err == nil && first.err == nil ||
		err != nil && first.err != nil && errors.As(err, &re) && re.Err.Error() == first.err.Error()
	same := sameErr && reflect.DeepEqual(fzFirst(res), first.res) && (first.err != nil || fzReplayed(res))
	if same {
		return
	}
	var refusal error
	switch {
	case c.userKey:
		refusal = credits.ErrIdempotencyConflict
	case c.rec == "create":
		refusal = credits.ErrAccountExists
	case strings.HasPrefix(c.rec, "capture:") || strings.HasPrefix(c.rec, "release:"):
		refusal = credits.ErrHoldSettled
	}
	// The identical request (a retry of the call that recorded the outcome,
	// or the same request made again) must replay it.
	// A different request may also be refused by validation, before any
	// record is looked up.
	refused := refusal != nil && errors.Is(err, refusal) ||
		errors.Is(err, credits.ErrInvalidAmount) || errors.Is(err, credits.ErrInvalidRequest)
	if c.origin == first.origin || first.desc == c.desc || !refused {
		fz.fatalf("%s under record %q: got %+v, %v; the first call (%s) got %+v, %v", c.desc, c.rec, res, err, first.desc, first.res, first.err)
	}
}

// quote decodes a quote to spend: fresh, an earlier one (maybe expired),
// or one altered after the catalog made it.
func (fz *fzLedger) quote(sel byte) (credits.Quote, string) {
	req := fzQuoteRequests[int(sel>>4)%len(fzQuoteRequests)]
	if sel%16 < 10 {
		req = fzQuoteRequests[sel%16]
	}
	q, err := fz.h.Ledger.Quote(req)
	if err != nil {
		fz.fatalf("Quote(%+v): %v", req, err)
	}
	switch sel % 16 {
	case 10, 11:
		if len(fz.quotes) > 0 {
			old := fz.quotes[int(sel>>4)%len(fz.quotes)]
			return old, fmt.Sprintf("old quote %s %s (expires %s)", old.Tool, old.Total, old.ExpiresAt.Format(time.TimeOnly))
		}
	case 12:
		q.Total = credits.FromUnits(q.Total.Units() + 1)
		return q, "forged quote " + q.Total.String()
	case 13:
		q.Total = credits.FromUnits(credits.MaxUnits)
		return q, "forged quote of MaxUnits"
	case 14:
		q.CatalogVersion = "other"
		return q, "quote of another catalog"
	case 15:
		q.Total = credits.Credits{}
		return q, "zero quote"
	}
	fz.quotes = append(fz.quotes, q)
	return q, fmt.Sprintf("quote %s %s", q.Tool, q.Total)
}

// hold decodes a hold: one made earlier, or (sel ≥ 0xf0) one that does not
// exist.
func (fz *fzLedger) hold(sel byte) fzHold {
	if len(fz.holds) == 0 || sel >= 0xf0 {
		return fzHold{id: "hold_nope"}
	}
	return fz.holds[int(sel)%len(fz.holds)]
}

func fzKey(sel byte) string { return fmt.Sprintf("k%d", sel%8) }

func fzDelta(b0, b1 credits.Balance, avail, held, granted, spent, availPlusExpired int64) string {
	got := [4]int64{b1.Held.Units() - b0.Held.Units(), b1.Granted.Units() - b0.Granted.Units(),
		b1.Spent.Units() - b0.Spent.Units(), b1.Available.Units() + b1.Expired.Units() - b0.Available.Units() - b0.Expired.Units()}
	want := [4]int64{held, granted, spent, availPlusExpired}
	if got != want {
		return fmt.Sprintf("changes [held granted spent available+expired] by %v, want %v", got, want)
	}
	if avail != math.MinInt64 && b1.Available.Units()-b0.Available.Units() != avail {
		return fmt.Sprintf("changes available by %d, want %d", b1.Available.Units()-b0.Available.Units(), avail)
	}
	return ""
}

// step decodes one operation from four bytes and runs it.
func (fz *fzLedger) step(op, a, b, c byte) {
	h := fz.h
	acct := fzAccounts[a%4]
	switch op % 12 {
	case 0: // create an account
		req := credits.CreateAccountRequest{ID: acct}
		if acct == "team" {
			req.Team, req.Members = true, []string{"m1", "m2"}
		}
		switch b % 3 {
		case 1:
			req.LowBalanceThreshold = credits.Whole(20)
		case 2:
			req.Metadata = map[string]string{"plan": "pro"}
		}
		signup := credits.Whole(50)
		if req.Team {
			signup = credits.Credits{}
		}
		fz.add(&fzCall{desc: fmt.Sprintf("create %s (variant %d)", acct, b%3), account: acct, rec: "create",
			do: func() (any, error) { return h.Ledger.CreateAccount(h.Ctx, req) },
			check: func(_, b1 credits.Balance, _ any) string {
				if b1.Available != signup || b1.Granted != signup {
					return "a new account does not hold exactly its signup grant"
				}
				return ""
			}})

	case 1: // grant
		kinds := []credits.GrantKind{credits.KindPurchase, credits.KindPromo, credits.KindDaily, credits.KindAdjustment, credits.KindPlan, "bogus"}
		kind := kinds[int(a>>2)%len(kinds)]
		now := h.Clock.Now()
		expiries := []time.Time{{}, {}, now.Add(time.Minute), now.Add(time.Hour), now.Add(72 * time.Hour), now, now.Add(-time.Hour),
			time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)}
		exp := expiries[(a>>5)%8]
		amount := fzGrantAmount(b, b, c)
		req := credits.GrantRequest{Account: acct, Amount: amount, Kind: kind, ExpiresAt: exp, Key: fzKey(c)}
		fz.add(&fzCall{desc: fmt.Sprintf("grant %s %s %s expiring %s key %s", acct, amount, kind, exp.Format(time.RFC3339), req.Key),
			account: acct, rec: "k:" + req.Key, userKey: true,
			do: func() (any, error) { return h.Ledger.Grant(h.Ctx, req) },
			check: func(b0, b1 credits.Balance, res any) string {
				if r := res.(credits.GrantResult); r.Available != b1.Available || r.Grant.Amount != amount {
					return "the result disagrees with the balance"
				}
				return fzDelta(b0, b1, amount.Units(), 0, amount.Units(), 0, amount.Units())
			}})

	case 2: // daily reward
		day := h.Clock.Now().UTC().Format(time.DateOnly)
		fz.add(&fzCall{desc: fmt.Sprintf("claim daily %s on %s", acct, day), account: acct, rec: "daily:" + day,
			do: func() (any, error) { return h.Ledger.ClaimDaily(h.Ctx, acct) },
			check: func(b0, b1 credits.Balance, _ any) string {
				ten := credits.Whole(10).Units()
				return fzDelta(b0, b1, ten, 0, ten, 0, ten)
			}})

	case 3, 4: // reserve, charge
		member := []string{"", "m1", "m2", "x"}[(a>>2)%4]
		q, qdesc := fz.quote(b)
		key := fzKey(c)
		total := q.Total.Units()
		if op%12 == 3 {
			ttl := []time.Duration{0, time.Second, time.Minute, 7 * 24 * time.Hour, 8 * 24 * time.Hour, -time.Second}[int(a>>4)%6]
			req := credits.ReserveRequest{Account: acct, Member: member, Quote: q, TTL: ttl, Key: key}
			fz.add(&fzCall{desc: fmt.Sprintf("reserve %s member %q %s ttl %s key %s", acct, member, qdesc, ttl, key),
				account: acct, rec: "k:" + key, userKey: true,
				do: func() (any, error) {
					r, err := h.Ledger.Reserve(h.Ctx, req)
					if err == nil && !r.Replayed {
						fz.holds = append(fz.holds, fzHold{id: r.Hold.ID, account: acct, quote: q})
					}
					return r, err
				},
				check: func(b0, b1 credits.Balance, res any) string {
					if r := res.(credits.ReserveResult); r.Available != b1.Available || r.Hold.Amount != q.Total || r.Hold.Status != credits.HoldOpen {
						return "the result disagrees with the balance or the quote"
					}
					return fzDelta(b0, b1, -total, total, 0, 0, -total)
				}})
		} else {
			req := credits.ChargeRequest{Account: acct, Member: member, Quote: q, Key: key}
			fz.add(&fzCall{desc: fmt.Sprintf("charge %s member %q %s key %s", acct, member, qdesc, key),
				account: acct, rec: "k:" + key, userKey: true,
				do: func() (any, error) {
					r, err := h.Ledger.Charge(h.Ctx, req)
					if err == nil && !r.Replayed {
						fz.holds = append(fz.holds, fzHold{id: r.Hold.ID, account: acct, quote: q})
					}
					return r, err
				},
				check: func(b0, b1 credits.Balance, res any) string {
					if r := res.(credits.ChargeResult); r.Available != b1.Available || r.Charged != q.Total {
						return "the result disagrees with the balance or the quote"
					}
					return fzDelta(b0, b1, -total, 0, 0, total, -total)
				}})
		}

	case 5: // capture
		hd := fz.hold(b)
		amt := hd.quote.Total.Units()
		req := credits.CaptureRequest{Hold: hd.id}
		switch a % 8 {
		case 1:
			req.Amount = credits.FromUnits(amt * int64(c) / 255)
		case 2:
			req.Amount = credits.FromUnits(amt + 1)
		case 3:
			req.Amount = credits.FromUnits(credits.MaxUnits)
		case 4:
			req.Amount = credits.FromUnits(-1)
		case 5:
			req.Usage.Duration = time.Duration(c) * 100 * time.Millisecond
		case 6:
			req.Usage.Images = int(c % 20)
		case 7:
			if c%2 == 0 {
				req.Usage.Duration = math.MaxInt64
			} else {
				req.Usage.Images = math.MaxInt
			}
		}
		rec := "capture:" + hd.id
		if a&8 != 0 {
			req.Key = fzKey(c)
			rec = "k:" + req.Key
		}
		fz.add(&fzCall{desc: fmt.Sprintf("capture %s of %s amount %s usage %+v key %q", hd.id, hd.account, req.Amount, req.Usage, req.Key),
			account: hd.account, rec: rec, userKey: req.Key != "",
			do: func() (any, error) { return h.Ledger.Capture(h.Ctx, req) },
			check: func(b0, b1 credits.Balance, res any) string {
				r := res.(credits.ChargeResult)
				want := req.Amount
				switch {
				case req.Amount.IsZero() && req.Usage == (credits.Usage{}):
					want = hd.quote.Total
				case req.Amount.IsZero():
					cost, _, err := hd.quote.Cost(req.Usage)
					if err != nil {
						return "captured a usage Cost refuses: " + err.Error()
					}
					want = cost
				}
				if r.Charged != want || r.Charged.Units()+r.Released.Units() != amt || r.Available != b1.Available {
					return fmt.Sprintf("charged %s released %s of a hold of %s; want charged %s", r.Charged, r.Released, hd.quote.Total, want)
				}
				return fzDelta(b0, b1, math.MinInt64, -amt, 0, r.Charged.Units(), r.Released.Units())
			}})

	case 6: // release
		hd := fz.hold(b)
		req := credits.ReleaseRequest{Hold: hd.id, Reason: "job failed"}
		account, rec := hd.account, "release:"+hd.id
		switch c % 10 {
		case 8:
		case 9: // naming another account than the hold's
			account = fzAccounts[(slices.Index(fzAccounts, hd.account)+1)%4]
			req.Account = account
		default:
			req.Key = fzKey(c)
			rec = "k:" + req.Key
		}
		fz.add(&fzCall{desc: fmt.Sprintf("release %s of %s account %q key %q", hd.id, hd.account, req.Account, req.Key),
			account: account, rec: rec, userKey: req.Key != "",
			do: func() (any, error) { return h.Ledger.Release(h.Ctx, req) },
			check: func(b0, b1 credits.Balance, res any) string {
				r := res.(credits.ReleaseResult)
				amt := hd.quote.Total.Units()
				if r.Released != hd.quote.Total || r.Available != b1.Available {
					return "released other than the hold"
				}
				return fzDelta(b0, b1, math.MinInt64, -amt, 0, 0, amt)
			}})

	case 7: // refund
		hd := fz.hold(b)
		amounts := []credits.Credits{{}, credits.FromUnits(1), credits.FromUnits(hd.quote.Total.Units() / 2), hd.quote.Total,
			credits.FromUnits(credits.MaxUnits), credits.FromUnits(-1)}
		req := credits.RefundRequest{Charge: hd.id, Amount: amounts[a%6], Key: fzKey(c), Reason: "bad output"}
		fz.add(&fzCall{desc: fmt.Sprintf("refund %s of %s amount %s key %s", hd.id, hd.account, req.Amount, req.Key),
			account: hd.account, rec: "k:" + req.Key, userKey: true,
			do: func() (any, error) { return h.Ledger.Refund(h.Ctx, req) },
			check: func(b0, b1 credits.Balance, res any) string {
				r := res.(credits.RefundResult)
				if !r.Refunded.IsPositive() || (!req.Amount.IsZero() && r.Refunded != req.Amount) || r.Available != b1.Available {
					return "refunded other than asked"
				}
				n := r.Refunded.Units()
				return fzDelta(b0, b1, math.MinInt64, 0, 0, -n, n)
			}})

	case 8: // sweep
		fz.add(&fzCall{desc: "sweep", do: func() (any, error) {
			r, err := h.Ledger.Sweep(h.Ctx)
			return r, err
		}})

	case 9: // move the clock, backwards too, or exactly to a hold's deadline
		steps := []time.Duration{time.Second, 59 * time.Second, time.Hour, 24 * time.Hour, 49 * time.Hour, 31 * 24 * time.Hour,
			-time.Second, -time.Hour, -25 * time.Hour}
		if i := int(a) % (len(steps) + 1); i < len(steps) {
			h.Clock.Advance(steps[i])
		} else if hd := fz.hold(b); hd.account != "" {
			st, err := h.Store.View(h.Ctx, credits.Query{Account: hd.account, Holds: []string{hd.id}})
			if err == nil && st.Holds[hd.id] != nil {
				h.Clock.Set(st.Holds[hd.id].Deadline.Add(time.Duration(int(c%3)-1) * time.Nanosecond))
			}
		}
		fz.log = append(fz.log, "clock now "+h.Clock.Now().Format(time.RFC3339Nano))

	case 10: // retry an earlier call: the identical request
		if len(fz.calls) == 0 {
			return
		}
		prev := fz.calls[(int(b)<<8|int(c))%len(fz.calls)]
		retry := *prev
		retry.desc = "retry of: " + prev.desc
		retry.res, retry.err = nil, nil
		if strings.HasPrefix(retry.rec, "daily:") { // a claim is today's claim
			retry.rec = "daily:" + h.Clock.Now().UTC().Format(time.DateOnly)
		}
		fz.run(&retry)

	case 11: // team membership
		req := credits.MembersRequest{Account: acct}
		switch b % 4 {
		case 0:
			req.Add = []string{"m3"}
		case 1:
			req.Remove = []string{"m1"}
		case 2:
			req.Add = []string{"m1"}
		case 3:
			req.Add, req.Remove = []string{"x"}, []string{"x"}
		}
		fz.add(&fzCall{desc: fmt.Sprintf("members %s +%v -%v", acct, req.Add, req.Remove), account: acct,
			do: func() (any, error) {
				_, err := h.Ledger.UpdateMembers(h.Ctx, req)
				return nil, err
			},
			check: func(b0, b1 credits.Balance, _ any) string { return fzDelta(b0, b1, 0, 0, 0, 0, 0) }})
	}
}

func (fz *fzLedger) add(c *fzCall) {
	c.origin = c
	fz.calls = append(fz.calls, c)
	fz.run(c)
}

// FuzzLedger decodes the input into a sequence of ledger operations — create
// accounts (a team too), grants (from 1 millicredit to the int64 limit, with
// and without expiry, valid or not), daily claims, reserves and charges
// (fresh, expired, forged and zero quotes; members and outsiders), captures
// (as quoted, by amount, by usage, above the hold, at the limit), releases,
// refunds (partial, whole, excessive), sweeps, clock moves (backwards too,
// and to a hold's exact deadline), membership changes and retries of earlier
// calls, with a small key space so that keys collide — and runs them on a
// memstore ledger with a manual clock. After every operation: every
// invariant of every account (storetest.CheckInvariants); a failed or
// replayed call changed no balance and wrote no history but due expiries;
// a new effect changed the balances by exactly its amounts; and a call
// under an idempotency record that holds an outcome replays that outcome,
// or, for a different request, is refused with the documented error.
func FuzzLedger(f *testing.F) {
	for _, seed := range [][]byte{
		// create solo, grant, reserve, capture by usage, refund half, retry the refund.
		{0, 0, 0, 0, 1, 0, 6, 1, 3, 0, 3, 2, 5, 5, 0, 10, 7, 2, 0, 3, 10, 0, 0, 4},
		// team: create, fund, outsider and member reserves, release, the clock to a deadline, sweep.
		{0, 2, 0, 0, 1, 2, 6, 0, 3, 14, 0, 1, 3, 6, 1, 2, 6, 0, 0, 8, 3, 10, 0, 3, 9, 9, 1, 1, 8, 0, 0, 0},
		// the int64 limit: a MaxUnits grant, overflow, charge, refunds, overflow again, retry, membership.
		{0, 2, 0, 0, 1, 2, 10, 0, 1, 2, 2, 1, 4, 6, 0, 2, 7, 4, 0, 3, 7, 0, 0, 4, 1, 2, 2, 5, 10, 0, 0, 2,
			11, 2, 1, 0, 4, 6, 0, 6},
		// an expiring grant, a hold across its expiry released into the restore grace, the
		// clock backwards, daily claims on several days.
		{0, 0, 0, 0, 1, 100, 6, 0, 3, 48, 8, 1, 9, 2, 0, 0, 6, 0, 0, 2, 9, 8, 0, 0, 2, 0, 0, 0, 9, 3, 0, 0,
			2, 0, 0, 0, 9, 7, 0, 0, 2, 0, 0, 0, 8, 0, 0, 0},
		// keys reused across operations, forged and old quotes.
		{0, 0, 1, 0, 4, 0, 12, 1, 4, 0, 13, 1, 4, 0, 0, 1, 1, 0, 3, 1, 3, 0, 10, 2, 9, 3, 0, 0, 4, 0, 10, 3, 10, 0, 0, 3},
		// holds at their exact deadline: a nanosecond before, at it; capture, retry, sweep.
		{0, 0, 0, 0, 3, 16, 6, 0, 9, 9, 0, 0, 5, 0, 0, 0, 3, 16, 0, 1, 9, 9, 1, 1, 5, 8, 1, 2, 10, 0, 0, 4, 8, 0, 0, 0},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const maxSteps = 64
		if len(data) > 4*maxSteps {
			data = data[:4*maxSteps]
		}
		fz := &fzLedger{t: t, h: storetest.NewHarness(t, memstore.New(), nil), records: map[string]*fzCall{}}
		for i := 0; i+4 <= len(data); i += 4 {
			fz.step(data[i], data[i+1], data[i+2], data[i+3])
		}
		if testing.Verbose() {
			t.Logf("steps:\n  %s", strings.Join(fz.log, "\n  "))
		}
	})
}

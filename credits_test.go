package credits_test

import (
	"database/sql"
	"database/sql/driver"
	"encoding"
	"encoding/json"
	"errors"
	"math"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/creditkit/credits"
	"github.com/shopspring/decimal"
	"pgregory.net/rapid"
)

var (
	_ driver.Valuer            = credits.Credits{}
	_ sql.Scanner              = (*credits.Credits)(nil)
	_ json.Unmarshaler         = (*credits.Credits)(nil)
	_ encoding.TextMarshaler   = credits.Credits{}
	_ encoding.TextUnmarshaler = (*credits.Credits)(nil)
)

func TestCreditsParseFormat(t *testing.T) {
	tests := []struct {
		in    string
		units int64
		out   string // String() of the parsed value
	}{
		{"0", 0, "0"},
		{"-0", 0, "0"},
		{"-0.0", 0, "0"},
		{"0e99", 0, "0"},
		{"0.0e99999999999", 0, "0"},     // an exponent beyond the decimal library: still zero
		{"0e\u221299999999999", 0, "0"}, // with the minus the decimal library also reads (found by review)
		{"0e\u22125", 0, "0"},
		{"7", 7000, "7"},
		{"2.5", 2500, "2.5"},
		{"0.125", 125, "0.125"},
		{"0.001", 1, "0.001"},
		{"-0.001", -1, "-0.001"},
		{"-3", -3000, "-3"},
		{"12.340", 12340, "12.34"},
		{"0.1230", 123, "0.123"},
		{"1e3", 1_000_000, "1000"},
		{"1E3", 1_000_000, "1000"},
		{"1.5e-2", 15, "0.015"},
		{"123456789.987", 123456789987, "123456789.987"},
		{"9223372036854775.807", math.MaxInt64, "9223372036854775.807"},
		{"-9223372036854775.807", -math.MaxInt64, "-9223372036854775.807"},
		{"-9223372036854775.808", math.MinInt64, "-9223372036854775.808"},
	}
	for _, tt := range tests {
		c, err := credits.Parse(tt.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		if c.Units() != tt.units {
			t.Errorf("Parse(%q) = %d units, want %d", tt.in, c.Units(), tt.units)
		}
		if got := c.String(); got != tt.out {
			t.Errorf("Parse(%q).String() = %q, want %q", tt.in, got, tt.out)
		}
		back, err := credits.Parse(c.String())
		if err != nil || back != c {
			t.Errorf("Parse(%q) = %v, %v; want %v", c.String(), back, err, c)
		}
		if d := c.Decimal().String(); d != tt.out {
			t.Errorf("Parse(%q).Decimal() = %s, want %s", tt.in, d, tt.out)
		}
	}
}

func TestCreditsParseErrors(t *testing.T) {
	tests := []struct {
		in   string
		want error
	}{
		{"", credits.ErrInvalidAmount},
		{"abc", credits.ErrInvalidAmount},
		{"-", credits.ErrInvalidAmount},
		{"1.2.3", credits.ErrInvalidAmount},
		{"0x10", credits.ErrInvalidAmount},
		{"NaN", credits.ErrInvalidAmount},
		{"Inf", credits.ErrInvalidAmount},
		{" 1", credits.ErrInvalidAmount},
		{"1 ", credits.ErrInvalidAmount},
		{"1\n", credits.ErrInvalidAmount},
		{"1_000", credits.ErrInvalidAmount},
		{"１", credits.ErrInvalidAmount},
		{"0.1234", credits.ErrInvalidAmount},  // inexact: never rounded
		{"0.0005", credits.ErrInvalidAmount},  // inexact
		{"-0.0001", credits.ErrInvalidAmount}, // inexact
		{"1e-4", credits.ErrInvalidAmount},
		{"1e-200", credits.ErrInvalidAmount},
		{"1" + strings.Repeat("0", 64), credits.ErrInvalidAmount}, // longer than any exact amount
		{"9223372036854775.808", credits.ErrOverflow},
		{"-9223372036854775.809", credits.ErrOverflow},
		{"9223372036854776", credits.ErrOverflow},
		{"99999999999999999999", credits.ErrOverflow},
		{"1e16", credits.ErrOverflow},
		{"1e31", credits.ErrOverflow},
		{"-1e9999", credits.ErrOverflow},
		// Exponents beyond what the decimal library holds.
		{"1e2147483647", credits.ErrOverflow},
		{"-2.5E+99999999999999999999", credits.ErrOverflow},
		{"1e-2147483649", credits.ErrInvalidAmount},
		{"1e\u221299999999999", credits.ErrInvalidAmount},
		{"\u22121e99999999999", credits.ErrOverflow},
		{"1e+-5", credits.ErrInvalidAmount},
		{"1e5e99999999999", credits.ErrInvalidAmount},
		{"xe99999999999", credits.ErrInvalidAmount},
	}
	for _, tt := range tests {
		c, err := credits.Parse(tt.in)
		if !errors.Is(err, tt.want) {
			t.Errorf("Parse(%q) = %v, %v; want an error matching %v", tt.in, c, err, tt.want)
		}
		if err != nil && !c.IsZero() {
			t.Errorf("Parse(%q) returned %v with its error", tt.in, c)
		}
	}
}

func TestCreditsMustParseAndWholePanic(t *testing.T) {
	if got := credits.MustParse("2.5"); got != credits.FromUnits(2500) {
		t.Errorf("MustParse(2.5) = %v", got)
	}
	if got := credits.Whole(-4); got != credits.FromUnits(-4000) {
		t.Errorf("Whole(-4) = %v", got)
	}
	for name, f := range map[string]func(){
		"MustParse(0.1234)":      func() { credits.MustParse("0.1234") },
		"Whole(MaxInt64/1000+1)": func() { credits.Whole(math.MaxInt64/1000 + 1) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s did not panic", name)
				}
			}()
			f()
		}()
	}
}

func TestCreditsFromInt(t *testing.T) {
	tests := []struct {
		n     int64
		units int64
		err   error
	}{
		{0, 0, nil},
		{7, 7000, nil},
		{-7, -7000, nil},
		{math.MaxInt64 / 1000, math.MaxInt64 / 1000 * 1000, nil},
		{math.MinInt64 / 1000, math.MinInt64 / 1000 * 1000, nil},
		{math.MaxInt64/1000 + 1, 0, credits.ErrOverflow},
		{math.MinInt64/1000 - 1, 0, credits.ErrOverflow},
		{math.MaxInt64, 0, credits.ErrOverflow},
		{math.MinInt64, 0, credits.ErrOverflow},
	}
	for _, tt := range tests {
		c, err := credits.FromInt(tt.n)
		if !errors.Is(err, tt.err) || (tt.err == nil && err != nil) {
			t.Errorf("FromInt(%d) error = %v, want %v", tt.n, err, tt.err)
			continue
		}
		if c.Units() != tt.units {
			t.Errorf("FromInt(%d) = %d units, want %d", tt.n, c.Units(), tt.units)
		}
	}
}

func TestCreditsArithmeticLimits(t *testing.T) {
	u := credits.FromUnits
	const maxI, minI = math.MaxInt64, math.MinInt64
	type op struct {
		name string
		f    func() (credits.Credits, error)
		want int64
		err  error
	}
	ops := []op{
		{"max+0", func() (credits.Credits, error) { return u(maxI).Add(u(0)) }, maxI, nil},
		{"max-1+1", func() (credits.Credits, error) { return u(maxI - 1).Add(u(1)) }, maxI, nil},
		{"max+1", func() (credits.Credits, error) { return u(maxI).Add(u(1)) }, 0, credits.ErrOverflow},
		{"max+max", func() (credits.Credits, error) { return u(maxI).Add(u(maxI)) }, 0, credits.ErrOverflow},
		{"min+-1", func() (credits.Credits, error) { return u(minI).Add(u(-1)) }, 0, credits.ErrOverflow},
		{"min+min", func() (credits.Credits, error) { return u(minI).Add(u(minI)) }, 0, credits.ErrOverflow},
		{"min+max", func() (credits.Credits, error) { return u(minI).Add(u(maxI)) }, -1, nil},
		{"min-0", func() (credits.Credits, error) { return u(minI).Sub(u(0)) }, minI, nil},
		{"min-1", func() (credits.Credits, error) { return u(minI).Sub(u(1)) }, 0, credits.ErrOverflow},
		{"0-min", func() (credits.Credits, error) { return u(0).Sub(u(minI)) }, 0, credits.ErrOverflow},
		{"-1-min", func() (credits.Credits, error) { return u(-1).Sub(u(minI)) }, maxI, nil},
		{"max-(-1)", func() (credits.Credits, error) { return u(maxI).Sub(u(-1)) }, 0, credits.ErrOverflow},
		{"max-max", func() (credits.Credits, error) { return u(maxI).Sub(u(maxI)) }, 0, nil},
		{"max×1", func() (credits.Credits, error) { return u(maxI).Mul(1) }, maxI, nil},
		{"max×2", func() (credits.Credits, error) { return u(maxI).Mul(2) }, 0, credits.ErrOverflow},
		{"max×-1", func() (credits.Credits, error) { return u(maxI).Mul(-1) }, -maxI, nil},
		{"min×-1", func() (credits.Credits, error) { return u(minI).Mul(-1) }, 0, credits.ErrOverflow},
		{"-1×min", func() (credits.Credits, error) { return u(-1).Mul(minI) }, 0, credits.ErrOverflow},
		{"1×min", func() (credits.Credits, error) { return u(1).Mul(minI) }, minI, nil},
		{"0×min", func() (credits.Credits, error) { return u(0).Mul(minI) }, 0, nil},
		{"3037000500²", func() (credits.Credits, error) { return u(3037000500).Mul(3037000500) }, 0, credits.ErrOverflow},
		{"3037000499²", func() (credits.Credits, error) { return u(3037000499).Mul(3037000499) }, 3037000499 * 3037000499, nil},
		{"-min", func() (credits.Credits, error) { return u(minI).Neg() }, 0, credits.ErrOverflow},
		{"-max", func() (credits.Credits, error) { return u(maxI).Neg() }, -maxI, nil},
	}
	for _, tt := range ops {
		got, err := tt.f()
		if tt.err != nil {
			if !errors.Is(err, tt.err) {
				t.Errorf("%s: error = %v, want %v", tt.name, err, tt.err)
			}
			continue
		}
		if err != nil || got.Units() != tt.want {
			t.Errorf("%s = %d units, %v; want %d", tt.name, got.Units(), err, tt.want)
		}
	}
}

func TestCreditsCompare(t *testing.T) {
	a, b := credits.MustParse("1.5"), credits.MustParse("2")
	if a.Cmp(b) != -1 || b.Cmp(a) != 1 || a.Cmp(a) != 0 {
		t.Error("Cmp is wrong")
	}
	if !a.Less(b) || b.Less(a) || a.Less(a) {
		t.Error("Less is wrong")
	}
	if a.Min(b) != a || b.Min(a) != a {
		t.Error("Min is wrong")
	}
	z, n := credits.Credits{}, credits.MustParse("-0.001")
	if !z.IsZero() || z.IsPositive() || z.IsNegative() {
		t.Error("zero predicates are wrong")
	}
	if !a.IsPositive() || a.IsNegative() || a.IsZero() {
		t.Error("positive predicates are wrong")
	}
	if !n.IsNegative() || n.IsPositive() || n.IsZero() {
		t.Error("negative predicates are wrong")
	}
	if credits.FromUnits(credits.MaxUnits).Units() != math.MaxInt64 {
		t.Error("FromUnits(MaxUnits) is not MaxInt64 units")
	}
}

func TestCreditsMinInt64Formatting(t *testing.T) {
	c := credits.FromUnits(math.MinInt64)
	const want = "-9223372036854775.808"
	if got := c.String(); got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
	if b, _ := json.Marshal(c); string(b) != `"`+want+`"` {
		t.Errorf("json.Marshal() = %s", b)
	}
	if back, err := credits.Parse(want); err != nil || back != c {
		t.Errorf("Parse(%q) = %v, %v", want, back, err)
	}
	if got := credits.FromUnits(credits.MaxUnits).String(); got != "9223372036854775.807" {
		t.Errorf("FromUnits(MaxUnits).String() = %q", got)
	}
}

func TestCreditsJSON(t *testing.T) {
	type doc struct {
		A credits.Credits  `json:"a"`
		B credits.Credits  `json:"b"`
		C credits.Credits  `json:"c"`
		D credits.Credits  `json:"d"`
		E *credits.Credits `json:"e"`
	}
	var d doc
	in := `{"a":"2.5","b":2.5,"c":7,"d":"-0.001","e":"1e3"}`
	if err := json.Unmarshal([]byte(in), &d); err != nil {
		t.Fatal(err)
	}
	if d.A.Units() != 2500 || d.B.Units() != 2500 || d.C.Units() != 7000 || d.D.Units() != -1 || d.E == nil || d.E.Units() != 1_000_000 {
		t.Fatalf("decoded %+v", d)
	}
	out, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"a":"2.5","b":"2.5","c":"7","d":"-0.001","e":"1000"}`; string(out) != want {
		t.Errorf("Marshal = %s, want %s", out, want)
	}

	// null leaves the value unchanged.
	c := credits.Whole(5)
	if err := json.Unmarshal([]byte(`null`), &c); err != nil || c != credits.Whole(5) {
		t.Errorf("null: %v, %v", c, err)
	}

	bad := []struct {
		in   string
		want error
	}{
		{`0.1234`, credits.ErrInvalidAmount},
		{`"0.1234"`, credits.ErrInvalidAmount},
		{`0.0001`, credits.ErrInvalidAmount},
		{`"abc"`, credits.ErrInvalidAmount},
		{`""`, credits.ErrInvalidAmount},
		{`" 1"`, credits.ErrInvalidAmount},
		{`true`, credits.ErrInvalidAmount},
		{`{}`, credits.ErrInvalidAmount},
		{`[]`, credits.ErrInvalidAmount},
		{`1e400`, credits.ErrOverflow},
		{`"9223372036854775.808"`, credits.ErrOverflow},
	}
	for _, tt := range bad {
		c := credits.Whole(9)
		err := c.UnmarshalJSON([]byte(tt.in))
		if !errors.Is(err, tt.want) {
			t.Errorf("UnmarshalJSON(%s) = %v, want %v", tt.in, err, tt.want)
		}
		if c != credits.Whole(9) {
			t.Errorf("UnmarshalJSON(%s) changed the value to %v on error", tt.in, c)
		}
		var d doc
		if err := json.Unmarshal([]byte(`{"a":`+tt.in+`}`), &d); !errors.Is(err, tt.want) {
			t.Errorf("json.Unmarshal of a field %s = %v, want %v", tt.in, err, tt.want)
		}
	}
}

func TestCreditsText(t *testing.T) {
	c := credits.MustParse("-12.05")
	b, err := c.MarshalText()
	if err != nil || string(b) != "-12.05" {
		t.Fatalf("MarshalText = %s, %v", b, err)
	}
	var back credits.Credits
	if err := back.UnmarshalText(b); err != nil || back != c {
		t.Errorf("UnmarshalText = %v, %v", back, err)
	}
	if err := back.UnmarshalText([]byte("1.0001")); !errors.Is(err, credits.ErrInvalidAmount) || back != c {
		t.Errorf("UnmarshalText(1.0001) = %v (value %v)", err, back)
	}
	// As a map key, Credits marshals through its text form.
	m, err := json.Marshal(map[credits.Credits]int{credits.MustParse("2.5"): 1})
	if err != nil || string(m) != `{"2.5":1}` {
		t.Errorf("map key: %s, %v", m, err)
	}
}

func TestCreditsScanValue(t *testing.T) {
	v, err := credits.MustParse("2.5").Value()
	if err != nil || v != int64(2500) {
		t.Fatalf("Value() = %#v, %v; want int64(2500)", v, err)
	}
	if !driver.IsValue(v) {
		t.Errorf("Value() %T is not a driver.Value", v)
	}
	good := []struct {
		src   any
		units int64
	}{
		{int64(2500), 2500},
		{int64(-1), -1},
		{int64(math.MinInt64), math.MinInt64},
		{[]byte("123"), 123},
		{"-5", -5},
		{"9223372036854775807", math.MaxInt64},
		{"-9223372036854775808", math.MinInt64},
	}
	for _, tt := range good {
		var c credits.Credits
		if err := c.Scan(tt.src); err != nil || c.Units() != tt.units {
			t.Errorf("Scan(%#v) = %d units, %v; want %d", tt.src, c.Units(), err, tt.units)
		}
	}
	bad := []struct {
		src  any
		want error
	}{
		{nil, credits.ErrInvalidAmount},
		{float64(2.5), credits.ErrInvalidAmount},
		{float64(2), credits.ErrInvalidAmount},
		{true, credits.ErrInvalidAmount},
		{time.Unix(0, 0), credits.ErrInvalidAmount},
		{"2.5", credits.ErrInvalidAmount},
		{"", credits.ErrInvalidAmount},
		{[]byte("12abc"), credits.ErrInvalidAmount},
		{"9223372036854775808", credits.ErrOverflow},
		{[]byte("-99999999999999999999"), credits.ErrOverflow},
	}
	for _, tt := range bad {
		c := credits.Whole(3)
		if err := c.Scan(tt.src); !errors.Is(err, tt.want) {
			t.Errorf("Scan(%#v) = %v, want %v", tt.src, err, tt.want)
		}
		if c != credits.Whole(3) {
			t.Errorf("Scan(%#v) changed the value to %v on error", tt.src, c)
		}
	}
}

func TestCreditsDecimalBridge(t *testing.T) {
	d := decimal.RequireFromString("2.0027")
	if _, err := credits.FromDecimal(d); !errors.Is(err, credits.ErrInvalidAmount) {
		t.Errorf("FromDecimal(%s) = %v, want ErrInvalidAmount", d, err)
	}
	if c, err := credits.FromDecimal(d.RoundFloor(3)); err != nil || c.Units() != 2002 {
		t.Errorf("FromDecimal(RoundFloor) = %v, %v", c, err)
	}
	if c, err := credits.FromDecimal(d.RoundCeil(3)); err != nil || c.Units() != 2003 {
		t.Errorf("FromDecimal(RoundCeil) = %v, %v", c, err)
	}
	if _, err := credits.FromDecimal(decimal.RequireFromString("1e20")); !errors.Is(err, credits.ErrOverflow) {
		t.Errorf("FromDecimal(1e20) = %v, want ErrOverflow", err)
	}
}

// edgeInt64 draws any int64, often near zero and near the limits.
func edgeInt64() *rapid.Generator[int64] {
	return rapid.OneOf(
		rapid.Int64(),
		rapid.Int64Range(-100_000, 100_000),
		rapid.Int64Range(math.MaxInt64-10_000, math.MaxInt64),
		rapid.Int64Range(math.MinInt64, math.MinInt64+10_000),
		rapid.SampledFrom([]int64{math.MinInt64, math.MinInt64 + 1, -1, 0, 1, math.MaxInt64 - 1, math.MaxInt64}),
	)
}

func TestCreditsRapidRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := credits.FromUnits(edgeInt64().Draw(t, "units"))

		back, err := credits.Parse(c.String())
		if err != nil || back != c {
			t.Fatalf("Parse(%q) = %v, %v; want %d units", c.String(), back, err, c.Units())
		}

		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		var fromJSON credits.Credits
		if err := json.Unmarshal(b, &fromJSON); err != nil || fromJSON != c {
			t.Fatalf("JSON %s read back as %v, %v", b, fromJSON, err)
		}
		// A bare JSON number is read the same way.
		var fromNumber credits.Credits
		if err := json.Unmarshal(b[1:len(b)-1], &fromNumber); err != nil || fromNumber != c {
			t.Fatalf("JSON number %s read back as %v, %v", b[1:len(b)-1], fromNumber, err)
		}

		fromDec, err := credits.FromDecimal(c.Decimal())
		if err != nil || fromDec != c {
			t.Fatalf("FromDecimal(%s) = %v, %v", c.Decimal(), fromDec, err)
		}

		v, _ := c.Value()
		var scanned credits.Credits
		if err := scanned.Scan(v); err != nil || scanned != c {
			t.Fatalf("Scan(Value()) = %v, %v", scanned, err)
		}
	})
}

func TestCreditsRapidArithmeticMatchesBig(t *testing.T) {
	minI, maxI := big.NewInt(math.MinInt64), big.NewInt(math.MaxInt64)
	fits := func(z *big.Int) bool { return z.Cmp(minI) >= 0 && z.Cmp(maxI) <= 0 }
	check := func(t *rapid.T, op string, got credits.Credits, err error, want *big.Int) {
		if !fits(want) {
			if !errors.Is(err, credits.ErrOverflow) {
				t.Fatalf("%s = %v, %v; want ErrOverflow (exact result %s)", op, got, err, want)
			}
			return
		}
		if err != nil || got.Units() != want.Int64() {
			t.Fatalf("%s = %d units, %v; want %s", op, got.Units(), err, want)
		}
	}
	rapid.Check(t, func(t *rapid.T) {
		a, b := edgeInt64().Draw(t, "a"), edgeInt64().Draw(t, "b")
		ca, cb := credits.FromUnits(a), credits.FromUnits(b)
		ba, bb := big.NewInt(a), big.NewInt(b)

		sum, err := ca.Add(cb)
		check(t, "Add", sum, err, new(big.Int).Add(ba, bb))
		diff, err := ca.Sub(cb)
		check(t, "Sub", diff, err, new(big.Int).Sub(ba, bb))
		prod, err := ca.Mul(b)
		check(t, "Mul", prod, err, new(big.Int).Mul(ba, bb))
		neg, err := ca.Neg()
		check(t, "Neg", neg, err, new(big.Int).Neg(ba))
		whole, err := credits.FromInt(a)
		check(t, "FromInt", whole, err, new(big.Int).Mul(ba, big.NewInt(credits.UnitsPerCredit)))

		if got, want := ca.Cmp(cb), ba.Cmp(bb); got != want {
			t.Fatalf("Cmp = %d, want %d", got, want)
		}
	})
}

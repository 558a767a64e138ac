// Package credits prices AI generations in credits and keeps each account's
// credit ledger, inside the application's own process and database.
//
// The life of a generation:
//
//	quote, _ := ledger.Quote(credits.QuoteRequest{Tool: "video-pro", Resolution: "720p", Duration: 5 * time.Second})
//	res, _ := ledger.Reserve(ctx, credits.ReserveRequest{Account: "alice", Quote: quote, Key: "job-42"})
//	// ... the job runs ...
//	ledger.Capture(ctx, credits.CaptureRequest{Hold: res.Hold.ID, Usage: credits.Usage{Duration: 4 * time.Second}})
//	// or, when it fails:
//	ledger.Release(ctx, credits.ReleaseRequest{Hold: res.Hold.ID})
//
// [Ledger.Run] wraps a job between Reserve and Capture/Release so that an
// error or a panic in the job always gives the credits back.
//
// What the package guarantees, on every [Store] that passes the storetest
// conformance suite:
//
//   - an account's available balance never goes below zero, whatever the
//     interleaving of concurrent calls, retries and crashes;
//   - a release or refund puts every credit back into the grant it came from;
//   - every mutation is idempotent under its key: a retry returns the first
//     result and changes nothing, the same key with a different request is an
//     [ErrIdempotencyConflict];
//   - credits are conserved: granted = available + held + spent +
//     expired + debited, and the entry history sums to the balance;
//   - a user is never charged more than the quote they confirmed;
//   - an operation is atomic: all of it is stored, or none of it;
//   - money arithmetic is exact: [Credits] is a fixed-point integer, no float
//     is used on any money path and overflow is an error, never a wrap.
//
// The rules live in this package; a [Store] only loads, locks and persists.
//
// # JSON
//
// The request and result types are made to be a JSON API's bodies, by one
// convention: every duration is an integer number of milliseconds, named
// *_ms ("duration_ms": 5000, "billed_duration_ms", "increment_ms",
// "ttl_ms"); every instant is an RFC 3339 string; every amount of credits is
// a decimal string ("2.5"). The Go fields stay [time.Duration]. Every
// duration the ledger makes is a whole number of milliseconds (a quote
// bills whole increments of whole milliseconds); only a duration a Go
// caller gave to the nanosecond keeps its fraction, as up to six decimals
// (5000.25), so that nothing is lost on the way to a database and back.
// Decoding takes the same, refuses anything finer than a nanosecond, an
// exponent or a string with a [*FieldError] naming its key (matching
// [ErrInvalidRequest]), and reads JSON written before this convention
// (holds and idempotency records stored by earlier versions, with
// durations in nanoseconds under the names without _ms) wherever the _ms
// key is absent.
//
// A quote goes to a browser and comes back sealed: [Ledger.SealQuote] makes
// it an opaque, signed, URL-safe string, which a request's "quote" field
// ([ReserveRequest.SealedQuote]) carries back to any server with the key.
package credits

import (
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/shopspring/decimal"
)

// UnitsPerCredit is the number of indivisible units in one credit: a
// [Credits] value is exact to 1/1000 of a credit (a millicredit). A thousandth
// is fine enough for per-second video rates with sub-second billing
// increments and plan discounts, and leaves room for about 9.2 × 10^15 credits
// in an int64.
const UnitsPerCredit = 1000

// Decimals is the number of decimal places a [Credits] value can carry.
const Decimals = 3

// MaxUnits is the largest number of millicredits a [Credits] value can
// hold: FromUnits(MaxUnits) is about 9.2 × 10^15 credits.
const MaxUnits = math.MaxInt64

// Credits is an exact amount of credits: an int64 count of millicredits.
//
// The zero value is 0 credits. Credits is a small value type: copy it, compare
// it with == or [Credits.Cmp], use it as a map key. Arithmetic methods return
// an error wrapping [ErrOverflow] instead of wrapping around.
type Credits struct {
	units int64
}

// FromUnits returns the amount made of n millicredits. It never fails.
func FromUnits(n int64) Credits { return Credits{units: n} }

// FromInt returns n whole credits, or an error wrapping [ErrOverflow] when n
// credits do not fit.
func FromInt(n int64) (Credits, error) {
	u, ok := mul64(n, UnitsPerCredit)
	if !ok {
		return Credits{}, fmt.Errorf("credits: %d credits: %w", n, ErrOverflow)
	}
	return Credits{units: u}, nil
}

// Whole returns n whole credits. It is meant for constants in code; it panics
// when n is beyond ±9.2 × 10^15, which no real amount is. Use [FromInt] for
// numbers that come from input.
func Whole(n int64) Credits {
	c, err := FromInt(n)
	if err != nil {
		panic(err)
	}
	return c
}

// Parse reads a decimal amount such as "7", "2.5", "0.125", "-3" or "1e3".
// It rejects, with an error wrapping [ErrInvalidAmount], anything that is not
// a number or that has a non-zero digit below 1/1000 of a credit (it never
// rounds), and, wrapping [ErrOverflow], anything that does not fit.
func Parse(s string) (Credits, error) {
	// Bound the input so that an exponent cannot make the decimal library
	// allocate a huge number: no exact amount needs more than this.
	if len(s) == 0 || len(s) > 64 {
		return Credits{}, fmt.Errorf("credits: parse %q: %w", truncate(s), ErrInvalidAmount)
	}
	if strings.ContainsAny(s, "_ \t\n") {
		return Credits{}, fmt.Errorf("credits: parse %q: %w", s, ErrInvalidAmount)
	}
	d, err := decimal.NewFromString(s)
	if err != nil {
		if c, err, ok := hugeExponent(s); ok {
			return c, err
		}
		return Credits{}, fmt.Errorf("credits: parse %q: %w", s, ErrInvalidAmount)
	}
	return fromDecimal(d, s)
}

// hugeExponent reads a number whose exponent is too large for the decimal
// library to hold ("1e2147483647"); ok is false when s is not one. Zero
// times any power of ten is zero; any other mantissa does not fit
// (ErrOverflow) under a positive exponent and has too many decimals
// (ErrInvalidAmount) under a negative one.
func hugeExponent(s string) (c Credits, err error, ok bool) {
	i := strings.IndexAny(s, "eE")
	if i < 0 {
		return Credits{}, nil, false
	}
	mantissa, digits := s[:i], s[i+1:]
	negative := false
	for _, sign := range []string{"+", "-", "\u2212"} { // the decimal library reads "−" as a minus too
		if rest, ok := strings.CutPrefix(digits, sign); ok {
			digits, negative = rest, sign != "+"
			break
		}
	}
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return Credits{}, nil, false
	}
	m, merr := decimal.NewFromString(mantissa)
	if merr != nil || strings.ContainsAny(mantissa, "eE") {
		return Credits{}, nil, false
	}
	switch {
	case m.IsZero():
		return Credits{}, nil, true
	case negative:
		return Credits{}, fmt.Errorf("credits: %q has more than %d decimals: %w", s, Decimals, ErrInvalidAmount), true
	default:
		return Credits{}, fmt.Errorf("credits: %q: %w", s, ErrOverflow), true
	}
}

func fromDecimal(d decimal.Decimal, s string) (Credits, error) {
	if d.IsZero() {
		return Credits{}, nil
	}
	exp := d.Exponent()
	if exp > 30 {
		return Credits{}, fmt.Errorf("credits: %q: %w", s, ErrOverflow)
	}
	if exp < -100 {
		return Credits{}, fmt.Errorf("credits: %q has more than %d decimals: %w", s, Decimals, ErrInvalidAmount)
	}
	u := d.Shift(Decimals)
	if !u.IsInteger() {
		return Credits{}, fmt.Errorf("credits: %q has more than %d decimals: %w", s, Decimals, ErrInvalidAmount)
	}
	b := u.BigInt()
	if !b.IsInt64() {
		return Credits{}, fmt.Errorf("credits: %q: %w", s, ErrOverflow)
	}
	return Credits{units: b.Int64()}, nil
}

// MustParse is [Parse] for constants in code; it panics on error.
func MustParse(s string) Credits {
	c, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return c
}

// FromDecimal converts d to credits exactly, or returns an error wrapping
// [ErrInvalidAmount] when d has a non-zero digit below 1/1000 of a credit,
// or [ErrOverflow] when it does not fit. Round d first (d.RoundCeil(3),
// d.RoundFloor(3), …) to choose how a fractional amount becomes credits.
func FromDecimal(d decimal.Decimal) (Credits, error) {
	return fromDecimal(d, d.String())
}

// Decimal returns c as a decimal number of credits, for rate arithmetic.
func (c Credits) Decimal() decimal.Decimal { return decimal.New(c.units, -Decimals) }

// Units returns c as an integer count of millicredits.
func (c Credits) Units() int64 { return c.units }

// IsZero reports whether c is 0.
func (c Credits) IsZero() bool { return c.units == 0 }

// IsPositive reports whether c > 0.
func (c Credits) IsPositive() bool { return c.units > 0 }

// IsNegative reports whether c < 0.
func (c Credits) IsNegative() bool { return c.units < 0 }

// Cmp returns -1, 0 or +1 as c is less than, equal to or greater than d.
func (c Credits) Cmp(d Credits) int {
	switch {
	case c.units < d.units:
		return -1
	case c.units > d.units:
		return 1
	}
	return 0
}

// Equal reports whether c == d. (go-cmp uses it to compare Credits.)
func (c Credits) Equal(d Credits) bool { return c.units == d.units }

// Less reports whether c < d.
func (c Credits) Less(d Credits) bool { return c.units < d.units }

// Min returns the smaller of c and d.
func (c Credits) Min(d Credits) Credits {
	if d.units < c.units {
		return d
	}
	return c
}

// Add returns c + d, or an error wrapping [ErrOverflow].
func (c Credits) Add(d Credits) (Credits, error) {
	s := c.units + d.units
	if (s > c.units) != (d.units > 0) {
		return Credits{}, fmt.Errorf("credits: %s + %s: %w", c, d, ErrOverflow)
	}
	return Credits{units: s}, nil
}

// Sub returns c - d, or an error wrapping [ErrOverflow].
func (c Credits) Sub(d Credits) (Credits, error) {
	s := c.units - d.units
	if (s < c.units) != (d.units > 0) {
		return Credits{}, fmt.Errorf("credits: %s - %s: %w", c, d, ErrOverflow)
	}
	return Credits{units: s}, nil
}

// Mul returns c × n, or an error wrapping [ErrOverflow].
func (c Credits) Mul(n int64) (Credits, error) {
	p, ok := mul64(c.units, n)
	if !ok {
		return Credits{}, fmt.Errorf("credits: %s × %d: %w", c, n, ErrOverflow)
	}
	return Credits{units: p}, nil
}

// Neg returns -c, or an error wrapping [ErrOverflow] for the one value whose
// negation does not fit.
func (c Credits) Neg() (Credits, error) {
	if c.units == math.MinInt64 {
		return Credits{}, fmt.Errorf("credits: -(%s): %w", c, ErrOverflow)
	}
	return Credits{units: -c.units}, nil
}

func mul64(a, b int64) (int64, bool) {
	if a == 0 || b == 0 {
		return 0, true
	}
	p := a * b
	if p/b != a || (a == -1 && b == math.MinInt64) || (b == -1 && a == math.MinInt64) {
		return 0, false
	}
	return p, true
}

// String formats c as a plain decimal with no trailing zeros: "7", "2.5",
// "0.125", "-3". [Parse] reads it back exactly.
func (c Credits) String() string {
	return string(c.appendText(make([]byte, 0, 24)))
}

func (c Credits) appendText(b []byte) []byte {
	u := c.units
	if u < 0 {
		b = append(b, '-')
	}
	// Work on the magnitude as uint64 so that MinInt64 formats correctly.
	m := uint64(u)
	if u < 0 {
		m = uint64(-(u + 1)) + 1
	}
	b = strconv.AppendUint(b, m/UnitsPerCredit, 10)
	frac := m % UnitsPerCredit
	if frac == 0 {
		return b
	}
	digits := [Decimals]byte{}
	for i := Decimals - 1; i >= 0; i-- {
		digits[i] = byte('0' + frac%10)
		frac /= 10
	}
	n := Decimals
	for n > 0 && digits[n-1] == '0' {
		n--
	}
	b = append(b, '.')
	return append(b, digits[:n]...)
}

// MarshalText implements [encoding.TextMarshaler] with the format of
// [Credits.String]. encoding/json uses it too: Credits is encoded as a JSON
// string such as "2.5", so that no JSON reader turns it into a float.
func (c Credits) MarshalText() ([]byte, error) { return c.appendText(nil), nil }

// UnmarshalText implements [encoding.TextUnmarshaler] with [Parse].
func (c *Credits) UnmarshalText(b []byte) error {
	v, err := Parse(string(b))
	if err != nil {
		return err
	}
	*c = v
	return nil
}

// UnmarshalJSON accepts a JSON string ("2.5") or a JSON number (2.5). Either
// must be exact to 1/1000 of a credit; null leaves c unchanged.
func (c *Credits) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		return nil
	}
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return fmt.Errorf("credits: %w", ErrInvalidAmount)
		}
		s = str
	} else if !json.Valid(b) {
		return fmt.Errorf("credits: invalid JSON %q: %w", truncate(s), ErrInvalidAmount)
	}
	v, err := Parse(s)
	if err != nil {
		return err
	}
	*c = v
	return nil
}

// Value implements [driver.Valuer]: c is stored as an integer number of
// millicredits (see [Credits.Units]), never as a float or a NUMERIC.
func (c Credits) Value() (driver.Value, error) { return c.units, nil }

// Scan implements [database/sql.Scanner]. It reads an integer number of
// millicredits, as [Credits.Value] stores it, from an int64 or from text
// holding an integer; it rejects floats and NULL.
func (c *Credits) Scan(src any) error {
	switch v := src.(type) {
	case int64:
		c.units = v
		return nil
	case []byte:
		return c.scanText(string(v))
	case string:
		return c.scanText(v)
	case nil:
		return fmt.Errorf("credits: scan NULL: %w", ErrInvalidAmount)
	default:
		return fmt.Errorf("credits: scan %T: %w", src, ErrInvalidAmount)
	}
}

func (c *Credits) scanText(s string) error {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return fmt.Errorf("credits: scan %q: %w", truncate(s), ErrOverflow)
		}
		return fmt.Errorf("credits: scan %q: not an integer number of millicredits: %w", truncate(s), ErrInvalidAmount)
	}
	c.units = n
	return nil
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

package credits

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// Catalog limits. They bound every product in the pricing rules so that no
// quote made from a valid catalog can overflow.
const (
	catalogMaxIDLen           = 64
	catalogMaxNameLen         = 128
	catalogMaxVersionLen      = 64
	catalogMaxResolutionLen   = 32
	catalogMaxRateUnits       = 1_000_000 * UnitsPerCredit // 1,000,000 credits
	catalogMaxIncrementMillis = 60_000                     // one minute
	catalogMaxDurationMillis  = 24 * 60 * 60 * 1000        // one day
	catalogMaxImages          = 1000
	catalogMaxQuoteTTLMillis  = 24 * 60 * 60 * 1000 // one day
	catalogMaxBasisPoints     = 10_000
	catalogMaxAllowanceUnits  = 1_000_000_000 * UnitsPerCredit // 1,000,000,000 credits

	catalogDefaultIncrementMillis   = 1000
	catalogDefaultMaxDurationMillis = 10 * 60 * 1000
	catalogDefaultMaxImages         = 16
	catalogDefaultQuoteTTLMillis    = 15 * 60 * 1000
)

// Unit is what a tool is priced per.
type Unit string

const (
	// UnitImage: a flat price per generated image.
	UnitImage Unit = "image"
	// UnitSecond: a price per second of output, by resolution.
	UnitSecond Unit = "second"
)

// Rounding says how a requested or actual duration becomes a whole number of
// billing increments. Whatever the mode, a positive duration is billed at
// least one increment.
type Rounding string

const (
	// RoundUp bills every started increment (ceiling). It is the default.
	RoundUp Rounding = "up"
	// RoundNearest bills to the nearest increment; half an increment or more
	// rounds up.
	RoundNearest Rounding = "nearest"
	// RoundDown bills only complete increments (floor), but at least one.
	RoundDown Rounding = "down"
)

func (r Rounding) valid() bool { return r == RoundUp || r == RoundNearest || r == RoundDown }

// Tool is one priced tool of a [Catalog]: either a flat price per image
// ([UnitImage]) or a rate per second of output by resolution ([UnitSecond]).
// Zero values of the optional fields mean the documented default; a Tool read
// back from a Catalog has every default filled in.
type Tool struct {
	// ID names the tool in requests: 1 to 64 bytes of [a-z0-9._-].
	ID string `json:"id"`
	// Name is a human-readable name (at most 128 bytes of UTF-8).
	Name string `json:"name,omitempty"`
	// Unit is UnitImage or UnitSecond.
	Unit Unit `json:"unit"`
	// Price is the UnitImage price per generated image: > 0 and at most
	// 1,000,000 credits. It must be zero for UnitSecond tools.
	Price Credits `json:"price,omitzero"`
	// Rates maps a resolution ("480p") to the UnitSecond rate in credits per
	// second of output: at least one, each > 0 and at most 1,000,000 credits;
	// resolution names are 1 to 32 bytes of printable UTF-8. It must be empty
	// for UnitImage tools.
	Rates map[string]Credits `json:"rates,omitempty"`
	// IncrementMillis is the UnitSecond billing increment in milliseconds,
	// 1 to 60000; 0 means 1000 (whole seconds).
	IncrementMillis int64 `json:"increment_ms,omitempty"`
	// Rounding is how UnitSecond durations become whole increments; "" means
	// RoundUp.
	Rounding Rounding `json:"rounding,omitempty"`
	// MaxDurationMillis is the longest UnitSecond duration a quote accepts,
	// in milliseconds: at least one increment and at most 24 hours; 0 means
	// 10 minutes.
	MaxDurationMillis int64 `json:"max_duration_ms,omitempty"`
	// MaxImages is the most images one UnitImage request may ask for,
	// 1 to 1000; 0 means 16.
	MaxImages int `json:"max_images,omitempty"`
}

// Plan is a price tier: a discount on every tool it does not override, and
// outright prices for the tools it does.
type Plan struct {
	// ID names the plan in requests: 1 to 64 bytes of [a-z0-9._-].
	ID string `json:"id"`
	// Name is a human-readable name (at most 128 bytes of UTF-8).
	Name string `json:"name,omitempty"`
	// DiscountBasisPoints is 0 to 10000 (1000 = 10 %). It applies to the
	// rate of every tool (for a per-second tool: every resolution) the plan
	// does not override: UnitRate = BaseRate × (10000 − DiscountBasisPoints)
	// / 10000, rounded down to the millicredit.
	DiscountBasisPoints int64 `json:"discount_bp,omitempty"`
	// Overrides replace, for this plan, a tool's price (an image tool) or
	// some or all of its rates (a per-second tool) outright; no discount
	// applies on top of an override. A per-second resolution the override
	// does not list keeps the plan's discount. Keys are tool IDs.
	Overrides map[string]PlanOverride `json:"overrides,omitempty"`
	// Allowance, when set, is the credits the plan gives every period (a
	// subscription's monthly credits, say). See [Allowance].
	Allowance *Allowance `json:"allowance,omitempty"`
}

// Allowance is a plan's recurring grant: Amount every Period, given to each
// account on the plan as a grant of kind [KindPlan] that expires at the
// period's end (use it or lose it), the first one when the account joins
// the plan. Periods are anchored at the instant the account joined: a
// month runs to the same day and time of the next calendar month, or that
// month's last day when it is shorter (joined Jan 31: Feb 28 or 29, then
// Mar 31), in the ledger's Config.DayLocation.
//
// Renewal is lazy and exact, like expiry: the first operation or read in a
// new period grants it, at the period's start, exactly once per period and
// account. Periods that passed while nothing wrote to the account are each
// granted at their start and expire at their end, in the order they fell
// due, as if the account had been seen every period: a balance read during
// a period (which applies renewals without storing them) showed that
// period's allowance, so the history must hold it. They never accumulate:
// each expires, and only the rollover carries, once. (An account idle for
// long on a daily allowance thus gets two entries per idle day on its next
// write.)
type Allowance struct {
	// Amount is the credits granted each period: positive, at most
	// 1,000,000,000 credits.
	Amount Credits `json:"amount"`
	// Period is "day", "week" or "month".
	Period Period `json:"period"`
	// RolloverMax, when positive, is the most of a period's unused
	// allowance that carries into the next period, as a grant of kind
	// plan that expires at that next period's end (it never carries
	// twice). At most Amount; zero means no rollover.
	RolloverMax Credits `json:"rollover_max,omitzero"`
}

// Period is the length of an allowance period.
type Period string

// The allowance periods.
const (
	PeriodDay   Period = "day"
	PeriodWeek  Period = "week"
	PeriodMonth Period = "month"
)

func (p Period) valid() bool { return p == PeriodDay || p == PeriodWeek || p == PeriodMonth }

// PlanOverride is a plan's own price for one tool. Exactly one of Price (for
// an image tool, > 0) or Rates (for a per-second tool, only resolutions the
// tool offers, each > 0) is set.
type PlanOverride struct {
	// Price replaces an image tool's price for the plan.
	Price Credits `json:"price,omitzero"`
	// Rates replace a per-second tool's rates for the plan, by resolution.
	Rates map[string]Credits `json:"rates,omitempty"`
}

// CatalogConfig is the definition of a [Catalog]: the input of [NewCatalog]
// and the JSON shape that [ParseCatalog] reads and [Catalog.Config] returns.
type CatalogConfig struct {
	// Version names this set of prices (1 to 64 printable ASCII bytes, no
	// spaces). Every quote carries it, so a quote made from an older
	// catalog can be told apart.
	Version string `json:"version"`
	// QuoteTTLMillis is how long a quote stays valid, in milliseconds: at
	// most 24 hours; 0 means 15 minutes.
	QuoteTTLMillis int64 `json:"quote_ttl_ms,omitempty"`
	// Tools are the priced tools, in the order Catalog.Tools returns them.
	Tools []Tool `json:"tools"`
	// Plans are the price tiers a request may name.
	Plans []Plan `json:"plans,omitempty"`
}

// Catalog is a validated, immutable set of tools, rates and plans that prices
// generations. It copies everything it is built from and hands out only
// copies, so it never changes after [NewCatalog] returns, and it is safe for
// concurrent use by any number of goroutines.
//
// Pricing rules. Every amount is an exact integer number of millicredits; no
// float is used anywhere, and there is one rounding rule, applied once, in
// integers: amounts are rounded down to the millicredit (in the user's
// favour), and durations become whole billing increments by the tool's
// [Rounding].
//
//   - Image tools ([UnitImage]): Total = UnitRate × Images.
//   - Per-second tools ([UnitSecond]): the duration becomes a whole number n
//     of increments by the tool's Rounding (up: ceiling; nearest: half an
//     increment or more rounds up; down: floor), never fewer than one for a
//     positive duration. BilledDuration = n × increment, a whole number of
//     milliseconds. Total = UnitRate × BilledDuration in milliseconds / 1000,
//     rounded down to the millicredit.
//   - Plans: a plan's override of the tool (for a per-second tool: of the
//     resolution) is the UnitRate. Otherwise UnitRate = BaseRate × (10000 −
//     DiscountBasisPoints) / 10000, rounded down to the millicredit.
//   - Overflow is an error wrapping [ErrOverflow], never a wrapped-around
//     number; the catalog's limits (rates ≤ 1,000,000 credits, ≤ 1000 images,
//     ≤ 24 hours) keep every valid quote far from it.
//   - [Quote.Cost] prices actual usage by the same rules with the quote's
//     own rate, increment and rounding, and never returns more than the
//     quote's Total.
type Catalog struct {
	cfg      CatalogConfig // normalized (defaults filled in); never handed out without a deep copy
	quoteTTL time.Duration
	tools    map[string]*catalogTool
	plans    map[string]*catalogPlan
}

type catalogTool struct {
	index     int
	id        string
	unit      Unit
	price     int64            // UnitImage, millicredits
	rates     map[string]int64 // UnitSecond, millicredits per second
	offered   string           // the resolutions, sorted, for error messages
	incMillis int64
	rounding  Rounding
	maxDur    time.Duration
	maxImages int
}

type catalogPlan struct {
	index      int
	id         string
	discountBP int64
	allowance  *Allowance                  // nil: none
	price      map[string]int64            // tool ID -> overriding price
	rates      map[string]map[string]int64 // tool ID -> resolution -> overriding rate
}

// NewCatalog validates cfg and builds a Catalog from a deep copy of it, with
// every default filled in. It returns a [*CatalogError] (which matches
// [ErrInvalidCatalog]) naming the first invalid field, such as
// `tools[2].rates["720p"]`, `plans[0].discount_bp` or `tools[1].id` (a
// duplicate). Fields are checked in definition order, so the error is
// deterministic. Validation rejects:
//
//   - an empty or malformed version; a quote_ttl_ms outside 0..24h;
//   - tool and plan IDs that are empty, duplicate, longer than 64 bytes or
//     not made of [a-z0-9._-]; names longer than 128 bytes or not UTF-8;
//   - a unit other than "image" or "second";
//   - an image tool without a positive price, or with rates or any
//     per-second field; a per-second tool without rates, with a price, with
//     max_images, or with an empty, too long (> 32 bytes) or unprintable
//     resolution name;
//   - prices and rates that are not positive or exceed 1,000,000 credits;
//   - increment_ms outside 1..60000, an unknown rounding, max_duration_ms
//     outside 1 increment..24h, max_images outside 1..1000 (0 always means
//     the default; negative values are rejected);
//   - discount_bp outside 0..10000; an override of an unknown tool, of the
//     wrong kind (a price for a per-second tool, rates for an image tool),
//     for a resolution the tool does not offer, or with no positive price
//     or rate;
//   - an allowance whose amount is not positive or exceeds 1,000,000,000
//     credits, whose period is not "day", "week" or "month", or whose
//     rollover_max is negative or above its amount.
func NewCatalog(cfg CatalogConfig) (*Catalog, error) {
	c := &Catalog{
		cfg: CatalogConfig{
			Version:        cfg.Version,
			QuoteTTLMillis: cfg.QuoteTTLMillis,
			Tools:          make([]Tool, 0, len(cfg.Tools)),
			Plans:          make([]Plan, 0, len(cfg.Plans)),
		},
		tools: make(map[string]*catalogTool, len(cfg.Tools)),
		plans: make(map[string]*catalogPlan, len(cfg.Plans)),
	}
	if reason := checkCatalogVersion(cfg.Version); reason != "" {
		return nil, catalogErr("version", "%s", reason)
	}
	switch {
	case cfg.QuoteTTLMillis < 0:
		return nil, catalogErr("quote_ttl_ms", "%d is negative", cfg.QuoteTTLMillis)
	case cfg.QuoteTTLMillis > catalogMaxQuoteTTLMillis:
		return nil, catalogErr("quote_ttl_ms", "%d is above the limit of %d (24 hours)", cfg.QuoteTTLMillis, catalogMaxQuoteTTLMillis)
	case cfg.QuoteTTLMillis == 0:
		c.cfg.QuoteTTLMillis = catalogDefaultQuoteTTLMillis
	}
	c.quoteTTL = time.Duration(c.cfg.QuoteTTLMillis) * time.Millisecond

	for i, t := range cfg.Tools {
		ct, nt, err := compileTool(i, t)
		if err != nil {
			return nil, err
		}
		if _, dup := c.tools[ct.id]; dup {
			return nil, catalogErr(fmt.Sprintf("tools[%d].id", i), "duplicate tool ID %q", ct.id)
		}
		c.tools[ct.id] = ct
		c.cfg.Tools = append(c.cfg.Tools, nt)
	}
	for i, p := range cfg.Plans {
		cp, np, err := c.compilePlan(i, p)
		if err != nil {
			return nil, err
		}
		if _, dup := c.plans[cp.id]; dup {
			return nil, catalogErr(fmt.Sprintf("plans[%d].id", i), "duplicate plan ID %q", cp.id)
		}
		c.plans[cp.id] = cp
		c.cfg.Plans = append(c.cfg.Plans, np)
	}
	return c, nil
}

func catalogErr(field, format string, args ...any) error {
	return &CatalogError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

func checkCatalogVersion(v string) string {
	if v == "" {
		return "is required"
	}
	if len(v) > catalogMaxVersionLen {
		return fmt.Sprintf("is longer than %d bytes", catalogMaxVersionLen)
	}
	for i := 0; i < len(v); i++ {
		if v[i] <= ' ' || v[i] > '~' {
			return fmt.Sprintf("%q: only printable ASCII without spaces is allowed", v)
		}
	}
	return ""
}

func checkCatalogID(id string) string {
	if id == "" {
		return "is required"
	}
	if len(id) > catalogMaxIDLen {
		return fmt.Sprintf("%q is longer than %d bytes", truncate(id), catalogMaxIDLen)
	}
	for i := 0; i < len(id); i++ {
		b := id[i]
		if !(b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '.' || b == '_' || b == '-') {
			return fmt.Sprintf("%q: only [a-z0-9._-] is allowed", id)
		}
	}
	return ""
}

func checkCatalogName(name string) string {
	if len(name) > catalogMaxNameLen {
		return fmt.Sprintf("is longer than %d bytes", catalogMaxNameLen)
	}
	if !utf8.ValidString(name) {
		return "is not valid UTF-8"
	}
	return ""
}

func checkCatalogResolution(res string) string {
	if res == "" {
		return "resolution name is empty"
	}
	if len(res) > catalogMaxResolutionLen {
		return fmt.Sprintf("resolution name is longer than %d bytes", catalogMaxResolutionLen)
	}
	if !utf8.ValidString(res) {
		return "resolution name is not valid UTF-8"
	}
	for _, r := range res {
		if !unicode.IsPrint(r) {
			return "resolution name has an unprintable character"
		}
	}
	return ""
}

// checkCatalogRate reports why a price or rate is not in (0, 1,000,000] credits.
func checkCatalogRate(c Credits) string {
	switch {
	case c.units <= 0:
		return fmt.Sprintf("%s must be positive", c)
	case c.units > catalogMaxRateUnits:
		return fmt.Sprintf("%s is above the limit of %d credits", c, catalogMaxRateUnits/UnitsPerCredit)
	}
	return ""
}

// compileTool validates the i-th tool and returns its compiled form and its
// normalized deep copy.
func compileTool(i int, t Tool) (*catalogTool, Tool, error) {
	path := fmt.Sprintf("tools[%d]", i)
	if reason := checkCatalogID(t.ID); reason != "" {
		return nil, Tool{}, catalogErr(path+".id", "%s", reason)
	}
	if reason := checkCatalogName(t.Name); reason != "" {
		return nil, Tool{}, catalogErr(path+".name", "%s", reason)
	}
	ct := &catalogTool{index: i, id: t.ID, unit: t.Unit}
	nt := Tool{ID: t.ID, Name: t.Name, Unit: t.Unit}
	switch t.Unit {
	case UnitImage:
		if len(t.Rates) > 0 {
			return nil, Tool{}, catalogErr(path+".rates", "an image tool has a price, not rates")
		}
		if reason := checkCatalogRate(t.Price); reason != "" {
			return nil, Tool{}, catalogErr(path+".price", "%s", reason)
		}
		for _, f := range []struct {
			name string
			set  bool
		}{
			{"increment_ms", t.IncrementMillis != 0},
			{"rounding", t.Rounding != ""},
			{"max_duration_ms", t.MaxDurationMillis != 0},
		} {
			if f.set {
				return nil, Tool{}, catalogErr(path+"."+f.name, "applies only to per-second tools")
			}
		}
		switch {
		case t.MaxImages < 0:
			return nil, Tool{}, catalogErr(path+".max_images", "%d is negative", t.MaxImages)
		case t.MaxImages > catalogMaxImages:
			return nil, Tool{}, catalogErr(path+".max_images", "%d is above the limit of %d", t.MaxImages, catalogMaxImages)
		}
		ct.price = t.Price.units
		ct.maxImages = t.MaxImages
		if ct.maxImages == 0 {
			ct.maxImages = catalogDefaultMaxImages
		}
		nt.Price = t.Price
		nt.MaxImages = ct.maxImages

	case UnitSecond:
		if !t.Price.IsZero() {
			return nil, Tool{}, catalogErr(path+".price", "a per-second tool has rates, not a price")
		}
		if t.MaxImages != 0 {
			return nil, Tool{}, catalogErr(path+".max_images", "applies only to image tools")
		}
		if len(t.Rates) == 0 {
			return nil, Tool{}, catalogErr(path+".rates", "a per-second tool needs at least one rate")
		}
		ct.rates = make(map[string]int64, len(t.Rates))
		for _, res := range slices.Sorted(maps.Keys(t.Rates)) {
			field := fmt.Sprintf("%s.rates[%q]", path, res)
			if reason := checkCatalogResolution(res); reason != "" {
				return nil, Tool{}, catalogErr(field, "%s", reason)
			}
			if reason := checkCatalogRate(t.Rates[res]); reason != "" {
				return nil, Tool{}, catalogErr(field, "%s", reason)
			}
			ct.rates[res] = t.Rates[res].units
		}
		ct.offered = offeredResolutions(t.Rates)

		ct.incMillis = t.IncrementMillis
		switch {
		case ct.incMillis < 0:
			return nil, Tool{}, catalogErr(path+".increment_ms", "%d is negative", ct.incMillis)
		case ct.incMillis > catalogMaxIncrementMillis:
			return nil, Tool{}, catalogErr(path+".increment_ms", "%d is above the limit of %d (one minute)", ct.incMillis, catalogMaxIncrementMillis)
		case ct.incMillis == 0:
			ct.incMillis = catalogDefaultIncrementMillis
		}
		ct.rounding = t.Rounding
		if ct.rounding == "" {
			ct.rounding = RoundUp
		}
		if !ct.rounding.valid() {
			return nil, Tool{}, catalogErr(path+".rounding", "%q is not one of %q, %q, %q", t.Rounding, RoundUp, RoundNearest, RoundDown)
		}
		maxMs := t.MaxDurationMillis
		switch {
		case maxMs < 0:
			return nil, Tool{}, catalogErr(path+".max_duration_ms", "%d is negative", maxMs)
		case maxMs > catalogMaxDurationMillis:
			return nil, Tool{}, catalogErr(path+".max_duration_ms", "%d is above the limit of %d (24 hours)", maxMs, catalogMaxDurationMillis)
		case maxMs == 0:
			maxMs = catalogDefaultMaxDurationMillis
		}
		if maxMs < ct.incMillis {
			return nil, Tool{}, catalogErr(path+".max_duration_ms", "%d is shorter than one increment (%d ms)", maxMs, ct.incMillis)
		}
		ct.maxDur = time.Duration(maxMs) * time.Millisecond
		nt.Rates = maps.Clone(t.Rates)
		nt.IncrementMillis = ct.incMillis
		nt.Rounding = ct.rounding
		nt.MaxDurationMillis = maxMs

	default:
		return nil, Tool{}, catalogErr(path+".unit", "%q is not %q or %q", t.Unit, UnitImage, UnitSecond)
	}
	return ct, nt, nil
}

// compilePlan validates the i-th plan against the tools already compiled and
// returns its compiled form and its normalized deep copy.
func (c *Catalog) compilePlan(i int, p Plan) (*catalogPlan, Plan, error) {
	path := fmt.Sprintf("plans[%d]", i)
	if reason := checkCatalogID(p.ID); reason != "" {
		return nil, Plan{}, catalogErr(path+".id", "%s", reason)
	}
	if reason := checkCatalogName(p.Name); reason != "" {
		return nil, Plan{}, catalogErr(path+".name", "%s", reason)
	}
	if p.DiscountBasisPoints < 0 || p.DiscountBasisPoints > catalogMaxBasisPoints {
		return nil, Plan{}, catalogErr(path+".discount_bp", "%d is outside 0..%d", p.DiscountBasisPoints, catalogMaxBasisPoints)
	}
	cp := &catalogPlan{index: i, id: p.ID, discountBP: p.DiscountBasisPoints}
	np := Plan{ID: p.ID, Name: p.Name, DiscountBasisPoints: p.DiscountBasisPoints}
	if a := p.Allowance; a != nil {
		apath := path + ".allowance"
		switch {
		case !a.Amount.IsPositive() || a.Amount.units > catalogMaxAllowanceUnits:
			return nil, Plan{}, catalogErr(apath+".amount", "%s must be positive and at most %d credits", a.Amount, catalogMaxAllowanceUnits/UnitsPerCredit)
		case !a.Period.valid():
			return nil, Plan{}, catalogErr(apath+".period", "%q is not day, week or month", truncate(string(a.Period)))
		case a.RolloverMax.IsNegative() || a.Amount.Less(a.RolloverMax):
			return nil, Plan{}, catalogErr(apath+".rollover_max", "%s must be between 0 and the amount %s", a.RolloverMax, a.Amount)
		}
		cp.allowance = new(*a)
		np.Allowance = new(*a)
	}
	for _, toolID := range slices.Sorted(maps.Keys(p.Overrides)) {
		o := p.Overrides[toolID]
		opath := fmt.Sprintf("%s.overrides[%q]", path, toolID)
		t, ok := c.tools[toolID]
		if !ok {
			return nil, Plan{}, catalogErr(opath, "unknown tool %q", truncate(toolID))
		}
		switch t.unit {
		case UnitImage:
			if len(o.Rates) > 0 {
				return nil, Plan{}, catalogErr(opath+".rates", "tool %q is priced per image: override its price", toolID)
			}
			if reason := checkCatalogRate(o.Price); reason != "" {
				return nil, Plan{}, catalogErr(opath+".price", "%s", reason)
			}
			if cp.price == nil {
				cp.price = make(map[string]int64)
			}
			cp.price[toolID] = o.Price.units
			o = PlanOverride{Price: o.Price}
		case UnitSecond:
			if !o.Price.IsZero() {
				return nil, Plan{}, catalogErr(opath+".price", "tool %q is priced per second: override its rates", toolID)
			}
			if len(o.Rates) == 0 {
				return nil, Plan{}, catalogErr(opath+".rates", "an override of a per-second tool needs at least one rate")
			}
			rates := make(map[string]int64, len(o.Rates))
			for _, res := range slices.Sorted(maps.Keys(o.Rates)) {
				field := fmt.Sprintf("%s.rates[%q]", opath, res)
				if _, ok := t.rates[res]; !ok {
					return nil, Plan{}, catalogErr(field, "tool %q has no resolution %q (offered: %s)", toolID, truncate(res), t.offered)
				}
				if reason := checkCatalogRate(o.Rates[res]); reason != "" {
					return nil, Plan{}, catalogErr(field, "%s", reason)
				}
				rates[res] = o.Rates[res].units
			}
			if cp.rates == nil {
				cp.rates = make(map[string]map[string]int64)
			}
			cp.rates[toolID] = rates
			o = PlanOverride{Rates: maps.Clone(o.Rates)}
		}
		if np.Overrides == nil {
			np.Overrides = make(map[string]PlanOverride, len(p.Overrides))
		}
		np.Overrides[toolID] = o
	}
	return cp, np, nil
}

// offeredResolutions lists the resolutions in natural order: by their leading
// number when they have one ("480p" < "720p" < "1080p"), then by name.
func offeredResolutions(rates map[string]Credits) string {
	res := slices.Collect(maps.Keys(rates))
	slices.SortFunc(res, compareResolutions)
	return strings.Join(res, ", ")
}

func compareResolutions(a, b string) int {
	na, oka := resolutionNumber(a)
	nb, okb := resolutionNumber(b)
	switch {
	case oka && !okb:
		return -1
	case !oka && okb:
		return 1
	case oka && okb && na != nb:
		if na < nb {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}

func resolutionNumber(s string) (uint64, bool) {
	var n uint64
	i := 0
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		if n > (math.MaxUint64-9)/10 {
			return math.MaxUint64, true
		}
		n = n*10 + uint64(s[i]-'0')
	}
	return n, i > 0
}

// ParseCatalog reads a catalog from JSON in the shape of [CatalogConfig] and
// builds it with [NewCatalog]. The JSON is read strictly: an unknown or
// repeated key, a value of the wrong type, an integer field holding a
// fraction, an amount that is not exact to 1/1000 of a credit (such as a
// rate of 0.0001), a root that is not an object, or anything after the
// object is rejected; keys match exactly (encoding/json alone would accept
// "Version" for "version"). Amounts may be JSON strings ("2.5") or numbers
// (2.5); null stands for an absent field. Every error is a [*CatalogError]
// naming the offending field, for example `tools[0].rates["720p"]`, or
// "(root)" for the document as a whole.
func ParseCatalog(data []byte) (*Catalog, error) {
	if err := checkCatalogJSON(data); err != nil {
		return nil, err
	}
	var cfg CatalogConfig
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		// checkCatalogJSON accepts only what this decode accepts; this is a
		// safety net.
		return nil, catalogErr(catalogRootField, "%v", err)
	}
	return NewCatalog(cfg)
}

// catalogRootField is the CatalogError.Field of an error that is about the JSON
// document as a whole.
const catalogRootField = "(root)"

// catalogJSON walks a catalog's JSON tokens against the catalog's schema, so
// that an error can name the exact field (encoding/json reports neither the
// path of an unknown field nor that of a value its Unmarshaler rejected).
type catalogJSON struct {
	dec *json.Decoder
}

func checkCatalogJSON(data []byte) error {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return catalogErr(catalogRootField, "want a JSON object")
	}
	w := catalogJSON{dec: json.NewDecoder(bytes.NewReader(data))}
	w.dec.UseNumber()
	if err := w.catalog(); err != nil {
		return err
	}
	if _, err := w.dec.Token(); err != io.EOF {
		return catalogErr(catalogRootField, "unexpected data after the catalog object (byte %d)", w.dec.InputOffset())
	}
	return nil
}

func (w *catalogJSON) token(path string) (json.Token, error) {
	tok, err := w.dec.Token()
	if err == nil {
		return tok, nil
	}
	if path == "" {
		path = catalogRootField
	}
	if err == io.EOF {
		return nil, catalogErr(path, "unexpected end of JSON")
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return nil, catalogErr(path, "malformed JSON at byte %d: %v", se.Offset, err)
	}
	return nil, catalogErr(path, "malformed JSON: %v", err)
}

func describeJSONToken(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		if v == '{' {
			return "an object"
		}
		return "an array"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	}
	return "null"
}

// object reads an object or null. Keys of a struct-like object (isMap false)
// extend the path as ".key"; keys of a map as `["key"]`.
func (w *catalogJSON) object(path string, isMap bool, member func(key, keyPath string) error) error {
	tok, err := w.token(path)
	if err != nil || tok == nil {
		return err
	}
	if tok != json.Delim('{') {
		return catalogErr(path, "want an object, got %s", describeJSONToken(tok))
	}
	seen := make(map[string]bool)
	for w.dec.More() {
		tok, err := w.token(path)
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		var keyPath string
		switch {
		case isMap || key == "": // an empty field name still needs a visible path
			keyPath = fmt.Sprintf("%s[%q]", path, key)
		case path == "":
			keyPath = key
		default:
			keyPath = path + "." + key
		}
		if seen[key] {
			return catalogErr(keyPath, "duplicate key")
		}
		seen[key] = true
		if err := member(key, keyPath); err != nil {
			return err
		}
	}
	_, err = w.token(path)
	return err
}

func (w *catalogJSON) array(path string, elem func(elemPath string) error) error {
	tok, err := w.token(path)
	if err != nil || tok == nil {
		return err
	}
	if tok != json.Delim('[') {
		return catalogErr(path, "want an array, got %s", describeJSONToken(tok))
	}
	for i := 0; w.dec.More(); i++ {
		if err := elem(fmt.Sprintf("%s[%d]", path, i)); err != nil {
			return err
		}
	}
	_, err = w.token(path)
	return err
}

func (w *catalogJSON) str(path string) error {
	tok, err := w.token(path)
	if err != nil {
		return err
	}
	switch tok.(type) {
	case string, nil:
		return nil
	}
	return catalogErr(path, "want a string, got %s", describeJSONToken(tok))
}

func (w *catalogJSON) integer(path string, bitSize int) error {
	tok, err := w.token(path)
	if err != nil {
		return err
	}
	switch v := tok.(type) {
	case nil:
		return nil
	case json.Number:
		if _, err := strconv.ParseInt(string(v), 10, bitSize); err != nil {
			return catalogErr(path, "%s is not an integer in range", truncate(string(v)))
		}
		return nil
	}
	return catalogErr(path, "want an integer, got %s", describeJSONToken(tok))
}

func (w *catalogJSON) amount(path string) error {
	tok, err := w.token(path)
	if err != nil {
		return err
	}
	var s string
	switch v := tok.(type) {
	case nil:
		return nil
	case json.Number:
		s = string(v)
	case string:
		s = v
	default:
		return catalogErr(path, "want an amount of credits, got %s", describeJSONToken(tok))
	}
	if _, err := Parse(s); err != nil {
		return catalogErr(path, "%v", err)
	}
	return nil
}

func (w *catalogJSON) amounts(path string) error {
	return w.object(path, true, func(_, p string) error { return w.amount(p) })
}

func (w *catalogJSON) unknown(path string) error {
	return catalogErr(path, "unknown field")
}

func (w *catalogJSON) catalog() error {
	return w.object("", false, func(key, p string) error {
		switch key {
		case "version":
			return w.str(p)
		case "quote_ttl_ms":
			return w.integer(p, 64)
		case "tools":
			return w.array(p, w.tool)
		case "plans":
			return w.array(p, w.plan)
		}
		return w.unknown(p)
	})
}

func (w *catalogJSON) tool(path string) error {
	return w.object(path, false, func(key, p string) error {
		switch key {
		case "id", "name", "unit", "rounding":
			return w.str(p)
		case "price":
			return w.amount(p)
		case "rates":
			return w.amounts(p)
		case "increment_ms", "max_duration_ms":
			return w.integer(p, 64)
		case "max_images":
			return w.integer(p, strconv.IntSize)
		}
		return w.unknown(p)
	})
}

func (w *catalogJSON) plan(path string) error {
	return w.object(path, false, func(key, p string) error {
		switch key {
		case "id", "name":
			return w.str(p)
		case "discount_bp":
			return w.integer(p, 64)
		case "allowance":
			return w.object(p, false, func(key, p string) error {
				switch key {
				case "amount", "rollover_max":
					return w.amount(p)
				case "period":
					return w.str(p)
				}
				return w.unknown(p)
			})
		case "overrides":
			return w.object(p, true, func(_, op string) error {
				return w.object(op, false, func(key, p string) error {
					switch key {
					case "price":
						return w.amount(p)
					case "rates":
						return w.amounts(p)
					}
					return w.unknown(p)
				})
			})
		}
		return w.unknown(p)
	})
}

var defaultCatalog = sync.OnceValue(func() *Catalog {
	c, err := NewCatalog(CatalogConfig{
		Version: "2026-11-default",
		Tools: []Tool{
			{ID: "upscale", Name: "Upscale", Unit: UnitImage, Price: Whole(3)},
			{ID: "remove-background", Name: "Background removal", Unit: UnitImage, Price: Whole(3)},
			{ID: "image-edit", Name: "Simple image edit", Unit: UnitImage, Price: Whole(3)},
			{ID: "image", Name: "Image generation", Unit: UnitImage, Price: Whole(7)},
			{ID: "avatar-video", Name: "Avatar video", Unit: UnitSecond, Rates: map[string]Credits{
				"480p": Whole(2), "720p": Whole(3),
			}},
			{ID: "video", Name: "Standard video", Unit: UnitSecond, Rates: map[string]Credits{
				"480p": Whole(5), "720p": Whole(8), "1080p": Whole(12),
			}},
			{ID: "video-pro", Name: "Top video model", Unit: UnitSecond, Rates: map[string]Credits{
				"480p": Whole(10), "720p": Whole(15), "1080p": Whole(23),
			}},
		},
		Plans: []Plan{
			{ID: "pro", Name: "Pro", DiscountBasisPoints: 1000,
				Allowance: &Allowance{Amount: Whole(500), Period: PeriodMonth, RolloverMax: Whole(100)}},
			{ID: "studio", Name: "Studio", DiscountBasisPoints: 2000, Overrides: map[string]PlanOverride{
				"image": {Price: Whole(5)},
			}, Allowance: &Allowance{Amount: Whole(2000), Period: PeriodMonth, RolloverMax: Whole(500)}},
		},
	})
	if err != nil {
		panic(err)
	}
	return c
})

// DefaultCatalog returns an example catalog (version "2026-11-default") that
// mirrors the product brief, to copy and adapt (see [Catalog.Config]); it is
// not a price list the library imposes. Its tools:
//
//   - "upscale", "remove-background", "image-edit": 3 credits per image;
//   - "image" (image generation): 7 credits per image;
//   - "avatar-video": 2 credits/s at 480p, 3 at 720p;
//   - "video" (standard video): 5 credits/s at 480p, 8 at 720p, 12 at 1080p;
//   - "video-pro" (top video model): 10, 15 and 23 credits/s;
//
// per-second tools are billed per started second, up to 10 minutes; image
// requests take up to 16 images; quotes are valid 15 minutes. Plans: "pro",
// 10 % off everything and 500 credits a month (up to 100 unused carry
// over); "studio", 20 % off everything except "image", which it prices at
// 5 credits, and 2,000 credits a month (up to 500 carry over).
//
// The returned Catalog is shared and, like every Catalog, immutable.
func DefaultCatalog() *Catalog { return defaultCatalog() }

// Version returns the catalog's version, which every [Quote] it makes
// carries.
func (c *Catalog) Version() string { return c.cfg.Version }

// Config returns a deep copy of the catalog's definition with every default
// filled in, so that it can be edited and passed to [NewCatalog] again, or
// marshaled to JSON that [ParseCatalog] reads back to an equal definition.
// Changing it does not change c.
func (c *Catalog) Config() CatalogConfig {
	cfg := CatalogConfig{
		Version:        c.cfg.Version,
		QuoteTTLMillis: c.cfg.QuoteTTLMillis,
		Tools:          c.Tools(),
	}
	if len(c.cfg.Plans) > 0 {
		cfg.Plans = make([]Plan, len(c.cfg.Plans))
		for i, p := range c.cfg.Plans {
			cfg.Plans[i] = clonePlan(p)
		}
	}
	return cfg
}

// Tool returns a deep copy of the tool with that ID, defaults filled in, and
// whether it exists.
func (c *Catalog) Tool(id string) (Tool, bool) {
	t, ok := c.tools[id]
	if !ok {
		return Tool{}, false
	}
	return cloneTool(c.cfg.Tools[t.index]), true
}

// Tools returns deep copies of every tool, in definition order.
func (c *Catalog) Tools() []Tool {
	tools := make([]Tool, len(c.cfg.Tools))
	for i, t := range c.cfg.Tools {
		tools[i] = cloneTool(t)
	}
	return tools
}

// Plan returns a deep copy of the plan with that ID and whether it exists.
func (c *Catalog) Plan(id string) (Plan, bool) {
	p, ok := c.plans[id]
	if !ok {
		return Plan{}, false
	}
	return clonePlan(c.cfg.Plans[p.index]), true
}

func cloneTool(t Tool) Tool {
	t.Rates = maps.Clone(t.Rates)
	return t
}

func clonePlan(p Plan) Plan {
	if p.Allowance != nil {
		p.Allowance = new(*p.Allowance)
	}
	if p.Overrides != nil {
		o := make(map[string]PlanOverride, len(p.Overrides))
		for k, v := range p.Overrides {
			v.Rates = maps.Clone(v.Rates)
			o[k] = v
		}
		p.Overrides = o
	}
	return p
}

// QuoteRequest asks the price of one generation.
type QuoteRequest struct {
	// Tool is the tool's ID.
	Tool string `json:"tool"`
	// Resolution is required by per-second tools and refused by image tools.
	Resolution string `json:"resolution,omitempty"`
	// Duration is the requested output duration of a per-second tool: > 0
	// and at most the tool's maximum. Image tools refuse it. In JSON,
	// milliseconds (see [QuoteRequest.MarshalJSON]).
	Duration time.Duration `json:"duration_ms,omitempty"`
	// Images is the number of images an image tool generates: 0 means 1, at
	// most the tool's maximum. Per-second tools refuse it.
	Images int `json:"images,omitempty"`
	// Plan is the ID of the plan to price with; "" prices at list price.
	Plan string `json:"plan,omitempty"`
}

// Quote is the exact price of one generation, shown to the user before they
// confirm, and the most they can be charged for it (see [Quote.Cost]).
type Quote struct {
	// Tool is the ID of the tool priced.
	Tool string `json:"tool"`
	// Resolution is the resolution priced (per-second tools).
	Resolution string `json:"resolution,omitempty"`
	// Plan is the plan that priced the quote, "" when none.
	Plan string `json:"plan,omitempty"`
	// Unit is the tool's unit: what UnitRate is per.
	Unit Unit `json:"unit"`
	// BaseRate is the catalog's rate before the plan.
	BaseRate Credits `json:"base_rate"`
	// UnitRate is the rate per image or per second after the plan.
	UnitRate Credits `json:"unit_rate"`
	// Images is the number of images priced (image tools).
	Images int `json:"images,omitempty"`
	// Duration is the requested duration (per-second tools).
	Duration time.Duration `json:"duration_ms,omitempty"`
	// BilledDuration is Duration rounded to whole increments: a whole
	// number of milliseconds.
	BilledDuration time.Duration `json:"billed_duration_ms,omitempty"`
	// Increment and Rounding are the tool's billing increment (a whole
	// number of milliseconds) and rounding (per-second tools); Cost uses
	// them to price actual usage. Durations are in milliseconds in JSON
	// (see [Quote.MarshalJSON]).
	Increment time.Duration `json:"increment_ms,omitempty"`
	Rounding  Rounding      `json:"rounding,omitempty"`
	// Total is the price, and the cap on what Cost ever returns.
	Total Credits `json:"total"`
	// Breakdown explains Total in words, deterministically, such as
	// "5 s × 13.5 credits/s at 720p (plan pro: 10% off 15) = 67.5 credits".
	Breakdown string `json:"breakdown"`
	// CatalogVersion is the version of the catalog that made the quote.
	CatalogVersion string `json:"catalog_version"`
	// ExpiresAt is the end of the quote's validity: the time passed to
	// Catalog.Quote plus the catalog's quote TTL.
	ExpiresAt time.Time `json:"expires_at"`
}

// Quote prices req with the catalog's rates, by the pricing rules of
// [Catalog]: an image quote is UnitRate × Images; a per-second quote bills
// the duration rounded to whole increments by the tool's Rounding (at least
// one increment), at UnitRate per second, rounded down to the millicredit;
// a plan's override replaces the rate, otherwise its discount is applied to
// the rate, rounded down. The same request always gets the same price and
// Breakdown. The quote is valid until now plus the catalog's quote TTL; now
// is the caller's clock (Quote never reads the time itself).
//
// Errors: an unknown tool wraps [ErrUnknownTool]; an unknown plan
// [ErrUnknownPlan]; a resolution the tool does not offer
// [ErrUnknownResolution] (the message lists the offered ones); a missing
// resolution, a non-positive or too long duration, a negative or too large
// number of images, or a field that does not apply to the tool's unit
// [ErrInvalidRequest] (the message states the limit); an arithmetic
// overflow [ErrOverflow] (impossible within a valid catalog's limits).
func (c *Catalog) Quote(req QuoteRequest, now time.Time) (Quote, error) {
	t, ok := c.tools[req.Tool]
	if !ok {
		return Quote{}, fmt.Errorf("%w %q", ErrUnknownTool, truncate(req.Tool))
	}
	var p *catalogPlan
	if req.Plan != "" {
		if p, ok = c.plans[req.Plan]; !ok {
			return Quote{}, fmt.Errorf("%w %q", ErrUnknownPlan, truncate(req.Plan))
		}
	}
	q := Quote{
		Tool:           t.id,
		Unit:           t.unit,
		CatalogVersion: c.cfg.Version,
		ExpiresAt:      now.Add(c.quoteTTL),
	}
	if p != nil {
		q.Plan = p.id
	}
	if t.unit == UnitImage {
		return c.quoteImages(q, t, p, req)
	}
	return c.quoteSeconds(q, t, p, req)
}

func (c *Catalog) quoteImages(q Quote, t *catalogTool, p *catalogPlan, req QuoteRequest) (Quote, error) {
	switch {
	case req.Resolution != "":
		return Quote{}, fieldErr("resolution", "is not taken by tool %q, priced per image", t.id)
	case req.Duration != 0:
		return Quote{}, fieldErr("duration_ms", "is not taken by tool %q, priced per image", t.id)
	case req.Images < 0:
		return Quote{}, fieldErr("images", "is negative (%d)", req.Images)
	case req.Images > t.maxImages:
		return Quote{}, fieldErr("images", "is %d: tool %q takes at most %d images per request", req.Images, t.id, t.maxImages)
	}
	n := req.Images
	if n == 0 {
		n = 1
	}
	rate, note, err := p.rate(t, "", t.price)
	if err != nil {
		return Quote{}, err
	}
	total, ok := mul64(rate, int64(n))
	if !ok {
		return Quote{}, fmt.Errorf("credits: %d images × %s credits: %w", n, FromUnits(rate), ErrOverflow)
	}
	q.BaseRate = FromUnits(t.price)
	q.UnitRate = FromUnits(rate)
	q.Images = n
	q.Total = FromUnits(total)

	b := make([]byte, 0, 64)
	b = strconv.AppendInt(b, int64(n), 10)
	if n == 1 {
		b = append(b, " image × "...)
	} else {
		b = append(b, " images × "...)
	}
	b = appendCreditsText(b, q.UnitRate, "")
	b = append(b, note...)
	b = append(b, " = "...)
	b = appendCreditsText(b, q.Total, "")
	q.Breakdown = string(b)
	return q, nil
}

func (c *Catalog) quoteSeconds(q Quote, t *catalogTool, p *catalogPlan, req QuoteRequest) (Quote, error) {
	if req.Images != 0 {
		return Quote{}, fieldErr("images", "is not taken by tool %q, priced per second", t.id)
	}
	if req.Resolution == "" {
		return Quote{}, fieldErr("resolution", "is required by tool %q, priced per second (offered: %s)", t.id, t.offered)
	}
	base, ok := t.rates[req.Resolution]
	if !ok {
		return Quote{}, fmt.Errorf("%w %q for tool %q (offered: %s)", ErrUnknownResolution, truncate(req.Resolution), t.id, t.offered)
	}
	switch {
	case req.Duration <= 0:
		return Quote{}, fieldErr("duration_ms", "is %v: tool %q needs a positive duration", req.Duration, t.id)
	case req.Duration > t.maxDur:
		return Quote{}, fieldErr("duration_ms", "is %v: tool %q takes at most %v", req.Duration, t.id, t.maxDur)
	}
	rate, note, err := p.rate(t, req.Resolution, base)
	if err != nil {
		return Quote{}, err
	}
	inc := time.Duration(t.incMillis) * time.Millisecond
	n, raised := billingIncrements(req.Duration, inc, t.rounding)
	billedMs, ok := mul64(n, t.incMillis)
	if !ok || billedMs > math.MaxInt64/int64(time.Millisecond) {
		return Quote{}, fmt.Errorf("credits: billed duration of %v: %w", req.Duration, ErrOverflow)
	}
	total, ok := mulDivDown(uint64(rate), uint64(billedMs), 1000)
	if !ok {
		return Quote{}, fmt.Errorf("credits: %s s × %s credits/s: %w", formatMillisAsSeconds(billedMs), FromUnits(rate), ErrOverflow)
	}
	q.Resolution = req.Resolution
	q.BaseRate = FromUnits(base)
	q.UnitRate = FromUnits(rate)
	q.Duration = req.Duration
	q.BilledDuration = time.Duration(billedMs) * time.Millisecond
	q.Increment = inc
	q.Rounding = t.rounding
	q.Total = FromUnits(total)

	b := make([]byte, 0, 128)
	b = append(b, formatMillisAsSeconds(billedMs)...)
	b = append(b, " s"...)
	if q.BilledDuration != q.Duration {
		b = append(b, " ("...)
		b = appendDurationSeconds(b, q.Duration)
		b = append(b, " s "...)
		incText := formatMillisAsSeconds(t.incMillis)
		switch {
		case raised:
			b = append(b, "billed at least one "+incText+" s increment)"...)
		case t.rounding == RoundUp:
			b = append(b, "rounded up to a multiple of "+incText+" s)"...)
		case t.rounding == RoundDown:
			b = append(b, "rounded down to a multiple of "+incText+" s)"...)
		default:
			b = append(b, "rounded to the nearest multiple of "+incText+" s)"...)
		}
	}
	b = append(b, " × "...)
	b = appendCreditsText(b, q.UnitRate, "/s")
	b = append(b, " at "...)
	b = append(b, q.Resolution...)
	b = append(b, note...)
	b = append(b, " = "...)
	b = appendCreditsText(b, q.Total, "")
	q.Breakdown = string(b)
	return q, nil
}

// rate returns the unit rate of tool t (at resolution res for a per-second
// tool) under plan p (nil: no plan), and the breakdown's note on the plan.
func (p *catalogPlan) rate(t *catalogTool, res string, base int64) (int64, string, error) {
	if p == nil {
		return base, "", nil
	}
	if t.unit == UnitImage {
		if price, ok := p.price[t.id]; ok {
			return price, " (plan " + p.id + ": instead of " + FromUnits(base).String() + ")", nil
		}
	} else if price, ok := p.rates[t.id][res]; ok {
		return price, " (plan " + p.id + ": instead of " + FromUnits(base).String() + ")", nil
	}
	if p.discountBP == 0 {
		return base, " (plan " + p.id + ": list price)", nil
	}
	rate, ok := mulDivDown(uint64(base), uint64(catalogMaxBasisPoints-p.discountBP), catalogMaxBasisPoints)
	if !ok {
		return 0, "", fmt.Errorf("credits: %s credits at %d basis points off: %w", FromUnits(base), p.discountBP, ErrOverflow)
	}
	note := " (plan " + p.id + ": " + formatBasisPointsPercent(p.discountBP) + "% off " + FromUnits(base).String() + ")"
	return rate, note, nil
}

// billingIncrements returns how many whole increments inc the positive duration d
// is billed, by rounding r: never fewer than one; raised reports that the
// rounding alone gave none. It cannot overflow: the result is at most
// d/inc + 1.
func billingIncrements(d, inc time.Duration, r Rounding) (n int64, raised bool) {
	n, rem := int64(d/inc), d%inc
	switch r {
	case RoundDown:
	case RoundNearest:
		if rem >= inc-rem { // 2·rem ≥ inc, without overflow
			n++
		}
	default: // RoundUp
		if rem > 0 {
			n++
		}
	}
	if n == 0 && d > 0 {
		return 1, true
	}
	return n, false
}

// mulDivDown returns a × b / c rounded down, computed on 128 bits, and false when
// the result does not fit in an int64. c must be > 0.
func mulDivDown(a, b, c uint64) (int64, bool) {
	hi, lo := bits.Mul64(a, b)
	if hi >= c {
		return 0, false
	}
	q, _ := bits.Div64(hi, lo, c)
	if q > math.MaxInt64 {
		return 0, false
	}
	return int64(q), true
}

// appendCreditsText appends "7 credits", "1 credit", "13.5 credits/s"...
func appendCreditsText(b []byte, c Credits, per string) []byte {
	b = c.appendText(b)
	if c.units == UnitsPerCredit {
		b = append(b, " credit"...)
	} else {
		b = append(b, " credits"...)
	}
	return append(b, per...)
}

// formatMillisAsSeconds formats a number of milliseconds as exact seconds: "5",
// "2.5", "0.001".
func formatMillisAsSeconds(ms int64) string {
	// A millisecond count has the same fixed-point shape as a Credits value.
	return FromUnits(ms).String()
}

// appendDurationSeconds appends d as exact seconds, to the nanosecond: "4.2",
// "0.000000001".
func appendDurationSeconds(b []byte, d time.Duration) []byte {
	if d < 0 {
		b = append(b, '-')
	}
	m := uint64(d)
	if d < 0 {
		m = uint64(-(d + 1)) + 1
	}
	b = strconv.AppendUint(b, m/uint64(time.Second), 10)
	frac := m % uint64(time.Second)
	if frac == 0 {
		return b
	}
	digits := []byte(fmt.Sprintf("%09d", frac))
	return append(append(b, '.'), bytes.TrimRight(digits, "0")...)
}

// formatBasisPointsPercent formats basis points as a percentage: 1000 → "10",
// 1250 → "12.5", 5 → "0.05".
func formatBasisPointsPercent(bp int64) string {
	s := strconv.FormatInt(bp/100, 10)
	if frac := bp % 100; frac != 0 {
		f := fmt.Sprintf("%02d", frac)
		s += "." + strings.TrimRight(f, "0")
	}
	return s
}

// Usage is what a generation actually produced, priced by [Quote.Cost].
type Usage struct {
	// Duration is the actual output duration (per-second tools). In JSON,
	// milliseconds (see [Usage.MarshalJSON]).
	Duration time.Duration `json:"duration_ms,omitempty"`
	// Images is the number of images actually delivered (image tools).
	Images int `json:"images,omitempty"`
}

// Cost prices actual usage u with the quote's own rate, increment and
// rounding — never the catalog's current prices — and caps it at q.Total: a
// user is never charged more than the quote. capped reports that the cap
// applied.
//
// For an image quote the cost is UnitRate × u.Images. For a per-second quote
// u.Duration is rounded to whole increments by q.Rounding (at least one
// increment when positive) and the cost is UnitRate × the billed
// milliseconds / 1000, rounded down to the millicredit: the same rule as
// the quote, so the quoted usage costs exactly q.Total. Zero usage costs 0.
// A usage so large that its uncapped cost does not fit in an int64 is above
// the cap, and costs q.Total.
//
// Errors wrap [ErrInvalidRequest]: a negative duration or number of images,
// usage of the wrong kind for the quote's unit (Images on a per-second
// quote, Duration on an image quote), or a quote that no catalog makes (an
// unknown unit or rounding, a negative rate or total, an increment that is
// not a positive whole number of milliseconds).
func (q Quote) Cost(u Usage) (cost Credits, capped bool, err error) {
	if q.UnitRate.units < 0 || q.Total.units < 0 {
		return Credits{}, false, invalid("quote has a negative rate or total")
	}
	var (
		units int64
		ok    bool
	)
	switch q.Unit {
	case UnitImage:
		switch {
		case u.Duration != 0:
			return Credits{}, false, invalid("usage has a duration but tool %q is priced per image", q.Tool)
		case u.Images < 0:
			return Credits{}, false, invalid("usage of %d images: the number of images cannot be negative", u.Images)
		}
		units, ok = mul64(q.UnitRate.units, int64(u.Images))
	case UnitSecond:
		switch {
		case u.Images != 0:
			return Credits{}, false, invalid("usage has images but tool %q is priced per second", q.Tool)
		case u.Duration < 0:
			return Credits{}, false, invalid("usage duration %v is negative", u.Duration)
		case q.Increment <= 0 || q.Increment%time.Millisecond != 0:
			return Credits{}, false, invalid("quote increment %v is not a positive whole number of milliseconds", q.Increment)
		case q.Rounding != "" && !q.Rounding.valid():
			return Credits{}, false, invalid("quote rounding %q is not one of %q, %q, %q", q.Rounding, RoundUp, RoundNearest, RoundDown)
		}
		if u.Duration == 0 {
			return Credits{}, false, nil
		}
		n, _ := billingIncrements(u.Duration, q.Increment, q.Rounding)
		// n ≤ MaxInt64/1e6 + 1 and the increment is ≥ 1 ms, so the billed
		// milliseconds need 128 bits only for absurd increments.
		hi, billedMs := bits.Mul64(uint64(n), uint64(q.Increment/time.Millisecond))
		if hi == 0 && billedMs <= math.MaxInt64 {
			units, ok = mulDivDown(uint64(q.UnitRate.units), billedMs, 1000)
		} else {
			ok = q.UnitRate.units == 0 // 0 × anything is 0; otherwise far above any total
		}
	default:
		return Credits{}, false, invalid("quote has unknown unit %q", q.Unit)
	}
	if !ok || units > q.Total.units {
		// An uncapped cost that does not fit is above q.Total.
		return q.Total, true, nil
	}
	return FromUnits(units), false, nil
}

// Matches reports whether q prices the same thing as other: the same Tool,
// Resolution, Plan, Unit, UnitRate, Images, BilledDuration, Increment,
// Rounding, Total and CatalogVersion. It ignores ExpiresAt and Breakdown
// (and the requested Duration and BaseRate, which do not change the price).
// The ledger uses it to check that a quote presented to it is one its
// catalog makes.
func (q Quote) Matches(other Quote) bool {
	return q.Tool == other.Tool &&
		q.Resolution == other.Resolution &&
		q.Plan == other.Plan &&
		q.Unit == other.Unit &&
		q.UnitRate == other.UnitRate &&
		q.Images == other.Images &&
		q.BilledDuration == other.BilledDuration &&
		q.Increment == other.Increment &&
		q.Rounding == other.Rounding &&
		q.Total == other.Total &&
		q.CatalogVersion == other.CatalogVersion
}

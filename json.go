package credits

import (
	"encoding/json"
	"math"
	"strconv"
	"time"
)

// Durations in JSON. Every exported type that carries a time.Duration
// encodes it as a number of milliseconds under a name ending in _ms (see
// the package documentation). The Go fields stay time.Duration (tagged with
// their _ms names, for the reader). MarshalJSON encodes the type's other
// fields with encoding/json and appends the durations; UnmarshalJSON
// decodes into a struct that embeds the type's fields and shadows each
// duration with a field of the same JSON name (the outer one wins) that
// reads milliseconds, and one that reads the legacy nanosecond key.
//
// Rows and records written before this convention keep the nanosecond
// keys ("duration": 5000000000): decoding reads them where the _ms key is
// absent, so stored holds and idempotency records read as they were
// written. The requests the ledger compares byte for byte with stored
// records (quoteFingerprint, spendRequest, byHold, capturedRequest) keep
// their nanosecond encoding for ever.

// msKey is a duration key to encode: its name and its value.
type msKey struct {
	name string
	d    time.Duration
}

// marshalWithMillis encodes v, a JSON object whose own duration fields
// are zero (so omitted), and adds each non-zero duration of keys as a
// number of milliseconds before the closing brace: one encoding/json pass
// and a few appends, where a field of a Marshaler type would cost a call,
// an allocation and a validation pass each.
func marshalWithMillis(v any, keys ...msKey) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil || len(b) < 2 || b[len(b)-1] != '}' {
		return b, err
	}
	empty := len(b) == 2
	b = b[:len(b)-1]
	for _, k := range keys {
		if k.d == 0 {
			continue
		}
		if !empty {
			b = append(b, ',')
		}
		empty = false
		b = append(append(append(b, '"'), k.name...), `":`...)
		b = appendMillis(b, k.d)
	}
	return append(b, '}'), nil
}

// appendMillis appends d as a JSON number of milliseconds: an integer when
// it is a whole number of them ("5000", "-1500"), otherwise with the
// decimals it needs, at most six ("0.000001"), so that nothing is lost.
func appendMillis(b []byte, d time.Duration) []byte {
	if d < 0 {
		b = append(b, '-')
	}
	n := uint64(d)
	if d < 0 {
		n = uint64(-(d + 1)) + 1 // MinInt64 too
	}
	b = strconv.AppendUint(b, n/uint64(time.Millisecond), 10)
	frac := n % uint64(time.Millisecond)
	if frac == 0 {
		return b
	}
	var digits [6]byte
	for i := len(digits) - 1; i >= 0; i-- {
		digits[i] = byte('0' + frac%10)
		frac /= 10
	}
	end := len(digits)
	for digits[end-1] == '0' {
		end--
	}
	return append(append(b, '.'), digits[:end]...)
}

// durationField decodes one duration key of a JSON object: whether it was
// there (null counts as absent, as for any number in encoding/json), its
// value and, when the value is not a valid duration, why. It never fails
// the decoding itself, so that the type decoding it can name the field.
type durationField struct {
	d      time.Duration
	set    bool
	reason string
}

// msField is a duration key in milliseconds (the "…_ms" keys).
type msField struct{ durationField }

// UnmarshalJSON implements [json.Unmarshaler].
func (f *msField) UnmarshalJSON(b []byte) error {
	if string(b) != "null" {
		f.set = true
		f.d, f.reason = parseMillis(b)
	}
	return nil
}

// nsField is a duration key in nanoseconds (the keys of JSON written
// before durations were in milliseconds).
type nsField struct{ durationField }

// UnmarshalJSON implements [json.Unmarshaler].
func (f *nsField) UnmarshalJSON(b []byte) error {
	if string(b) != "null" {
		f.set = true
		n, err := strconv.ParseInt(string(b), 10, 64)
		if err != nil {
			f.reason = "must be an integer number of nanoseconds"
		}
		f.d = time.Duration(n)
	}
	return nil
}

// parseMillis reads a JSON number of milliseconds, exact to the
// nanosecond: an optional minus sign, digits, and at most six decimals
// (more are refused unless they are zeros); no exponent, no string.
func parseMillis(b []byte) (time.Duration, string) {
	const want = "must be a number of milliseconds, such as 5000"
	s := b
	neg := len(s) > 0 && s[0] == '-'
	if neg {
		s = s[1:]
	}
	var ns uint64 // the magnitude in nanoseconds
	i := 0
	for ; i < len(s) && '0' <= s[i] && s[i] <= '9'; i++ {
		if ns > math.MaxUint64/10/uint64(time.Millisecond) {
			return 0, "is out of range"
		}
		ns = ns*10 + uint64(s[i]-'0')
	}
	if i == 0 || (s[0] == '0' && i > 1) {
		return 0, want
	}
	if ns > math.MaxUint64/uint64(time.Millisecond) {
		return 0, "is out of range"
	}
	ns *= uint64(time.Millisecond)
	if i < len(s) && s[i] == '.' {
		i++
		start := i
		var frac uint64
		for ; i < len(s) && '0' <= s[i] && s[i] <= '9'; i++ {
			switch d := uint64(s[i] - '0'); {
			case i-start < 6:
				frac = frac*10 + d
			case d != 0:
				return 0, "is finer than a nanosecond (at most six decimals)"
			}
		}
		if i == start {
			return 0, want
		}
		for n := i - start; n < 6; n++ {
			frac *= 10
		}
		ns += frac
	}
	if i != len(s) {
		return 0, want
	}
	if ns > math.MaxInt64+1 || (ns == math.MaxInt64+1 && !neg) {
		return 0, "is out of range"
	}
	if neg {
		return time.Duration(-int64(ns-1) - 1), "" // MinInt64 too
	}
	return time.Duration(ns), ""
}

// pickDuration sets *dst from the _ms key named msName when it was given,
// otherwise from the legacy nanosecond key; it leaves *dst as it is when
// neither was (as encoding/json does with an absent key). An invalid value
// of the key used is a [*FieldError] naming it.
func pickDuration(dst *time.Duration, ms *msField, msName string, ns *nsField, nsName string) error {
	switch {
	case ms.set && ms.reason != "":
		return fieldErr(msName, "%s", ms.reason)
	case ms.set:
		*dst = ms.d
	case ns.set && ns.reason != "":
		return fieldErr(nsName, "%s", ns.reason)
	case ns.set:
		*dst = ns.d
	}
	return nil
}

// The types below have no methods, so that the JSON methods of the types
// they are made from can encode and decode their other fields with
// encoding/json without calling themselves.
type (
	quoteFields        Quote
	quoteRequestFields QuoteRequest
	usageFields        Usage
	reserveFields      ReserveRequest
	extendFields       ExtendRequest
	chargeFields       ChargeRequest
)

// MarshalJSON encodes q with its durations in milliseconds: "duration_ms",
// "billed_duration_ms" and "increment_ms", each omitted when zero (as they
// are on an image quote). A quote made by a catalog bills whole increments
// of whole milliseconds, so its billed duration and increment are always
// integers; Duration is the duration asked for, an integer too unless a Go
// caller asked for a fraction of a millisecond.
func (q Quote) MarshalJSON() ([]byte, error) {
	f := quoteFields(q)
	f.Duration, f.BilledDuration, f.Increment = 0, 0, 0
	return marshalWithMillis(&f, msKey{"duration_ms", q.Duration}, msKey{"billed_duration_ms", q.BilledDuration}, msKey{"increment_ms", q.Increment})
}

// UnmarshalJSON decodes what [Quote.MarshalJSON] encodes, and a quote
// encoded before durations were in milliseconds ("duration",
// "billed_duration" and "increment" in nanoseconds, as holds stored by
// earlier versions keep them), each read only when its _ms key is absent.
// A duration that is not a number of milliseconds exact to the nanosecond
// is a [*FieldError] naming its key (matching [ErrInvalidRequest]).
func (q *Quote) UnmarshalJSON(b []byte) error {
	w := struct {
		*quoteFields
		Duration             msField `json:"duration_ms"`
		BilledDuration       msField `json:"billed_duration_ms"`
		Increment            msField `json:"increment_ms"`
		LegacyDuration       nsField `json:"duration"`
		LegacyBilledDuration nsField `json:"billed_duration"`
		LegacyIncrement      nsField `json:"increment"`
	}{quoteFields: (*quoteFields)(q)}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	if err := pickDuration(&q.Duration, &w.Duration, "duration_ms", &w.LegacyDuration, "duration"); err != nil {
		return err
	}
	if err := pickDuration(&q.BilledDuration, &w.BilledDuration, "billed_duration_ms", &w.LegacyBilledDuration, "billed_duration"); err != nil {
		return err
	}
	return pickDuration(&q.Increment, &w.Increment, "increment_ms", &w.LegacyIncrement, "increment")
}

// MarshalJSON encodes r with its duration in milliseconds, "duration_ms"
// (omitted when zero, as for an image tool).
func (r QuoteRequest) MarshalJSON() ([]byte, error) {
	f := quoteRequestFields(r)
	f.Duration = 0
	return marshalWithMillis(&f, msKey{"duration_ms", r.Duration})
}

// UnmarshalJSON decodes what [QuoteRequest.MarshalJSON] encodes; a
// "duration" in nanoseconds, as earlier versions encoded it, is read when
// "duration_ms" is absent. A duration that is not a number of milliseconds
// exact to the nanosecond is a [*FieldError] naming its key (matching
// [ErrInvalidRequest]).
func (r *QuoteRequest) UnmarshalJSON(b []byte) error {
	w := struct {
		*quoteRequestFields
		Duration       msField `json:"duration_ms"`
		LegacyDuration nsField `json:"duration"`
	}{quoteRequestFields: (*quoteRequestFields)(r)}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	return pickDuration(&r.Duration, &w.Duration, "duration_ms", &w.LegacyDuration, "duration")
}

// MarshalJSON encodes u with its duration in milliseconds, "duration_ms"
// (omitted when zero, as for an image tool).
func (u Usage) MarshalJSON() ([]byte, error) {
	f := usageFields(u)
	f.Duration = 0
	return marshalWithMillis(&f, msKey{"duration_ms", u.Duration})
}

// UnmarshalJSON decodes what [Usage.MarshalJSON] encodes; a "duration" in
// nanoseconds, as earlier versions encoded it, is read when "duration_ms"
// is absent. A duration that is not a number of milliseconds exact to the
// nanosecond is a [*FieldError] naming its key (matching [ErrInvalidRequest]).
func (u *Usage) UnmarshalJSON(b []byte) error {
	w := struct {
		*usageFields
		Duration       msField `json:"duration_ms"`
		LegacyDuration nsField `json:"duration"`
	}{usageFields: (*usageFields)(u)}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	return pickDuration(&u.Duration, &w.Duration, "duration_ms", &w.LegacyDuration, "duration")
}

// sealedField decodes the "quote" of a request: the string of
// [Ledger.SealQuote]. Anything else (such as the quote's own JSON object,
// which a server cannot trust) is recorded as a reason, for the request's
// UnmarshalJSON to refuse naming the key.
type sealedField struct {
	s      string
	reason string
}

// UnmarshalJSON implements [json.Unmarshaler].
func (f *sealedField) UnmarshalJSON(b []byte) error {
	switch {
	case string(b) == "null":
	case len(b) > 0 && b[0] == '"':
		if err := json.Unmarshal(b, &f.s); err != nil {
			f.reason = "is not a valid JSON string"
		}
	default:
		f.reason = "must be the sealed quote, the string Ledger.SealQuote made (a quote as a JSON object is not accepted: a client could change it)"
	}
	return nil
}

// MarshalJSON encodes r as a JSON API takes it: "quote" is the sealed
// quote (SealedQuote; Quote itself, a Go value, is not encoded) and "ttl_ms"
// the TTL in milliseconds, omitted when zero. Key is not encoded: a service
// takes it from a header such as Idempotency-Key.
func (r ReserveRequest) MarshalJSON() ([]byte, error) {
	f := reserveFields(r)
	f.TTL = 0
	return marshalWithMillis(&f, msKey{"ttl_ms", r.TTL})
}

// UnmarshalJSON decodes what [ReserveRequest.MarshalJSON] encodes; a "ttl"
// in nanoseconds, as earlier versions encoded it, is read when "ttl_ms" is
// absent. Errors are [*FieldError] values naming the key (matching
// [ErrInvalidRequest]): a TTL that is not a number of milliseconds exact
// to the nanosecond, or a "quote" that is not a string (such as the
// quote's JSON object: only a sealed quote is taken from a client).
func (r *ReserveRequest) UnmarshalJSON(b []byte) error {
	w := struct {
		*reserveFields
		SealedQuote sealedField `json:"quote"`
		TTL         msField     `json:"ttl_ms"`
		LegacyTTL   nsField     `json:"ttl"`
	}{reserveFields: (*reserveFields)(r), SealedQuote: sealedField{s: r.SealedQuote}}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	if w.SealedQuote.reason != "" {
		return fieldErr("quote", "%s", w.SealedQuote.reason)
	}
	r.SealedQuote = w.SealedQuote.s
	return pickDuration(&r.TTL, &w.TTL, "ttl_ms", &w.LegacyTTL, "ttl")
}

// UnmarshalJSON decodes a charge request as a JSON API takes it (the
// fields' tags): "quote" is the sealed quote, into SealedQuote. A "quote"
// that is not a string (such as the quote's JSON object: only a sealed
// quote is taken from a client) is a [*FieldError] naming it (matching
// [ErrInvalidRequest]). (ChargeRequest has no MarshalJSON: its tags say it
// all.)
func (r *ChargeRequest) UnmarshalJSON(b []byte) error {
	w := struct {
		*chargeFields
		SealedQuote sealedField `json:"quote"`
	}{chargeFields: (*chargeFields)(r), SealedQuote: sealedField{s: r.SealedQuote}}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	if w.SealedQuote.reason != "" {
		return fieldErr("quote", "%s", w.SealedQuote.reason)
	}
	r.SealedQuote = w.SealedQuote.s
	return nil
}

// MarshalJSON encodes r with its TTL in milliseconds, "ttl_ms" (omitted
// when zero).
func (r ExtendRequest) MarshalJSON() ([]byte, error) {
	f := extendFields(r)
	f.TTL = 0
	return marshalWithMillis(&f, msKey{"ttl_ms", r.TTL})
}

// UnmarshalJSON decodes what [ExtendRequest.MarshalJSON] encodes; a "ttl"
// in nanoseconds, as earlier versions encoded it, is read when "ttl_ms" is
// absent. A TTL that is not a number of milliseconds exact to the
// nanosecond is a [*FieldError] naming its key (matching [ErrInvalidRequest]).
func (r *ExtendRequest) UnmarshalJSON(b []byte) error {
	w := struct {
		*extendFields
		TTL       msField `json:"ttl_ms"`
		LegacyTTL nsField `json:"ttl"`
	}{extendFields: (*extendFields)(r)}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	return pickDuration(&r.TTL, &w.TTL, "ttl_ms", &w.LegacyTTL, "ttl")
}

// capturedRequest is how a Capture's idempotency record keeps its request,
// compared byte for byte with a retry's: the encoding CaptureRequest had
// before durations were in milliseconds ("usage": {"duration": <ns>}). It
// must never change, or a retry of a capture recorded earlier would not be
// the same request.
type capturedRequest struct {
	Hold  string `json:"hold"`
	Usage struct {
		Duration time.Duration `json:"duration,omitempty"`
		Images   int           `json:"images,omitempty"`
	} `json:"usage"`
	Amount Credits `json:"amount"`
}

func recordedCapture(req CaptureRequest) capturedRequest {
	c := capturedRequest{Hold: req.Hold, Amount: req.Amount}
	c.Usage.Duration, c.Usage.Images = req.Usage.Duration, req.Usage.Images
	return c
}

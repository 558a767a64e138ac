package credits

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
)

// Sealed quotes: the quote a user saw in a browser comes back, at confirm
// time and on any app server, as the string the ledger made of it.
//
// Format, version 1: "q1." + base64url(payload) + "." + base64url(tag),
// unpadded, where payload is the quote's JSON ([Quote.MarshalJSON]) and
// tag is HMAC-SHA256, under the ledger's key, of everything before the
// second dot (the version included, so that a payload cannot be moved to
// another version).
const (
	sealVersion = "q1."
	// MaxSealedQuoteLength bounds a sealed quote: [Ledger.OpenQuote] refuses
	// a longer string before decoding anything, and [Ledger.SealQuote]
	// refuses to make one. A quote made by a catalog is far shorter: a
	// 5-second video quote seals to about 450 bytes, the longest a catalog
	// can make (every ID at its longest) to about 1,100.
	MaxSealedQuoteLength = 2048
	// MinQuoteKeyLength is the shortest key [Config.QuoteKey] and
	// [Config.EarlierQuoteKeys] accept, in bytes: 32, the size of the
	// HMAC-SHA256 output.
	MinQuoteKeyLength = 32
)

var sealEncoding = base64.RawURLEncoding.Strict()

// SealQuote returns q as an opaque, URL-safe string signed with
// Config.QuoteKey (HMAC-SHA256), for a client to send back when the user
// confirms: as [ReserveRequest.SealedQuote] or [ChargeRequest.SealedQuote]
// ("quote" in JSON), or through [Ledger.OpenQuote]. Any server whose
// ledger has the key opens it; nobody without the key can make or change
// one. The string is only base64url of the quote's JSON and a tag: it is
// signed, not encrypted, so the client can read the quote it carries.
//
// A sealed quote is as long as its quote's JSON and a third, and 47 bytes:
// about 450 bytes for a 5-second video quote, about 325 for an image
// quote; fine in a form or a URL, and at most [MaxSealedQuoteLength].
//
// Sealing is not checking: SealQuote seals any quote, and Reserve and
// Charge check an opened quote as they check any other (unexpired, priced
// by a catalog version the ledger accepts, with the account's plan). Seal
// the quote of [Ledger.QuoteFor] so that it is the account's price. A
// sealed quote names no account: whoever holds it can only pay its price
// with an account on its plan.
//
// Errors: [ErrNoQuoteKey] when the ledger has no Config.QuoteKey; an error
// matching [ErrInvalidQuote] when the sealed string would be longer than
// MaxSealedQuoteLength; the quote's JSON encoding error.
func (l *Ledger) SealQuote(q Quote) (string, error) {
	key := l.cfg.QuoteKey
	if len(key) == 0 {
		return "", fmt.Errorf("%w: set Config.QuoteKey to seal quotes", ErrNoQuoteKey)
	}
	payload, err := json.Marshal(q)
	if err != nil {
		return "", fmt.Errorf("credits: seal quote: %w", err)
	}
	n := len(sealVersion) + sealEncoding.EncodedLen(len(payload)) + 1 + sealEncoding.EncodedLen(sha256.Size)
	if n > MaxSealedQuoteLength {
		return "", fmt.Errorf("%w: the quote would seal to %d bytes, more than %d", ErrInvalidQuote, n, MaxSealedQuoteLength)
	}
	b := make([]byte, 0, n)
	b = append(b, sealVersion...)
	b = sealEncoding.AppendEncode(b, payload)
	tag := sealTag(key, b)
	b = append(b, '.')
	b = sealEncoding.AppendEncode(b, tag[:])
	return string(b), nil
}

// OpenQuote returns the quote that s, made by [Ledger.SealQuote] with
// Config.QuoteKey or one of Config.EarlierQuoteKeys, seals. It checks the
// seal, not the quote: Reserve and Charge still refuse it once it has
// expired ([ErrQuoteExpired]) or when the catalog no longer prices it so
// ([ErrQuoteMismatch]).
//
// A string that is not a sealed quote of this ledger — garbled, truncated,
// longer than [MaxSealedQuoteLength], of an unknown version, altered, or
// sealed with a key the ledger does not have — is refused with an error
// matching [ErrInvalidQuote] (and so [ErrInvalidRequest]) that says why;
// the tag is checked in constant time, before anything else of s is
// decoded. Without Config.QuoteKey it fails with [ErrNoQuoteKey].
func (l *Ledger) OpenQuote(s string) (Quote, error) {
	return l.openQuote(s, "")
}

// openQuote is OpenQuote; a refusal is a *FieldError for field when the
// sealed quote came in a request's field.
func (l *Ledger) openQuote(s, field string) (Quote, error) {
	if len(l.cfg.QuoteKey) == 0 {
		return Quote{}, fmt.Errorf("%w: set Config.QuoteKey to open sealed quotes", ErrNoQuoteKey)
	}
	refuse := func(format string, args ...any) (Quote, error) {
		reason := fmt.Sprintf(format, args...)
		if field != "" {
			return Quote{}, &FieldError{Field: field, Reason: "does not open: " + reason, kind: ErrInvalidQuote}
		}
		return Quote{}, fmt.Errorf("%w: %s", ErrInvalidQuote, reason)
	}
	switch {
	case s == "":
		return refuse("empty")
	case len(s) > MaxSealedQuoteLength:
		return refuse("%d bytes, longer than the %d a sealed quote can be", len(s), MaxSealedQuoteLength)
	case !strings.HasPrefix(s, sealVersion):
		if v, _, ok := strings.Cut(s, "."); ok && len(v) > 1 && len(v) <= 8 && v[0] == 'q' && strings.Trim(v[1:], "0123456789") == "" {
			return refuse("version %q is not one this ledger opens (it opens %q)", v, strings.TrimSuffix(sealVersion, "."))
		}
		return refuse("it does not start with %q", sealVersion)
	}
	dot := strings.LastIndexByte(s, '.')
	if dot < len(sealVersion) {
		return refuse("it has no tag")
	}
	signed, tagText := s[:dot], s[dot+1:]
	var tag [sha256.Size]byte
	if sealEncoding.DecodedLen(len(tagText)) != len(tag) {
		return refuse("its tag is not %d bytes of base64url", len(tag))
	}
	if n, err := sealEncoding.Decode(tag[:], []byte(tagText)); err != nil || n != len(tag) {
		return refuse("its tag is not %d bytes of base64url", len(tag))
	}
	if !l.sealedByUs(signed, tag) {
		return refuse("the tag does not match (altered, or sealed with another key)")
	}
	payload, err := sealEncoding.DecodeString(signed[len(sealVersion):])
	if err != nil {
		return refuse("its payload is not base64url")
	}
	var q Quote
	if err := json.Unmarshal(payload, &q); err != nil {
		return refuse("its payload is not a quote: %v", err)
	}
	return q, nil
}

// sealedByUs reports whether tag is the tag of signed under the current
// key or an earlier one, comparing each in constant time.
func (l *Ledger) sealedByUs(signed string, tag [sha256.Size]byte) bool {
	want := sealTag(l.cfg.QuoteKey, []byte(signed))
	ok := hmac.Equal(want[:], tag[:])
	for _, key := range l.cfg.EarlierQuoteKeys {
		want = sealTag(key, []byte(signed))
		ok = hmac.Equal(want[:], tag[:]) || ok
	}
	return ok
}

func sealTag(key, signed []byte) (tag [sha256.Size]byte) {
	mac := hmac.New(sha256.New, key)
	mac.Write(signed)
	mac.Sum(tag[:0])
	return tag
}

// requestQuote is the quote a Reserve or Charge request names: Quote, or
// SealedQuote opened.
func (l *Ledger) requestQuote(q Quote, sealed string) (Quote, error) {
	if sealed == "" {
		return q, nil
	}
	if q != (Quote{}) {
		return Quote{}, fieldErr("quote", "is given twice, as Quote and as SealedQuote: give it one way")
	}
	return l.openQuote(sealed, "quote")
}

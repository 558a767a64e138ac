package webhooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/creditkit/credits"
)

// The headers of a delivery (see the package documentation).
const (
	HeaderEventID   = "Credits-Event-Id"
	HeaderTimestamp = "Credits-Timestamp"
	HeaderSignature = "Credits-Signature"
)

// DefaultTolerance is how far a delivery's timestamp may be from the
// receiver's clock, either way, when the caller of [Verify] gives none.
const DefaultTolerance = 5 * time.Minute

// MaxBodyBytes is the largest body [VerifyRequest] reads: 1 MiB. An event's
// JSON is well under a kilobyte.
const MaxBodyBytes = 1 << 20

// The errors [Verify] and [VerifyRequest] return, for errors.Is. Whatever
// the error, the request is not authentic (or not usable) and must be
// refused; none of them is ever returned for a delivery that verifies.
var (
	// ErrMalformed: a header is missing or garbled, or the signed body is
	// not an event.
	ErrMalformed = errors.New("webhooks: malformed delivery")
	// ErrBadSignature: no signature of the header matches the body under
	// any of the secrets (a wrong secret, or a tampered body or timestamp).
	ErrBadSignature = errors.New("webhooks: signature does not match")
	// ErrStaleTimestamp: the signature matches, but the timestamp is
	// further from now than the tolerance, in the past or in the future.
	ErrStaleTimestamp = errors.New("webhooks: timestamp outside the tolerance")
	// ErrBodyTooLarge: the body exceeds [MaxBodyBytes].
	ErrBodyTooLarge = errors.New("webhooks: body too large")
	// ErrNoSecret: the verifier was given no non-empty secret, so it can
	// verify nothing (a configuration mistake, never an attack).
	ErrNoSecret = errors.New("webhooks: no secret to verify with")
)

// signature is hex(HMAC-SHA256(secret, timestamp + "." + body)).
func signature(secret []byte, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	sum := m.Sum(nil)
	out := make([]byte, hex.EncodedLen(len(sum)))
	hex.Encode(out, sum)
	return out
}

// Sign returns the Credits-Signature header value for body sent at
// timestamp (Unix seconds): one "v1=" value per secret, in order,
// comma-separated. It is what a [Sender] sends; it is exported for
// receivers' tests and for senders written by hand.
func Sign(timestamp int64, body []byte, secrets ...[]byte) string {
	ts := strconv.FormatInt(timestamp, 10)
	var b strings.Builder
	for i, s := range secrets {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("v1=")
		b.Write(signature(s, ts, body))
	}
	return b.String()
}

// VerifyRequest reads r's body (at most [MaxBodyBytes]) and verifies it as
// [Verify] does. It reads the body whatever the outcome; the caller need
// not read it again.
func VerifyRequest(r *http.Request, secrets [][]byte, now time.Time, tolerance time.Duration) (credits.Event, []byte, error) {
	if r.Body == nil {
		return credits.Event{}, nil, fmt.Errorf("%w: no body", ErrMalformed)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		return credits.Event{}, nil, fmt.Errorf("webhooks: reading the body: %w", err)
	}
	if len(body) > MaxBodyBytes {
		return credits.Event{}, nil, fmt.Errorf("%w: more than %d bytes", ErrBodyTooLarge, MaxBodyBytes)
	}
	e, err := Verify(r.Header, body, secrets, now, tolerance)
	return e, body, err
}

// Verify checks a delivery: that header's Credits-Signature has a v1=
// signature of its Credits-Timestamp and body under one of secrets
// (compared in constant time), that the timestamp is within tolerance of
// now, in either direction (0 means [DefaultTolerance]), and that the body
// is an event whose "id" agrees with the Credits-Event-Id header, if there
// is one. It returns the event only if all of these hold; otherwise an
// error wrapping [ErrMalformed], [ErrBadSignature], [ErrStaleTimestamp] or
// [ErrNoSecret]. Empty secrets are ignored: they never verify anything.
func Verify(header http.Header, body []byte, secrets [][]byte, now time.Time, tolerance time.Duration) (credits.Event, error) {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	usable := 0
	for _, s := range secrets {
		if len(s) > 0 {
			usable++
		}
	}
	if usable == 0 {
		return credits.Event{}, ErrNoSecret
	}
	ts := header.Get(HeaderTimestamp)
	unix, err := parseTimestamp(ts)
	if err != nil {
		return credits.Event{}, err
	}
	sigs, err := parseSignatures(header.Values(HeaderSignature))
	if err != nil {
		return credits.Event{}, err
	}
	if !matches(sigs, secrets, ts, body) {
		return credits.Event{}, ErrBadSignature
	}
	sent := time.Unix(unix, 0)
	if d := now.Sub(sent); d > tolerance || d < -tolerance {
		return credits.Event{}, fmt.Errorf("%w: sent at %s, %s from now (tolerance %s)",
			ErrStaleTimestamp, sent.UTC().Format(time.RFC3339), d.Round(time.Second), tolerance)
	}
	var e credits.Event
	if err := json.Unmarshal(body, &e); err != nil {
		return credits.Event{}, fmt.Errorf("%w: the body is not an event: %v", ErrMalformed, err)
	}
	if e.ID == "" {
		return credits.Event{}, fmt.Errorf("%w: the event has no id", ErrMalformed)
	}
	if id := header.Get(HeaderEventID); id != "" && id != e.ID {
		return credits.Event{}, fmt.Errorf("%w: %s %q is not the body's id %q", ErrMalformed, HeaderEventID, id, e.ID)
	}
	return e, nil
}

// parseTimestamp reads Unix seconds: decimal digits only, no sign.
func parseTimestamp(ts string) (int64, error) {
	if ts == "" {
		return 0, fmt.Errorf("%w: no %s header", ErrMalformed, HeaderTimestamp)
	}
	if len(ts) > 18 || strings.TrimLeft(ts, "0123456789") != "" {
		return 0, fmt.Errorf("%w: %s %q is not Unix seconds", ErrMalformed, HeaderTimestamp, ts)
	}
	n, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %s %q is not Unix seconds", ErrMalformed, HeaderTimestamp, ts)
	}
	return n, nil
}

// parseSignatures returns the v1= values of the signature headers (one
// header with comma-separated values, or several headers), decoded from
// hex. Values of other schemes are skipped; a garbled v1 value, or no v1
// value at all, is malformed.
func parseSignatures(values []string) ([][]byte, error) {
	var sigs [][]byte
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			part = strings.TrimSpace(part)
			scheme, val, ok := strings.Cut(part, "=")
			if !ok || scheme != "v1" {
				continue
			}
			if len(val) != 2*sha256.Size {
				return nil, fmt.Errorf("%w: a v1 signature of %d characters, not %d", ErrMalformed, len(val), 2*sha256.Size)
			}
			if _, err := hex.DecodeString(val); err != nil {
				return nil, fmt.Errorf("%w: a v1 signature that is not hex", ErrMalformed)
			}
			sigs = append(sigs, []byte(strings.ToLower(val)))
		}
	}
	if len(sigs) == 0 {
		return nil, fmt.Errorf("%w: no v1 signature in %s", ErrMalformed, HeaderSignature)
	}
	return sigs, nil
}

// matches reports whether any signature equals the expected one under any
// non-empty secret. Every pair is compared in constant time.
func matches(sigs [][]byte, secrets [][]byte, ts string, body []byte) bool {
	ok := false
	for _, s := range secrets {
		if len(s) == 0 {
			continue
		}
		want := signature(s, ts, body)
		for _, sig := range sigs {
			if hmac.Equal(sig, want) {
				ok = true
			}
		}
	}
	return ok
}

// bodyOf is the JSON a sender posts for e.
func bodyOf(e credits.Event) ([]byte, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	return b, nil
}

package webhooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/creditkit/credits"
)

// Source is where a [Sender] takes its events: a [*credits.Feed] (from
// [credits.Ledger.Feed]), or anything that behaves like one. Next returns
// the events after the last acknowledged one, again if they were not
// acknowledged; Ack acknowledges every event up to and including e.
type Source interface {
	Next(ctx context.Context) ([]credits.Event, error)
	Ack(ctx context.Context, e credits.Event) error
}

var _ Source = (*credits.Feed)(nil)

// ErrInvalidConfig: a [Sender] is missing its Source, URL or Secret, or a
// field is out of range. Run and Step return it before delivering anything.
var ErrInvalidConfig = errors.New("webhooks: invalid sender configuration")

// The defaults of a [Sender]'s zero fields.
const (
	DefaultMaxAttempts  = 8
	DefaultTimeout      = 10 * time.Second
	DefaultPollInterval = time.Second
)

// StatusError is a failed attempt's error when the endpoint answered with
// a status other than 2xx.
type StatusError struct {
	StatusCode int
}

// Error says the status.
func (e *StatusError) Error() string {
	return fmt.Sprintf("webhooks: the endpoint answered %d %s", e.StatusCode, http.StatusText(e.StatusCode))
}

// Sender delivers a feed to one HTTP endpoint, as the package
// documentation describes: in feed order, one event at a time, each
// signed afresh on every attempt, retried with backoff, dead-lettered
// after MaxAttempts, and acknowledged only once delivered (2xx) or
// dead-lettered. Set its fields, then call [Sender.Run]; do not change
// them while it runs. A Sender is used by one goroutine at a time.
//
// The feed's lease (credits.FeedConfig.LeaseTTL) is renewed by each Next
// and, while one event is retried, before each new attempt (by a Source
// with a Renew method, as *credits.Feed has): give it a TTL longer than
// one attempt and the longest backoff wait together (Timeout + 1 min
// with the defaults), or a second server running the same consumer takes
// over meanwhile. Nothing is lost if it does: this sender's renewal or
// next Ack fails with [credits.ErrFeedLeased], it stops that batch, and
// the other delivers from the last acknowledged event (so the receiver
// may see an event twice, as always).
type Sender struct {
	// Source is the feed to deliver, required.
	Source Source
	// URL is the endpoint each event is POSTed to, required.
	URL string
	// Secret signs every delivery (HMAC-SHA256), required, at least 16
	// bytes; 32 random bytes are a good secret.
	Secret []byte
	// ExtraSecrets, if any, also sign every delivery, one v1= value each:
	// to rotate the secret, sign with the new one (Secret) and the old one
	// until every receiver knows the new one.
	ExtraSecrets [][]byte

	// Client sends the requests. nil means a client that follows no
	// redirect (a 3xx is a failed attempt) and has no timeout of its own.
	Client *http.Client
	// Timeout bounds each attempt, response included; 0 means
	// [DefaultTimeout]. A timeout is a failed attempt.
	Timeout time.Duration
	// MaxAttempts is how many attempts one event gets before it is
	// dead-lettered; 0 means [DefaultMaxAttempts].
	MaxAttempts int
	// Backoff returns how long to wait after failed attempt number attempt
	// (1, 2, …) before the next one; nil means [DefaultBackoff].
	Backoff func(attempt int) time.Duration
	// PollInterval is how long Run waits when the feed has nothing new, or
	// after an error reading or acknowledging it (the lease held by
	// another server, the database down); 0 means [DefaultPollInterval].
	PollInterval time.Duration

	// OnDeadLetter, if set, is called with an event that failed
	// MaxAttempts times and an error wrapping [ErrUndelivered] and the
	// last attempt's error. The event is
	// acknowledged only if it returns nil; if it returns an error, the
	// event is not acknowledged and is tried again from its first attempt
	// on the next Step (so a dead letter recorded in the application's
	// database is never lost to a failed insert).
	OnDeadLetter func(ctx context.Context, e credits.Event, lastErr error) error
	// Logger receives a warning for each failed attempt and an error for
	// each dead letter; nil means slog.Default().
	Logger *slog.Logger

	// Now is the clock that timestamps each attempt; nil means time.Now.
	Now func() time.Time
	// Sleep waits d or until ctx is done, returning ctx's error then; nil
	// means a timer. Tests replace it so that backoff takes no time.
	Sleep func(ctx context.Context, d time.Duration) error
}

// DefaultBackoff is the wait after failed attempt number attempt:
// exponential from 1 s, doubling, capped at 1 min, with jitter (a random
// duration between half of it and all of it), so that many senders
// retrying at once spread out. The waits of the default 8 attempts add up
// to at most about 3 min.
func DefaultBackoff(attempt int) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	d := time.Minute
	if attempt <= 6 {
		d = time.Second << (attempt - 1) // 1, 2, 4, 8, 16, 32 s
	}
	half := d / 2
	return half + rand.N(half+1)
}

// check refuses a configuration it cannot run with.
func (s *Sender) check() error {
	if s.Source == nil {
		return fmt.Errorf("%w: no Source", ErrInvalidConfig)
	}
	return s.checkDelivery()
}

// checkDelivery refuses a configuration it cannot deliver with.
func (s *Sender) checkDelivery() error {
	switch {
	case s.URL == "":
		return fmt.Errorf("%w: no URL", ErrInvalidConfig)
	case len(s.Secret) < 16:
		return fmt.Errorf("%w: the Secret has %d bytes, fewer than 16", ErrInvalidConfig, len(s.Secret))
	case s.MaxAttempts < 0:
		return fmt.Errorf("%w: MaxAttempts %d is negative", ErrInvalidConfig, s.MaxAttempts)
	case s.Timeout < 0:
		return fmt.Errorf("%w: Timeout is negative", ErrInvalidConfig)
	case s.PollInterval < 0:
		return fmt.Errorf("%w: PollInterval is negative", ErrInvalidConfig)
	}
	for _, x := range s.ExtraSecrets {
		if len(x) < 16 {
			return fmt.Errorf("%w: an ExtraSecret has %d bytes, fewer than 16", ErrInvalidConfig, len(x))
		}
	}
	req, err := http.NewRequest(http.MethodPost, s.URL, nil)
	if err != nil || (req.URL.Scheme != "http" && req.URL.Scheme != "https") || req.URL.Host == "" {
		return fmt.Errorf("%w: URL %q is not an http(s) URL", ErrInvalidConfig, s.URL)
	}
	return nil
}

// defaultClient follows no redirect: a webhook answered with 3xx was not
// delivered.
var defaultClient = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func (s *Sender) client() *http.Client {
	if s.Client != nil {
		return s.Client
	}
	return defaultClient
}

func (s *Sender) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Sender) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

func (s *Sender) sleep(ctx context.Context, d time.Duration) error {
	if s.Sleep != nil {
		return s.Sleep(ctx, d)
	}
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (s *Sender) maxAttempts() int {
	if s.MaxAttempts > 0 {
		return s.MaxAttempts
	}
	return DefaultMaxAttempts
}

func (s *Sender) pollInterval() time.Duration {
	if s.PollInterval > 0 {
		return s.PollInterval
	}
	return DefaultPollInterval
}

// Run delivers the feed until ctx is done, and then returns ctx's error.
// It returns early only for a configuration error ([ErrInvalidConfig]).
// An error reading or acknowledging the feed (another server holding the
// lease: [credits.ErrFeedLeased]; a store error) is logged, and Run tries
// again after PollInterval; when the feed has nothing new, it waits
// PollInterval too.
func (s *Sender) Run(ctx context.Context) error {
	if err := s.check(); err != nil {
		return err
	}
	for {
		n, err := s.step(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			level := slog.LevelWarn
			if errors.Is(err, credits.ErrFeedLeased) {
				level = slog.LevelDebug
			}
			s.logger().Log(ctx, level, "webhooks: delivery paused", "url", s.URL, "err", err, "retry_in", s.pollInterval())
		}
		if err != nil || n == 0 {
			if err := s.sleep(ctx, s.pollInterval()); err != nil {
				return err
			}
		}
	}
}

// Step takes the next batch of events from the Source and delivers it:
// each event in order, acknowledged right after it was delivered or
// dead-lettered. It returns how many events it acknowledged (0 when the
// feed had nothing new), and stops at the first error: reading or
// acknowledging the feed, OnDeadLetter's, or ctx's (an event whose
// delivery ctx interrupts is not acknowledged: it comes again).
func (s *Sender) Step(ctx context.Context) (int, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	return s.step(ctx)
}

func (s *Sender) step(ctx context.Context) (int, error) {
	events, err := s.Source.Next(ctx)
	if err != nil {
		return 0, err
	}
	for i, e := range events {
		if err := s.handle(ctx, e); err != nil {
			return i, err
		}
		if err := s.Source.Ack(ctx, e); err != nil {
			return i, fmt.Errorf("webhooks: acknowledging %s: %w", e.ID, err)
		}
	}
	return len(events), nil
}

// ErrUndelivered: every attempt to deliver an event failed. The error
// [Sender.Deliver] returns then also wraps the last attempt's error (a
// [*StatusError], a network error, a timeout).
var ErrUndelivered = errors.New("webhooks: undelivered")

// handle delivers e, or dead-letters it; nil means e may be acknowledged.
func (s *Sender) handle(ctx context.Context, e credits.Event) error {
	err := s.Deliver(ctx, e)
	if !errors.Is(err, ErrUndelivered) {
		return err
	}
	s.logger().ErrorContext(ctx, "webhooks: dead letter", "url", s.URL, "event", e.ID, "err", err)
	if s.OnDeadLetter != nil {
		if err := s.OnDeadLetter(ctx, e, err); err != nil {
			return fmt.Errorf("webhooks: dead letter %s not recorded: %w", e.ID, err)
		}
	}
	return nil
}

// Deliver sends e to the endpoint, retrying with backoff up to
// MaxAttempts attempts; it neither acknowledges nor dead-letters. It
// returns nil once an attempt got a 2xx; an error wrapping
// [ErrUndelivered] and the last attempt's error when every attempt
// failed; ctx's error when ctx is done first (whatever the endpoint got
// meanwhile); an error wrapping [ErrInvalidConfig] without trying; or an
// error if e cannot be encoded. It needs no Source.
func (s *Sender) Deliver(ctx context.Context, e credits.Event) error {
	if err := s.checkDelivery(); err != nil {
		return err
	}
	body, err := bodyOf(e)
	if err != nil {
		return fmt.Errorf("webhooks: encoding %s: %w", e.ID, err)
	}
	backoff := s.Backoff
	if backoff == nil {
		backoff = DefaultBackoff
	}
	maxN := s.maxAttempts()
	for attempt := 1; ; attempt++ {
		lastErr := s.attempt(ctx, e.ID, body)
		if lastErr == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if attempt >= maxN {
			return fmt.Errorf("%w: %s after %d attempts: %w", ErrUndelivered, e.ID, attempt, lastErr)
		}
		wait := backoff(attempt)
		s.logger().WarnContext(ctx, "webhooks: delivery failed", "url", s.URL, "event", e.ID,
			"attempt", attempt, "retry_in", wait, "err", lastErr)
		if err := s.sleep(ctx, wait); err != nil {
			return err
		}
		// A long retry keeps the feed's lease (a *credits.Feed renews it),
		// so that no other server takes over and sends the event too.
		if r, ok := s.Source.(interface{ Renew(context.Context) error }); ok {
			if err := r.Renew(ctx); err != nil {
				return fmt.Errorf("webhooks: %s: the feed's lease: %w", e.ID, err)
			}
		}
	}
}

// attempt POSTs body once, signed now; nil means a 2xx.
func (s *Sender) attempt(ctx context.Context, id string, body []byte) error {
	timeout := s.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	ts := s.now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "credits-webhooks/1")
	req.Header.Set(HeaderEventID, id)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, Sign(ts, body, append([][]byte{s.Secret}, s.ExtraSecrets...)...))
	resp, err := s.client().Do(req)
	if err != nil {
		return err
	}
	// Drain a little of the body so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &StatusError{StatusCode: resp.StatusCode}
	}
	return nil
}

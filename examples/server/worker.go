package main

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"regexp"
	"sync"
	"time"

	"github.com/creditkit/credits"
)

// workerConfig configures the fake generation worker.
type workerConfig struct {
	// MinDelay and MaxDelay bound how long a generation takes.
	MinDelay, MaxDelay time.Duration
	// FailRate is the chance that a generation fails on its own (0 to 1).
	// A prompt with the word "fail" in it always fails.
	FailRate float64
	// Poll is how often the worker looks for new holds when there were
	// none.
	Poll time.Duration
	// Holder names this process as the holder of the feed consumer's
	// lease; "" is a random name. The server names it after the host and
	// the address it listens on, so that a server restarted on the same
	// address takes its lease back at once instead of waiting for the
	// stopped process's lease to lapse.
	Holder string
	// CaptureAttempts is how many times a capture that failed for the
	// server's reasons (a transient store error, a timeout) is tried in
	// all before the worker gives up; 0 is 5. CaptureBackoff is the wait
	// before the second attempt, doubled before each next one; 0 is 250 ms.
	CaptureAttempts int
	CaptureBackoff  time.Duration
	// Settled, when set, is called with the account of each hold the
	// worker captured or released: the platform wakes the account's open
	// event streams with it (credithttp's Handler.Notify), so the page
	// shows the outcome at once rather than at the stream's next poll.
	Settled func(account string)
	// gate, when set, runs before a generation settles: the end-to-end
	// test holds a job open with it until it has seen the held credits.
	gate func(ctx context.Context, h credits.Hold)
}

// worker is the platform's fake generation worker. It reads the ledger's
// feed, a durable consumer named "demo-worker", and for each new hold runs
// the job: it waits a while, then captures what the job produced, or
// releases the hold with the reason the job failed.
//
// It acknowledges events once it has started their jobs. A worker that
// crashes mid-job leaves its holds open; each is released by itself when
// its deadline passes (Config.HoldTTL), so nobody loses credits to it. A
// worker that is stopped releases the jobs it was running.
type worker struct {
	ledger *credits.Ledger
	cfg    workerConfig
	log    *slog.Logger

	mu      sync.Mutex
	running map[string]bool // holds whose job runs now
	jobs    sync.WaitGroup
}

// newWorker returns the worker of ledger; it runs once Run is called.
func newWorker(ledger *credits.Ledger, cfg workerConfig) *worker {
	if cfg.MaxDelay < cfg.MinDelay {
		cfg.MaxDelay = cfg.MinDelay
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 200 * time.Millisecond
	}
	if cfg.CaptureAttempts <= 0 {
		cfg.CaptureAttempts = 5
	}
	if cfg.CaptureBackoff <= 0 {
		cfg.CaptureBackoff = 250 * time.Millisecond
	}
	return &worker{ledger: ledger, cfg: cfg, log: slog.Default().With("worker", "demo-worker"), running: map[string]bool{}}
}

// Run consumes the feed until ctx is cancelled, then waits for the jobs it
// started (which release their holds) and returns ctx's error.
func (w *worker) Run(ctx context.Context) error {
	defer w.jobs.Wait()
	feed, err := w.ledger.Feed(credits.FeedConfig{Name: "demo-worker", Holder: w.cfg.Holder})
	if err != nil {
		return err
	}
	for {
		events, err := feed.Next(ctx)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, credits.ErrFeedLeased):
			// Another process of this platform runs the worker; take
			// over when its lease lapses.
			if !sleep(ctx, 5*w.cfg.Poll) {
				return ctx.Err()
			}
			continue
		case err != nil:
			w.log.Error("reading the feed", "err", err)
			if !sleep(ctx, 5*w.cfg.Poll) {
				return ctx.Err()
			}
			continue
		}
		if len(events) == 0 {
			if !sleep(ctx, w.cfg.Poll) {
				return ctx.Err()
			}
			continue
		}
		for _, e := range events {
			if e.Type == credits.EntryHold {
				w.start(ctx, e.Hold)
			}
		}
		if err := feed.Ack(ctx, events[len(events)-1]); err != nil && ctx.Err() == nil {
			// The lease was lost: the events come again, to this worker
			// or another; a hold already settled or running is skipped.
			w.log.Warn("acknowledging events", "err", err)
		}
	}
}

// start runs the job of an open hold in the background, once.
func (w *worker) start(ctx context.Context, holdID string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.running[holdID] {
		return
	}
	w.running[holdID] = true
	w.jobs.Add(1)
	go func() {
		defer w.jobs.Done()
		defer func() {
			w.mu.Lock()
			delete(w.running, holdID)
			w.mu.Unlock()
		}()
		w.generate(ctx, holdID)
	}()
}

// failWord is the word that makes a generation fail, for trying it out.
var failWord = regexp.MustCompile(`(?i)\bfail\b`)

// failureReasons are the ways a generation fails at random.
var failureReasons = []string{
	"model timed out",
	"GPU out of memory",
	"content filter rejected the output",
}

// generate runs one job: it pretends to generate, then settles the hold.
func (w *worker) generate(ctx context.Context, holdID string) {
	h, err := w.ledger.Hold(ctx, holdID)
	if err != nil {
		w.log.Error("reading a hold", "hold", holdID, "err", err)
		return
	}
	if h.Status != credits.HoldOpen { // delivered again, or a one-step charge
		return
	}
	delay := w.cfg.MinDelay
	if span := w.cfg.MaxDelay - w.cfg.MinDelay; span > 0 {
		delay += rand.N(span)
	}
	if !sleep(ctx, delay) || (w.cfg.gate != nil && w.gateDone(ctx, h)) {
		w.release(h, "generation cancelled: the server stopped")
		return
	}

	switch {
	case failWord.MatchString(h.Metadata["prompt"]):
		w.release(h, failPromptReason)
	case rand.Float64() < w.cfg.FailRate:
		w.release(h, "generation failed: "+failureReasons[rand.IntN(len(failureReasons))])
	default:
		w.capture(ctx, h, produced(h.Quote))
	}
}

// failPromptReason is the release's reason of a job whose prompt asked to
// fail.
const failPromptReason = "generation failed: the prompt asked to fail (demo)"

// capture charges a finished job's hold for what it produced. The output
// exists: a capture that fails for the server's reasons (a transient store
// error, a timeout) is tried again, with a growing wait, a few times
// (Config.CaptureAttempts) and never past the hold's deadline, after which
// the hold lapses and gives the credits back. Trying again is safe: a
// capture without a key is idempotent per hold, and the usage is the same
// each time. It runs on a context of its own, like release, so that a
// stopping server still charges the jobs it finished. It reports whether
// the hold was captured.
func (w *worker) capture(ctx context.Context, h credits.Hold, usage credits.Usage) bool {
	ctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), h.Deadline)
	defer cancel()
	wait := w.cfg.CaptureBackoff
	var err error
	for attempt := 1; ; attempt++ {
		actx, acancel := context.WithTimeout(ctx, 10*time.Second)
		var res credits.ChargeResult
		res, err = w.ledger.Capture(actx, credits.CaptureRequest{Hold: h.ID, Account: h.Account, Usage: usage})
		acancel()
		if err == nil {
			w.log.Debug("job done", "hold", h.ID, "charged", res.Charged, "released", res.Released, "attempts", attempt)
			w.settled(h.Account)
			return true
		}
		if _, status := credits.Code(err); status < 500 {
			// Refused (the hold lapsed or was settled meanwhile, the usage
			// exceeds it): trying again changes nothing.
			w.log.Error("capturing a job: refused", "hold", h.ID, "account", h.Account, "attempts", attempt, "err", err)
			return false
		}
		if attempt >= w.cfg.CaptureAttempts {
			break
		}
		// A little jitter, so that workers failing together do not retry
		// together.
		d := wait + rand.N(wait/4+1)
		if time.Until(h.Deadline) <= d {
			break // the hold would lapse before the next attempt
		}
		w.log.Warn("capturing a job: trying again", "hold", h.ID, "attempt", attempt, "in", d, "err", err)
		if !sleep(ctx, d) {
			break
		}
		wait *= 2
	}
	w.log.Error("capturing a job: giving up; the hold lapses at its deadline and the output goes uncharged",
		"hold", h.ID, "account", h.Account, "deadline", h.Deadline, "err", err)
	return false
}

// gateDone runs the test's gate and reports whether ctx ended meanwhile.
func (w *worker) gateDone(ctx context.Context, h credits.Hold) bool {
	w.cfg.gate(ctx, h)
	return ctx.Err() != nil
}

// release gives a failed job's hold back, with the reason, on a context of
// its own so that a stopping server still gives the credits back.
func (w *worker) release(h credits.Hold, reason string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := w.ledger.Release(ctx, credits.ReleaseRequest{Hold: h.ID, Account: h.Account, Reason: reason}); err != nil &&
		!errors.Is(err, credits.ErrHoldExpired) && !errors.Is(err, credits.ErrHoldSettled) {
		w.log.Error("releasing a job", "hold", h.ID, "err", err)
		return
	}
	w.settled(h.Account)
}

// settled reports a settled hold's account to cfg.Settled, if set.
func (w *worker) settled(account string) {
	if w.cfg.Settled != nil {
		w.cfg.Settled(account)
	}
}

// produced is what a successful job made: every image asked for, or a
// video somewhat shorter than asked (models stop early), so that it costs
// less than its quote.
func produced(q credits.Quote) credits.Usage {
	if q.Unit == credits.UnitImage {
		return credits.Usage{Images: max(q.Images, 1)}
	}
	// 55 % to 80 % of the length asked, to the tenth of a second, at least
	// half a second.
	d := q.Duration * time.Duration(55+rand.IntN(26)) / 100
	return credits.Usage{Duration: max(d.Round(100*time.Millisecond), 500*time.Millisecond)}
}

// sleep waits d, or less when ctx ends; it reports whether it waited d.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

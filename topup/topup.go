// Package topup tops accounts up automatically when their balance runs
// low, on top of the ledger's feed.
//
// A [Policy] reads a feed consumer of its own. For each balance_low event
// (an operation took the account's available + held credits below its
// low-balance threshold, see credits.Config.OnLowBalance) it asks the
// application whether and for how much the account tops up, calls the
// application's payment function, and grants the purchased credits:
//
//   - Exactly once per event. The payment and the grant share one key
//     derived from the event ("auto-topup:" and the event's ID): the grant
//     is idempotent under it, a payment whose grant is already in the
//     history is not made again, and Pay receives the key so that the
//     payment provider makes a retried payment once (give it as the
//     provider's idempotency key).
//   - Within a monthly cap per account (calendar months of Policy.Location).
//   - Never after MaxFailures payments in a row failed for the account,
//     until [Policy.Resume] (a card that keeps failing is not charged
//     forever).
//
// Every outcome is in the account's history: the grant (note "auto
// top-up"), and a note for each failed payment, a skip for the cap, a stop
// and a resume (credits.Ledger.Annotate).
package topup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/creditkit/credits"
)

// Payment is what the application is asked to charge.
type Payment struct {
	Account string
	Amount  credits.Credits
	// Key is the payment's idempotency key, the same on every retry of
	// the same top-up: hand it to the payment provider.
	Key string
	// Event is the balance_low event that asked for it.
	Event credits.Event
}

// Source is the part of a feed a Policy reads; *credits.Feed is one.
type Source interface {
	Next(ctx context.Context) ([]credits.Event, error)
	Ack(ctx context.Context, e credits.Event) error
}

var _ Source = (*credits.Feed)(nil)

// ErrInvalidConfig: a Policy is missing its Ledger, Source or Pay, or a
// field is out of range.
var ErrInvalidConfig = errors.New("topup: invalid policy configuration")

// Policy is an auto top-up policy. Set its fields, then call Run (or Step).
// It is used by one goroutine at a time; several servers may run the same
// policy on the same feed consumer (its lease lets one act at a time).
type Policy struct {
	// Ledger grants the credits and records the notes. Required.
	Ledger *credits.Ledger
	// Source is the policy's own feed consumer (credits.Ledger.Feed with a
	// name of its own, such as "auto-topup"). Required.
	Source Source
	// Amount is how much an account tops up by, when Enrolled does not
	// say otherwise. Required unless Enrolled is set.
	Amount credits.Credits
	// Enrolled, when set, says whether account tops up and by how much
	// (ok false: it does not). Nil: every account tops up by Amount.
	Enrolled func(ctx context.Context, account string) (amount credits.Credits, ok bool, err error)
	// Pay charges the payment, required. It returns nil once the money is
	// taken; an error means it was not (the top-up is tried again on the
	// next Step, up to MaxFailures). It must charge a Key once, however
	// often it is called with it.
	Pay func(ctx context.Context, p Payment) error
	// MonthlyCap bounds what one account is topped up by per calendar
	// month; zero means no cap.
	MonthlyCap credits.Credits
	// MaxFailures is how many payments in a row may fail for an account
	// before the policy stops topping it up (until Resume); 0 means 3.
	MaxFailures int
	// Location is the time zone of the months of MonthlyCap; nil is UTC.
	Location *time.Location
	// PollInterval is Run's wait when the feed has nothing new or a
	// payment failed; 0 means one second.
	PollInterval time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives a line per outcome; nil means slog.Default().
	Logger *slog.Logger
}

// keyPrefix starts every key the policy uses.
const keyPrefix = "auto-topup:"

// The notes' texts start with these, so that the history can be read back.
const (
	noteFailed  = "auto top-up payment failed"
	noteStopped = "auto top-up stopped"
	noteResumed = "auto top-up resumed"
	noteCapped  = "auto top-up skipped: monthly cap"
	grantNote   = "auto top-up"
)

func (p *Policy) check() error {
	switch {
	case p.Ledger == nil || p.Source == nil || p.Pay == nil:
		return fmt.Errorf("%w: Ledger, Source and Pay are required", ErrInvalidConfig)
	case p.Enrolled == nil && !p.Amount.IsPositive():
		return fmt.Errorf("%w: Amount must be positive", ErrInvalidConfig)
	case p.MonthlyCap.IsNegative() || p.MaxFailures < 0 || p.PollInterval < 0:
		return fmt.Errorf("%w: MonthlyCap, MaxFailures and PollInterval cannot be negative", ErrInvalidConfig)
	}
	return nil
}

func (p *Policy) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

func (p *Policy) log() *slog.Logger {
	if p.Logger != nil {
		return p.Logger
	}
	return slog.Default()
}

func (p *Policy) maxFailures() int {
	if p.MaxFailures > 0 {
		return p.MaxFailures
	}
	return 3
}

// Run handles the feed until ctx is done, then returns ctx's error; it
// returns early only for ErrInvalidConfig. Other errors (the feed's, a
// failed payment) are logged, and Run tries again after PollInterval.
func (p *Policy) Run(ctx context.Context) error {
	if err := p.check(); err != nil {
		return err
	}
	wait := p.PollInterval
	if wait == 0 {
		wait = time.Second
	}
	for {
		n, err := p.Step(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			p.log().WarnContext(ctx, "topup: paused", "err", err)
		}
		if err != nil || n == 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
	}
}

// Step handles the next batch of the feed: each balance_low event is
// topped up (or skipped, with its reason in the history) and then
// acknowledged, every other event acknowledged as it is. It stops at the
// first failed payment, leaving that event unacknowledged so that the next
// Step tries it again, and returns how many events it acknowledged.
func (p *Policy) Step(ctx context.Context) (int, error) {
	if err := p.check(); err != nil {
		return 0, err
	}
	events, err := p.Source.Next(ctx)
	if err != nil {
		return 0, err
	}
	for i, e := range events {
		if e.Type == credits.EntryBalanceLow {
			if err := p.handle(ctx, e); err != nil {
				return i, err
			}
		}
		if err := p.Source.Ack(ctx, e); err != nil {
			return i, err
		}
	}
	return len(events), nil
}

// Resume lets the policy top account up again after it stopped for failed
// payments (a note in the history, under key).
func (p *Policy) Resume(ctx context.Context, account, key string) error {
	_, err := p.Ledger.Annotate(ctx, credits.NoteRequest{Account: account, Key: keyPrefix + "resume:" + key, Note: noteResumed})
	return err
}

// handle tops up for one balance_low event; an error leaves it to retry.
func (p *Policy) handle(ctx context.Context, e credits.Event) error {
	key := keyPrefix + e.ID
	amount, ok := p.Amount, true
	if p.Enrolled != nil {
		var err error
		if amount, ok, err = p.Enrolled(ctx, e.Account); err != nil {
			return err
		}
	}
	if !ok || !amount.IsPositive() {
		return nil
	}
	past, err := p.history(ctx, e.Account, key)
	if err != nil {
		return err
	}
	switch {
	case past.granted:
		return nil // done before (a redelivery): nothing to pay again
	case past.failures >= p.maxFailures():
		_, err := p.Ledger.Annotate(ctx, credits.NoteRequest{Account: e.Account, Key: key + ":stopped",
			Note: fmt.Sprintf("%s after %d failed payments: %s not topped up (resume to start again)", noteStopped, past.failures, e.ID)})
		return err
	case p.MonthlyCap.IsPositive() && p.MonthlyCap.Less(mustAdd(past.thisMonth, amount)):
		_, err := p.Ledger.Annotate(ctx, credits.NoteRequest{Account: e.Account, Key: key + ":capped",
			Note: fmt.Sprintf("%s %s reached (%s topped up this month): %s not topped up", noteCapped, p.MonthlyCap, past.thisMonth, e.ID)})
		return err
	}
	if err := p.Pay(ctx, Payment{Account: e.Account, Amount: amount, Key: key, Event: e}); err != nil {
		note := fmt.Sprintf("%s (%d in a row) for %s: %v", noteFailed, past.failures+1, e.ID, err)
		if len(note) > credits.MaxNoteLength {
			note = note[:credits.MaxNoteLength]
		}
		if _, nerr := p.Ledger.Annotate(ctx, credits.NoteRequest{Account: e.Account, Key: fmt.Sprintf("%s:failed:%d", key, past.attempts+1), Note: strings.ToValidUTF8(note, "?")}); nerr != nil {
			return errors.Join(err, nerr)
		}
		return fmt.Errorf("topup: payment for %s: %w", e.ID, err)
	}
	_, err = p.Ledger.Grant(ctx, credits.GrantRequest{Account: e.Account, Amount: amount, Kind: credits.KindPurchase, Key: key,
		Note: grantNote + " for " + e.ID})
	if err != nil {
		return err
	}
	p.log().InfoContext(ctx, "topup: topped up", "account", e.Account, "amount", amount.String(), "event", e.ID)
	return nil
}

// past is what an account's history says of its top-ups.
type past struct {
	granted   bool            // this event's grant is there
	failures  int             // failed payments since the last success or resume
	attempts  int             // failed payments for this event
	thisMonth credits.Credits // topped up this calendar month
}

// history reads the account's top-up entries, newest first, back to the
// start of the month or the last success, whichever is further.
func (p *Policy) history(ctx context.Context, account, key string) (past, error) {
	var out past
	loc := p.Location
	if loc == nil {
		loc = time.UTC
	}
	now := p.now().In(loc)
	month := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, loc)
	streak := true // still counting failures back to the last success
	req := credits.HistoryRequest{Account: account, Newest: true, Limit: 500,
		Types: []credits.EntryType{credits.EntryGrant, credits.EntryNote}}
	for {
		page, err := p.Ledger.History(ctx, req)
		if err != nil {
			return out, err
		}
		for _, en := range page.Entries {
			if !strings.HasPrefix(en.Key, keyPrefix) {
				continue
			}
			inMonth := !en.At.Before(month)
			switch {
			case en.Type == credits.EntryGrant:
				if en.Key == key {
					out.granted = true
				}
				if inMonth {
					out.thisMonth = mustAdd(out.thisMonth, en.Amount)
				}
				streak = false
			case strings.HasPrefix(en.Note, noteResumed):
				streak = false
			case strings.HasPrefix(en.Note, noteFailed):
				if streak {
					out.failures++
				}
				if strings.HasPrefix(en.Key, key+":failed:") {
					out.attempts++
				}
			}
			if !streak && !inMonth {
				return out, nil
			}
		}
		if page.Next == 0 {
			return out, nil
		}
		req.Before = page.Next
	}
}

func mustAdd(a, b credits.Credits) credits.Credits {
	s, err := a.Add(b)
	if err != nil {
		return credits.FromUnits(credits.MaxUnits)
	}
	return s
}

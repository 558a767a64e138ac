package credits

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// ---- the feed: every entry of every account, in commit order ----

// FeedStore is what a [Store] adds to serve [Ledger.Feed]: the entries of
// every account in the order they were committed, and the cursors and
// leases of named consumers, kept in the same database as the entries.
// memstore and sqlstore implement it; storetest.RunFeed is its
// conformance test.
type FeedStore interface {
	// ReadFeed returns up to limit entries that come after cursor ("":
	// from the first entry ever written), each with the cursor that
	// resumes right after it. Entries of one account come in Seq order.
	//
	// It never skips an entry: an entry not yet committed when a call
	// returns (on PostgreSQL, a transaction may commit after another that
	// wrote after it) is returned by a later call after the same cursor.
	// A cursor is opaque, and only ReadFeed makes one.
	ReadFeed(ctx context.Context, cursor string, limit int) ([]FeedItem, error)

	// LeaseFeed takes the lease of consumer name for holder, or renews it,
	// until now+ttl, and returns the cursor the consumer acknowledged last
	// ("" for a new consumer). It fails with an error wrapping
	// [ErrFeedLeased] while another holder's lease has not expired.
	LeaseFeed(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (cursor string, err error)

	// AckFeed stores cursor as consumer name's acknowledged cursor, if
	// holder still holds the lease at now; otherwise it stores nothing and
	// fails with an error wrapping [ErrFeedLeased].
	AckFeed(ctx context.Context, name, holder, cursor string, now time.Time) error
}

// FeedItem is an entry as the feed reads it, with the cursor after it.
type FeedItem struct {
	Cursor string
	Entry  Entry
}

// Event is one entry of the ledger's history as the feed delivers it:
// every grant, hold, capture, release, expiry, refund, debit, void and
// account change, with the balances after it (Available, Held), the
// member and the job (the key the hold was reserved under) where it has
// them. Its JSON is the entry's, with the event's ID.
type Event struct {
	// ID is the event's stable ID, the same on every delivery: the
	// account and the entry's Seq ("<account>#<seq>").
	ID string `json:"id"`
	Entry
	// cursor resumes the feed right after this event, for the consumer
	// that read it.
	cursor, consumer string
}

// EventID is the ID of the event of entry seq of account.
func EventID(account string, seq int64) string { return account + "#" + strconv.FormatInt(seq, 10) }

// FeedConfig configures a feed consumer.
type FeedConfig struct {
	// Name is the consumer's name, required: its cursor and lease are kept
	// under it, in the ledger's database. Each application that reacts to
	// the ledger (a webhook sender, auto top-up, analytics) has its own.
	Name string
	// Holder names this process as the lease's holder; "" is a random ID.
	// Several processes may run the same consumer: one delivers at a time,
	// and another takes over when its lease expires.
	Holder string
	// LeaseTTL is how long a lease lasts after each Next or Renew; 0
	// means 30 s. A holder that stops for longer loses it.
	LeaseTTL time.Duration
	// Batch is the most events one Next returns: 1 to 1000, 0 means 100.
	Batch int
}

// Feed is a named consumer of the ledger's feed: every entry of every
// account, in commit order, delivered at least once. Events of one account
// come in the order they happened. Next returns the events after what was
// acknowledged last; Ack acknowledges them. After a crash, a restarted
// consumer resumes after what it acknowledged: nothing is skipped, and
// what was handled but not acknowledged is delivered again (deduplicate by
// [Event.ID]).
//
// A Feed is safe for use by one goroutine at a time.
type Feed struct {
	l      *Ledger
	fs     FeedStore
	cfg    FeedConfig
	cursor string // after the last event Next returned
}

// Feed returns the consumer cfg names. The ledger's store must implement
// [FeedStore].
func (l *Ledger) Feed(cfg FeedConfig) (*Feed, error) {
	fs, ok := l.store.(FeedStore)
	if !ok {
		return nil, fmt.Errorf("%w: the store (%T) does not serve a feed (credits.FeedStore)", ErrInvalidRequest, l.store)
	}
	if err := checkRef("name", cfg.Name); err != nil {
		return nil, err
	}
	switch {
	case cfg.LeaseTTL < 0:
		return nil, fieldErr("lease_ttl", "is negative")
	case cfg.Batch < 0 || cfg.Batch > 1000:
		return nil, fieldErr("batch", "%d is not within 1..1000", cfg.Batch)
	}
	if cfg.Holder == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		cfg.Holder = hex.EncodeToString(b[:])
	}
	if err := checkRef("holder", cfg.Holder); err != nil {
		return nil, err
	}
	if cfg.LeaseTTL == 0 {
		cfg.LeaseTTL = 30 * time.Second
	}
	if cfg.Batch == 0 {
		cfg.Batch = 100
	}
	return &Feed{l: l, fs: fs, cfg: cfg}, nil
}

// Holder is the holder name the consumer leases under.
func (f *Feed) Holder() string { return f.cfg.Holder }

// Next takes (or renews) the consumer's lease and returns the next events
// after the ones acknowledged last, at most the configured Batch; none
// when nothing new was committed. It fails with an error wrapping
// [ErrFeedLeased] while another holder delivers.
//
// Next always starts after the last acknowledged event: events it
// returned before and that were not acknowledged come again.
func (f *Feed) Next(ctx context.Context) ([]Event, error) {
	cursor, err := f.fs.LeaseFeed(ctx, f.cfg.Name, f.cfg.Holder, f.l.now(), f.cfg.LeaseTTL)
	if err != nil {
		return nil, err
	}
	items, err := f.fs.ReadFeed(ctx, cursor, f.cfg.Batch)
	if err != nil {
		return nil, err
	}
	events := make([]Event, len(items))
	byAccount := map[string][]int{}
	for i, it := range items {
		events[i] = Event{ID: EventID(it.Entry.Account, it.Entry.Seq), Entry: it.Entry, cursor: it.Cursor, consumer: f.cfg.Name}
		byAccount[it.Entry.Account] = append(byAccount[it.Entry.Account], i)
	}
	// Every event about a hold carries its job, as History's entries do.
	for account, idx := range byAccount {
		es := make([]Entry, len(idx))
		for j, i := range idx {
			es[j] = events[i].Entry
		}
		if err := f.l.jobs(ctx, account, es); err != nil && !errors.Is(err, ErrUnknownAccount) {
			return nil, err
		}
		for j, i := range idx {
			events[i].Entry = es[j]
		}
	}
	f.cursor = cursor
	if len(items) > 0 {
		f.cursor = items[len(items)-1].Cursor
	}
	return events, nil
}

// Renew extends the consumer's lease by LeaseTTL from now, for a holder
// busy with one batch for long (a webhook retried with backoff). It fails
// with an error wrapping [ErrFeedLeased] once another holder took the
// lease over: stop delivering, that holder resumes after the last
// acknowledged event.
func (f *Feed) Renew(ctx context.Context) error {
	_, err := f.fs.LeaseFeed(ctx, f.cfg.Name, f.cfg.Holder, f.l.now(), f.cfg.LeaseTTL)
	return err
}

// Ack acknowledges every event up to and including e, which Next
// returned: a restart resumes after it. It fails with an error wrapping
// [ErrFeedLeased] when the lease was lost meanwhile (another holder took
// over and delivers from what was acknowledged last).
func (f *Feed) Ack(ctx context.Context, e Event) error {
	if e.cursor == "" || e.consumer != f.cfg.Name {
		return fieldErr("event", "was not returned by this consumer's Next")
	}
	return f.fs.AckFeed(ctx, f.cfg.Name, f.cfg.Holder, e.cursor, f.l.now())
}

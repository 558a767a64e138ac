package core

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/creditkit/credits"
)

// The feed (credits.FeedStore): each driver reads the entries in its own
// commit order (Driver.ReadFeed); the consumers' cursors and leases are a
// table both write the same way.

// FeedReader is what a driver adds to serve the feed.
type FeedReader interface {
	// ReadFeed returns up to limit entries after cursor, in an order that
	// never skips an entry committed late (see credits.FeedStore).
	ReadFeed(ctx context.Context, db Querier, cursor string, limit int) ([]credits.FeedItem, error)
}

// ReadFeed implements credits.FeedStore.
func (s *Store) ReadFeed(ctx context.Context, cursor string, limit int) ([]credits.FeedItem, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	fr, ok := s.driver.(FeedReader)
	if !ok {
		return nil, fmt.Errorf("sqlstore: %s serves no feed", s.driver.Name())
	}
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	return fr.ReadFeed(ctx, s.db, cursor, limit)
}

// LeaseFeed implements credits.FeedStore: one statement takes the lease
// when it is free, expired or already this holder's, and returns the
// cursor; it returns no row when another holder's lease lasts.
func (s *Store) LeaseFeed(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (string, error) {
	if s.closed.Load() {
		return "", ErrClosed
	}
	n, err := Nanos(now)
	if err != nil {
		return "", err
	}
	until, err := Nanos(now.Add(ttl))
	if err != nil {
		return "", err
	}
	x, t := s.syntax, s.names.Table("feed_consumers")
	var cursor string
	err = s.db.QueryRowContext(ctx, fmt.Sprintf(
		"INSERT INTO %[1]s AS c (name, holder, lease_until, acked) VALUES (%[2]s, %[3]s, %[4]s, '') "+
			"ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, lease_until = excluded.lease_until "+
			"WHERE c.holder = excluded.holder OR c.lease_until <= %[5]s RETURNING acked",
		t, x.Param(1), x.Param(2), x.Param(3), x.Param(4)), name, holder, until, n).Scan(&cursor)
	if errors.Is(err, sql.ErrNoRows) {
		var other string
		var otherUntil int64
		if err := s.db.QueryRowContext(ctx, fmt.Sprintf("SELECT holder, lease_until FROM %s WHERE name = %s", t, x.Param(1)), name).Scan(&other, &otherUntil); err != nil {
			return "", fmt.Errorf("sqlstore: feed lease: %w", err)
		}
		return "", fmt.Errorf("%w: %q is held by %q until %s", credits.ErrFeedLeased, name, other, time.Unix(0, otherUntil).UTC().Format(time.RFC3339Nano))
	}
	if err != nil {
		return "", fmt.Errorf("sqlstore: feed lease: %w", err)
	}
	return cursor, nil
}

// AckFeed implements credits.FeedStore.
func (s *Store) AckFeed(ctx context.Context, name, holder, cursor string, now time.Time) error {
	if s.closed.Load() {
		return ErrClosed
	}
	n, err := Nanos(now)
	if err != nil {
		return err
	}
	x := s.syntax
	res, err := s.db.ExecContext(ctx, fmt.Sprintf("UPDATE %s SET acked = %s WHERE name = %s AND holder = %s AND lease_until > %s",
		s.names.Table("feed_consumers"), x.Param(1), x.Param(2), x.Param(3), x.Param(4)), cursor, name, holder, n)
	if err != nil {
		return fmt.Errorf("sqlstore: feed ack: %w", err)
	}
	if rows, err := res.RowsAffected(); err != nil || rows != 1 {
		return fmt.Errorf("%w: %q is not held by %q", credits.ErrFeedLeased, name, holder)
	}
	return nil
}

// EntryColumns lists the entries' columns qualified by alias, for a
// driver's feed statement.
func EntryColumns(alias string) string { return Columns(alias, &Entries.Schema) }

// DecodeEntry builds an entry from values scanned in the columns of
// [Entries].
func DecodeEntry(vals []any) (credits.Entry, error) {
	var cd codec
	e := Entries.decode(vals, &cd)
	return e, cd.err
}

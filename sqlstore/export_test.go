package sqlstore

import (
	"context"
	"fmt"
)

// SetVersionForTest records a schema version, as a newer release would.
func (s *Store) SetVersionForTest(ctx context.Context, v int) error {
	_, err := s.db.ExecContext(ctx, fmt.Sprintf("INSERT INTO %s (version, name, applied_at) VALUES (%d, 'future', 0)", s.t.versions, v))
	return err
}

// OpenUncheckedForTest is Open with NoMigrate and without the schema
// check: for tests that build an older schema with MigrateToForTest.
func OpenUncheckedForTest(ctx context.Context, dsn string, opts Options) (*Store, error) {
	opts.NoMigrate, opts.skipSchemaCheck = true, true
	return Open(ctx, dsn, &opts)
}

// Placeholder is the dialect's i-th query parameter.
func (s *Store) Placeholder(i int) string { return s.dialect.placeholder(i) }

// SetCommitFault makes every commit call f before it (committed false: an
// error aborts the commit, nothing is written) and after it (true: an
// error reports a commit that happened as failed). Nil removes it.
func (s *Store) SetCommitFault(f func(committed bool) error) { s.commitFault = f }

// HoldBatches, ResumeBatches and Queued make the store a storetest.Batcher:
// the state machine then runs batches of a known order.
func (s *Store) HoldBatches()   { s.group.pause(true) }
func (s *Store) ResumeBatches() { s.group.pause(false) }
func (s *Store) Queued() int    { return s.Stats().Queued }

// MigrateToForTest applies the migrations up to version v only, as an
// older release of the code did.
func (s *Store) MigrateToForTest(ctx context.Context, v int) error {
	all := s.dialect.migrations()[:v]
	for {
		done, err := s.migrateStep(ctx, all)
		if err != nil || done {
			return err
		}
	}
}

// KeepStatesForTest turns kept states on for a store whose driver wraps
// pgx's (its errors are still pgx's), as the benchmarks' counting driver
// does.
func (s *Store) KeepStatesForTest(n int) { s.kept = newStateCache(n) }

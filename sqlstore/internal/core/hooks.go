package core

import "context"

// Test hooks: functions, not methods, so that an application holding a
// *Store cannot reach them; only packages under sqlstore/ can import core.

// SetCommitFault makes every commit call f before it (committed false: an
// error aborts the commit, nothing is written) and after it (true: an
// error reports a commit that happened as failed). Nil removes it.
func SetCommitFault(s *Store, f func(committed bool) error) { s.commitFault = f }

// PauseBatches makes the committers leave queued operations waiting (on)
// or take them again (off), so that tests build batches of a known order.
func PauseBatches(s *Store, on bool) { s.group.pause(on) }

// SetVersionForTest records a schema version, as a newer release would.
func SetVersionForTest(ctx context.Context, s *Store, v int) error {
	_, err := s.db.ExecContext(ctx, "INSERT INTO "+s.names.Table("schema_versions")+" (version, name, applied_at) VALUES ("+
		s.syntax.Param(1)+", 'future', 0)", v)
	return err
}

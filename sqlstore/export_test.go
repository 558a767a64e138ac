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

// Placeholder is the dialect's i-th query parameter.
func (s *Store) Placeholder(i int) string { return s.dialect.placeholder(i) }

-- credits schema v2 (SQLite): a bucket's "live" flag (1 while it still holds
-- credits) replaces "remaining > 0" in the indexes, as on PostgreSQL (where
-- it makes every charge's bucket update an in-place one). Triggers keep the
-- flag right whoever writes the row, the previous version of the code
-- (which does not know the column) included.
ALTER TABLE {{t}}buckets ADD COLUMN live INTEGER NOT NULL DEFAULT 0 CHECK (live IN (0, 1));
UPDATE {{t}}buckets SET live = 1 WHERE remaining > 0;
CREATE TRIGGER {{t}}buckets_live_insert AFTER INSERT ON {{t}}buckets
    WHEN NEW.live != (NEW.remaining > 0)
BEGIN
    UPDATE {{t}}buckets SET live = (NEW.remaining > 0) WHERE id = NEW.id;
END;
CREATE TRIGGER {{t}}buckets_live_update AFTER UPDATE OF remaining, live ON {{t}}buckets
    WHEN NEW.live != (NEW.remaining > 0)
BEGIN
    UPDATE {{t}}buckets SET live = (NEW.remaining > 0) WHERE id = NEW.id;
END;
DROP INDEX {{t}}buckets_live;
DROP INDEX {{t}}buckets_due;
CREATE INDEX {{t}}buckets_live ON {{t}}buckets (account) WHERE live = 1;
CREATE INDEX {{t}}buckets_due ON {{t}}buckets (expires_at) WHERE live = 1 AND expires_at IS NOT NULL;

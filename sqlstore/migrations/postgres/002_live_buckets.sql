-- credits schema v2 (PostgreSQL): a bucket's "live" flag (1 while it still
-- holds credits) replaces "remaining > 0" in the indexes. Taking credits from
-- a bucket — every charge — then changes no indexed column, so PostgreSQL
-- updates the row in place on its page (a HOT update: no index entry
-- rewritten); the flag changes only when the bucket runs out or expires.
-- A lower fill factor leaves room on the page for those updates.
ALTER TABLE {{t}}buckets ADD COLUMN live integer NOT NULL DEFAULT 0;
UPDATE {{t}}buckets SET live = 1 WHERE remaining > 0;
ALTER TABLE {{t}}buckets ADD CONSTRAINT {{n}}buckets_live_flag CHECK (live = CASE WHEN remaining > 0 THEN 1 ELSE 0 END);
DROP INDEX {{t}}buckets_live;
DROP INDEX {{t}}buckets_due;
CREATE INDEX {{n}}buckets_live ON {{t}}buckets (account) WHERE live = 1;
CREATE INDEX {{n}}buckets_due ON {{t}}buckets (expires_at) WHERE live = 1 AND expires_at IS NOT NULL;
ALTER TABLE {{t}}buckets SET (fillfactor = 80);
ALTER TABLE {{t}}accounts SET (fillfactor = 80);

-- credits schema v2 (PostgreSQL): a bucket's "live" flag (1 while it still
-- holds credits) replaces "remaining > 0" in the indexes. Taking credits from
-- a bucket — every charge — then changes no indexed value, so PostgreSQL
-- updates the row in place on its page (a HOT update: no index entry
-- rewritten); the flag changes only when the bucket runs out or expires.
-- A lower fill factor leaves room on the page for those updates.
--
-- A trigger keeps the flag right whoever writes the row, so that servers
-- still running the previous version (which do not know the column) keep
-- working during a rolling upgrade. The migration rewrites the flag of
-- every bucket and rebuilds two indexes in one transaction: on a large
-- table, run it at a quiet time.
ALTER TABLE {{t}}buckets ADD COLUMN live integer NOT NULL DEFAULT 0;
CREATE FUNCTION {{t}}buckets_live_flag() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.live := CASE WHEN NEW.remaining > 0 THEN 1 ELSE 0 END;
    RETURN NEW;
END $$;
CREATE TRIGGER {{n}}buckets_live_flag BEFORE INSERT OR UPDATE ON {{t}}buckets
    FOR EACH ROW EXECUTE FUNCTION {{t}}buckets_live_flag();
UPDATE {{t}}buckets SET live = 1 WHERE remaining > 0;
DROP INDEX {{t}}buckets_live;
DROP INDEX {{t}}buckets_due;
CREATE INDEX {{n}}buckets_live ON {{t}}buckets (account) WHERE live = 1;
CREATE INDEX {{n}}buckets_due ON {{t}}buckets (expires_at) WHERE live = 1 AND expires_at IS NOT NULL;
ALTER TABLE {{t}}buckets SET (fillfactor = 80);
ALTER TABLE {{t}}accounts SET (fillfactor = 80);

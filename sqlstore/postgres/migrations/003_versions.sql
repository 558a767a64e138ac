-- credits schema v3 (PostgreSQL).
--
-- Each account gets a version that the store owns: it moves it on every
-- write of the account's row, buckets or holds, and guards a write computed
-- on a state it did not lock (a kept state) by it. A trigger moves it on any
-- other UPDATE of the row (an operator's, or a server still running the
-- previous version during a rolling upgrade), and fills it in on an INSERT
-- that leaves it out. The store's own writes set it, so the trigger's
-- function never runs for them (the WHEN clause costs next to nothing).
ALTER TABLE {{t}}accounts ADD COLUMN version bigint NOT NULL DEFAULT 0;
CREATE FUNCTION {{t}}accounts_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.version := coalesce(NEW.version, 0);
    ELSE
        NEW.version := OLD.version + 1;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER {{n}}accounts_version_insert BEFORE INSERT ON {{t}}accounts
    FOR EACH ROW WHEN (NEW.version IS NULL) EXECUTE FUNCTION {{t}}accounts_version();
CREATE TRIGGER {{n}}accounts_version_update BEFORE UPDATE ON {{t}}accounts
    FOR EACH ROW WHEN (NEW.version IS NOT DISTINCT FROM OLD.version OR NEW.version IS NULL)
    EXECUTE FUNCTION {{t}}accounts_version();

-- A bucket's live flag is written by the store from one rule (Bucket.Live
-- in Go), as the previous version's code already does: the trigger that
-- also derived it (for servers of version 1 during the upgrade to 2) goes.
DROP TRIGGER {{n}}buckets_live_flag ON {{t}}buckets;
DROP FUNCTION {{t}}buckets_live_flag();

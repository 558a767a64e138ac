-- credits schema v3 (SQLite).
--
-- Each account gets a version that the store owns and moves on every write
-- of the account's row, buckets or holds (PostgreSQL guards writes computed
-- on kept states by it; SQLite keeps no states, but the tables are the same
-- on both databases).
ALTER TABLE {{t}}accounts ADD COLUMN version INTEGER NOT NULL DEFAULT 0;

-- A bucket's live flag is written by the store from one rule (Bucket.Live
-- in Go), as the previous version's code already does: the triggers that
-- also derived it (for servers of version 1 during the upgrade to 2) go.
DROP TRIGGER {{t}}buckets_live_insert;
DROP TRIGGER {{t}}buckets_live_update;

-- credits schema v9 (SQLite): expiry warnings.
--
-- With Config.ExpiryWarning set, the ledger warns once per grant before
-- its credits expire (a grant_expiring entry) and keeps when
-- (Bucket.WarnedAt, Unix nanoseconds, NULL: not warned). Rows written
-- before read NULL: not warned yet.
ALTER TABLE {{t}}buckets ADD COLUMN warned_at INTEGER;

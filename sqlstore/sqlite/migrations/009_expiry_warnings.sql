-- credits schema v9 (SQLite): expiry warnings, and the low-balance flag.
--
-- With Config.ExpiryWarning set, the ledger warns once per grant before
-- its credits expire (a grant_expiring entry) and keeps when
-- (Bucket.WarnedAt, Unix nanoseconds, NULL: not warned). Rows written
-- before read NULL: not warned yet.
ALTER TABLE {{t}}buckets ADD COLUMN warned_at INTEGER;

-- The ledger signals a low balance once per crossing: the account keeps
-- whether it was signalled low (Account.Low, 0 or 1). Rows written before
-- read 0.
ALTER TABLE {{t}}accounts ADD COLUMN low INTEGER NOT NULL DEFAULT 0 CHECK (low IN (0, 1));

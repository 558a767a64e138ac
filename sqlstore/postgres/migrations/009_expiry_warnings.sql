-- credits schema v9 (PostgreSQL): expiry warnings, and the low-balance flag.
--
-- With Config.ExpiryWarning set, the ledger warns once per grant before
-- its credits expire (a grant_expiring entry) and keeps when
-- (Bucket.WarnedAt, Unix nanoseconds, NULL: not warned). A sweep finds
-- the grants to warn through the index of live expiring buckets
-- (buckets_due) and this column. Rows written before, and by a server of
-- the previous release, read NULL: not warned yet (a grant made before the
-- upgrade is warned once, by the first current server). A nullable column
-- without a default is added without rewriting the table.
ALTER TABLE {{t}}buckets ADD COLUMN warned_at bigint;

-- The ledger signals a low balance once per crossing (balance_low, then
-- balance_recovered): the account keeps whether it was signalled low
-- (Account.Low, 0 or 1). Rows written before read 0: an account low at the
-- upgrade is signalled by its next operation that moves its balance. A
-- constant default adds the column without rewriting the table; the check
-- is added NOT VALID (every existing row holds the default).
ALTER TABLE {{t}}accounts ADD COLUMN low integer NOT NULL DEFAULT 0;
ALTER TABLE {{t}}accounts ADD CONSTRAINT {{n}}accounts_low_check CHECK (low IN (0, 1)) NOT VALID;

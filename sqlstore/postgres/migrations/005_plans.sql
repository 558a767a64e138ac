-- credits schema v5 (PostgreSQL): plans and their allowances.
--
-- An account is priced with a plan of the catalog (Account.Plan, '' for
-- none, the base rates), and an "account" entry records the plan the
-- account is on after it (Entry.Plan, '' on every other entry). A plan may
-- give an allowance each period: the account keeps its place in the
-- schedule (Account.Allowance, JSON text, 'null' for none) and when it
-- renews next (Account.RenewsAt, Unix nanoseconds, NULL for none), which a
-- sweep looks for (DueAccounts: renews_at <= now). The new columns:
--
--   accounts.plan      text NOT NULL DEFAULT ''
--   accounts.allowance text NOT NULL DEFAULT 'null'
--   accounts.renews_at bigint (NULL)
--   entries.plan       text NOT NULL DEFAULT ''
--
--   - every row written before this migration reads no plan, no allowance
--     and no renewal, which is what it was: the previous release had no
--     plans;
--   - rows that a server still running the previous release writes during
--     a rolling deploy get the same: it names the columns it inserts and
--     updates, and leaves these out, so an insert takes the default and an
--     update keeps the value the row has (a plan, an allowance or a renewal
--     a current server gave it stays; the previous release renews nothing,
--     so a renewal that falls due meanwhile waits for a current server's
--     sweep or next operation on the account);
--   - on PostgreSQL 11 and later, adding a column with a constant default
--     (or none, NULL) rewrites no table and visits no row (the default is
--     kept in the catalog and read for the rows written before), so the
--     ADD COLUMNs are instant however large the history. They take an
--     ACCESS EXCLUSIVE lock on both tables until the migration commits: it
--     waits for the transactions that use them, and the operations that
--     come after wait for it;
--   - no row is updated, so no row trigger fires: the append-only trigger
--     of entries (BEFORE UPDATE OR DELETE) is not run, nor the one that
--     moves an account's version.
--
-- The index of the accounts that will renew (the sweep's third branch,
-- beside holds_due and buckets_due) is partial: it holds only the accounts
-- with a renewal, none of them at the time of the migration, so it is
-- empty when built and small after. Building it still reads the whole
-- accounts table once (a sequential scan: one row per account, not per
-- entry), inside the migration's transaction and under the ACCESS
-- EXCLUSIVE lock the ADD COLUMN took, so every operation on accounts
-- waits for the scan. That is accepted here: CREATE INDEX CONCURRENTLY
-- cannot run in a transaction block (and the migrations run each version
-- in one, with its version row), and the column it indexes does not exist
-- before this migration, so an operator cannot build it ahead. On a very
-- large accounts table, run the migration at a quiet time.
ALTER TABLE {{t}}accounts ADD COLUMN plan text NOT NULL DEFAULT '';
ALTER TABLE {{t}}entries ADD COLUMN plan text NOT NULL DEFAULT '';
ALTER TABLE {{t}}accounts ADD COLUMN allowance text NOT NULL DEFAULT 'null';
ALTER TABLE {{t}}accounts ADD COLUMN renews_at bigint;
-- A team's member limits and their usage in the current period
-- (Account.Limits, JSON text, 'null' for none), and the Seq of the entry
-- that opened each hold (Hold.Seq, 0 for holds made before: they are never
-- counted in a member's usage, so never given back to it).
ALTER TABLE {{t}}accounts ADD COLUMN limits text NOT NULL DEFAULT 'null';
ALTER TABLE {{t}}holds ADD COLUMN seq bigint NOT NULL DEFAULT 0;
CREATE INDEX {{n}}accounts_renews ON {{t}}accounts (renews_at) WHERE renews_at IS NOT NULL;

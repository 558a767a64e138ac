-- credits schema v5 (SQLite): plans and their allowances.
--
-- An account is priced with a plan of the catalog (Account.Plan, '' for
-- none, the base rates), and an "account" entry records the plan the
-- account is on after it (Entry.Plan, '' on every other entry). A plan may
-- give an allowance each period: the account keeps its place in the
-- schedule (Account.Allowance, JSON text, 'null' for none) and when it
-- renews next (Account.RenewsAt, Unix nanoseconds, NULL for none), which a
-- sweep looks for (DueAccounts: renews_at <= now). The text columns are
-- NOT NULL with a default ('' for the plans, 'null' for the allowance),
-- renews_at is NULL by default: every row written before this migration
-- reads no plan, no allowance and no renewal (the previous release had no
-- plans), and so does every row a process still running the previous
-- release writes (it names the columns it inserts and updates, and leaves
-- these out: an insert takes the default, an update keeps the row's
-- value). SQLite adds a column by changing the table's definition only: no
-- row is rewritten and no trigger runs (entries' append-only triggers
-- included).
--
-- The index of the accounts that will renew (the sweep's third branch,
-- beside holds_due and buckets_due) is partial, empty when built: building
-- it reads the accounts table once, under the migration's write lock.
ALTER TABLE {{t}}accounts ADD COLUMN plan TEXT NOT NULL DEFAULT '';
ALTER TABLE {{t}}entries ADD COLUMN plan TEXT NOT NULL DEFAULT '';
ALTER TABLE {{t}}accounts ADD COLUMN allowance TEXT NOT NULL DEFAULT 'null';
ALTER TABLE {{t}}accounts ADD COLUMN renews_at INTEGER;
-- A team's member limits and their usage in the current period
-- (Account.Limits, JSON text, 'null' for none), and the Seq of the entry
-- that opened each hold (Hold.Seq, 0 for holds made before: they are never
-- counted in a member's usage, so never given back to it).
ALTER TABLE {{t}}accounts ADD COLUMN limits TEXT NOT NULL DEFAULT 'null';
ALTER TABLE {{t}}holds ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
CREATE INDEX {{t}}accounts_renews ON {{t}}accounts (renews_at) WHERE renews_at IS NOT NULL;

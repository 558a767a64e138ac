-- credits schema v7 (SQLite): corrections, and the list of an account's
-- grants.
--
-- Ledger.Debit and Ledger.VoidGrant take credits out of grants. The
-- account keeps what they took (Account.Debited: granted = available +
-- held + spent + expired + debited), each grant what was taken from it
-- (Bucket.Debited) and, once voided, when (Bucket.VoidedAt, Unix
-- nanoseconds, NULL for a grant never voided). Rows written before read 0
-- and NULL: nothing debited, never voided. Adding a column with a
-- constant default does not rewrite the table.
ALTER TABLE {{t}}accounts ADD COLUMN debited INTEGER NOT NULL DEFAULT 0 CHECK (debited >= 0);
ALTER TABLE {{t}}buckets ADD COLUMN debited INTEGER NOT NULL DEFAULT 0 CHECK (debited >= 0);
ALTER TABLE {{t}}buckets ADD COLUMN voided_at INTEGER;
-- Ledger.Grants lists every grant of an account, spent and expired ones
-- too, in (seq, id) order: only live buckets were indexed by account.
CREATE INDEX {{n}}buckets_account ON {{t}}buckets (account, seq, id);

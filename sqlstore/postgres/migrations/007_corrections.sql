-- credits schema v7 (PostgreSQL): corrections, and the list of an
-- account's grants.
--
-- Ledger.Debit and Ledger.VoidGrant take credits out of grants. The
-- account keeps what they took (Account.Debited: granted = available +
-- held + spent + expired + debited), each grant what was taken from it
-- (Bucket.Debited) and, once voided, when (Bucket.VoidedAt, Unix
-- nanoseconds, NULL for a grant never voided). Rows written before, and
-- by a server of the previous release during a rolling deploy, read 0 and
-- NULL: nothing debited, never voided, which is what the previous release
-- could do. Those servers name the columns they write and leave these out:
-- an insert takes the default, an update keeps the value the row has. But
-- a server of the previous release does not know a voided grant: a
-- release or refund it runs gives credits back to one as to any other
-- grant, and they can be spent. Debit and void once every server runs
-- this release.
--
-- The constant default (or none) adds each column without rewriting the
-- table (PostgreSQL 11 and later). A CHECK added with the column would
-- still scan every row under the migration's lock (224 ms for 3 million
-- rows, against 3 ms without); every existing row holds the default, 0,
-- so the checks are added NOT VALID: enforced on every row written from
-- now on, without reading the rows already there.
ALTER TABLE {{t}}accounts ADD COLUMN debited bigint NOT NULL DEFAULT 0;
ALTER TABLE {{t}}accounts ADD CONSTRAINT {{n}}accounts_debited_check CHECK (debited >= 0) NOT VALID;
ALTER TABLE {{t}}buckets ADD COLUMN debited bigint NOT NULL DEFAULT 0;
ALTER TABLE {{t}}buckets ADD CONSTRAINT {{n}}buckets_debited_check CHECK (debited >= 0) NOT VALID;
ALTER TABLE {{t}}buckets ADD COLUMN voided_at bigint;
-- Ledger.Grants lists every grant of an account, spent and expired ones
-- too, in (seq, id) order: only live buckets were indexed by account.
-- Building it reads the buckets table once, under the migration's lock,
-- and every operation waits for it (a bucket is a grant: there are far
-- fewer of them than entries); on a very large table, run the migration
-- at a quiet time. Updates of a bucket
-- (remaining, expired, debited) change no column of the index, so they
-- stay heap-only (HOT) updates.
CREATE INDEX {{n}}buckets_account ON {{t}}buckets (account, seq, id);

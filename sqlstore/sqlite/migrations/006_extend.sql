-- credits schema v6 (SQLite): holds a worker extends.
--
-- Ledger.Extend moves an open hold's deadline; the deadline Reserve gave is
-- kept (Hold.FirstDeadline, Unix nanoseconds, NULL until the first Extend)
-- so that a replay of the Reserve returns the deadline it gave. Rows
-- written before, and by a server of the previous release during a rolling
-- deploy, read NULL: never extended. A nullable column without a default
-- is added without rewriting the table.
ALTER TABLE {{t}}holds ADD COLUMN first_deadline INTEGER;

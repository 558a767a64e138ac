-- credits schema v4 (SQLite): history without its time index.
--
-- History and Spending read an account's entries in Seq order through the
-- primary key (account, seq) and filter by time on the rows; the index on
-- (account, at) cost every entry a write and served no read.
DROP INDEX {{t}}entries_at;

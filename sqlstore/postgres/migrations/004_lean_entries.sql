-- credits schema v4 (PostgreSQL): history without its time index.
--
-- Every charge inserted a key into entries_at (account, at) at a random
-- place in a fourth index, which no read's plan used: History and Spending
-- read an account's entries in Seq order through the primary key (account,
-- seq) and filter by time on the rows, so their cost is that account's own
-- history, never the table's. Dropping it saves about 95 bytes of WAL and
-- 40 bytes of disk per entry, and one index that outgrew memory first on a
-- long-running database.
DROP INDEX {{t}}entries_at;

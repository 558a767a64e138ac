-- credits schema v8 (SQLite): the feed's consumers.
--
-- The feed reads the entries in the order they were written, by rowid: a
-- SQLite database has one writer at a time, so that is the order they
-- were committed in, and an entry is never written before one that
-- committed earlier. A named consumer's acknowledged cursor and its lease
-- (who delivers, until when, Unix nanoseconds) are kept here.
CREATE TABLE {{t}}feed_consumers (
    name        TEXT    PRIMARY KEY,
    holder      TEXT    NOT NULL,
    lease_until INTEGER NOT NULL,
    acked       TEXT    NOT NULL
);

-- credits schema v8 (PostgreSQL): the feed.
--
-- The feed delivers every entry in an order that never skips one that
-- commits late. On PostgreSQL a transaction that wrote an entry may commit
-- after one that wrote later, so no position taken at insert time can be
-- read as "everything before it is committed". Each entry keeps the ID of
-- the transaction that wrote it (xid8, from pg_current_xact_id(), the
-- column's default: no statement names it, so a server of the previous
-- release fills it too). The reader compares transaction snapshots
-- (pg_current_snapshot, pg_visible_in_snapshot): it delivers what became
-- visible between the snapshot it read up to and a newer one, so a
-- transaction still open at one read is delivered by a later one. The
-- index serves that: the entries of transactions at or after a snapshot's
-- xmin.
--
-- Transaction IDs are one cluster's: pg_upgrade keeps them, but a dump
-- restored into another cluster (or a logical replica promoted) starts
-- its counter lower, and the reader would skip entries. It refuses to
-- read then, with an error: after such a move, create a new consumer
-- name (its first window reads everything visible) once the new
-- cluster's transaction IDs have passed the restored ones, or restore
-- with the entries' xid cleared to NULL (read first, as written before
-- the feed).
--
-- Rows written before this migration keep a NULL xid: the reader delivers
-- them first, as committed before everything else. Adding a nullable
-- column without a default, then setting the default, rewrites no row; the
-- index is built under the migration's lock (every operation waits for it;
-- on a very large history, run the migration at a quiet time).
ALTER TABLE {{t}}entries ADD COLUMN xid xid8;
ALTER TABLE {{t}}entries ALTER COLUMN xid SET DEFAULT pg_current_xact_id();
CREATE INDEX {{n}}entries_xid ON {{t}}entries (xid);

-- A named consumer's acknowledged cursor and its lease (who delivers,
-- until when, Unix nanoseconds).
CREATE TABLE {{t}}feed_consumers (
    name        text   PRIMARY KEY,
    holder      text   NOT NULL,
    lease_until bigint NOT NULL,
    acked       text   NOT NULL
);

-- credits schema v5 (SQLite): plans.
--
-- An account is priced with a plan of the catalog (Account.Plan, '' for
-- none, the base rates), and an "account" entry records the plan the
-- account is on after it (Entry.Plan, '' on every other entry). Both are
-- new columns, NOT NULL DEFAULT '': every row written before this
-- migration reads '' (the previous release had no plans), and so does
-- every row a process still running the previous release writes (it
-- names the columns it inserts and updates, and leaves these out). SQLite
-- adds a column by changing the table's definition only: no row is
-- rewritten and no trigger runs (entries' append-only triggers included).
ALTER TABLE {{t}}accounts ADD COLUMN plan TEXT NOT NULL DEFAULT '';
ALTER TABLE {{t}}entries ADD COLUMN plan TEXT NOT NULL DEFAULT '';

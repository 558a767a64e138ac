-- credits schema v1 (SQLite). {{t}} is the table prefix.
-- Amounts are INTEGER millicredits (never NUMERIC, which would lose
-- precision); times are INTEGER Unix nanoseconds (UTC).
CREATE TABLE {{t}}accounts (
    id                    TEXT    PRIMARY KEY,
    created_at            INTEGER NOT NULL,
    team                  INTEGER NOT NULL CHECK (team IN (0, 1)),
    members               TEXT    NOT NULL,
    low_balance_threshold INTEGER NOT NULL CHECK (low_balance_threshold >= 0),
    available             INTEGER NOT NULL CHECK (available >= 0),
    held                  INTEGER NOT NULL CHECK (held >= 0),
    granted               INTEGER NOT NULL CHECK (granted >= 0),
    spent                 INTEGER NOT NULL CHECK (spent >= 0),
    expired               INTEGER NOT NULL CHECK (expired >= 0),
    seq                   INTEGER NOT NULL CHECK (seq >= 0),
    metadata              TEXT    NOT NULL
) STRICT;

CREATE TABLE {{t}}buckets (
    id            TEXT    PRIMARY KEY,
    account       TEXT    NOT NULL,
    kind          TEXT    NOT NULL,
    amount        INTEGER NOT NULL CHECK (amount > 0),
    remaining     INTEGER NOT NULL CHECK (remaining >= 0),
    expired       INTEGER NOT NULL CHECK (expired >= 0),
    expires_at    INTEGER,
    created_at    INTEGER NOT NULL,
    seq           INTEGER NOT NULL,
    restored_from TEXT    NOT NULL,
    note          TEXT    NOT NULL
) STRICT;
CREATE INDEX {{t}}buckets_live ON {{t}}buckets (account) WHERE remaining > 0;
CREATE INDEX {{t}}buckets_due ON {{t}}buckets (expires_at) WHERE remaining > 0 AND expires_at IS NOT NULL;

CREATE TABLE {{t}}holds (
    id         TEXT    PRIMARY KEY,
    account    TEXT    NOT NULL,
    member     TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    status     TEXT    NOT NULL CHECK (status IN ('open', 'captured', 'released', 'expired')),
    amount     INTEGER NOT NULL CHECK (amount > 0),
    captured   INTEGER NOT NULL CHECK (captured >= 0 AND captured <= amount),
    refunded   INTEGER NOT NULL CHECK (refunded >= 0 AND refunded <= captured),
    portions   TEXT    NOT NULL,
    quote      TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    deadline   INTEGER NOT NULL,
    settled_at INTEGER,
    metadata   TEXT    NOT NULL
) STRICT;
CREATE INDEX {{t}}holds_open ON {{t}}holds (account, deadline) WHERE status = 'open';
CREATE INDEX {{t}}holds_due ON {{t}}holds (deadline) WHERE status = 'open';

CREATE TABLE {{t}}entries (
    account   TEXT    NOT NULL,
    seq       INTEGER NOT NULL CHECK (seq > 0),
    type      TEXT    NOT NULL,
    amount    INTEGER NOT NULL CHECK (amount >= 0),
    available INTEGER NOT NULL CHECK (available >= 0),
    held      INTEGER NOT NULL CHECK (held >= 0),
    at        INTEGER NOT NULL,
    hold      TEXT    NOT NULL,
    bucket    TEXT    NOT NULL,
    kind      TEXT    NOT NULL,
    tool      TEXT    NOT NULL,
    member    TEXT    NOT NULL,
    key       TEXT    NOT NULL,
    note      TEXT    NOT NULL,
    PRIMARY KEY (account, seq)
) STRICT;
CREATE INDEX {{t}}entries_at ON {{t}}entries (account, at);
CREATE TRIGGER {{t}}entries_no_update BEFORE UPDATE ON {{t}}entries
BEGIN SELECT RAISE(ABORT, 'credits: history entries are append-only'); END;
CREATE TRIGGER {{t}}entries_no_delete BEFORE DELETE ON {{t}}entries
BEGIN SELECT RAISE(ABORT, 'credits: history entries are append-only'); END;

CREATE TABLE {{t}}records (
    account    TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    operation  TEXT    NOT NULL,
    request    TEXT    NOT NULL,
    result     TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (account, key)
) STRICT, WITHOUT ROWID;

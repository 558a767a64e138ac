-- credits schema v1 (PostgreSQL). {{t}} is the schema-qualified table prefix.
-- Amounts are bigint millicredits; times are bigint Unix nanoseconds (UTC).
CREATE TABLE {{t}}accounts (
    id                    text    PRIMARY KEY,
    created_at            bigint  NOT NULL,
    team                  integer NOT NULL CHECK (team IN (0, 1)),
    members               text    NOT NULL,
    low_balance_threshold bigint  NOT NULL CHECK (low_balance_threshold >= 0),
    available             bigint  NOT NULL CHECK (available >= 0),
    held                  bigint  NOT NULL CHECK (held >= 0),
    granted               bigint  NOT NULL CHECK (granted >= 0),
    spent                 bigint  NOT NULL CHECK (spent >= 0),
    expired               bigint  NOT NULL CHECK (expired >= 0),
    seq                   bigint  NOT NULL CHECK (seq >= 0),
    metadata              text    NOT NULL
);

CREATE TABLE {{t}}buckets (
    id            text   PRIMARY KEY,
    account       text   NOT NULL,
    kind          text   NOT NULL,
    amount        bigint NOT NULL CHECK (amount > 0),
    remaining     bigint NOT NULL CHECK (remaining >= 0),
    expired       bigint NOT NULL CHECK (expired >= 0),
    expires_at    bigint,
    created_at    bigint NOT NULL,
    seq           bigint NOT NULL,
    restored_from text   NOT NULL,
    note          text   NOT NULL
);
-- The live buckets an operation loads, and the ones a sweep looks for.
CREATE INDEX {{n}}buckets_live ON {{t}}buckets (account) WHERE remaining > 0;
CREATE INDEX {{n}}buckets_due ON {{t}}buckets (expires_at) WHERE remaining > 0 AND expires_at IS NOT NULL;

CREATE TABLE {{t}}holds (
    id         text   PRIMARY KEY,
    account    text   NOT NULL,
    member     text   NOT NULL,
    key        text   NOT NULL,
    status     text   NOT NULL CHECK (status IN ('open', 'captured', 'released', 'expired')),
    amount     bigint NOT NULL CHECK (amount > 0),
    captured   bigint NOT NULL CHECK (captured >= 0 AND captured <= amount),
    refunded   bigint NOT NULL CHECK (refunded >= 0 AND refunded <= captured),
    portions   text   NOT NULL,
    quote      text   NOT NULL,
    created_at bigint NOT NULL,
    deadline   bigint NOT NULL,
    settled_at bigint,
    metadata   text   NOT NULL
);
CREATE INDEX {{n}}holds_open ON {{t}}holds (account, deadline) WHERE status = 'open';
CREATE INDEX {{n}}holds_due ON {{t}}holds (deadline) WHERE status = 'open';

CREATE TABLE {{t}}entries (
    account   text   NOT NULL,
    seq       bigint NOT NULL CHECK (seq > 0),
    type      text   NOT NULL,
    amount    bigint NOT NULL CHECK (amount >= 0),
    available bigint NOT NULL CHECK (available >= 0),
    held      bigint NOT NULL CHECK (held >= 0),
    at        bigint NOT NULL,
    hold      text   NOT NULL,
    bucket    text   NOT NULL,
    kind      text   NOT NULL,
    tool      text   NOT NULL,
    member    text   NOT NULL,
    key       text   NOT NULL,
    note      text   NOT NULL,
    PRIMARY KEY (account, seq)
);
-- Spending reports read an account's entries over a time range.
CREATE INDEX {{n}}entries_at ON {{t}}entries (account, at);

-- History is append-only: no code path updates or deletes an entry, and the
-- database refuses it too.
CREATE FUNCTION {{t}}entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'credits: history entries are append-only (% refused)', TG_OP;
END $$;
CREATE TRIGGER {{n}}entries_append_only BEFORE UPDATE OR DELETE ON {{t}}entries
    FOR EACH ROW EXECUTE FUNCTION {{t}}entries_append_only();

CREATE TABLE {{t}}records (
    account    text   NOT NULL,
    key        text   NOT NULL,
    operation  text   NOT NULL,
    request    text   NOT NULL,
    result     text   NOT NULL,
    created_at bigint NOT NULL,
    PRIMARY KEY (account, key)
);

--
-- PostgreSQL database dump
--


-- Dumped from database version 15.20 (Debian 15.20-0+deb12u1)
-- Dumped by pg_dump version 15.20 (Debian 15.20-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: credits_story_v3; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA credits_story_v3;


--
-- Name: credits_accounts_version(); Type: FUNCTION; Schema: credits_story_v3; Owner: -
--

CREATE FUNCTION credits_story_v3.credits_accounts_version() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.version := coalesce(NEW.version, 0);
    ELSE
        NEW.version := OLD.version + 1;
    END IF;
    RETURN NEW;
END $$;


--
-- Name: credits_entries_append_only(); Type: FUNCTION; Schema: credits_story_v3; Owner: -
--

CREATE FUNCTION credits_story_v3.credits_entries_append_only() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    RAISE EXCEPTION 'credits: history entries are append-only (% refused)', TG_OP;
END $$;


SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: credits_accounts; Type: TABLE; Schema: credits_story_v3; Owner: -
--

CREATE TABLE credits_story_v3.credits_accounts (
    id text NOT NULL,
    created_at bigint NOT NULL,
    team integer NOT NULL,
    members text NOT NULL,
    low_balance_threshold bigint NOT NULL,
    available bigint NOT NULL,
    held bigint NOT NULL,
    granted bigint NOT NULL,
    spent bigint NOT NULL,
    expired bigint NOT NULL,
    seq bigint NOT NULL,
    metadata text NOT NULL,
    version bigint DEFAULT 0 NOT NULL,
    CONSTRAINT credits_accounts_available_check CHECK ((available >= 0)),
    CONSTRAINT credits_accounts_expired_check CHECK ((expired >= 0)),
    CONSTRAINT credits_accounts_granted_check CHECK ((granted >= 0)),
    CONSTRAINT credits_accounts_held_check CHECK ((held >= 0)),
    CONSTRAINT credits_accounts_low_balance_threshold_check CHECK ((low_balance_threshold >= 0)),
    CONSTRAINT credits_accounts_seq_check CHECK ((seq >= 0)),
    CONSTRAINT credits_accounts_spent_check CHECK ((spent >= 0)),
    CONSTRAINT credits_accounts_team_check CHECK ((team = ANY (ARRAY[0, 1])))
)
WITH (fillfactor='80');


--
-- Name: credits_buckets; Type: TABLE; Schema: credits_story_v3; Owner: -
--

CREATE TABLE credits_story_v3.credits_buckets (
    id text NOT NULL,
    account text NOT NULL,
    kind text NOT NULL,
    amount bigint NOT NULL,
    remaining bigint NOT NULL,
    expired bigint NOT NULL,
    expires_at bigint,
    created_at bigint NOT NULL,
    seq bigint NOT NULL,
    restored_from text NOT NULL,
    note text NOT NULL,
    live integer DEFAULT 0 NOT NULL,
    CONSTRAINT credits_buckets_amount_check CHECK ((amount > 0)),
    CONSTRAINT credits_buckets_expired_check CHECK ((expired >= 0)),
    CONSTRAINT credits_buckets_remaining_check CHECK ((remaining >= 0))
)
WITH (fillfactor='80');


--
-- Name: credits_entries; Type: TABLE; Schema: credits_story_v3; Owner: -
--

CREATE TABLE credits_story_v3.credits_entries (
    account text NOT NULL,
    seq bigint NOT NULL,
    type text NOT NULL,
    amount bigint NOT NULL,
    available bigint NOT NULL,
    held bigint NOT NULL,
    at bigint NOT NULL,
    hold text NOT NULL,
    bucket text NOT NULL,
    kind text NOT NULL,
    tool text NOT NULL,
    member text NOT NULL,
    key text NOT NULL,
    note text NOT NULL,
    CONSTRAINT credits_entries_amount_check CHECK ((amount >= 0)),
    CONSTRAINT credits_entries_available_check CHECK ((available >= 0)),
    CONSTRAINT credits_entries_held_check CHECK ((held >= 0)),
    CONSTRAINT credits_entries_seq_check CHECK ((seq > 0))
);


--
-- Name: credits_holds; Type: TABLE; Schema: credits_story_v3; Owner: -
--

CREATE TABLE credits_story_v3.credits_holds (
    id text NOT NULL,
    account text NOT NULL,
    member text NOT NULL,
    key text NOT NULL,
    status text NOT NULL,
    amount bigint NOT NULL,
    captured bigint NOT NULL,
    refunded bigint NOT NULL,
    portions text NOT NULL,
    quote text NOT NULL,
    created_at bigint NOT NULL,
    deadline bigint NOT NULL,
    settled_at bigint,
    metadata text NOT NULL,
    CONSTRAINT credits_holds_amount_check CHECK ((amount > 0)),
    CONSTRAINT credits_holds_check CHECK (((captured >= 0) AND (captured <= amount))),
    CONSTRAINT credits_holds_check1 CHECK (((refunded >= 0) AND (refunded <= captured))),
    CONSTRAINT credits_holds_status_check CHECK ((status = ANY (ARRAY['open'::text, 'captured'::text, 'released'::text, 'expired'::text])))
);


--
-- Name: credits_records; Type: TABLE; Schema: credits_story_v3; Owner: -
--

CREATE TABLE credits_story_v3.credits_records (
    account text NOT NULL,
    key text NOT NULL,
    operation text NOT NULL,
    request text NOT NULL,
    result text NOT NULL,
    created_at bigint NOT NULL
);


--
-- Name: credits_schema_versions; Type: TABLE; Schema: credits_story_v3; Owner: -
--

CREATE TABLE credits_story_v3.credits_schema_versions (
    version integer NOT NULL,
    name text NOT NULL,
    applied_at bigint NOT NULL
);


--
-- Data for Name: credits_accounts; Type: TABLE DATA; Schema: credits_story_v3; Owner: -
--

INSERT INTO credits_story_v3.credits_accounts VALUES ('alice', 1796461200000000000, 0, 'null', 20000, 119000, 0, 155000, 36000, 0, 10, '{"tier":"free"}', 10);
INSERT INTO credits_story_v3.credits_accounts VALUES ('studio', 1796461260000000000, 1, '["bob","carol"]', 0, 10000, 0, 70000, 7000, 53000, 6, 'null', 6);


--
-- Data for Name: credits_buckets; Type: TABLE DATA; Schema: credits_story_v3; Owner: -
--

INSERT INTO credits_story_v3.credits_buckets VALUES ('grant_story_00000002', 'alice', 'purchase', 100000, 100000, 0, NULL, 1796461200000000000, 2, '', 'order 1', 1);
INSERT INTO credits_story_v3.credits_buckets VALUES ('grant_story_00000003', 'alice', 'daily', 5000, 1000, 0, 1796634000000000000, 1796461200000000000, 3, '', 'daily reward 2026-12-05', 1);
INSERT INTO credits_story_v3.credits_buckets VALUES ('grant_story_00000001', 'alice', 'signup', 50000, 18000, 0, 1799053200000000000, 1796461200000000000, 1, '', 'signup', 1);
INSERT INTO credits_story_v3.credits_buckets VALUES ('grant_story_00000007', 'studio', 'promo', 60000, 0, 53000, 1796464860000000000, 1796461260000000000, 1, '', '', 0);
INSERT INTO credits_story_v3.credits_buckets VALUES ('grant_story_00000010', 'studio', 'adjustment', 10000, 10000, 0, NULL, 1796468460000000000, 6, '', 'sorry', 1);


--
-- Data for Name: credits_entries; Type: TABLE DATA; Schema: credits_story_v3; Owner: -
--

INSERT INTO credits_story_v3.credits_entries VALUES ('alice', 1, 'grant', 50000, 50000, 0, 1796461200000000000, '', 'grant_story_00000001', 'signup', '', '', '', 'signup');
INSERT INTO credits_story_v3.credits_entries VALUES ('alice', 2, 'grant', 100000, 150000, 0, 1796461200000000000, '', 'grant_story_00000002', 'purchase', '', '', 'order-1', 'order 1');
INSERT INTO credits_story_v3.credits_entries VALUES ('alice', 3, 'grant', 5000, 155000, 0, 1796461200000000000, '', 'grant_story_00000003', 'daily', '', '', '', 'daily reward 2026-12-05');
INSERT INTO credits_story_v3.credits_entries VALUES ('alice', 4, 'charge', 7000, 148000, 0, 1796461200000000000, 'hold_story_00000004', '', '', 'image', '', 'img-1', '');
INSERT INTO credits_story_v3.credits_entries VALUES ('alice', 5, 'hold', 40000, 108000, 40000, 1796461200000000000, 'hold_story_00000005', '', '', 'video', '', 'vid-1', '');
INSERT INTO credits_story_v3.credits_entries VALUES ('alice', 6, 'capture', 32000, 108000, 8000, 1796461260000000000, 'hold_story_00000005', '', '', 'video', '', '', '');
INSERT INTO credits_story_v3.credits_entries VALUES ('alice', 7, 'release', 8000, 116000, 0, 1796461260000000000, 'hold_story_00000005', '', '', 'video', '', '', 'unused part of the hold');
INSERT INTO credits_story_v3.credits_entries VALUES ('alice', 8, 'hold', 40000, 76000, 40000, 1796461260000000000, 'hold_story_00000006', '', '', 'video', '', 'vid-2', '');
INSERT INTO credits_story_v3.credits_entries VALUES ('alice', 9, 'release', 40000, 116000, 0, 1796461260000000000, 'hold_story_00000006', '', '', 'video', '', '', 'the model crashed');
INSERT INTO credits_story_v3.credits_entries VALUES ('alice', 10, 'refund', 3000, 119000, 0, 1796461260000000000, 'hold_story_00000004', '', '', 'image', '', 'refund-1', 'blurry');
INSERT INTO credits_story_v3.credits_entries VALUES ('studio', 1, 'grant', 60000, 60000, 0, 1796461260000000000, '', 'grant_story_00000007', 'promo', '', '', 'promo-1', '');
INSERT INTO credits_story_v3.credits_entries VALUES ('studio', 2, 'charge', 7000, 53000, 0, 1796461260000000000, 'hold_story_00000008', '', '', 'image', 'bob', 'bob-1', '');
INSERT INTO credits_story_v3.credits_entries VALUES ('studio', 3, 'hold', 40000, 13000, 40000, 1796461260000000000, 'hold_story_00000009', '', '', 'video', 'carol', 'carol-1', '');
INSERT INTO credits_story_v3.credits_entries VALUES ('studio', 4, 'hold_expired', 40000, 53000, 0, 1796461860000000000, 'hold_story_00000009', '', '', 'video', 'carol', '', 'hold deadline passed');
INSERT INTO credits_story_v3.credits_entries VALUES ('studio', 5, 'expiry', 53000, 0, 0, 1796464860000000000, '', 'grant_story_00000007', 'promo', '', '', '', 'grant expired');
INSERT INTO credits_story_v3.credits_entries VALUES ('studio', 6, 'grant', 10000, 10000, 0, 1796468460000000000, '', 'grant_story_00000010', 'adjustment', '', '', 'adj-1', 'sorry');


--
-- Data for Name: credits_holds; Type: TABLE DATA; Schema: credits_story_v3; Owner: -
--

INSERT INTO credits_story_v3.credits_holds VALUES ('hold_story_00000005', 'alice', '', 'vid-1', 'captured', 40000, 32000, 0, '[{"bucket":"grant_story_00000001","amount":"40","captured":"32","refunded":"0"}]', '{"tool":"video","resolution":"720p","unit":"second","base_rate":"8","unit_rate":"8","duration":5000000000,"billed_duration":5000000000,"increment":1000000000,"rounding":"up","total":"40","breakdown":"5 s × 8 credits/s at 720p = 40 credits","catalog_version":"2026-11-default","expires_at":"2026-12-05T09:15:00Z"}', 1796461200000000000, 1796464800000000000, 1796461260000000000, 'null');
INSERT INTO credits_story_v3.credits_holds VALUES ('hold_story_00000006', 'alice', '', 'vid-2', 'released', 40000, 0, 0, '[{"bucket":"grant_story_00000001","amount":"16","captured":"0","refunded":"0"},{"bucket":"grant_story_00000002","amount":"24","captured":"0","refunded":"0"}]', '{"tool":"video","resolution":"720p","unit":"second","base_rate":"8","unit_rate":"8","duration":5000000000,"billed_duration":5000000000,"increment":1000000000,"rounding":"up","total":"40","breakdown":"5 s × 8 credits/s at 720p = 40 credits","catalog_version":"2026-11-default","expires_at":"2026-12-05T09:15:00Z"}', 1796461260000000000, 1796461860000000000, 1796461260000000000, 'null');
INSERT INTO credits_story_v3.credits_holds VALUES ('hold_story_00000004', 'alice', '', 'img-1', 'captured', 7000, 7000, 3000, '[{"bucket":"grant_story_00000003","amount":"5","captured":"5","refunded":"1"},{"bucket":"grant_story_00000001","amount":"2","captured":"2","refunded":"2"}]', '{"tool":"image","unit":"image","base_rate":"7","unit_rate":"7","images":1,"total":"7","breakdown":"1 image × 7 credits = 7 credits","catalog_version":"2026-11-default","expires_at":"2026-12-05T09:15:00Z"}', 1796461200000000000, 1796461200000000000, 1796461200000000000, '{"prompt":"a cat"}');
INSERT INTO credits_story_v3.credits_holds VALUES ('hold_story_00000008', 'studio', 'bob', 'bob-1', 'captured', 7000, 7000, 0, '[{"bucket":"grant_story_00000007","amount":"7","captured":"7","refunded":"0"}]', '{"tool":"image","unit":"image","base_rate":"7","unit_rate":"7","images":1,"total":"7","breakdown":"1 image × 7 credits = 7 credits","catalog_version":"2026-11-default","expires_at":"2026-12-05T09:15:00Z"}', 1796461260000000000, 1796461260000000000, 1796461260000000000, 'null');
INSERT INTO credits_story_v3.credits_holds VALUES ('hold_story_00000009', 'studio', 'carol', 'carol-1', 'expired', 40000, 0, 0, '[{"bucket":"grant_story_00000007","amount":"40","captured":"0","refunded":"0"}]', '{"tool":"video","resolution":"720p","unit":"second","base_rate":"8","unit_rate":"8","duration":5000000000,"billed_duration":5000000000,"increment":1000000000,"rounding":"up","total":"40","breakdown":"5 s × 8 credits/s at 720p = 40 credits","catalog_version":"2026-11-default","expires_at":"2026-12-05T09:15:00Z"}', 1796461260000000000, 1796461860000000000, 1796461860000000000, 'null');


--
-- Data for Name: credits_records; Type: TABLE DATA; Schema: credits_story_v3; Owner: -
--

INSERT INTO credits_story_v3.credits_records VALUES ('alice', 'create', 'create_account', '{"id":"alice","low_balance_threshold":"20","metadata":{"tier":"free"}}', '{"ok":{"account":{"id":"alice","created_at":"2026-12-05T09:00:00Z","low_balance_threshold":"20","available":"50","held":"0","granted":"50","spent":"0","expired":"0","seq":1,"metadata":{"tier":"free"}},"signup":{"id":"grant_story_00000001","account":"alice","kind":"signup","amount":"50","remaining":"50","expired":"0","expires_at":"2027-01-04T09:00:00Z","created_at":"2026-12-05T09:00:00Z","seq":1,"note":"signup"}}}', 1796461200000000000);
INSERT INTO credits_story_v3.credits_records VALUES ('alice', 'k:order-1', 'grant', '{"account":"alice","amount":"100","kind":"purchase","note":"order 1"}', '{"ok":{"grant":{"id":"grant_story_00000002","account":"alice","kind":"purchase","amount":"100","remaining":"100","expired":"0","created_at":"2026-12-05T09:00:00Z","seq":2,"note":"order 1"},"available":"150"}}', 1796461200000000000);
INSERT INTO credits_story_v3.credits_records VALUES ('alice', 'daily:2026-12-05', 'claim_daily', '{"account":"alice","day":"2026-12-05"}', '{"ok":{"grant":{"id":"grant_story_00000003","account":"alice","kind":"daily","amount":"5","remaining":"5","expired":"0","expires_at":"2026-12-07T09:00:00Z","created_at":"2026-12-05T09:00:00Z","seq":3,"note":"daily reward 2026-12-05"},"available":"155","next_claim_at":"2026-12-06T00:00:00Z"}}', 1796461200000000000);
INSERT INTO credits_story_v3.credits_records VALUES ('alice', 'k:img-1', 'charge', '{"op":"charge","account":"alice","quote":{"tool":"image","images":1,"total":"7","catalog_version":"2026-11-default"},"metadata":{"prompt":"a cat"}}', '{"ok_hold_by_id":{"hold":{"id":"hold_story_00000004"},"charged":"7","released":"0","available":"148"}}', 1796461200000000000);
INSERT INTO credits_story_v3.credits_records VALUES ('alice', 'k:vid-1', 'reserve', '{"op":"reserve","account":"alice","quote":{"tool":"video","resolution":"720p","billed_duration":5000000000,"total":"40","catalog_version":"2026-11-default"}}', '{"ok_hold_by_id":{"hold":{"id":"hold_story_00000005"},"available":"108"}}', 1796461200000000000);
INSERT INTO credits_story_v3.credits_records VALUES ('alice', 'capture:hold_story_00000005', 'capture', '{"hold":"hold_story_00000005","usage":{"duration":3200000000},"amount":"0"}', '{"ok_hold_by_id":{"hold":{"id":"hold_story_00000005"},"charged":"32","released":"8","available":"116"}}', 1796461260000000000);
INSERT INTO credits_story_v3.credits_records VALUES ('alice', 'k:vid-2', 'reserve', '{"op":"reserve","account":"alice","quote":{"tool":"video","resolution":"720p","billed_duration":5000000000,"total":"40","catalog_version":"2026-11-default"},"ttl":600000000000}', '{"ok_hold_by_id":{"hold":{"id":"hold_story_00000006"},"available":"76"}}', 1796461260000000000);
INSERT INTO credits_story_v3.credits_records VALUES ('alice', 'release:hold_story_00000006', 'release', '{"hold":"hold_story_00000006"}', '{"ok_hold_by_id":{"hold":{"id":"hold_story_00000006"},"released":"40","available":"116"}}', 1796461260000000000);
INSERT INTO credits_story_v3.credits_records VALUES ('alice', 'k:refund-1', 'refund', '{"charge":"hold_story_00000004","amount":"3"}', '{"ok":{"hold":{"id":"hold_story_00000004","account":"alice","key":"img-1","status":"captured","amount":"7","captured":"7","refunded":"3","portions":[{"bucket":"grant_story_00000003","amount":"5","captured":"5","refunded":"1"},{"bucket":"grant_story_00000001","amount":"2","captured":"2","refunded":"2"}],"quote":{"tool":"image","unit":"image","base_rate":"7","unit_rate":"7","images":1,"total":"7","breakdown":"1 image × 7 credits = 7 credits","catalog_version":"2026-11-default","expires_at":"2026-12-05T09:15:00Z"},"created_at":"2026-12-05T09:00:00Z","deadline":"2026-12-05T09:00:00Z","settled_at":"2026-12-05T09:00:00Z","metadata":{"prompt":"a cat"}},"refunded":"3","available":"119"}}', 1796461260000000000);
INSERT INTO credits_story_v3.credits_records VALUES ('alice', 'k:too-much', 'charge', '{"op":"charge","account":"alice","quote":{"tool":"video","resolution":"1080p","billed_duration":60000000000,"total":"720","catalog_version":"2026-11-default"}}', '{"error":"insufficient","available":"119","requested":"720","account":"alice"}', 1796461260000000000);
INSERT INTO credits_story_v3.credits_records VALUES ('studio', 'create', 'create_account', '{"id":"studio","team":true,"members":["bob","carol"],"low_balance_threshold":"0"}', '{"ok":{"account":{"id":"studio","created_at":"2026-12-05T09:01:00Z","team":true,"members":["bob","carol"],"low_balance_threshold":"0","available":"0","held":"0","granted":"0","spent":"0","expired":"0","seq":0}}}', 1796461260000000000);
INSERT INTO credits_story_v3.credits_records VALUES ('studio', 'k:promo-1', 'grant', '{"account":"studio","amount":"60","kind":"promo","expires_at":"2026-12-05T10:01:00Z"}', '{"ok":{"grant":{"id":"grant_story_00000007","account":"studio","kind":"promo","amount":"60","remaining":"60","expired":"0","expires_at":"2026-12-05T10:01:00Z","created_at":"2026-12-05T09:01:00Z","seq":1},"available":"60"}}', 1796461260000000000);
INSERT INTO credits_story_v3.credits_records VALUES ('studio', 'k:bob-1', 'charge', '{"op":"charge","account":"studio","member":"bob","quote":{"tool":"image","images":1,"total":"7","catalog_version":"2026-11-default"}}', '{"ok_hold_by_id":{"hold":{"id":"hold_story_00000008"},"charged":"7","released":"0","available":"53"}}', 1796461260000000000);
INSERT INTO credits_story_v3.credits_records VALUES ('studio', 'k:carol-1', 'reserve', '{"op":"reserve","account":"studio","member":"carol","quote":{"tool":"video","resolution":"720p","billed_duration":5000000000,"total":"40","catalog_version":"2026-11-default"},"ttl":600000000000}', '{"ok_hold_by_id":{"hold":{"id":"hold_story_00000009"},"available":"13"}}', 1796461260000000000);
INSERT INTO credits_story_v3.credits_records VALUES ('studio', 'k:adj-1', 'grant', '{"account":"studio","amount":"10","kind":"adjustment","note":"sorry"}', '{"ok":{"grant":{"id":"grant_story_00000010","account":"studio","kind":"adjustment","amount":"10","remaining":"10","expired":"0","created_at":"2026-12-05T11:01:00Z","seq":6,"note":"sorry"},"available":"10"}}', 1796468460000000000);


--
-- Data for Name: credits_schema_versions; Type: TABLE DATA; Schema: credits_story_v3; Owner: -
--

INSERT INTO credits_story_v3.credits_schema_versions VALUES (1, '001_init.sql', 1796510226164116748);
INSERT INTO credits_story_v3.credits_schema_versions VALUES (2, '002_live_buckets.sql', 1796510226171575916);
INSERT INTO credits_story_v3.credits_schema_versions VALUES (3, '003_versions.sql', 1796510226175759911);


--
-- Name: credits_accounts credits_accounts_pkey; Type: CONSTRAINT; Schema: credits_story_v3; Owner: -
--

ALTER TABLE ONLY credits_story_v3.credits_accounts
    ADD CONSTRAINT credits_accounts_pkey PRIMARY KEY (id);


--
-- Name: credits_buckets credits_buckets_pkey; Type: CONSTRAINT; Schema: credits_story_v3; Owner: -
--

ALTER TABLE ONLY credits_story_v3.credits_buckets
    ADD CONSTRAINT credits_buckets_pkey PRIMARY KEY (id);


--
-- Name: credits_entries credits_entries_pkey; Type: CONSTRAINT; Schema: credits_story_v3; Owner: -
--

ALTER TABLE ONLY credits_story_v3.credits_entries
    ADD CONSTRAINT credits_entries_pkey PRIMARY KEY (account, seq);


--
-- Name: credits_holds credits_holds_pkey; Type: CONSTRAINT; Schema: credits_story_v3; Owner: -
--

ALTER TABLE ONLY credits_story_v3.credits_holds
    ADD CONSTRAINT credits_holds_pkey PRIMARY KEY (id);


--
-- Name: credits_records credits_records_pkey; Type: CONSTRAINT; Schema: credits_story_v3; Owner: -
--

ALTER TABLE ONLY credits_story_v3.credits_records
    ADD CONSTRAINT credits_records_pkey PRIMARY KEY (account, key);


--
-- Name: credits_schema_versions credits_schema_versions_pkey; Type: CONSTRAINT; Schema: credits_story_v3; Owner: -
--

ALTER TABLE ONLY credits_story_v3.credits_schema_versions
    ADD CONSTRAINT credits_schema_versions_pkey PRIMARY KEY (version);


--
-- Name: credits_buckets_due; Type: INDEX; Schema: credits_story_v3; Owner: -
--

CREATE INDEX credits_buckets_due ON credits_story_v3.credits_buckets USING btree (expires_at) WHERE ((live = 1) AND (expires_at IS NOT NULL));


--
-- Name: credits_buckets_live; Type: INDEX; Schema: credits_story_v3; Owner: -
--

CREATE INDEX credits_buckets_live ON credits_story_v3.credits_buckets USING btree (account) WHERE (live = 1);


--
-- Name: credits_entries_at; Type: INDEX; Schema: credits_story_v3; Owner: -
--

CREATE INDEX credits_entries_at ON credits_story_v3.credits_entries USING btree (account, at);


--
-- Name: credits_holds_due; Type: INDEX; Schema: credits_story_v3; Owner: -
--

CREATE INDEX credits_holds_due ON credits_story_v3.credits_holds USING btree (deadline) WHERE (status = 'open'::text);


--
-- Name: credits_holds_open; Type: INDEX; Schema: credits_story_v3; Owner: -
--

CREATE INDEX credits_holds_open ON credits_story_v3.credits_holds USING btree (account, deadline) WHERE (status = 'open'::text);


--
-- Name: credits_accounts credits_accounts_version_insert; Type: TRIGGER; Schema: credits_story_v3; Owner: -
--

CREATE TRIGGER credits_accounts_version_insert BEFORE INSERT ON credits_story_v3.credits_accounts FOR EACH ROW WHEN ((new.version IS NULL)) EXECUTE FUNCTION credits_story_v3.credits_accounts_version();


--
-- Name: credits_accounts credits_accounts_version_update; Type: TRIGGER; Schema: credits_story_v3; Owner: -
--

CREATE TRIGGER credits_accounts_version_update BEFORE UPDATE ON credits_story_v3.credits_accounts FOR EACH ROW WHEN (((NOT (new.version IS DISTINCT FROM old.version)) OR (new.version IS NULL))) EXECUTE FUNCTION credits_story_v3.credits_accounts_version();


--
-- Name: credits_entries credits_entries_append_only; Type: TRIGGER; Schema: credits_story_v3; Owner: -
--

CREATE TRIGGER credits_entries_append_only BEFORE DELETE OR UPDATE ON credits_story_v3.credits_entries FOR EACH ROW EXECUTE FUNCTION credits_story_v3.credits_entries_append_only();


--
-- PostgreSQL database dump complete
--



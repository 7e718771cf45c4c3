-- Webhook subscriptions, their delivery cursors and their delivery attempts.
--
-- Deliveries come from the change feed (the audit rows every write commits, behind the feed's
-- fence), not from a second write path: each subscription has a cursor `(after_txid,
-- after_id)` in the feed's order, and a delivery worker (in every `lshub serve`) claims a
-- subscription that has an event past its cursor, delivers that event, and advances the
-- cursor in the same transaction that records the attempt. A crash between the receiver's
-- answer and that commit sends the event again, with the same `webhook-id`: at least once.
--
-- Claiming is a lease, not a lock held across the HTTP call: a row lock (`FOR UPDATE`) gives
-- the locking transaction an xid, and an open transaction holds the feed's fence, so a lock
-- held for a 10 s delivery would stall the feed for everyone. The claim takes the cursor row
-- `FOR UPDATE SKIP LOCKED` (so two replicas never claim one subscription), sets `leased_until`
-- past the delivery timeout and commits at once; the attempt's commit checks the lease token,
-- so a worker whose lease ran out (a stalled process) writes nothing.
CREATE TABLE webhooks (
    id                    uuid PRIMARY KEY,
    url                   text NOT NULL,
    events                text[] NOT NULL,
    kinds                 text[] NOT NULL DEFAULT '{}',
    description           text,
    disabled              boolean NOT NULL DEFAULT false,
    -- Why the hub disabled it (`gone`: the receiver answered 410; `failing`: the last retry
    -- failed); null when an admin did, or when enabled.
    disabled_reason       text CHECK (disabled_reason IN ('gone', 'failing')),
    -- The signing secret (`whsec_` + base64 of 32 random bytes) is kept as it is: signing
    -- needs it (HMAC), unlike a client secret, which is only ever compared with a hash.
    secret                text NOT NULL,
    previous_secret       text,
    previous_valid_until  timestamptz,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    version               bigint NOT NULL DEFAULT 1
);

CREATE TABLE webhook_cursors (
    webhook_id       uuid PRIMARY KEY REFERENCES webhooks (id) ON DELETE CASCADE,
    -- The last event passed (delivered, or not matching the subscription), in feed order.
    after_txid       bigint NOT NULL,
    after_id         uuid NOT NULL,
    -- Failed attempts at the event after the cursor; the next one is due at `next_attempt_at`.
    failures         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    lease            uuid,
    leased_until     timestamptz
);
CREATE INDEX webhook_cursors_due_idx ON webhook_cursors (next_attempt_at);

CREATE TABLE webhook_deliveries (
    id               uuid PRIMARY KEY,
    webhook_id       uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    -- The feed event delivered: its audit row and its number (the `webhook-id`).
    event_id         uuid NOT NULL,
    event_seq        bigint NOT NULL,
    event_type       text NOT NULL,
    -- 1 for the first attempt at the event, then one more per retry; a retry by hand counts
    -- on from the event's attempts.
    attempt          integer NOT NULL,
    manual           boolean NOT NULL DEFAULT false,
    outcome          text NOT NULL CHECK (outcome IN ('delivered', 'failed', 'gone')),
    status_code      integer,
    error            text,
    latency_ms       integer NOT NULL,
    attempted_at     timestamptz NOT NULL,
    next_attempt_at  timestamptz
);
-- The deliveries list: a subscription's attempts, newest first (ids are UUID v7).
CREATE INDEX webhook_deliveries_webhook_idx ON webhook_deliveries (webhook_id, id);
-- An event's attempts so far (each attempt is numbered on from them).
CREATE INDEX webhook_deliveries_event_idx ON webhook_deliveries (webhook_id, event_id);

-- A delivery changes what `/webhooks/{id}/deliveries` answers: it moves the change counter
-- behind list ETags, as every audited write does.
CREATE TRIGGER webhook_deliveries_count_change
    AFTER INSERT ON webhook_deliveries
    FOR EACH STATEMENT EXECUTE FUNCTION lshub_count_change();

-- Webhooks for security events.
--
-- webhook_endpoints: where events are posted; the server writes LATCHKEY_WEBHOOK_URL here
-- at start-up.
-- webhook_outbox: one message per event and endpoint, written in the same transaction as
-- the event. next_attempt_at doubles as a lease: a worker that claims a row moves it
-- forward, and settles the row only while it still holds the value it set. The body is
-- dropped once the message is delivered or given up.
CREATE TABLE webhook_endpoints (
    url TEXT NOT NULL PRIMARY KEY
);

CREATE TABLE webhook_outbox (
    id              BIGSERIAL PRIMARY KEY,
    endpoint        TEXT    NOT NULL,
    message_id      TEXT    NOT NULL,
    event_type      TEXT    NOT NULL,
    body            TEXT,
    created_at      BIGINT  NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT  NOT NULL,
    delivered_at    BIGINT,
    failed_at       BIGINT,
    last_error      TEXT
);

CREATE INDEX webhook_outbox_due ON webhook_outbox (next_attempt_at)
    WHERE delivered_at IS NULL AND failed_at IS NULL;

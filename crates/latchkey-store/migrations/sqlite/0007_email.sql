-- E-mail: verified addresses, single-use tokens in links, and the outbox of mail.
--
-- users.email_verified_at: when the current address was verified (NULL: not yet).
-- email_tokens: password-reset, verification and change-of-address tokens, known only by
-- their keyed hash; `email` is the address the link was sent to. Spending one is a
-- compare-and-set on used_at.
-- mail_outbox: mail to send, written in the same transaction as the change it tells of.
-- The payload (recipient, links) is sealed and set to NULL once the mail is settled.
-- next_attempt_at doubles as a lease: a worker that claims a row moves it forward.
ALTER TABLE users ADD COLUMN email_verified_at INTEGER;

CREATE TABLE email_tokens (
    hash       BLOB    NOT NULL PRIMARY KEY CHECK (length(hash) = 32),
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    TEXT    NOT NULL,
    email      TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
) WITHOUT ROWID;

CREATE INDEX email_tokens_user ON email_tokens (user_id, purpose);
CREATE INDEX email_tokens_expires_at ON email_tokens (expires_at);

CREATE TABLE mail_outbox (
    id              INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    kind            TEXT    NOT NULL,
    payload         BLOB,
    created_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    sent_at         INTEGER,
    failed_at       INTEGER,
    last_error      TEXT
);

CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at)
    WHERE sent_at IS NULL AND failed_at IS NULL;

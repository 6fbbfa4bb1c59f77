-- Latchkey schema, SQLite flavour. Timestamps are Unix milliseconds (INTEGER),
-- identifiers are UUID text, hashes and keys are BLOBs.

CREATE TABLE users (
    id            TEXT    NOT NULL PRIMARY KEY,
    email         TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    -- Comma-joined role names; roles only contain [a-z0-9_.:-].
    roles         TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    CONSTRAINT users_email_key UNIQUE (email)
);

CREATE TABLE sessions (
    id                TEXT    NOT NULL PRIMARY KEY,
    user_id           TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at        INTEGER NOT NULL,
    latest_generation INTEGER NOT NULL,
    revoked_at        INTEGER
);

CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_created_at ON sessions (created_at);

CREATE TABLE refresh_tokens (
    hash       BLOB    NOT NULL PRIMARY KEY CHECK (length(hash) = 32),
    session_id TEXT    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    generation INTEGER NOT NULL,
    issued_at  INTEGER NOT NULL,
    spent_at   INTEGER,
    CONSTRAINT refresh_tokens_generation_key UNIQUE (session_id, generation)
);

-- AUTOINCREMENT: a seq is never handed out twice, even after the newest entry was
-- purged, so readers that remember the last seq they saw never skip an entry.
CREATE TABLE revocations (
    seq        INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    kind       TEXT    NOT NULL CHECK (kind IN ('access_token', 'session')),
    value      TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,
    CONSTRAINT revocations_kind_value_key UNIQUE (kind, value)
);

CREATE INDEX revocations_expires_at ON revocations (expires_at);

CREATE TABLE signing_keys (
    kid         TEXT    NOT NULL PRIMARY KEY,
    algorithm   TEXT    NOT NULL,
    private_key BLOB    NOT NULL,
    created_at  INTEGER NOT NULL,
    retired_at  INTEGER
);

-- At most one active (unretired) signing key.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys ((retired_at IS NULL)) WHERE retired_at IS NULL;

CREATE TABLE secrets (
    name  TEXT NOT NULL PRIMARY KEY,
    value BLOB NOT NULL
);

CREATE TABLE security_events (
    id         INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,
    kind       TEXT    NOT NULL,
    user_id    TEXT,
    session_id TEXT,
    client_ip  TEXT,
    user_agent TEXT,
    detail     TEXT
);

CREATE INDEX security_events_user_at ON security_events (user_id, at);
CREATE INDEX security_events_at ON security_events (at);

-- Latchkey schema, PostgreSQL flavour. Timestamps are Unix milliseconds (BIGINT),
-- identifiers are UUIDs, hashes and keys are BYTEA.

CREATE TABLE users (
    id            UUID   NOT NULL PRIMARY KEY,
    -- "C" collation: byte order, as in SQLite, so both backends page users alike.
    email         TEXT   COLLATE "C" NOT NULL,
    password_hash TEXT   NOT NULL,
    -- Comma-joined role names; roles only contain [a-z0-9_.:-].
    roles         TEXT   NOT NULL,
    created_at    BIGINT NOT NULL,
    CONSTRAINT users_email_key UNIQUE (email)
);

CREATE TABLE sessions (
    id                UUID   NOT NULL PRIMARY KEY,
    user_id           UUID   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at        BIGINT NOT NULL,
    latest_generation BIGINT NOT NULL,
    revoked_at        BIGINT
);

CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_created_at ON sessions (created_at);

CREATE TABLE refresh_tokens (
    hash       BYTEA  NOT NULL PRIMARY KEY CHECK (octet_length(hash) = 32),
    session_id UUID   NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    generation BIGINT NOT NULL,
    issued_at  BIGINT NOT NULL,
    spent_at   BIGINT,
    CONSTRAINT refresh_tokens_generation_key UNIQUE (session_id, generation)
);

CREATE TABLE revocations (
    seq        BIGSERIAL NOT NULL PRIMARY KEY,
    kind       TEXT      NOT NULL CHECK (kind IN ('access_token', 'session')),
    value      TEXT      NOT NULL,
    expires_at BIGINT    NOT NULL,
    CONSTRAINT revocations_kind_value_key UNIQUE (kind, value)
);

CREATE INDEX revocations_expires_at ON revocations (expires_at);

CREATE TABLE signing_keys (
    kid         TEXT   NOT NULL PRIMARY KEY,
    algorithm   TEXT   NOT NULL,
    private_key BYTEA  NOT NULL,
    created_at  BIGINT NOT NULL,
    retired_at  BIGINT
);

-- At most one active (unretired) signing key.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys ((retired_at IS NULL)) WHERE retired_at IS NULL;

CREATE TABLE secrets (
    name  TEXT  NOT NULL PRIMARY KEY,
    value BYTEA NOT NULL
);

CREATE TABLE security_events (
    id         BIGSERIAL NOT NULL PRIMARY KEY,
    at         BIGINT    NOT NULL,
    kind       TEXT      NOT NULL,
    user_id    UUID,
    session_id UUID,
    client_ip  TEXT,
    user_agent TEXT,
    detail     TEXT
);

CREATE INDEX security_events_user_at ON security_events (user_id, at);
CREATE INDEX security_events_at ON security_events (at);

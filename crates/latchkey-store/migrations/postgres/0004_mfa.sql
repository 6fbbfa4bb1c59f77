-- The second factor.
--
-- sessions.auth_methods: how the user proved who they are at login (NULL: the password
-- alone; 'pwd otp': the password and a one-time code), for the access tokens' `amr`.
-- user_totp: one TOTP authenticator per user, its secret sealed by the server;
-- confirmed_at NULL while enrolment is pending; last_step is the newest accepted time
-- step (a code is accepted only for a newer step: compare-and-set, no replay).
-- recovery_codes: SHA-256 of each code, spent once.
-- mfa_challenges: the second step of a login, by SHA-256 of its mfa_token.
ALTER TABLE sessions ADD COLUMN auth_methods TEXT;

CREATE TABLE user_totp (
    user_id       UUID    NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    sealed_secret BYTEA   NOT NULL,
    created_at    BIGINT NOT NULL,
    confirmed_at  BIGINT,
    last_step     BIGINT
);

CREATE TABLE recovery_codes (
    user_id   UUID    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash BYTEA   NOT NULL,
    used_at   BIGINT,
    PRIMARY KEY (user_id, code_hash)
);

CREATE TABLE mfa_challenges (
    token_hash       BYTEA   NOT NULL PRIMARY KEY,
    user_id          UUID    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    password_hash    TEXT    NOT NULL,
    refresh_delivery TEXT    NOT NULL,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    failures         INTEGER NOT NULL DEFAULT 0,
    used_at          BIGINT
);

CREATE INDEX mfa_challenges_expiry ON mfa_challenges (expires_at);
CREATE INDEX mfa_challenges_user ON mfa_challenges (user_id);

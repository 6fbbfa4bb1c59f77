-- Accounts: disabled users, device tracking, the last address of a session.
--
-- users.disabled_at: when an admin disabled the account (NULL: enabled).
-- sessions: the address, User-Agent and readable device name a session was made with,
-- and the address of its last refresh.
-- user_devices: when each user last logged in from each device (browser family, OS and
-- network), for "new device" events. previous_seen_at is the last_seen_at that a login's
-- upsert replaced, read back in the same statement (under the row's lock).
ALTER TABLE users ADD COLUMN disabled_at BIGINT;

ALTER TABLE sessions ADD COLUMN client_ip TEXT;
ALTER TABLE sessions ADD COLUMN user_agent TEXT;
ALTER TABLE sessions ADD COLUMN device TEXT;
ALTER TABLE sessions ADD COLUMN last_ip TEXT;

CREATE TABLE user_devices (
    user_id          UUID   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_key       TEXT   NOT NULL,
    last_seen_at     BIGINT NOT NULL,
    previous_seen_at BIGINT,
    PRIMARY KEY (user_id, device_key)
);

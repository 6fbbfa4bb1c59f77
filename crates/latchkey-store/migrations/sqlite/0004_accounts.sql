-- Accounts: disabled users, device tracking, the last address of a session.
--
-- users.disabled_at: when an admin disabled the account (NULL: enabled).
-- sessions: the address, User-Agent and readable device name a session was made with,
-- and the address of its last refresh (kept by the rotation trigger below).
-- user_devices: when each user last logged in from each device (browser family, OS and
-- network), for "new device" events. previous_seen_at is the last_seen_at that a login's
-- upsert replaced, read back in the same statement.
ALTER TABLE users ADD COLUMN disabled_at INTEGER;

ALTER TABLE sessions ADD COLUMN client_ip TEXT;
ALTER TABLE sessions ADD COLUMN user_agent TEXT;
ALTER TABLE sessions ADD COLUMN device TEXT;
ALTER TABLE sessions ADD COLUMN last_ip TEXT;

CREATE TABLE user_devices (
    user_id          TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_key       TEXT    NOT NULL,
    last_seen_at     INTEGER NOT NULL,
    previous_seen_at INTEGER,
    PRIMARY KEY (user_id, device_key)
) WITHOUT ROWID;

-- As in migration 0003, plus the client's address, kept as the session's last_ip.
DROP TRIGGER rotations_apply;
DROP VIEW rotations;

CREATE VIEW rotations (
    session_id,
    presented_hash,
    presented_generation,
    successor_hash,
    successor_generation,
    rotated_at,
    client_ip
) AS SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL WHERE 0;

CREATE TRIGGER rotations_apply INSTEAD OF INSERT ON rotations
BEGIN
    SELECT RAISE(ABORT, 'rotation_conflict')
    WHERE NOT EXISTS (
            SELECT 1 FROM sessions
            WHERE id = NEW.session_id
              AND latest_generation = NEW.presented_generation
              AND revoked_at IS NULL)
       OR NOT EXISTS (
            SELECT 1 FROM refresh_tokens
            WHERE session_id = NEW.session_id
              AND generation = NEW.presented_generation
              AND hash = NEW.presented_hash);
    -- Session first, then token: the same order as revocation and purging.
    UPDATE sessions
    SET latest_generation = NEW.successor_generation,
        last_ip = coalesce(NEW.client_ip, last_ip)
    WHERE id = NEW.session_id;
    INSERT INTO refresh_tokens (session_id, generation, hash, issued_at)
    VALUES (NEW.session_id, NEW.successor_generation, NEW.successor_hash, NEW.rotated_at);
END;

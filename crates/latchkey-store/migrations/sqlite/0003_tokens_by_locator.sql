-- Refresh tokens keyed by where they sit: (session, generation).
--
-- Since this version a refresh token carries its locator (session id and generation) in
-- clear, and the store finds it there and compares the keyed hash. Keyed by hash, every
-- rotation wrote its successor into a random leaf of the token B-tree, which on a large
-- store means a page read from disk and a page more in the WAL per rotation. Keyed by
-- locator, a family's tokens sit side by side: the successor goes next to the token just
-- read.
--
-- Tokens issued before have no locator in the token. They are copied with legacy = 1
-- and found by hash through a partial index that holds only them; new tokens never
-- enter that index. They leave it as their sessions are purged.
--
-- The rotations view's trigger names refresh_tokens; it is dropped first and made
-- again below (SQLite re-checks triggers when a table is renamed).
DROP TRIGGER rotations_apply;
DROP VIEW rotations;

CREATE TABLE refresh_tokens_by_locator (
    session_id TEXT    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    generation INTEGER NOT NULL,
    hash       BLOB    NOT NULL CHECK (length(hash) = 32),
    issued_at  INTEGER NOT NULL,
    legacy     INTEGER NOT NULL DEFAULT 0 CHECK (legacy IN (0, 1)),
    PRIMARY KEY (session_id, generation)
) WITHOUT ROWID;

INSERT INTO refresh_tokens_by_locator (session_id, generation, hash, issued_at, legacy)
SELECT session_id, generation, hash, issued_at, 1 FROM refresh_tokens;

DROP TABLE refresh_tokens;

ALTER TABLE refresh_tokens_by_locator RENAME TO refresh_tokens;

CREATE INDEX refresh_tokens_legacy_hash ON refresh_tokens (hash) WHERE legacy = 1;

-- As in migration 0002: one statement per rotation, 'rotation_conflict' if the
-- compare-and-set fails. The presented token is now found by its locator.
CREATE VIEW rotations (
    session_id,
    presented_hash,
    presented_generation,
    successor_hash,
    successor_generation,
    rotated_at
) AS SELECT NULL, NULL, NULL, NULL, NULL, NULL WHERE 0;

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
    UPDATE sessions SET latest_generation = NEW.successor_generation
    WHERE id = NEW.session_id;
    INSERT INTO refresh_tokens (session_id, generation, hash, issued_at)
    VALUES (NEW.session_id, NEW.successor_generation, NEW.successor_hash, NEW.rotated_at);
END;

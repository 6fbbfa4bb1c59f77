-- The rotation path, made shorter.
--
-- 1. refresh_tokens keyed by hash in the table's own B-tree (WITHOUT ROWID): a lookup by
--    hash is one B-tree descent instead of two, and a new token goes into two B-trees
--    instead of three. Only refresh_tokens is rebuilt: no table references it, so the
--    copy cannot cascade.
-- 2. No spent_at column: a token is spent once its successor (same session, next
--    generation) exists, and it was spent when the successor was issued. A rotation
--    then writes the successor and the session and leaves the spent token's row alone;
--    on a large store that row sits on a page of its own.
CREATE TABLE refresh_tokens_by_hash (
    hash       BLOB    NOT NULL PRIMARY KEY CHECK (length(hash) = 32),
    session_id TEXT    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    generation INTEGER NOT NULL,
    issued_at  INTEGER NOT NULL,
    CONSTRAINT refresh_tokens_generation_key UNIQUE (session_id, generation)
) WITHOUT ROWID;

INSERT INTO refresh_tokens_by_hash (hash, session_id, generation, issued_at)
SELECT hash, session_id, generation, issued_at FROM refresh_tokens;

DROP TABLE refresh_tokens;

ALTER TABLE refresh_tokens_by_hash RENAME TO refresh_tokens;

-- 3. A rotation as one statement. `INSERT INTO rotations` checks the compare-and-set
--    (the session unrevoked at the presented generation, whose token is the presented
--    one; at the latest generation the token has no successor, so it is unspent) and
--    applies it: advance the session, store the successor. If the check fails it raises
--    'rotation_conflict'. SQLite backs out every change of a failed statement, its
--    trigger's included, and keeps the transaction, so a group commit of many
--    rotations needs no savepoints and each rotation costs one statement.
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
            WHERE hash = NEW.presented_hash
              AND session_id = NEW.session_id
              AND generation = NEW.presented_generation);
    -- Session first, then token: the same order as revocation and purging.
    UPDATE sessions SET latest_generation = NEW.successor_generation
    WHERE id = NEW.session_id;
    INSERT INTO refresh_tokens (hash, session_id, generation, issued_at)
    VALUES (NEW.successor_hash, NEW.session_id, NEW.successor_generation, NEW.rotated_at);
END;

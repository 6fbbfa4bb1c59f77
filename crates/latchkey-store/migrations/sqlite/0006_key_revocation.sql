-- The revocation log also revokes signing keys (kind 'key', value the kid), for the day
-- a key leaks: every replica and every resource service stops accepting its tokens.
--
-- SQLite cannot change a CHECK constraint in place: the table is rebuilt with every
-- entry and its seq (AUTOINCREMENT continues after the largest seq copied, so a seq is
-- still never handed out twice).
CREATE TABLE revocations_with_keys (
    seq        INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    kind       TEXT    NOT NULL CHECK (kind IN ('access_token', 'session', 'key')),
    value      TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,
    CONSTRAINT revocations_kind_value_key UNIQUE (kind, value)
);

INSERT INTO revocations_with_keys (seq, kind, value, expires_at)
SELECT seq, kind, value, expires_at FROM revocations;

-- Carry over the highest seq ever handed out, even if that entry was purged.
UPDATE sqlite_sequence
SET seq = max(seq, coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'revocations'), 0))
WHERE name = 'revocations_with_keys';

INSERT INTO sqlite_sequence (name, seq)
SELECT 'revocations_with_keys', seq FROM sqlite_sequence
WHERE name = 'revocations'
  AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'revocations_with_keys');

DROP TABLE revocations;

ALTER TABLE revocations_with_keys RENAME TO revocations;

CREATE INDEX revocations_expires_at ON revocations (expires_at);

-- Refresh tokens carry their locator (session id and generation) since this version;
-- the store finds them through refresh_tokens_generation_key (session_id, generation)
-- and compares the hash. Tokens issued before have no locator and are found by hash,
-- the primary key. `legacy` tells the two apart, so a hash alone finds only a token
-- from before: rows that exist now get true, every later row false.
ALTER TABLE refresh_tokens ADD COLUMN legacy BOOLEAN NOT NULL DEFAULT true;
ALTER TABLE refresh_tokens ALTER COLUMN legacy SET DEFAULT false;

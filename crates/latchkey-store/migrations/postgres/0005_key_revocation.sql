-- The revocation log also revokes signing keys (kind 'key', value the kid), for the day
-- a key leaks: every replica and every resource service stops accepting its tokens.
ALTER TABLE revocations DROP CONSTRAINT revocations_kind_check;
ALTER TABLE revocations ADD CONSTRAINT revocations_kind_check
    CHECK (kind IN ('access_token', 'session', 'key'));

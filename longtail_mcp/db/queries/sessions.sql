-- open_web_session --
-- A browser session for a verified key, for `seconds`.
INSERT INTO web_session (token_hash, key_id, account_id, expires_at)
VALUES (%(hash)s, %(key_id)s, %(account)s, now() + make_interval(secs => %(seconds)s))
RETURNING expires_at

-- prune_web_sessions --
-- Forget sessions past their time (run when one opens, so the table stays small).
DELETE FROM web_session WHERE expires_at < now()

-- find_web_session --
-- A live session whose key is still valid (not revoked, not expired), with the key's scope.
SELECT s.key_id, s.account_id, s.expires_at, k.scope
FROM web_session s JOIN api_key k ON k.id = s.key_id
WHERE s.token_hash = %(hash)s AND s.expires_at > now()
  AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())

-- close_web_session --
-- Sign out: the session ends now.
DELETE FROM web_session WHERE token_hash = %(hash)s RETURNING key_id, account_id

-- make_web_secret --
-- The first process to need a named secret makes it (the value is random bytes from Python).
INSERT INTO web_secret (name, secret) VALUES (%(name)s, %(secret)s) ON CONFLICT (name) DO NOTHING

-- web_secret --
SELECT secret FROM web_secret WHERE name = %(name)s

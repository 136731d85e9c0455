-- Browser sessions of the web view: signing in with an API key opens one; the cookie carries a random
-- token, and only its sha256 is stored. A session lives while its key does (revoking or expiring the
-- key ends it at the next request) and until `expires_at`; signing out deletes the row.
CREATE TABLE web_session (
    token_hash bytea PRIMARY KEY,
    key_id     text NOT NULL REFERENCES api_key (id) ON DELETE CASCADE,
    account_id text NOT NULL REFERENCES account (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX web_session_expires ON web_session (expires_at);

-- A row here is a sign-in: run_sql's reader must not list them, and its writer must not make one
-- (the default privileges of 0005 and 0006 would allow both).
DO $$
DECLARE
    r text;
BEGIN
    FOR r IN SELECT role_name FROM sql_reader UNION SELECT role_name FROM sql_writer LOOP
        EXECUTE format('REVOKE ALL ON web_session FROM %I', r);
    END LOOP;
END $$;

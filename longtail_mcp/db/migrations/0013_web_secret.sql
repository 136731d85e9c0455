-- The key of the web view's CSRF tokens before sign-in (humans/sessions.py `form_secret`): one per
-- database, made by the first process that needs it, so a sign-in form drawn by one `serve` process is
-- accepted by another (behind one load balancer) and after a restart.
CREATE TABLE web_secret (
    name   text PRIMARY KEY,
    secret bytea NOT NULL CHECK (length(secret) >= 32)
);

-- Whoever reads it can forge those tokens: run_sql's reader and writer get nothing (the default
-- privileges of 0005 and 0006 would grant them).
DO $$
DECLARE
    r text;
BEGIN
    FOR r IN SELECT role_name FROM sql_reader UNION SELECT role_name FROM sql_writer LOOP
        EXECUTE format('REVOKE ALL ON web_secret FROM %I', r);
    END LOOP;
END $$;

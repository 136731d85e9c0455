-- Safe system servers: the database role db-query's run_sql connects as (it can read, never write),
-- and the role asked to approve calls a safety policy refused.

-- The reader's credentials. One row. Only the owner can read it (the reader itself cannot).
CREATE TABLE sql_reader (
    id         boolean PRIMARY KEY DEFAULT true CHECK (id),
    role_name  text NOT NULL,
    password   text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- A LOGIN role of its own, not SET ROLE from ours: a session whose login role is privileged could
-- switch back (set_config('role', ...) inside the very statement it runs). Its name is unique per
-- migrated database (roles are cluster-wide); its password is random and stored above.
-- Without CREATEROLE (some managed servers) the block leaves sql_reader empty and run_sql says so.
DO $$
DECLARE
    r text := 'longtail_reader_' || substr(replace(gen_random_uuid()::text, '-', ''), 1, 16);
    p text := replace(gen_random_uuid()::text, '-', '') || replace(gen_random_uuid()::text, '-', '');
BEGIN
    EXECUTE format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION '
                   'NOBYPASSRLS CONNECTION LIMIT 16 PASSWORD %L', r, p);
    EXECUTE format('ALTER ROLE %I SET default_transaction_read_only = on', r);
    EXECUTE format('ALTER ROLE %I SET statement_timeout = %L', r, '60s');
    EXECUTE format('ALTER ROLE %I SET idle_in_transaction_session_timeout = %L', r, '60s');
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), r);
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', current_schema(), r);
    EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO %I', current_schema(), r);
    -- Secrets stay out of reach: API key hashes and the reader's own password.
    EXECUTE format('REVOKE ALL ON api_key, sql_reader FROM %I', r);
    -- Tables of later migrations are readable too (a migration adding a secret must REVOKE it).
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT ON TABLES TO %I', current_schema(), r);
    INSERT INTO sql_reader (role_name, password) VALUES (r, p);
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'longtail: no CREATEROLE privilege; db-query run_sql is unavailable until a reader role exists';
END $$;

INSERT INTO role (name, description)
VALUES ('approver', 'Approves, once, an exact call that a safety policy refused (files, http-fetch, db-query)')
ON CONFLICT (name) DO NOTHING;

-- Finding a caller's pending request for the same exact call (so asking twice opens one escalation).
CREATE INDEX escalation_action ON escalation (action_hash, created_by) WHERE action_hash IS NOT NULL;

-- Authorization: the role an approved run_sql statement runs as, registered servers' secrets kept in a
-- table no SQL role can read, and who may call a registered server.

-- The writer's credentials (like sql_reader). One row. Only the owner can read it.
CREATE TABLE sql_writer (
    id         boolean PRIMARY KEY DEFAULT true CHECK (id),
    role_name  text NOT NULL,
    password   text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- A registered stdio server's environment is write-only: stored here for launching it, never returned,
-- never readable by run_sql (reader or writer).
CREATE TABLE mcp_server_secret (
    server text PRIMARY KEY REFERENCES mcp_server (name) ON DELETE CASCADE,
    env    jsonb NOT NULL DEFAULT '{}'
);
INSERT INTO mcp_server_secret (server, env) SELECT name, env FROM mcp_server WHERE env <> '{}';
ALTER TABLE mcp_server DROP COLUMN env;

-- Who may call a registered server's tools: superadmins, and members of access_roles (empty: nobody
-- else); read-scope keys only if read_scope, and then only tools the server marks read-only.
ALTER TABLE mcp_server
    ADD COLUMN access_roles text[] NOT NULL DEFAULT '{}',
    ADD COLUMN read_scope   boolean NOT NULL DEFAULT false;

-- The reader (0005) gets SELECT on new tables by default privileges: not on these.
DO $$
DECLARE
    r text := (SELECT role_name FROM sql_reader);
BEGIN
    IF r IS NOT NULL THEN
        EXECUTE format('REVOKE ALL ON sql_writer, mcp_server_secret FROM %I', r);
    END IF;
END $$;

-- The writer: a LOGIN role of its own (see 0005 for why not SET ROLE) that an approved statement runs
-- as. It may read and change the schema's rows, but it is no superuser, cannot create roles or
-- databases, owns nothing (so no DDL on our tables), and cannot touch secrets or the audit history.
DO $$
DECLARE
    r text := 'longtail_writer_' || substr(replace(gen_random_uuid()::text, '-', ''), 1, 16);
    p text := replace(gen_random_uuid()::text, '-', '') || replace(gen_random_uuid()::text, '-', '');
BEGIN
    EXECUTE format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION '
                   'NOBYPASSRLS CONNECTION LIMIT 8 PASSWORD %L', r, p);
    EXECUTE format('ALTER ROLE %I SET statement_timeout = %L', r, '60s');
    EXECUTE format('ALTER ROLE %I SET idle_in_transaction_session_timeout = %L', r, '60s');
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), r);
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', current_schema(), r);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO %I', current_schema(), r);
    EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO %I', current_schema(), r);
    EXECUTE format('REVOKE ALL ON api_key, sql_reader, sql_writer, mcp_server_secret, migration FROM %I', r);
    EXECUTE format('REVOKE UPDATE, DELETE ON audit FROM %I', r);
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO %I',
                   current_schema(), r);
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT USAGE, SELECT ON SEQUENCES TO %I',
                   current_schema(), r);
    INSERT INTO sql_writer (role_name, password) VALUES (r, p);
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'longtail: no CREATEROLE privilege; approved run_sql writes are unavailable';
END $$;

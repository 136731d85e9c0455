-- upsert_server --
-- Register (or re-register) an MCP server, with who may call it.
INSERT INTO mcp_server (name, transport, command, url, description, tags, compile_hints, registered_by,
                        access_roles, read_scope)
VALUES (%(name)s, %(transport)s, %(command)s, %(url)s, %(description)s, %(tags)s, %(hints)s, %(by)s,
        %(access_roles)s, %(read_scope)s)
ON CONFLICT (name) DO UPDATE
SET transport = excluded.transport, command = excluded.command, url = excluded.url,
    description = excluded.description, tags = excluded.tags, compile_hints = excluded.compile_hints,
    registered_by = excluded.registered_by, access_roles = excluded.access_roles, read_scope = excluded.read_scope

-- set_server_secret --
-- A registered server's environment (write-only: only get_server reads it, to launch the server).
INSERT INTO mcp_server_secret (server, env) VALUES (%(name)s, %(env)s)
ON CONFLICT (server) DO UPDATE SET env = excluded.env

-- get_server --
-- One server with its environment, for connecting (never returned to callers).
SELECT s.*, coalesce(x.env, '{}') AS env
FROM mcp_server s LEFT JOIN mcp_server_secret x ON x.server = s.name
WHERE s.name = %(name)s

-- list_servers --
-- Servers with their tool counts and the names (never the values) of their environment variables.
SELECT s.name, s.transport, s.command, s.url, s.description, s.tags, s.compile_hints, s.registered_by,
       s.refreshed_at, s.last_error, s.access_roles, s.read_scope,
       array(SELECT jsonb_object_keys(coalesce(x.env, '{}'))) AS env_keys,
       (SELECT count(*) FROM tool_manifest t WHERE t.server = s.name) AS tools
FROM mcp_server s LEFT JOIN mcp_server_secret x ON x.server = s.name ORDER BY s.name

-- delete_manifests --
-- Forget a server's tools before storing the fresh list.
DELETE FROM tool_manifest WHERE server = %(server)s

-- insert_manifests --
-- A server's tools, from one JSON batch.
INSERT INTO tool_manifest (server, name, description, input_schema, output_schema, annotations, tags, arg_names,
                           tags_text)
SELECT %(server)s, t.name, coalesce(t.description, ''), coalesce(t.input_schema, '{}'), t.output_schema,
       coalesce(t.annotations, '{}'), coalesce(t.tags, '{}'), coalesce(t.arg_names, ''),
       array_to_string(coalesce(t.tags, '{}'), ' ')
FROM jsonb_to_recordset(%(tools)s::jsonb)
     AS t(name text, description text, input_schema jsonb, output_schema jsonb, annotations jsonb, tags text[],
          arg_names text)

-- mark_refreshed --
-- Record the outcome of a refresh.
UPDATE mcp_server SET refreshed_at = now(), last_error = %(error)s WHERE name = %(name)s

-- get_manifest --
-- One tool's manifest, with who may call its server.
SELECT t.*, s.access_roles, s.read_scope FROM tool_manifest t JOIN mcp_server s ON s.name = t.server
WHERE t.server = %(server)s AND t.name = %(name)s

-- server_tools --
-- Every tool of every known server (built in too), for the web view's servers page.
SELECT server, name, description, input_schema, annotations, tags FROM tool_manifest ORDER BY server, name

-- all_manifests --
-- Every registered (non-built-in) tool, with who may call its server, for the gateway.
SELECT t.*, s.access_roles, s.read_scope FROM tool_manifest t JOIN mcp_server s ON s.name = t.server
WHERE s.transport <> 'builtin' ORDER BY t.server, t.name

-- find_tools --
-- Tools ranked by full-text match of names, descriptions, argument names and tags; optional tag filter.
SELECT t.server, t.name, t.description, t.input_schema, t.annotations, t.tags,
       ts_rank_cd(t.search, q) AS rank
FROM tool_manifest t, websearch_to_tsquery('english', %(query)s) AS q
WHERE (%(query)s = '' OR t.search @@ q OR t.search @@ to_tsquery('simple', %(prefix)s))
  AND (%(tags)s::text[] IS NULL OR t.tags && %(tags)s::text[])
ORDER BY rank DESC, t.server, t.name
LIMIT %(limit)s

-- The tools registry: MCP servers (built in and registered) and their tools' manifests, searchable.

CREATE TABLE mcp_server (
    name          text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    transport     text NOT NULL CHECK (transport IN ('builtin', 'stdio', 'http', 'sse')),
    command       text[],                      -- stdio: argv
    env           jsonb NOT NULL DEFAULT '{}', -- stdio: extra environment (values never returned or logged)
    url           text,                        -- http / sse
    description   text NOT NULL DEFAULT '',
    tags          text[] NOT NULL DEFAULT '{}',
    compile_hints jsonb NOT NULL DEFAULT '{}',
    registered_by text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    refreshed_at  timestamptz,
    last_error    text,
    CHECK ((transport = 'stdio') = (command IS NOT NULL)),
    CHECK ((transport IN ('http', 'sse')) = (url IS NOT NULL))
);

CREATE TABLE tool_manifest (
    server        text NOT NULL REFERENCES mcp_server (name) ON DELETE CASCADE,
    name          text NOT NULL,
    description   text NOT NULL DEFAULT '',
    input_schema  jsonb NOT NULL DEFAULT '{}',
    output_schema jsonb,
    annotations   jsonb NOT NULL DEFAULT '{}',
    tags          text[] NOT NULL DEFAULT '{}',
    arg_names     text NOT NULL DEFAULT '',        -- the input schema's property names, space-separated
    tags_text     text NOT NULL DEFAULT '',        -- tags as text (array_to_string is not immutable)
    search        tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('simple', replace(server || ' ' || name, '_', ' ')), 'A')
        || setweight(to_tsvector('english', description), 'B')
        || setweight(to_tsvector('simple', replace(arg_names, '_', ' ')), 'C')
        || setweight(to_tsvector('simple', tags_text), 'B')
    ) STORED,
    PRIMARY KEY (server, name)
);
CREATE INDEX tool_manifest_search ON tool_manifest USING gin (search);
CREATE INDEX tool_manifest_tags ON tool_manifest USING gin (tags);

ALTER TABLE step DROP CONSTRAINT step_kind_check;
ALTER TABLE step ADD CONSTRAINT step_kind_check
    CHECK (kind IN ('step', 'sleep', 'signal', 'child', 'now', 'uuid', 'random', 'state', 'hooks', 'escalation',
                    'tool'));

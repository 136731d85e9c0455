-- Pipelines: YAML DAGs of tool calls, with a lifecycle (draft -> deployed -> active -> archived) and
-- content versions. A run pins the version it started with; an edit of an active pipeline adds a
-- version and keeps serving the active one until it is activated in turn.
CREATE TABLE pipeline (
    name           text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$'),
    status         text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'deployed', 'active', 'archived')),
    version        int NOT NULL,                -- the latest version
    active_version int,                         -- the version served while active
    description    text NOT NULL DEFAULT '',
    tags           text[] NOT NULL DEFAULT '{}',
    tools          text[] NOT NULL DEFAULT '{}', -- the tools its steps call (server/tool)
    read_only      boolean NOT NULL DEFAULT false,
    access_roles   text[] NOT NULL DEFAULT '{}',
    prompt_template text,
    source_run     text,                        -- the run it was compiled from
    verified_version int,                       -- the version that passed verify_pipeline
    verification   jsonb,                       -- what verify found (tool sequence, shapes, the run)
    shipped        boolean NOT NULL DEFAULT false, -- loaded from the package's pipelines/ at start-up
    search_text    text NOT NULL DEFAULT '',    -- name, description, tags and tools, for search
    search         tsvector GENERATED ALWAYS AS (to_tsvector('english', replace(search_text, '_', ' '))) STORED,
    created_by     text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pipeline_search ON pipeline USING gin (search);
CREATE INDEX pipeline_tags ON pipeline USING gin (tags);
CREATE INDEX pipeline_status ON pipeline (status, name);

CREATE TABLE pipeline_version (
    name       text NOT NULL REFERENCES pipeline (name) ON DELETE CASCADE,
    version    int NOT NULL,
    yaml       text NOT NULL,
    definition jsonb NOT NULL,
    hash       text NOT NULL,  -- sha256 of the definition: an edit that changes nothing adds no version
    created_by text,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, version)
);

-- Workflow types published as MCP tools (`@app.workflow(..., tool=True)`), with the schemas derived from
-- their type hints. Written by the workers that run them; a tool is listed while such a worker lives.
CREATE TABLE workflow_tool (
    name          text PRIMARY KEY,
    description   text NOT NULL DEFAULT '',
    input_schema  jsonb NOT NULL,
    output_schema jsonb,
    wrapped       boolean NOT NULL DEFAULT false,  -- the input is one value, passed as the argument `input`
    roles         text[] NOT NULL DEFAULT '{}',    -- who may call it besides superadmins (empty: every account)
    updated_at    timestamptz NOT NULL DEFAULT now()
);

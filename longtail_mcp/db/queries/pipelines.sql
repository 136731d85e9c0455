-- create_pipeline --
-- A new pipeline (its first version is inserted next).
INSERT INTO pipeline (name, status, version, description, tags, tools, read_only, access_roles, prompt_template,
                      source_run, shipped, search_text, created_by)
VALUES (%(name)s, %(status)s, 1, %(description)s, %(tags)s, %(tools)s, %(read_only)s, %(access_roles)s,
        %(prompt_template)s, %(source_run)s, %(shipped)s, %(search_text)s, %(by)s)
ON CONFLICT (name) DO NOTHING
RETURNING *

-- lock_pipeline --
-- A pipeline, locked for a change.
SELECT * FROM pipeline WHERE name = %(name)s FOR UPDATE

-- get_pipeline --
-- A pipeline.
SELECT * FROM pipeline WHERE name = %(name)s

-- new_version --
-- Point a pipeline at a new latest version and refresh what is derived from it.
UPDATE pipeline
SET version = %(version)s, description = %(description)s, tags = %(tags)s, tools = %(tools)s,
    read_only = %(read_only)s, access_roles = %(access_roles)s, prompt_template = %(prompt_template)s,
    search_text = %(search_text)s, source_run = coalesce(%(source_run)s, source_run), updated_at = now()
WHERE name = %(name)s
RETURNING *

-- insert_version --
-- A content version.
INSERT INTO pipeline_version (name, version, yaml, definition, hash, created_by, read_only)
VALUES (%(name)s, %(version)s, %(yaml)s, %(definition)s, %(hash)s, %(by)s, %(read_only)s)

-- get_version --
-- One version (the latest when %(version)s is NULL).
SELECT v.* FROM pipeline_version v JOIN pipeline p ON p.name = v.name
WHERE v.name = %(name)s AND v.version = coalesce(%(version)s, p.version)

-- list_versions --
-- Every version of a pipeline, newest first.
SELECT name, version, hash, created_by, created_at FROM pipeline_version WHERE name = %(name)s ORDER BY version DESC

-- set_status --
-- Move a pipeline through its lifecycle.
UPDATE pipeline
SET status = %(status)s, active_version = %(active_version)s, updated_at = now()
WHERE name = %(name)s
RETURNING *

-- set_verification --
-- What verify_pipeline found for a version.
UPDATE pipeline SET verified_version = %(version)s, verification = %(verification)s, updated_at = now()
WHERE name = %(name)s
RETURNING *

-- delete_pipeline --
-- Remove a draft or archived pipeline with its versions, unless a run of it has not finished (a run pins its
-- version's content; a pipeline created again under the name must never be taken for it).
DELETE FROM pipeline WHERE name = %(name)s AND status IN ('draft', 'archived')
   AND NOT EXISTS (SELECT 1 FROM workflow
                    WHERE name = 'pipeline' AND status IN ('pending', 'running', 'waiting')
                      AND input->>'pipeline' = %(name)s)
RETURNING name

-- list_pipelines --
-- Pipelines by status and tag, optionally matching words (full text over name, description, tags, tools):
-- the words, or a prefix of one ('writ' finds 'write'). The prefixes go through the same 'english'
-- configuration as the text, so stop-words drop out ('not' would otherwise find 'note').
SELECT name, status, version, active_version, description, tags, tools, read_only, access_roles, shipped,
       verified_version, source_run, prompt_template, created_by, created_at, updated_at,
       CASE WHEN %(query)s::text IS NULL THEN 0
            ELSE ts_rank_cd(search, websearch_to_tsquery('english', %(query)s)) END AS rank
FROM pipeline
WHERE (%(status)s::text IS NULL OR status = %(status)s)
  AND (%(tags)s::text[] IS NULL OR tags && %(tags)s::text[])
  AND (%(query)s::text IS NULL OR search @@ websearch_to_tsquery('english', %(query)s)
       OR search @@ to_tsquery('english', %(prefix)s))
ORDER BY rank DESC, name
LIMIT %(limit)s

-- active_tools --
-- The active pipelines, with the definition of the version each serves (the MCP tools they publish) and
-- whether that version only reads.
SELECT p.name, p.description, coalesce(v.read_only, p.read_only) AS read_only, p.access_roles, p.active_version,
       v.definition, v.hash
FROM pipeline p JOIN pipeline_version v ON v.name = p.name AND v.version = p.active_version
WHERE p.status = 'active'
ORDER BY p.name

-- active_tool --
-- One active pipeline by name, with the definition of the version it serves (a call of its MCP tool).
SELECT p.name, p.description, coalesce(v.read_only, p.read_only) AS read_only, p.access_roles, p.active_version,
       v.definition, v.hash
FROM pipeline p JOIN pipeline_version v ON v.name = p.name AND v.version = p.active_version
WHERE p.status = 'active' AND p.name = %(name)s

-- active_templates --
-- The prompt template, tags and input schema of the version each active pipeline serves (the router's index).
SELECT p.name, p.active_version AS version, v.hash, p.tags, v.definition->>'prompt_template' AS template,
       v.definition->'input_schema' AS input_schema
FROM pipeline p JOIN pipeline_version v ON v.name = p.name AND v.version = p.active_version
WHERE p.status = 'active'
ORDER BY p.name

-- active_stamp --
-- Changes whenever the set of active pipelines or what they serve changes (a trigger bumps it, 0011): the
-- router's index is rebuilt then. One row, whatever the number of pipelines.
SELECT changes FROM pipeline_stamp

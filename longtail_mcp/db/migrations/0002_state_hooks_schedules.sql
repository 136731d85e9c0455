-- Entity state (JSONB, GIN-indexed), hooks sharing a run's state, and cron schedules.

ALTER TABLE workflow
    ADD COLUMN state jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN kind text NOT NULL DEFAULT 'workflow' CHECK (kind IN ('workflow', 'hook'));
CREATE INDEX workflow_state ON workflow USING gin (state jsonb_path_ops);

ALTER TABLE step DROP CONSTRAINT step_kind_check;
ALTER TABLE step ADD CONSTRAINT step_kind_check
    CHECK (kind IN ('step', 'sleep', 'signal', 'child', 'now', 'uuid', 'random', 'state', 'hooks'));

-- state_set_deep: like jsonb_set, but creates missing intermediate objects along the path.
CREATE FUNCTION state_set_deep(doc jsonb, path text[], value jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    child jsonb;
BEGIN
    IF path IS NULL OR cardinality(path) = 0 THEN
        RETURN value;
    END IF;
    IF doc IS NULL OR jsonb_typeof(doc) NOT IN ('object', 'array') THEN
        doc := '{}';
    END IF;
    IF jsonb_typeof(doc) = 'array' THEN
        IF path[1] !~ '^-?[0-9]+$' THEN
            RAISE EXCEPTION 'state path element "%" indexes an array and must be a number', path[1]
                USING ERRCODE = '22023';
        END IF;
        child := doc -> (path[1]::int);
    ELSE
        child := doc -> path[1];
    END IF;
    RETURN jsonb_set(doc, path[1:1], state_set_deep(child, path[2:], value), true);
END $$;

-- state_merge: deep merge of objects (b wins); anything else is replaced by b.
CREATE FUNCTION state_merge(a jsonb, b jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    result jsonb;
    k text;
BEGIN
    IF a IS NULL OR jsonb_typeof(a) <> 'object' OR jsonb_typeof(b) <> 'object' THEN
        RETURN b;
    END IF;
    result := a;
    FOR k IN SELECT jsonb_object_keys(b) LOOP
        result := jsonb_set(result, ARRAY[k], state_merge(a -> k, b -> k), true);
    END LOOP;
    RETURN result;
END $$;

-- state_apply: one entity-state operation, applied atomically inside an UPDATE.
CREATE FUNCTION state_apply(doc jsonb, op text, path text[], value jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    cur jsonb := doc #> path;
    where_ text := '"' || array_to_string(path, '.') || '"';
BEGIN
    CASE op
    WHEN 'set' THEN
        RETURN state_set_deep(doc, path, value);
    WHEN 'merge' THEN
        RETURN state_set_deep(doc, path, state_merge(cur, value));
    WHEN 'set_if_not_exists' THEN
        IF cur IS NULL THEN
            RETURN state_set_deep(doc, path, value);
        END IF;
        RETURN doc;
    WHEN 'append', 'prepend' THEN
        IF cur IS NOT NULL AND jsonb_typeof(cur) <> 'array' THEN
            RAISE EXCEPTION 'cannot % to % : it holds a %, not an array', op, where_, jsonb_typeof(cur)
                USING ERRCODE = '22023';
        END IF;
        IF op = 'append' THEN
            RETURN state_set_deep(doc, path, coalesce(cur, '[]') || jsonb_build_array(value));
        END IF;
        RETURN state_set_deep(doc, path, jsonb_build_array(value) || coalesce(cur, '[]'));
    WHEN 'remove_index', 'remove_value' THEN
        IF cur IS NULL THEN
            RETURN doc;
        END IF;
        IF jsonb_typeof(cur) <> 'array' THEN
            RAISE EXCEPTION 'cannot remove from % : it holds a %, not an array', where_, jsonb_typeof(cur)
                USING ERRCODE = '22023';
        END IF;
        IF op = 'remove_index' THEN
            RETURN state_set_deep(doc, path, cur - (value #>> '{}')::int);
        END IF;
        RETURN state_set_deep(doc, path,
            coalesce((SELECT jsonb_agg(e ORDER BY n) FROM jsonb_array_elements(cur) WITH ORDINALITY AS x(e, n)
                      WHERE e <> value), '[]'));
    WHEN 'increment' THEN
        IF cur IS NOT NULL AND jsonb_typeof(cur) <> 'number' THEN
            RAISE EXCEPTION 'cannot increment % : it holds a %, not a number', where_, jsonb_typeof(cur)
                USING ERRCODE = '22023';
        END IF;
        RETURN state_set_deep(doc, path, to_jsonb(coalesce((cur #>> '{}')::numeric, 0) + (value #>> '{}')::numeric));
    WHEN 'toggle' THEN
        IF cur IS NOT NULL AND jsonb_typeof(cur) <> 'boolean' THEN
            RAISE EXCEPTION 'cannot toggle % : it holds a %, not a boolean', where_, jsonb_typeof(cur)
                USING ERRCODE = '22023';
        END IF;
        RETURN state_set_deep(doc, path, to_jsonb(NOT coalesce((cur #>> '{}')::boolean, false)));
    WHEN 'delete' THEN
        IF cardinality(path) = 0 THEN
            RETURN '{}';
        END IF;
        RETURN doc #- path;
    ELSE
        RAISE EXCEPTION 'unknown state operation %', op USING ERRCODE = '22023';
    END CASE;
END $$;

-- Cron schedules: one row each; the worker that locks a due row starts its run and advances next_at.
CREATE TABLE schedule (
    name        text PRIMARY KEY,
    workflow    text NOT NULL,
    cron        text NOT NULL,
    input       jsonb,
    enabled     boolean NOT NULL DEFAULT true,
    next_at     timestamptz NOT NULL,
    last_at     timestamptz,
    last_run_id text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX schedule_due ON schedule (next_at) WHERE enabled;

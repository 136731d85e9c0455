-- The router keeps an index of the active pipelines' prompt templates and rebuilds it when what they
-- serve changes. Reading this one row tells it so without scanning every active pipeline (a count over
-- 10,000 of them took ~6.5 ms a request: bench/loop.py). Bumped by a statement trigger on the columns
-- the index depends on, in the changing transaction.
CREATE TABLE pipeline_stamp (
    id      boolean PRIMARY KEY DEFAULT true CHECK (id),
    changes bigint NOT NULL DEFAULT 0
);
INSERT INTO pipeline_stamp DEFAULT VALUES;

CREATE FUNCTION bump_pipeline_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE pipeline_stamp SET changes = changes + 1;
    RETURN NULL;
END $$;

CREATE TRIGGER pipeline_stamp_changes
    AFTER INSERT OR DELETE OR UPDATE OF status, active_version, version, tags, prompt_template ON pipeline
    FOR EACH STATEMENT EXECUTE FUNCTION bump_pipeline_stamp();

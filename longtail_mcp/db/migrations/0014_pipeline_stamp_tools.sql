-- The stamp now also tells the gateway that the tools the active pipelines publish changed (it keeps their
-- list between tools/list calls): so it is bumped by every column a published tool is made of, access and
-- annotations included, not only those of the router's template index.
DROP TRIGGER pipeline_stamp_changes ON pipeline;
CREATE TRIGGER pipeline_stamp_changes
    AFTER INSERT OR DELETE OR UPDATE OF status, active_version, version, tags, prompt_template, description,
        read_only, access_roles ON pipeline
    FOR EACH STATEMENT EXECUTE FUNCTION bump_pipeline_stamp();

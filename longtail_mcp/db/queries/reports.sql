-- process_summary --
-- Per workflow type: runs by status and durations of the completed ones, since a time, for the runs a
-- caller may see (%(who)s NULL: all; else runs it started or that asked one of %(roles)s).
SELECT name,
       sum(n)::bigint AS runs,
       jsonb_object_agg(status, n) FILTER (WHERE status IS NOT NULL) AS by_status,
       sum(done_seconds_sum) / nullif(sum(done_n), 0) AS avg_seconds,
       max(p50) AS p50_seconds, max(p95) AS p95_seconds,
       max(last_started) AS last_started_at
FROM (
    SELECT name, status, count(*) AS n,
           sum(extract(epoch FROM completed_at - created_at)) FILTER (WHERE status = 'completed') AS done_seconds_sum,
           count(*) FILTER (WHERE status = 'completed') AS done_n,
           max(created_at) AS last_started,
           NULL::float8 AS p50, NULL::float8 AS p95
    FROM workflow w
    WHERE created_at >= %(since)s AND (%(name)s::text IS NULL OR name = %(name)s)
      AND (%(who)s::text IS NULL OR principal ->> 'id' = %(who)s
           OR EXISTS (SELECT 1 FROM escalation e WHERE e.workflow_id = w.id AND e.role = ANY(%(roles)s)))
    GROUP BY name, status
    UNION ALL
    SELECT name, NULL, 0, NULL, 0, NULL,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM completed_at - created_at)),
           percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM completed_at - created_at))
    FROM workflow w
    WHERE status = 'completed' AND created_at >= %(since)s AND (%(name)s::text IS NULL OR name = %(name)s)
      AND (%(who)s::text IS NULL OR principal ->> 'id' = %(who)s
           OR EXISTS (SELECT 1 FROM escalation e WHERE e.workflow_id = w.id AND e.role = ANY(%(roles)s)))
    GROUP BY name
) parts
GROUP BY name ORDER BY name

-- health_counts --
-- Runs, certified tasks and escalations by status (as the caller may see them), live workers.
SELECT
    (SELECT coalesce(jsonb_object_agg(status, n), '{}') FROM (
        SELECT status, count(*) AS n FROM workflow w
        WHERE %(who)s::text IS NULL OR principal ->> 'id' = %(who)s
              OR EXISTS (SELECT 1 FROM escalation e WHERE e.workflow_id = w.id AND e.role = ANY(%(roles)s))
        GROUP BY status) r) AS runs,
    (SELECT coalesce(jsonb_object_agg(status, n), '{}') FROM (
        SELECT t.status, count(*) AS n FROM task t JOIN workflow w ON w.id = t.workflow_id
        WHERE %(who)s::text IS NULL OR w.principal ->> 'id' = %(who)s
              OR EXISTS (SELECT 1 FROM escalation e WHERE e.workflow_id = w.id AND e.role = ANY(%(roles)s))
        GROUP BY t.status) t) AS tasks,
    (SELECT coalesce(jsonb_object_agg(status, n), '{}') FROM (
        SELECT status, count(*) AS n FROM escalation
        WHERE %(who)s::text IS NULL OR role = ANY(%(roles)s) OR assigned_to = %(who)s
        GROUP BY status) x) AS escalations,
    (SELECT count(*) FROM worker WHERE stopped_at IS NULL
        AND heartbeat_at > now() - make_interval(secs => %(stale)s)) AS workers_alive,
    (SELECT coalesce(max(version), 0) FROM migration) AS migration

-- pipeline_counts --
-- Pipelines by status (only once the compiler's tables exist).
SELECT coalesce(jsonb_object_agg(status, n), '{}') AS pipelines
FROM (SELECT status, count(*) AS n FROM pipeline GROUP BY status) p

-- describe_tables --
-- Tables of our schema with their columns, estimated rows, comments, and whether run_sql may read them.
SELECT c.relname AS table, obj_description(c.oid, 'pg_class') AS comment,
       greatest(c.reltuples, 0)::bigint AS estimated_rows,
       (%(reader)s::text IS NOT NULL AND has_table_privilege(%(reader)s, c.oid, 'SELECT')) AS readable_by_run_sql,
       (SELECT jsonb_agg(jsonb_build_object(
                   'name', a.attname, 'type', format_type(a.atttypid, a.atttypmod), 'nullable', NOT a.attnotnull,
                   'default', pg_get_expr(d.adbin, d.adrelid), 'comment', col_description(c.oid, a.attnum))
                   ORDER BY a.attnum)
        FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm')
  AND (%(table)s::text IS NULL OR c.relname = %(table)s)
ORDER BY c.relname

-- reader_role --
-- The role run_sql logs in as (NULL when the migrations could not create it).
SELECT (SELECT role_name FROM sql_reader) AS role_name

-- pipeline_table --
-- Whether the compiler's pipeline table exists yet.
SELECT to_regclass('pipeline') IS NOT NULL AS present

-- statement_timeout --
-- run_sql's timeout for this transaction only; as a query it also takes the snapshot, so a
-- SET TRANSACTION READ WRITE after it is refused.
SELECT set_config('statement_timeout', %(ms)s, true)

-- type_names --
-- Names of result column types psycopg does not know (enums, domains, extension types).
SELECT oid::int AS oid, format_type(oid, NULL) AS name FROM pg_type WHERE oid = ANY(%(oids)s)

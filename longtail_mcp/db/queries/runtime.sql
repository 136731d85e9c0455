-- start_workflow --
-- Insert a run; the id is the idempotency key, so a second start returns nothing.
INSERT INTO workflow (id, name, input, parent_id, parent_seq, principal, due_at)
VALUES (%(id)s, %(name)s, %(input)s, %(parent_id)s, %(parent_seq)s, %(principal)s, now())
ON CONFLICT (id) DO NOTHING
RETURNING id

-- start_hook --
-- Start a hook on a live run: a run of its own that shares the target's entity state
-- (a hook started on a hook shares the state of the run that hook belongs to).
INSERT INTO workflow (id, name, input, parent_id, kind, principal, due_at)
SELECT %(id)s, %(name)s, %(input)s, CASE WHEN t.kind = 'hook' THEN t.parent_id ELSE t.id END, 'hook',
       coalesce(%(principal)s::jsonb, t.principal), now()
FROM workflow t WHERE t.id = %(target)s AND t.status IN ('pending', 'running', 'waiting')
ON CONFLICT (id) DO NOTHING
RETURNING id

-- list_hooks --
-- The hooks started on a run, oldest first.
SELECT id, name, status, result, error FROM workflow
WHERE parent_id = %(id)s AND kind = 'hook' ORDER BY created_at, id

-- apply_state --
-- One atomic entity-state operation; returns the value now at the path.
UPDATE workflow SET state = state_apply(state, %(op)s, %(path)s, %(value)s::jsonb), updated_at = now()
WHERE id = %(id)s
RETURNING state #> %(path)s AS value

-- get_state --
-- The entity state (or the value at a path).
SELECT state #> %(path)s AS value FROM workflow WHERE id = %(id)s

-- get_workflow --
-- One run's row.
SELECT id, name, kind, status, input, result, error, state, parent_id, parent_seq, owner, lease_epoch, due_at,
       waiting_for, claims, principal, created_at, updated_at, completed_at
FROM workflow WHERE id = %(id)s

-- claim_workflows --
-- Claim due runs of the names this worker knows; bump each lease epoch (fencing). SKIP LOCKED: a claim never waits.
WITH due AS (
    SELECT id FROM workflow
    WHERE due_at <= now() AND status IN ('pending', 'running', 'waiting') AND name = ANY(%(names)s)
    ORDER BY due_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE workflow w
SET status = 'running', owner = %(worker)s, lease_epoch = w.lease_epoch + 1,
    due_at = now() + make_interval(secs => %(lease)s), waiting_for = NULL,
    claims = w.claims + 1, updated_at = now()
FROM due WHERE w.id = due.id
RETURNING w.id, w.name, w.kind, w.input, w.lease_epoch, w.wake_seq, w.parent_id, w.claims, w.principal

-- load_journal --
-- A run's journal in order, for replay.
SELECT seq, kind, name, status, input, output, error, attempts, wake_at, key
FROM step WHERE workflow_id = %(id)s ORDER BY seq

-- lock_for_batch --
-- Lock the rows a journal batch touches, in id order (no deadlock between batches).
SELECT id, lease_epoch, wake_seq FROM workflow WHERE id = ANY(%(ids)s) ORDER BY id FOR UPDATE

-- write_steps --
-- Upsert journal rows (a waiting or retrying row is later completed in place) from one JSON batch,
-- and announce each completed one (step.completed) in the same transaction.
WITH written AS (
    INSERT INTO step (workflow_id, seq, kind, name, status, input, output, error, attempts, wake_at, epoch,
                      worker, started_at, key)
    SELECT b.workflow_id, b.seq, b.kind, b.name, b.status, b.input, b.output, b.error, b.attempts,
           to_timestamp(b.wake_at), b.epoch, %(worker)s, to_timestamp(b.started_at), b.key
    FROM jsonb_to_recordset(%(rows)s::jsonb)
         AS b(workflow_id text, seq int, kind text, name text, status text, input jsonb, output jsonb,
              error jsonb, attempts int, wake_at float8, epoch bigint, started_at float8, key text)
    ON CONFLICT (workflow_id, seq) DO UPDATE
    SET status = excluded.status, output = excluded.output, error = excluded.error, attempts = excluded.attempts,
        wake_at = excluded.wake_at, epoch = excluded.epoch, worker = excluded.worker, completed_at = now()
    RETURNING workflow_id, seq, kind, name, status
)
SELECT count(pg_notify(%(channel)s, json_build_object(
    'type', 'step.completed', 'workflow_id', workflow_id, 'seq', seq, 'kind', kind, 'name', name,
    'at', extract(epoch FROM clock_timestamp()))::text)) AS notified
FROM (SELECT * FROM written WHERE status = 'completed' ORDER BY workflow_id, seq) AS done

-- finish_workflows --
-- Record how claimed runs left the worker (completed, failed, or waiting until due_at) from one JSON
-- batch, and announce each (run.completed / run.failed / run.waiting).
WITH finished AS (
    UPDATE workflow w
    SET status = b.status, result = b.result, error = b.error, due_at = to_timestamp(b.due_at),
        waiting_for = b.waiting_for, owner = NULL, updated_at = now(),
        completed_at = CASE WHEN b.status IN ('completed', 'failed', 'cancelled') THEN now() END
    FROM jsonb_to_recordset(%(rows)s::jsonb)
         AS b(id text, status text, result jsonb, error jsonb, due_at float8, waiting_for text)
    WHERE w.id = b.id
    RETURNING w.id, w.name, w.status
)
SELECT count(pg_notify(%(channel)s, json_build_object(
    'type', 'run.' || status, 'workflow_id', id, 'name', name, 'status', status,
    'at', extract(epoch FROM clock_timestamp()))::text)) AS notified
FROM finished

-- wake_workflows --
-- Something a run may wait on happened: bump wake_seq; a waiting run becomes due now.
UPDATE workflow
SET wake_seq = wake_seq + 1,
    due_at = CASE WHEN status = 'waiting' THEN now() ELSE due_at END
WHERE id = ANY(%(ids)s) AND status IN ('pending', 'running', 'waiting')

-- fence --
-- Hold a run's row while a side transaction writes for it; no row means the lease was lost.
SELECT wake_seq FROM workflow WHERE id = %(id)s AND lease_epoch = %(epoch)s FOR UPDATE

-- consume_message --
-- Take the oldest unconsumed signal of a name for the wait at seq.
UPDATE message SET consumed_seq = %(seq)s
WHERE id = (
    SELECT id FROM message
    WHERE workflow_id = %(id)s AND name = %(name)s AND consumed_seq IS NULL
    ORDER BY id LIMIT 1 FOR UPDATE
)
RETURNING payload

-- send_signal --
-- Buffer a signal for a live run and wake it.
WITH w AS (
    UPDATE workflow
    SET wake_seq = wake_seq + 1, due_at = CASE WHEN status = 'waiting' THEN now() ELSE due_at END
    WHERE id = %(id)s AND status IN ('pending', 'running', 'waiting')
    RETURNING id
)
INSERT INTO message (workflow_id, name, payload)
SELECT id, %(name)s, %(payload)s FROM w
RETURNING id

-- cancel_workflows --
-- Cancel a run and its live descendants; bumping the epoch fences out any worker still running them.
WITH RECURSIVE tree AS (
    SELECT id FROM workflow WHERE id = %(id)s
    UNION
    SELECT c.id FROM workflow c JOIN tree t ON c.parent_id = t.id
), locked AS (
    SELECT w.id FROM workflow w JOIN tree USING (id)
    WHERE w.status IN ('pending', 'running', 'waiting') ORDER BY w.id FOR UPDATE OF w
)
UPDATE workflow w
SET status = 'cancelled', lease_epoch = w.lease_epoch + 1, due_at = NULL, owner = NULL,
    error = %(error)s, updated_at = now(), completed_at = now()
FROM locked WHERE w.id = locked.id
RETURNING w.id, w.name, w.parent_id

-- renew_leases --
-- Extend the leases of the runs this worker is executing; a run missing from the result was lost.
WITH mine AS (
    SELECT id FROM workflow
    WHERE owner = %(worker)s AND status = 'running' AND id = ANY(%(ids)s)
    ORDER BY id FOR UPDATE
)
UPDATE workflow w SET due_at = now() + make_interval(secs => %(lease)s)
FROM mine WHERE w.id = mine.id
RETURNING w.id

-- release_leases --
-- On clean shutdown: hand this worker's running runs back so any worker can take them at once.
WITH mine AS (
    SELECT id FROM workflow WHERE owner = %(worker)s AND status = 'running' ORDER BY id FOR UPDATE
)
UPDATE workflow w SET due_at = now(), owner = NULL
FROM mine WHERE w.id = mine.id

-- register_worker --
-- A worker process announces itself.
INSERT INTO worker (id, host, pid, workflows, concurrency)
VALUES (%(id)s, %(host)s, %(pid)s, %(workflows)s, %(concurrency)s)
ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), stopped_at = NULL

-- heartbeat_worker --
-- A worker is alive.
UPDATE worker SET heartbeat_at = now() WHERE id = %(id)s

-- stop_worker --
-- A worker left cleanly.
UPDATE worker SET stopped_at = now() WHERE id = %(id)s

-- list_workflows --
-- Runs, newest first, optionally filtered, one page; only those visible to %(who)s (see run_visible).
SELECT id, name, kind, status, parent_id, created_at, updated_at, completed_at, waiting_for
FROM workflow w
WHERE (%(status)s::text IS NULL OR status = %(status)s)
  AND (%(name)s::text IS NULL OR name = %(name)s)
  AND (%(who)s::text IS NULL OR principal ->> 'id' = %(who)s
       OR EXISTS (SELECT 1 FROM escalation e WHERE e.workflow_id = w.id AND e.role = ANY(%(roles)s)))
ORDER BY created_at DESC, id
LIMIT %(limit)s OFFSET %(offset)s

-- related_runs --
-- A run's page in one query: some runs by id (its children, as its journal names them) and the hooks
-- started on %(parent)s, oldest first; only those visible to %(who)s (see run_visible).
SELECT id, name, kind, status, parent_id, created_at, updated_at, completed_at, waiting_for
FROM workflow w
WHERE (id = ANY(%(ids)s) OR (parent_id = %(parent)s AND kind = 'hook'))
  AND (%(who)s::text IS NULL OR principal ->> 'id' = %(who)s
       OR EXISTS (SELECT 1 FROM escalation e WHERE e.workflow_id = w.id AND e.role = ANY(%(roles)s)))
ORDER BY created_at, id

-- run_visible --
-- The one visibility rule for runs: a run is visible to the account that started it and to members
-- (and admins) of the roles it asked; %(who)s NULL (a superadmin, or trusted code) sees every run.
SELECT 1 AS visible FROM workflow w
WHERE w.id = %(id)s
  AND (%(who)s::text IS NULL OR w.principal ->> 'id' = %(who)s
       OR EXISTS (SELECT 1 FROM escalation e WHERE e.workflow_id = w.id AND e.role = ANY(%(roles)s)))

-- run_starter --
-- Who started an existing run, and its type (an id taken by someone else is a conflict, never their run).
SELECT name, coalesce(principal ->> 'id', 'system') AS started_by FROM workflow WHERE id = %(id)s

-- export_steps --
-- The full journal of a run, for export.
SELECT seq, key, kind, name, status, input, output, error, attempts, wake_at, epoch, worker, started_at, completed_at
FROM step WHERE workflow_id = %(id)s ORDER BY seq

-- export_messages --
-- Every signal a run received.
SELECT id, name, payload, consumed_seq, created_at FROM message WHERE workflow_id = %(id)s ORDER BY id

-- health --
-- Counts for /health.
SELECT
    (SELECT count(*) FROM worker WHERE stopped_at IS NULL AND heartbeat_at > now() - make_interval(secs => %(stale)s)) AS workers_alive,
    (SELECT coalesce(max(version), 0) FROM migration) AS migration

-- workflow_types --
-- Workflow types the live workers can run, with how many workers serve each.
SELECT t.name, count(*) AS workers
FROM worker w, unnest(w.workflows) AS t(name)
WHERE w.stopped_at IS NULL AND w.heartbeat_at > now() - make_interval(secs => %(stale)s)
GROUP BY t.name ORDER BY t.name

-- publish_workflow_tool --
-- A worker publishes a workflow type it runs as an MCP tool (its schemas from the function's type hints).
INSERT INTO workflow_tool (name, description, input_schema, output_schema, wrapped, roles)
VALUES (%(name)s, %(description)s, %(input_schema)s, %(output_schema)s, %(wrapped)s, %(roles)s)
ON CONFLICT (name) DO UPDATE
SET description = excluded.description, input_schema = excluded.input_schema,
    output_schema = excluded.output_schema, wrapped = excluded.wrapped, roles = excluded.roles, updated_at = now()

-- workflow_tools --
-- The workflow types published as tools that a live worker runs now.
SELECT t.name, t.description, t.input_schema, t.output_schema, t.wrapped, t.roles FROM workflow_tool t
WHERE EXISTS (SELECT 1 FROM worker w WHERE t.name = ANY(w.workflows) AND w.stopped_at IS NULL
              AND w.heartbeat_at > now() - make_interval(secs => %(stale)s))
ORDER BY t.name

-- live_workers --
-- Worker processes that heartbeat within %(stale)s seconds and have not stopped (for `longtail-mcp status`).
SELECT id, host, pid, cardinality(workflows) AS workflow_types, concurrency, started_at, heartbeat_at
FROM worker
WHERE stopped_at IS NULL AND heartbeat_at > now() - make_interval(secs => %(stale)s)
ORDER BY started_at

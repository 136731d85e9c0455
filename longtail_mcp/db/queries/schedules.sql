-- upsert_schedule --
-- Create or change a schedule; an unchanged cron keeps its next tick.
INSERT INTO schedule (name, workflow, cron, input, next_at)
VALUES (%(name)s, %(workflow)s, %(cron)s, %(input)s, %(next_at)s)
ON CONFLICT (name) DO UPDATE
SET workflow = excluded.workflow, input = excluded.input, enabled = true, updated_at = now(),
    next_at = CASE WHEN schedule.cron = excluded.cron AND schedule.enabled THEN schedule.next_at ELSE excluded.next_at END,
    cron = excluded.cron

-- register_cron --
-- A workflow declared with cron=...: create its schedule, or change only the expression (input kept).
INSERT INTO schedule (name, workflow, cron, next_at)
VALUES (%(name)s, %(workflow)s, %(cron)s, %(next_at)s)
ON CONFLICT (name) DO UPDATE
SET next_at = CASE WHEN schedule.cron = excluded.cron THEN schedule.next_at ELSE excluded.next_at END,
    cron = excluded.cron, updated_at = now()

-- delete_schedule --
-- Remove a schedule.
DELETE FROM schedule WHERE name = %(name)s RETURNING name

-- list_schedules --
-- Every schedule.
SELECT name, workflow, cron, input, enabled, next_at, last_at, last_run_id FROM schedule ORDER BY name

-- due_schedules --
-- Lock due schedules (SKIP LOCKED: each tick is fired by exactly one worker) and read the database clock.
SELECT name, workflow, cron, input, next_at, now() AS now FROM schedule
WHERE enabled AND next_at <= now() AND workflow = ANY(%(workflows)s)
ORDER BY next_at LIMIT 50
FOR UPDATE SKIP LOCKED

-- advance_schedule --
-- Record the fired tick and the next one.
UPDATE schedule SET next_at = %(next_at)s, last_at = %(tick)s, last_run_id = %(run_id)s, updated_at = now()
WHERE name = %(name)s

-- next_schedule_in --
-- Seconds until the earliest enabled schedule is due.
SELECT extract(epoch FROM min(next_at) - now()) AS seconds FROM schedule
WHERE enabled AND workflow = ANY(%(workflows)s)

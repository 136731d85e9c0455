-- insert_escalation --
-- A new pending escalation (its id is the idempotency key).
INSERT INTO escalation (id, workflow_id, seq, type, role, message, data, metadata, form_version, form_schema,
                        priority, assigned_to, assigned_until, deadline_at, action_hash, created_by)
VALUES (%(id)s, %(workflow_id)s, %(seq)s, %(type)s, %(role)s, %(message)s, %(data)s, %(metadata)s,
        %(form_version)s, %(form_schema)s, %(priority)s, %(assigned_to)s,
        CASE WHEN %(assigned_to)s::text IS NULL THEN NULL ELSE now() + make_interval(secs => %(claim_seconds)s) END,
        CASE WHEN %(deadline_seconds)s::float8 IS NULL THEN NULL ELSE now() + make_interval(secs => %(deadline_seconds)s) END,
        %(action_hash)s, %(created_by)s)
ON CONFLICT (id) DO NOTHING
RETURNING *

-- get_escalation --
-- One escalation.
SELECT * FROM escalation WHERE id = %(id)s

-- claim_escalation --
-- Claim (or extend one's own claim): first writer wins; a claim past its TTL is free again.
UPDATE escalation
SET assigned_to = %(who)s, assigned_until = now() + make_interval(secs => %(seconds)s), updated_at = now()
WHERE id = %(id)s AND status = 'pending' AND role = %(role)s
  AND (assigned_to IS NULL OR assigned_until < now() OR assigned_to = %(who)s)
RETURNING *

-- release_escalation --
-- Give a claim back.
UPDATE escalation SET assigned_to = NULL, assigned_until = NULL, updated_at = now()
WHERE id = %(id)s AND status = 'pending' AND role = %(role)s AND assigned_to IS NOT NULL
  AND (assigned_to = %(who)s OR %(force)s)
RETURNING *

-- resolve_escalation --
-- Resolve: allowed to the claimant, or to anyone while nobody holds a live claim.
UPDATE escalation
SET status = 'resolved', resolution = %(resolution)s, resolved_by = %(who)s, resolved_at = now(),
    reason = %(reason)s, assigned_to = %(who)s, updated_at = now()
WHERE id = %(id)s AND status = 'pending' AND role = %(role)s
  AND (assigned_to IS NULL OR assigned_until < now() OR assigned_to = %(who)s)
RETURNING *

-- cancel_escalation --
-- Cancel a pending escalation.
UPDATE escalation SET status = 'cancelled', reason = %(reason)s, resolved_by = %(who)s, resolved_at = now(),
    updated_at = now()
WHERE id = %(id)s AND status = 'pending' AND role = %(role)s
  AND (assigned_to IS NULL OR assigned_until < now() OR assigned_to = %(who)s OR %(force)s)
RETURNING *

-- reroute_escalation --
-- Send a pending escalation to another role (claim cleared, deadline from that role's chain).
UPDATE escalation
SET role = %(role)s, assigned_to = NULL, assigned_until = NULL, reason = %(reason)s, updated_at = now(),
    deadline_at = CASE WHEN %(deadline_seconds)s::float8 IS NULL THEN NULL
                       ELSE now() + make_interval(secs => %(deadline_seconds)s) END
WHERE id = %(id)s AND status = 'pending' AND role = %(from_role)s
  AND (assigned_to IS NULL OR assigned_until < now() OR assigned_to = %(who)s OR %(force)s)
RETURNING *

-- due_escalations --
-- Pending escalations past their deadline, with where their chain sends them. SKIP LOCKED: one mover each.
SELECT e.id, e.role, e.workflow_id, e.stage, c.next_role, n.stage_seconds AS next_stage_seconds
FROM escalation e
LEFT JOIN escalation_chain c ON c.role = e.role
LEFT JOIN escalation_chain n ON n.role = c.next_role
WHERE e.status = 'pending' AND e.deadline_at <= now()
ORDER BY e.deadline_at LIMIT 100
FOR UPDATE OF e SKIP LOCKED

-- escalate_up --
-- Move an escalation one stage up its chain.
UPDATE escalation
SET role = %(role)s, stage = stage + 1, assigned_to = NULL, assigned_until = NULL, updated_at = now(),
    deadline_at = CASE WHEN %(deadline_seconds)s::float8 IS NULL THEN NULL
                       ELSE now() + make_interval(secs => %(deadline_seconds)s) END
WHERE id = %(id)s
RETURNING *

-- expire_escalation --
-- Past the last stage: expired. The waiting run gets a timeout, never an approval.
UPDATE escalation SET status = 'expired', assigned_to = NULL, assigned_until = NULL, resolved_at = now(),
    updated_at = now()
WHERE id = %(id)s AND status = 'pending'
RETURNING *

-- release_expired_claims --
-- Claims past their TTL go back to the queue.
UPDATE escalation SET assigned_to = NULL, assigned_until = NULL, updated_at = now()
WHERE status = 'pending' AND assigned_to IS NOT NULL AND assigned_until < now()
RETURNING id

-- use_approval --
-- Spend a resolved approval on exactly the action it was bound to; single use.
UPDATE escalation SET approval_used_at = now(), updated_at = now()
WHERE id = %(id)s AND status = 'resolved' AND action_hash = %(hash)s AND approval_used_at IS NULL
  AND resolution -> 'approved' = 'true'::jsonb AND (%(who)s::text IS NULL OR created_by = %(who)s)
RETURNING id

-- pending_approval --
-- The caller's still-pending request to approve one exact action (so asking twice opens one escalation).
SELECT * FROM escalation
WHERE action_hash = %(hash)s AND created_by = %(who)s AND status = 'pending' AND type = 'approval'
ORDER BY created_at LIMIT 1

-- escalation_stats --
-- Counts by status and role, and throughput over the last hour and day, for some roles (NULL: all).
SELECT role, status, count(*) AS n,
       count(*) FILTER (WHERE created_at > now() - interval '1 hour') AS created_1h,
       count(*) FILTER (WHERE created_at > now() - interval '1 day') AS created_1d,
       count(*) FILTER (WHERE status = 'resolved' AND resolved_at > now() - interval '1 hour') AS resolved_1h,
       count(*) FILTER (WHERE status = 'resolved' AND resolved_at > now() - interval '1 day') AS resolved_1d
FROM escalation WHERE (%(roles)s::text[] IS NULL OR role = ANY(%(roles)s))
GROUP BY role, status ORDER BY role, status

-- claim_next --
-- Claim the most urgent, oldest claimable escalation of some roles, in one statement: pick (unclaimed
-- work from the escalation_unclaimed index, else a lapsed claim), claim, audit, announce.
-- SKIP LOCKED: concurrent claimers never queue behind each other or get the same row.
WITH unclaimed AS (
    SELECT id FROM escalation
    WHERE status = 'pending' AND assigned_to IS NULL AND role = ANY(%(roles)s)
    ORDER BY priority, created_at LIMIT 1
    FOR UPDATE SKIP LOCKED
), lapsed AS (  -- only when nothing is unclaimed: a claim whose TTL passed (the deadline loop also frees these)
    SELECT id FROM escalation
    WHERE status = 'pending' AND assigned_to IS NOT NULL AND assigned_until < now() AND role = ANY(%(roles)s)
      AND NOT EXISTS (SELECT 1 FROM unclaimed)
    ORDER BY priority, created_at LIMIT 1
    FOR UPDATE SKIP LOCKED
), pick AS (
    SELECT id FROM unclaimed UNION ALL SELECT id FROM lapsed
), claimed AS (
    UPDATE escalation e
    SET assigned_to = %(who)s, assigned_until = now() + make_interval(secs => %(seconds)s), updated_at = now()
    FROM pick WHERE e.id = pick.id
    RETURNING e.*
), logged AS (
    INSERT INTO audit (actor, action, object_type, object_id, before_status, after_status, data)
    SELECT %(who)s, 'escalation.claim', 'escalation', id, 'pending', 'pending',
           jsonb_build_object('until', assigned_until)
    FROM claimed
    RETURNING id
), announced AS (
    SELECT pg_notify(%(channel)s, json_build_object(
        'type', 'escalation.claimed', 'id', id, 'workflow_id', workflow_id, 'status', status, 'name', role,
        'at', extract(epoch FROM clock_timestamp()))::text) AS sent
    FROM claimed
)
SELECT claimed.* FROM claimed
WHERE (SELECT count(*) FROM logged) >= 0 AND (SELECT count(*) FROM announced) >= 0

-- cancel_for_runs --
-- The runs waiting on these escalations were cancelled: nothing is waiting for a decision any more.
UPDATE escalation SET status = 'cancelled', reason = %(reason)s, resolved_by = %(who)s, resolved_at = now(),
    updated_at = now()
WHERE workflow_id = ANY(%(ids)s) AND status = 'pending'
RETURNING *

-- escalation_outcome --
-- What a waiting run reads of its own escalation: only a row bound to that run and step.
SELECT status, resolution, role FROM escalation WHERE id = %(id)s AND workflow_id = %(workflow_id)s AND seq = %(seq)s

-- annotate_escalation --
-- Add keys to a pending escalation's metadata (what an automatic handler found, for the person who takes it).
UPDATE escalation SET metadata = metadata || %(metadata)s::jsonb, updated_at = now()
WHERE id = %(id)s AND status = 'pending'
RETURNING *

-- escalation_history --
-- Everything the audit log holds about one escalation, oldest first.
SELECT id, at, actor, action, before_status, after_status, reason, data
FROM audit WHERE object_type = 'escalation' AND object_id = %(id)s ORDER BY id

-- runs_select --
-- find_runs: the columns, before the filters chosen (fixed fragments, so the indexes apply).
SELECT id, name, kind, status, state, parent_id, created_at, updated_at, completed_at FROM workflow

-- runs_state --
-- State containment (GIN, jsonb_path_ops).
state @> %(state)s::jsonb

-- runs_path --
-- A jsonpath predicate on the state (GIN, jsonb_path_ops).
state @? %(path)s::jsonpath

-- runs_status --
-- By status.
status = %(status)s

-- runs_name --
-- By workflow type.
name = %(name)s

-- runs_visible --
-- The visibility rule (see run_visible in runtime.sql): runs the account started, or that asked one of its roles.
(principal ->> 'id' = %(who)s OR EXISTS (SELECT 1 FROM escalation e WHERE e.workflow_id = workflow.id AND e.role = ANY(%(roles)s)))

-- runs_order --
-- Newest first, one page.
ORDER BY created_at DESC, id LIMIT %(limit)s

-- escalations_select --
-- find_escalations: every column, before the filters chosen.
SELECT * FROM escalation

-- escalations_roles --
-- Of some roles.
role = ANY(%(roles)s)

-- escalations_status --
-- By status.
status = %(status)s

-- escalations_role --
-- Of one role.
role = %(role)s

-- escalations_type --
-- By type.
type = %(type)s

-- escalations_priority --
-- By priority.
priority = %(priority)s

-- escalations_metadata --
-- Metadata containment (GIN, jsonb_path_ops).
metadata @> %(metadata)s::jsonb

-- escalations_workflow_id --
-- Of one run.
workflow_id = %(workflow_id)s

-- escalations_order_newest --
-- Newest first, one page (find_escalations' default).
ORDER BY created_at DESC, id DESC LIMIT %(limit)s OFFSET %(offset)s

-- escalations_order_oldest --
-- Oldest first, one page.
ORDER BY created_at, id LIMIT %(limit)s OFFSET %(offset)s

-- escalations_order_priority --
-- Most urgent first, then oldest, one page.
ORDER BY priority, created_at, id LIMIT %(limit)s OFFSET %(offset)s

-- work_available --
-- Pending work someone may claim: unclaimed (or the claim expired), of some roles (escalation_available).
SELECT * FROM escalation
WHERE status = 'pending' AND role = ANY(%(roles)s) AND (assigned_to IS NULL OR assigned_until < now())

-- work_mine --
-- Pending work an account holds a live claim on (escalation_assignee).
SELECT * FROM escalation
WHERE status = 'pending' AND assigned_to = %(who)s AND assigned_until >= now()

-- work_role --
-- And of one role.
AND role = %(role)s

-- work_type --
-- And of one type.
AND type = %(type)s

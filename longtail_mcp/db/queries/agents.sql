-- set_policy --
-- Set the closed-loop policy of a router or a tag.
INSERT INTO agent_policy (scope, auto_compile, updated_by) VALUES (%(scope)s, %(auto_compile)s, %(by)s)
ON CONFLICT (scope) DO UPDATE SET auto_compile = EXCLUDED.auto_compile, updated_by = EXCLUDED.updated_by,
                                  updated_at = now()
RETURNING scope, auto_compile, updated_by, updated_at

-- delete_policy --
-- Remove a policy (the router's, or the setting's default, applies again).
DELETE FROM agent_policy WHERE scope = %(scope)s RETURNING scope

-- list_policies --
-- Every policy set.
SELECT scope, auto_compile, updated_by, updated_at FROM agent_policy ORDER BY scope

-- policies_for --
-- The policies of one router and some tags.
SELECT scope, auto_compile FROM agent_policy WHERE scope = ANY(%(scopes)s::text[])

-- set_strategy --
-- Set a role's escalation strategy.
INSERT INTO escalation_strategy (role, strategy, updated_by) VALUES (%(role)s, %(strategy)s, %(by)s)
ON CONFLICT (role) DO UPDATE SET strategy = EXCLUDED.strategy, updated_by = EXCLUDED.updated_by, updated_at = now()
RETURNING role, strategy, updated_by, updated_at

-- list_strategies --
-- Every role's strategy (roles without a row wait for a person: `default`).
SELECT r.name AS role, coalesce(s.strategy, 'default') AS strategy, s.updated_by, s.updated_at
FROM role r LEFT JOIN escalation_strategy s ON s.role = r.name ORDER BY r.name

-- undispatched --
-- Pending escalations whose role has a strategy other than `default` and that no strategy run has taken
-- yet at this role (the run's id is derived from the escalation and the role). Approvals are people's.
SELECT e.id, e.role, s.strategy
FROM escalation e JOIN escalation_strategy s ON s.role = e.role
WHERE e.status = 'pending' AND e.type <> 'approval' AND s.strategy <> 'default'
  AND NOT EXISTS (SELECT 1 FROM workflow w WHERE w.id = 'strategy-' || e.role || '-' || e.id)
ORDER BY e.priority, e.created_at
LIMIT %(limit)s

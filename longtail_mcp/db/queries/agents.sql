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

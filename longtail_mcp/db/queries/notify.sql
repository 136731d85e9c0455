-- notify_wake --
-- Tell the workers something may be due now (a run started, woken, or handed back); delivered at commit.
SELECT pg_notify(%(channel)s, '')

-- notify_events --
-- Publish events on the changing transaction: listeners get them at commit, in this order.
SELECT pg_notify(%(channel)s, p) FROM unnest(%(payloads)s::text[]) WITH ORDINALITY AS x(p, n) ORDER BY n

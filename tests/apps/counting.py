"""A workflow whose steps record every execution, for multi-process worker tests.

Run by `python -m longtail_mcp worker --app tests.apps.counting:app` with DATABASE_URL set.
"""

import os
import threading
import time

import psycopg

from longtail_mcp import LongTail, current_step

app = LongTail()
_local = threading.local()


def _conn() -> psycopg.Connection:
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = _local.conn = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True)
    return conn


@app.step(retries=3, backoff=0)
def effect(k: int) -> dict:
    """An outside-world effect: one row in public.effect per execution, committed at once."""
    info = current_step()
    started = time.time()
    time.sleep(float(os.environ.get("STEP_SECONDS", "0.01")))
    _conn().execute(
        "INSERT INTO public.effect (workflow_id, seq, pid, started, finished) VALUES (%s, %s, %s, %s, %s)",
        [info.workflow_id, info.seq, os.getpid(), started, time.time()],
    )
    return {"pid": os.getpid(), "k": k}


@app.workflow("counted")
async def counted(ctx, n):
    return [await ctx.run(effect, k) for k in range(3)]


EFFECT_TABLE = (
    "CREATE TABLE public.effect (workflow_id text NOT NULL, seq int NOT NULL, pid int NOT NULL,"
    " started float8 NOT NULL, finished float8 NOT NULL)"
)

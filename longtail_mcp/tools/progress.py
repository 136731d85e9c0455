"""Progress of a long call: while it waits or works, tell the caller every few seconds how it stands.

One loop for every tool that waits (for a run, for a person) or works long (a statement, a fetch):
`await reporting(call.progress, work(), total=timeout, status=describe)` reports the seconds elapsed
against `total`, with what `status()` says, every `PROGRESS_SECONDS`. A call that ends sooner reports
nothing; a caller that asked for no progress costs nothing (`no_progress`). Cancelling the call
cancels `work` and the reports with it.
"""

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

from longtail_mcp.tools.spec import Progress, no_progress

logger = logging.getLogger(__name__)
T = TypeVar("T")
PROGRESS_SECONDS = 2.0  # how often a long call reports (read at each call: tests lower it)
REPORT_SECONDS = 5.0  # the most one report (its status query and its notification) may take
Status = Callable[[], Awaitable[str | None]]


async def reporting(progress: Progress, work: Awaitable[T], *, total: float | None = None,
                    status: Status | None = None, every: float | None = None) -> T:
    """Await `work`, reporting `(seconds elapsed, total, await status())` to `progress` every `every`
    seconds (default PROGRESS_SECONDS) until it ends. Its result or exception is `work`'s own: a report
    that fails (the client went away, `status` could not read) is logged at debug level and skipped."""
    if progress is no_progress:
        return await work
    interval = every if every is not None else PROGRESS_SECONDS
    began = anyio.current_time()

    async def tick() -> None:
        while True:
            await anyio.sleep(interval)
            # Shielded (briefly): a cancellation arriving mid-report waits for it rather than interrupting a
            # status query, which would cost the pool its connection.
            with anyio.move_on_after(REPORT_SECONDS, shield=True):
                try:
                    message = await status() if status is not None else None
                    await progress(round(anyio.current_time() - began, 1), total, message)
                except Exception as exc:  # progress is a courtesy: never the reason a call fails
                    logger.debug("could not report progress: %s", exc)

    # The outcome is carried out of the task group by hand: an exception raised in its body would
    # come out wrapped in an ExceptionGroup, and callers catch the work's own errors.
    error: Exception | None = None
    async with anyio.create_task_group() as tg:
        tg.start_soon(tick)
        try:
            result = await work
        except Exception as exc:
            error = exc
        finally:
            tg.cancel_scope.cancel()
    if error is not None:
        raise error
    return result

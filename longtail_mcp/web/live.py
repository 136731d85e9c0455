"""Server-sent event streams (/events, the inbox's /live, a run page's /live/run): one shape for all three.

Each stream starts with a `ready` event (subscribed: later events will arrive), then sends the events its
audience may see (`humans.runs.EventAudience`). When the subscriber's key or session ends while the stream
is open, it sends one `ended` event with the reason and closes: a signed-out browser tab or a revoked key
stops receiving events within a second, not at its next reconnection.
"""

import json
from collections.abc import AsyncIterator

from sse_starlette import EventSourceResponse

from longtail_mcp.app.client import Client
from longtail_mcp.errors import Unauthenticated
from longtail_mcp.humans.runs import EventAudience

PING_SECONDS = 15


def event_stream(client: Client, audience: EventAudience, types: list[str] | None, workflow_id: str | None = None,
                 *, headers: dict[str, str] | None = None) -> EventSourceResponse:
    """The SSE response of the events matching `types` (and `workflow_id`) that `audience` may see."""

    async def stream() -> AsyncIterator[dict[str, str]]:
        async with client.events.subscribe(types, workflow_id) as feed:
            yield {"event": "ready", "data": "{}"}
            async for event in feed:
                try:
                    if not await audience.sees(event):
                        continue
                except Unauthenticated as exc:
                    yield {"event": "ended", "data": json.dumps({"error": exc.message})}
                    return
                yield {"event": event.type, "data": event.to_json()}

    return EventSourceResponse(stream(), ping=PING_SECONDS, headers=headers)

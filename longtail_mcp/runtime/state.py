"""Entity state operations (`ctx.state`): each one atomic in SQL and journaled for replay."""

from collections.abc import Coroutine, Sequence
from typing import Any

from longtail_mcp.db.pool import Conn
from longtail_mcp.db.queries import load
from longtail_mcp.errors import InvalidInput
from longtail_mcp.runtime.codec import dumps, roundtrip
from longtail_mcp.runtime.replay import ReplayCursor

Q = load("runtime")
Path = str | list[str | int] | None
_MISSING = object()


def split_path(path: str | Sequence[str | int] | None) -> list[str]:
    """"a.b.0" or ["a", "b", 0] -> ["a", "b", "0"]; None or "" is the whole document."""
    if path is None or path == "":
        return []
    parts = path.split(".") if isinstance(path, str) else [str(p) for p in path]
    if any(p == "" for p in parts):
        raise InvalidInput(f"state path {path!r} has an empty element")
    return parts


class State:
    """The entity state of a run (a JSON object), shared with its hooks.

    Every operation is one UPDATE (no read-modify-write race between concurrent hooks) and
    returns the value now at the path; replay returns the recorded value instead of re-applying.
    """

    def __init__(self, ctx: "StateOps") -> None:
        self._ctx = ctx

    def _op(self, op: str, path: Path, value: Any = None) -> Coroutine[Any, Any, Any]:
        return self._ctx.state_op(self._ctx.next_seq(), op, split_path(path), value)

    def get(self, path: Path = None) -> Coroutine[Any, Any, Any]:
        """The whole state, or the value at `path` (None when absent)."""
        return self._op("get", path)

    def set(self, path: Path, value: Any) -> Coroutine[Any, Any, Any]:
        """Set the value at `path`, creating missing objects on the way."""
        return self._op("set", path, value)

    def merge(self, value: dict[str, Any], path: Path = None) -> Coroutine[Any, Any, Any]:
        """Deep-merge an object into the state (or into the object at `path`)."""
        if not isinstance(value, dict):
            raise InvalidInput("merge takes an object")
        return self._op("merge", path, value)

    def append(self, path: Path, value: Any) -> Coroutine[Any, Any, Any]:
        """Add to the end of the array at `path` (created if absent)."""
        return self._op("append", path, value)

    def prepend(self, path: Path, value: Any) -> Coroutine[Any, Any, Any]:
        """Add to the front of the array at `path` (created if absent)."""
        return self._op("prepend", path, value)

    def remove(self, path: Path, *, index: int | None = None, value: Any = _MISSING) -> Coroutine[Any, Any, Any]:
        """Remove from the array at `path` the element at `index`, or every element equal to `value`."""
        if (index is None) == (value is _MISSING):
            raise InvalidInput("remove takes exactly one of index= or value=")
        if index is not None:
            return self._op("remove_index", path, index)
        return self._op("remove_value", path, value)

    def increment(self, path: Path, by: int | float = 1) -> Coroutine[Any, Any, Any]:
        """Add `by` to the number at `path` (absent counts as 0); returns the new number."""
        if isinstance(by, bool) or not isinstance(by, int | float):
            raise InvalidInput("increment takes a number")
        return self._op("increment", path, by)

    def toggle(self, path: Path) -> Coroutine[Any, Any, Any]:
        """Flip the boolean at `path` (absent counts as false); returns the new value."""
        return self._op("toggle", path)

    def set_if_not_exists(self, path: Path, value: Any) -> Coroutine[Any, Any, Any]:
        """Set `path` only if nothing is there; returns what is there afterwards."""
        return self._op("set_if_not_exists", path, value)

    def delete(self, path: Path) -> Coroutine[Any, Any, Any]:
        """Remove the key (or array element) at `path`; an empty path clears the state."""
        return self._op("delete", path)


class StateOps(ReplayCursor):
    """The journaled entity-state operation behind `ctx.state` (and its hooks')."""

    async def state_op(self, seq: int, op: str, path: list[str], value: Any) -> Any:
        rec = self.recorded(seq, "state", op)
        if rec is not None:
            if rec.status == "failed":
                raise InvalidInput((rec.error or {}).get("message", f"state {op} failed"))
            return rec.output
        call_input = {"path": path, "value": roundtrip(value, what="the state value")}

        async def apply(conn: Conn, _wake_seq: int) -> Any:
            if op == "get":
                row = await (await conn.execute(Q["get_state"], {"id": self.entity_id, "path": path})).fetchone()
            else:
                row = await (await conn.execute(Q["apply_state"], {
                    "id": self.entity_id, "op": op, "path": path, "value": dumps(call_input["value"]),
                })).fetchone()
            out = None if row is None else row["value"]
            await self.record_on(conn, seq, "state", op, "completed", input=call_input, output=out)
            return out

        try:
            out = await self.side_transaction(apply)
        except InvalidInput as exc:
            await self.write(seq, "state", op, "failed", input=call_input, error=exc.to_json())
            raise
        self.remember(seq, "state", op, "completed", input=call_input, output=out)
        return out

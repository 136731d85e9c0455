"""Waits: durable sleep, signals, child runs, hooks, and external waits (a person's decision, ...).

A wait that cannot be satisfied yet raises `Suspend`: the run leaves the worker and becomes a row
until its timer is due or something wakes it. External waits are plugged in by the layers above
(`Extensions.waits`): the kernel records them and asks them for the outcome, nothing more.
"""

import time
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any

import anyio

from longtail_mcp.db.pool import Conn
from longtail_mcp.db.queries import load
from longtail_mcp.errors import InvalidInput, NotFound, WaitTimeout, error_to_json
from longtail_mcp.events import Event, emit
from longtail_mcp.runtime.codec import dumps, roundtrip
from longtail_mcp.runtime.ports import ExternalWait
from longtail_mcp.runtime.replay import SHORT_WAIT, ReplayCursor, Suspend, child_failed, recorded_error, seconds

Q = load("runtime")


class Waits(ReplayCursor):
    """The wait operations of a `Context`."""

    principal: Any
    principal_json: dict[str, Any] | None

    def sleep(self, delay: timedelta | float) -> Coroutine[Any, Any, None]:
        """Durable timer: survives restarts; a long sleep releases the worker."""
        return self._sleep(self.next_seq(), seconds(delay) or 0.0)

    async def _sleep(self, seq: int, delay: float) -> None:
        rec = self.recorded(seq, "sleep", "sleep")
        if rec is not None and rec.wake_at is not None:
            until = rec.wake_at
        else:
            until = time.time() + delay
            await self.write(seq, "sleep", "sleep", "completed", input={"seconds": delay}, wake_at=until)
        remaining = until - time.time()
        if remaining <= 0:
            return
        if remaining <= SHORT_WAIT:
            await anyio.sleep(remaining)
            return
        raise Suspend(until, "sleep")

    def wait_for_signal(self, name: str, *, timeout: timedelta | float | None = None) -> Coroutine[Any, Any, Any]:
        """Wait for `app.signal(workflow_id, name, payload)` and return the payload.

        Signals sent before the wait are buffered and consumed oldest first.

        Raises:
            WaitTimeout: no signal arrived within `timeout`.
        """
        return self._wait_for_signal(self.next_seq(), name, seconds(timeout))

    async def _wait_for_signal(self, seq: int, name: str, timeout: float | None) -> Any:  # noqa: ASYNC109 - a journaled deadline
        rec = self.recorded(seq, "signal", name)
        if rec is not None and rec.status == "completed":
            return rec.output
        if rec is not None and rec.status == "failed":
            raise WaitTimeout(f"no signal {name!r} arrived before the deadline")
        deadline = rec.wake_at if rec is not None else (time.time() + timeout if timeout is not None else None)

        async def consume(conn: Conn, _wake_seq: int) -> tuple[bool, Any]:
            got = await (await conn.execute(
                Q["consume_message"], {"id": self.workflow_id, "name": name, "seq": seq}
            )).fetchone()
            if got is None and rec is not None:
                return False, None
            payload = None if got is None else got["payload"]
            await self.record_on(conn, seq, "signal", name, "completed" if got is not None else "waiting",
                                 output=payload, wake_at=deadline)
            return got is not None, payload

        received, payload = await self.side_transaction(consume)
        if received:
            self.remember(seq, "signal", name, "completed", output=payload, wake_at=deadline)
            return payload
        self.remember(seq, "signal", name, "waiting", wake_at=deadline)
        if deadline is not None and time.time() >= deadline:
            error = WaitTimeout(f"no signal {name!r} arrived before the deadline")
            await self.write(seq, "signal", name, "failed", error=error.to_json(), wake_at=deadline)
            raise error
        raise Suspend(deadline, f"signal:{name}")

    def child(self, name: str, input: Any = None, *, workflow_id: str | None = None) -> Coroutine[Any, Any, Any]:
        """Start a child workflow (once) and wait for its result.

        Raises:
            WorkflowFailed: the child failed or was cancelled.
        """
        return self._child(self.next_seq(), name, input, workflow_id)

    async def _child(self, seq: int, name: str, input: Any, workflow_id: str | None) -> Any:
        rec = self.recorded(seq, "child", name)
        if rec is not None and rec.status == "completed":
            return rec.output
        if rec is not None and rec.status == "failed":
            if (rec.error or {}).get("code") == InvalidInput.code:
                raise InvalidInput((rec.error or {}).get("message", "child could not start"))
            raise child_failed(rec.input["workflow_id"], rec.error or {})
        if rec is None:
            child_id = workflow_id or f"{self.workflow_id}/{seq}"
            call_input = {"workflow_id": child_id, "input": roundtrip(input, what="child input")}

            async def start(conn: Conn, _wake_seq: int) -> str | None:
                created = await (await conn.execute(Q["start_workflow"], {
                    "id": child_id, "name": name, "input": dumps(call_input["input"]),
                    "parent_id": self.workflow_id, "parent_seq": seq,
                    "principal": dumps(self.principal_json) if self.principal_json else None,
                })).fetchone()
                if created is None:
                    row = await (await conn.execute(Q["get_workflow"], {"id": child_id})).fetchone()
                    if row is None or row["parent_id"] != self.workflow_id or row["parent_seq"] != seq:
                        return f"cannot start child {name!r} as {child_id!r}: that id belongs to another run"
                else:
                    await emit(conn, self._worker.db, [
                        Event("run.started", workflow_id=child_id, name=name, status="pending")])
                await self.record_on(conn, seq, "child", name, "waiting", input=call_input)
                await self._worker.db.wake(conn)
                return None

            refused = await self.side_transaction(start)
            if refused is not None:
                error = InvalidInput(refused)
                await self.write(seq, "child", name, "failed", input=call_input, error=error.to_json())
                raise error
            self.remember(seq, "child", name, "waiting", input=call_input)
        else:
            child_id = rec.input["workflow_id"]
            call_input = rec.input

        async def read(conn: Conn, _wake_seq: int) -> Any:
            return await (await conn.execute(Q["get_workflow"], {"id": child_id})).fetchone()

        row = await self.side_transaction(read)
        if row is None:
            raise InvalidInput(f"child run {child_id!r} disappeared")
        if row["status"] == "completed":
            await self.write(seq, "child", name, "completed", input=call_input, output=row["result"])
            return row["result"]
        if row["status"] in ("failed", "cancelled"):
            failure: dict[str, Any] = row["error"] or {
                "code": row["status"], "message": f"child {child_id} {row['status']}"}
            await self.write(seq, "child", name, "failed", input=call_input, error=failure)
            raise child_failed(child_id, failure)
        raise Suspend(None, "child")

    def wait_for_hooks(self) -> Coroutine[Any, Any, list[dict[str, Any]]]:
        """Wait until every hook started on this run has ended; returns [{id, name, status, result}]."""
        return self._wait_for_hooks(self.next_seq())

    async def _wait_for_hooks(self, seq: int) -> list[dict[str, Any]]:
        rec = self.recorded(seq, "hooks", "hooks")
        if rec is not None and rec.status == "completed":
            return rec.output  # type: ignore[no-any-return]

        async def read(conn: Conn, _wake_seq: int) -> list[dict[str, Any]]:
            return await (await conn.execute(Q["list_hooks"], {"id": self.workflow_id})).fetchall()

        hooks = await self.side_transaction(read)
        if any(h["status"] in ("pending", "running", "waiting") for h in hooks):
            raise Suspend(None, "hooks")
        out = [{"id": h["id"], "name": h["name"], "status": h["status"], "result": h["result"]} for h in hooks]
        await self.write(seq, "hooks", "hooks", "completed", output=out)
        return out

    # -- external waits ----------------------------------------------------------------------------

    def escalate(
        self, role: str, message: str, data: dict[str, Any] | None = None, *,
        form_schema: dict[str, Any] | None = None, priority: int = 3, timeout: timedelta | float | None = None,
        assigned_to: str | None = None, type: str = "review", metadata: dict[str, Any] | None = None,
        action: tuple[str, dict[str, Any]] | None = None, key: str | None = None,
    ) -> Coroutine[Any, Any, dict[str, Any]]:
        """Ask `role` for a decision and wait for it durably; returns the resolution payload.

        The escalation row is written in the same transaction that records the wait (the human queue
        plugs in the `escalation` kind of external wait). `key` names the wait within the run (see
        `call_tool`); its escalation id is then `<workflow id>:<key>`.

        Raises:
            WaitTimeout: the escalation expired (past its deadline and its chain). Never an approval.
            EscalationClosed: it was cancelled.
        """
        request = {"role": role, "message": message, "data": data, "form_schema": form_schema,
                   "priority": priority, "timeout": seconds(timeout), "assigned_to": assigned_to, "type": type,
                   "metadata": metadata, "action": action}
        seq = self.keyed_seq(key) if key is not None else self.next_seq()
        return self._resolution(self.wait_external(seq, "escalation", role, request))

    @staticmethod
    async def _resolution(waiting: Coroutine[Any, Any, tuple[str, Any]]) -> dict[str, Any]:
        return (await waiting)[1]  # type: ignore[no-any-return]

    async def wait_external(self, seq: int, kind: str, name: str, request: dict[str, Any], *,
                            also: Any = None) -> tuple[str, Any]:
        """Open (once) the external wait of `kind` at `seq` and wait for its outcome; returns (its key, the
        value it resolved with). `also(conn, key)`, if given, runs in the transaction that opens it.

        Raises:
            whatever the wait kind reports as failed (e.g. WaitTimeout, EscalationClosed).
        """
        wait: ExternalWait | None = self._worker.extensions.waits.get(kind)
        if wait is None:
            raise InvalidInput(f"this worker has no {kind!r} waits plugged in (build it with LongTail.worker())")
        rec = self.recorded(seq, kind, name)
        recorded_key: str | None = (rec.input or {}).get(wait.key_name) if rec is not None else None
        if rec is not None and rec.status == "completed":
            return str(recorded_key), rec.output
        if rec is not None and rec.status == "failed":
            raise recorded_error(rec.error or {})

        async def open_and_read(conn: Conn, _wake_seq: int) -> tuple[str, Any]:
            opened = recorded_key
            if opened is None:
                opened = await wait.open(conn, workflow_id=self.workflow_id, seq=seq,
                                         label=self.key_of(seq) or str(seq), principal=self.principal,
                                         request=request)
                await self.record_on(conn, seq, kind, name, "waiting", input={wait.key_name: opened})
                if also is not None:
                    await also(conn, opened)
            return opened, await wait.outcome(conn, workflow_id=self.workflow_id, seq=seq, key=opened)

        try:
            key, outcome = await self.side_transaction(open_and_read)
        except (InvalidInput, NotFound) as exc:  # refused as asked (bad request, unknown role): for good
            await self.write(seq, kind, name, "failed", error=exc.to_json())
            raise
        ref = {wait.key_name: key}
        if outcome.status == "resolved":
            await self.write(seq, kind, name, "completed", input=ref, output=outcome.value)
            return key, outcome.value
        if outcome.status == "failed":
            error = outcome.error or InvalidInput(f"{kind} {key} failed")
            await self.write(seq, kind, name, "failed", input=ref, error=error_to_json(error))
            raise error
        self.remember(seq, kind, name, "waiting", input=ref)
        raise Suspend(None, f"{kind}:{key}")

"""The LongtailError family: what can go wrong, with messages safe to show a client."""

from typing import Any


class LongtailError(Exception):
    """Base of every error this package raises on purpose."""

    code = "internal"

    def __init__(self, message: str, *, data: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "type": type(self).__name__, "message": self.message, "data": self.data}

    @classmethod
    def from_json(cls, error: dict[str, Any]) -> "LongtailError":
        """The error again from its stored form (see `to_json`)."""
        return cls(str(error.get("message", "")), data=error.get("data"))


class NotFound(LongtailError):
    """The named run, step or object does not exist."""

    code = "not_found"


class Conflict(LongtailError):
    """Someone else changed the object first (a lost race, a duplicate)."""

    code = "conflict"


class EscalationClosed(Conflict):
    """The escalation a run waited on was cancelled; there is no decision to act on."""


class InvalidInput(LongtailError):
    """The caller's arguments are wrong; nothing was changed."""

    code = "invalid_input"


class Unauthenticated(LongtailError):
    """No valid credentials (missing, unknown, expired or revoked API key)."""

    code = "unauthenticated"


class Forbidden(LongtailError):
    """The principal is known but may not do this (role membership or key scope)."""

    code = "forbidden"


class PolicyDenied(Forbidden):
    """A safety policy refused the call (a path outside the files root or on the deny list, an
    internal address, a write statement). `rule` names the policy; an approver can allow the exact
    call once (see docs/security.md)."""

    code = "denied"

    def __init__(self, message: str, *, rule: str, data: Any = None) -> None:
        super().__init__(message, data=data)
        self.rule = rule

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "rule": self.rule}

    @classmethod
    def from_json(cls, error: dict[str, Any]) -> "LongtailError":
        return cls(str(error.get("message", "")), rule=str(error.get("rule", "")), data=error.get("data"))


class Unavailable(LongtailError):
    """The database or another dependency cannot be reached right now."""

    code = "unavailable"


class ConfigurationError(LongtailError):
    """The process cannot start as configured (data dir locked, port taken, ...)."""

    code = "configuration"


class NonRetryableError(LongtailError):
    """Raise from a step to fail it at once, without further attempts."""

    code = "non_retryable"


class StepFailed(LongtailError):
    """A step used up its attempts (or failed non-retryably); raised inside the workflow."""

    code = "step_failed"

    def __init__(self, message: str, *, step: str, error: dict[str, Any], retryable: bool = False) -> None:
        super().__init__(message, data={"step": step, "error": error})
        self.step = step
        self.error = error
        self.retryable = retryable

    @classmethod
    def from_json(cls, error: dict[str, Any]) -> "LongtailError":
        data = error.get("data") or {}
        return cls(str(error.get("message", "")), step=str(data.get("step", "")), error=data.get("error") or {},
                   retryable=bool(error.get("retryable")))


class NonDeterminism(LongtailError):
    """Replay found the workflow asking for a different step than its journal recorded."""

    code = "nondeterminism"


class WaitTimeout(LongtailError, TimeoutError):
    """A durable wait (signal, child, human) ran out of time. Never a success value."""

    code = "timeout"


class WorkflowFailed(LongtailError):
    """The awaited run ended failed or cancelled; `error` holds its stored error."""

    code = "workflow_failed"

    def __init__(self, message: str, *, workflow_id: str, status: str, error: dict[str, Any] | None) -> None:
        super().__init__(message, data={"workflow_id": workflow_id, "status": status, "error": error})
        self.workflow_id = workflow_id
        self.status = status
        self.error = error

    @classmethod
    def from_json(cls, error: dict[str, Any]) -> "LongtailError":
        data = error.get("data") or {}
        return cls(str(error.get("message", "")), workflow_id=str(data.get("workflow_id", "")),
                   status=str(data.get("status", "failed")), error=data.get("error"))


def error_to_json(exc: BaseException) -> dict[str, Any]:
    """Stored form of any exception: jsonb `{code, type, message, retryable, data}`, never a pickle."""
    if isinstance(exc, LongtailError):
        out = exc.to_json()
    else:
        out = {"code": "error", "type": type(exc).__name__, "message": str(exc) or type(exc).__name__, "data": None}
    out.setdefault("retryable", not isinstance(exc, NonRetryableError))
    return out


def _classes(base: type[LongtailError]) -> list[type[LongtailError]]:
    found = [base]
    for sub in base.__subclasses__():
        found += _classes(sub)
    return found


def error_from_json(error: dict[str, Any]) -> LongtailError:
    """A stored error (`error_to_json`) as an exception again: its own class when it is one of ours
    (by type name, else by code), else a plain LongtailError with its message."""
    classes = _classes(LongtailError)
    by_type = {c.__name__: c for c in classes}
    by_code = {c.code: c for c in reversed(classes)}  # the most general class of a code wins
    cls = by_type.get(str(error.get("type"))) or by_code.get(str(error.get("code"))) or LongtailError
    return cls.from_json(error)

"""The one loop behind every long tool's progress reports (no database, no MCP)."""

import anyio
import pytest

from longtail_mcp.errors import InvalidInput
from longtail_mcp.tools.progress import reporting
from longtail_mcp.tools.spec import Progress, no_progress
from tests.runtime.helpers import until

pytestmark = pytest.mark.anyio
Reports = list[tuple[float, float | None, str | None]]


def recorder(reports: Reports) -> Progress:
    async def progress(progress: float, total: float | None, message: str | None) -> None:
        reports.append((progress, total, message))

    return progress


async def test_a_call_that_ends_within_the_interval_reports_nothing() -> None:
    reports: Reports = []

    async def quick() -> int:
        return 7

    assert await reporting(recorder(reports), quick(), total=10, every=0.5) == 7
    assert reports == []


async def test_reports_come_every_interval_with_the_elapsed_time_and_the_status() -> None:
    reports: Reports = []

    async def status() -> str:
        return f"report {len(reports) + 1}"

    await reporting(recorder(reports), anyio.sleep(0.6), total=3, status=status, every=0.1)
    assert len(reports) >= 3
    assert [message for _, _, message in reports] == [f"report {n}" for n in range(1, len(reports) + 1)]
    assert all(total == 3 for _, total, _ in reports)
    elapsed = [p for p, _, _ in reports]
    assert elapsed[0] >= 0.1 and elapsed == sorted(set(elapsed)), "seconds elapsed, growing"


async def test_the_work_s_own_error_comes_out_as_it_is_not_in_a_group() -> None:
    async def refused() -> None:
        await anyio.sleep(0.15)
        raise InvalidInput("no")

    with pytest.raises(InvalidInput, match="no"):
        await reporting(recorder([]), refused(), every=0.05)
    with pytest.raises(InvalidInput, match="no"):
        await reporting(no_progress, refused(), every=0.05)


async def test_a_report_that_fails_is_skipped_and_the_work_goes_on() -> None:
    reports: Reports = []

    async def broken() -> str:
        if not reports:
            reports.append((0, None, "first status failed"))
            raise RuntimeError("the status could not be read")
        return "fine"

    async def slow() -> str:
        await until(lambda: len(reports) >= 2, every=0.01)  # the work lasts until a report came after the failure
        return "done"

    assert await reporting(recorder(reports), slow(), status=broken, every=0.1) == "done"
    assert [message for _, _, message in reports] == ["first status failed", "fine"]

"""The public API is the list in longtail_mcp.__all__: pinned here, so adding or removing a name is deliberate."""

import longtail_mcp

PUBLIC = {
    # the app and the client
    "LongTail", "Client", "Settings", "load_settings",
    # writing workflows
    "Context", "Handle", "StepInfo", "current_step", "Escalation",
    # typed results
    "Record", "Run", "RunInfo", "RunSummary", "RunExport", "RunStatus", "Step", "Schedule",
    "EscalationRecord", "EscalationStats", "EscalationStatus", "Event",
    # acting as someone
    "Principal", "HumanQueue", "Runs",
    # the errors a caller may meet
    "LongtailError", "NotFound", "Conflict", "InvalidInput", "Unauthenticated", "Forbidden", "PolicyDenied",
    "Unavailable", "ConfigurationError", "NonRetryableError", "StepFailed", "NonDeterminism", "WaitTimeout",
    "WorkflowFailed", "EscalationClosed",
}


def test_all_lists_exactly_the_public_names() -> None:
    assert set(longtail_mcp.__all__) == PUBLIC
    assert len(longtail_mcp.__all__) == len(PUBLIC), "no name twice"


def test_every_public_name_resolves_and_errors_share_one_base() -> None:
    for name in longtail_mcp.__all__:
        assert getattr(longtail_mcp, name) is not None, name
    errors = [getattr(longtail_mcp, n) for n in PUBLIC if n.endswith(("Error", "Failed", "Closed")) or n in {
        "NotFound", "Conflict", "InvalidInput", "Unauthenticated", "Forbidden", "PolicyDenied", "Unavailable",
        "NonDeterminism", "WaitTimeout"}]
    assert all(issubclass(e, longtail_mcp.LongtailError) for e in errors)


def test_importing_the_package_does_not_load_the_mcp_stack() -> None:
    import subprocess
    import sys

    loaded = subprocess.run([sys.executable, "-c", "import sys, longtail_mcp; print('mcp' in sys.modules)"],
                            capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "False", "a program that only starts runs should not pay for the MCP stack"

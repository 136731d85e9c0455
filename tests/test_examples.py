"""The shipped examples run as users run them: `python examples/<name>.py`."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_example(name: str, dsn: str) -> subprocess.CompletedProcess[str]:
    """Run an example against the test database (so it starts no Postgres of its own)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LONGTAIL_")}
    env["DATABASE_URL"] = dsn
    env["PYTHONPATH"] = str(ROOT)  # this checkout's package, whatever is installed
    return subprocess.run(
        [sys.executable, str(ROOT / "examples" / name)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )


def test_orders_example_ships_the_order_charging_once_after_one_retry(dsn: str) -> None:
    done = run_example("orders.py", dsn)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    results = [line.removeprefix("result: ") for line in lines if line.startswith("result: ")]
    assert len(results) == 1, done.stdout
    result = json.loads(results[0])
    assert result["order_id"] == "A-1001"
    assert result["status"] == "shipped"
    assert result["tracking"] == "1Z999AA10123456784"
    assert result["reserved"] == 3
    assert result["total_cents"] == 2 * 1299 + 1900 + 599
    assert result["charge"] == {"charge_id": "ch_1", "cents": 5097, "attempt": 2}
    assert result["invoice"] == {"number": "INV-A-1001", "lines": 2, "total_cents": 5097}
    assert "created=False" in lines[0], "a second start with the same workflow id returns the first run"
    assert "gateway calls: 2 " in done.stdout, "one failed attempt, one success, nothing re-run by replays"
    journal = [line.split()[1:4] for line in lines if line.startswith("  ") and line.split()[0].isdigit()]
    assert journal == [
        ["now", "now", "completed"],
        ["step", "reserve_stock", "completed"],
        ["step", "quote_shipping", "completed"],
        ["step", "charge_card", "completed"],
        ["child", "invoice", "completed"],
        ["sleep", "sleep", "completed"],
        ["signal", "shipped", "completed"],
    ]


def test_inventory_example_counts_every_concurrent_reservation(dsn: str) -> None:
    done = run_example("inventory.py", dsn)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "hooks saw stock go 99 -> 80" in out, out
    assert "report: {'open_warehouses': 1, 'stock': 80}" in out
    assert "stock: 80" in out and "reservations: 20" in out and "open: False" in out
    assert "hook completions seen as events: 20" in out


def test_content_review_example_reviewer_approves_one_post_and_the_deadline_moves_the_other_to_admin(dsn: str) -> None:
    done = run_example("content_review.py", dsn)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    lines = out.splitlines()
    results = {
        line.split()[1].rstrip(":"): json.loads(line.split(": ", 1)[1]) for line in lines if line.startswith("result ")
    }
    assert results == {
        "post-1": {"post": "post-1", "status": "published", "url": "https://blog.example/posts/post-1",
                   "notes": "good read"},
        "post-2": {"post": "post-2", "status": "rejected", "notes": "spam"},
    }, out
    assert "rita's queue (priority, then age): [('post-2', 2), ('post-1', 3)]" in out, "more urgent first"
    assert ("bad payload rejected: the resolution does not match the form: approved: 'yes' is not of type "
            "'boolean'") in out
    assert "  still pending, claimed by rita" in out, "a rejected payload changes nothing"
    assert any(line.startswith("deadline: ") and "moved reviewer -> admin (stage 1)" in line for line in lines), out
    assert "  rita can no longer see it: no escalation " in out
    assert "  alex's queue has it: True" in out
    assert "outcome post-1: published by rita at role reviewer (stage 0; certified task completed)" in out
    assert "outcome post-2: rejected by alex at role admin (stage 1; certified task completed)" in out
    history = [line.split(None, 3)[1:] for line in lines if line.startswith("  ") and " escalation." in line]
    assert history == [
        ["escalation.create", "cms", "-> reviewer"],
        ["escalation.escalate", "system", "reviewer -> admin (deadline)"],
        ["escalation.claim", "alex", "at admin"],
        ["escalation.resolve", "alex", "at admin (spam words)"],
    ], out


def test_guarded_tools_example_writes_the_denied_file_once_after_approval(dsn: str) -> None:
    done = run_example("guarded_tools.py", dsn)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "approval asked: files/write_file '.env' (rule denied_path)" in out, out
    assert ".env now holds: TOKEN=s3cr3t" in out
    assert "approver declined: no ticket" in out
    assert ".env still holds: TOKEN=s3cr3t" in out
    assert ("('tool', 'files/write_file', 'failed'), ('escalation', 'approver', 'completed'), "
            "('tool', 'files/write_file', 'completed')") in out


def test_pipelines_example_compiles_a_run_and_calls_the_pipeline_as_a_tool(dsn: str) -> None:
    done = run_example("pipelines.py", dsn)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert 'the run: {"first": "# alpha\\n", "index": "ideas/INDEX.txt", "lines": 3}' in out, out
    assert "files/read_file at seq 2, 3, 4: left out length, offset, encoding (equal to the tool's defaults)" in out
    assert "for_each: '{{ steps.list_files.entries }}'" in out, out
    assert "verified: True []" in out, out
    assert "index_notes is active, serving version 1" in out
    assert 'the tool: {"first": "# bread\\n", "index": "recipes/INDEX.txt", "lines": 4}' in out, out
    assert "index written: notes in recipes" in out


def test_agents_example_runs_the_agent_once_then_the_compiled_pipeline_with_no_model_call(dsn: str) -> None:
    done = run_example("agents.py", dsn)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "first: path=agent llm_calls=4 status=completed" in out, out
    assert "compiled: save_report_open_escalations_role v1 active (verified: True)" in out, out
    assert "second: path=template llm_calls=0 status=completed" in out, out
    assert "answer: Saved the open escalations of role approver to reports/approver.json." in out
    assert "reports/reviewer.json: ['check invoice 7']" in out and "reports/approver.json: ['pay invoice 7']" in out


def test_json_api_example_a_backend_starts_a_run_a_person_decides_over_http_and_the_backend_gets_the_result(
        dsn: str) -> None:
    done = run_example("json_api.py", dsn)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "shop: POST /runs -> 201, Location: /api/v1/runs/refund-o-" in out, out
    assert "shop: waited 1 s -> done=False status=waiting waiting_for=escalation" in out
    assert "bea: her work: 'Refund 42.50 EUR on order o-" in out
    assert ("bea: a decision the form rejects -> 400 [{'field': 'resolution.approved', 'message': \"'yes' is not "
            "of type 'boolean'\"}]") in out
    assert "shop: done=True result={'note': 'damaged in transit', 'order': 'o-" in out and "'refunded': True}" in out
    assert [line.strip() for line in out.splitlines() if line.startswith("  escalation.")] == [
        "escalation.create by shop", "escalation.reroute by bea: a support matter",
        "escalation.cancel by sol: asked on the phone"]
    assert "Traceback" not in done.stderr

"""The identity, escalation and audit commands, as an operator runs them."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from longtail_mcp import LongTail
from tests.conftest import running
from tests.runtime.helpers import wait_status

ROOT = Path(__file__).resolve().parent.parent


def cli(dsn: str, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LONGTAIL_")}
    env["DATABASE_URL"] = dsn
    done = subprocess.run([sys.executable, "-m", "longtail_mcp", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    if ok:
        assert done.returncode == 0, f"{args}: {done.stderr}"
    return done


def test_operator_sets_up_people_roles_keys_forms_and_chains(dsn: str, tmp_path: Path) -> None:
    cli(dsn, "users", "create", "rita", "--name", "Rita")
    cli(dsn, "users", "create", "bot-1", "--kind", "bot")
    cli(dsn, "roles", "create", "reviewer")
    cli(dsn, "roles", "create", "lead")
    cli(dsn, "roles", "add-member", "reviewer", "rita", "--type", "admin")
    form = tmp_path / "form.json"
    form.write_text(json.dumps({"type": "object", "required": ["approved"],
                                "properties": {"approved": {"type": "boolean"}}}))
    assert "form version 1" in cli(dsn, "roles", "set-form", "reviewer", str(form)).stdout
    cli(dsn, "roles", "set-chain", "reviewer", "--stage-seconds", "3600", "--next", "lead")
    roles = {r["name"]: r for r in json.loads(cli(dsn, "roles", "list", "--json").stdout)}
    assert roles["reviewer"]["next_role"] == "lead" and roles["reviewer"]["form_version"] == 1
    users = {u["id"]: u for u in json.loads(cli(dsn, "users", "list", "--json").stdout)}
    assert users["rita"]["roles"] == {"reviewer": "admin"} and users["bot-1"]["kind"] == "bot"

    created = json.loads(cli(dsn, "keys", "create", "rita", "--scope", "read", "--json").stdout)
    assert created["key"].startswith("ltk_") and created["scope"] == "read"
    listed = json.loads(cli(dsn, "keys", "list", "--json").stdout)
    assert [k["id"] for k in listed] == [created["id"]] and "key" not in listed[0], "secrets are never listed"
    cli(dsn, "keys", "revoke", created["id"])
    again = cli(dsn, "keys", "revoke", created["id"], ok=False)
    assert again.returncode != 0 and "no active key" in again.stderr and "Traceback" not in again.stderr

    denied = cli(dsn, "roles", "create", "sneaky", "--as", "rita", ok=False)
    assert denied.returncode != 0 and "only a superadmin" in denied.stderr

    lines = cli(dsn, "audit", "export").stdout.splitlines()
    actions = [json.loads(line)["action"] for line in lines]
    assert actions[:2] == ["account.create", "account.create"] and "key.revoke" in actions


@pytest.mark.anyio
async def test_a_reviewer_works_the_queue_from_the_command_line(app: LongTail, dsn: str) -> None:
    @app.workflow()
    async def publish(ctx, post):
        decision = await ctx.escalate("reviewer", f"publish {post}?", {"post": post}, priority=2)
        return "published" if decision["approved"] else "rejected"

    cli(dsn, "users", "create", "rita")
    cli(dsn, "roles", "create", "reviewer")
    cli(dsn, "roles", "add-member", "reviewer", "rita")
    async with running(app):
        handle = await app.start("publish", "p-1")
        await wait_status(handle, "waiting")
        (item,) = json.loads(cli(dsn, "escalations", "list", "--available", "--as", "rita", "--json").stdout)
        assert item["message"] == "publish p-1?" and item["priority"] == 2
        assert "claimed" in cli(dsn, "escalations", "claim", item["id"], "--as", "rita").stdout
        mine = json.loads(cli(dsn, "escalations", "list", "--mine", "--as", "rita", "--json").stdout)
        assert [m["id"] for m in mine] == [item["id"]]
        bad = cli(dsn, "escalations", "resolve", item["id"], "--data", "not json", "--as", "rita", ok=False)
        assert bad.returncode != 0 and "not JSON" in bad.stderr
        cli(dsn, "escalations", "resolve", item["id"], "--data", '{"approved": true}', "--as", "rita")
        assert await handle.result(timeout=10) == "published"
    shown = json.loads(cli(dsn, "escalations", "show", item["id"]).stdout)
    assert shown["status"] == "resolved" and shown["resolved_by"] == "rita"
    stats = json.loads(cli(dsn, "escalations", "stats").stdout)
    assert stats["by_status"] == {"resolved": 1} and stats["resolved_1h"] == 1


def _serve_once(dsn: str, extra_env: dict[str, str] | None = None) -> list[str]:
    """Start `serve`, wait for its ready line, stop it with SIGINT; return all it printed."""
    import signal

    env = {k: v for k, v in os.environ.items() if not k.startswith("LONGTAIL_")}
    env.update(DATABASE_URL=dsn, **(extra_env or {}))
    proc = subprocess.Popen([sys.executable, "-m", "longtail_mcp", "serve", "--port", "0"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert first.startswith("longtail-mcp ready:"), first + (proc.stderr.read() if proc.stderr else "")
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)
    rest = proc.stdout.read()  # read through the same buffer readline() used (communicate() would skip it)
    proc.stdout.close()
    if proc.stderr:
        proc.stderr.close()
    return [first.rstrip("\n"), *rest.splitlines()]


@pytest.mark.anyio
async def test_first_serve_prints_an_admin_key_once_and_it_authenticates(dsn: str) -> None:
    from longtail_mcp.humans.identity import authenticate

    out = _serve_once(dsn)
    keys = [line.rsplit(" ", 1)[1] for line in out if line.startswith("first admin API key")]
    assert len(keys) == 1, out
    assert keys[0].startswith("ltk_")
    assert not [line for line in _serve_once(dsn) if "admin API key" in line], "shown once, never again"
    async with LongTail(dsn) as app:
        admin = await authenticate(app.db, keys[0])
    assert admin.id == "admin" and admin.superadmin and admin.scope == "full"


@pytest.mark.anyio
async def test_serve_registers_the_admin_key_given_in_the_environment(dsn: str) -> None:
    from longtail_mcp.humans.identity import authenticate

    token = "ltk_fixed01_" + "s" * 32
    out = _serve_once(dsn, {"LONGTAIL_ADMIN_KEY": token})
    assert not [line for line in out if token in line], "a key from the environment is never printed"
    async with LongTail(dsn) as app:
        assert (await authenticate(app.db, token)).id == "admin"


def test_cli_conventions_version_json_full_ids_and_exit_codes_by_error_family(dsn: str, tmp_path: Path) -> None:
    version = cli(dsn, "--version")
    assert version.stdout.startswith("longtail-mcp ") and version.stdout.split()[1][0].isdigit()

    created = json.loads(cli(dsn, "roles", "create", "desk", "--json").stdout)
    assert created["name"] == "desk"
    cli(dsn, "users", "create", "rita")
    member = json.loads(cli(dsn, "roles", "add-member", "desk", "rita", "--json").stdout)
    assert member == {"role": "desk", "account": "rita", "type": "member"}
    key = json.loads(cli(dsn, "keys", "create", "rita", "--json").stdout)
    assert json.loads(cli(dsn, "keys", "revoke", key["id"], "--json").stdout) == {"id": key["id"], "revoked": True}

    opened = subprocess.run(
        [sys.executable, "-c", "import anyio\nfrom longtail_mcp import LongTail\nfrom longtail_mcp.humans import "
         "escalations\nfrom longtail_mcp.humans.identity import SYSTEM\nasync def main():\n    async with "
         "LongTail() as app:\n        row = await escalations.create_escalation(app.db, SYSTEM, role='desk', "
         "message='check')\n        print(row.id)\nanyio.run(main)"],
        cwd=ROOT, env={**{k: v for k, v in os.environ.items() if not k.startswith("LONGTAIL_")}, "DATABASE_URL": dsn},
        capture_output=True, text=True, timeout=60, check=True).stdout.strip()
    listed = cli(dsn, "escalations", "list").stdout
    assert opened in listed.split(), "an id copied from the list can be pasted into claim"
    claimed = json.loads(cli(dsn, "escalations", "claim", opened, "--json").stdout)
    assert claimed["assigned_to"] == "system" and claimed["id"] == opened

    missing = cli(dsn, "escalations", "resolve", opened, "--data", f"@{tmp_path}/missing.json", ok=False)
    assert missing.returncode == 3 and missing.stderr.strip().startswith("longtail-mcp: cannot read --data @")
    assert "Traceback" not in missing.stderr and len(missing.stderr.strip().splitlines()) == 1
    assert cli(dsn, "runs", "show", "nope", ok=False).returncode == 4
    assert cli(dsn, "roles", "create", "desk", ok=False).returncode == 5
    cli(dsn, "users", "create", "vic")
    assert cli(dsn, "roles", "create", "x", "--as", "vic", ok=False).returncode == 6
    assert cli(dsn, "runs", "bogus", ok=False).returncode == 2

    alone = cli(dsn, "runs")
    assert alone.stdout.splitlines()[0].split() == ["ID", "NAME", "STATUS", "CREATED_AT"]

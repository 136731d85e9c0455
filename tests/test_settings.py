"""Settings by the book: one pydantic-settings model; keyword arguments over the environment over
longtail.yaml over the defaults; secrets never shown; bad values named with their variables; and the
README's table generated from the model."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from longtail_mcp.config import Settings, SettingsInvalid, load_settings, settings_table

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in [n for n in list(os.environ) if n.startswith("LONGTAIL_")]:
        monkeypatch.delenv(name)
    for name in ("DATABASE_URL", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no ./longtail.yaml unless a test writes one


def test_keywords_win_over_the_environment_which_wins_over_the_yaml_file_over_the_defaults(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "longtail.yaml").write_text("pg_port: 5001\nlease_seconds: 7\nhttp_allow: [wiki.internal]\n"
                                            "schema_name: from_yaml\n")
    assert (load_settings().pg_port, load_settings().lease_seconds) == (5001, 7.0), "./longtail.yaml is read"
    assert load_settings().http_allow == ["wiki.internal"] and load_settings().schema_name == "from_yaml"
    monkeypatch.setenv("LONGTAIL_PG_PORT", "5002")
    monkeypatch.setenv("LONGTAIL_HTTP_ALLOW", "a.internal, 10.0.0.0/8")
    monkeypatch.setenv("LONGTAIL_SCHEMA", "from_env")
    monkeypatch.setenv("LONGTAIL_LEASE_SECONDS", "")  # empty: unset
    settings = load_settings()
    assert (settings.pg_port, settings.lease_seconds, settings.schema_name) == (5002, 7.0, "from_env")
    assert settings.http_allow == ["a.internal", "10.0.0.0/8"], "a comma-separated variable is a list"
    assert load_settings(pg_port=5003, schema_name="kw").pg_port == 5003
    assert load_settings(pg_port=None).pg_port == 5002, "None means not given"
    assert Settings().concurrency == 200


def test_a_named_config_file_is_read_and_a_missing_one_is_an_error(monkeypatch: pytest.MonkeyPatch,
                                                                     tmp_path: Path) -> None:
    named = tmp_path / "elsewhere" / "prod.yaml"
    named.parent.mkdir()
    named.write_text("files_read_only: true\nfiles_deny: ['*.secret']\n")
    monkeypatch.setenv("LONGTAIL_CONFIG", str(named))
    settings = load_settings()
    assert settings.files_read_only is True and settings.files_deny == ["*.secret"]
    monkeypatch.setenv("LONGTAIL_CONFIG", str(tmp_path / "missing.yaml"))
    with pytest.raises(SettingsInvalid, match=r"missing\.yaml: no such file"):
        load_settings()


def test_database_url_aliases_and_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://plain/db")
    assert load_settings().database_url == "postgresql://plain/db"
    monkeypatch.setenv("LONGTAIL_DATABASE_URL", "postgresql://ours/db")
    assert load_settings().database_url == "postgresql://ours/db", "LONGTAIL_DATABASE_URL wins"
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-secret")
    monkeypatch.setenv("LONGTAIL_ADMIN_KEY", "ltk_secret")
    settings = load_settings()
    assert settings.anthropic_api_key is not None and settings.anthropic_api_key.get_secret_value() == "sk-ant-secret"
    shown = f"{settings!r} {settings} {settings.model_dump()}"
    assert "sk-ant-secret" not in shown and "ltk_secret" not in shown


def test_a_bad_value_is_named_with_its_variable_and_the_cli_says_it_in_one_line(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LONGTAIL_PORT", "eighty")
    with pytest.raises(SettingsInvalid, match=r"port \(LONGTAIL_PORT\): Input should be a valid integer"):
        load_settings()
    done = subprocess.run([sys.executable, "-m", "longtail_mcp", "runs", "list"], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60, check=False)
    assert done.returncode == 7 and done.stderr.strip().startswith(
        "longtail-mcp: invalid settings: port (LONGTAIL_PORT)") and "Traceback" not in done.stderr


def test_the_readme_table_is_generated_from_the_model() -> None:
    readme = (ROOT / "README.md").read_text()
    found = re.search(r"<!-- settings:start -->\n(.*?)<!-- settings:end -->", readme, re.DOTALL)
    assert found is not None, "the README marks its settings table"
    assert found.group(1) == settings_table(), "regenerate it: python -m longtail_mcp.config"
    assert all(f"`{field}`" in found.group(1) for field in Settings.model_fields)

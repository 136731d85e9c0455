"""The static checks hold: ruff, mypy (strict) and the import-linter layers, as configured in pyproject.toml.

Each runs as a subprocess of this interpreter from the repository root, so `pytest` fails when one breaks.
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def check(*args: str) -> None:
    """Run `python <args>` in the repository root; fail with the tool's output unless it exits 0."""
    done = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"{' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}"


def test_ruff_is_clean() -> None:
    check("-m", "ruff", "check", "--no-fix", ".")


def test_mypy_is_clean() -> None:
    check("-m", "mypy")  # strict, over the packages listed in [tool.mypy]


def test_the_layers_hold() -> None:
    # import-linter has no `python -m` entry point; this is what its `lint-imports` script runs.
    check("-c", "from importlinter.cli import lint_imports_command; lint_imports_command()")

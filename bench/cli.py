"""Command-line start-up benchmark: how long the verbs that serve nothing take, against bare Python.

    python bench/cli.py [--runs 7] [--json]

Each command runs `--runs` times as a fresh subprocess (`python -m longtail_mcp ...`) in a temp
LONGTAIL_HOME with nothing running (no DATABASE_URL), and the median wall time is printed beside the
baseline measured in the same run: `python -c pass` (the interpreter's own start-up, site included)
and `python -c "import psycopg, pydantic_settings"` (the two libraries every verb needs). The goal
(issue 15) is <= 0.5 s for `--help` and the verbs that serve nothing.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

COMMANDS = [
    ["--help"],
    ["--version"],
    ["config", "claude"],
    ["status"],
    ["db", "status"],
    ["runs"],  # a read-only verb with no database: says none is running
]
BASELINES = {"python -c pass": ["-c", "pass"],
             "import psycopg, pydantic_settings": ["-c", "import psycopg, pydantic_settings"]}


def timed(args: list[str], env: dict[str, str], runs: int) -> float:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        subprocess.run([sys.executable, *args], env=env, capture_output=True, check=False)
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL" and not k.startswith("LONGTAIL_")}
    env["LONGTAIL_HOME"] = tempfile.mkdtemp(prefix="longtail-bench-cli-")
    figures: dict[str, float] = {}
    for name, argv in BASELINES.items():
        figures[name] = timed(argv, env, args.runs)
        print(f"baseline {name:<40} {figures[name]:.3f} s", file=sys.stderr)
    for argv in COMMANDS:
        name = "longtail-mcp " + " ".join(argv)
        figures[name] = timed(["-m", "longtail_mcp", *argv], env, args.runs)
        print(f"         {name:<40} {figures[name]:.3f} s", file=sys.stderr)
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    base = figures["python -c pass"]
    print(f"median of {args.runs} runs; baseline python -c pass {base:.3f} s")
    for name, seconds in figures.items():
        goal = "" if name in BASELINES else ("  ok (<= 0.5 s)" if seconds <= 0.5
                                                                       else "  OVER 0.5 s")
        print(f"{name:<42} {seconds:.3f} s  {seconds / base:4.1f}x python{goal}")


if __name__ == "__main__":
    main()

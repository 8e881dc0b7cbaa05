"""CLI cold start: wall time of leadctl commands on a 100k-lead database, beside `import typer`.

python bench/cli_cold_start.py [--runs 15] [--count 100000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import cpu_reference

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent


def run_once(cmd: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--count", type=int, default=100_000)
    args = parser.parse_args()
    print(cpu_reference())
    data = HERE / "data"
    data.mkdir(exist_ok=True)
    db_file = data / f"cli-{args.count}.db"
    url = f"sqlite:///{db_file}"
    if not db_file.exists():
        subprocess.run(
            [sys.executable, str(HERE / "make_leads.py"), "--db", url, "--count", str(args.count)],
            check=True,
        )
    env = {**os.environ, "LEADS_DATABASE_URL": url}
    leadctl = str(BIN / "leadctl")
    rows = [
        ("python -c 'import typer' (floor)", [sys.executable, "-c", "import typer"]),
        ("leadctl --help", [leadctl, "--help"]),
        ("leadctl list (50 rows, piped)", [leadctl, "list"]),
        ("leadctl list --json", [leadctl, "list", "--json"]),
        ("leadctl show ID", [leadctl, "show", str(args.count // 2)]),
    ]
    print(
        f"{args.count:,} leads, median of {args.runs} runs (min in brackets), {os.cpu_count()} cores;"
        " the commands take turns, so a slow moment of the machine hits them all alike"
    )
    samples: dict[str, list[float]] = {label: [] for label, _ in rows}
    for run in range(args.runs + 1):
        for label, cmd in rows:
            elapsed = run_once(cmd, env)
            if run:  # the first round warms the page cache
                samples[label].append(elapsed)
    floor = statistics.median(samples[rows[0][0]])
    for label, _ in rows:
        median, best = statistics.median(samples[label]), min(samples[label])
        print(f"  {label:<36} {median:7.1f} ms  ({best:6.1f})  {median / floor:4.2f}× floor")


if __name__ == "__main__":
    main()

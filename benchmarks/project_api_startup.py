#!/usr/bin/env python3
"""Start-up and round-trip cost of the Project API and the tvmc CLI.

Measures: `tvmc --help` and `tvmc micro --help` wall time (they must launch no server), a Project API
server's start-up (launch until the first server_info_query reply), and the round trip of one call on a
running server (server_info_query, and write_transport+read_transport of 64 bytes on the loopback test
server). Prints a table; `--json FILE` writes the same figures.

    python benchmarks/project_api_startup.py [--repeat 10] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "project_api"))

from microtvm_api.client import ProjectAPIClient  # noqa: E402

CRT_HOST = REPO / "template_projects" / "crt_host"
ECHO = REPO / "tests" / "project_api" / "servers" / "echo_server.py"


def _time(fn: Callable[[], object], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def _cli(*args: str) -> Callable[[], object]:
    def run() -> object:
        return subprocess.run(
            [sys.executable, "-m", "tvmc_micro.cli.main", *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    return run


def _server_start(path: Path) -> Callable[[], object]:
    def run() -> object:
        with ProjectAPIClient.launch(path, stderr_sink=None) as client:
            return client.server_info_query()

    return run


def measure(repeat: int) -> dict[str, dict[str, float]]:
    figures: dict[str, list[float]] = {
        "tvmc --help": _time(_cli("--help"), repeat),
        "tvmc micro --help": _time(_cli("micro", "--help"), repeat),
        "python -c pass (floor)": _time(
            lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), repeat
        ),
        "crt_host server start-up to first reply": _time(_server_start(CRT_HOST), repeat),
    }
    with ProjectAPIClient.launch(CRT_HOST, stderr_sink=None) as client:
        client.server_info_query()
        figures["round trip: server_info_query"] = _time(lambda: client.server_info_query(), repeat * 20)
    if ECHO.is_file():
        with ProjectAPIClient.launch(ECHO, stderr_sink=None) as client:
            client.open_transport({})
            payload = bytes(range(64))

            def echo() -> object:
                client.write_transport(payload, 1.0)
                return client.read_transport(64, 1.0)

            figures["round trip: write+read_transport 64 B"] = _time(echo, repeat * 20)
    return {
        name: {"median_ms": statistics.median(s) * 1e3, "min_ms": min(s) * 1e3, "n": len(s)}
        for name, s in figures.items()
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=10, help="samples per start-up figure (x20 for calls)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures to FILE as JSON")
    args = parser.parse_args()
    results = measure(args.repeat)
    width = max(map(len, results))
    print(f"{'measurement':{width}}  {'median ms':>9}  {'min ms':>8}  {'n':>4}")
    for name, r in results.items():
        print(f"{name:{width}}  {r['median_ms']:9.2f}  {r['min_ms']:8.2f}  {r['n']:4d}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

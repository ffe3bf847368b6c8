#!/usr/bin/env python3
"""Wall time of the same `tvmc tune` on a board farm of 1 worker and of 2 workers (or --workers N...):
for each count, a fresh TVM RPC tracker (`python -m tvm.exec.rpc_tracker`) on 127.0.0.1 and that many
`tvmc micro rpc-worker cortex_m --project-option board=B` workers (one QEMU each), then
`tvmc tune MODEL --rpc-tracker ... --rpc-key ... -o FRESH --trials N` timed from start to exit. The
tunings are identical (same seed, fresh records): only the number of workers differs. Prints a table;
`--json FILE` writes the figures. Example:
    python benchmarks/tune_farm.py --model ad01_fp32.tflite --trials 6 --json /tmp/farm.json

The workers compile, build and run the candidates (the client sends the model and the configs); on a
machine with few cores shared with other work, the ratio says as much about the load as about the farm.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MODELS_DIR = Path(
    os.environ.get("TVMC_MODELS_DIR", Path(__file__).resolve().parents[2] / "shared" / "models")
)
KEY = "cortex_m.bench"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _spawn(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in reversed(procs):
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for p in procs:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def _registered(port: int) -> int:
    from tvmc_micro.errors import TvmcError
    from tvmc_micro.tune.farm import FarmMeasurer

    try:
        return FarmMeasurer(("127.0.0.1", port), KEY).workers()
    except TvmcError:  # the tracker is not listening yet
        return 0


def run_farm(n: int, model: Path, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    port = _free_port()
    procs = [
        _spawn(
            "-m",
            "tvm.exec.rpc_tracker",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--port-end",
            str(port + 1),
        )
    ]
    try:
        time.sleep(1.5)
        for k in range(n):
            procs.append(
                _spawn(
                    "-m",
                    "tvmc_micro",
                    "micro",
                    "rpc-worker",
                    "cortex_m",
                    "--project-option",
                    f"board={args.board}",
                    "--tracker",
                    f"127.0.0.1:{port}",
                    "--key",
                    KEY,
                    "--port",
                    str(port + 10 + 20 * k),
                    "--port-end",
                    str(port + 29 + 20 * k),
                )
            )
        deadline = time.monotonic() + 120
        while _registered(port) < n:
            if time.monotonic() > deadline:
                raise SystemExit(f"only {_registered(port)} of {n} workers came up at the tracker")
            time.sleep(0.5)
        out = work / f"records-{n}.jsonl"
        started = time.monotonic()
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "tvmc_micro",
                "tune",
                str(model),
                "--target",
                args.target,
                "--rpc-tracker",
                f"127.0.0.1:{port}",
                "--rpc-key",
                KEY,
                "-o",
                str(out),
                "--trials",
                str(args.trials),
                "--seed",
                str(args.seed),
                "-q",
            ],
            capture_output=True,
            text=True,
        )
        seconds = time.monotonic() - started
        if r.returncode != 0:
            raise SystemExit(f"tvmc tune with {n} worker(s) failed:\n{r.stderr[-3000:]}")
        records = [json.loads(x) for x in out.read_text().splitlines() if x.strip()]
        return {
            "workers": n,
            "seconds": round(seconds, 1),
            "records": len(records),
            "by_worker": {
                w: sum(1 for x in records if x["worker"] == w) for w in {x["worker"] for x in records}
            },
        }
    finally:
        _stop(procs)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="ad01_fp32.tflite", help=f"a model file or a name in {MODELS_DIR}")
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts (default 1 2)")
    parser.add_argument("--board", default="mps2_an386")
    parser.add_argument("--target", default="c -mcpu=cortex-m4")
    parser.add_argument("--json", metavar="FILE", help="write the figures as JSON")
    args = parser.parse_args()
    model = Path(args.model) if Path(args.model).is_file() else MODELS_DIR / args.model
    if not model.is_file():
        parser.error(f"model {args.model} not found (neither a file nor in {MODELS_DIR})")
    if args.trials < 1 or any(n < 1 for n in args.workers):
        parser.error("--trials and --workers must be at least 1")
    rows = []
    with tempfile.TemporaryDirectory(prefix="tune-farm-") as tmp:
        for n in args.workers:
            rows.append(run_farm(n, model, args, Path(tmp)))
    base = rows[0]["seconds"]
    print(f"{model.stem}, {args.trials} trials per task, board {args.board}, {os.cpu_count()} cores")
    print(f"{'workers':>8} {'wall s':>9} {'ratio':>7} {'records':>8}  records per worker")
    for row in rows:
        row["ratio"] = round(row["seconds"] / base, 3) if base else None
        per = ", ".join(str(v) for v in sorted(row["by_worker"].values(), reverse=True))
        print(f"{row['workers']:>8} {row['seconds']:>9.1f} {row['ratio']:>7.3f} {row['records']:>8}  {per}")
    if args.json:
        doc = {
            "model": model.stem,
            "trials": args.trials,
            "board": args.board,
            "cpu_count": os.cpu_count(),
            "loadavg_1min_at_end": os.getloadavg()[0],
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
            "runs": rows,
        }
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

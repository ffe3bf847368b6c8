#!/usr/bin/env python3
"""What `tvmc tune` gains: per model, instructions per inference on an emulated Cortex-M board (default
mps2_an386 under QEMU `-icount`, where the device timer counts executed instructions exactly) of the
untuned compile and of the compile with the records that tuning from scratch just wrote.

Per model, all through the real CLI (subprocesses): `tvmc tune MODEL cortex_m --project-option board=B
--target T -o RECORDS --trials N` (a fresh records file: tuning from scratch), then `tvmc compile` without
and with `--tuning-records RECORDS`, and for each MLF `tvmc micro create-project/build/flash` and
`tvmc run --print-time --json` (the inference's instruction count; with `--validate` also the outputs
against the TFLite reference interpreter). Prints a table; `--json FILE` writes
    {"models": {stem: {"untuned_instructions": N, "tuned_instructions": N, "trials": N, ...}}}
Example:
    python benchmarks/tune_gain.py --models vww_96_float.tflite --trials 16 --json /tmp/gain.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

DEFAULT_MODELS = ("hello_world_float.tflite", "ad01_fp32.tflite", "vww_96_float.tflite")
MODELS_DIR = Path(
    os.environ.get("TVMC_MODELS_DIR", Path(__file__).resolve().parents[2] / "shared" / "models")
)


def tvmc(*args: str, timeout: float = 3600) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(
        [sys.executable, "-m", "tvmc_micro", *args], capture_output=True, text=True, timeout=timeout
    )
    if r.returncode != 0:
        raise SystemExit(f"tvmc {' '.join(args)} failed (exit {r.returncode}):\n{r.stderr[-3000:]}")
    return r


def instructions(mlf: Path, work: Path, name: str, board: str, validate: Path | None) -> int:
    """Instructions of one inference of the MLF's firmware on `board` (QEMU icount)."""
    project = work / name
    tvmc("micro", "create-project", str(project), str(mlf), "cortex_m", "--project-option", f"board={board}")
    tvmc("micro", "build", str(project))
    tvmc("micro", "flash", str(project))
    js = work / f"{name}.json"
    args = ["run", "--device", "micro", str(project), "--print-time", "--json", str(js)]
    if validate is not None:
        args += ["--validate", str(validate)]
    tvmc(*args)
    timing = json.loads(js.read_text())["timing"]
    if timing["unit"] != "instructions":
        raise SystemExit(f"{board} did not count instructions (unit {timing['unit']!r}): is it a QEMU board?")
    return round(float(timing["mean"]))


def gain(model: Path, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    records = work / f"{model.stem}.records.jsonl"
    started = time.monotonic()
    tune = [
        "tune",
        str(model),
        "cortex_m",
        "--project-option",
        f"board={args.board}",
        "--target",
        args.target,
        "-o",
        str(records),
        "--trials",
        str(args.trials),
        "--seed",
        str(args.seed),
        "-q",
    ]
    if args.early_stopping is not None:
        tune += ["--early-stopping", str(args.early_stopping)]
    tvmc(*tune)
    tune_seconds = time.monotonic() - started
    plain, tuned = work / f"{model.stem}.plain.tar", work / f"{model.stem}.tuned.tar"
    tvmc("compile", str(model), "--target", args.target, "-o", str(plain))
    tvmc("compile", str(model), "--target", args.target, "-o", str(tuned), "--tuning-records", str(records))
    validate = model if args.validate else None
    untuned_n = instructions(plain, work, f"{model.stem}-plain", args.board, validate)
    tuned_n = instructions(tuned, work, f"{model.stem}-tuned", args.board, validate)
    lines = [json.loads(x) for x in records.read_text().splitlines() if x.strip()]
    best: dict[str, dict[str, Any]] = {}
    for r in lines:
        if r["cost"] is not None and (r["task"] not in best or r["cost"] < best[r["task"]]["cost"]):
            best[r["task"]] = r
    per_task = {}
    base: dict[str, float] = {}
    for r in lines:  # the first record of a task is its hand-set baseline (written before any candidate)
        base.setdefault(r["task"], r["cost"])
    for task, r in best.items():
        per_task[task] = {
            "name": r["task_name"],
            "calls": r["calls"],
            "hand_set": base.get(task),
            "best": r["cost"],
            "config": r["config"],
        }
    return {
        "untuned_instructions": untuned_n,
        "tuned_instructions": tuned_n,
        "trials": args.trials,
        "speedup": round(untuned_n / tuned_n, 4) if tuned_n else None,
        "records": len(lines),
        "tune_seconds": round(tune_seconds, 1),
        "validated": bool(args.validate),
        "tasks": per_task,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--models",
        nargs="+",
        default=list(DEFAULT_MODELS),
        help=f"model files or names in {MODELS_DIR} (default: {' '.join(DEFAULT_MODELS)})",
    )
    parser.add_argument("--trials", type=int, default=8, help="tvmc tune --trials (default 8)")
    parser.add_argument("--early-stopping", type=int, help="tvmc tune --early-stopping")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--board", default="mps2_an386", help="a QEMU board of the cortex_m template")
    parser.add_argument("--target", default="c -mcpu=cortex-m4")
    parser.add_argument(
        "--validate",
        action="store_true",
        help="check both firmwares' outputs against the TFLite reference (needs ai-edge-litert)",
    )
    parser.add_argument("--keep", metavar="DIR", help="keep records, MLFs and projects in DIR")
    parser.add_argument("--json", metavar="FILE", help="write the figures as JSON")
    args = parser.parse_args()
    if args.trials < 1:
        parser.error("--trials must be at least 1")
    models = []
    for m in args.models:
        path = Path(m) if Path(m).is_file() else MODELS_DIR / m
        if not path.is_file():
            parser.error(f"model {m} not found (neither a file nor in {MODELS_DIR})")
        models.append(path)
    if args.keep:
        Path(args.keep).mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    print(f"{'model':<24} {'untuned':>14} {'tuned':>14} {'gain':>8} {'trials':>7} {'tune s':>8}")
    for model in models:
        with tempfile.TemporaryDirectory(prefix="tune-gain-") as tmp:
            work = Path(args.keep) if args.keep else Path(tmp)
            r = gain(model, args, work)
        results[model.stem] = r
        print(
            f"{model.stem:<24} {r['untuned_instructions']:>14,} {r['tuned_instructions']:>14,} "
            f"{r['speedup']:>7.3f}x {r['trials']:>7} {r['tune_seconds']:>8.0f}",
            flush=True,
        )
        for t in r["tasks"].values():
            if t["hand_set"] and t["best"] and t["best"] < t["hand_set"]:
                cfg = ", ".join(f"{k}={v}" for k, v in sorted(t["config"].items()))
                print(f"    {t['name']:<32} {t['hand_set']:>12,.0f} -> {t['best']:>12,.0f}  ({cfg})")
    doc = {
        "board": args.board,
        "target": args.target,
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "models": results,
    }
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

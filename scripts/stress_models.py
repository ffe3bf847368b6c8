#!/usr/bin/env python3
"""Stress the compiler with random but realistic models, the way a user with many third-party models does.

Generate (TFLite generation needs TensorFlow + tf_keras, which the project does not depend on: use a
separate environment, e.g. `python3 -m venv /tmp/tfvenv && /tmp/tfvenv/bin/pip install tensorflow
tf_keras`; ONNX generation needs only onnx and onnxruntime):

    /tmp/tfvenv/bin/python scripts/stress_models.py gen-tflite -n 150 --seed 1 --out /tmp/stress
    python3 scripts/stress_models.py gen-onnx -n 100 --seed 1 --out /tmp/stress

Run (the project's environment): each model is compiled with our compiler in its own worker process,
built against the poisoned-memory host harness (tests/compiler/compiler_harness.py), run on --samples
random inputs in a row (default 4; model state such as an LSTM's carries from one run to the next) and
compared with the reference interpreter (TFLite Micro for .tflite, falling back to LiteRT when TFLite
Micro cannot run the model; onnxruntime for .onnx):

    PYTHONPATH=client:project_api python3 scripts/stress_models.py run /tmp/stress --json result.json

Outcomes: `exact` (bit for bit), `close` (float outputs within --tol of the largest reference value; a
quantized model must be exact, so it is never `close` when its outputs are integers), `ort-optimizer`
(an ONNX model that differs from onnxruntime's default session but matches onnxruntime with graph
optimizations off: ORT's optimizer changed the roundings of the model as written), `refused` (a
TvmcError: the message is printed), `wrong`, `crash` (any other exception, a failed harness build, a
failed run, a timeout), `no-reference` (the reference interpreter itself cannot run the model). Exit
status 1 when anything is wrong or crashed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
N_SAMPLES = 4  # default --samples: more than the harness's 3 poison bytes, so each one is used


def _samples(model: dict[str, Any], seed: int, n: int = N_SAMPLES) -> list[list[Any]]:
    import numpy as np

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        row = []
        for spec in model["inputs"]:
            dt = np.dtype(spec["dtype"])
            if dt.kind == "f":
                row.append(rng.uniform(-1.0, 1.0, spec["shape"]).astype(dt))
            elif spec.get("quantization") is None:  # raw integers (indices): small and non-negative
                row.append(rng.integers(0, 2, spec["shape"], endpoint=True).astype(dt))
            else:
                info = np.iinfo(dt)
                row.append(rng.integers(info.min, info.max, spec["shape"], endpoint=True).astype(dt))
        out.append(row)
    return out


def _reference_tflite(path: Path, samples: list[list[Any]]) -> tuple[str, list[list[Any]]]:
    """TFLite Micro (what the integer path matches bit for bit); LiteRT when TFLite Micro refuses."""
    try:
        from tflite_micro.python.tflite_micro import runtime

        interp = runtime.Interpreter.from_bytes(path.read_bytes(), arena_size=4 << 20)
        result = []
        for sample in samples:
            for i, x in enumerate(sample):
                interp.set_input(x, i)
            interp.invoke()
            n_out = len(result[0]) if result else _count_outputs(path)
            result.append([interp.get_output(i).copy() for i in range(n_out)])
        return "tflm", result
    except Exception as tflm_err:
        try:
            from ai_edge_litert.interpreter import Interpreter

            lit = Interpreter(model_path=str(path))
            lit.allocate_tensors()
            ins, outs = lit.get_input_details(), lit.get_output_details()
            result = []
            for sample in samples:
                for d, x in zip(ins, sample, strict=True):
                    lit.set_tensor(d["index"], x)
                lit.invoke()
                result.append([lit.get_tensor(d["index"]).copy() for d in outs])
            return f"litert (tflm: {str(tflm_err).splitlines()[0][:80]})", result
        except Exception as err:
            raise RuntimeError(f"no reference: tflm: {tflm_err}; litert: {err}") from err


def _count_outputs(path: Path) -> int:
    import tflite

    model = tflite.Model.GetRootAsModel(path.read_bytes(), 0)
    return int(model.Subgraphs(0).OutputsLength())


def _reference_onnx(
    path: Path, samples: list[list[Any]], optimized: bool = True
) -> tuple[str, list[list[Any]]]:
    import onnxruntime as ort

    try:
        so = ort.SessionOptions()
        if not optimized:
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        names = [i.name for i in sess.get_inputs()]
        return "onnxruntime", [list(sess.run(None, dict(zip(names, s, strict=True)))) for s in samples]
    except Exception as err:
        raise RuntimeError(f"no reference: onnxruntime: {err}") from err


def _compare(ours: list[list[Any]], ref: list[list[Any]], tol: float) -> tuple[str, str]:
    import numpy as np

    worst, exact = 0.0, True
    for got_row, want_row in zip(ours, ref, strict=True):
        if len(got_row) != len(want_row):
            return "wrong", f"{len(got_row)} outputs, reference has {len(want_row)}"
        for k, (got, want) in enumerate(zip(got_row, want_row, strict=True)):
            want = np.asarray(want)
            if got.size != want.size:
                return "wrong", f"output {k}: shape {list(got.shape)}, reference {list(want.shape)}"
            if got.dtype != want.dtype:
                return "wrong", f"output {k}: dtype {got.dtype}, reference {want.dtype}"
            got, want = got.reshape(want.shape), want
            if np.array_equal(got, want, equal_nan=True):
                continue
            exact = False
            diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
            if got.dtype.kind != "f":
                return "wrong", (
                    f"output {k}: integer outputs differ by up to {diff.max():.0f} at "
                    f"{int((diff > 0).sum())} of {want.size} elements"
                )
            scale = max(float(np.max(np.abs(want))), 1e-30)
            rel = float(np.nanmax(diff)) / scale if not np.isnan(diff).any() else float("inf")
            worst = max(worst, rel)
            if rel > tol:
                bad = np.argwhere(~(diff <= tol * scale))
                return "wrong", (
                    f"output {k}: relative error {rel:.3g} at {len(bad)} of {want.size} elements, "
                    f"e.g. {bad[0].tolist()}: ours {got[tuple(bad[0])]!r} ref {want[tuple(bad[0])]!r}"
                )
    return ("exact", "") if exact else ("close", f"relative error {worst:.2g}")


def run_one(path: Path, work: Path, sanitize: bool, tol: float, n_samples: int = N_SAMPLES) -> dict[str, Any]:
    """Compile, build, run and compare one model; the outcome as a dict (for the JSON line)."""
    sys.path.insert(0, str(REPO / "tests" / "compiler"))
    from compiler_harness import build, extract
    from tvmc_micro.compiler import compile_model
    from tvmc_micro.errors import TvmcError

    t0 = time.time()
    tar = work / "m.tar"
    try:
        compile_model(path, tar)
    except TvmcError as err:
        return {
            "outcome": "refused",
            "detail": " | ".join(ln.strip() for ln in str(err).strip().splitlines())[:300],
            "full": str(err)[:2000],
        }
    except Exception as err:
        return {
            "outcome": "crash",
            "detail": f"compile: {type(err).__name__}: {str(err)[:300]}",
            "full": traceback.format_exc()[-3000:],
        }
    try:
        built = build(extract(tar, work / "m"), sanitize=sanitize)
    except subprocess.CalledProcessError as err:
        return {
            "outcome": "crash",
            "detail": f"harness build failed: {err.stderr[-300:]}",
            "full": err.stderr[-3000:],
        }
    samples = _samples(built.model, seed=11, n=n_samples)
    try:
        ours = built.run(samples, work)
    except Exception as err:
        return {"outcome": "crash", "detail": f"run: {str(err)[:300]}", "full": str(err)[-3000:]}
    try:
        ref_name, ref = (_reference_onnx if path.suffix == ".onnx" else _reference_tflite)(path, samples)
    except Exception as err:
        return {"outcome": "no-reference", "detail": str(err)[:300]}
    outcome, detail = _compare(ours, ref, tol)
    if outcome == "wrong" and path.suffix == ".onnx":
        # ORT's graph optimizer rewrites quantized graphs (cancels Transpose pairs, drops the Q/DQ pairs
        # between them), which changes roundings; the model as written is what ORT_DISABLE_ALL runs.
        _, plain = _reference_onnx(path, samples, optimized=False)
        plain_outcome, _ = _compare(ours, plain, tol)
        if plain_outcome in ("exact", "close"):
            outcome, detail = "ort-optimizer", f"{plain_outcome} vs ORT_DISABLE_ALL; vs default ORT: {detail}"
    return {
        "outcome": outcome,
        "detail": detail,
        "reference": ref_name,
        "seconds": round(time.time() - t0, 1),
        "integer_path": any(o.get("quantization") for o in built.model["outputs"] + built.model["inputs"]),
    }


def _run_all(args: argparse.Namespace) -> int:
    paths = sorted(p for p in Path(args.models).iterdir() if p.suffix in (".tflite", ".onnx"))
    if args.match:
        paths = [p for p in paths if args.match in p.name]
    results: dict[str, dict[str, Any]] = {}
    for k, path in enumerate(paths[: args.limit or None]):
        cmd = [sys.executable, __file__, "run-one", str(path), "--tol", str(args.tol)]
        cmd += ["--samples", str(args.samples)]
        if args.sanitize:
            cmd.append("--sanitize")
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
            if proc.returncode == 0 and lines:
                res = json.loads(lines[-1])
            else:
                res = {
                    "outcome": "crash",
                    "detail": f"worker died (exit {proc.returncode}): {proc.stderr[-300:]}",
                }
        except subprocess.TimeoutExpired:
            res = {"outcome": "crash", "detail": f"timeout after {args.timeout}s"}
        results[path.name] = res
        print(
            f"[{k + 1}/{len(paths)}] {path.name}: {res['outcome']} {res.get('detail', '')[:200]}", flush=True
        )
    counts = Counter(r["outcome"] for r in results.values())
    print(
        "\nsummary: "
        + ", ".join(
            f"{counts.get(k, 0)} {k}"
            for k in ("exact", "close", "ort-optimizer", "refused", "wrong", "crash", "no-reference")
        )
    )
    reasons = Counter(r["detail"][:120] for r in results.values() if r["outcome"] == "refused")
    for reason, n in reasons.most_common():
        print(f"  refused x{n}: {reason}")
    for name, r in results.items():
        if r["outcome"] in ("wrong", "crash"):
            print(f"  {r['outcome']}: {name}: {r['detail'][:300]}")
    if args.json:
        Path(args.json).write_text(json.dumps({"counts": dict(counts), "models": results}, indent=1))
    return 1 if counts.get("wrong") or counts.get("crash") else 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (got {value})")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name in ("gen-tflite", "gen-onnx"):
        g = sub.add_parser(name, help="write random models to --out")
        g.add_argument("-n", type=int, default=50)
        g.add_argument("--seed", type=int, default=1)
        g.add_argument("--out", required=True, help="directory for the models (created; files are added)")
    r = sub.add_parser("run", help="compile, run and compare every model of a directory")
    r.add_argument("models")
    r.add_argument("--json", help="write every outcome to this file")
    r.add_argument("--match", help="only models whose file name contains this")
    r.add_argument("--limit", type=int, default=0)
    r.add_argument("--timeout", type=int, default=600, help="seconds per model")
    r.add_argument("--tol", type=float, default=1e-5)
    r.add_argument(
        "--samples",
        type=_positive,
        default=N_SAMPLES,
        help="consecutive runs per model (model state, e.g. an LSTM's, carries from one to the next)",
    )
    r.add_argument("--sanitize", action="store_true", help="build the harness with ASan/UBSan")
    one = sub.add_parser("run-one", help="(worker) one model; prints its outcome as a JSON line")
    one.add_argument("model")
    one.add_argument("--tol", type=float, default=1e-5)
    one.add_argument("--samples", type=_positive, default=N_SAMPLES)
    one.add_argument("--sanitize", action="store_true")
    args = parser.parse_args(argv)
    if args.cmd in ("gen-tflite", "gen-onnx"):
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        mod = __import__("stress_keras" if args.cmd == "gen-tflite" else "stress_onnx")
        written = mod.generate(Path(args.out), args.n, args.seed)
        print(f"{len(written)} models written to {args.out}")
        return 0
    if args.cmd == "run":
        return _run_all(args)
    with tempfile.TemporaryDirectory(prefix="stress-") as tmp:
        res = run_one(Path(args.model), Path(tmp), args.sanitize, args.tol, args.samples)
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())

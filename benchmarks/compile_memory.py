#!/usr/bin/env python3
"""Memory and code size of `tvmc compile` output, per model (a measurement script, not a test).

For each model: arena bytes next to the activation lower bound (largest set of tensors live at once in
the model's own order, inputs and outputs included), I/O bytes, constants bytes, code bytes (`size` text of
the kernel + executor objects from `gcc -Os -c` and `arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -Os -c`),
and compile time. Constants are set against the model file's own constant tensors (weights and biases as
stored; `int8 w` counts the int8 weights alone): the rest is requantisation data (per-channel multipliers
and shifts) and lookup tables. Prints a table; `--json FILE` writes the same figures.

    python benchmarks/compile_memory.py [--models-dir ../shared/models] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
# (label, file, compile options)
CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("hello_world_float.tflite", "hello_world_float.tflite", {}),
    ("hello_world_float.onnx", "hello_world_float.onnx", {}),
    ("pretrainedResnet.tflite", "pretrainedResnet.tflite", {}),
    ("pretrainedResnet.onnx", "pretrainedResnet.onnx", {}),
    ("hello_world_int8.tflite", "hello_world_int8.tflite", {"allow_float_fallback": True}),
    ("hello_world_int8.tflite (qdq)", "hello_world_int8.tflite", {"integer_path": False}),
    ("kws_ref_model.tflite", "kws_ref_model.tflite", {"allow_float_fallback": True}),
    ("kws_ref_model.tflite (m4)", "kws_ref_model.tflite", {"target": "c -mcpu=cortex-m4"}),
    ("kws_ref_model.tflite (qdq)", "kws_ref_model.tflite", {"integer_path": False}),
]


def text_bytes(cc: list[str], sources: list[Path], include: Path, workdir: Path) -> int | None:
    """Sum of `size` text (code + read-only data) of the objects `cc -Os -c` makes from `sources`."""
    if shutil.which(cc[0]) is None:
        return None
    size_tool = "arm-none-eabi-size" if cc[0].startswith("arm-none-eabi") else "size"
    objs = []
    for src in sources:
        obj = workdir / f"{cc[0]}-{src.stem}.o"
        subprocess.run([*cc, "-Os", "-c", "-I", str(include), str(src), "-o", str(obj)], check=True)
        objs.append(str(obj))
    out = subprocess.run([size_tool, *objs], check=True, capture_output=True, text=True).stdout
    return sum(int(line.split()[0]) for line in out.splitlines()[1:])


def model_constant_bytes(model: Path) -> tuple[int, int]:
    """(all constant tensor bytes, int8 constant tensor bytes) as stored in the model file."""
    import numpy as np

    if model.suffix == ".onnx":
        import onnx
        from onnx import numpy_helper

        inits = [numpy_helper.to_array(t) for t in onnx.load(str(model)).graph.initializer]
        return sum(a.nbytes for a in inits), sum(a.nbytes for a in inits if a.dtype == np.int8)
    import tflite

    m = tflite.Model.GetRootAsModel(model.read_bytes(), 0)
    sub = m.Subgraphs(0)
    total = int8 = 0
    for i in range(sub.TensorsLength()):
        t = sub.Tensors(i)
        n = m.Buffers(t.Buffer()).DataLength()
        total += n
        int8 += n if t.Type() == tflite.TensorType.INT8 else 0
    return total, int8


def measure(label: str, model: Path, options: dict[str, Any], workdir: Path) -> dict[str, Any]:
    from tvmc_micro.compiler import compile_model

    tar_path = workdir / "model.tar"
    result = compile_model(model, tar_path, progress=lambda _msg: None, **options)
    mlf = workdir / "mlf"
    with tarfile.open(tar_path) as tar:
        tar.extractall(mlf, filter="data")
    m = result.metadata["models"][0]
    src = mlf / "codegen" / "host" / "src"
    inc = mlf / "codegen" / "host" / "include"
    code = [p for p in sorted(src.glob("*.c")) if not p.name.endswith("_constants.c")]
    mem = m["memory"]
    stored, stored_int8 = model_constant_bytes(model)
    return {
        "model": label,
        "path": m.get("compute_path"),
        "operators": len(m["operators"]),
        "arena_bytes": mem["arena_bytes"],
        "activation_lower_bound_bytes": mem["activation_lower_bound_bytes"],
        "arena_over_bound": round(mem["arena_bytes"] / max(mem["activation_lower_bound_bytes"], 1), 3),
        "io_bytes": mem["io_bytes"],
        "constants_bytes": mem["constants_bytes"],
        "model_constant_bytes": stored,
        "model_int8_weight_bytes": stored_int8,
        "constants_over_model": round(mem["constants_bytes"] / max(stored, 1), 3),
        "code_bytes_gcc_host": text_bytes(["gcc"], code, inc, workdir),
        "code_bytes_cortex_m4": text_bytes(
            ["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb"], code, inc, workdir
        ),
        "compile_seconds": round(result.timing["total"], 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, default=REPO.parent / "shared" / "models")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()
    rows = []
    for label, file, options in CASES:
        path = args.models_dir / file
        if not path.is_file():
            print(f"skip {label}: {path} not found", file=sys.stderr)
            continue
        with tempfile.TemporaryDirectory(prefix="tvmc-bench-") as tmp:
            try:
                rows.append(measure(label, path, options, Path(tmp)))
            except Exception as err:  # one failing model must not hide the others' figures
                print(f"{label}: FAILED: {err}", file=sys.stderr)
    cols = [
        ("model", 30),
        ("path", 8),
        ("operators", 4),
        ("arena_bytes", 8),
        ("activation_lower_bound_bytes", 8),
        ("arena_over_bound", 6),
        ("io_bytes", 7),
        ("constants_bytes", 8),
        ("model_constant_bytes", 8),
        ("model_int8_weight_bytes", 8),
        ("constants_over_model", 6),
        ("code_bytes_gcc_host", 8),
        ("code_bytes_cortex_m4", 8),
        ("compile_seconds", 6),
    ]
    heads = ["model", "path", "ops", "arena", "bound", "ratio", "io", "consts", "model c", "int8 w", "ratio"]
    heads += ["code", "code-m4", "sec"]
    print(
        "  ".join(
            h.rjust(w) if i else h.ljust(w) for i, (h, (_, w)) in enumerate(zip(heads, cols, strict=True))
        )
    )
    for r in rows:
        cells = []
        for i, (key, w) in enumerate(cols):
            v = r[key]
            s = "-" if v is None else str(v)
            cells.append(s.ljust(w) if i == 0 else s.rjust(w))
        print("  ".join(cells))
    print(
        "arena: static arena in the executor (intermediates + kernel workspaces; I/O buffers are the "
        "caller's); bound: largest live tensor set in the model's own order incl. I/O; code: size text of "
        "kernels + executor objects (-Os); consts: const arrays in flash (weights, biases, requantisation "
        "data, tables); model c: the model file's constant tensors (weights + biases); int8 w: its int8 "
        "weights"
    )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

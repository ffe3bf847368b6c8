#!/usr/bin/env python3
"""Any TFLite model (int8 or float) on an emulated Cortex-M board (default mps2_an386, Cortex-M4F) through
the cortex_m template: instructions per inference (total and per operator, with instructions per MAC where
the operator has multiply-accumulates), firmware sections and the model's arena. For float models the
operators are TVM's fused functions, paired in model order with the TFLite operators they compute.

The measurement is cortex_m_kws.py's (compile, create/build/flash through the template's Project API
server, device timer under QEMU `-icount shift=0`, so one ns of virtual time is one instruction); this
script adds the per-operator work counts read from the model itself. Prints a table; `--json FILE` writes
the same figures. Example:
    python benchmarks/cortex_m_model.py --model vww_96_int8.tflite --json /tmp/vww.json
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cortex_m_kws import _read_member, board_target, make_project, measure

# MLF operator names are the kernel builders' names with a numeric suffix; the TFLite operators they
# come from, in model order.
_KIND_OF_BUILTIN = {
    "CONV_2D": "conv2d",
    "DEPTHWISE_CONV_2D": "depthwise_conv2d",
    "FULLY_CONNECTED": "fully_connected",
    "AVERAGE_POOL_2D": "average_pool2d",
    "MAX_POOL_2D": "max_pool2d",
    "ADD": "add",
    "MUL": "mul",
    "SOFTMAX": "softmax",
}


def _builtin_names() -> dict[int, str]:
    import tflite

    return {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}


def model_work(model_bytes: bytes) -> dict[str, list[dict[str, Any]]]:
    """Per operator kind (the MLF's kernel-name stem), the model's operators of that kind in order with
    their multiply-accumulates (pools: taps read; ADD/MUL/SOFTMAX: output elements)."""
    import numpy as np
    import tflite

    model = tflite.Model.GetRootAsModel(model_bytes, 0)
    graph = model.Subgraphs(0)
    names = _builtin_names()
    work: dict[str, list[dict[str, Any]]] = {}

    def shape(i: int) -> list[int]:
        return [int(d) for d in graph.Tensors(i).ShapeAsNumpy()]

    for k in range(graph.OperatorsLength()):
        op = graph.Operators(k)
        code = model.OperatorCodes(op.OpcodeIndex())
        builtin = names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "?")
        kind = _KIND_OF_BUILTIN.get(builtin)
        if kind is None:
            continue
        out = shape(op.Outputs(0))
        elems = int(np.prod(out))
        label = builtin
        if builtin == "CONV_2D":
            _, kh, kw, ic = shape(op.Inputs(1))
            macs = elems * kh * kw * ic
            label = f"{builtin} {kh}x{kw}"
        elif builtin == "DEPTHWISE_CONV_2D":
            _, kh, kw, _ = shape(op.Inputs(1))
            macs = elems * kh * kw
            label = f"{builtin} {kh}x{kw}"
        elif builtin == "FULLY_CONNECTED":
            macs = elems * shape(op.Inputs(1))[-1]
        elif builtin in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
            opts = tflite.Pool2DOptions()
            table = op.BuiltinOptions()
            opts.Init(table.Bytes, table.Pos)
            macs = elems * opts.FilterHeight() * opts.FilterWidth()
        else:
            macs = elems
        work.setdefault(kind, []).append({"builtin": label, "macs": macs, "out_shape": out, "index": k})
    return work


# Float models: the MLF's operators are TVM's fused functions (fused_conv2d3_add2_relu, fused_matmul_add,
# avg_pool2d, ...). Their leading compute names the TFLite operators they come from.
_FLOAT_GROUPS = (
    (r"^(fused_)?conv2d", ("conv2d", "depthwise_conv2d")),
    (r"^(fused_)?matmul", ("fully_connected",)),
    (r"^(fused_)?avg_pool2d", ("average_pool2d",)),
    (r"^(fused_)?max_pool2d", ("max_pool2d",)),
)


def float_stems(op_names: list[str], work: dict[str, list[dict[str, Any]]]) -> list[str] | None:
    """Per MLF operator of a float model, the work key of attribute_work to pair it with; None when the
    counts of some group differ between the model and the MLF (then nothing is attributed)."""
    groups: list[str | None] = []
    for name in op_names:
        groups.append(next((pat for pat, _ in _FLOAT_GROUPS if re.match(pat, name)), None))
    merged: dict[str, list[dict[str, Any]]] = {}
    for pat, kinds in _FLOAT_GROUPS:
        # The model's operators of these kinds, in model order.
        rows = sorted((r for k in kinds for r in work.get(k, [])), key=lambda r: r["index"])
        if len(rows) != groups.count(pat):
            return None
        merged[pat] = rows
    work.update(merged)
    return [g if g is not None else re.sub(r"\d+$", "", n) for g, n in zip(groups, op_names, strict=True)]


def attribute_work(
    op_names: list[str], functions: list[str], work: dict[str, list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """Pair each MLF operator with the model operator it computes (the n-th of its kind), when the kinds'
    counts agree; otherwise the operator's work stays unknown (fused or split by the compiler)."""
    stems = [re.sub(r"\d+$", "", n) for n in op_names]
    if any(n.startswith("fused_") for n in op_names):  # a float model's fused functions
        stems = float_stems(op_names, work) or stems
    counts = {s: stems.count(s) for s in set(stems)}
    seen: dict[str, int] = {}
    rows = []
    for name, function, stem in zip(op_names, functions, stems, strict=True):
        ops = work.get(stem, [])
        i = seen.get(stem, 0)
        seen[stem] = i + 1
        matched = ops[i] if len(ops) == counts[stem] else None
        rows.append(
            {
                "name": name,
                "function": function,
                "builtin": matched["builtin"] if matched else None,
                "macs": matched["macs"] if matched else None,
                "out_shape": matched["out_shape"] if matched else None,
            }
        )
    return rows


def measure_model(
    model: Path,
    target: str,
    board: str = "mps2_an386",
    opt_level: str = "O2",
    batches: int = 2,
    transfers: int = 2,
    kernel_weights: str = "int8",
) -> dict[str, Any]:
    """Compile `model` for `target`, build and flash it for `board` through the cortex_m template and
    measure it under QEMU: the figures main() prints (and writes with --json), as a dict."""
    from tvmc_micro.compiler import compile_model

    model_bytes = model.read_bytes()
    with tempfile.TemporaryDirectory(prefix="cortex_m_model_") as tmp:
        work_dir = Path(tmp)
        mlf = work_dir / "model.tar"
        compile_model(model, mlf, target=target, model_name="model", kernel_weights=kernel_weights)
        metadata = json.loads(_read_member(mlf, "metadata.json"))["models"][0]
        sizes = make_project(mlf.resolve(), work_dir / "project", board, opt_level)
        figures = measure(work_dir / "project", batches, transfers)

    per_op = figures.pop("per_operator_instructions")
    ops = attribute_work(
        [o["name"] for o in metadata["operators"]],
        [o["function"] for o in metadata["operators"]],
        model_work(model_bytes),
    )
    for op, count in zip(ops, per_op.values(), strict=True):
        op["instructions"] = count
        op["instructions_per_mac"] = round(count / op["macs"], 3) if op["macs"] else None
    by_kind: dict[str, dict[str, Any]] = {}
    for op in ops:
        kind = op["builtin"] or re.sub(r"\d+$", "", op["name"])
        entry = by_kind.setdefault(kind, {"operators": 0, "instructions": 0, "macs": 0})
        entry["operators"] += 1
        entry["instructions"] += op["instructions"]
        entry["macs"] = entry["macs"] + op["macs"] if op["macs"] and entry["macs"] is not None else None
    total = figures["instructions_per_inference"]
    for entry in by_kind.values():
        entry["share"] = round(entry["instructions"] / total, 4) if total else None
        entry["instructions_per_mac"] = (
            round(entry["instructions"] / entry["macs"], 3) if entry["macs"] else None
        )

    return {
        "model": model.name,
        "target": target,
        "board": board,
        "opt_level": opt_level,
        "kernel_weights": kernel_weights,
        **figures,
        "total_macs": sum(op["macs"] or 0 for op in ops),
        "sections_bytes": {k.lstrip("."): v for k, v in sizes.items() if isinstance(v, int)},
        "stack_estimate": sizes.get("stack"),
        "arena_bytes": metadata["memory"]["arena_bytes"],
        "constants_bytes": metadata["memory"]["constants_bytes"],
        "by_kind": by_kind,
        "operators": ops,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, required=True, help="a .tflite model (int8 or float32)")
    parser.add_argument(
        "--target",
        help='tvmc --target for the compile (default: "c -mcpu=<the board\'s cpu>"; "c": the portable '
        "kernels, no DSP micro-kernels)",
    )
    parser.add_argument(
        "--board", default="mps2_an386", help="a board of template_projects/cortex_m/boards.yaml"
    )
    parser.add_argument("--opt-level", default="O2", choices=("O0", "O1", "O2", "O3", "Os"))
    parser.add_argument(
        "--kernel-weights", default="int8", choices=("int8", "int16"), help="tvmc compile --kernel-weights"
    )
    parser.add_argument("--batches", type=int, default=2, help="runs per timed batch (two batches)")
    parser.add_argument("--transfers", type=int, default=2, help="set_input/get_output calls timed")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if not args.model.is_file():
        parser.error(f"--model {args.model}: no such file")
    if args.target is None:
        args.target = board_target(args.board)

    result = measure_model(
        args.model, args.target, args.board, args.opt_level, args.batches, args.transfers, args.kernel_weights
    )
    total = result["instructions_per_inference"]
    by_kind, ops = result["by_kind"], result["operators"]
    rows = [
        ("model / target", f"{args.model.name} / {args.target}"),
        ("board / opt level", f"{args.board} / -{args.opt_level}"),
        ("kernel weights", args.kernel_weights),
        (
            "instructions per inference",
            f"{total:,} (±{result['instruction_resolution']}, repeatable: {result['repeatable']})",
        ),
        ("MACs (conv/dw/fc)", f"{result['total_macs']:,}"),
        *((f".{k}", f"{v:,} B") for k, v in result["sections_bytes"].items()),
        ("arena (metadata)", f"{result['arena_bytes']:,} B"),
        ("model constants", f"{result['constants_bytes']:,} B"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{args.model.name} on the cortex_m template under QEMU -icount shift=0")
    for label, value in rows:
        print(f"  {label:<{width}}  {value}")
    print("  by operator kind:            instructions   share   instr/MAC")
    for kind, e in sorted(by_kind.items(), key=lambda kv: -kv[1]["instructions"]):
        ipm = f"{e['instructions_per_mac']:.3f}" if e["instructions_per_mac"] else "-"
        print(f"    {kind:<20} x{e['operators']:<3} {e['instructions']:>13,}  {e['share']:6.1%}  {ipm:>9}")
    print("  per operator:")
    for i, op in enumerate(ops):
        ipm = f"{op['instructions_per_mac']:.3f}" if op["instructions_per_mac"] else "-"
        shape = "x".join(str(d) for d in op["out_shape"]) if op["out_shape"] else ""
        print(f"    {i:>2}:{op['name']:<22} {shape:<14} {op['instructions']:>12,}  {ipm:>7}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

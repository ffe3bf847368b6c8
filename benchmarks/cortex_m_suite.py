#!/usr/bin/env python3
"""The int8 models of the TFLite Micro baseline note on an emulated Cortex-M4 (mps2_an386): instructions
per inference, multiply-accumulates, instructions per MAC, the ratio to TFLite Micro + CMSIS-NN on the
same emulated board, arena and firmware .text/.rodata, one row per model.

The models and the TFLM + CMSIS-NN figures are read from the machine-readable lines of
../shared/baselines/tflm-cortex-m4.md (`TFLM_CMSIS_NN_INSTRUCTIONS <stem> = N`); each model file is
<stem>.tflite in the models folder (../shared/models, or $TVMC_MODELS_DIR). A model that is not there is
skipped with the reason printed (they come from mlcommons/tiny and tensorflow/tflite-micro, see
docs/quantized-models.md). Each model is measured by cortex_m_model.py's measure_model (compile, build and
flash through the cortex_m template, device timer under QEMU `-icount shift=0`: exact instruction counts).

MACs count CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED only, as the baseline note does. Prints a table;
`--json FILE` writes {"models": {stem: {"instructions", "macs", "tflm_instructions", "arena_bytes",
"text_bytes", "rodata_bytes", ...}}, "skipped": {stem: reason}}. Examples:
    python benchmarks/cortex_m_suite.py --json /tmp/suite.json
    python benchmarks/cortex_m_suite.py --models kws_ref_model ad01_int8
    python benchmarks/cortex_m_suite.py --kernel-weights int16 --json /tmp/suite16.json
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cortex_m_kws import BASELINE, MODELS, board_target
from cortex_m_model import measure_model

BOARD = "mps2_an386"  # the board the baseline was measured on
_MAC_KINDS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def read_baseline(path: Path) -> tuple[dict[str, int], dict[str, int]]:
    """({stem: TFLM + CMSIS-NN instructions}, {stem: MACs}) from the baseline note's machine-readable
    lines, in the note's order. Raises SystemExit naming the file when it is missing or lists no model."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise SystemExit(f"cannot read the TFLM baseline {path}: {e.strerror}") from None

    def table(key: str) -> dict[str, int]:
        rows = re.findall(rf"^{key} (\w+) = ([\d_]+)\s*$", text, re.M)
        return {stem: int(value.replace("_", "")) for stem, value in rows}

    tflm = table("TFLM_CMSIS_NN_INSTRUCTIONS")
    if not tflm:
        raise SystemExit(f"{path} has no 'TFLM_CMSIS_NN_INSTRUCTIONS <model> = N' line")
    return tflm, table("MACS")


def suite_row(stem: str, measured: dict[str, Any], tflm: int) -> dict[str, Any]:
    """The --json entry of one model from measure_model's figures."""
    macs = sum(
        op["macs"] or 0
        for op in measured["operators"]
        if op["builtin"] and op["builtin"].split(" ")[0] in _MAC_KINDS
    )
    n = measured["instructions_per_inference"]
    sections = measured["sections_bytes"]
    return {
        "instructions": n,
        "macs": macs,
        "instructions_per_mac": round(n / macs, 3) if macs else None,
        "tflm_instructions": tflm,
        "ratio_to_tflm": round(n / tflm, 3),
        "arena_bytes": measured["arena_bytes"],
        "text_bytes": sections.get("text"),
        "rodata_bytes": sections.get("rodata"),
        "repeatable": measured["repeatable"],
        "by_kind": measured["by_kind"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", metavar="STEM", help="only these models of the baseline")
    parser.add_argument("--models-dir", type=Path, default=MODELS, help=f"where <stem>.tflite are ({MODELS})")
    parser.add_argument(
        "--baseline", type=Path, default=BASELINE, help=f"the TFLM baseline note ({BASELINE})"
    )
    parser.add_argument(
        "--target", help=f"tvmc --target for the compile (default: {board_target(BOARD)!r}, the board's core)"
    )
    parser.add_argument("--opt-level", default="O2", choices=("O0", "O1", "O2", "O3", "Os"))
    parser.add_argument(
        "--kernel-weights",
        default="int8",
        choices=("int8", "int16"),
        help="tvmc compile --kernel-weights (int16: conv/FC weights widened at compile time)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if args.json is not None and not args.json.parent.is_dir():
        parser.error(f"--json {args.json}: folder {args.json.parent} does not exist")
    tflm, baseline_macs = read_baseline(args.baseline)
    stems = list(tflm)
    if args.models:
        unknown = [s for s in args.models if s not in tflm]
        if unknown:
            parser.error(f"--models {' '.join(unknown)}: not in {args.baseline} (it lists {', '.join(tflm)})")
        stems = [s for s in stems if s in args.models]
    target = args.target or board_target(BOARD)

    rows: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    for stem in stems:
        model = args.models_dir / f"{stem}.tflite"
        if not model.is_file():
            skipped[stem] = (
                f"{model} not found (MLPerf Tiny's trained models are in mlcommons/tiny, TFLite Micro's in "
                "tensorflow/tflite-micro: see docs/quantized-models.md)"
            )
            print(f"skipping {stem}: {skipped[stem]}", file=sys.stderr)
            continue
        print(f"measuring {stem} ...", file=sys.stderr, flush=True)
        rows[stem] = suite_row(
            stem,
            measure_model(model, target, BOARD, args.opt_level, kernel_weights=args.kernel_weights),
            tflm[stem],
        )
        if stem in baseline_macs and baseline_macs[stem] != rows[stem]["macs"]:
            print(
                f"note: {stem}: {rows[stem]['macs']:,} MACs counted here, "
                f"{baseline_macs[stem]:,} in the baseline",
                file=sys.stderr,
            )

    print(
        f"Models of {args.baseline.name} on {BOARD} under QEMU -icount shift=0, "
        f"target {target!r}, -{args.opt_level}, kernel weights {args.kernel_weights}"
    )
    header = (
        "model",
        "instructions",
        "MACs",
        "instr/MAC",
        "TFLM+CMSIS-NN",
        "ratio",
        "arena B",
        ".text B",
        ".rodata B",
    )
    table = [header]
    for stem, r in rows.items():
        ipm = f"{r['instructions_per_mac']:.3f}" if r["instructions_per_mac"] else "-"
        table.append(
            (
                stem,
                f"{r['instructions']:,}",
                f"{r['macs']:,}",
                ipm,
                f"{r['tflm_instructions']:,}",
                f"{r['ratio_to_tflm']:.3f}",
                f"{r['arena_bytes']:,}",
                f"{r['text_bytes']:,}" if r["text_bytes"] is not None else "-",
                f"{r['rodata_bytes']:,}" if r["rodata_bytes"] is not None else "-",
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        print("  " + "  ".join(cells))
    for stem, reason in skipped.items():
        print(f"  {stem}: skipped: {reason}")
    if args.json:
        doc = {
            "board": BOARD,
            "target": target,
            "opt_level": args.opt_level,
            "kernel_weights": args.kernel_weights,
            "models": rows,
            "skipped": skipped,
        }
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""KWS on an emulated Cortex-M board (default mps2_an386, Cortex-M4F) through the cortex_m template.

Compiles kws_ref_model.tflite (or takes --mlf), creates, builds and flashes a cortex_m project through the
template's Project API server, then measures over the QEMU UART with the device session:
- instructions per inference: the device timer under `-icount shift=0` (1 instruction = 1 ns of virtual
  time), so ticks * 1e9 / timer_hz is an exact instruction count (to one timer tick: 40 instructions on
  the 25 MHz CMSDK timer), checked repeatable across two batches;
- per-operator instructions (the firmware's per-operator timer);
- firmware memory: .text / .rodata / .data / .bss / stack from arm-none-eabi-size, and the model's arena;
- UART throughput: tensor bytes per second moved by set_input (host -> board) and get_output (board ->
  host) through the Project API server, as `tvmc run` moves them;
- the ratio to TFLite Micro on the same emulated board, from the baseline in
  ../shared/baselines/tflm-cortex-m4.md when it is there.

Prints a table; `--json FILE` writes the same figures. `--board` takes any row of the template's boards.yaml;
the model is then compiled for that board's core (`--target "c -mcpu=<its cpu>"`) unless --target says
otherwise. Examples:
    python benchmarks/cortex_m_kws.py --json /tmp/cortex_m_kws.json
    python benchmarks/cortex_m_kws.py --board mps2_an505 --json /tmp/cortex_m_kws_m33.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "client"))
sys.path.insert(0, str(REPO / "project_api"))

from microtvm_api.client import ProjectAPIClient, ServerTransport  # noqa: E402
from tvmc_micro.device import DeviceSession  # noqa: E402

MODELS = Path(os.environ.get("TVMC_MODELS_DIR", REPO.parent / "shared" / "models"))
BASELINE = REPO.parent / "shared" / "baselines" / "tflm-cortex-m4.md"
TEMPLATE_SERVER = REPO / "template_projects" / "cortex_m" / "microtvm_api_server.py"


def board_target(board: str) -> str:
    """The tvmc --target that compiles for `board`'s core: "c -mcpu=<cpu of its boards.yaml row>".

    Raises SystemExit naming the known boards when `board` is not in the table.
    """
    sys.path.insert(0, str(TEMPLATE_SERVER.parent))
    import cortex_m_firmware

    boards = cortex_m_firmware.load_boards()
    if board not in boards:
        known = ", ".join(sorted(boards))
        raise SystemExit(f"--board {board}: not a row of {cortex_m_firmware.BOARDS_YAML} (known: {known})")
    return f"c -mcpu={boards[board].cpu}"


def tflm_baseline() -> dict[str, int]:
    """The machine-readable TFLM instruction counts of the baseline note (empty when it is absent)."""
    try:
        text = BASELINE.read_text(encoding="utf-8")
    except OSError:
        return {}
    return {
        name: int(value.replace("_", "")) for name, value in re.findall(r"(KWS_TFLM_\w+) = ([\d_]+)", text)
    }


def make_project(mlf: Path, project: Path, board: str, opt_level: str) -> dict[str, Any]:
    with ProjectAPIClient.launch(TEMPLATE_SERVER) as template:
        template.server_info_query("0.27.0")
        template.generate_project(mlf, None, project, {"board": board})
    with ProjectAPIClient.launch(project / "microtvm_api_server.py") as client:
        client.server_info_query("0.27.0")
        client.build({"opt_level": opt_level})
        client.flash({})
    sizes: dict[str, Any] = json.loads((project / "build" / "sizes.json").read_text())
    return sizes


def measure(project: Path, batches: int, transfers: int) -> dict[str, Any]:
    import numpy as np

    with ProjectAPIClient.launch(project / "microtvm_api_server.py") as client:
        client.server_info_query("0.27.0")
        session = DeviceSession(ServerTransport(client, {"qemu_icount": True}), transport_name="QEMU UART")
        try:
            session.open()
            info = session.info()
            x = np.random.default_rng(0).integers(-128, 128, size=info.inputs[0].size_bytes, dtype=np.int16)
            data = x.astype(np.int8).tobytes()
            ns_per_tick = 1e9 / info.timer_hz  # one instruction is one ns under -icount shift=0

            def timed_batch() -> list[int]:
                # A run consumes its inputs (they live in the arena): each timed run gets them again, so
                # every count is of the same real input (data-dependent kernels would drift otherwise).
                ticks = []
                for _ in range(batches):
                    session.set_input(0, data)
                    ticks.append(session.time_runs(1).total_ticks)
                return ticks

            counts = [timed_batch() for _ in range(2)]
            session.set_input(0, data)
            profile = session.profile_ops()
            start = time.perf_counter()
            for _ in range(transfers):
                session.set_input(0, x.astype(np.int8).tobytes())
            upload = transfers * info.inputs[0].size_bytes / (time.perf_counter() - start)
            start = time.perf_counter()
            for _ in range(transfers):
                session.get_output(0)
            elapsed = time.perf_counter() - start
            download = transfers * info.outputs[0].size_bytes / elapsed
        finally:
            session.close()
    per_run = min(counts[0]) * ns_per_tick
    return {
        "timer_hz": info.timer_hz,
        "instructions_per_inference": round(per_run),
        "instruction_resolution": round(ns_per_tick),
        "repeatable": counts[0] == counts[1] and len(set(counts[0])) == 1,
        "per_operator_instructions": dict(
            zip(
                [f"{i}:{n}" for i, n in enumerate(profile.op_names)],
                [round(t * ns_per_tick) for t in profile.op_ticks],
                strict=True,
            )
        ),
        "input_bytes": info.inputs[0].size_bytes,
        "output_bytes": info.outputs[0].size_bytes,
        "uart_set_input_bytes_per_sec": round(upload),
        "uart_get_output_bytes_per_sec": round(download),
        "get_output_round_trip_ms": round(elapsed / transfers * 1e3, 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--board", default="mps2_an386", help="a board of template_projects/cortex_m/boards.yaml"
    )
    parser.add_argument("--opt-level", default="O2", choices=("O0", "O1", "O2", "O3", "Os"))
    parser.add_argument("--mlf", type=Path, help="an MLF of KWS (default: compile kws_ref_model.tflite)")
    parser.add_argument(
        "--target",
        help="tvmc --target for the compile (default: \"c -mcpu=<the board's cpu>\"; \"c\": the portable "
        "kernels, no DSP micro-kernels)",
    )
    parser.add_argument(
        "--kernel-weights", default="int8", choices=("int8", "int16"), help="tvmc compile --kernel-weights"
    )
    parser.add_argument("--batches", type=int, default=5, help="runs per timed batch (two batches)")
    parser.add_argument("--transfers", type=int, default=20, help="set_input/get_output calls timed")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    target = board_target(args.board) if args.target is None else args.target

    with tempfile.TemporaryDirectory(prefix="cortex_m_kws_") as tmp:
        work = Path(tmp)
        mlf = args.mlf
        if mlf is None:
            from tvmc_micro.compiler import compile_model

            mlf = work / "kws.tar"
            model = MODELS / "kws_ref_model.tflite"
            compile_model(model, mlf, target=target, kernel_weights=args.kernel_weights)
        metadata = json.loads(_read_member(mlf, "metadata.json"))["models"][0]
        sizes = make_project(mlf.resolve(), work / "project", args.board, args.opt_level)
        figures = measure(work / "project", args.batches, args.transfers)

    baseline = tflm_baseline()
    result: dict[str, Any] = {
        "model": "kws_ref_model.tflite",
        "board": args.board,
        "target": target if args.mlf is None else None,
        "opt_level": args.opt_level,
        "kernel_weights": args.kernel_weights if args.mlf is None else None,
        **figures,
        # sizes.json also holds the build's stack estimate (a mapping): only the sections are byte counts.
        "sections_bytes": {k.lstrip("."): v for k, v in sizes.items() if isinstance(v, int)},
        "stack_estimate": sizes.get("stack"),
        "arena_bytes": metadata["memory"]["arena_bytes"],
        "constants_bytes": metadata["memory"]["constants_bytes"],
        "tflm_cmsis_nn_instructions": baseline.get("KWS_TFLM_CMSIS_NN_INSTRUCTIONS"),
        "tflm_reference_instructions": baseline.get("KWS_TFLM_REF_INSTRUCTIONS"),
    }
    n = result["instructions_per_inference"]
    for key in ("tflm_cmsis_nn", "tflm_reference"):
        other = result[f"{key}_instructions"]
        result[f"ratio_to_{key}"] = round(n / other, 3) if other else None

    # The TFLM baseline was measured on mps2_an386 (Cortex-M4F): say so when comparing another core with it.
    baseline_board = "" if args.board == "mps2_an386" else " (TFLM on mps2_an386)"
    rows = [
        ("board / opt level", f"{args.board} / -{args.opt_level}"),
        ("target", target if args.mlf is None else f"(from {args.mlf.name})"),
        ("kernel weights", args.kernel_weights if args.mlf is None else "(from the MLF)"),
        (
            "instructions per inference",
            f"{n:,} (±{result['instruction_resolution']}, repeatable: {result['repeatable']})",
        ),
        (f"  vs TFLM + CMSIS-NN{baseline_board}", _ratio(result, "tflm_cmsis_nn")),
        (f"  vs TFLM reference kernels{baseline_board}", _ratio(result, "tflm_reference")),
        *((f".{k}", f"{v:,} B") for k, v in result["sections_bytes"].items()),
        ("arena (metadata)", f"{result['arena_bytes']:,} B"),
        ("model constants", f"{result['constants_bytes']:,} B"),
        (
            "UART set_input",
            f"{result['uart_set_input_bytes_per_sec']:,} B/s ({result['input_bytes']} B tensor)",
        ),
        (
            "UART get_output",
            f"{result['uart_get_output_bytes_per_sec']:,} B/s ({result['output_bytes']} B tensor, "
            f"{result['get_output_round_trip_ms']} ms per request)",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    print("KWS on the cortex_m template under QEMU -icount shift=0")
    for label, value in rows:
        print(f"  {label:<{width}}  {value}")
    print("  per operator (instructions):")
    for name, count in result["per_operator_instructions"].items():
        print(f"    {name:<{width - 2}}  {count:,}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


def _ratio(result: dict[str, Any], key: str) -> str:
    other = result[f"{key}_instructions"]
    if not other:
        return "n/a (baseline note not found)"
    return f"{result[f'ratio_to_{key}']}x of {other:,}"


def _read_member(tar_path: Path, name: str) -> bytes:
    import tarfile

    with tarfile.open(tar_path) as tar:
        member = tar.extractfile(name)
        if member is None:
            raise SystemExit(f"{tar_path} has no {name}")
        return member.read()


if __name__ == "__main__":
    sys.exit(main())

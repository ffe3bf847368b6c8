"""`tvmc run --device micro`: inputs from a file (checked against the model) or filled, one session with the
device through the project's server, outputs, on-device time and per-operator profile."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tvmc_micro.errors import TvmcError

FILL_MODES = ("zeros", "ones", "random")


@dataclass
class RunResult:
    model: dict[str, Any]  # the model entry of the project's metadata.json
    outputs: dict[str, np.ndarray]
    timing: Any | None = None  # tvmc_micro.device.TimingResult
    profile: Any | None = None  # tvmc_micro.device.OpProfile
    device: Any | None = None  # tvmc_micro.device.DeviceInfo
    inputs: list[np.ndarray] | None = None  # what was sent, in the model's input order


def _describe(t: Mapping[str, Any]) -> str:
    return f"{t['name']!r} {t['dtype']}{list(t['shape'])}"


def make_inputs(
    inputs_meta: Sequence[Mapping[str, Any]],
    npz_path: str | None,
    fill_mode: str = "random",
    seed: int | None = None,
) -> list[np.ndarray]:
    """One array per model input, in struct order: read from `npz_path` or filled per `fill_mode`."""
    if npz_path is None:
        # One generator for all inputs, drawn in struct order: two inputs of one shape get different
        # values (a generator per input, each from the same seed, made them equal).
        rng = np.random.default_rng(seed)
        return [_fill(t, fill_mode, rng) for t in inputs_meta]
    try:
        with np.load(npz_path, allow_pickle=False) as data:
            given = {name: data[name] for name in data.files}
    except FileNotFoundError:
        raise TvmcError(
            f"input file {npz_path} does not exist", "pass an .npz written by numpy.savez"
        ) from None
    except (OSError, ValueError) as err:
        raise TvmcError(
            f"cannot read {npz_path} as .npz: {err}",
            "write inputs with numpy.savez(path, **{input_name: array})",
        ) from None
    expected = "; ".join(_describe(t) for t in inputs_meta)
    known = {t["name"] for t in inputs_meta} | {t.get("c_name", t["name"]) for t in inputs_meta}
    extra = sorted(set(given) - known)
    if extra:
        raise TvmcError(
            f"{npz_path} has arrays the model has no input for: {', '.join(map(repr, extra))}",
            f"the model's inputs are: {expected}",
        )
    arrays = []
    for t in inputs_meta:
        name = t["name"] if t["name"] in given else t.get("c_name", t["name"])
        if name not in given:
            raise TvmcError(
                f"{npz_path} has no array for input {_describe(t)}",
                f"the model's inputs are: {expected}; or leave out -i to use --fill-mode",
            )
        arrays.append(_conform(given[name], t, npz_path))
    return arrays


def _fill(t: Mapping[str, Any], mode: str, rng: np.random.Generator) -> np.ndarray:
    dtype = np.dtype(t["dtype"])
    shape = tuple(t["shape"])
    if mode == "zeros":
        return np.zeros(shape, dtype)
    if mode == "ones":
        return np.ones(shape, dtype)
    if mode != "random":
        raise TvmcError(f"unknown fill mode {mode!r}", f"use one of: {', '.join(FILL_MODES)}")
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return rng.integers(info.min, int(info.max) + 1, size=shape, dtype=dtype)
    if dtype.kind == "b":
        return rng.integers(0, 2, size=shape).astype(dtype)
    return rng.uniform(-1.0, 1.0, size=shape).astype(dtype)


def _conform(array: np.ndarray, t: Mapping[str, Any], source: str) -> np.ndarray:
    """The array as the input's dtype and shape; float data for a quantized input is quantized."""
    dtype = np.dtype(t["dtype"])
    shape = tuple(t["shape"])
    if array.shape != shape:
        if array.size == int(np.prod(shape)) and array.squeeze().shape == np.empty(shape).squeeze().shape:
            array = array.reshape(shape)  # e.g. (49, 10) for (1, 49, 10, 1)
        else:
            raise TvmcError(
                f"input {t['name']!r} in {source} has shape {list(array.shape)}, "
                f"the model needs {list(shape)}",
                "reshape the array before saving it",
            )
    if array.dtype == dtype:
        return array
    quant = t.get("quantization")
    if array.dtype.kind == "f" and dtype.kind in "iu" and quant:
        scale, zero_point = float(quant["scale"]), int(quant["zero_point"])
        info = np.iinfo(dtype)
        print(
            f"note: quantizing float input {t['name']!r} to {dtype} "
            f"(scale {scale:g}, zero point {zero_point})",
            file=sys.stderr,
        )
        return np.clip(np.round(array / scale) + zero_point, info.min, info.max).astype(dtype)
    if array.dtype.kind in "iub" and dtype.kind in "iu":
        info = np.iinfo(dtype)
        if array.size == 0 or (array.min() >= info.min and array.max() <= info.max):
            return array.astype(dtype)
    if array.dtype.kind in "iuf" and dtype.kind == "f":
        return array.astype(dtype)
    raise TvmcError(
        f"input {t['name']!r} in {source} is {array.dtype}, the model needs {dtype}",
        f"convert it before saving: array.astype(np.{dtype})",
    )


def run_on_device(
    project_dir: Path,
    options: Mapping[str, str],
    input_source: Callable[[dict[str, Any]], Sequence[np.ndarray]],
    *,
    repeat: int = 1,
    print_time: bool = False,
    profile: bool = False,
    verbose: int = 0,
    platform: str | None = None,
) -> RunResult:
    """Open a session through the project's server, check the signature, set inputs, run, read outputs.

    `input_source` gets the project's model entry (metadata.json) and returns one array per input; it runs
    before the transport opens, so bad inputs fail without touching the device.
    """
    from microtvm_api.client import ServerTransport

    from tvmc_micro.device import DeviceSession, check_signature
    from tvmc_micro.project import check_is_project, launched, project_model

    with launched(project_dir, verbose=verbose) as (client, info):
        check_is_project(info, project_dir, platform)
        model = project_model(info, project_dir)
        inputs = input_source(model)
        transport = ServerTransport(client, options)
        timeouts = transport.timeouts
        session = DeviceSession(
            transport,
            reply_timeout_sec=float(timeouts.get("session_start_retry_timeout_sec", 1.0)),
            open_timeout_sec=float(timeouts.get("session_start_timeout_sec", 10.0)),
            run_timeout_sec=max(120.0, float(timeouts.get("session_established_timeout_sec", 0.0))),
            transport_name=f"the {info['platform_name']} transport of {project_dir}",
        )
        try:
            hello = session.open()
            check_signature(hello, model["signature"], model["name"], str(project_dir))
            device = session.info()
            for index, array in enumerate(inputs):
                session.set_input(index, np.ascontiguousarray(array).tobytes())
            session.run()
            outputs = {}
            for index, t in enumerate(model["outputs"]):
                raw = session.get_output(index)
                outputs[t["name"]] = np.frombuffer(raw, dtype=np.dtype(t["dtype"])).reshape(t["shape"]).copy()
            timing = session.time_runs(max(1, repeat)) if print_time else None
            op_profile = session.profile_ops() if profile else None
        finally:
            session.close()
    return RunResult(model, outputs, timing, op_profile, device, list(inputs))


def save_outputs(path: str, outputs: Mapping[str, np.ndarray]) -> None:
    target = Path(path)
    if not target.parent.is_dir():
        raise TvmcError(f"cannot write {path}: directory {target.parent} does not exist", "create it first")
    savez: Any = np.savez  # numpy's stub types **arrays as the allow_pickle flag
    savez(target, **dict(outputs))


def format_top(outputs: Mapping[str, np.ndarray], outputs_meta: Sequence[Mapping[str, Any]], n: int) -> str:
    """The N largest values of each output, with their class indices (and real values if quantized)."""
    lines = []
    for t in outputs_meta:
        values = outputs[t["name"]].reshape(-1)
        order = np.argsort(-values.astype(np.float64), kind="stable")[:n]
        quant = t.get("quantization")
        lines.append(f"output {_describe(t)}: top {len(order)}")
        for rank, index in enumerate(order, 1):
            value = values[index]
            real = ""
            if quant:
                real = f"  (≈ {(float(value) - quant['zero_point']) * quant['scale']:.6g})"
            lines.append(f"  {rank}. class {int(index):>4}  value {value}{real}")
    return "\n".join(lines)


def format_timing(timing: Any) -> str:
    ms = 1e3
    per_run_ticks = timing.total_ticks / timing.count
    return (
        f"on-device time over {timing.count} run(s) (timer {timing.timer_hz:,} Hz):\n"
        f"  mean {timing.mean_sec * ms:.4f} ms   min {timing.min_sec * ms:.4f} ms   "
        f"max {timing.max_sec * ms:.4f} ms   ({per_run_ticks:,.0f} ticks per run)"
    )


def format_profile(op_profile: Any) -> str:
    total = max(1, op_profile.total_ticks)
    width = max([len(n) for n in op_profile.op_names] + [8])
    lines = [
        f"per-operator time (timer {op_profile.timer_hz:,} Hz):",
        f"  {'operator':<{width}}  {'ticks':>12}  {'ms':>9}  share",
    ]
    for name, ticks, sec in zip(op_profile.op_names, op_profile.op_ticks, op_profile.seconds, strict=True):
        lines.append(f"  {name:<{width}}  {ticks:>12,}  {sec * 1e3:>9.4f}  {100 * ticks / total:5.1f}%")
    total_ms = op_profile.total_ticks / op_profile.timer_hz * 1e3
    lines.append(f"  {'total':<{width}}  {op_profile.total_ticks:>12,}  {total_ms:>9.4f}")
    return "\n".join(lines)

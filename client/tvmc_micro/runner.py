"""`tvmc run --device micro`: inputs from a file (checked against the model) or filled, one session with the
device through the project's server, outputs, on-device time and per-operator profile."""

from __future__ import annotations

import sys
import time
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
    inputs: list[np.ndarray] | None = None  # what was sent, in the model's input order (first sample)
    counter: Any | None = None  # tvmc_micro.device.counter.Counter: what the timer's ticks count
    samples_outputs: list[dict[str, np.ndarray]] | None = None  # per sample (outputs is the first)
    samples_inputs: list[list[np.ndarray]] | None = None


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


Progress = Callable[[str], None]


def load_samples(
    inputs_meta: Sequence[Mapping[str, Any]],
    path: str | None,
    samples: int | None = None,
    fill_mode: str = "random",
    seed: int | None = None,
) -> list[list[np.ndarray]]:
    """Input samples, each one array per model input: from an .npz (one sample, or a batch of N with a
    leading dimension N), from a directory of .npz files (sorted by name, one sample or batch each), or
    `samples` filled ones (default 1)."""
    if path is None:
        rng = np.random.default_rng(seed)
        return [[_fill(t, fill_mode, rng) for t in inputs_meta] for _ in range(samples or 1)]
    if samples is not None:
        raise TvmcError("--samples and -i cannot be combined", "-i FILE.npz or -i DIR, or --samples N alone")
    target = Path(path)
    if target.is_dir():
        files = sorted(p for p in target.iterdir() if p.suffix == ".npz" and p.is_file())
        if not files:
            raise TvmcError(f"input directory {path} has no .npz files", "put one .npz per sample in it")
        return [sample for f in files for sample in _samples_of(inputs_meta, str(f))]
    return _samples_of(inputs_meta, path)


def _samples_of(inputs_meta: Sequence[Mapping[str, Any]], npz_path: str) -> list[list[np.ndarray]]:
    """One .npz as samples: a batch when every input's array has one more leading dimension than the
    model's input (or a leading N where the model has 1), else one sample (make_inputs' rules)."""
    try:
        with np.load(npz_path, allow_pickle=False) as data:
            given = {name: data[name] for name in data.files}
    except (OSError, ValueError):
        given = {}  # make_inputs says what is wrong with the file
    counts: list[int | None] = []
    for t in inputs_meta:
        array = given.get(t["name"], given.get(t.get("c_name", t["name"])))
        shape = tuple(t["shape"])
        if array is None:
            counts.append(None)
        elif array.ndim == len(shape) + 1 and int(np.prod(array.shape[1:])) == int(np.prod(shape)):
            counts.append(int(array.shape[0]))
        elif shape and shape[0] == 1 and array.ndim == len(shape) and array.shape[1:] == shape[1:]:
            counts.append(int(array.shape[0]) if array.shape[0] != 1 else None)
        else:
            counts.append(None)
    if not counts or any(n is None for n in counts):
        return [make_inputs(inputs_meta, npz_path)]
    if len(set(counts)) != 1:
        raise TvmcError(
            f"{npz_path}: the inputs' batches differ in length ({', '.join(map(str, counts))} samples)",
            "give every input the same number of samples along the leading dimension",
        )
    samples = []
    for n in range(int(counts[0] or 0)):
        sample = []
        for t in inputs_meta:
            array = given.get(t["name"], given.get(t.get("c_name", t["name"])))
            assert array is not None
            sample.append(_conform(array[n].reshape(tuple(t["shape"])), t, f"{npz_path}[{n}]"))
        samples.append(sample)
    return samples


def run_on_device(
    project_dir: Path,
    options: Mapping[str, str],
    input_source: Callable[[dict[str, Any]], Sequence[Sequence[np.ndarray]] | Sequence[np.ndarray]],
    *,
    repeat: int = 1,
    print_time: bool = False,
    profile: bool = False,
    verbose: int = 0,
    platform: str | None = None,
    progress: Progress | None = None,
) -> RunResult:
    """Open a session through the project's server, check the signature, set inputs, run, read outputs.

    `input_source` gets the project's model entry (metadata.json) and returns one array per input, or a
    list of such samples (each is run in turn); it runs before the transport opens, so bad inputs fail
    without touching the device. Timing and profile run on the last sample's inputs: a run consumes its
    inputs (they live in the arena), so they are set again before the profiled run; timed repeats run on
    consumed inputs after the first (docs/timing.md).
    """
    from microtvm_api.client import ServerTransport

    from tvmc_micro.device import DeviceSession, check_signature
    from tvmc_micro.device.counter import describe_counter
    from tvmc_micro.project import check_is_project, launched, project_model

    say = progress or (lambda _msg: None)
    with launched(project_dir, verbose=verbose) as (client, info):
        check_is_project(info, project_dir, platform)
        model = project_model(info, project_dir)
        given = input_source(model)
        batch: list[list[np.ndarray]] = (
            [list(s) for s in given] if given and not isinstance(given[0], np.ndarray) else [list(given)]  # type: ignore[arg-type]
        )
        transport = ServerTransport(client, options)
        timeouts = transport.timeouts
        session = DeviceSession(
            transport,
            reply_timeout_sec=float(timeouts.get("session_start_retry_timeout_sec", 1.0)),
            open_timeout_sec=float(timeouts.get("session_start_timeout_sec", 10.0)),
            run_timeout_sec=max(120.0, float(timeouts.get("session_established_timeout_sec", 0.0))),
            transport_name=f"the {info['platform_name']} transport of {project_dir}",
        )
        all_outputs: list[dict[str, np.ndarray]] = []
        try:
            hello = session.open()
            check_signature(hello, model["signature"], model["name"], str(project_dir))
            device = session.info()
            counter = describe_counter(
                str(info["platform_name"]), project_dir, options, device.timer_hz, device.timer_kind
            )
            started = time.monotonic()
            for n, inputs in enumerate(batch):
                set_inputs(session, inputs)
                session.run()
                outputs = {}
                for index, t in enumerate(model["outputs"]):
                    raw = session.get_output(index)
                    dtype = np.dtype(t["dtype"])
                    outputs[t["name"]] = np.frombuffer(raw, dtype=dtype).reshape(t["shape"]).copy()
                all_outputs.append(outputs)
                if len(batch) > 1 and (n + 1 == len(batch) or time.monotonic() - started > 2.0):
                    say(f"ran sample {n + 1}/{len(batch)}")
                    started = time.monotonic()
            consumed = model.get("io_buffers", "separate") == "arena"
            timing = _time_runs(session, max(1, repeat), say, batch[-1], consumed) if print_time else None
            op_profile = profile_on(session, batch[-1]) if profile else None
        finally:
            session.close()
    return RunResult(model, all_outputs[0], timing, op_profile, device, batch[0], counter, all_outputs, batch)


def set_inputs(session: Any, inputs: Sequence[np.ndarray]) -> None:
    for index, array in enumerate(inputs):
        session.set_input(index, np.ascontiguousarray(array).tobytes())


def profile_on(session: Any, inputs: Sequence[np.ndarray]) -> Any:
    """The per-operator profile of one run on `inputs`: set again first, since the runs before consumed
    them (inputs live in the arena, and a run reuses their bytes, as in TFLite Micro)."""
    set_inputs(session, inputs)
    return session.profile_ops()


def _time_runs(
    session: Any, repeat: int, say: Progress, inputs: Sequence[np.ndarray], consumed: bool = False
) -> Any:
    """`repeat` timed runs, in chunks of about a second each when there are many, with a progress line
    per chunk past two seconds; the chunks' results are merged (sum, min, max).

    `consumed`: the model's inputs live in the arena and each run overwrites them (the default layout), so
    every timed run gets them set again and runs alone — each count is then of the real input, exactly
    repeatable even where a kernel's path depends on the data; the cost is one input upload per run. With
    caller-owned input buffers the device runs a chunk's repeats back to back (docs/timing.md)."""
    from tvmc_micro.device import TimingResult

    set_inputs(session, inputs)
    done, parts = 0, []
    chunk = 1
    started = last_said = time.monotonic()
    while done < repeat:
        if consumed and done:
            set_inputs(session, inputs)
        n = 1 if consumed else min(chunk, repeat - done)
        t0 = time.monotonic()
        parts.append(session.time_runs(n))
        done += n
        took = max(1e-3, time.monotonic() - t0)
        chunk = max(1, min(repeat, int(n / took)))  # about one second per chunk
        if repeat > 1 and time.monotonic() - last_said > 2.0 and done < repeat:
            say(f"timed {done}/{repeat} runs ({time.monotonic() - started:.0f} s)")
            last_said = time.monotonic()
    return TimingResult(
        count=sum(p.count for p in parts),
        total_ticks=sum(p.total_ticks for p in parts),
        min_ticks=min(p.min_ticks for p in parts),
        max_ticks=max(p.max_ticks for p in parts),
        timer_hz=parts[0].timer_hz,
    )


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


def _count_text(counter: Any, ticks: float) -> str:
    value = counter.count(ticks)
    if counter.unit == "seconds":
        return f"{value * 1e3:.4f} ms"
    return f"{value:,.0f} {counter.unit}"


def timing_summary(timing: Any, counter: Any, cpu_freq: float | None) -> dict[str, Any]:
    """Timing as data (the --json `timing` object): ticks, the counter's reading, the estimate if any."""
    from tvmc_micro.device.counter import estimate_ms

    per_run = timing.total_ticks / timing.count
    summary: dict[str, Any] = {
        "runs": timing.count,
        "ticks": {
            "mean": per_run,
            "min": timing.min_ticks,
            "max": timing.max_ticks,
            "total": timing.total_ticks,
        },
        "counter": counter.as_json(),
        "unit": counter.unit,
        "mean": counter.count(per_run),
        "min": counter.count(timing.min_ticks),
        "max": counter.count(timing.max_ticks),
        "estimate": None,
    }
    estimate = estimate_ms(counter, counter.count(per_run), cpu_freq)
    if estimate is not None:
        ms, clock = estimate
        summary["estimate"] = {
            "ms": ms,
            "clock_hz": clock,
            "from": "--cpu-freq" if cpu_freq is not None else "board clock_hz",
            "assumes": "1 instruction per cycle"
            if counter.unit == "instructions"
            else "cycles at this clock",
        }
    return summary


def format_timing(timing: Any, counter: Any, cpu_freq: float | None = None) -> str:
    s = timing_summary(timing, counter, cpu_freq)
    # The first line's wording is stable (scripts and tests match it); the unit follows it.
    lines = [
        f"on-device time over {timing.count} run(s) (timer {timing.timer_hz:,} Hz), "
        f"{'measured as time' if counter.unit == 'seconds' else 'counted in ' + counter.unit}:"
    ]
    lines.append(
        f"  mean {_count_text(counter, s['ticks']['mean'])}   min {_count_text(counter, timing.min_ticks)}   "
        f"max {_count_text(counter, timing.max_ticks)}   ({s['ticks']['mean']:,.0f} ticks per run)"
    )
    exact = "exact" if counter.exact else "measured"
    lines.append(f"  counter: {counter.unit}, {exact}: {counter.basis}; {counter.resolution()}")
    est = s["estimate"]
    if est is not None:
        lines.append(
            f"  estimate: ≈ {est['ms']:.3f} ms at {est['clock_hz'] / 1e6:g} MHz "
            f"(ESTIMATE from {est['from']}, "
            f"assuming {est['assumes']})"
        )
    elif counter.unit != "seconds":
        lines.append("  (give --cpu-freq HZ, e.g. --cpu-freq 80e6, for an estimated time on a real part)")
    return "\n".join(lines)


def _source_text(op: Mapping[str, Any], fmt: str) -> str:
    srcs = op.get("source_ops") or []
    if not srcs:
        return f"({op.get('name', '?')})"
    if fmt == "onnx":
        return ", ".join(f"{s['name']}" for s in srcs)
    return ", ".join(f"{s['type']}#{s['index']}" for s in srcs)


def profile_rows(op_profile: Any, model: Mapping[str, Any], counter: Any) -> dict[str, Any]:
    """The profile as data (the --json `profile` object): the device's ticks per operator joined with the
    MLF's static facts (source operators, output shape, MACs, weights, live arena)."""
    meta_ops = list(model.get("operators") or [])
    total_ticks = max(1, op_profile.total_ticks)
    rows = []
    for k, (name, ticks) in enumerate(zip(op_profile.op_names, op_profile.op_ticks, strict=True)):
        meta = meta_ops[k] if k < len(meta_ops) else {}
        count = counter.count(ticks)
        macs = meta.get("macs")
        rows.append(
            {
                "index": k,
                "kernel": name,
                "source_ops": meta.get("source_ops", []),
                "output_shape": meta.get("output_shape"),
                "macs": macs,
                "ticks": ticks,
                "count": count,
                "share": ticks / total_ticks,
                "per_mac": (count / macs) if macs else None,
                "weight_bytes": meta.get("weight_bytes"),
                "live_arena_bytes": meta.get("live_arena_bytes"),
            }
        )
    total_macs = sum(int(r["macs"] or 0) for r in rows)
    total = counter.count(op_profile.total_ticks)
    return {
        "unit": counter.unit,
        "counter": counter.as_json(),
        "operators": rows,
        "total": {
            "ticks": op_profile.total_ticks,
            "count": total,
            "macs": total_macs,
            "per_mac": total / total_macs if total_macs else None,
            "weight_bytes": int(model.get("memory", {}).get("constants_bytes", 0)),
            "peak_live_arena_bytes": max([int(r["live_arena_bytes"] or 0) for r in rows] + [0]),
        },
    }


def format_profile(op_profile: Any, model: Mapping[str, Any], counter: Any) -> str:
    data = profile_rows(op_profile, model, counter)
    fmt = str((model.get("source") or {}).get("format", "tflite"))
    unit = {"instructions": "instr", "cycles": "cycles", "seconds": "µs"}[counter.unit]
    scale = 1e6 if counter.unit == "seconds" else 1.0
    per = {"instructions": "instr/MAC", "cycles": "cyc/MAC", "seconds": "ns/MAC"}[counter.unit]
    per_scale = 1e9 if counter.unit == "seconds" else 1.0
    meta_ops = list(model.get("operators") or [])
    srcs = [
        _source_text(meta_ops[r["index"]] if r["index"] < len(meta_ops) else {"name": r["kernel"]}, fmt)
        for r in data["operators"]
    ]
    sw = min(40, max([len(x) for x in srcs] + [10]))
    lines = [
        f"per-operator {'time' if counter.unit == 'seconds' else counter.unit} "
        f"({'exact' if counter.exact else 'measured'}: {counter.basis}):",
        f"  {'#':>3}  {'source operators':<{sw}}  {'output':<16} {'MACs':>11} {unit:>12}  share "
        f"{per:>9} {'weights B':>10} {'arena B':>9}",
    ]
    for r, src in zip(data["operators"], srcs, strict=True):
        shape = "x".join(map(str, r["output_shape"])) if r["output_shape"] else "?"
        macs = f"{r['macs']:,}" if r["macs"] is not None else "?"
        pm = f"{r['per_mac'] * per_scale:.2f}" if r["per_mac"] is not None else "-"
        src = src if len(src) <= sw else src[: sw - 3] + "..."
        lines.append(
            f"  {r['index']:>3}  {src:<{sw}}  {shape:<16} {macs:>11} {r['count'] * scale:>12,.0f} "
            f"{100 * r['share']:5.1f}% {pm:>9} {r['weight_bytes'] or 0:>10,} {r['live_arena_bytes'] or 0:>9,}"
        )
    t = data["total"]
    pm = f"{t['per_mac'] * per_scale:.2f}" if t["per_mac"] is not None else "-"
    lines.append(
        f"  {'':>3}  {'total':<{sw}}  {'':<16} {t['macs']:>11,} {t['count'] * scale:>12,.0f} 100.0% {pm:>9} "
        f"{t['weight_bytes']:>10,} {t['peak_live_arena_bytes']:>9,} (peak)"
    )
    return "\n".join(lines)

"""`tvmc run --validate MODEL`: the inputs the device ran, through the model's reference interpreter, and
the device's outputs compared with its outputs.

The reference is the interpreter the compiled arithmetic promises to match:
- TFLite: TFLite Micro (`tflite-micro`) for every model it runs — int8 (bit for bit on the integer path,
  float islands included), float, or int8 through float with --allow-float-fallback; LiteRT
  (`ai-edge-litert`) only when TFLite Micro refuses the model, which the verdict says;
- ONNX: onnxruntime (default session options: the graph optimisations its users get).
The tolerance says what "matches" means for each (see `default_tolerance`); `--validate-tolerance`
overrides it.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tvmc_micro.errors import TvmcError

_INSTALL = {
    "tflite-micro": "pip install tflite-micro",
    "LiteRT": "pip install ai-edge-litert",
    "onnxruntime": "pip install onnxruntime",
}


@dataclass
class OutputCheck:
    name: str
    dtype: str
    size: int
    tolerance: float  # what was applied (LSB, or relative for float outputs)
    mismatched: int  # elements whose difference exceeds it
    max_abs_diff: float
    max_abs_ref: float
    max_rel_diff: float = 0.0  # max |diff| / max(|ref|, tiny) over elements
    rmse: float = 0.0
    mae: float = 0.0
    cosine: float = 1.0  # cosine similarity of device and reference (1.0 when both are all zero)
    l2r: float = 0.0  # relative L2 error ||device - ref|| / ||ref|| (0 when equal)
    top1_agree: bool = True  # argmax of device and reference outputs agree
    first_mismatches: list[int] = field(default_factory=list)  # flat indices of the first differing values

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dtype": self.dtype,
            "size": self.size,
            "tolerance": self.tolerance,
            "mismatched": self.mismatched,
            "first_mismatches": self.first_mismatches,
            "max_abs_diff": self.max_abs_diff,
            "max_rel_diff": self.max_rel_diff,
            "max_abs_ref": self.max_abs_ref,
            "rmse": self.rmse,
            "mae": self.mae,
            "cosine": self.cosine,
            "l2r": self.l2r,
            "top1_agree": self.top1_agree,
        }


@dataclass
class Validation:
    reference: str
    checks: list[OutputCheck]

    @property
    def ok(self) -> bool:
        return all(c.mismatched == 0 for c in self.checks)


def default_tolerance(model_format: str, compute_path: str, dtype: str) -> float:
    """Largest accepted |device - reference| per element (in LSB for integer outputs)."""
    if dtype.startswith("float"):
        # Relative to the output's magnitude (applied in `compare`): kernels may sum in another order.
        return 1e-5
    if compute_path == "integer" and model_format == "tflite":
        return 0.0  # same integer arithmetic as TFLite Micro
    # onnxruntime requantises in float and rounds a few near-ties otherwise; the float (QDQ) path can move
    # a value across one rounding boundary per requantisation.
    return 1.0 if compute_path == "integer" else 3.0


def reference_name(model_format: str, compute_path: str) -> str:
    """The first-choice reference: onnxruntime for ONNX, TFLite Micro for every TFLite model (whatever
    its compute path); `reference_outputs` falls back to LiteRT when TFLite Micro refuses the model."""
    return "onnxruntime" if model_format == "onnx" else "tflite-micro"


def model_format_of(path: Path) -> str:
    """ "tflite" or "onnx" for an existing model file; a TvmcError for anything else."""
    if not path.is_file():
        raise TvmcError(f"--validate {path}: no such file", "pass the model file you compiled")
    with path.open("rb") as f:
        head = f.read(8)
    if head[4:8] == b"TFL3":
        return "tflite"
    if path.suffix.lower() == ".onnx":
        return "onnx"
    raise TvmcError(
        f"--validate {path}: not a TFLite flatbuffer and not an .onnx file",
        "pass the model file the project's MLF was compiled from",
    )


def _import_reference(name: str) -> Any:
    try:
        if name == "tflite-micro":
            from tflite_micro.python.tflite_micro import runtime

            return runtime
        if name == "LiteRT":
            from ai_edge_litert import interpreter

            return interpreter
        import onnxruntime

        return onnxruntime
    except ImportError:
        raise TvmcError(
            f"--validate needs {name}, the reference interpreter for this model, and it is not installed",
            _INSTALL[name],
        ) from None


def reference_outputs(
    model_path: Path,
    model_format: str,
    compute_path: str,
    inputs: Sequence[np.ndarray],
    model: Mapping[str, Any],
) -> tuple[str, list[np.ndarray]]:
    """(reference name, its outputs in the model's output order) for one run on `inputs`.

    TFLite: TFLite Micro whenever it runs the model; LiteRT when it refuses it (an operator or type it
    has no kernel for), said on stderr and in the name ("LiteRT (TFLite Micro refused ...)"). The integer
    path promises TFLite Micro's arithmetic, so there a refusal is an error, not a fallback."""
    name = reference_name(model_format, compute_path)
    if name != "tflite-micro":
        return name, _run_other(name, model_path, inputs)
    runtime = _import_reference(name)
    try:
        return name, _run_tflm(runtime, model_path, inputs, model)
    except TvmcError:
        raise
    except Exception as err:  # TFLite Micro refused the model, or the inputs do not fit it
        reason = _first_line(err)
        if compute_path == "integer":
            raise TvmcError(
                f"tflite-micro could not run {model_path.name}: {reason}", _mismatch_hint()
            ) from None
    print(
        f"note: TFLite Micro cannot run {model_path.name} ({reason}); validating against LiteRT",
        file=sys.stderr,
    )
    return f"LiteRT (TFLite Micro refused the model: {reason})", _run_other("LiteRT", model_path, inputs)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:200] if text else type(err).__name__


def _run_tflm(
    runtime: Any, model_path: Path, inputs: Sequence[np.ndarray], model: Mapping[str, Any]
) -> list[np.ndarray]:
    import tflite

    data = model_path.read_bytes()
    sub = tflite.Model.GetRootAsModel(data, 0).Subgraphs(0)
    shapes = [list(sub.Tensors(sub.Inputs(i)).ShapeAsNumpy()) for i in range(sub.InputsLength())]
    _check_inputs(shapes, inputs, model_path)
    # Generous arena: the reference runs on the host; TFLM fails cleanly if even this is short.
    interp = runtime.Interpreter.from_bytes(data, arena_size=max(16 << 20, 8 * len(data)))
    for i, array in enumerate(inputs):
        interp.set_input(array, i)
    interp.invoke()
    return [np.array(interp.get_output(j)) for j in range(len(model["outputs"]))]


def _run_other(name: str, model_path: Path, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """LiteRT or onnxruntime on the inputs."""
    ref = _import_reference(name)
    try:
        if name == "LiteRT":
            lite = ref.Interpreter(model_path=str(model_path))
            lite.allocate_tensors()
            details = lite.get_input_details()
            _check_inputs([list(d["shape"]) for d in details], inputs, model_path)
            for detail, array in zip(details, inputs, strict=True):
                lite.set_tensor(detail["index"], array.reshape(detail["shape"]))
            lite.invoke()
            return [lite.get_tensor(d["index"]).copy() for d in lite.get_output_details()]
        sess = ref.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
        graph_inputs = sess.get_inputs()
        _check_inputs([list(gi.shape) for gi in graph_inputs], inputs, model_path)
        feed = {gi.name: array for gi, array in zip(graph_inputs, inputs, strict=True)}
        return [np.asarray(o) for o in sess.run(None, feed)]
    except TvmcError:
        raise
    except Exception as err:  # each interpreter raises its own types (shape or dtype mismatches)
        raise TvmcError(f"{name} could not run {model_path.name}: {err}", _mismatch_hint()) from None


def _check_inputs(shapes: list[list[Any]], inputs: Sequence[np.ndarray], path: Path) -> None:
    """The reference model must take what the device took: as many inputs, each as many elements
    (symbolic ONNX dimensions are not compared)."""
    if len(shapes) != len(inputs):
        raise TvmcError(
            f"--validate {path}: it has {len(shapes)} input(s), the project's model {len(inputs)}",
            _mismatch_hint(),
        )
    for k, (shape, array) in enumerate(zip(shapes, inputs, strict=True)):
        dims = [int(d) for d in shape if isinstance(d, (int, np.integer))]
        if len(dims) == len(shape) and int(np.prod(dims)) != array.size:
            raise TvmcError(
                f"--validate {path}: its input #{k} has shape {dims}, the project's model "
                f"{list(array.shape)}",
                _mismatch_hint(),
            )


def _mismatch_hint() -> str:
    return "pass the model file the project's MLF was compiled from (same inputs, shapes and dtypes)"


def compare(
    got: Mapping[str, np.ndarray],
    want: Sequence[np.ndarray],
    model: Mapping[str, Any],
    model_format: str,
    tolerance: float | None,
) -> list[OutputCheck]:
    if len(want) != len(model["outputs"]):
        raise TvmcError(
            f"the reference model has {len(want)} output(s), the project's model {len(model['outputs'])}",
            _mismatch_hint(),
        )
    checks = []
    for meta, ref in zip(model["outputs"], want, strict=True):
        out = got[meta["name"]]
        if ref.size != out.size:
            raise TvmcError(
                f"output {meta['name']!r}: the reference gives {ref.size} values, the device {out.size}",
                _mismatch_hint(),
            )
        ref = ref.reshape(out.shape)
        dtype = str(out.dtype)
        tol = tolerance
        if tol is None:
            tol = default_tolerance(model_format, str(model.get("compute_path", "")), dtype)
        if dtype.startswith("float"):
            diff = np.abs(out.astype(np.float64) - ref.astype(np.float64))
            scale = max(1.0, float(np.max(np.abs(ref)))) if ref.size else 1.0
            bad_mask = ~(diff <= tol * scale)  # NaN counts as a mismatch
        else:
            diff = np.abs(out.astype(np.int64) - ref.astype(np.int64))
            bad_mask = diff > tol
        checks.append(_metrics(meta["name"], dtype, out, ref, diff, tol, bad_mask))
    return checks


MAX_LISTED = 10  # differing indices listed per output


def _metrics(
    name: str, dtype: str, out: np.ndarray, ref: np.ndarray, diff: np.ndarray, tol: float, bad: np.ndarray
) -> OutputCheck:
    """Every comparison metric of one output (in real units for the dtype's values, LSB for integers)."""
    a = out.astype(np.float64).reshape(-1)
    b = ref.astype(np.float64).reshape(-1)
    d = diff.reshape(-1)
    n = max(1, a.size)
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    nd = float(np.linalg.norm(a - b)) if a.size else 0.0
    if na == 0.0 and nb == 0.0:
        cosine = 1.0
    elif na == 0.0 or nb == 0.0:
        cosine = 0.0
    else:
        cosine = float(np.dot(a, b) / (na * nb))
    rel = d / np.maximum(np.abs(b), np.finfo(np.float64).tiny) if a.size else d
    rel = np.where(d == 0, 0.0, rel)
    with np.errstate(invalid="ignore"):
        return OutputCheck(
            name=name,
            dtype=dtype,
            size=int(out.size),
            tolerance=tol,
            mismatched=int(np.count_nonzero(bad)),
            max_abs_diff=float(np.max(d)) if d.size else 0.0,
            max_abs_ref=float(np.max(np.abs(b))) if b.size else 0.0,
            max_rel_diff=float(np.max(rel)) if rel.size else 0.0,
            rmse=float(np.sqrt(np.sum(d * d) / n)),
            mae=float(np.sum(d) / n),
            cosine=cosine,
            l2r=nd / nb if nb else (0.0 if nd == 0.0 else float("inf")),
            top1_agree=bool(a.size == 0 or int(np.argmax(a)) == int(np.argmax(b))),
            first_mismatches=[int(i) for i in np.flatnonzero(bad.reshape(-1))[:MAX_LISTED]],
        )


def validate(
    model_path: str,
    inputs: Sequence[np.ndarray],
    outputs: Mapping[str, np.ndarray],
    model: Mapping[str, Any],
    tolerance: float | None = None,
) -> Validation:
    path = Path(model_path)
    fmt = model_format_of(path)
    source = model.get("source") or {}
    compiled_from = source.get("sha256")
    if compiled_from and hashlib.sha256(path.read_bytes()).hexdigest() != compiled_from:
        # Not fatal (a re-export of the same model differs in bytes), but a mismatch below then most likely
        # means the wrong file rather than a wrong device.
        print(
            f"note: {path.name} is not the file the project was compiled from "
            f"({source.get('file', '?')}, sha256 {compiled_from[:12]}...)",
            file=sys.stderr,
        )
    name, want = reference_outputs(path, fmt, str(model.get("compute_path", "")), inputs, model)
    return Validation(name, compare(outputs, want, model, fmt, tolerance))


def format_validation(v: Validation) -> str:
    lines = [f"validation against {v.reference}:"]
    for c in v.checks:
        if c.max_abs_diff == 0:
            verdict = "bit-exact"
        elif c.mismatched == 0:
            verdict = f"within tolerance (max |diff| {c.max_abs_diff:g})"
        else:
            shown = ", ".join(map(str, c.first_mismatches))
            more = ", ..." if c.mismatched > len(c.first_mismatches) else ""
            verdict = (
                f"MISMATCH: {c.mismatched} of {c.size} values off (max |diff| {c.max_abs_diff:g}) "
                f"at flat index {shown}{more}"
            )
        lines.append(f"  output {c.name!r} {c.dtype}[{c.size}]: {verdict}")
        lines.append("    " + _metric_line(c))
    lines.append("PASSED" if v.ok else "FAILED")
    return "\n".join(lines)


def _metric_line(c: OutputCheck) -> str:
    return (
        f"max abs {c.max_abs_diff:.6g}  max rel {c.max_rel_diff:.3g}  rmse {c.rmse:.6g}  mae {c.mae:.6g}  "
        f"cosine {c.cosine:.6f}  l2r {c.l2r:.3g}  top-1 {'agrees' if c.top1_agree else 'DIFFERS'}"
    )


@dataclass
class Aggregate:
    """Validation over several samples: per output, the metrics over all of them."""

    reference: str
    samples: int
    per_sample: list[Validation]

    @property
    def ok(self) -> bool:
        return all(v.ok for v in self.per_sample)

    def outputs(self) -> list[dict[str, Any]]:
        rows = []
        for k, first in enumerate(self.per_sample[0].checks if self.per_sample else []):
            checks = [v.checks[k] for v in self.per_sample]
            failing = [n for n, c in enumerate(checks) if c.mismatched]
            rows.append(
                {
                    "name": first.name,
                    "dtype": first.dtype,
                    "size": first.size,
                    "tolerance": first.tolerance,
                    "samples": len(checks),
                    "samples_failing": len(failing),
                    "first_failing_samples": failing[:MAX_LISTED],
                    "mismatched": sum(c.mismatched for c in checks),
                    "max_abs_diff": max(c.max_abs_diff for c in checks),
                    "max_rel_diff": max(c.max_rel_diff for c in checks),
                    "rmse": float(np.sqrt(np.mean([c.rmse**2 for c in checks]))),
                    "mae": float(np.mean([c.mae for c in checks])),
                    "cosine_min": min(c.cosine for c in checks),
                    "cosine_mean": float(np.mean([c.cosine for c in checks])),
                    "l2r_max": max(c.l2r for c in checks),
                    "top1_agreement": sum(c.top1_agree for c in checks) / len(checks),
                }
            )
        return rows

    def as_json(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "samples": self.samples,
            "passed": self.ok,
            "outputs": self.outputs(),
            "per_sample": [
                {"sample": n, "passed": v.ok, "outputs": [c.as_json() for c in v.checks]}
                for n, v in enumerate(self.per_sample)
            ],
        }


def format_aggregate(agg: Aggregate) -> str:
    if agg.samples == 1:
        return format_validation(agg.per_sample[0])
    lines = [f"validation against {agg.reference} over {agg.samples} samples:"]
    for o in agg.outputs():
        verdict = (
            "all within tolerance"
            if not o["samples_failing"]
            else (
                f"MISMATCH in {o['samples_failing']} of {o['samples']} samples "
                f"(first: {', '.join(map(str, o['first_failing_samples']))}); "
                f"{o['mismatched']} values off in all"
            )
        )
        lines.append(f"  output {o['name']!r} {o['dtype']}[{o['size']}]: {verdict}")
        lines.append(
            f"    max abs {o['max_abs_diff']:.6g}  max rel {o['max_rel_diff']:.3g}  rmse {o['rmse']:.6g}  "
            f"mae {o['mae']:.6g}  cosine min {o['cosine_min']:.6f} mean {o['cosine_mean']:.6f}  "
            f"l2r max {o['l2r_max']:.3g}  top-1 agreement {100 * o['top1_agreement']:.1f}%"
        )
    for n, v in enumerate(agg.per_sample):
        for c in v.checks:
            if c.mismatched:
                shown = ", ".join(map(str, c.first_mismatches))
                lines.append(f"  sample {n}: output {c.name!r}: {c.mismatched} of {c.size} off at {shown}")
                break
        if n >= MAX_LISTED:
            break
    lines.append("PASSED" if agg.ok else "FAILED")
    return "\n".join(lines)

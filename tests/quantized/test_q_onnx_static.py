"""The shared float ONNX models quantized here with onnxruntime.quantization.quantize_static (random
calibration), compiled on the integer path and compared with onnxruntime through the MLF harness.

ResNet runs whole (ending in QLinearSoftmax) and cut before its Softmax (its logits: a comparison that a
saturating Softmax cannot hide).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from test_q_onnx import N_INPUTS, _output_scales

from tests.compiler.compiler_harness import build, extract
from tests.conftest import model_path

pytest.importorskip("onnxruntime.quantization")
pytest.importorskip("tvm")


class _RandomReader:
    """A calibration reader over uniform random inputs (no data set needed)."""

    def __init__(self, name: str, shape: list[int], n: int = 8) -> None:
        rng = np.random.default_rng(0)
        self._it = iter([{name: rng.uniform(-1, 1, shape).astype(np.float32)} for _ in range(n)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)


def _quantize(src: Path, dst: Path, fmt: str, per_channel: bool, activation: str) -> Path:
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    inp = onnx.load(str(src)).graph.input[0]
    shape = [d.dim_value or 1 for d in inp.type.tensor_type.shape.dim]
    reader = _RandomReader(inp.name, shape)
    CalibrationDataReader.register(_RandomReader)
    quantize_static(
        str(src),
        str(dst),
        reader,  # type: ignore[arg-type]
        quant_format=QuantFormat.QDQ if fmt == "qdq" else QuantFormat.QOperator,
        per_channel=per_channel,
        activation_type=QuantType.QInt8 if activation == "int8" else QuantType.QUInt8,
        weight_type=QuantType.QInt8,
    )
    return dst


def _resnet_logits(dst: Path) -> Path:
    import onnx

    src = model_path("pretrainedResnet.onnx")
    m = onnx.load(str(src))
    softmax = next(n for n in m.graph.node if n.op_type == "Softmax")
    onnx.utils.extract_model(str(src), str(dst), [m.graph.input[0].name], [softmax.input[0]])
    return dst


# name: (float model, format, per-channel, activation type, max LSB allowed)
CASES = {
    "hello_qdq_uint8": ("hello", "qdq", False, "uint8", 0),
    "hello_qop_uint8": ("hello", "qop", False, "uint8", 0),
    "hello_qop_int8_pc": ("hello", "qop", True, "int8", 0),
    "resnet_qop_uint8": ("resnet", "qop", False, "uint8", 0),
    "resnet_qop_int8_pc": ("resnet", "qop", True, "int8", 0),
    # Whole model, ending in QLinearSoftmax (ORT's MLAS softmax rounds rare near-ties differently).
    "resnet_full_qop_int8_pc": ("resnet_full", "qop", True, "int8", 1),
    "resnet_full_qdq_uint8": ("resnet_full", "qdq", False, "uint8", 1),
    # ORT fuses this QDQ graph into channels_last QLinear kernels; its 8x8 average pool over the whole
    # image is MLAS's global average pool (integer sum), which the importer now reproduces.
    "resnet_qdq_uint8": ("resnet", "qdq", False, "uint8", 0),
}


@pytest.fixture(scope="module")
def static_models(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], tuple[bytes, object]]:
    from tvmc_micro.compiler import compile_model

    root = tmp_path_factory.mktemp("qstatic")
    cache: dict[str, tuple[bytes, object]] = {}

    def get(name: str) -> tuple[bytes, object]:
        if name not in cache:
            base, fmt, pc, act, _ = CASES[name]
            hello = model_path("hello_world_float.onnx")
            if base == "resnet_full":
                src = model_path("pretrainedResnet.onnx")
            else:
                src = hello if base == "hello" else _resnet_logits(root / "rl.onnx")
            q = _quantize(src, root / f"{name}.onnx", fmt, pc, act)
            compile_model(q, root / f"{name}.tar", model_name=name)
            cache[name] = (q.read_bytes(), build(extract(root / f"{name}.tar", root / name)))
        return cache[name]

    return get


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_quantize_static_models_against_onnxruntime(static_models, tmp_path, name) -> None:
    import onnxruntime as ort

    model, built = static_models(name)
    assert built.model["compute_path"] == "integer"  # type: ignore[attr-defined]
    so = ort.SessionOptions()
    if CASES[name][1] == "qop":
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    spec = built.model["inputs"][0]  # type: ignore[attr-defined]
    rng = np.random.default_rng(3)
    samples = [[rng.uniform(-1, 1, size=spec["shape"]).astype(np.float32)] for _ in range(N_INPUTS)]
    ours = built.run(samples, tmp_path)  # type: ignore[attr-defined]
    scale = _output_scales(model)[0]
    worst, differing = 0.0, 0
    for s, o in zip(samples, ours, strict=True):
        ref = sess.run(None, {sess.get_inputs()[0].name: s[0]})[0]
        lsb = np.rint(np.abs(ref.astype(np.float64) - o[0]) / scale)
        worst, differing = max(worst, float(lsb.max())), differing + int(np.count_nonzero(lsb))
    print(f"{name}: max {worst:.0f} LSB, {differing} differing values in {N_INPUTS} inputs")
    assert worst <= CASES[name][4]

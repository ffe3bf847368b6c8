"""Quantized ONNX models (QDQ and QLinear*, int8 and uint8) on the integer path, against onnxruntime.

Each model is built here with onnx.helper (deterministic weights), compiled with `compile_model` to an
MLF, built with gcc against the generic harness of tests/compiler, and run on random inputs. The
reference is onnxruntime's CPU provider: QDQ models at its default optimisation level (it fuses each
DequantizeLinear -> op -> QuantizeLinear group into its integer QLinear kernel; with ORT_DISABLE_ALL it
would run the float op instead), QLinear models at ORT_DISABLE_ALL (the kernels as written).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from onnx_builder import QNet

from tests.compiler.compiler_harness import BuiltModel, build, extract

pytest.importorskip("onnxruntime")
pytest.importorskip("tvm")

N_INPUTS = 60


def conv_net(seed: int, dtype: str, qdq: bool) -> bytes:
    """conv+relu (per-channel), depthwise (group) conv, 1x1 conv (per-tensor), residual add, average
    pool with padding, global average pool, flatten, fully connected."""
    net = QNet(seed, dtype, qdq)
    x = net.input((1, 4, 12, 10))
    c1 = net.conv(x, 8, 3, pad=1, relu=qdq)
    dw = net.conv(c1, 8, 3, stride=2, pad=1, group=8)
    pw = net.conv(dw, 8, 1, per_channel=False)
    res = net.add(dw, pw)
    pool = net.avg_pool(res, 3, 2, pad=1)
    gap = net.global_avg_pool(res)
    fc = net.gemm(net.flatten(gap) if qdq else _reshape_qlinear(net, gap), 5)
    return net.finish([pool, fc], dequantize=qdq)


def _reshape_qlinear(net: QNet, x: str) -> str:
    """QLinear models flatten with a plain Reshape on the integer tensor (no DequantizeLinear)."""
    n, c, _, _ = net.shape[x]
    out = net.node("Reshape", [x, net.const("shape", np.array([n, c], np.int64))])
    net.q[out], net.shape[out] = net.q[x], (n, c)
    return out


def ds_cnn(seed: int) -> bytes:
    """A KWS-like DS-CNN (QDQ int8): conv 10x4-ish, two depthwise-separable blocks, pool, classifier."""
    net = QNet(seed, "int8", True)
    x = net.input((1, 1, 49, 10))
    h = net.conv(x, 16, 3, stride=2, pad=1, relu=True)
    for _ in range(2):
        h = net.conv(h, 16, 3, pad=1, group=16, relu=True)
        h = net.conv(h, 16, 1, relu=True)
    h = net.global_avg_pool(h)
    return net.finish([net.gemm(net.flatten(h), 12)])


def autoencoder(seed: int, dtype: str) -> bytes:
    """MLPerf-Tiny-anomaly-detection-like dense autoencoder (outputs do not saturate)."""
    net = QNet(seed, dtype, True)
    h = net.input((1, 64))
    for units in (32, 8, 32, 64):
        h = net.gemm(h, units, per_channel=units == 8)
    return net.finish([h])


def misc_net(seed: int, dtype: str, qdq: bool) -> bytes:
    """max pool, concat of differently quantised inputs, sigmoid."""
    net = QNet(seed, dtype, qdq)
    x = net.input((1, 3, 8, 8))
    a = net.conv(x, 4, 3, pad=1)
    b = net.conv(x, 6, 1)
    cat = net.concat([a, b], axis=1)
    outs = [net.sigmoid(cat)]
    if qdq:
        outs.append(net.max_pool(cat, 2, 2))
    return net.finish(outs, dequantize=True)


MODELS: dict[str, tuple[Callable[[], bytes], bool]] = {
    # name: (builder, is_qdq)
    "conv_qdq_int8": (lambda: conv_net(1, "int8", True), True),
    "conv_qdq_uint8": (lambda: conv_net(2, "uint8", True), True),
    "conv_qlinear_int8": (lambda: conv_net(3, "int8", False), False),
    "conv_qlinear_uint8": (lambda: conv_net(4, "uint8", False), False),
    "ds_cnn_qdq_int8": (lambda: ds_cnn(5), True),
    "autoencoder_qdq_uint8": (lambda: autoencoder(6, "uint8"), True),
    "autoencoder_qdq_int8": (lambda: autoencoder(7, "int8"), True),
    "misc_qdq_int8": (lambda: misc_net(8, "int8", True), True),
    "misc_qlinear_uint8": (lambda: misc_net(9, "uint8", False), False),
}


def ort_session(model: bytes, qdq: bool) -> object:
    import onnxruntime as ort

    so = ort.SessionOptions()
    if not qdq:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def compiled_onnx(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], tuple[bytes, BuiltModel]]:
    from tvmc_micro.compiler import compile_model

    root = tmp_path_factory.mktemp("qonnx")
    cache: dict[str, tuple[bytes, BuiltModel]] = {}

    def get(name: str) -> tuple[bytes, BuiltModel]:
        if name not in cache:
            model = MODELS[name][0]()
            src = root / f"{name}.onnx"
            src.write_bytes(model)
            compile_model(src, root / f"{name}.tar", model_name=name)
            cache[name] = (model, build(extract(root / f"{name}.tar", root / name)))
        return cache[name]

    return get


def lsb_distance(model: bytes, built: BuiltModel, qdq: bool, workdir: Path, seed: int) -> list[int]:
    """Max distance per output in LSB (of the output's quantisation) over N_INPUTS random inputs."""
    sess = ort_session(model, qdq)
    rng = np.random.default_rng(seed)
    spec = built.model["inputs"][0]
    samples = [[rng.uniform(-4, 4, size=spec["shape"]).astype(np.float32)] for _ in range(N_INPUTS)]
    ours = built.run(samples, workdir)
    worst = [0] * len(built.model["outputs"])
    names = [o.name for o in sess.get_outputs()]  # type: ignore[attr-defined]
    scales = _output_scales(model)
    for s, o in zip(samples, ours, strict=True):
        ref = sess.run(names, {sess.get_inputs()[0].name: s[0]})  # type: ignore[attr-defined]
        for k, (r, m) in enumerate(zip(ref, o, strict=True)):
            assert r.shape == m.shape and r.dtype == m.dtype
            if r.dtype == np.float32:
                diff = np.abs(np.rint((r.astype(np.float64) - m) / scales[k]))
            else:
                diff = np.abs(r.astype(np.int64) - m.astype(np.int64))
            worst[k] = max(worst[k], int(diff.max()))
    return worst


def _output_scales(model: bytes) -> list[float]:
    import onnx
    from onnx import numpy_helper

    m = onnx.load_from_string(model)
    inits = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    producers = {n.output[0]: n for n in m.graph.node}
    scales = []
    for o in m.graph.output:
        node = producers[o.name]
        scales.append(float(inits[node.input[1]]) if node.op_type == "DequantizeLinear" else 1.0)
    return scales


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MODELS))
def test_bit_exact_against_onnxruntime(compiled_onnx, tmp_path, name) -> None:
    model, built = compiled_onnx(name)
    assert built.model["compute_path"] == "integer"
    worst = lsb_distance(model, built, MODELS[name][1], tmp_path, seed=17)
    print(f"{name}: max LSB per output {worst}")
    assert worst == [0] * len(worst)

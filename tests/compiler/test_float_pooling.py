"""Float MaxPool (no shared model has one) through the C backend: a small CNN with a 2×2 and a padded
3×3 max pool, against onnxruntime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from compiler_harness import build, extract
from onnx import TensorProto, helper, numpy_helper
from test_float_models import REL_TOL, _onnxruntime


def _cnn(path: Path) -> None:
    rng = np.random.default_rng(11)
    w = rng.normal(0, 0.4, (6, 3, 3, 3)).astype(np.float32)
    b = rng.normal(0, 0.1, (6,)).astype(np.float32)
    fc = rng.normal(0, 0.3, (6 * 2 * 2, 5)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("MaxPool", ["c"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("MaxPool", ["p1"], ["p2"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Flatten", ["p2"], ["f"]),
        helper.make_node("MatMul", ["f", "fc"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "maxpool_cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])],
        [numpy_helper.from_array(a, n) for a, n in ((w, "w"), (b, "b"), (fc, "fc"))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)


@pytest.mark.slow
def test_float_max_pools_match_onnxruntime(tmp_path: Path) -> None:
    from tvmc_micro.compiler import compile_model

    source = tmp_path / "maxpool_cnn.onnx"
    _cnn(source)
    compile_model(source, tmp_path / "m.tar")
    built = build(extract(tmp_path / "m.tar", tmp_path / "m"))
    rng = np.random.default_rng(0)
    samples = [[rng.uniform(-1, 1, (1, 3, 8, 8)).astype(np.float32)] for _ in range(10)]
    got = built.run(samples, tmp_path)
    want = _onnxruntime(source, samples)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g[0], w[0], rtol=REL_TOL, atol=1e-6)

"""Issue 18's float crashes: ONNX Softplus/Abs/Softsign (tirx.fabs), ONNX PReLU with per-channel slopes,
TFLite TRANSPOSE_CONV (NHWC conv2d_transpose), sparse TFLite weights (DENSIFY). Each compiles a small
model, runs it under the poisoning harness and compares with onnxruntime / LiteRT within 1e-5."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from compiler_harness import build, extract
from onnx import TensorProto, helper, numpy_helper
from test_float_models import REL_TOL, _litert, _onnxruntime

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "quantized"))
import tflite_builder as tb
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema


def _compile_and_compare(
    source: Path, tmp_path: Path, reference: str, low: float = -3.0, high: float = 3.0
) -> None:
    from tvmc_micro.compiler import compile_model

    compile_model(source, tmp_path / "m.tar")
    built = build(extract(tmp_path / "m.tar", tmp_path / "m"))
    rng = np.random.default_rng(4)
    samples = [
        [rng.uniform(low, high, i["shape"]).astype(i["dtype"]) for i in built.model["inputs"]]
        for _ in range(4)
    ]
    ours = built.run(samples, tmp_path)
    ref = (_onnxruntime if reference == "onnxruntime" else _litert)(source, samples)
    for got, want in zip(ours, ref, strict=True):
        assert got[0].shape == want[0].shape
        scale = max(float(np.max(np.abs(want[0]))), 1e-30)
        assert float(np.max(np.abs(got[0].astype(np.float64) - want[0]))) / scale <= REL_TOL


def _onnx(path: Path, nodes: list, shape: list[int], inits: dict[str, np.ndarray] | None = None) -> Path:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
        [numpy_helper.from_array(a, n) for n, a in (inits or {}).items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


@pytest.mark.parametrize("op", ["Softplus", "Abs", "Softsign"])
def test_onnx_fabs_ops_match_onnxruntime(tmp_path: Path, op: str) -> None:
    source = _onnx(tmp_path / "m.onnx", [helper.make_node(op, ["x"], ["y"])], [1, 4, 3, 3])
    # Wide inputs: Softplus's log1p(exp(-|x|)) branch and its large-|x| tail both matter.
    _compile_and_compare(source, tmp_path, "onnxruntime", -30.0, 30.0)


@pytest.mark.parametrize(
    "shape, slope_shape",
    [
        ([1, 4, 3, 3], [4, 1, 1]),  # PyTorch's per-channel export
        ([1, 4, 3, 3], [1, 4, 1, 1]),
        ([1, 4, 5], [4, 1]),
        ([1, 4], [4]),
        ([1, 3, 3, 4], [4]),  # channels last
        ([1, 4, 3, 3], [4, 3, 3]),  # elementwise slope
    ],
)
def test_onnx_prelu_per_channel_matches_onnxruntime(
    tmp_path: Path, shape: list[int], slope_shape: list[int]
) -> None:
    conv_w = np.random.default_rng(2).normal(0, 0.4, (shape[1], shape[1], 1, 1)).astype(np.float32)
    slope = np.random.default_rng(1).uniform(-0.8, 0.8, slope_shape).astype(np.float32)
    nodes = [helper.make_node("PRelu", ["x", "slope"], ["y"])]
    inits = {"slope": slope}
    if len(shape) == 4 and shape[1] == slope_shape[0]:  # a conv in front: PReLU fused as its epilogue
        nodes = [
            helper.make_node("Conv", ["x", "w"], ["c"]),
            helper.make_node("PRelu", ["c", "slope"], ["y"]),
        ]
        inits["w"] = conv_w
    _compile_and_compare(_onnx(tmp_path / "m.onnx", nodes, shape, inits), tmp_path, "onnxruntime")


@pytest.mark.parametrize("padding, stride, bias", [("SAME", 2, True), ("VALID", 2, False), ("SAME", 1, True)])
def test_tflite_transpose_conv_matches_litert(tmp_path: Path, padding: str, stride: int, bias: bool) -> None:
    rng = np.random.default_rng(stride)
    b = tb.ModelBuilder()
    x = b.tensor("x", [1, 4, 4, 3], "float32")
    side = 4 * stride if padding == "SAME" else 3 * stride + 3
    inputs = [
        b.const_int32("output_shape", [1, side, side, 2]),
        b.tensor("w", [2, 3, 3, 3], "float32", data=rng.normal(0, 0.5, (2, 3, 3, 3)).astype(np.float32)),
        x,
    ]
    if bias:
        inputs.append(b.tensor("b", [2], "float32", data=rng.normal(0, 0.5, (2,)).astype(np.float32)))
    y = b.tensor("y", [1, side, side, 2], "float32")
    options = schema.TransposeConvOptionsT()
    options.padding = schema.Padding.SAME if padding == "SAME" else schema.Padding.VALID
    options.strideH = options.strideW = stride
    b.op("TRANSPOSE_CONV", inputs, [y], options, version=3)
    source = tmp_path / "m.tflite"
    source.write_bytes(b.build([x], [y]))
    _compile_and_compare(source, tmp_path, "litert")


def _sparse_fc(densify: bool, block: bool) -> bytes:
    """FULLY_CONNECTED whose 4x8 weights are stored sparse (CSR, or CSR over 1x4 blocks)."""
    rng = np.random.default_rng(9)
    dense = rng.normal(0, 1, (4, 8)).astype(np.float32)
    dense[1] = 0
    b = tb.ModelBuilder()
    x = b.tensor("x", [1, 8], "float32")
    sp = schema.SparsityParametersT()
    rows_dim = schema.DimensionMetadataT()
    rows_dim.format, rows_dim.denseSize = schema.DimensionType.DENSE, 4
    csr = schema.DimensionMetadataT()
    csr.format = schema.DimensionType.SPARSE_CSR
    if block:
        dense[:, 4:] = 0
        cells = [(r, c) for r in range(4) for c in range(2) if np.any(dense[r, 4 * c : 4 * c + 4])]
        values = np.concatenate([dense[r, 4 * c : 4 * c + 4] for r, c in cells])
        inner = schema.DimensionMetadataT()
        inner.format, inner.denseSize = schema.DimensionType.DENSE, 4
        sp.traversalOrder, sp.blockMap, dims = [0, 1, 2], [1], [rows_dim, csr, inner]
    else:
        dense[:, ::2] = 0
        cells = [(int(r), int(c)) for r, c in zip(*np.nonzero(dense), strict=True)]
        values = np.array([dense[r, c] for r, c in cells])
        sp.traversalOrder, sp.blockMap, dims = [0, 1], [], [rows_dim, csr]
    segments, indices = schema.Int32VectorT(), schema.Int32VectorT()
    segments.values = [0, *np.cumsum([sum(1 for r, _ in cells if r == row) for row in range(4)]).tolist()]
    indices.values = [c for _, c in cells]
    csr.arraySegmentsType = csr.arrayIndicesType = schema.SparseIndexVector.Int32Vector
    csr.arraySegments, csr.arrayIndices = segments, indices
    sp.dimMetadata = dims
    ws = b.tensor("w_sparse", [4, 8], "float32", data=values.astype(np.float32))
    b.tensors[ws].sparsity = sp
    w = ws
    if densify:
        w = b.tensor("w", [4, 8], "float32")
        b.op("DENSIFY", [ws], [w])
    bias = b.tensor("bias", [4], "float32", data=rng.normal(0, 0.1, (4,)).astype(np.float32))
    y = b.tensor("y", [1, 4], "float32")
    b.op("FULLY_CONNECTED", [x, w, bias], [y], tb.fc_options())
    return b.build([x], [y])


@pytest.mark.parametrize("block", [False, True])
def test_tflite_densify_matches_litert(tmp_path: Path, block: bool) -> None:
    source = tmp_path / "m.tflite"
    source.write_bytes(_sparse_fc(densify=True, block=block))
    _compile_and_compare(source, tmp_path, "litert")


def test_sparse_weights_without_densify_are_refused(tmp_path: Path) -> None:
    from tvmc_micro.compiler import compile_model
    from tvmc_micro.compiler.errors import LoweringError

    source = tmp_path / "m.tflite"
    source.write_bytes(_sparse_fc(densify=False, block=False))
    with pytest.raises(LoweringError) as err:
        compile_model(source, tmp_path / "m.tar")
    text = str(err.value)
    assert "FULLY_CONNECTED" in text and "sparse tensor 'w_sparse'" in text and "DENSIFY" in text
    assert not (tmp_path / "m.tar").exists()


def test_frontend_failure_on_sparse_model_names_densify(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TVM's reader fails on some sparse encodings with a bare TypeError; the user sees what it is about."""
    import tvm.relax.frontend.tflite as tvm_tflite
    from tvmc_micro.compiler import compile_model
    from tvmc_micro.compiler.errors import LoweringError

    def failing(*_args: object, **_kw: object) -> None:
        raise TypeError("a bytes-like object is required, not 'int'")

    monkeypatch.setattr(tvm_tflite, "from_tflite", failing)
    source = tmp_path / "m.tflite"
    source.write_bytes(_sparse_fc(densify=True, block=False))
    with pytest.raises(LoweringError) as err:
        compile_model(source, tmp_path / "m.tar")
    text = str(err.value)
    assert "sparse weights" in text and "'w_sparse'" in text and "DENSIFY" in text and "bytes-like" in text

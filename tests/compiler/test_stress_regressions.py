"""Regressions found by scripts/stress_models.py (random Keras/ONNX models against the reference
interpreters), each rebuilt here as a tiny model without TensorFlow, compiled, built against the poisoned
harness and compared with its reference:

* float TRANSPOSE_CONV with a fused activation (TRANSPOSE_CONV version 4: TVM's converter dropped it);
* int8 UNIDIRECTIONAL_SEQUENCE_LSTM whose operator intermediates have shape [0], as the converter writes
  them (refused as a damaged model);
* 16x8 MAXIMUM / MINIMUM (refused although TFLite Micro runs them);
* onnxruntime quantize_static's DequantizeLinear -> Resize (linear) -> QuantizeLinear (refused).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from compiler_harness import BuiltModel, build, extract
from test_float_models import REL_TOL, _litert, _onnxruntime

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "quantized"))
import tflite_builder as tb
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

N_SAMPLES = 4  # more than the harness's three poison bytes


def _compile(source: Path, tmp_path: Path, **options: Any) -> BuiltModel:
    from tvmc_micro.compiler import compile_model

    compile_model(source, tmp_path / "m.tar", **options)
    return build(extract(tmp_path / "m.tar", tmp_path / "m"))


def _samples(built: BuiltModel, seed: int) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(N_SAMPLES):
        row = []
        for spec in built.model["inputs"]:
            dt = np.dtype(spec["dtype"])
            if dt.kind == "f":
                row.append(rng.uniform(-1.5, 1.5, spec["shape"]).astype(dt))
            else:
                info = np.iinfo(dt)
                row.append(rng.integers(info.min, info.max, spec["shape"], endpoint=True).astype(dt))
        rows.append(row)
    return rows


def _tflm(model: bytes, samples: list[list[np.ndarray]], n_out: int = 1) -> list[list[np.ndarray]]:
    """TFLite Micro over the samples in order (state carried from run to run, as in the harness)."""
    from tflite_micro.python.tflite_micro import runtime

    interp = runtime.Interpreter.from_bytes(model, arena_size=1 << 20)
    result = []
    for sample in samples:
        for i, x in enumerate(sample):
            interp.set_input(x, i)
        interp.invoke()
        result.append([interp.get_output(i).copy() for i in range(n_out)])
    return result


# --- float TRANSPOSE_CONV with a fused activation ------------------------------------------------------


def _transpose_conv_relu(activation: str, padding: str) -> bytes:
    rng = np.random.default_rng(len(activation))
    b = tb.ModelBuilder()
    x = b.tensor("x", [1, 4, 5, 2], "float32")
    side = (8, 10) if padding == "SAME" else (9, 11)
    w = b.tensor("w", [3, 3, 3, 2], "float32", data=rng.normal(0, 0.7, (3, 3, 3, 2)).astype(np.float32))
    bias = b.tensor("b", [3], "float32", data=np.array([0.3, -0.2, 0.1], np.float32))
    y = b.tensor("y", [1, *side, 3], "float32")
    options = schema.TransposeConvOptionsT()
    options.padding = schema.Padding.SAME if padding == "SAME" else schema.Padding.VALID
    options.strideH = options.strideW = 2
    options.fusedActivationFunction = getattr(schema.ActivationFunctionType, activation)
    b.op("TRANSPOSE_CONV", [b.const_int32("shape", [1, *side, 3]), w, x, bias], [y], options, version=4)
    return b.build([x], [y])


@pytest.mark.parametrize("activation", ["RELU", "RELU6", "RELU_N1_TO_1"])
@pytest.mark.parametrize("padding", ["SAME", "VALID"])
def test_transpose_conv_fused_activation_matches_litert(
    tmp_path: Path, activation: str, padding: str
) -> None:
    source = tmp_path / "m.tflite"
    source.write_bytes(_transpose_conv_relu(activation, padding))
    built = _compile(source, tmp_path)
    samples = _samples(built, 1)
    ours, ref = built.run(samples, tmp_path), _litert(source, samples)
    for got, want in zip(ours, ref, strict=True):
        assert got[0].shape == want[0].shape
        assert float(np.max(np.abs(got[0] - want[0]))) <= REL_TOL * float(np.max(np.abs(want[0])))
    # The activation matters for these inputs (an unclipped result would fail the comparison above).
    low = {"RELU": 0.0, "RELU6": 0.0, "RELU_N1_TO_1": -1.0}[activation]
    assert all(float(r[0].min()) == low for r in ref)


# --- int8 LSTM with the converter's empty intermediates --------------------------------------------------


def _lstm_with_intermediates() -> bytes:
    """test_q_stateful's int8 LSTM plus the five operator intermediates TFLite's converter attaches to a
    quantized LSTM (shape [0], carrying only quantization parameters)."""
    from test_q_stateful import lstm_model

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(lstm_model(3, 2, -11, 0.0), 0))
    sub = model.subgraphs[0]
    mids = []
    for name in ("input", "forget", "cell", "output"):
        t = schema.TensorT()
        t.name, t.shape, t.type, t.buffer = f"input_to_{name}_intermediate", [0], schema.TensorType.INT8, 0
        mids.append(len(sub.tensors))
        sub.tensors.append(t)
    hidden = schema.TensorT()
    hidden.name, hidden.shape, hidden.type, hidden.buffer = (
        "effective_hidden_scale",
        [0],
        schema.TensorType.INT8,
        0,
    )
    q = schema.QuantizationParametersT()
    q.scale, q.zeroPoint = [0.0022], [0]
    hidden.quantization = q
    mids.append(len(sub.tensors))
    sub.tensors.append(hidden)
    sub.operators[0].intermediates = mids
    import flatbuffers

    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def test_int8_lstm_with_empty_intermediates_matches_tflm(tmp_path: Path) -> None:
    data = _lstm_with_intermediates()
    source = tmp_path / "m.tflite"
    source.write_bytes(data)
    built = _compile(source, tmp_path)
    samples = _samples(built, 2)
    ours, ref = built.run(samples, tmp_path), _tflm(data, samples)
    for got, want in zip(ours, ref, strict=True):
        np.testing.assert_array_equal(got[0], want[0].reshape(got[0].shape))


def test_empty_tensor_that_is_not_an_intermediate_is_still_refused(tmp_path: Path) -> None:
    from tvmc_micro.compiler import compile_model
    from tvmc_micro.compiler.errors import TvmcError

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(_lstm_with_intermediates(), 0))
    sub = model.subgraphs[0]
    sub.operators[0].intermediates = list(sub.operators[0].intermediates)[1:]  # one left unattached
    import flatbuffers

    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    source = tmp_path / "m.tflite"
    source.write_bytes(bytes(builder.Output()))
    with pytest.raises(TvmcError, match=r"input_to_input_intermediate' shape\[0\] is 0"):
        compile_model(source, tmp_path / "m.tar")


# --- 16x8 MAXIMUM / MINIMUM ----------------------------------------------------------------------------


def _max_min16(op: str, b_shape: list[int], constant: bool) -> bytes:
    rng = np.random.default_rng(len(b_shape) + constant)
    b = tb.ModelBuilder()
    scale = 3.1e-4
    x = b.tensor("x", [1, 4, 5, 6], "int16", scale, 0)
    data = rng.integers(-30000, 30000, b_shape).astype(np.int16) if constant else None
    other = b.tensor("other", b_shape, "int16", scale, 0, data=data)
    y = b.tensor("y", [1, 4, 5, 6], "int16", scale, 0)
    b.op(op, [x, other], [y])
    return b.build([x] if constant else [x, other], [y])


@pytest.mark.parametrize("op", ["MAXIMUM", "MINIMUM"])
@pytest.mark.parametrize("b_shape, constant", [([1, 4, 5, 6], False), ([6], False), ([1, 1, 5, 1], True)])
def test_int16_maximum_minimum_match_tflm(
    tmp_path: Path, op: str, b_shape: list[int], constant: bool
) -> None:
    data = _max_min16(op, b_shape, constant)
    source = tmp_path / "m.tflite"
    source.write_bytes(data)
    built = _compile(source, tmp_path)
    assert any(op.lower() in o["name"] for o in built.model["operators"]), built.model["operators"]
    samples = _samples(built, 3)
    ours, ref = built.run(samples, tmp_path), _tflm(data, samples)
    for got, want in zip(ours, ref, strict=True):
        np.testing.assert_array_equal(got[0], want[0])


def test_int16_maximum_of_differently_quantized_inputs_is_refused(tmp_path: Path) -> None:
    from tvmc_micro.compiler import compile_model
    from tvmc_micro.compiler.errors import TvmcError

    b = tb.ModelBuilder()
    x = b.tensor("x", [1, 6], "int16", 3e-4, 0)
    other = b.tensor("other", [1, 6], "int16", 5e-4, 0)
    y = b.tensor("y", [1, 6], "int16", 3e-4, 0)
    b.op("MAXIMUM", [x, other], [y])
    source = tmp_path / "m.tflite"
    source.write_bytes(b.build([x, other], [y]))
    with pytest.raises(TvmcError, match=r"MAXIMUM.*'other'.*compares stored values"):
        compile_model(source, tmp_path / "m.tar")


# --- ONNX QDQ Resize (linear) ------------------------------------------------------------------------------


def _qdq_resize_linear(tmp_path: Path, transform: str, geometry: dict[str, list[float]], act: str) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    rng = np.random.default_rng(7)
    inits = [
        numpy_helper.from_array(rng.normal(0, 0.5, (4, 3, 3, 3)).astype(np.float32), "w"),
        numpy_helper.from_array(rng.normal(0, 0.2, (4,)).astype(np.float32), "b"),
        numpy_helper.from_array(rng.normal(0, 0.5, (2, 4, 1, 1)).astype(np.float32), "w2"),
    ]
    resize_in = ["c", "", "scales"] if "scales" in geometry else ["c", "", "", "sizes"]
    if "scales" in geometry:
        inits.append(numpy_helper.from_array(np.array(geometry["scales"], np.float32), "scales"))
        out_hw = [int(np.floor(s * d)) for s, d in zip(geometry["scales"][2:], (5, 6), strict=True)]
    else:
        inits.append(numpy_helper.from_array(np.array(geometry["sizes"], np.int64), "sizes"))
        out_hw = [int(v) for v in geometry["sizes"][2:]]
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Resize", resize_in, ["r"], mode="linear", coordinate_transformation_mode=transform),
        helper.make_node("Conv", ["r", "w2"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 5, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, *out_hw])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    src, dst = tmp_path / "f.onnx", tmp_path / "q.onnx"
    onnx.save(model, src)
    data = np.random.default_rng(8)

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self.left = 8

        def get_next(self) -> dict[str, np.ndarray] | None:
            self.left -= 1
            return {"x": data.uniform(-1, 1, (1, 3, 5, 6)).astype(np.float32)} if self.left >= 0 else None

    kind = QuantType.QInt8 if act == "int8" else QuantType.QUInt8
    quantize_static(
        str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ, activation_type=kind,
        weight_type=QuantType.QInt8,
    )  # fmt: skip
    return dst


@pytest.mark.parametrize("act", ["int8", "uint8"])
@pytest.mark.parametrize(
    "transform, geometry",
    [
        ("half_pixel", {"scales": [1, 1, 2, 2]}),
        ("asymmetric", {"scales": [1, 1, 0.5, 1.5]}),
        ("align_corners", {"sizes": [1, 4, 7, 3]}),
        ("pytorch_half_pixel", {"sizes": [1, 4, 1, 9]}),
    ],
)
def test_qdq_resize_linear_bit_exact_with_onnxruntime(
    tmp_path: Path, transform: str, geometry: dict[str, list[float]], act: str
) -> None:
    source = _qdq_resize_linear(tmp_path, transform, geometry, act)
    built = _compile(source, tmp_path)
    assert any("resize_linear" in o["name"] for o in built.model["operators"]), built.model["operators"]
    samples = _samples(built, 4)
    ours, ref = built.run(samples, tmp_path), _onnxruntime(source, samples)
    for got, want in zip(ours, ref, strict=True):
        assert np.array_equal(got[0].view(np.int32), want[0].view(np.int32)), np.abs(got[0] - want[0]).max()


# --- ONNX float LSTM ---------------------------------------------------------------------------------------


def _onnx_lstm(
    tmp_path: Path,
    direction: str = "forward",
    layout: int = 0,
    bias: bool = True,
    initial: bool = False,
    extra_inputs: dict[int, np.ndarray] | None = None,
    **attrs: Any,
) -> Path:
    """x -> LSTM (all three outputs are model outputs)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(11)
    steps, batch, n_in, hidden = 5, 2, 3, 4
    dirs = 2 if direction == "bidirectional" else 1
    consts: dict[int, np.ndarray] = {
        1: rng.uniform(-0.7, 0.7, (dirs, 4 * hidden, n_in)),
        2: rng.uniform(-0.7, 0.7, (dirs, 4 * hidden, hidden)),
    }
    if bias:
        consts[3] = rng.uniform(-0.4, 0.4, (dirs, 8 * hidden))
    state_shape = (batch, dirs, hidden) if layout else (dirs, batch, hidden)
    if initial:
        consts[5] = rng.uniform(-0.5, 0.5, state_shape)
        consts[6] = rng.uniform(-0.5, 0.5, state_shape)
    consts.update(extra_inputs or {})
    names = ["x"] + [""] * 7
    inits = []
    for k, value in consts.items():
        names[k] = f"in{k}"
        dtype = np.int32 if k == 4 else np.float32
        inits.append(numpy_helper.from_array(np.asarray(value, dtype), f"in{k}"))
    while names[-1] == "":
        names.pop()
    x_shape = [batch, steps, n_in] if layout else [steps, batch, n_in]
    y_shape = [batch, steps, dirs, hidden] if layout else [steps, dirs, batch, hidden]
    node = helper.make_node(
        "LSTM", names, ["y", "y_h", "y_c"], hidden_size=hidden, direction=direction, **attrs,
        **({"layout": layout} if layout else {}),
    )  # fmt: skip
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape),
            helper.make_tensor_value_info("y_h", TensorProto.FLOAT, list(state_shape)),
            helper.make_tensor_value_info("y_c", TensorProto.FLOAT, list(state_shape)),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    path = tmp_path / "lstm.onnx"
    onnx.save(model, path)
    return path


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"direction": "reverse", "bias": False},
        {"direction": "bidirectional", "initial": True},
        {"direction": "reverse", "initial": True},
    ],
)
def test_onnx_lstm_matches_onnxruntime(tmp_path: Path, options: dict[str, Any]) -> None:
    source = _onnx_lstm(tmp_path, **options)
    built = _compile(source, tmp_path)
    samples = _samples(built, 5)
    ours, ref = built.run(samples, tmp_path), _onnxruntime(source, samples)
    for got_row, want_row in zip(ours, ref, strict=True):
        for got, want in zip(got_row, want_row, strict=True):
            assert got.shape == want.shape
            assert float(np.max(np.abs(got - want))) <= REL_TOL * float(np.max(np.abs(want)))


@pytest.mark.parametrize(
    "options, needle",
    [
        ({"extra_inputs": {7: np.ones((1, 12))}}, "peephole connections"),
        ({"extra_inputs": {4: np.full(2, 5)}}, "sequence_lens"),
        ({"clip": 3.0}, "attribute clip=3.0"),
        ({"layout": 1}, "attribute layout=1"),
        ({"activations": ["Sigmoid", "Relu", "Tanh"]}, "activations ['sigmoid', 'relu', 'tanh']"),
    ],
)
def test_onnx_lstm_variants_are_refused_by_name(tmp_path: Path, options: dict[str, Any], needle: str) -> None:
    from tvmc_micro.compiler import compile_model
    from tvmc_micro.compiler.errors import LoweringError

    source = _onnx_lstm(tmp_path, **options)
    with pytest.raises(LoweringError, match="ONNX LSTM") as err:
        compile_model(source, tmp_path / "m.tar")
    assert needle in str(err.value)
    assert not (tmp_path / "m.tar").exists()


def test_onnx_lstm_with_computed_weights_is_refused(tmp_path: Path) -> None:
    """Weights that are a model input (not an initializer) are not constants."""
    import onnx
    from onnx import TensorProto, helper
    from tvmc_micro.compiler import compile_model
    from tvmc_micro.compiler.errors import LoweringError

    source = _onnx_lstm(tmp_path)
    model = onnx.load(source)
    w = next(t for t in model.graph.initializer if t.name == "in1")
    model.graph.input.append(helper.make_tensor_value_info("in1", TensorProto.FLOAT, list(w.dims)))
    model.graph.initializer.remove(w)
    onnx.save(model, source)
    with pytest.raises(LoweringError, match="weights W is computed at run time"):
        compile_model(source, tmp_path / "m.tar")


# --- a quantized ONNX model ending in a float elementwise op ---------------------------------------------


@pytest.mark.parametrize(
    "op, attrs", [("Elu", {"alpha": 0.7}), ("Softplus", {}), ("Sigmoid", {}), ("Relu", {})]
)
@pytest.mark.parametrize("act", ["int8", "uint8"])
def test_qdq_model_ending_in_float_unary_op_matches_onnxruntime(
    tmp_path: Path, op: str, attrs: dict[str, float], act: str
) -> None:
    """QuantizeLinear -> DequantizeLinear -> op (float) as the model output, which quantize_static leaves
    for ops it does not quantise (Elu, Softplus, ...): refused before, now a float table of the op."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    zp = np.int8(3) if act == "int8" else np.uint8(131)
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
        helper.make_node("DequantizeLinear", ["q", "s", "z"], ["d"]),
        helper.make_node(op, ["d"], ["y"], **attrs),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 4, 4])],
        [numpy_helper.from_array(np.float32(0.013), "s"), numpy_helper.from_array(zp, "z")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    source = tmp_path / "m.onnx"
    onnx.save(model, source)
    built = _compile(source, tmp_path)
    assert any("float_output" in o["name"] for o in built.model["operators"]), built.model["operators"]
    samples = _samples(built, 6)
    ours, ref = built.run(samples, tmp_path), _onnxruntime(source, samples)
    for got, want in zip(ours, ref, strict=True):
        assert float(np.max(np.abs(got[0] - want[0]))) <= REL_TOL * float(np.max(np.abs(want[0])))


# --- ONNX PRelu of opset < 7 (per-channel 1-D slope) ----------------------------------------------

_ONNX_BACKEND_DATA = Path(__import__("onnx").__file__).parent / "backend" / "test" / "data"


def _read_pb(path: Path) -> np.ndarray:
    import onnx
    from onnx import numpy_helper

    tensor = onnx.TensorProto()
    tensor.ParseFromString(path.read_bytes())
    return numpy_helper.to_array(tensor)


@pytest.mark.parametrize("case", ["1d_multiparam", "2d_multiparam", "3d_multiparam", "1d"])
def test_legacy_prelu_matches_onnx_backend_test_data(tmp_path: Path, case: str) -> None:
    """PyTorch's opset-6 PReLU exports shipped with onnx's backend tests (onnxruntime cannot run opset-6
    PRelu): compiled, run under poison, compared with the expected outputs stored beside them."""
    folder = _ONNX_BACKEND_DATA / "pytorch-converted" / f"test_PReLU_{case}"
    if not folder.is_dir():
        pytest.skip(f"{folder} is not shipped by this onnx package")
    built = _compile(folder / "model.onnx", tmp_path)
    x = _read_pb(folder / "test_data_set_0" / "input_0.pb")
    want = _read_pb(folder / "test_data_set_0" / "output_0.pb")
    got = built.run([[x]] * N_SAMPLES, tmp_path)
    for row in got:
        assert float(np.max(np.abs(row[0] - want))) <= REL_TOL * float(np.max(np.abs(want)))


def _prelu_model(tmp_path: Path, shape: list[int], slope: np.ndarray, opset: int) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("PRelu", ["x", "s"], ["y"])],
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, shape),
            helper.make_tensor_value_info("s", TensorProto.FLOAT, list(slope.shape)),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
        [numpy_helper.from_array(slope, "s")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 3
    path = tmp_path / "prelu.onnx"
    onnx.save(model, path)
    return path


@pytest.mark.parametrize("shape", [[2, 3, 3], [1, 3, 2, 2]])
def test_legacy_prelu_slope_is_per_channel(tmp_path: Path, shape: list[int]) -> None:
    """Distinct slopes, and a last axis as long as the channel axis ([2, 3, 3]: TVM's converter took the
    last axis and gave a wrong result without an error): PRelu-6 applies slope[c] to channel c."""
    slope = np.array([0.1, -0.5, 0.9], np.float32)
    built = _compile(_prelu_model(tmp_path, shape, slope, 6), tmp_path)
    samples = _samples(built, 7)
    per_channel = slope.reshape([1, 3] + [1] * (len(shape) - 2))
    for (x,), (got,) in zip(samples, built.run(samples, tmp_path), strict=True):
        np.testing.assert_array_equal(got, np.where(x >= 0, x, x * per_channel))


def test_prelu_slope_that_does_not_broadcast_is_refused(tmp_path: Path) -> None:
    from tvmc_micro.compiler import compile_model
    from tvmc_micro.compiler.errors import LoweringError

    source = _prelu_model(tmp_path, [1, 3, 4], np.ones(3, np.float32), 13)
    with pytest.raises(LoweringError, match=r"slope of shape \[3\] does not broadcast against the input"):
        compile_model(source, tmp_path / "m.tar")


@pytest.mark.parametrize("case", ["model1", "model3", "model6"])
def test_onnx_sequence_models_are_refused_by_name(tmp_path: Path, case: str) -> None:
    """onnx's sequence test models crashed the census (KeyError on a sequence-typed value) and, past it,
    TVM's sequence conversion gave wrong results: refused naming the sequence ops."""
    from tvmc_micro.compiler import compile_model
    from tvmc_micro.compiler.errors import UnsupportedOperatorsError

    model = _ONNX_BACKEND_DATA / "simple" / f"test_sequence_{case}" / "model.onnx"
    if not model.is_file():
        pytest.skip(f"{model} is not shipped by this onnx package")
    with pytest.raises(
        UnsupportedOperatorsError, match=r"(SequenceConstruct|SequenceEmpty|SplitToSequence) x1"
    ):
        compile_model(model, tmp_path / "m.tar")

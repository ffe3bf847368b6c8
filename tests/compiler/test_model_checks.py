"""The TFLite flatbuffer verifier, the value checks and the shape rules: each refusal, with its words.

Fast (no TVM): every check is called on bytes built here or cut from a reference model.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import flatbuffers
import numpy as np
import pytest
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema
from tvmc_micro.compiler.model_checks import ModelCheckError, check_tflite
from tvmc_micro.compiler.shape_rules import ShapeError
from tvmc_micro.compiler.tflite_verify import FlatbufferError, verify_tflite

from tests.conftest import model_path
from tests.quantized.tflite_builder import (
    ModelBuilder,
    add_options,
    concat_options,
    conv_options,
    depthwise_options,
    fc_options,
    pool_options,
    reshape_options,
)


def small_model() -> bytes:
    """x[1,4,4,2] -> CONV_2D(3 filters 1x1) -> [1,4,4,3] -> RESHAPE -> [1,48] -> FULLY_CONNECTED -> [1,5]."""
    b = ModelBuilder()
    x = b.tensor("x", [1, 4, 4, 2], scale=0.1, zero_point=3)
    w = b.tensor(
        "w", [3, 1, 1, 2], scale=[0.01, 0.02, 0.03], zero_point=0, qdim=0, data=np.ones((3, 1, 1, 2), np.int8)
    )
    bias = b.tensor("b", [3], "int32", scale=[0.001, 0.002, 0.003], zero_point=0, data=np.zeros(3, np.int32))
    c = b.tensor("conv", [1, 4, 4, 3], scale=0.2, zero_point=-1)
    b.op("CONV_2D", [x, w, bias], [c], conv_options(), "Conv2DOptions")
    shape = b.const_int32("shape", [1, 48])
    r = b.tensor("flat", [1, 48], scale=0.2, zero_point=-1)
    b.op("RESHAPE", [c, shape], [r], reshape_options([1, 48]), "ReshapeOptions")
    fw = b.tensor("fw", [5, 48], scale=0.05, zero_point=0, data=np.ones((5, 48), np.int8))
    y = b.tensor("y", [1, 5], scale=0.5, zero_point=2)
    b.op("FULLY_CONNECTED", [r, fw, -1], [y], fc_options(), "FullyConnectedOptions")
    return b.build([x], [y])


def edit(data: bytes, change: Callable[[Any], None]) -> bytes:
    """Unpack with TFLM's schema object API, change something, pack again."""
    model = schema.ModelT.InitFromPackedBuf(data, 0)
    change(model)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def tensor(model: Any, name: str) -> Any:
    return next(t for t in model.subgraphs[0].tensors if t.name.decode() == name)


def refused(data: bytes, error: type[ValueError], *needles: str) -> str:
    with pytest.raises(error) as info:
        check_tflite(data)
    text = str(info.value)
    for needle in needles:
        assert needle in text, text
    return text


def test_the_small_model_passes() -> None:
    check_tflite(small_model())


@pytest.mark.parametrize(
    "name",
    [
        "hello_world_int8.tflite",
        "kws_ref_model.tflite",
        "person_detect.tflite",
        "pretrainedResnet.tflite",
        "str_ww_ref_model.tflite",
        "vww_96_int8.tflite",
        "ad01_int8.tflite",
    ],
)
def test_every_reference_model_passes(name: str) -> None:
    check_tflite(model_path(name).read_bytes())


# --------------------------------------------------------------------------------- flatbuffer structure


def _root_table(data: bytes) -> int:
    return int(struct.unpack_from("<I", data, 0)[0])


def test_verifier_refuses_a_missing_identifier() -> None:
    with pytest.raises(FlatbufferError, match="TFL3"):
        verify_tflite(b"\x00" * 64)


def test_verifier_refuses_a_truncated_file() -> None:
    data = small_model()
    with pytest.raises(FlatbufferError, match="lies outside the file"):
        verify_tflite(data[: len(data) // 2])


def test_verifier_refuses_a_root_offset_past_the_end() -> None:
    data = bytearray(small_model())
    data[0:4] = struct.pack("<I", len(data) + 100)
    with pytest.raises(FlatbufferError, match=r"root: offset target at byte \d+ .* lies outside the file"):
        verify_tflite(bytes(data))


def test_verifier_refuses_a_misaligned_table() -> None:
    data = bytearray(small_model())
    data[0:4] = struct.pack("<I", _root_table(data) + 1)
    with pytest.raises(FlatbufferError, match=r"Model table at byte .* is not 4-byte aligned"):
        verify_tflite(bytes(data))


def test_verifier_refuses_a_vtable_outside_the_file() -> None:
    data = bytearray(small_model())
    root = _root_table(data)
    data[root : root + 4] = struct.pack("<i", 2**30)  # vtable = table - 2**30: negative position
    with pytest.raises(FlatbufferError, match="Model vtable at byte -"):
        verify_tflite(bytes(data))


def test_verifier_refuses_a_vtable_with_an_odd_size() -> None:
    data = bytearray(small_model())
    root = _root_table(data)
    vt = root - struct.unpack_from("<i", data, root)[0]
    data[vt : vt + 2] = struct.pack("<H", 5)
    with pytest.raises(FlatbufferError, match="has invalid size 5"):
        verify_tflite(bytes(data))


def _vector_position(data: bytes, getter: Callable[[Any], Any], slot: int) -> int:
    import tflite

    table = getter(tflite.Model.GetRootAsModel(data, 0))
    return int(table._tab.Vector(table._tab.Offset(slot))) - 4


def test_verifier_refuses_a_vector_longer_than_the_file() -> None:
    data = bytearray(small_model())
    pos = _vector_position(data, lambda m: m.Subgraphs(0).Tensors(0), 4)  # Tensor.shape
    data[pos : pos + 4] = struct.pack("<I", 10**9)
    with pytest.raises(FlatbufferError) as info:
        verify_tflite(bytes(data))
    text = str(info.value)
    assert "subgraphs[0].tensors[0].shape: vector of 1000000000 x 4-byte elements" in text
    assert "runs past the end of the file" in text


def test_verifier_refuses_a_string_without_terminator() -> None:
    import tflite

    data = bytearray(small_model())
    t = tflite.Model.GetRootAsModel(bytes(data), 0).Subgraphs(0).Tensors(0)
    name_pos = t._tab.Offset(10) + t._tab.Pos
    start = name_pos + struct.unpack_from("<I", data, name_pos)[0]
    data[start + 4 + len(b"x")] = ord("!")
    with pytest.raises(FlatbufferError, match=r"tensors\[0\]\.name: string of 1 bytes .* no NUL terminator"):
        verify_tflite(bytes(data))


def test_verifier_refuses_a_misaligned_scalar() -> None:
    import tflite

    data = bytearray(small_model())
    t = tflite.Model.GetRootAsModel(bytes(data), 0).Subgraphs(0).Tensors(0)
    vt = t._tab.Pos - struct.unpack_from("<i", data, t._tab.Pos)[0]
    voff = struct.unpack_from("<H", data, vt + 8)[0]  # Tensor.buffer (uint32)
    data[vt + 8 : vt + 10] = struct.pack("<H", voff + 1)
    with pytest.raises(
        FlatbufferError, match=r"tensors\[0\]\.buffer: scalar field at byte \d+ is not 4-byte"
    ):
        verify_tflite(bytes(data))


# ------------------------------------------------------------------------------------------ values


def _set(attr: str, value: Any, name: str = "x") -> Callable[[Any], None]:
    return lambda m: setattr(tensor(m, name), attr, value)


def _quant(attr: str, value: Any, name: str = "x") -> Callable[[Any], None]:
    return lambda m: setattr(tensor(m, name).quantization, attr, value)


@pytest.mark.parametrize(
    "change, needles",
    [
        (lambda m: setattr(m, "version", 2), ["schema version is 2"]),
        (lambda m: setattr(m.operatorCodes[0], "builtinCode", 4000), ["builtin code 4000"]),
        (lambda m: setattr(m.subgraphs[0].operators[1], "opcodeIndex", 9), ["operator 1 has opcode index 9"]),
        (
            lambda m: setattr(m.subgraphs[0].operators[0], "inputs", [0, 99, 2]),
            ["operator 0 input is tensor 99; it must be -1 (omitted) or 0..7"],
        ),
        (lambda m: setattr(m.subgraphs[0].operators[0], "outputs", [-1]), ["operator 0 output is tensor -1"]),
        (lambda m: setattr(m.subgraphs[0], "inputs", [77]), ["input list names tensor 77"]),
        (_set("buffer", 40), ["tensor 0 'x' refers to buffer 40"]),
        (_set("shape", [1, -4, 4, 2]), ["tensor 0 'x' shape[1] is -4; dimensions must be positive"]),
        (_set("shape", [1, 0, 4, 2]), ["tensor 0 'x' shape[1] is 0"]),
        (_set("shape", [10**9, 10**9, 1, 2]), ["more than 2147483648 bytes", "32-bit"]),
        (_set("type", schema.TensorType.STRING), ["type 5 (STRING)"]),
        (
            _set("shape", [3, 1, 2, 2], "w"),
            ["tensor 1 'w' is INT8[3, 1, 2, 2] (12 bytes) but its buffer 1 holds 6"],
        ),
        (
            _quant("scale", [0.0]),
            ["tensor 0 'x' quantization scale[0] is 0.0; scales must be finite and > 0"],
        ),
        (_quant("scale", [float("nan")]), ["scale[0] is nan"]),
        (_quant("zeroPoint", [10**14]), ["(INT8) zero_point[0] is 100000000000000; it must be in -128..127"]),
        (_quant("zeroPoint", [1, 2]), ["1 quantization scale(s) but 2 zero point(s)"]),
        (
            lambda m: (_quant("scale", [0.01, 0.02], "w")(m), _quant("zeroPoint", [0, 0], "w")(m)),
            ["2 per-channel scales but shape[0] (quantized_dimension) is 3"],
        ),
        (_quant("quantizedDimension", 7, "w"), ["quantized per channel along dimension 7"]),
        (
            lambda m: setattr(m.subgraphs[0].operators[2], "outputs", [3]),
            ["operator 2 writes tensor 3 'conv', which is already written by operator 0"],
        ),
    ],
)
def test_value_refusals(change: Callable[[Any], None], needles: list[str]) -> None:
    refused(edit(small_model(), change), ModelCheckError, *needles)


def test_int16_zero_point_must_fit_int16() -> None:
    b = ModelBuilder()
    x = b.tensor("x", [1, 8], "int16", scale=0.001, zero_point=40000)
    y = b.tensor("y", [1, 8], "int16", scale=0.001, zero_point=0)
    b.op("RELU", [x], [y])
    refused(b.build([x], [y]), ModelCheckError, "(INT16) zero_point[0] is 40000; it must be in -32768..32767")


def test_a_tensor_read_before_it_is_written() -> None:
    def swap(m: Any) -> None:
        ops = m.subgraphs[0].operators
        ops[0], ops[1] = ops[1], ops[0]

    refused(
        edit(small_model(), swap), ModelCheckError, "operator 0 reads tensor 3 'conv' before any operator"
    )


def test_an_operator_writing_a_constant_or_an_input() -> None:
    refused(
        edit(small_model(), lambda m: setattr(m.subgraphs[0].operators[0], "outputs", [1])),
        ModelCheckError,
        "operator 0 writes tensor 1 'w', which holds constant data",
    )
    refused(
        edit(small_model(), lambda m: setattr(m.subgraphs[0].operators[0], "outputs", [0])),
        ModelCheckError,
        "which is a model input",
    )


def test_an_output_nobody_writes() -> None:
    def extra_output(m: Any) -> None:
        t = schema.TensorT()
        t.name, t.shape, t.type, t.buffer = b"orphan", [1], schema.TensorType.INT8, 0
        m.subgraphs[0].tensors.append(t)
        m.subgraphs[0].outputs = [7, 8]

    refused(edit(small_model(), extra_output), ModelCheckError, "output tensor 8 'orphan' is never written")


def test_a_sparse_tensor() -> None:
    def sparse(m: Any) -> None:
        sp = schema.SparsityParametersT()
        sp.traversalOrder = [0, 1, 2, 3]
        tensor(m, "w").sparsity = sp

    refused(edit(small_model(), sparse), ModelCheckError, "tensor 1 'w' is a sparse INT8 tensor")


def test_activations_beyond_a_32_bit_address_space() -> None:
    def big(m: Any) -> None:
        for name in ("x", "conv"):
            tensor(m, name).shape = [1, 2**14, 2**14, 2]  # 512 MiB each, 4 tensors, with the FC rewired

    text = refused(edit(small_model(), big), (ModelCheckError, ShapeError))  # type: ignore[arg-type]
    assert "bytes" in text or "computes" in text or "reshapes" in text


# ------------------------------------------------------------------------------------------ shapes


def test_kws_conv_batch_18_is_refused_naming_tensor_operator_and_shapes() -> None:
    """The issue's one-byte damage: a CONV_2D output's batch dimension 1 -> 18."""
    import tflite

    data = bytearray(model_path("kws_ref_model.tflite").read_bytes())
    model = tflite.Model.GetRootAsModel(bytes(data), 0)
    sub = model.Subgraphs(0)
    op = next(
        sub.Operators(k)
        for k in range(sub.OperatorsLength())
        if model.OperatorCodes(sub.Operators(k).OpcodeIndex()).DeprecatedBuiltinCode() == 3
    )
    out = sub.Tensors(op.Outputs(0))
    pos = out._tab.Vector(out._tab.Offset(4))
    assert data[pos] == 1
    data[pos] = 18
    text = refused(
        bytes(data),
        ShapeError,
        f"tensor {op.Outputs(0)} '",
        "shape[0] is 18 but CONV_2D (operator 0) computes 1",
    )
    assert "stored [18, 25, 5, 64], computed [1, 25, 5, 64]" in text


def _one_op(
    opname: str, inputs: list[tuple[str, list[int], Any]], out: list[int], options: Any, kind: str
) -> bytes:
    b = ModelBuilder()
    ids, graph_inputs = [], []
    for name, shape, data in inputs:
        if data is None:
            ids.append(b.tensor(name, shape, scale=0.1, zero_point=0))
            graph_inputs.append(ids[-1])
        elif np.asarray(data).dtype == np.int32 and name.startswith("c_"):
            ids.append(b.const_int32(name, data))
        else:
            ids.append(b.tensor(name, shape, scale=0.1, zero_point=0, data=data))
    y = b.tensor("y", out, scale=0.1, zero_point=0)
    b.op(opname, ids, [y], options, kind)
    return b.build(graph_inputs, [y])


W = np.ones((4, 3, 3, 2), np.int8)


@pytest.mark.parametrize(
    "data, needle",
    [
        (
            _one_op(
                "CONV_2D",
                [("x", [1, 8, 8, 2], None), ("w", [4, 3, 3, 2], W)],
                [1, 8, 8, 4],
                conv_options(stride=(0, 1)),
                "Conv2DOptions",
            ),
            "height filter 3, stride 0",
        ),
        (
            _one_op(
                "CONV_2D",
                [("x", [1, 8, 8, 2], None), ("w", [4, 3, 3, 2], W)],
                [1, 8, 8, 4],
                conv_options("VALID"),
                "Conv2DOptions",
            ),
            "shape[1] is 8 but CONV_2D (operator 0) computes 6",
        ),
        (
            _one_op(
                "CONV_2D",
                [("x", [1, 8, 8, 3], None), ("w", [4, 3, 3, 2], W)],
                [1, 8, 8, 4],
                conv_options(),
                "Conv2DOptions",
            ),
            "has 3 input channels, not a multiple of the filter's 2",
        ),
        (
            _one_op(
                "CONV_2D",
                [("x", [1, 8, 8], None), ("w", [4, 3, 3, 2], W)],
                [1, 8, 8, 4],
                conv_options(),
                "Conv2DOptions",
            ),
            "input 0 (tensor 0 'x') has shape [1, 8, 8], not rank 4",
        ),
        (
            _one_op(
                "DEPTHWISE_CONV_2D",
                [("x", [1, 8, 8, 2], None), ("w", [1, 3, 3, 4], np.ones((1, 3, 3, 4), np.int8))],
                [1, 4, 4, 4],
                depthwise_options(stride=(2, 2)),
                "DepthwiseConv2DOptions",
            ),
            "",
        ),
        (
            _one_op(
                "AVERAGE_POOL_2D",
                [("x", [1, 8, 8, 2], None)],
                [1, 4, 4, 3],
                pool_options((2, 2), (2, 2)),
                "Pool2DOptions",
            ),
            "shape[3] is 3 but AVERAGE_POOL_2D (operator 0) computes 2",
        ),
        (
            _one_op(
                "FULLY_CONNECTED",
                [("x", [1, 10], None), ("w", [3, 4], np.ones((3, 4), np.int8))],
                [1, 3],
                fc_options(),
                "FullyConnectedOptions",
            ),
            "input of 10 elements, not a multiple of the weights' 4",
        ),
        (
            _one_op(
                "FULLY_CONNECTED",
                [("x", [2, 4], None), ("w", [3, 4], np.ones((3, 4), np.int8))],
                [1, 3],
                fc_options(),
                "FullyConnectedOptions",
            ),
            "shape[0] is 1 but FULLY_CONNECTED (operator 0) computes 2",
        ),
        (
            _one_op(
                "ADD",
                [("a", [1, 4, 3], None), ("b", [1, 5, 3], None)],
                [1, 4, 3],
                add_options(),
                "AddOptions",
            ),
            "cannot broadcast [1, 4, 3] with [1, 5, 3]",
        ),
        (
            _one_op(
                "ADD",
                [("a", [1, 4, 3], None), ("b", [1, 1, 3], None)],
                [1, 4, 4],
                add_options(),
                "AddOptions",
            ),
            "shape[2] is 4 but ADD (operator 0) computes 3",
        ),
        (
            _one_op(
                "RESHAPE",
                [("x", [1, 4, 3], None), ("c_s", [2], np.array([1, 13], np.int32))],
                [1, 13],
                reshape_options([1, 13]),
                "ReshapeOptions",
            ),
            "has shape [1, 13] (13 elements) but RESHAPE (operator 0) reshapes 12",
        ),
        (
            _one_op(
                "CONCATENATION",
                [("a", [1, 4, 3], None), ("b", [1, 5, 3], None)],
                [1, 9, 4],
                concat_options(1),
                "ConcatenationOptions",
            ),
            "shape[2] is 4 but CONCATENATION (operator 0) computes 3",
        ),
        (
            _one_op(
                "CONCATENATION",
                [("a", [1, 4, 3], None), ("b", [1, 5, 2], None)],
                [1, 9, 3],
                concat_options(1),
                "ConcatenationOptions",
            ),
            "concatenates [[1, 4, 3], [1, 5, 2]] along axis 1",
        ),
        (_one_op("SOFTMAX", [("x", [1, 10], None)], [1, 11], None, None), "shape[1] is 11 but SOFTMAX"),
        (
            _one_op(
                "PAD",
                [
                    ("x", [1, 4, 4, 2], None),
                    ("c_p", [4, 2], np.array([[0, 0], [1, 1], [1, 1], [0, 0]], np.int32)),
                ],
                [1, 6, 6, 3],
                None,
                None,
            ),
            "shape[3] is 3 but PAD (operator 0) computes 2",
        ),
        (
            _one_op(
                "TRANSPOSE",
                [("x", [1, 4, 2], None), ("c_p", [3], np.array([0, 2, 1], np.int32))],
                [1, 4, 2],
                None,
                None,
            ),
            "shape[1] is 4 but TRANSPOSE (operator 0) computes 2",
        ),
        (
            _one_op(
                "MEAN",
                [("x", [1, 4, 4, 2], None), ("c_a", [2], np.array([1, 2], np.int32))],
                [1, 2, 2],
                None,
                None,
            ),
            "has shape [1, 2, 2] but MEAN (operator 0) computes [1, 2]",
        ),
    ],
)
def test_shape_rules(data: bytes, needle: str) -> None:
    if not needle:  # a valid one: the rule agrees with TFLite
        check_tflite(data)
        return
    refused(data, ShapeError, needle)


def test_a_tensor_name_that_is_not_utf8() -> None:
    refused(edit(small_model(), _set("name", b"x\xff")), ModelCheckError, "has a name that is not UTF-8")

"""ONNX patterns the integer path cannot map: each fails naming the node, the op and its quantisation,
all at once; --allow-float-fallback compiles through TVM's float QDQ path instead."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from onnx_builder import QNet

pytest.importorskip("tvm")
onnx = pytest.importorskip("onnx")


def _asymmetric_weights() -> bytes:
    net = QNet(11, "int8", True)
    x = net.input((1, 2, 6, 6))
    c = net.conv(x, 4, 3)
    for t in net.inits:  # make every weight zero point non-zero (int8 asymmetric weights)
        if t.name.startswith("wz"):
            t.CopyFrom(onnx.numpy_helper.from_array(np.full(4, 3, np.int8), t.name))
    return net.finish([c])


def _sin_between_qdq() -> bytes:
    net = QNet(12, "int8", True)
    x = net.input((1, 10))
    s = net.quant(net.node("Sin", [net.deq(x)]), (1, 10), net.qparams(1 / 256, -128))
    return net.finish([s])


def _mul_by_int32_constant() -> bytes:
    net = QNet(18, "int8", True)
    x = net.input((1, 6))
    c = net.const("c", np.int32(7))
    cd = net.node("DequantizeLinear", [c, net.const("cs", np.float32(0.01)), net.const("cz", np.int32(0))])
    return net.finish([net.quant(net.node("Mul", [net.deq(x), cd]), (1, 6))])


def _batched_attention_matmul() -> bytes:
    net = QNet(19, "int8", True)
    x = net.input((2, 3, 4))
    return net.finish([net.quant(net.node("MatMul", [net.deq(x), net.deq(x)]), (2, 3, 4))])


def _qlinear(op: str, inputs_after_x: list[str], net: QNet, x: str, shape: tuple[int, ...], **attrs) -> str:
    out = net.node(op, [x, *inputs_after_x], domain="com.microsoft" if op != "QLinearMatMul" else "", **attrs)
    net.q[out], net.shape[out] = net.q[x], shape
    return out


def _qlinear_softmax_without_opset() -> bytes:
    net = QNet(20, "uint8", False)
    x = net.input((2, 5))
    return net.finish([_qlinear("QLinearSoftmax", [*net.q[x], *net.qparams(1 / 256, 0)], net, x, (2, 5))])


def _qlinear_softmax_per_channel_output() -> bytes:
    net = QNet(21, "uint8", False)
    x = net.input((2, 5))
    yq = [net.const("ys", np.full(5, 1 / 256, np.float32)), net.const("yz", np.zeros(5, np.uint8))]
    return net.finish([_qlinear("QLinearSoftmax", [*net.q[x], *yq], net, x, (2, 5), opset=13)])


def _qlinear_mul_per_channel_output() -> bytes:
    net = QNet(22, "int8", False)
    x = net.input((1, 3))
    yq = [net.const("ys", np.full(3, 0.1, np.float32)), net.const("yz", np.zeros(3, np.int8))]
    return net.finish([_qlinear("QLinearMul", [*net.q[x], x, *net.q[x], *yq], net, x, (1, 3))])


def _qlinear_matmul_float_b() -> bytes:
    net = QNet(23, "int8", False)
    x = net.input((4, 4))
    return net.finish(
        [_qlinear("QLinearMatMul", [*net.q[x], "x", *net.q[x], *net.qparams()], net, x, (4, 4))]
    )


def _reduce_mean_dequantized_axes() -> bytes:
    net = QNet(24, "int8", True, opset=18)
    x = net.input((1, 2, 3, 3))
    axes = net.node("DequantizeLinear", [net.const("a", np.int8(2)), net.const("as", np.float32(1.0))])
    return net.finish([net.quant(net.node("ReduceMean", [net.deq(x), axes]), (1, 2, 1, 3))])


def _float_op_at_output() -> bytes:
    net = QNet(13, "int8", True)
    x = net.input((1, 4, 4, 4))
    relu = net.node("Softmax", [net.deq(x)])
    graph_out = onnx.helper.make_tensor_value_info(relu, onnx.TensorProto.FLOAT, [1, 4, 4, 4])
    graph = onnx.helper.make_graph(
        net.nodes,
        "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4, 4, 4])],
        [graph_out],
        net.inits,
    )
    return onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 13)]).SerializeToString()


def _per_channel_activation() -> bytes:
    net = QNet(14, "int8", True)
    qp = (net.const("s", np.full(3, 0.05, np.float32)), net.const("z", np.zeros(3, np.int8)))
    x = net.node("QuantizeLinear", ["x", *qp], axis=1)
    net.q[x], net.shape[x], net.input_shape = qp, (1, 3, 4, 4), (1, 3, 4, 4)
    return net.finish([x], dequantize=False)


def _runtime_scale() -> bytes:
    net = QNet(15, "int8", True)
    net.input_shape = (1, 8)
    scale = net.node("ReduceMax", ["x"], keepdims=0)
    x = net.node("QuantizeLinear", ["x", scale, net.const("z", np.int8(0))])
    net.q[x], net.shape[x] = (scale, net.inits[-1].name), (1, 8)
    return net.finish([x], dequantize=False)


def _pad_requantizes() -> bytes:
    net = QNet(16, "int8", True)
    x = net.input((1, 2, 4, 4))
    pads = net.const("pads", np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64))
    return net.finish([net.quant(net.node("Pad", [net.deq(x), pads]), (1, 2, 6, 6))])


def _bad_auto_pad() -> bytes:
    net = QNet(17, "int8", True)
    x = net.input((1, 2, 6, 6))
    p = net.quant(net.node("AveragePool", [net.deq(x)], kernel_shape=[3, 3], auto_pad="BOGUS"), (1, 2, 6, 6))
    return net.finish([p])


def _move(op: str, consts: list[np.ndarray | None], opset: int = 13, **attrs) -> Callable[[], bytes]:
    """A QDQ model: DequantizeLinear -> `op` (constant extra inputs) -> QuantizeLinear, same parameters."""

    def build() -> bytes:
        net = QNet(25, "int8", True, opset=opset)
        x = net.input((1, 2, 4, 4))
        return net.finish([net.move(op, x, (1, 2, 4, 4), consts, **attrs)])

    build.__name__ = f"_{op.lower()}_" + "_".join(f"{k}" for k in attrs) if attrs else f"_{op.lower()}"
    return build


def _resize_linear_3d() -> bytes:
    net = QNet(27, "int8", True)
    x = net.input((1, 2, 4))
    return net.finish([net.move("Resize", x, (1, 2, 8), [None, _f32s(1, 1, 2)], mode="linear")])


def _resize_linear_per_channel() -> bytes:
    """A linear Resize whose QuantizeLinear has one scale per channel (axis 1)."""
    net = QNet(28, "int8", True)
    x = net.input((1, 2, 4, 4))
    r = net.node("Resize", [net.deq(x), "", net.const("k", _f32s(1, 1, 2, 2))], mode="linear")
    scales = net.const("cs", np.array([0.05, 0.07], np.float32))
    zps = net.const("cz", np.zeros(2, np.int8))
    out = net.quant(r, (1, 2, 8, 8), (scales, zps))
    return net.finish([out])


def _slice_dequantized_starts() -> bytes:
    net = QNet(26, "int8", True)
    x = net.input((1, 2, 4, 4))
    starts = net.node("DequantizeLinear", [net.const("a", np.int8(1)), net.const("as", np.float32(1.0))])
    s = net.node("Slice", [net.deq(x), starts, net.const("e", np.array([3], np.int64))])
    return net.finish([net.quant(s, (1, 2, 4, 4), net.q[x])])


def _pad_value_is_an_activation() -> bytes:
    net = QNet(27, "int8", True)
    x = net.input((1, 4))
    d = net.deq(x)
    pads = net.const("p", np.array([0, 1, 0, 1], np.int64))
    return net.finish([net.quant(net.node("Pad", [d, pads, d]), (1, 6), net.q[x])])


def _float_binary(op: str, other: np.ndarray | None, dequantize_x: bool = True) -> Callable[[], bytes]:
    def build() -> bytes:
        net = QNet(28, "int8", True)
        x = net.input((1, 4))
        ins = [net.deq(x) if dequantize_x else net.const("c", np.ones((1, 4), np.float32))]
        if other is not None:
            ins.append(net.const("o", other))
        return net.finish([net.quant(net.node(op, ins), (1, 4))])

    build.__name__ = f"_{op.lower()}_{'no_act' if not dequantize_x else 'bad_operand'}"
    return build


def _deconv(mismatch: bool = False, **attrs) -> Callable[[], bytes]:
    def build() -> bytes:
        net = QNet(29, "int8", True)
        x = net.input((1, 2, 4, 4))
        y = net.conv_transpose(x, 3, 3, stride=2, pad=1, **attrs)
        if mismatch:  # weights for 5 input channels on a 2-channel input
            for t in net.inits:
                if t.name.startswith("w") and not t.name.startswith(("ws", "wz")):
                    t.CopyFrom(onnx.numpy_helper.from_array(np.ones((5, 3, 3, 3), np.int8), t.name))
        return net.finish([y])

    build.__name__ = "_deconv_" + ("mismatch" if mismatch else "_".join(attrs))
    return build


def _deconv_1d() -> bytes:
    net = QNet(30, "int8", True)
    x = net.input((1, 2, 5))
    w = net.node(
        "DequantizeLinear", [net.const("w", np.ones((2, 3, 3), np.int8)), net.const("s", np.float32(0.01))]
    )
    return net.finish([net.quant(net.node("ConvTranspose", [net.deq(x), w]), (1, 3, 7))])


def _argmax_of_float_input() -> bytes:
    net = QNet(31, "int8", True)
    x = net.input((1, 4))
    y = net.argmax(x, 1)
    net.nodes[-1].input[0] = "x"  # the float model input, not its quantised form
    return net.finish([x, y])


def _bn_training() -> bytes:
    net = QNet(32, "int8", True)
    x = net.input((1, 2, 3, 3))
    return net.finish([net.batch_norm(x, training_mode=1)])


def _bn_int_mean() -> bytes:
    net = QNet(33, "int8", True)
    x = net.input((1, 2, 3, 3))
    y = net.batch_norm(x)
    bn = next(n for n in net.nodes if n.op_type == "BatchNormalization")
    bn.input[3] = net.const("m", np.zeros(2, np.int64))
    return net.finish([y])


def _add_consts(both: bool) -> Callable[[], bytes]:
    def build() -> bytes:
        net = QNet(34, "int8", True)
        x = net.input((1, 4))
        c = net.node("DequantizeLinear", [net.const("c", np.int32(7)), net.const("cs", np.float32(0.01))])
        first = c if both else net.deq(x)
        return net.finish([net.quant(net.node("Add", [first, c]), (1, 4))])

    build.__name__ = "_add_two_constants" if both else "_add_int32_constant"
    return build


def _dropout(mask: bool) -> Callable[[], bytes]:
    def build() -> bytes:
        net = QNet(35, "int8", True, opset=13)
        x = net.input((1, 4))
        ins = [net.deq(x)]
        if not mask:
            ins += [net.const("r", np.float32(0.5)), net.const("t", np.bool_(True))]
        outs = [net._name("d"), net._name("m")] if mask else [net._name("d")]
        net.nodes.append(onnx.helper.make_node("Dropout", ins, outs, name=outs[0]))
        return net.finish([net.quant(outs[0], (1, 4))])

    build.__name__ = "_dropout_mask" if mask else "_dropout_training"
    return build


def _i64(*values: int) -> np.ndarray:
    return np.array(values, np.int64)


def _f32s(*values: float) -> np.ndarray:
    return np.array(values, np.float32)


MOVE_CASES = [
    (_dropout(True), ["Dropout", "mask output is not supported"]),
    (_dropout(False), ["Dropout", "training mode is not supported"]),
    (_add_consts(True), ["Add", "Add of two constants"]),
    (_add_consts(False), ["Add", "a int32 constant operand; needs int8 or uint8"]),
    (_bn_training, ["BatchNormalization", "training mode"]),
    (_bn_int_mean, ["BatchNormalization", "mean is not a float32 constant with one value per channel"]),
    (_argmax_of_float_input, ["ArgMax", "not an integer activation"]),
    (_deconv(group=2), ["ConvTranspose", "group > 1 or dilation"]),
    (_deconv(dilations=[2, 2]), ["ConvTranspose", "group > 1 or dilation"]),
    (_deconv(output_shape=[8, 8]), ["ConvTranspose", "output_shape or auto_pad"]),
    (_deconv(mismatch=True), ["ConvTranspose", "weights [5, 3, 3, 3] do not match 2 input channels"]),
    (_deconv_1d, ["ConvTranspose", "only 2-D ConvTranspose"]),
    (_float_binary("Sub", np.int64(3)), ["Sub", "input 1 of Sub is neither a dequantised activation"]),
    (_float_binary("Div", np.float32(2), dequantize_x=False), ["Div", "Div has no activation input"]),
    (_float_binary("Sub", None), ["Sub", "Sub needs two inputs"]),
    (_float_binary("Sub", np.ones(3, np.float32)), ["Sub", "input shapes [(1, 4), (3,)] do not broadcast"]),
    (_move("Slice", [], opset=9, starts=[1], ends=[3], axes=[2]), ["Slice", "constant starts and ends"]),
    (_slice_dequantized_starts, ["Slice", "starts are not a constant tensor"]),
    (_move("Slice", [_i64(2), _i64(2), _i64(3)]), ["Slice", "gives an empty tensor"]),
    (_move("Pad", [_i64(0, 0, 1, 1, 0, 0, 1, 1)], mode="reflect"), ["Pad", "mode 'reflect'"]),
    (_move("Pad", [_i64(1, 1)]), ["Pad", "are not 8 non-negative values"]),
    (_pad_value_is_an_activation, ["Pad", "constant value is not a constant"]),
    (
        _move(
            "Resize",
            [None, _f32s(1, 1, 2, 2)],
            mode="linear",
            coordinate_transformation_mode="tf_crop_and_resize",
        ),
        ["Resize", "coordinate_transformation_mode 'tf_crop_and_resize'"],
    ),
    (
        _move(
            "Resize",
            [None, _f32s(1, 1, 2, 2)],
            mode="linear",
            coordinate_transformation_mode="tf_half_pixel_for_nn",
        ),
        ["Resize", "'tf_half_pixel_for_nn' is for nearest only"],
    ),
    (
        _move("Resize", [None, _f32s(1, 1, 2, 2)], mode="linear", exclude_outside=1),
        ["Resize exclude_outside=1"],
    ),
    (_move("Resize", [None, _f32s(1, 1, 2, 2)], mode="cubic"), ["Resize", "mode 'nearest'", "'cubic'"]),
    (_resize_linear_3d, ["Resize", "only 4-D Resize with mode 'linear'"]),
    (
        _resize_linear_per_channel,
        ["QuantizeLinear", "output is int8 per-channel", "needs int8/uint8 per-tensor"],
    ),
    (_move("Resize", [None, _f32s(1, 2, 1, 1)], mode="nearest"), ["Resize", "only change H and W"]),
    (_move("Resize", [None, None, _i64(1, 4, 4, 4)], mode="nearest"), ["Resize", "only change H and W"]),
    (_move("Resize", [None], mode="nearest"), ["Resize", "constant 4-D scales or sizes"]),
    (
        _move("Resize", [None, _f32s(1, 1, 2, 2)], coordinate_transformation_mode="tf_crop_and_resize"),
        ["Resize", "coordinate_transformation_mode 'tf_crop_and_resize'"],
    ),
    (_move("Resize", [None, _f32s(1, 1, 2, 2)], nearest_mode="bogus"), ["Resize", "nearest_mode 'bogus'"]),
    (_move("Gather", [None]), ["Gather", "needs its indices"]),
    (_move("Squeeze", [_i64(1)]), ["Squeeze", "axes [1] that are not 1"]),
    (_move("Unsqueeze", []), ["Unsqueeze", "needs its axes"]),
]

CASES = [
    (_asymmetric_weights, ["Conv", "int8 per-channel", "zero points [3]", "symmetric weights"]),
    (_sin_between_qdq, ["Sin", "no integer kernel", "int8 per-tensor"]),
    (_mul_by_int32_constant, ["Mul", "Mul constant B is int32; needs int8 or uint8"]),
    (_batched_attention_matmul, ["MatMul", "needs matching 2-D inputs", "[2, 3, 4] x [2, 3, 4]"]),
    (_qlinear_softmax_without_opset, ["com.microsoft.QLinearSoftmax", "no 'opset' attribute"]),
    (_qlinear_softmax_per_channel_output, ["QLinearSoftmax", "needs per-tensor", "uint8 per-channel"]),
    (_qlinear_mul_per_channel_output, ["QLinearMul", "Mul input C is int8 per-channel"]),
    (_qlinear_matmul_float_b, ["QLinearMatMul", "neither a constant nor an integer activation"]),
    (_reduce_mean_dequantized_axes, ["ReduceMean", "axes are not a constant int64 tensor"]),
    (_float_op_at_output, ["model output", "float Softmax with no QuantizeLinear"]),
    (_per_channel_activation, ["QuantizeLinear", "per-channel", "needs int8/uint8 per-tensor"]),
    (_runtime_scale, ["ReduceMax", "no integer kernel", "QuantizeLinear"]),
    (_pad_requantizes, ["Pad", "changes the quantisation"]),
    (_bad_auto_pad, ["AveragePool", "auto_pad='BOGUS'"]),
]


@pytest.mark.parametrize(
    "build, needles", CASES + MOVE_CASES, ids=[c[0].__name__.strip("_") for c in CASES + MOVE_CASES]
)
def test_unsupported_pattern_is_named(build, needles) -> None:
    from tvmc_micro.compiler.quantized import UnsupportedQuantizedModel
    from tvmc_micro.compiler.quantized.onnx_importer import import_onnx_quantized

    with pytest.raises(UnsupportedQuantizedModel) as info:
        import_onnx_quantized(build(), "m")
    text = str(info.value)
    for needle in needles:
        assert needle in text, text
    assert "--allow-float-fallback" in info.value.hint


def test_unreadable_bytes() -> None:
    from tvmc_micro.compiler.quantized import QuantizedModelError
    from tvmc_micro.compiler.quantized.onnx_importer import import_onnx_quantized, is_quantized_onnx

    assert not is_quantized_onnx(b"\x00garbage")
    with pytest.raises(QuantizedModelError, match="cannot read the ONNX model"):
        import_onnx_quantized(b"\x08\x07garbage", "m")


def _tvmc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tvmc_micro.cli.main", *args], capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
def test_cli_error_then_float_fallback(tmp_path: Path) -> None:
    src = tmp_path / "asym.onnx"
    src.write_bytes(_asymmetric_weights())
    proc = _tvmc("compile", str(src), "-o", str(tmp_path / "a.tar"))
    assert proc.returncode == 2, proc.stderr
    assert "integer int8 path cannot compile this model" in proc.stderr
    assert "symmetric weights" in proc.stderr and "hint:" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = _tvmc("compile", str(src), "-o", str(tmp_path / "b.tar"), "--allow-float-fallback")
    assert proc.returncode == 0, proc.stderr
    import json
    import tarfile

    with tarfile.open(tmp_path / "b.tar") as tar:
        member = tar.extractfile("metadata.json")
        assert member is not None
        assert json.load(member)["models"][0]["compute_path"] == "qdq"

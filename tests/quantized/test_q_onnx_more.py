"""quantize_static graphs around Sub, GlobalMaxPool, Unsqueeze -> MatMul and Resize, and a model ending
in a float op after DequantizeLinear, on the integer path and bit-exact with onnxruntime (QDQ at its
default optimisation level, QOperator at ORT_DISABLE_ALL); Resize 'linear' compiles in its QDQ group
(tests/compiler/test_stress_regressions.py) and stays refused by name on QOperator's integer tensor."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from onnx_builder import FloatNet

pytest.importorskip("onnxruntime.quantization")
pytestmark = pytest.mark.usefixtures("tvm_available")

N_INPUTS = 12


def _const(net: FloatNet, value: np.ndarray) -> str:
    from onnx import numpy_helper

    name = f"c{len(net.inits)}"
    net.inits.append(numpy_helper.from_array(value, name))
    return name


def sub_output() -> bytes:
    """Conv + Relu minus a 1x1 conv: quantize_static leaves Sub float, so the model ends in float."""
    net = FloatNet(11, (1, 3, 8, 8), opset=13)
    a = net.op("Relu", [net.conv("x", 3, 4, 3)])
    return net.finish(net.op("Sub", [a, net.conv("x", 3, 4, 1)]), (1, 4, 8, 8))


def global_max_pool() -> bytes:
    net = FloatNet(12, (1, 3, 8, 8), opset=13)
    g = net.op("GlobalMaxPool", [net.conv("x", 3, 6, 3)])
    return net.finish(net.conv(g, 6, 4, 1), (1, 4, 1, 1))


def global_max_pool_output() -> bytes:
    net = FloatNet(23, (1, 3, 8, 8), opset=13)
    return net.finish(net.op("GlobalMaxPool", [net.conv("x", 3, 6, 3)]), (1, 6, 1, 1))


def unsqueeze_matmul() -> bytes:
    """Unsqueeze of the float input, then a MatMul of the 3-D result (rows = the leading axes)."""
    net = FloatNet(25, (2, 16), opset=13)
    u = net.op("Unsqueeze", ["x", _const(net, np.array([0], np.int64))])
    h = net.op("Relu", [net.op("MatMul", [u, net.weight(16, 8)])])
    return net.finish(net.op("Unsqueeze", [h, _const(net, np.array([3], np.int64))]), (1, 2, 8, 1))


def sub_resize() -> bytes:
    """Sub of a constant between convs, Resize nearest x2."""
    net = FloatNet(21, (1, 3, 4, 4), opset=13)
    a = net.conv("x", 3, 4, 3)
    s = net.op("Sub", [a, _const(net, np.full((1, 4, 1, 1), 0.3, np.float32))])
    u = net.op("Resize", [s, "", _const(net, np.array([1, 1, 2, 2], np.float32))], mode="nearest")
    return net.finish(net.conv(u, 4, 2, 3), (1, 2, 8, 8))


def sub_input() -> bytes:
    """The float model input minus a conv of it: in QOperator models a float Sub reading the input
    itself, then a standalone QuantizeLinear."""
    net = FloatNet(22, (1, 4, 8, 8), opset=13)
    s = net.op("Sub", ["x", net.conv("x", 4, 4, 3)])
    return net.finish(net.conv(s, 4, 2, 1), (1, 2, 8, 8))


def resize_linear() -> bytes:
    net = FloatNet(13, (1, 3, 4, 4), opset=13)
    u = net.op(
        "Resize", [net.conv("x", 3, 4, 3), "", _const(net, np.array([1, 1, 2, 2], np.float32))], mode="linear"
    )
    return net.finish(net.conv(u, 4, 2, 3), (1, 2, 8, 8))


NETS: dict[str, Callable[[], bytes]] = {
    "sub_output": sub_output,
    "gmp": global_max_pool,
    "gmp_output": global_max_pool_output,
    "unsqueeze_matmul": unsqueeze_matmul,
    "sub_resize": sub_resize,
    "sub_input": sub_input,
}
CASES = [f"{net}_{fmt}_{act}" for net in NETS for fmt in ("qdq", "qop") for act in ("int8", "uint8")]


def _quantized(tmp: Path, name: str, build: Callable[[], bytes]) -> bytes:
    from test_q_onnx_nets import _quantize

    net, fmt, act = name.rsplit("_", 2)
    src, dst = tmp / f"{net}.onnx", tmp / f"{name}.onnx"
    src.write_bytes(build())
    _quantize(src, dst, fmt, act, per_channel=fmt == "qdq")
    return dst.read_bytes()


def _compile_host(model: bytes, name: str) -> Callable[[np.ndarray], list[np.ndarray]]:
    import onnx
    import tvm
    from tvm import relax
    from tvmc_micro.compiler.quantized.onnx_importer import import_onnx_quantized

    mod = import_onnx_quantized(onnx.load_from_string(model), name)
    vm = relax.VirtualMachine(tvm.compile(mod, target="llvm"), tvm.cpu())

    def run(x: np.ndarray) -> list[np.ndarray]:
        out = vm["main"](tvm.runtime.tensor(x))
        return [out.numpy()] if hasattr(out, "numpy") else [o.numpy() for o in out]

    return run


@pytest.mark.parametrize("name", CASES)
def test_quantize_static_patterns_bit_exact(tmp_path: Path, name: str) -> None:
    import onnxruntime as ort

    model = _quantized(tmp_path, name, NETS[name.rsplit("_", 2)[0]])
    ours = _compile_host(model, name.replace("-", "_"))
    so = ort.SessionOptions()
    if "_qop_" in name:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    rng = np.random.default_rng(5)
    for _ in range(N_INPUTS):
        x = rng.uniform(-1.5, 1.5, size=inp.shape).astype(np.float32)
        want = sess.run(None, {inp.name: x})[0]
        got = ours(x)[0]
        assert got.dtype == want.dtype and got.shape == want.shape
        assert np.array_equal(got.view(np.int32), want.view(np.int32)), np.abs(got - want).max()


@pytest.mark.parametrize("fmt", ["qop"])
def test_resize_linear_is_refused_by_name(tmp_path: Path, fmt: str) -> None:
    import onnx
    from tvmc_micro.compiler.quantized import UnsupportedQuantizedModel
    from tvmc_micro.compiler.quantized.onnx_importer import import_onnx_quantized

    model = _quantized(tmp_path, f"resize_linear_{fmt}_int8", resize_linear)
    with pytest.raises(UnsupportedQuantizedModel, match=r"Resize.*only 4-D Resize with mode 'nearest'"):
        import_onnx_quantized(onnx.load_from_string(model), "resize_linear")


def test_float_output_of_another_op_is_refused() -> None:
    """A float op at the output that is neither a move, Add/Sub/Mul/Div nor an elementwise op the importer
    has a table for (here Softmax) is still refused, naming it."""
    from onnx import TensorProto, helper, numpy_helper
    from tvmc_micro.compiler.quantized import UnsupportedQuantizedModel
    from tvmc_micro.compiler.quantized.onnx_importer import import_onnx_quantized

    inits = [
        numpy_helper.from_array(np.float32(0.05), "s"),
        numpy_helper.from_array(np.int8(3), "z"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
        helper.make_node("DequantizeLinear", ["q", "s", "z"], ["d"]),
        helper.make_node("Softmax", ["d"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    with pytest.raises(
        UnsupportedQuantizedModel, match=r"computed by a float Softmax with no QuantizeLinear"
    ):
        import_onnx_quantized(model, "tail")

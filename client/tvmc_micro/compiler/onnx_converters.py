"""Converters added to TVM's ONNX frontend (used while it imports a model: `onnx_converter_fixes()`).

PRelu of opset < 7 (PyTorch's old exports): a 1-D slope of C values applies per channel (axis 1), as
ONNX's own backend test data for those models has it; TVM applies any 1-D slope along the last axis (an
AssertionError in lowering when the sizes differ, a wrong result when they agree by chance). From opset
7 on the slope broadcasts as numpy does; a slope that does not broadcast is refused by name.

Float ONNX LSTM on the float path, with the kernel of TFLite's float LSTM (float_lstm_kernel.py).

TVM 0.27's ONNX frontend has no LSTM converter, so models with the op (PyTorch's nn.LSTM export,
onnxruntime's test models) were refused although onnxruntime runs them. The ONNX op is stateless (the
initial state is an input, zero when absent) and its default activations are TFLite's (sigmoid gates,
tanh cell and output), so each direction is one call of the same kernel with constant weights: gate
blocks reordered from ONNX's (input, output, forget, cell) to TFLite's (input, forget, cell, output), the
two bias vectors summed, a reverse direction run on the time-reversed sequence.

Refused by name: peepholes (input P), sequence_lens, other activations, clip, input_forget, layout=1
(batch-first, which onnxruntime does not run either), and weights, biases or initial states that are not
constants.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from tvmc_micro.compiler.errors import LoweringError

OPS = ("LSTM",)  # what this module adds to TVM's ONNX converter map (PRelu it only replaces)
_ONNX_TO_TFLITE_GATES = [0, 2, 3, 1]  # ONNX blocks i, o, f, c -> TFLite order i, f, c, o
_DEFAULT_ACTIVATIONS = ("sigmoid", "tanh", "tanh")


def _const(value: Any, what: str) -> np.ndarray | None:
    import tvm

    if value is None:
        return None
    if not isinstance(value, tvm.ir.GenericConst):
        raise LoweringError(
            f"ONNX LSTM: {what} is computed at run time; only constant {what} are supported",
            "export the model with the LSTM's weights, biases and initial state as initializers",
        )
    return np.asarray(value.value.numpy(), np.float32)


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def convert_lstm(bb: Any, inputs: list[Any], attr: dict[str, Any]) -> Any:
    """The Relax tuple (Y, Y_h, Y_c) of one ONNX LSTM node."""
    from tvm import relax

    from tvmc_micro.compiler.float_lstm_kernel import lstm_float_kernel

    inputs = list(inputs) + [None] * (8 - len(inputs))
    x, seq_lens, peephole = inputs[0], inputs[4], inputs[7]
    if peephole is not None:
        raise LoweringError("ONNX LSTM with peephole connections (input P) is not supported")
    if seq_lens is not None:
        raise LoweringError("ONNX LSTM with sequence_lens is not supported (every sequence is full length)")
    activations = tuple(_text(a).lower() for a in attr.get("activations", ()))
    if activations and any(a != _DEFAULT_ACTIVATIONS[k % 3] for k, a in enumerate(activations)):
        raise LoweringError(
            f"ONNX LSTM activations {list(activations)} are not supported (only the defaults)"
        )
    for key in ("clip", "input_forget", "activation_alpha", "activation_beta", "layout"):
        if attr.get(key):
            raise LoweringError(f"ONNX LSTM attribute {key}={attr[key]!r} is not supported")
    direction = _text(attr.get("direction", "forward"))
    w, r = _const(inputs[1], "weights W"), _const(inputs[2], "weights R")
    assert w is not None and r is not None  # required inputs of the op
    n_dir, four_h, n_input = w.shape
    hidden = four_h // 4
    bias = _const(inputs[3], "biases B")
    init_h, init_c = _const(inputs[5], "initial_h"), _const(inputs[6], "initial_c")
    shape = [int(d) for d in x.ty.shape]
    steps, batches = shape[0], shape[1]
    func = lstm_float_kernel(batches, steps, n_input, hidden, True, False, 0.0)
    gv = bb.add_func(func, "onnx_lstm")
    seq = x  # time-major, as the kernel's time_major mode
    ys, hs, cs = [], [], []
    for d in range(n_dir):
        gates = _ONNX_TO_TFLITE_GATES
        w_in = w[d].reshape(4, hidden, n_input)[gates]
        w_rec = r[d].reshape(4, hidden, hidden)[gates]
        b = np.zeros((4, hidden), np.float32)
        if bias is not None:
            b = (bias[d, : 4 * hidden] + bias[d, 4 * hidden :]).reshape(4, hidden)[gates]
        h0 = np.zeros((batches, hidden), np.float32) if init_h is None else init_h[d]
        c0 = np.zeros((batches, hidden), np.float32) if init_c is None else init_c[d]
        reverse = direction == "reverse" or (direction == "bidirectional" and d == 1)
        src = bb.emit(relax.op.flip(seq, axis=0)) if reverse else seq
        types = [
            relax.TensorType([steps, batches, hidden], "float32"),
            relax.TensorType([batches, hidden], "float32"),
            relax.TensorType([batches, hidden], "float32"),
        ]
        args = [src, *(relax.const(np.ascontiguousarray(a, np.float32)) for a in (w_in, w_rec, b, h0, c0))]
        res = bb.emit(relax.call_tir(gv, args, types), name_hint="onnx_lstm")
        y = bb.emit(relax.TupleGetItem(res, 0))
        if reverse:
            y = bb.emit(relax.op.flip(y, axis=0))
        ys.append(bb.emit(relax.op.expand_dims(y, 1)))  # [steps, 1, batch, hidden]
        hs.append(bb.emit(relax.op.expand_dims(relax.TupleGetItem(res, 1), 0)))
        cs.append(bb.emit(relax.op.expand_dims(relax.TupleGetItem(res, 2), 0)))
    y_all = ys[0] if n_dir == 1 else bb.emit(relax.op.concat(ys, axis=1))
    h_all = hs[0] if n_dir == 1 else bb.emit(relax.op.concat(hs, axis=0))
    c_all = cs[0] if n_dir == 1 else bb.emit(relax.op.concat(cs, axis=0))
    return relax.Tuple([y_all, h_all, c_all])


def _prelu_slope(x: Any, slope: Any, opset: int) -> Any:
    """The slope reshaped so that it broadcasts against x as the op's opset defines."""
    from tvm import relax

    x_shape = [int(d) for d in x.ty.shape]
    s_shape = [int(d) for d in slope.ty.shape]
    size = int(np.prod(s_shape)) if s_shape else 1
    if opset < 7 and len(s_shape) == 1 and size > 1 and len(x_shape) >= 2 and x_shape[1] == size:
        # Legacy PRelu: one slope per channel.
        return relax.op.reshape(slope, [size] + [1] * (len(x_shape) - 2))
    try:
        np.broadcast_shapes(tuple(x_shape), tuple(s_shape))
    except ValueError:
        raise LoweringError(
            f"ONNX PRelu: slope of shape {s_shape} does not broadcast against the input {x_shape}",
            "give the slope a shape that broadcasts (e.g. [C, 1, 1] for NCHW per-channel slopes)",
        ) from None
    return slope


@contextmanager
def onnx_converter_fixes() -> Iterator[None]:
    """TVM's ONNX converter map with our LSTM and PRelu in it, while the block runs."""
    from tvm.relax.frontend.onnx import onnx_frontend as of

    class LSTM(of.OnnxOpConverter):  # type: ignore[misc]
        @classmethod
        def _impl_v7(cls, bb: Any, inputs: list[Any], attr: dict[str, Any], params: Any) -> Any:
            return convert_lstm(bb, inputs, attr)

    class PRelu(of.OnnxOpConverter):  # type: ignore[misc]
        @classmethod
        def _impl_v1(cls, bb: Any, inputs: list[Any], attr: dict[str, Any], params: Any) -> Any:
            return cls._convert(bb, inputs, attr, params, 6)

        @classmethod
        def _impl_v7(cls, bb: Any, inputs: list[Any], attr: dict[str, Any], params: Any) -> Any:
            return cls._convert(bb, inputs, attr, params, 7)

        @classmethod
        def _convert(cls, bb: Any, inputs: list[Any], attr: dict[str, Any], params: Any, opset: int) -> Any:
            slope = _prelu_slope(inputs[0], inputs[1], opset)
            if slope is not inputs[1]:
                slope = bb.normalize(slope)
            return of.PRelu._impl_v1(bb, [inputs[0], slope], attr, params)

    original = of._get_convert_map

    def with_fixes() -> dict[str, Any]:
        table = dict(original())
        table["LSTM"] = LSTM
        table["PRelu"] = PRelu
        return table

    of._get_convert_map = with_fixes
    try:
        yield
    finally:
        of._get_convert_map = original

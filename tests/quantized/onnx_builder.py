"""Build small quantized ONNX models (QDQ and QLinear* forms) with deterministic random weights.

`QNet` tracks each activation's (scale, zero point) and writes either form:
* QDQ: DequantizeLinear -> float op -> QuantizeLinear groups (what onnxruntime.quantization writes);
* QLinear: QLinearConv / QLinearMatMul / com.microsoft QLinearAdd, ... with the parameters as inputs.
Weights are symmetric int8 (zero point 0), per-channel or per-tensor; biases int32 at scale x·w.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class QNet:
    def __init__(self, seed: int, dtype: str = "int8", qdq: bool = True, opset: int = 13) -> None:
        self.opset = opset
        self.rng = np.random.default_rng(seed)
        self.dtype = np.int8 if dtype == "int8" else np.uint8
        self.qdq = qdq
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self.q: dict[str, tuple[str, str]] = {}  # activation -> (scale name, zero point name)
        self.shape: dict[str, tuple[int, ...]] = {}
        self.indices: set[str] = set()  # int64 outputs (ArgMax)
        self.n = 0

    # --- plumbing ---
    def _name(self, base: str) -> str:
        self.n += 1
        return f"{base}{self.n}"

    def const(self, base: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        name = self._name(base)
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def qparams(self, scale: float | None = None, zp: int | None = None) -> tuple[str, str]:
        scale = float(self.rng.uniform(0.02, 0.1)) if scale is None else scale
        if zp is None:
            zp = int(self.rng.integers(-20, 20)) + (128 if self.dtype == np.uint8 else 0)
        return self.const("s", np.float32(scale)), self.const("z", self.dtype(zp))

    def node(self, op: str, inputs: list[str], domain: str = "", **attrs: Any) -> str:
        from onnx import helper

        out = self._name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, domain=domain, **attrs))
        return out

    def deq(self, x: str) -> str:
        return self.node("DequantizeLinear", [x, *self.q[x]])

    def quant(self, f: str, shape: tuple[int, ...], qp: tuple[str, str] | None = None) -> str:
        qp = qp or self.qparams()
        out = self.node("QuantizeLinear", [f, *qp])
        self.q[out], self.shape[out] = qp, shape
        return out

    # --- layers ---
    def input(self, shape: tuple[int, ...], scale: float = 0.05) -> str:
        self.input_shape = shape
        return self.quant("x", shape, self.qparams(scale))

    def conv(
        self,
        x: str,
        cout: int,
        k: int,
        stride: int = 1,
        pad: int = 0,
        group: int = 1,
        per_channel: bool = True,
        relu: bool = False,
    ) -> str:
        n, cin, h, w = self.shape[x]
        wt = self.rng.integers(-127, 128, size=(cout, cin // group, k, k)).astype(np.int8)
        ws = self.rng.uniform(0.002, 0.02, size=cout if per_channel else 1).astype(np.float32)
        bias = self.rng.integers(-3000, 3000, size=cout).astype(np.int32)
        oh, ow = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
        attrs = dict(kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4, group=group)
        out_shape = (n, cout, oh, ow)
        yq = self.qparams(zp=-128 if relu and self.dtype == np.int8 else (0 if relu else None))
        w_name = self.const("w", wt)
        ws_name = self.const("ws", ws if per_channel else np.float32(ws[0]))
        wz_name = self.const("wz", np.zeros(cout, np.int8) if per_channel else np.int8(0))
        b_name = self.const("b", bias)
        if not self.qdq:
            out = self.node("QLinearConv", [x, *self.q[x], w_name, ws_name, wz_name, *yq, b_name], **attrs)
            self.q[out], self.shape[out] = yq, out_shape
            return out
        xs = self.inits_value(self.q[x][0])
        bs = self.const("bs", (xs * ws).astype(np.float32) if per_channel else np.float32(xs * ws[0]))
        wdq = self.node("DequantizeLinear", [w_name, ws_name, wz_name], axis=0)
        bz = self.const("bz", np.zeros_like(bias) if per_channel else np.int32(0))
        bdq = self.node("DequantizeLinear", [b_name, bs, bz], axis=0)
        f = self.node("Conv", [self.deq(x), wdq, bdq], **attrs)
        if relu:
            f = self.node("Relu", [f])
        return self.quant(f, out_shape, yq)

    def conv_transpose(
        self,
        x: str,
        cout: int,
        k: int,
        stride: int,
        pad: int,
        extra: int = 0,
        relu: bool = False,
        **attrs: Any,
    ) -> str:
        """QDQ ConvTranspose (ORT has no QLinear kernel for it), per-channel weights on axis 1."""
        n, cin, h, w = self.shape[x]
        wt = self.rng.integers(-127, 128, size=(cin, cout, k, k)).astype(np.int8)
        ws = self.rng.uniform(0.002, 0.02, size=cout).astype(np.float32)
        bias = self.rng.integers(-3000, 3000, size=cout).astype(np.int32)
        xs = self.inits_value(self.q[x][0])
        wdq = self.node(
            "DequantizeLinear",
            [self.const("w", wt), self.const("ws", ws), self.const("wz", np.zeros(cout, np.int8))],
            axis=1,
        )
        bdq = self.node(
            "DequantizeLinear",
            [
                self.const("b", bias),
                self.const("bs", (xs * ws).astype(np.float32)),
                self.const("bz", np.zeros(cout, np.int32)),
            ],
            axis=0,
        )
        size = stride * (h - 1) + extra + k - 2 * pad, stride * (w - 1) + extra + k - 2 * pad
        f = self.node(
            "ConvTranspose",
            [self.deq(x), wdq, bdq],
            strides=[stride, stride],
            pads=[pad] * 4,
            output_padding=[extra, extra],
            **attrs,
        )
        if relu:
            f = self.node("Relu", [f])
        return self.quant(f, (n, cout, *size))

    def gemm(self, x: str, units: int, per_channel: bool = False) -> str:
        batches, depth = self.shape[x]
        wt = self.rng.integers(-127, 128, size=(units, depth)).astype(np.int8)  # transB layout
        ws = self.rng.uniform(0.002, 0.02, size=units if per_channel else 1).astype(np.float32)
        bias = self.rng.integers(-3000, 3000, size=units).astype(np.int32)
        yq = self.qparams()
        if not self.qdq:
            w_name = self.const("w", np.ascontiguousarray(wt.T))  # QLinearMatMul: B is [K, N]
            ws_name = self.const("ws", ws if per_channel else np.float32(ws[0]))
            wz = self.const("wz", np.zeros(units, np.int8) if per_channel else np.int8(0))
            out = self.node("QLinearMatMul", [x, *self.q[x], w_name, ws_name, wz, *yq])
            self.q[out], self.shape[out] = yq, (batches, units)
            return out
        xs = self.inits_value(self.q[x][0])
        w_name = self.const("w", wt)
        ws_name = self.const("ws", ws if per_channel else np.float32(ws[0]))
        wz = self.const("wz", np.zeros(units, np.int8) if per_channel else np.int8(0))
        bs = self.const("bs", (xs * ws).astype(np.float32) if per_channel else np.float32(xs * ws[0]))
        wdq = self.node("DequantizeLinear", [w_name, ws_name, wz], axis=0)
        bz = self.const("bz", np.zeros_like(bias) if per_channel else np.int32(0))
        bdq = self.node("DequantizeLinear", [self.const("b", bias), bs, bz], axis=0)
        f = self.node("Gemm", [self.deq(x), wdq, bdq], transB=1)
        return self.quant(f, (batches, units))

    def add(self, a: str | float | np.ndarray, b: str | float | np.ndarray) -> str:
        """a + b (numpy broadcasting); either may be numbers: a quantised constant."""
        yq = self.qparams()
        a = a if isinstance(a, str) else self.quantized_const(a)
        b = b if isinstance(b, str) else self.quantized_const(b)
        shape = tuple(int(d) for d in np.broadcast_shapes(self.shape[a], self.shape[b]))
        if not self.qdq:
            out = self.node("QLinearAdd", [a, *self.q[a], b, *self.q[b], *yq], domain="com.microsoft")
            self.q[out], self.shape[out] = yq, shape
            return out
        return self.quant(self.node("Add", [self.deq(a), self.deq(b)]), shape, yq)

    def avg_pool(self, x: str, k: int, stride: int, pad: int = 0, same_quant: bool = False) -> str:
        """`same_quant`: the output keeps the input's parameters (then means of k*k values often sit
        exactly between two outputs, where the float and integer formulas round apart)."""
        n, c, h, w = self.shape[x]
        attrs = dict(kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4)
        out_shape = (n, c, (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1)
        yq = self.q[x] if same_quant else self.qparams()
        if not self.qdq:
            out = self.node("QLinearAveragePool", [x, *self.q[x], *yq], domain="com.microsoft", **attrs)
            self.q[out], self.shape[out] = yq, out_shape
            return out
        return self.quant(self.node("AveragePool", [self.deq(x)], **attrs), out_shape, yq)

    def global_avg_pool(self, x: str) -> str:
        n, c, _, _ = self.shape[x]
        yq = self.qparams()
        if not self.qdq:
            out = self.node("QLinearGlobalAveragePool", [x, *self.q[x], *yq], domain="com.microsoft")
            self.q[out], self.shape[out] = yq, (n, c, 1, 1)
            return out
        return self.quant(self.node("GlobalAveragePool", [self.deq(x)]), (n, c, 1, 1), yq)

    def max_pool(self, x: str, k: int, stride: int) -> str:
        n, c, h, w = self.shape[x]
        f = self.node("MaxPool", [self.deq(x)], kernel_shape=[k, k], strides=[stride, stride])
        return self.quant(f, (n, c, (h - k) // stride + 1, (w - k) // stride + 1), self.q[x])

    def flatten(self, x: str) -> str:
        shape = self.shape[x]
        return self.quant(self.node("Flatten", [self.deq(x)]), (shape[0], int(np.prod(shape[1:]))), self.q[x])

    def sigmoid(self, x: str) -> str:
        yq = self.qparams(1.0 / 256, -128 if self.dtype == np.int8 else 0)
        if not self.qdq:
            out = self.node("QLinearSigmoid", [x, *self.q[x], *yq], domain="com.microsoft")
            self.q[out], self.shape[out] = yq, self.shape[x]
            return out
        return self.quant(self.node("Sigmoid", [self.deq(x)]), self.shape[x], yq)

    def concat(self, parts: list[str], axis: int) -> str:
        shape = list(self.shape[parts[0]])
        shape[axis] = sum(self.shape[p][axis] for p in parts)
        yq = self.qparams()
        if not self.qdq:
            ins = [*yq]
            for p in parts:
                ins += [p, *self.q[p]]
            out = self.node("QLinearConcat", ins, domain="com.microsoft", axis=axis)
            self.q[out], self.shape[out] = yq, tuple(shape)
            return out
        f = self.node("Concat", [self.deq(p) for p in parts], axis=axis)
        return self.quant(f, tuple(shape), yq)

    def _qlinear_unary(self, op: str, x: str, yq: tuple[str, str], **attrs: Any) -> str:
        out = self.node(op, [x, *self.q[x], *yq], domain="com.microsoft", **attrs)
        self.q[out], self.shape[out] = yq, self.shape[x]
        return out

    def softmax(self, x: str, axis: int = -1) -> str:
        """Output quantised as onnxruntime.quantization does it: scale 1/256, the type's lowest value."""
        yq = self.qparams(1.0 / 256, -128 if self.dtype == np.int8 else 0)
        if not self.qdq:
            return self._qlinear_unary("QLinearSoftmax", x, yq, axis=axis, opset=self.opset)
        return self.quant(self.node("Softmax", [self.deq(x)], axis=axis), self.shape[x], yq)

    def mul(self, a: str, b: str | float | np.ndarray) -> str:
        """a * b (numpy broadcasting); b an activation or, given as numbers, a constant quantised with
        its own scale (as the quantizer does)."""
        yq = self.qparams()
        b = b if isinstance(b, str) else self.quantized_const(b)
        shape = tuple(int(d) for d in np.broadcast_shapes(self.shape[a], self.shape[b]))
        if not self.qdq:
            out = self.node("QLinearMul", [a, *self.q[a], b, *self.q[b], *yq], domain="com.microsoft")
            self.q[out], self.shape[out] = yq, shape
            return out
        return self.quant(self.node("Mul", [self.deq(a), self.deq(b)]), shape, yq)

    def quantized_const(self, value: float | np.ndarray) -> str:
        """A constant quantised with its own scale (as the quantizer does), usable like an activation."""
        values = np.asarray(value, np.float32)
        scale = float(np.abs(values).max()) / 100
        offset = 0 if self.dtype == np.int8 else 128
        raw = (np.rint(values / scale) + offset).astype(self.dtype)
        name = self.const("c", raw if values.ndim else self.dtype(raw))
        self.q[name], self.shape[name] = self.qparams(scale, offset), values.shape
        return name

    def leaky_relu(self, x: str, alpha: float) -> str:
        yq = self.qparams()
        if not self.qdq:
            return self._qlinear_unary("QLinearLeakyRelu", x, yq, alpha=alpha)
        return self.quant(self.node("LeakyRelu", [self.deq(x)], alpha=alpha), self.shape[x], yq)

    def float_op(self, op: str, x: str, shape: tuple[int, ...] | None = None, **attrs: Any) -> str:
        """DequantizeLinear -> op -> QuantizeLinear in both forms (ops with no QLinear kernel in ORT)."""
        return self.quant(self.node(op, [self.deq(x)], **attrs), shape or self.shape[x])

    def float_binary(self, op: str, a: str, b: str | np.ndarray) -> str:
        """DequantizeLinear -> Sub/Div -> QuantizeLinear in both forms; b an activation or a float
        constant left unquantised (as quantize_static leaves the constants of ops it does not know)."""
        other = self.deq(b) if isinstance(b, str) else self.const("f", np.asarray(b, np.float32))
        shape = np.broadcast_shapes(self.shape[a], self.shape[b] if isinstance(b, str) else np.shape(b))
        return self.quant(self.node(op, [self.deq(a), other]), tuple(int(d) for d in shape))

    def batch_norm(self, x: str, relu: bool = False, **attrs: Any) -> str:
        """DequantizeLinear -> BatchNormalization (float parameters) [-> Relu] -> QuantizeLinear."""
        c = self.shape[x][1]
        params = [
            self.rng.uniform(0.5, 2.0, c),
            self.rng.normal(0.0, 0.2, c),
            self.rng.normal(0.0, 0.3, c),
            self.rng.uniform(0.2, 3.0, c),
        ]
        names = [self.const("bn", v.astype(np.float32)) for v in params]
        f = self.node("BatchNormalization", [self.deq(x), *names], epsilon=1e-3, **attrs)
        if relu:
            f = self.node("Relu", [f])
        return self.quant(f, self.shape[x])

    def matmul(self, a: str, b: str) -> str:
        """A [M, K] x B [K, N], both activations (attention's Q.K^T)."""
        shape = (self.shape[a][0], self.shape[b][1])
        yq = self.qparams()
        if not self.qdq:
            out = self.node("QLinearMatMul", [a, *self.q[a], b, *self.q[b], *yq])
            self.q[out], self.shape[out] = yq, shape
            return out
        return self.quant(self.node("MatMul", [self.deq(a), self.deq(b)]), shape, yq)

    def transpose(self, x: str) -> str:
        shape = tuple(reversed(self.shape[x]))
        if not self.qdq:
            out = self.node("Transpose", [x])
            self.q[out], self.shape[out] = self.q[x], shape
            return out
        return self.quant(self.node("Transpose", [self.deq(x)]), shape, self.q[x])

    def move(
        self,
        op: str,
        x: str,
        shape: tuple[int, ...],
        consts: list[np.ndarray | None] | None = None,
        requantize: bool = False,
        **attrs: Any,
    ) -> str:
        """A data-movement op (Pad, Resize, Slice, Gather, Squeeze, ...) with constant extra inputs ("" for
        None); the output keeps the input's quantisation unless `requantize` (QDQ only)."""
        ins = ["" if c is None else self.const("k", c) for c in consts or []]
        if not self.qdq:
            out = self.node(op, [x, *ins], **attrs)
            self.q[out], self.shape[out] = self.q[x], shape
            return out
        return self.quant(
            self.node(op, [self.deq(x), *ins], **attrs), shape, None if requantize else self.q[x]
        )

    def split(self, x: str, axis: int, sizes: list[int]) -> list[str]:
        from onnx import helper

        outs = [self._name("split") for _ in sizes]
        src = x if not self.qdq else self.deq(x)
        split = self.const("k", np.array(sizes, np.int64))
        self.nodes.append(helper.make_node("Split", [src, split], outs, name=outs[0], axis=axis))
        result = []
        for o, size in zip(outs, sizes, strict=True):
            shape = list(self.shape[x])
            shape[axis] = size
            if self.qdq:
                result.append(self.quant(o, tuple(shape), self.q[x]))
            else:
                self.q[o], self.shape[o] = self.q[x], tuple(shape)
                result.append(o)
        return result

    def argmax(self, x: str, axis: int, keepdims: int = 1, last: int = 0) -> str:
        """ArgMax (int64) of the integer tensor (QLinear) or of its DequantizeLinear (QDQ)."""
        src = self.deq(x) if self.qdq else x
        out = self.node("ArgMax", [src], axis=axis, keepdims=keepdims, select_last_index=last)
        shape = list(self.shape[x])
        shape[axis] = 1
        self.shape[out] = (
            tuple(shape) if keepdims else tuple(d for i, d in enumerate(self.shape[x]) if i != axis)
        )
        self.indices.add(out)
        return out

    def inits_value(self, name: str) -> np.float32:
        from onnx import numpy_helper

        for t in self.inits:
            if t.name == name:
                return np.float32(numpy_helper.to_array(t))
        raise KeyError(name)

    def finish(self, outputs: list[str], dequantize: bool = True) -> bytes:
        from onnx import TensorProto, helper

        outs = []
        for o in outputs:
            if o in self.indices:
                outs.append(helper.make_tensor_value_info(o, TensorProto.INT64, list(self.shape[o])))
                continue
            name = self.deq(o) if dequantize else o
            elem = TensorProto.FLOAT if dequantize else helper.np_dtype_to_tensor_dtype(np.dtype(self.dtype))
            outs.append(helper.make_tensor_value_info(name, elem, list(self.shape[o])))
        graph = helper.make_graph(
            self.nodes,
            "qnet",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(self.input_shape))],
            outs,
            self.inits,
        )
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", self.opset), helper.make_opsetid("com.microsoft", 1)],
        )
        model.ir_version = 8
        return bytes(model.SerializeToString())


# --- float networks for onnxruntime.quantization.quantize_static --------------------------------------


class FloatNet:
    """A float32 ONNX graph built layer by layer with deterministic normal weights."""

    def __init__(self, seed: int, input_shape: tuple[int, ...], opset: int = 14) -> None:
        self.rng = np.random.default_rng(seed)
        self.input_shape, self.opset = input_shape, opset
        self.nodes: list[Any] = []
        self.inits: list[Any] = []

    def weight(self, *shape: int, std: float = 0.3) -> str:
        from onnx import numpy_helper

        name = f"w{len(self.inits)}"
        value = self.rng.normal(0.0, std, size=shape).astype(np.float32)
        self.inits.append(numpy_helper.from_array(value, name))
        return name

    def op(self, op: str, inputs: list[str], **attrs: Any) -> str:
        from onnx import helper

        out = f"t{len(self.nodes)}"
        self.nodes.append(helper.make_node(op, inputs, [out], name=f"{op}_{len(self.nodes)}", **attrs))
        return out

    def conv(self, x: str, cin: int, cout: int, k: int, stride: int = 1, group: int = 1) -> str:
        w, b = self.weight(cout, cin // group, k, k), self.weight(cout, std=0.1)
        pad = [k // 2] * 4
        return self.op("Conv", [x, w, b], pads=pad, strides=[stride, stride], group=group)

    def dense(self, x: str, depth: int, units: int) -> str:
        return self.op("Gemm", [x, self.weight(units, depth, std=0.4), self.weight(units, std=0.1)], transB=1)

    def finish(self, output: str, output_shape: tuple[int, ...], dtype: str = "float32") -> bytes:
        from onnx import TensorProto, checker, helper

        assert self.nodes[-1].output[0] == output, "the output must be the last node's"
        self.nodes[-1].output[0] = "y"
        graph = helper.make_graph(
            self.nodes,
            "float_net",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(self.input_shape))],
            [
                helper.make_tensor_value_info(
                    "y", TensorProto.FLOAT if dtype == "float32" else TensorProto.INT64, list(output_shape)
                )
            ],
            self.inits,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)])
        model.ir_version = 8
        checker.check_model(model)
        return bytes(model.SerializeToString())


def float_mobilenet(seed: int = 0) -> bytes:
    """MobileNetV3-like: strided conv + HardSwish, depthwise conv + Relu, squeeze-excite (ReduceMean,
    1x1 conv, HardSigmoid, Mul), 1x1 conv, global average pool, classifier, Softmax."""
    net = FloatNet(seed, (1, 3, 16, 16))
    h = net.op("HardSwish", [net.conv("x", 3, 8, 3, stride=2)])
    d = net.op("Relu", [net.conv(h, 8, 8, 3, group=8)])
    se = net.op("ReduceMean", [d], axes=[2, 3], keepdims=1)
    se = net.op("HardSigmoid", [net.conv(se, 8, 8, 1)], alpha=1 / 6, beta=0.5)
    p = net.conv(net.op("Mul", [d, se]), 8, 16, 1)
    f = net.op("Flatten", [net.op("GlobalAveragePool", [p])])
    return net.finish(net.op("Softmax", [net.dense(f, 16, 10)], axis=-1), (1, 10))


def float_attention(seed: int = 1) -> bytes:
    """One attention block on [T=8, D=16]: Q/K/V projections, Q.K^T, scale (Mul by a constant),
    Softmax, P.V, residual Add, output projection."""
    net = FloatNet(seed, (8, 16))
    q, k, v = (net.op("MatMul", ["x", net.weight(16, 16)]) for _ in range(3))
    scores = net.op("Mul", [net.op("MatMul", [q, net.op("Transpose", [k], perm=[1, 0])]), net.weight()])
    o = net.op("Add", [net.op("MatMul", [net.op("Softmax", [scores], axis=-1), v]), "x"])
    return net.finish(net.op("MatMul", [o, net.weight(16, 16)]), (8, 16))


def float_autoencoder(seed: int = 2) -> bytes:
    """MLPerf-Tiny-anomaly-detection-like dense autoencoder with Relu and LeakyRelu."""
    net = FloatNet(seed, (1, 32))
    h, depth = "x", 32
    for i, units in enumerate((16, 8, 16, 32)):
        h = net.dense(h, depth, units)
        if i < 3:
            h = net.op("Relu", [h]) if i % 2 == 0 else net.op("LeakyRelu", [h], alpha=0.1)
        depth = units
    return net.finish(h, (1, 32))


def float_conv_autoencoder(seed: int = 3) -> bytes:
    """U-Net-like conv autoencoder: Pad on the float input, conv + Relu, MaxPool, conv, Resize x2
    (nearest), Concat with the skip branch, Slice of channels, conv, Sigmoid."""
    net = FloatNet(seed, (1, 2, 8, 8), opset=13)

    def const(value: np.ndarray) -> str:
        from onnx import numpy_helper

        name = f"c{len(net.inits)}"
        net.inits.append(numpy_helper.from_array(value, name))
        return name

    p = net.op("Pad", ["x", const(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64))])
    w1, b1 = net.weight(8, 2, 3, 3), net.weight(8, std=0.1)
    e = net.op("Relu", [net.op("Conv", [p, w1, b1])])
    m = net.op("MaxPool", [e], kernel_shape=[2, 2], strides=[2, 2])
    e2 = net.op("Relu", [net.conv(m, 8, 8, 3)])
    u = net.op("Resize", [e2, "", const(np.array([1, 1, 2, 2], np.float32))], mode="nearest")
    cat = net.op("Concat", [u, e], axis=1)
    starts, ends, axes = (const(np.array([v], np.int64)) for v in (0, 12, 1))
    d = net.conv(net.op("Slice", [cat, starts, ends, axes]), 12, 2, 3)
    return net.finish(net.op("Sigmoid", [d]), (1, 2, 8, 8))


def float_deconv_segmenter(seed: int = 4) -> bytes:
    """Strided conv + Relu, ConvTranspose (stride 2, output padding) back to full size, per-pixel ArgMax
    over the classes (an int64 segmentation map). quantize_static quantizes ConvTranspose in QDQ only."""
    net = FloatNet(seed, (1, 2, 8, 8), opset=13)
    e = net.op("Relu", [net.conv("x", 2, 8, 3, stride=2)])
    w, b = net.weight(8, 4, 3, 3), net.weight(4, std=0.1)
    d = net.op("ConvTranspose", [e, w, b], strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1])
    return net.finish(net.op("ArgMax", [d], axis=1, keepdims=0), (1, 8, 8), "int64")


def float_bn_net(seed: int = 5) -> bytes:
    """Conv, BatchNormalization (not folded: quantize_static leaves it float), Relu, 1x1 conv."""
    net = FloatNet(seed, (1, 3, 8, 8), opset=13)
    h = net.op("Conv", ["x", net.weight(8, 3, 3, 3)], pads=[1, 1, 1, 1])
    gamma, beta, mean = net.weight(8), net.weight(8, std=0.2), net.weight(8)
    var = net.weight(8)
    for t in net.inits:  # gamma and var positive, as trained ones are
        if t.name in (gamma, var):
            from onnx import numpy_helper

            t.CopyFrom(numpy_helper.from_array(np.abs(numpy_helper.to_array(t)) + 0.5, t.name))
    h = net.op("Relu", [net.op("BatchNormalization", [h, gamma, beta, mean, var], epsilon=1e-3)])
    return net.finish(net.op("Conv", [h, net.weight(4, 8, 1, 1)]), (1, 4, 8, 8))

"""Random ONNX graphs built with onnx.helper, float or quantized by onnxruntime's quantize_static
(QDQ or QOperator), for scripts/stress_models.py. Needs only onnx, onnxruntime and numpy."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

QUANTS = ("float", "float", "qdq", "qoperator")


class Graph:
    """NCHW float graph under construction; every value's shape is tracked."""

    def __init__(self, rng: random.Random, opset: int) -> None:
        self.rng = rng
        self.np = np.random.default_rng(rng.randint(0, 2**31))
        self.opset = opset
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self.shapes: dict[str, list[int]] = {}
        self.n = 0

    def name(self, base: str) -> str:
        self.n += 1
        return f"{base}{self.n}"

    def const(self, value: np.ndarray, base: str = "c") -> str:
        name = self.name(base)
        self.inits.append(numpy_helper.from_array(value, name))
        return name

    def node(self, op: str, inputs: list[str], shape: list[int], **attrs: Any) -> str:
        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], **attrs))
        self.shapes[out] = shape
        return out

    def weights(self, *shape: int, scale: float = 0.4) -> np.ndarray:
        return self.np.normal(0, scale, shape).astype(np.float32)

    # -- blocks -----------------------------------------------------------------------------------------
    def act(self, x: str) -> str:
        s = self.shapes[x]
        kind = self.rng.choice(
            [
                "Relu",
                "Clip",
                "Sigmoid",
                "Tanh",
                "LeakyRelu",
                "PRelu",
                "HardSigmoid",
                "HardSwish",
                "Softplus",
                "Elu",
                "none",
                "none",
            ]
        )
        if kind == "none":
            return x
        if kind == "Clip":
            return self.node(
                "Clip", [x, self.const(np.array(0, np.float32)), self.const(np.array(6, np.float32))], s
            )
        if kind == "LeakyRelu":
            return self.node("LeakyRelu", [x], s, alpha=0.1)
        if kind == "PRelu":
            slope_shape = [s[1], 1, 1] if len(s) == 4 else [s[-1]]
            return self.node(
                "PRelu", [x, self.const(self.np.uniform(-0.5, 0.5, slope_shape).astype(np.float32))], s
            )
        return self.node(kind, [x], s)

    def conv(
        self, x: str, cout: int | None = None, k: int | None = None, stride: int | None = None, group: int = 1
    ) -> str:
        n, c, h, w = self.shapes[x]
        cout = cout or self.rng.choice([4, 8, 12])
        k = k or self.rng.choice([1, 3, 3, 5])
        k = min(k, h, w) if k > 1 else 1
        stride = stride or (self.rng.choice([1, 1, 2]) if h >= 4 else 1)
        pad = self.rng.choice([0, k // 2])
        oh, ow = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
        ins = [x, self.const(self.weights(cout, c // group, k, k))]
        if self.rng.random() < 0.8:
            ins.append(self.const(self.weights(cout, scale=0.2)))
        return self.node(
            "Conv",
            ins,
            [n, cout, oh, ow],
            kernel_shape=[k, k],
            strides=[stride, stride],
            pads=[pad] * 4,
            group=group,
        )

    def block(self, x: str) -> str:
        n, c, h, w = self.shapes[x]
        kinds = [
            "conv",
            "dw",
            "pool",
            "residual_pad",
            "residual",
            "concat",
            "bn",
            "pad",
            "resize",
            "tconv",
            "transpose_pair",
            "slice",
        ]
        kind = self.rng.choice(kinds)
        if kind == "conv":
            return self.act(self.conv(x))
        if kind == "dw":
            return self.act(self.conv(x, cout=c, k=3, group=c))
        if kind == "pool":
            if h < 2 or w < 2:
                return x
            op = self.rng.choice(["MaxPool", "AveragePool"])
            k = self.rng.choice([2, 3]) if h >= 3 else 2
            pad = self.rng.choice([0, 1]) if k == 3 else 0
            return self.node(
                op,
                [x],
                [n, c, (h + 2 * pad - k) // 2 + 1, (w + 2 * pad - k) // 2 + 1],
                kernel_shape=[k, k],
                strides=[2, 2],
                pads=[pad] * 4,
            )
        if kind == "residual_pad":
            extra = self.rng.choice([2, 4])
            y = self.conv(x, cout=c + extra, k=3, stride=1)
            y = self.conv(y, cout=c + extra, k=1, stride=1) if self.rng.random() < 0.5 else y
            if self.shapes[y][2:] != [h, w]:
                return y
            pads = self.const(np.array([0, 0, 0, 0, 0, extra, 0, 0], np.int64))
            short = self.node("Pad", [x, pads], [n, c + extra, h, w])
            return self.act(self.node("Add", [y, short], [n, c + extra, h, w]))
        if kind == "residual":
            y = self.act(self.conv(x, cout=c, k=3, stride=1))
            if self.shapes[y] != self.shapes[x]:
                return y
            op = self.rng.choice(["Add", "Mul", "Sub", "Max", "Min"])
            return self.node(op, [x, y], [n, c, h, w])
        if kind == "concat":
            a = self.conv(x, cout=self.rng.choice([2, 4]), k=1, stride=1)
            return self.node("Concat", [a, x], [n, c + self.shapes[a][1], h, w], axis=1)
        if kind == "bn":
            return self.node(
                "BatchNormalization",
                [
                    x,
                    self.const(self.np.uniform(0.5, 1.5, c).astype(np.float32)),
                    self.const(self.weights(c)),
                    self.const(self.weights(c)),
                    self.const(self.np.uniform(0.5, 1.5, c).astype(np.float32)),
                ],
                [n, c, h, w],
            )
        if kind == "pad":
            p = [
                0,
                0,
                self.rng.randint(0, 2),
                self.rng.randint(0, 2),
                0,
                0,
                self.rng.randint(0, 2),
                self.rng.randint(0, 2),
            ]
            mode = self.rng.choice(["constant", "constant", "reflect", "edge"])
            if mode == "reflect" and max(p) >= min(h, w):
                mode = "constant"
            return self.node(
                "Pad",
                [x, self.const(np.array(p, np.int64))],
                [n, c, h + p[2] + p[6], w + p[3] + p[7]],
                mode=mode,
            )
        if kind == "resize":
            if h > 16:
                return x
            mode = self.rng.choice(["nearest", "linear"])
            scale = self.rng.choice([2.0, 0.5]) if h >= 4 else 2.0
            attrs: dict[str, Any] = {"mode": mode}
            if mode == "nearest":
                attrs["nearest_mode"] = self.rng.choice(["floor", "round_prefer_floor", "round_prefer_ceil"])
            attrs["coordinate_transformation_mode"] = self.rng.choice(
                ["asymmetric", "half_pixel", "align_corners", "pytorch_half_pixel"]
            )
            scales = self.const(np.array([1, 1, scale, scale], np.float32))
            return self.node("Resize", [x, "", scales], [n, c, int(h * scale), int(w * scale)], **attrs)
        if kind == "tconv":
            if h > 12:
                return x
            cout, k = self.rng.choice([2, 4]), self.rng.choice([2, 3])
            pad = self.rng.choice([0, 1]) if k == 3 else 0
            oh, ow = (h - 1) * 2 + k - 2 * pad, (w - 1) * 2 + k - 2 * pad
            ins = [x, self.const(self.weights(c, cout, k, k))]
            if self.rng.random() < 0.6:
                ins.append(self.const(self.weights(cout)))
            return self.node(
                "ConvTranspose", ins, [n, cout, oh, ow], kernel_shape=[k, k], strides=[2, 2], pads=[pad] * 4
            )
        if kind == "transpose_pair":
            t = self.node("Transpose", [x], [n, h, w, c], perm=[0, 2, 3, 1])
            t = self.act(t)
            return self.node("Transpose", [t], [n, c, h, w], perm=[0, 3, 1, 2])
        # slice channels
        if c < 2:
            return x
        half = c // 2
        return self.node(
            "Slice",
            [
                x,
                self.const(np.array([0], np.int64)),
                self.const(np.array([half], np.int64)),
                self.const(np.array([1], np.int64)),
            ],
            [n, half, h, w],
        )

    def head(self, x: str) -> str:
        n, c, h, w = self.shapes[x]
        kind = self.rng.choice(["gap", "gmp", "mean", "flatten_gemm", "conv", "softmax_channels"])
        if kind == "conv":
            return self.conv(x, cout=2, k=1, stride=1)
        if kind == "softmax_channels":
            return self.node("Softmax", [self.conv(x, cout=4, k=1, stride=1)], [n, 4, h, w], axis=1)
        if kind == "mean":
            if self.opset >= 18:
                return self.node("ReduceMean", [x, self.const(np.array([2, 3], np.int64))], [n, c, 1, 1])
            return self.node("ReduceMean", [x], [n, c, 1, 1], axes=[2, 3])
        if kind in ("gap", "gmp"):
            x = self.node("GlobalAveragePool" if kind == "gap" else "GlobalMaxPool", [x], [n, c, 1, 1])
        x = self.node("Flatten", [x], [n, int(np.prod(self.shapes[x][1:]))])
        units = self.rng.choice([4, 10])
        x = self.node(
            "Gemm",
            [x, self.const(self.weights(units, self.shapes[x][1])), self.const(self.weights(units))],
            [n, units],
            transB=1,
        )
        if self.rng.random() < 0.5:
            x = self.node("Softmax", [x], [n, units], axis=-1)
        return x


def _image(g: Graph) -> tuple[list[int], str, str]:
    size = g.rng.choice([8, 12, 16])
    shape = [1, g.rng.choice([1, 3, 4]), size, size + g.rng.choice([0, 0, 4])]
    g.shapes["x"] = shape
    x = "x"
    for _ in range(g.rng.randint(2, 5)):
        x = g.block(x)
    return shape, "x", g.head(x)


def _lstm(g: Graph) -> tuple[list[int], str, str]:
    steps, feats, hidden = g.rng.choice([3, 5, 8]), g.rng.choice([2, 4, 6]), g.rng.choice([4, 8])
    shape = [steps, 1, feats]
    g.shapes["x"] = shape
    direction = g.rng.choice(["forward", "forward", "reverse", "bidirectional"])
    d = 2 if direction == "bidirectional" else 1
    ins = ["x", g.const(g.weights(d, 4 * hidden, feats)), g.const(g.weights(d, 4 * hidden, hidden))]
    if g.rng.random() < 0.7:
        ins.append(g.const(g.weights(d, 8 * hidden, scale=0.2)))
    y = g.name("lstm")
    g.nodes.append(helper.make_node("LSTM", ins, [y], hidden_size=hidden, direction=direction))
    g.shapes[y] = [steps, d, 1, hidden]
    flat = g.node("Reshape", [y, g.const(np.array([1, -1], np.int64))], [1, steps * d * hidden])
    units = g.rng.choice([3, 6])
    return (
        shape,
        "x",
        g.node("Gemm", [flat, g.const(g.weights(units, steps * d * hidden))], [1, units], transB=1),
    )


def _mlp(g: Graph) -> tuple[list[int], str, str]:
    shape = [1, g.rng.choice([8, 16, 32])]
    g.shapes["x"] = shape
    x = "x"
    for _ in range(g.rng.randint(1, 3)):
        units = g.rng.choice([8, 16, 24])
        if g.rng.random() < 0.5:
            x = g.node(
                "Gemm", [x, g.const(g.weights(g.shapes[x][1], units)), g.const(g.weights(units))], [1, units]
            )
        else:
            mm = g.node("MatMul", [x, g.const(g.weights(g.shapes[x][1], units))], [1, units])
            x = g.node("Add", [mm, g.const(g.weights(units))], [1, units])
        x = g.act(x)
    return shape, "x", g.node("Softmax", [x], g.shapes[x], axis=-1) if g.rng.random() < 0.5 else x


def build(rng: random.Random) -> tuple[onnx.ModelProto, str]:
    opset = rng.choice([13, 13, 17, 18])
    g = Graph(rng, opset)
    family = rng.choices(["image", "lstm", "mlp"], [0.75, 0.1, 0.15])[0]
    shape, x, y = {"image": _image, "lstm": _lstm, "mlp": _mlp}[family](g)
    graph = helper.make_graph(
        g.nodes,
        "stress",
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info(y, TensorProto.FLOAT, g.shapes[y])],
        g.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    model = onnx.shape_inference.infer_shapes(model)
    onnx.checker.check_model(model)
    return model, family


def _quantize(src: Path, dst: Path, fmt: str, rng: random.Random) -> None:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    model = onnx.load(src)
    inp = model.graph.input[0]
    shape = [d.dim_value for d in inp.type.tensor_type.shape.dim]
    data = np.random.default_rng(rng.randint(0, 2**31))

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self.left = 16

        def get_next(self) -> dict[str, np.ndarray] | None:
            if not self.left:
                return None
            self.left -= 1
            return {inp.name: data.uniform(-1, 1, shape).astype(np.float32)}

    quantize_static(
        str(src),
        str(dst),
        Reader(),
        quant_format=QuantFormat.QDQ if fmt == "qdq" else QuantFormat.QOperator,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
        per_channel=rng.random() < 0.5,
    )


def generate(out: Path, n: int, seed: int, log: Callable[[str], None] = print) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for i in range(n):
        rng = random.Random(f"onnx:{seed}:{i}")
        quant = rng.choice(QUANTS)
        try:
            model, family = build(rng)
            name = f"o{seed}_{i:04d}_{family}_{quant}.onnx"
            path = out / name
            onnx.save(model, path)
            if quant != "float":
                tmp = out / f".{name}.float"
                path.rename(tmp)
                try:
                    _quantize(tmp, path, quant, rng)
                finally:
                    tmp.unlink()
        except Exception as err:
            log(f"onnx {seed}:{i}: not generated: {type(err).__name__}: {str(err).splitlines()[0][:200]}")
            continue
        written.append(path)
        log(f"{name}: {path.stat().st_size} bytes")
    return written

"""Synthetic int8 models covering every operator and parameter variant the integer path supports.

Each model exposes all of its intermediate activations as model outputs, so one comparison against
TFLite Micro checks every operator separately (and a failure names the operator that diverged).
Weights, biases and scales are random but realistic: symmetric int8 weights, per-channel or
per-tensor scales, biases at scale input·weight, activation zero points anywhere in [-128, 127].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tflite_builder import (
    ModelBuilder,
    add_options,
    concat_options,
    conv_options,
    depthwise_options,
    fc_options,
    mul_options,
    pool_options,
    reducer_options,
    reshape_options,
    softmax_options,
)


@dataclass
class Synthetic:
    name: str
    model: bytes
    input_dtypes: list[str]
    input_shapes: list[tuple[int, ...]]
    output_names: list[str]  # the producing operator of each output, for failure messages


class _Net:
    """Small helper over ModelBuilder that tracks each activation's quantisation."""

    def __init__(self, seed: int) -> None:
        self.b = ModelBuilder()
        self.rng = np.random.default_rng(seed)
        self.q: dict[int, tuple[float, int]] = {}
        self.shape: dict[int, tuple[int, ...]] = {}
        self.outputs: list[int] = []
        self.output_names: list[str] = []

    def act(
        self, name: str, shape: tuple[int, ...], scale: float | None = None, zp: int | None = None
    ) -> int:
        scale = float(self.rng.uniform(0.01, 0.2)) if scale is None else scale
        zp = int(self.rng.integers(-100, 100)) if zp is None else zp
        idx = self.b.tensor(name, list(shape), "int8", scale=scale, zero_point=zp)
        self.q[idx] = (float(np.float32(scale)), zp)
        self.shape[idx] = tuple(shape)
        return idx

    def expose(self, idx: int, producer: str) -> int:
        self.outputs.append(idx)
        self.output_names.append(producer)
        return idx

    def weights(
        self, name: str, shape: tuple[int, ...], channels_axis: int, per_channel: bool
    ) -> tuple[int, list[float]]:
        w = self.rng.integers(-127, 128, size=shape).astype(np.int8)
        n = shape[channels_axis]
        scales = (
            list(self.rng.uniform(0.002, 0.02, size=n))
            if per_channel
            else [float(self.rng.uniform(0.002, 0.02))]
        )
        idx = self.b.tensor(
            name,
            list(shape),
            "int8",
            scale=scales,
            zero_point=0,
            qdim=channels_axis if per_channel else 0,
            data=w,
        )
        return idx, [float(np.float32(s)) for s in scales]

    def bias(self, name: str, in_scale: float, w_scales: list[float], n: int) -> int:
        scales = [in_scale * s for s in (w_scales if len(w_scales) > 1 else w_scales * n)]
        data = self.rng.integers(-3000, 3000, size=n).astype(np.int32)
        return self.b.tensor(
            name, [n], "int32", scale=scales if len(w_scales) > 1 else scales[0], zero_point=0, data=data
        )

    def conv(
        self,
        x: int,
        out_c: int,
        k: tuple[int, int],
        per_channel: bool,
        filt_c: int | None = None,
        **opts: object,
    ) -> int:
        n, h, w, c = self.shape[x]
        filt_c = c if filt_c is None else filt_c
        wi, ws = self.weights("conv_w", (out_c, k[0], k[1], filt_c), 0, per_channel)
        bi = self.bias("conv_b", self.q[x][0], ws, out_c)
        o = conv_options(**opts)  # type: ignore[arg-type]
        oh, ow = _out_hw(
            (h, w),
            k,
            (o.strideH, o.strideW),
            (o.dilationHFactor, o.dilationWFactor),
            "SAME" if o.padding == 0 else "VALID",
        )
        y = self.act("conv", (n, oh, ow, out_c))
        self.b.op("CONV_2D", [x, wi, bi], [y], o, "Conv2DOptions", version=3)
        return self.expose(y, "CONV_2D")

    def depthwise(
        self, x: int, k: tuple[int, int], multiplier: int, per_channel: bool, **opts: object
    ) -> int:
        n, h, w, c = self.shape[x]
        out_c = c * multiplier
        wi, ws = self.weights("dw_w", (1, k[0], k[1], out_c), 3, per_channel)
        bi = self.bias("dw_b", self.q[x][0], ws, out_c)
        o = depthwise_options(multiplier=multiplier, **opts)  # type: ignore[arg-type]
        oh, ow = _out_hw(
            (h, w),
            k,
            (o.strideH, o.strideW),
            (o.dilationHFactor, o.dilationWFactor),
            "SAME" if o.padding == 0 else "VALID",
        )
        y = self.act("dw", (n, oh, ow, out_c))
        self.b.op("DEPTHWISE_CONV_2D", [x, wi, bi], [y], o, "DepthwiseConv2DOptions", version=3)
        return self.expose(y, "DEPTHWISE_CONV_2D")

    def pool(
        self,
        kind: str,
        x: int,
        f: tuple[int, int],
        s: tuple[int, int],
        padding: str,
        activation: str = "NONE",
    ) -> int:
        n, h, w, c = self.shape[x]
        oh, ow = _out_hw((h, w), f, s, (1, 1), padding)
        # TFLite requires pooling to keep the input quantisation.
        y = self.act(kind.lower(), (n, oh, ow, c), *self.q[x])
        self.b.op(kind, [x], [y], pool_options(f, s, padding, activation), "Pool2DOptions")
        return self.expose(y, kind)

    def fc(self, x: int, units: int, per_channel: bool, activation: str = "NONE", bias: bool = True) -> int:
        depth = self.shape[x][-1]
        batches = int(np.prod(self.shape[x])) // depth
        wi, ws = self.weights("fc_w", (units, depth), 0, per_channel)
        bi = self.bias("fc_b", self.q[x][0], ws, units) if bias else -1
        y = self.act("fc", (batches, units))
        self.b.op(
            "FULLY_CONNECTED", [x, wi, bi], [y], fc_options(activation), "FullyConnectedOptions", version=4
        )
        return self.expose(y, "FULLY_CONNECTED")

    def binary(self, kind: str, a: int, b: int, activation: str = "NONE") -> int:
        shape = tuple(np.broadcast_shapes(self.shape[a], self.shape[b]))
        y = self.act(kind.lower(), shape)
        opts = add_options(activation) if kind == "ADD" else mul_options(activation)
        self.b.op(kind, [a, b], [y], opts, "AddOptions" if kind == "ADD" else "MulOptions")
        return self.expose(y, kind)

    def unary(self, kind: str, x: int, out_q: tuple[float, int]) -> int:
        y = self.act(kind.lower(), self.shape[x], *out_q)
        self.b.op(kind, [x], [y])
        return self.expose(y, kind)

    def softmax(self, x: int, beta: float = 1.0) -> int:
        y = self.act("softmax", self.shape[x], 1.0 / 256, -128)
        self.b.op("SOFTMAX", [x], [y], softmax_options(beta), "SoftmaxOptions")
        return self.expose(y, "SOFTMAX")

    def reshape(self, x: int, shape: tuple[int, ...]) -> int:
        s = self.b.const_int32("shape", list(shape))
        y = self.act("reshape", shape, *self.q[x])
        self.b.op("RESHAPE", [x, s], [y], reshape_options(list(shape)), "ReshapeOptions")
        return y

    def pad(self, x: int, pads: list[tuple[int, int]], value: int | None = None) -> int:
        p = self.b.const_int32("paddings", np.array(pads, np.int32))
        shape = tuple(d + a + b for d, (a, b) in zip(self.shape[x], pads, strict=True))
        y = self.act("pad", shape, *self.q[x])
        if value is None:
            self.b.op("PAD", [x, p], [y])
        else:
            v = self.b.tensor(
                "pad_value",
                [1],
                "int8",
                scale=self.q[x][0],
                zero_point=self.q[x][1],
                data=np.array([value], np.int8),
            )
            self.b.op("PADV2", [x, p, v], [y])
        return self.expose(y, "PAD" if value is None else "PADV2")

    def concat(self, xs: list[int], axis: int) -> int:
        q = self.q[xs[0]]
        shape = list(self.shape[xs[0]])
        shape[axis] = sum(self.shape[i][axis] for i in xs)
        y = self.act("concat", tuple(shape), *q)
        self.b.op("CONCATENATION", xs, [y], concat_options(axis), "ConcatenationOptions")
        return self.expose(y, "CONCATENATION")

    def requantize(self, x: int) -> int:
        y = self.act("requant", self.shape[x])
        self.b.op("QUANTIZE", [x], [y])
        return self.expose(y, "QUANTIZE(int8->int8)")

    def mean(self, x: int, axes: list[int], keep_dims: bool) -> int:
        a = self.b.const_int32("axes", axes)
        shape = (
            [d for i, d in enumerate(self.shape[x]) if i not in axes]
            if not keep_dims
            else [1 if i in axes else d for i, d in enumerate(self.shape[x])]
        )
        y = self.act("mean", tuple(shape))
        self.b.op("MEAN", [x, a], [y], reducer_options(keep_dims), "ReducerOptions")
        return self.expose(y, "MEAN")


def _out_hw(
    hw: tuple[int, int], k: tuple[int, int], s: tuple[int, int], d: tuple[int, int], padding: str
) -> tuple[int, int]:
    out = []
    for i in range(2):
        eff = (k[i] - 1) * d[i] + 1
        out.append((hw[i] + s[i] - 1) // s[i] if padding == "SAME" else (hw[i] - eff + s[i]) // s[i])
    return out[0], out[1]


def convnet(seed: int, variant: int) -> Synthetic:
    """A float-in, int8-inside CNN with every spatial operator; `variant` changes paddings, strides, etc."""
    net = _Net(seed)
    b = net.b
    shape = (1, 11, 9, 3)
    x_f = b.tensor("input", list(shape), "float32")
    x = net.act("quantized_input", shape)
    b.op("QUANTIZE", [x_f], [x])
    net.expose(x, "QUANTIZE(float->int8)")
    pad1 = "SAME" if variant % 2 == 0 else "VALID"
    pad2 = "VALID" if variant % 2 == 0 else "SAME"
    y = net.conv(
        x,
        8,
        (3, 3),
        per_channel=True,
        padding=pad1,
        stride=(2, 1) if variant else (1, 2),
        activation=("RELU6", "RELU", "NONE")[variant % 3],
    )
    y = net.depthwise(
        y,
        (3, 2),
        multiplier=2 if variant != 1 else 1,
        per_channel=variant != 2,
        padding=pad2,
        dilation=(1, 2) if variant == 0 else (2, 1),
        activation="RELU",
    )
    y = net.pad(y, [(0, 0), (1, 2), (0, 1), (0, 0)], value=None if variant != 1 else 17)
    y = net.pool("MAX_POOL_2D", y, (3, 2), (2, 1), "SAME" if variant != 2 else "VALID", "RELU6")
    c = net.shape[y][3]
    y = net.conv(
        y,
        12,
        (2, 2),
        per_channel=variant != 1,
        filt_c=c // 2 if variant == 0 else None,
        padding="SAME",
        dilation=(1, 1),
        activation="NONE",
    )
    y = net.pool("AVERAGE_POOL_2D", y, (3, 3), (2, 2), "SAME" if variant != 1 else "VALID")
    y = net.conv(y, 16, (1, 1), per_channel=True, padding="VALID")
    m = net.mean(y, [1, 2], keep_dims=variant != 2)
    flat = net.reshape(m, (1, 16))
    logits = net.fc(flat, 10, per_channel=variant == 1, activation="NONE", bias=variant != 2)
    net.softmax(logits, beta=1.0 if variant != 1 else 0.5)
    out_f = b.tensor("output", [1, 10], "float32")
    b.op("DEQUANTIZE", [logits], [out_f])
    net.outputs.append(out_f)
    net.output_names.append("DEQUANTIZE")
    model = b.build([x_f], net.outputs)
    return Synthetic(f"convnet{variant}", model, ["float32"], [shape], net.output_names)


def elementwise(seed: int, variant: int) -> Synthetic:
    """Two int8 inputs through ADD/MUL with broadcasting, LOGISTIC, TANH, CONCATENATION, requantisation."""
    net = _Net(seed)
    a = net.act("a", (1, 4, 5, 6))
    bshape = ((1, 1, 5, 6), (6,), (1, 4, 1, 1))[variant % 3]
    bb = net.act("b", bshape)
    s = net.binary("ADD", a, bb, ("NONE", "RELU", "RELU6")[variant % 3])
    p = net.binary("MUL", s, bb, ("NONE", "RELU_N1_TO_1", "RELU")[variant % 3])
    lg = net.unary("LOGISTIC", p, (1.0 / 256, -128))
    th = net.unary("TANH", s, (1.0 / 128, 0))
    r = net.requantize(th)
    # CONCATENATION needs one quantisation: requantize the logistic into the tanh's.
    lr = net.act("logistic_requant", net.shape[lg], *net.q[th])
    net.b.op("QUANTIZE", [lg], [lr])
    net.expose(lr, "QUANTIZE(int8->int8)")
    net.concat([th, lr], axis=3 if variant != 1 else 1)
    m = net.mean(r, [3] if variant != 2 else [1, 3], keep_dims=False)
    del m
    sm_in = net.reshape(p, (4, 30))
    net.softmax(sm_in, beta=1.0)
    model = net.b.build([a, bb], net.outputs)
    return Synthetic(
        f"elementwise{variant}", model, ["int8", "int8"], [(1, 4, 5, 6), bshape], net.output_names
    )


def autoencoder(seed: int) -> Synthetic:
    """An MLPerf-Tiny-anomaly-detection-shaped dense autoencoder (outputs do not saturate)."""
    net = _Net(seed)
    x = net.act("input", (1, 64))
    h = x
    for units in (32, 16, 8, 16, 32):
        h = net.fc(h, units, per_channel=False, activation="RELU")
    net.fc(h, 64, per_channel=False)
    model = net.b.build([x], net.outputs)
    return Synthetic("autoencoder", model, ["int8"], [(1, 64)], net.output_names)

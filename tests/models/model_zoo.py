"""Stand-ins for models nobody here has seen (TFLite Micro examples, MLPerf Tiny), written directly as
TFLite flatbuffers with the architecture and quantisation scheme of the real ones.

Quantisation follows what TFLite's converter produces: per-channel symmetric int8 weights (zero point 0,
quantized dimension = output channels), int32 biases at scale input·weight, asymmetric int8 activations
(zero point -128 after RELU/RELU6, since the range starts at 0), SOFTMAX output at 1/256 with zero point
-128, LOGISTIC at 1/256 zp -128, TANH at 1/128 zp 0, pooling keeping its input's quantisation. Output
scales are set from the expected accumulator spread, as calibration would, so activations are neither
saturated nor collapsed. Weights are random: the point is the arithmetic, not the accuracy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from tflite_builder import (
    ModelBuilder,
    add_options,
    concat_options,
    conv_options,
    depthwise_options,
    fc_options,
    pool_options,
    reshape_options,
    softmax_options,
)

# Standard deviation of uniform int8 weights in [-127, 127] and of a calibrated activation in LSB.
_W_STD = 73.0
_ACT_STD = 30.0


@dataclass
class ZooModel:
    name: str
    model: bytes
    input_dtypes: list[str]
    input_shapes: list[tuple[int, ...]]
    output_names: list[str]
    is_float: bool = False  # a float model: compare with LiteRT within 1e-5 relative, not bit-exact
    n_final: int = 1  # the model's own outputs come first; the rest are exposed intermediates

    def final_only(self) -> bytes:
        """The model as deployed: only its own outputs (intermediates in the arena, not in user buffers)."""
        from qharness import with_outputs
        from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

        outs = schema.Model.GetRootAsModel(self.model, 0).Subgraphs(0).OutputsAsNumpy()
        return with_outputs(self.model, [int(i) for i in outs[: self.n_final]])


class _UniqueNames(ModelBuilder):
    """Tensor names made unique as the converter makes them (TVM's TFLite frontend keys values by name)."""

    def tensor(self, name: str, *args, **kwargs):  # type: ignore[no-untyped-def]
        return super().tensor(f"{name}_{len(self.tensors)}", *args, **kwargs)


class Net:
    """ModelBuilder plus per-tensor quantisation and shape bookkeeping; every op output can be exposed."""

    def __init__(self, seed: int, dtype: str = "int8") -> None:
        self.b = _UniqueNames()
        self.rng = np.random.default_rng(seed)
        self.dtype = dtype
        self.q: dict[int, tuple[float, int]] = {}
        self.shape: dict[int, tuple[int, ...]] = {}
        self.outputs: list[int] = []
        self.output_names: list[str] = []
        self.expose_all = True

    # --- tensors -------------------------------------------------------------------------------
    def act(
        self, name: str, shape: tuple[int, ...], scale: float = 0.05, zp: int = 0, dtype: str = ""
    ) -> int:
        dtype = dtype or self.dtype
        if dtype == "float32":
            idx = self.b.tensor(name, list(shape), "float32")
        else:
            scale = float(np.float32(scale))
            idx = self.b.tensor(name, list(shape), dtype, scale=scale, zero_point=zp)
            self.q[idx] = (scale, zp)
        self.shape[idx] = tuple(shape)
        return idx

    def expose(self, idx: int, producer: str) -> int:
        if self.expose_all and idx not in self.outputs:
            self.outputs.append(idx)
            self.output_names.append(producer)
        return idx

    def out_q(self, in_scale: float, w_scale: float, k: int, activation: str) -> tuple[float, int]:
        real_std = in_scale * w_scale * _W_STD * _ACT_STD * np.sqrt(k)
        scale = float(real_std * 3 / 127)
        return scale, (-128 if activation in ("RELU", "RELU6") else int(self.rng.integers(-10, 10)))

    def _weights(self, shape: tuple[int, ...], axis: int) -> tuple[int, list[float]]:
        if self.dtype == "float32":
            w = self.rng.normal(0, 1.0 / np.sqrt(np.prod(shape) / shape[axis]), size=shape).astype(np.float32)
            return self.b.tensor("w", list(shape), "float32", data=w), [1.0]
        w = self.rng.integers(-127, 128, size=shape).astype(np.int8)
        scales = [float(np.float32(s)) for s in self.rng.uniform(0.002, 0.02, size=shape[axis])]
        return self.b.tensor("w", list(shape), "int8", scale=scales, zero_point=0, qdim=axis, data=w), scales

    def _bias(self, in_scale: float, w_scales: list[float], n: int) -> int:
        if self.dtype == "float32":
            return self.b.tensor("b", [n], "float32", data=self.rng.normal(0, 0.1, n).astype(np.float32))
        data = self.rng.integers(-3000, 3000, size=n).astype(np.int32)
        return self.b.tensor(
            "b", [n], "int32", scale=[in_scale * s for s in w_scales], zero_point=0, data=data
        )

    def _new_act(
        self, name: str, shape: tuple[int, ...], in_scale: float, ws: list[float], k: int, a: str
    ) -> int:
        if self.dtype == "float32":
            return self.act(name, shape)
        return self.act(name, shape, *self.out_q(in_scale, float(np.mean(ws)), k, a))

    # --- operators -----------------------------------------------------------------------------
    def conv(
        self,
        x: int,
        out_c: int,
        k: tuple[int, int],
        stride: int = 1,
        padding: str = "SAME",
        activation: str = "RELU6",
    ) -> int:
        n, h, w, c = self.shape[x]
        wi, ws = self._weights((out_c, k[0], k[1], c), 0)
        in_scale = self.q.get(x, (1.0, 0))[0]
        bi = self._bias(in_scale, ws, out_c)
        oh, ow = out_hw((h, w), k, (stride, stride), padding)
        y = self._new_act("conv", (n, oh, ow, out_c), in_scale, ws, k[0] * k[1] * c, activation)
        o = conv_options(padding, (stride, stride), activation=activation)
        self.b.op("CONV_2D", [x, wi, bi], [y], o, "Conv2DOptions", version=3)
        return self.expose(y, f"CONV_2D {k[0]}x{k[1]}/{stride} -> {out_c}")

    def depthwise(
        self,
        x: int,
        k: tuple[int, int] = (3, 3),
        stride: int = 1,
        padding: str = "SAME",
        activation: str = "RELU6",
    ) -> int:
        n, h, w, c = self.shape[x]
        wi, ws = self._weights((1, k[0], k[1], c), 3)
        in_scale = self.q.get(x, (1.0, 0))[0]
        bi = self._bias(in_scale, ws, c)
        oh, ow = out_hw((h, w), k, (stride, stride), padding)
        y = self._new_act("dw", (n, oh, ow, c), in_scale, ws, k[0] * k[1], activation)
        o = depthwise_options(padding, (stride, stride), activation=activation)
        self.b.op("DEPTHWISE_CONV_2D", [x, wi, bi], [y], o, "DepthwiseConv2DOptions", version=3)
        return self.expose(y, f"DEPTHWISE_CONV_2D {k[0]}x{k[1]}/{stride}")

    def fc(
        self,
        x: int,
        units: int,
        activation: str = "NONE",
        keep_num_dims: bool = False,
        depth: int | None = None,
    ) -> int:
        """`depth` (the weights' input size) defaults to the last dimension; TFLite flattens the input
        into [elements / depth, depth] whatever its rank."""
        depth = self.shape[x][-1] if depth is None else depth
        batches = int(np.prod(self.shape[x])) // depth
        wi, ws = self._weights((units, depth), 0)
        if self.dtype != "float32":
            ws = [ws[0]] * units  # TFLite's FULLY_CONNECTED weights are per-tensor
            w_t = self.b.tensors[wi]
            w_t.quantization.scale = [ws[0]]
            w_t.quantization.zeroPoint = [0]
        in_scale = self.q.get(x, (1.0, 0))[0]
        bi = self._bias(in_scale, ws, units)
        if self.dtype != "float32":
            b_t = self.b.tensors[bi]
            b_t.quantization.scale = [in_scale * ws[0]]
            b_t.quantization.zeroPoint = [0]
        shape = (*self.shape[x][:-1], units) if keep_num_dims else (batches, units)
        y = self._new_act("fc", shape, in_scale, ws, depth, activation)
        o = fc_options(activation, keep_num_dims)
        self.b.op("FULLY_CONNECTED", [x, wi, bi], [y], o, "FullyConnectedOptions", version=4)
        return self.expose(y, f"FULLY_CONNECTED -> {units}")

    def pool(self, kind: str, x: int, f: tuple[int, int], s: tuple[int, int], padding: str = "VALID") -> int:
        n, h, w, c = self.shape[x]
        oh, ow = out_hw((h, w), f, s, padding)
        q = self.q.get(x, (0.05, 0))
        y = self.act(kind.lower(), (n, oh, ow, c), *q)
        self.b.op(kind, [x], [y], pool_options(f, s, padding), "Pool2DOptions")
        return self.expose(y, kind)

    def add(self, a: int, c: int, activation: str = "RELU") -> int:
        sa, sb = self.q.get(a, (1.0, 0))[0], self.q.get(c, (1.0, 0))[0]
        scale = float(np.hypot(sa, sb) * _ACT_STD * 3 / 127 * 1.5)
        y = self.act("add", self.shape[a], scale, -128 if activation != "NONE" else 0)
        self.b.op("ADD", [a, c], [y], add_options(activation), "AddOptions")
        return self.expose(y, "ADD")

    def reshape(self, x: int, shape: tuple[int, ...]) -> int:
        s = self.b.const_int32("shape", list(shape))
        y = self.act("reshape", shape, *self.q.get(x, (0.05, 0)))
        self.b.op("RESHAPE", [x, s], [y], reshape_options(list(shape)), "ReshapeOptions")
        return self.expose(y, "RESHAPE")

    def softmax(self, x: int, beta: float = 1.0) -> int:
        y = self.act("softmax", self.shape[x], 1.0 / 256, -128)
        self.b.op("SOFTMAX", [x], [y], softmax_options(beta), "SoftmaxOptions")
        return self.expose(y, f"SOFTMAX beta={beta}")

    def unary(self, kind: str, x: int) -> int:
        q = {"LOGISTIC": (1.0 / 256, -128), "TANH": (1.0 / 128, 0)}[kind]
        y = self.act(kind.lower(), self.shape[x], *q)
        self.b.op(kind, [x], [y])
        return self.expose(y, kind)

    def quantize(self, x: int, dtype: str, scale: float, zp: int) -> int:
        y = self.act("quantize", self.shape[x], scale, zp, dtype=dtype)
        self.b.op("QUANTIZE", [x], [y])
        return self.expose(y, f"QUANTIZE -> {dtype}")

    def dequantize(self, x: int) -> int:
        y = self.act("dequantize", self.shape[x], dtype="float32")
        self.b.op("DEQUANTIZE", [x], [y])
        return self.expose(y, "DEQUANTIZE")

    def concat(self, xs: list[int], axis: int) -> int:
        shape = list(self.shape[xs[0]])
        shape[axis] = sum(self.shape[i][axis] for i in xs)
        y = self.act("concat", tuple(shape), *self.q[xs[0]])
        self.b.op("CONCATENATION", xs, [y], concat_options(axis), "ConcatenationOptions")
        return self.expose(y, "CONCATENATION")

    def finish(self, name: str, inputs: list[int], final: list[int], **kw: object) -> ZooModel:
        for f in final:  # the real outputs always come first, intermediates after
            if f in self.outputs:
                i = self.outputs.index(f)
                self.outputs.pop(i)
                self.output_names.pop(i)
        outs = final + self.outputs
        names = ["final"] * len(final) + self.output_names
        model = self.b.build(inputs, outs)
        dtypes = [{0: "float32", 9: "int8", 3: "uint8"}[self.b.tensors[i].type] for i in inputs]
        shapes = [self.shape[i] for i in inputs]
        return ZooModel(name, model, dtypes, shapes, names, n_final=len(final), **kw)  # type: ignore[arg-type]


def out_hw(hw: tuple[int, int], k: tuple[int, int], s: tuple[int, int], padding: str) -> tuple[int, int]:
    if padding == "SAME":
        return (hw[0] + s[0] - 1) // s[0], (hw[1] + s[1] - 1) // s[1]
    return (hw[0] - k[0] + s[0]) // s[0], (hw[1] - k[1] + s[1]) // s[1]


# --- the models ------------------------------------------------------------------------------------


def _mobilenet_v1_025(net: Net, x: int, classes: int) -> int:
    """MobileNetV1 alpha 0.25 as in MLPerf Tiny VWW / TFLM person_detection (RELU6 everywhere)."""
    y = net.conv(x, 8, (3, 3), stride=2)
    for out_c, stride in [
        (16, 1),
        (32, 2),
        (32, 1),
        (64, 2),
        (64, 1),
        (128, 2),
        (128, 1),
        (128, 1),
        (128, 1),
        (128, 1),
        (128, 1),
        (256, 2),
        (256, 1),
    ]:
        y = net.depthwise(y, (3, 3), stride=stride)
        y = net.conv(y, out_c, (1, 1))
    y = net.pool("AVERAGE_POOL_2D", y, (3, 3), (1, 1))
    y = net.conv(y, classes, (1, 1), activation="NONE")
    y = net.reshape(y, (1, classes))
    return net.softmax(y)


def vww(seed: int = 101) -> ZooModel:
    """MLPerf Tiny visual wake words: MobileNetV1-0.25, int8 96x96x3 in, int8 softmax [1,2] out."""
    net = Net(seed)
    x = net.act("input", (1, 96, 96, 3), 1.0 / 128, -1)
    return net.finish("vww", [x], [_mobilenet_v1_025(net, x, 2)])


def person_detection(seed: int = 102) -> ZooModel:
    """TFLM person_detection: the same MobileNetV1-0.25 on a 96x96 grayscale image, int8 in and out."""
    net = Net(seed)
    x = net.act("input", (1, 96, 96, 1), 1.0 / 128, -128)
    return net.finish("person_detect", [x], [_mobilenet_v1_025(net, x, 2)])


def anomaly(seed: int = 103, float_edges: bool = False) -> ZooModel:
    """MLPerf Tiny anomaly detection: dense autoencoder 640-128-128-128-128-8-128-128-128-128-640."""
    net = Net(seed)
    if float_edges:
        xf = net.act("input", (1, 640), dtype="float32")
        x = net.quantize(xf, "int8", 0.08, 5)
    else:
        x = net.act("input", (1, 640), 0.08, 5)
    h = x
    for units in (128, 128, 128, 128, 8, 128, 128, 128, 128):
        h = net.fc(h, units, activation="RELU")
    y = net.fc(h, 640)
    if float_edges:
        y = net.dequantize(y)
        return net.finish("anomaly_float_edges", [xf], [y])
    return net.finish("anomaly", [x], [y])


def resnet8(seed: int = 104) -> ZooModel:
    """MLPerf Tiny image classification ResNet-8 (32x32x3, three residual stacks 16/32/64, ADDs)."""
    net = Net(seed)
    x = net.act("input", (1, 32, 32, 3), 1.0 / 128, 0)
    y = net.conv(x, 16, (3, 3), activation="RELU")
    for ch, stride in [(16, 1), (32, 2), (64, 2)]:
        a = net.conv(y, ch, (3, 3), stride=stride, activation="RELU")
        a = net.conv(a, ch, (3, 3), activation="NONE")
        shortcut = y if stride == 1 else net.conv(y, ch, (1, 1), stride=stride, activation="NONE")
        y = net.add(a, shortcut, "RELU")
    y = net.pool("AVERAGE_POOL_2D", y, (8, 8), (8, 8))
    y = net.reshape(y, (1, 64))
    y = net.fc(y, 10)
    return net.finish("resnet8", [x], [net.softmax(y)])


def ds_cnn(seed: int = 105) -> ZooModel:
    """MLPerf Tiny keyword spotting DS-CNN (49x10 MFCC, conv 10x4/2 then four dw+pw blocks of 64)."""
    net = Net(seed)
    x = net.act("input", (1, 49, 10, 1), 0.5, 80)
    y = net.conv(x, 64, (10, 4), stride=2, activation="RELU")
    for _ in range(4):
        y = net.depthwise(y, (3, 3), activation="RELU")
        y = net.conv(y, 64, (1, 1), activation="RELU")
    y = net.pool("AVERAGE_POOL_2D", y, (25, 5), (25, 5))
    y = net.reshape(y, (1, 64))
    y = net.fc(y, 12)
    return net.finish("ds_cnn", [x], [net.softmax(y)])


def micro_speech(seed: int = 106) -> ZooModel:
    """TFLM micro_speech: flat 1960 input, RESHAPE to 49x40x1, conv 10x8/2 (8 ch), FULLY_CONNECTED
    applied straight to the rank-4 conv output, SOFTMAX over 4 classes."""
    net = Net(seed)
    x = net.act("input", (1, 1960), 0.1, -128)
    y = net.reshape(x, (1, 49, 40, 1))
    y = net.conv(y, 8, (10, 8), stride=2, activation="RELU")
    y = net.fc(y, 4, depth=25 * 20 * 8)  # rank-4 input [1,25,20,8], weights [4, 4000]
    return net.finish("micro_speech", [x], [net.softmax(y)])


def fc_rank4_rows(seed: int = 111) -> ZooModel:
    """FULLY_CONNECTED on a rank-4 input whose weights take only the last axis (one row per pixel),
    then SOFTMAX over those rows: shapes [1,6,5,8] -> [30,4]."""
    net = Net(seed)
    x = net.act("input", (1, 6, 5, 3), 0.05, 0)
    y = net.conv(x, 8, (3, 3), activation="RELU")
    y = net.fc(y, 4)
    return net.finish("fc_rank4_rows", [x], [net.softmax(y)])


def magic_wand(seed: int = 107) -> ZooModel:
    """TFLM magic_wand (float32): accelerometer 128x3x1, conv 4x3 (8) + MAX_POOL 3x3, conv 4x1 (16) +
    MAX_POOL 3x1 SAME, flatten, dense 16 RELU, dense 4, SOFTMAX."""
    net = Net(seed, dtype="float32")
    x = net.act("input", (1, 128, 3, 1))
    y = net.conv(x, 8, (4, 3), activation="RELU")
    y = net.pool("MAX_POOL_2D", y, (3, 3), (3, 3))
    y = net.conv(y, 16, (4, 1), activation="RELU")
    y = net.pool("MAX_POOL_2D", y, (3, 1), (3, 1), padding="SAME")
    n = int(np.prod(net.shape[y]))
    y = net.reshape(y, (1, n))
    y = net.fc(y, 16, activation="RELU")
    y = net.fc(y, 4)
    return net.finish("magic_wand", [x], [net.softmax(y)], is_float=True)


def uint8_io(seed: int = 108) -> ZooModel:
    """uint8 input and output around an int8 body (converter with inference_input/output_type=uint8):
    QUANTIZE uint8->int8 at the input, QUANTIZE int8->uint8 at the output."""
    net = Net(seed)
    xu = net.act("input", (1, 16, 16, 3), 0.02, 100, dtype="uint8")
    x = net.quantize(xu, "int8", 0.015, -3)  # a real rescale, not only the 128 offset
    y = net.conv(x, 8, (3, 3), stride=2)
    y = net.depthwise(y, (3, 3))
    y = net.pool("MAX_POOL_2D", y, (2, 2), (2, 2))
    y = net.reshape(y, (1, 4 * 4 * 8))
    y = net.fc(y, 5)
    y = net.softmax(y)
    yu = net.quantize(y, "uint8", 1.0 / 256, 0)
    return net.finish("uint8_io", [xu], [yu])


def batch2(seed: int = 109) -> ZooModel:
    """A batch dimension of 2 through conv, depthwise, average pool and a FULLY_CONNECTED per sample."""
    net = Net(seed)
    x = net.act("input", (2, 12, 12, 4), 0.05, 3)
    y = net.conv(x, 8, (3, 3), activation="RELU")
    y = net.depthwise(y, (3, 3), stride=2)
    y = net.pool("AVERAGE_POOL_2D", y, (2, 2), (2, 2))
    y = net.reshape(y, (2, 3 * 3 * 8))
    y = net.fc(y, 6)
    return net.finish("batch2", [x], [net.softmax(y)])


def multi_head(seed: int = 110) -> ZooModel:
    """Two inputs, three outputs: FC branches joined by CONCATENATION, heads LOGISTIC, TANH and a
    SOFTMAX with beta 0.5 (float-edged: a float input QUANTIZEd, one output DEQUANTIZEd)."""
    net = Net(seed)
    a = net.act("audio", (1, 40), 0.1, 10)
    vf = net.act("vision", (1, 24), dtype="float32")
    v = net.quantize(vf, "int8", 0.03, -4)
    ha = net.fc(a, 16, activation="RELU")
    hv = net.fc(v, 16, activation="RELU")
    hv = net.quantize(hv, "int8", *net.q[ha])  # CONCATENATION needs one quantisation
    h = net.concat([ha, hv], axis=1)
    logit = net.fc(h, 3)
    sig = net.unary("LOGISTIC", logit)
    th = net.unary("TANH", net.fc(h, 2))
    sm = net.dequantize(net.softmax(net.fc(h, 5), beta=0.5))
    return net.finish("multi_head", [a, vf], [sig, th, sm])


MODELS: dict[str, Callable[[], ZooModel]] = {
    "vww": vww,
    "person_detection": person_detection,
    "anomaly": anomaly,
    "anomaly_float_edges": lambda: anomaly(113, float_edges=True),
    "resnet8": resnet8,
    "ds_cnn": ds_cnn,
    "micro_speech": micro_speech,
    "fc_rank4_rows": fc_rank4_rows,
    "magic_wand": magic_wand,
    "uint8_io": uint8_io,
    "batch2": batch2,
    "multi_head": multi_head,
}

"""The values the ONNX integer importer tracks per tensor name while it walks the graph.

A QDQ graph is float ops between DequantizeLinear and QuantizeLinear; the importer does not compute
those floats. It keeps a DequantizeLinear as a `Deq` (a view of an integer tensor), a float op over
views as `Pending`, and turns a `Pending` into one integer kernel when a QuantizeLinear fixes its output
quantisation. Activations are `QAct`s: int8 storage (uint8 kept as value - 128), 4-D ones usually NHWC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

# The QLinear* operators the integer importer maps (the census must not reject them as unknown to TVM).
QLINEAR_OPS = (
    "QLinearConv",
    "QLinearMatMul",
    "QGemm",
    "QLinearAdd",
    "QLinearAveragePool",
    "QLinearGlobalAveragePool",
    "QLinearSigmoid",
    "QLinearConcat",
    "QLinearMul",
    "QLinearSoftmax",
    "QLinearLeakyRelu",
)
QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


class Unmappable(Exception):
    """One node the integer importer cannot map (collected; the walk goes on to find the others)."""


def node_attrs(node: Any) -> dict[str, Any]:
    """An ONNX node's attributes as Python values."""
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def attr_text(a: dict[str, Any], key: str, default: str) -> str:
    value = a.get(key, default)
    return value.decode() if isinstance(value, bytes) else str(value)


def f32(x: float | np.floating[Any]) -> np.float32:
    return np.float32(x)


@dataclass
class QAct:
    expr: Any  # relax expression, int8 storage
    shape: tuple[int, ...]  # the ONNX (NCHW) shape
    nhwc: bool  # physical layout of a 4-D tensor
    offset: int  # 128 when the ONNX type is uint8 (raw = stored + offset), else 0

    @property
    def onnx_dtype(self) -> str:
        return "uint8" if self.offset else "int8"

    @property
    def physical_shape(self) -> tuple[int, ...]:
        if self.nhwc and len(self.shape) == 4:
            n, c, h, w = self.shape
            return (n, h, w, c)
        return self.shape


@dataclass
class IndexOut:
    """An int64 result that is not quantised (ArgMax): it can only be a model output."""

    expr: Any
    shape: tuple[int, ...]


@dataclass
class FloatIn:
    expr: Any  # a float32 model input
    shape: tuple[int, ...]


@dataclass
class QParams:
    """A QuantizeLinear/DequantizeLinear's scale and zero point (raw ONNX domain), per-tensor or per-axis."""

    scales: np.ndarray  # float32
    zero_points: np.ndarray  # int64
    dtype: str  # "int8" / "uint8" / "int32" ...
    axis: int = 1

    @property
    def per_tensor(self) -> bool:
        return self.scales.size == 1

    @property
    def scale(self) -> np.float32:
        return np.float32(self.scales.reshape(-1)[0])

    @property
    def zero_point(self) -> int:
        return int(self.zero_points.reshape(-1)[0])

    @property
    def offset(self) -> int:
        return 128 if self.dtype == "uint8" else 0

    def describe(self) -> str:
        if self.per_tensor:
            return f"{self.dtype} per-tensor (scale {float(self.scale):.6g}, zero point {self.zero_point})"
        zps = sorted(set(int(z) for z in self.zero_points.reshape(-1)))
        return (
            f"{self.dtype} per-channel (axis {self.axis}, {self.scales.size} scales, zero points {zps[:4]})"
        )


@dataclass
class Deq:
    """DequantizeLinear of an activation (`QAct`) or of a constant (numpy array)."""

    src: QAct | np.ndarray
    q: QParams


@dataclass
class Pending:
    """A float op over Deq views, lowered when a QuantizeLinear gives its output quantisation."""

    node: Any  # onnx NodeProto
    args: list[Any]  # Deq / numpy constants / None for omitted inputs
    activation: tuple[float, float] | None = None  # fused Relu/Clip bounds (real values)
    fused: list[str] = field(default_factory=list)  # names of the fused activation nodes
    output_index: int = 0  # which output of a multi-output op (Split) this value is


# --- helpers the walk and every converter family share ---------------------------------------------


def node_label(node: Any) -> str:
    """`op ('name')` for messages, the domain prefixed when it is not the default one."""
    name = node.name or (node.output[0] if node.output else "?")
    op = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"
    return f"{op} ({name!r})"


def same_quantization(a: QParams, b: QParams) -> bool:
    return (
        a.per_tensor
        and b.per_tensor
        and a.scale == b.scale
        and a.zero_point == b.zero_point
        and a.offset == b.offset
    )


def group_input(p: Pending, index: int) -> tuple[QAct, QParams]:
    """Input `index` of a QDQ group's float op, which must be a DequantizeLinear of an activation."""
    v = p.args[index]
    if not isinstance(v, Deq) or not isinstance(v.src, QAct):
        raise Unmappable(f"input {index} of {p.node.op_type} is not a DequantizeLinear of an activation")
    return v.src, v.q


def window_pads(
    a: dict[str, Any], in_hw: tuple[int, int], k_hw: tuple[int, int], strides: Any, dil: Any
) -> list[int]:
    """A 2-D window's [top, left, bottom, right] padding (Conv, AveragePool, MaxPool) from explicit pads
    or auto_pad (SAME_UPPER puts the odd pixel last)."""
    mode = a.get("auto_pad", b"NOTSET")
    mode = mode.decode() if isinstance(mode, bytes) else str(mode)
    if mode in ("NOTSET", ""):
        return [int(p) for p in a.get("pads", [0, 0, 0, 0])]
    if mode == "VALID":
        return [0, 0, 0, 0]
    if mode not in ("SAME_UPPER", "SAME_LOWER"):
        raise Unmappable(f"auto_pad={mode!r} is not supported")
    begin, end = [], []
    for size, k, st, d in zip(in_hw, k_hw, strides, dil, strict=True):
        out = (size + int(st) - 1) // int(st)
        total = max((out - 1) * int(st) + (k - 1) * int(d) + 1 - size, 0)
        small, big = total // 2, total - total // 2
        begin.append(small if mode == "SAME_UPPER" else big)
        end.append(big if mode == "SAME_UPPER" else small)
    return [begin[0], begin[1], end[0], end[1]]

"""Index and value checks on a verified TFLite model: everything the compiler relies on, checked once.

tflite_verify.py proves the bytes are a well-formed flatbuffer; this module proves the values in it make
sense before any reader (our census, TVM's frontend, the integer importer) trusts them. Each refusal names
the field and its value. Shapes against what their operators compute are shape_rules.py's job.

Limits are a 32-bit microcontroller's: one tensor, and all activations together (a bound on the arena),
must fit in 2**31 bytes.
"""

from __future__ import annotations

import math
from typing import Any

from tvmc_micro.compiler.tflite_verify import verify_tflite

MAX_TENSOR_BYTES = 2**31 - 1  # a tensor, and the arena, must be addressable on a 32-bit MCU
SCHEMA_VERSION = 3  # TFLite and TFLite Micro refuse any other `Model.version`

# TensorType value -> (name, bytes per element) for the types the compiler computes on or stores.
TFLITE_TYPES: dict[int, tuple[str, int]] = {
    0: ("FLOAT32", 4),
    1: ("FLOAT16", 2),
    2: ("INT32", 4),
    3: ("UINT8", 1),
    4: ("INT64", 8),
    6: ("BOOL", 1),
    7: ("INT16", 2),
    9: ("INT8", 1),
    10: ("FLOAT64", 8),
    12: ("UINT64", 8),
    15: ("UINT32", 4),
    16: ("UINT16", 2),
}
# Zero-point ranges of quantized integer tensors. TFLite's 16x8 kernels want int16 zero points of 0, but
# TFLM's ADD/SUB and a SOFTMAX output (-32768) take others: the operators' converters check those.
ZERO_POINT_RANGE: dict[str, tuple[int, int]] = {
    "INT8": (-128, 127),
    "UINT8": (0, 255),
    "INT16": (-32768, 32767),
    "INT32": (-(2**31), 2**31 - 1),
}


class ModelCheckError(ValueError):
    """A value in the model is impossible or unusable; the message names where it is and what it is."""


def _tname(sub: Any, t: int) -> str:
    name = sub.Tensors(t).Name()
    return name.decode("utf-8", "replace") if name else ""


def _where(sub: Any, t: int, s: int) -> str:
    prefix = f"subgraph {s} " if s else ""
    return f"{prefix}tensor {t} '{_tname(sub, t)}'"


def _builtin_names() -> dict[int, str]:
    import tflite

    values = vars(tflite.BuiltinOperator)
    return {v: k for k, v in values.items() if not k.startswith("_") and isinstance(v, int)}


def check_tflite_values(model: Any, file_size: int) -> None:
    """Raise ModelCheckError on the first impossible index or value of a verified model."""
    if model.Version() != SCHEMA_VERSION:
        raise ModelCheckError(f"schema version is {model.Version()}; TFLite writes {SCHEMA_VERSION}")
    n_codes, n_buffers, n_subs = model.OperatorCodesLength(), model.BuffersLength(), model.SubgraphsLength()
    if n_subs < 1:
        raise ModelCheckError("the model has no subgraph")
    known = _builtin_names()
    for c in range(n_codes):
        code = model.OperatorCodes(c)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin not in known:
            raise ModelCheckError(f"operator code {c} has builtin code {builtin}: no TFLite operator")
    for b in range(n_buffers):
        buf = model.Buffers(b)
        if buf.Offset() > 1 and buf.Offset() + buf.Size() > file_size:
            raise ModelCheckError(
                f"buffer {b} lies beyond the end of the file "
                f"({buf.Offset()}+{buf.Size()} > {file_size} bytes)"
            )
    for m in range(model.MetadataLength()):
        if model.Metadata(m).Buffer() >= n_buffers:
            raise ModelCheckError(f"metadata {m} names buffer {model.Metadata(m).Buffer()} of {n_buffers}")
    for d in range(model.SignatureDefsLength()):
        sig = model.SignatureDefs(d)
        if sig.SubgraphIndex() >= n_subs:
            raise ModelCheckError(f"signature {d} refers to subgraph {sig.SubgraphIndex()} of {n_subs}")
        n_t = model.Subgraphs(sig.SubgraphIndex()).TensorsLength()
        for maps in ([sig.Inputs(i) for i in range(sig.InputsLength())],
                     [sig.Outputs(i) for i in range(sig.OutputsLength())]):  # fmt: skip
            for tm in maps:
                if tm.TensorIndex() >= n_t:
                    raise ModelCheckError(f"signature {d} refers to tensor {tm.TensorIndex()} of {n_t}")
    for s in range(n_subs):
        _check_subgraph(model, s, file_size)


def _check_subgraph(model: Any, s: int, file_size: int) -> None:
    sub = model.Subgraphs(s)
    n_t = sub.TensorsLength()
    where_sg = f"subgraph {s}" if s else "the model"
    constant = [False] * n_t
    activation_bytes = 0
    # Operator intermediates (the converter's int8 LSTM writes them with shape [0]) only carry
    # quantization parameters: TFLite Micro never allocates them, so an empty shape is fine there.
    intermediates = {
        i
        for k in range(sub.OperatorsLength())
        for i in _ints(sub.Operators(k).IntermediatesAsNumpy(), sub.Operators(k).IntermediatesLength())
    }
    for t in range(n_t):
        constant[t] = _check_tensor(model, sub, s, t, empty_ok=t in intermediates)
        if not constant[t]:
            activation_bytes += _tensor_bytes(sub, s, t)
    if activation_bytes > MAX_TENSOR_BYTES:
        raise ModelCheckError(
            f"{where_sg}'s activations total {activation_bytes} bytes, more than a 32-bit microcontroller "
            f"can address ({MAX_TENSOR_BYTES + 1} bytes)"
        )
    for role, idxs in (("input", sub.InputsAsNumpy()), ("output", sub.OutputsAsNumpy())):
        for i in _ints(idxs, sub.InputsLength() if role == "input" else sub.OutputsLength()):
            if not 0 <= i < n_t:
                raise ModelCheckError(f"{where_sg}'s {role} list names tensor {i}; it has {n_t} tensors")
    n_codes = model.OperatorCodesLength()
    inputs = set(_ints(sub.InputsAsNumpy(), sub.InputsLength()))
    written: dict[int, int] = {}
    for k in range(sub.OperatorsLength()):
        op = sub.Operators(k)
        if op.OpcodeIndex() >= n_codes:
            raise ModelCheckError(f"operator {k} has opcode index {op.OpcodeIndex()} of {n_codes} codes")
        ins = _ints(op.InputsAsNumpy(), op.InputsLength())
        outs = _ints(op.OutputsAsNumpy(), op.OutputsLength())
        mids = _ints(op.IntermediatesAsNumpy(), op.IntermediatesLength())
        roles = (("input", ins, True), ("output", outs, False), ("intermediate", mids, False))
        for role, idxs, optional in roles:
            for i in idxs:
                if not (0 <= i < n_t or (optional and i == -1)):
                    allowed = "-1 (omitted) or " if optional else ""
                    raise ModelCheckError(
                        f"operator {k} {role} is tensor {i}; it must be {allowed}0..{n_t - 1}"
                    )
        for i in ins:
            # TFLM runs operators in file order: a computed tensor read before it is written is garbage.
            if i >= 0 and not constant[i] and i not in inputs and i not in written:
                if not sub.Tensors(i).IsVariable():
                    raise ModelCheckError(
                        f"operator {k} reads {_where(sub, i, s)} before any operator writes it"
                    )
        for i in outs:
            if constant[i] or i in inputs or i in written:
                what = ("holds constant data" if constant[i] else "is a model input" if i in inputs
                        else f"is already written by operator {written[i]}")  # fmt: skip
                raise ModelCheckError(f"operator {k} writes {_where(sub, i, s)}, which {what}")
            written[i] = k
    for i in _ints(sub.OutputsAsNumpy(), sub.OutputsLength()):
        if not (constant[i] or i in inputs or i in written or sub.Tensors(i).IsVariable()):
            raise ModelCheckError(f"{where_sg}'s output {_where(sub, i, s)} is never written")


def _ints(arr: Any, length: int) -> list[int]:
    return [int(x) for x in arr] if length else []


def _tensor_bytes(sub: Any, s: int, t: int) -> int:
    tensor = sub.Tensors(t)
    size = TFLITE_TYPES[tensor.Type()][1]
    for d in _ints(tensor.ShapeAsNumpy(), tensor.ShapeLength()):
        size *= d
        if size > MAX_TENSOR_BYTES:
            break
    return size


def _check_tensor(model: Any, sub: Any, s: int, t: int, empty_ok: bool = False) -> bool:
    """Check one tensor; returns whether it is a constant (holds data). `empty_ok`: a 0 dimension is
    allowed (an operator intermediate)."""
    tensor = sub.Tensors(t)
    where = _where(sub, t, s)
    try:
        (tensor.Name() or b"").decode("utf-8")  # TVM's frontend decodes names strictly
    except UnicodeDecodeError:
        raise ModelCheckError(f"{where} has a name that is not UTF-8 ({tensor.Name()[:40]!r})") from None
    if tensor.Type() not in TFLITE_TYPES:
        import tflite

        names = {v: k for k, v in vars(tflite.TensorType).items() if not k.startswith("_")}
        kind = names.get(tensor.Type(), "no TFLite type")
        raise ModelCheckError(f"{where} has type {tensor.Type()} ({kind}), which the compiler cannot handle")
    dtype = TFLITE_TYPES[tensor.Type()][0]
    shape = _ints(tensor.ShapeAsNumpy(), tensor.ShapeLength())
    n_buffers = model.BuffersLength()
    if tensor.Buffer() >= n_buffers:
        raise ModelCheckError(f"{where} refers to buffer {tensor.Buffer()}; the model has {n_buffers}")
    buf = model.Buffers(tensor.Buffer())
    data_len = buf.DataLength() if buf.DataLength() else (buf.Size() if buf.Offset() > 1 else 0)
    is_constant = data_len > 0
    for i, d in enumerate(shape):
        if d < 0 or (d == 0 and not is_constant and not empty_ok):
            raise ModelCheckError(f"{where} shape[{i}] is {d}; dimensions must be positive")
    nbytes = _tensor_bytes(sub, s, t)
    if nbytes > MAX_TENSOR_BYTES:
        raise ModelCheckError(
            f"{where} has shape {shape} ({dtype}): more than {MAX_TENSOR_BYTES + 1} bytes, which a 32-bit "
            "microcontroller cannot address"
        )
    sparse = tensor.Sparsity() is not None
    if sparse and dtype != "FLOAT32":
        raise ModelCheckError(
            f"{where} is a sparse {dtype} tensor; only float32 weights expanded by DENSIFY are supported"
        )
    # A sparse tensor's buffer holds the compressed values (fewer bytes than its shape): DENSIFY expands
    # it, and the frontend refuses one read by any other operator.
    if is_constant and not sparse and data_len != nbytes:
        raise ModelCheckError(
            f"{where} is {dtype}{shape} ({nbytes} bytes) but its buffer {tensor.Buffer()} holds "
            f"{data_len} bytes"
        )
    q = tensor.Quantization()
    if q is not None and q.ScaleLength() > 0 and dtype in ZERO_POINT_RANGE:
        _check_quantization(q, where, dtype, shape)
    return is_constant


def _check_quantization(q: Any, where: str, dtype: str, shape: list[int]) -> None:
    scales = [float(x) for x in q.ScaleAsNumpy()]
    zps = _ints(q.ZeroPointAsNumpy(), q.ZeroPointLength())
    for i, sc in enumerate(scales):
        if not (math.isfinite(sc) and sc > 0):
            raise ModelCheckError(f"{where} quantization scale[{i}] is {sc}; scales must be finite and > 0")
    if len(zps) != len(scales):
        raise ModelCheckError(
            f"{where} has {len(scales)} quantization scale(s) but {len(zps)} zero point(s); TFLite needs "
            "one each"
        )
    lo, hi = ZERO_POINT_RANGE[dtype]
    for i, zp in enumerate(zps):
        if not lo <= zp <= hi:
            raise ModelCheckError(f"{where} ({dtype}) zero_point[{i}] is {zp}; it must be in {lo}..{hi}")
    if len(scales) > 1:
        qdim = q.QuantizedDimension()
        if len(shape) == 1 and shape[0] == len(scales):
            return  # TFLM's own person_detect.tflite stores biases like this with quantized_dimension 3
        if not 0 <= qdim < len(shape):
            raise ModelCheckError(
                f"{where} is quantized per channel along dimension {qdim}, but its shape {shape} has "
                f"{len(shape)} dimensions"
            )
        if shape[qdim] != len(scales):
            raise ModelCheckError(
                f"{where} has {len(scales)} per-channel scales but shape[{qdim}] (quantized_dimension) is "
                f"{shape[qdim]}"
            )


def check_tflite(data: bytes, shapes: bool = True) -> Any:
    """Verify the flatbuffer, check indices, values and operator shapes; return the tflite.Model.

    `shapes=False` leaves the operator shape rules out (the integer importer's converters refuse
    unsupported operands themselves, by operator). Raises FlatbufferError (structure), ModelCheckError
    (values) or shape_rules.ShapeError (shapes),
    all ValueError subclasses with a message that names the field.
    """
    import tflite

    from tvmc_micro.compiler.shape_rules import check_shapes, read_subgraph

    verify_tflite(data)
    model = tflite.Model.GetRootAsModel(data, 0)
    check_tflite_values(model, len(data))
    if shapes:
        check_shapes(read_subgraph(model, 0))
    return model


# ----------------------------------------------------------------------------------------------- ONNX

# ONNX TensorProto.DataType -> (name, bytes per element) for fixed-size types.
_ONNX_SIZES = {1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 16: 2}
_ONNX_ZERO_POINT = {2: (0, 255), 3: (-128, 127), 4: (0, 65535), 5: (-32768, 32767), 6: (-(2**31), 2**31 - 1)}
# Quantization operators -> (scale input indices, zero-point input indices), from the ONNX operator specs.
_XY = ((1, 3), (2, 4))  # X, X_scale, X_zero_point, Y_scale, Y_zero_point
_ABY = ((1, 4, 6), (2, 5, 7))  # A, A_scale, A_zp, B, B_scale, B_zp, Y_scale, Y_zp
_ONNX_QUANT_OPS: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "QuantizeLinear": ((1,), (2,)),
    "DequantizeLinear": ((1,), (2,)),
    "QLinearConv": _ABY,
    "QLinearMatMul": _ABY,
    "QLinearAdd": _ABY,
    "QLinearMul": _ABY,
    "QGemm": ((1, 4, 7), (2, 5, 8)),
    "QLinearAveragePool": _XY,
    "QLinearGlobalAveragePool": _XY,
    "QLinearSigmoid": _XY,
    "QLinearLeakyRelu": _XY,
    "QLinearSoftmax": _XY,
}


def check_onnx_values(model: Any) -> None:
    """What onnx.checker leaves unchecked and the compiler relies on: initializer sizes against their
    dims, static dimensions, external data, and the scales and zero points of quantization operators."""
    from onnx import TensorProto

    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    for t in graph.initializer:
        where = f"initializer '{t.name}'"
        if t.data_location == TensorProto.EXTERNAL:
            raise ModelCheckError(f"{where} keeps its data in an external file, which is not supported")
        if any(d < 0 for d in t.dims):
            raise ModelCheckError(f"{where} has dims {list(t.dims)}; dimensions must not be negative")
        n = math.prod(t.dims)
        size = _ONNX_SIZES.get(t.data_type)
        if size is not None and n * size > MAX_TENSOR_BYTES:
            raise ModelCheckError(f"{where} has dims {list(t.dims)}: more than {MAX_TENSOR_BYTES + 1} bytes")
        if size is not None and t.HasField("raw_data") and len(t.raw_data) != n * size:
            raise ModelCheckError(
                f"{where} has dims {list(t.dims)} ({n * size} bytes) but holds {len(t.raw_data)} bytes"
            )
    for vi in list(graph.input) + list(graph.output) + list(graph.value_info):
        for i, d in enumerate(vi.type.tensor_type.shape.dim):
            if d.HasField("dim_value") and d.dim_value <= 0 and vi.name not in inits:
                raise ModelCheckError(f"'{vi.name}' shape[{i}] is {d.dim_value}; dimensions must be positive")
    for k, node in enumerate(graph.node):
        roles = _ONNX_QUANT_OPS.get(node.op_type)
        if node.op_type == "QLinearConcat":  # Y_scale, Y_zp, then (X, X_scale, X_zp) per input
            n = len(node.input)
            roles = ((0, *range(3, n, 3)), (1, *range(4, n, 3)))
        if roles is None:
            continue
        for role, idxs in zip(("scale", "zero point"), roles, strict=True):
            for i in idxs:
                t = inits.get(node.input[i]) if i < len(node.input) else None
                if t is not None:
                    _check_onnx_qparam(t, role, f"node {k} ({node.op_type} '{node.name}') {role} '{t.name}'")


def _check_onnx_qparam(t: Any, role: str, where: str) -> None:
    from onnx import numpy_helper

    if role == "scale":
        for v in numpy_helper.to_array(t).reshape(-1).tolist():
            if not (math.isfinite(float(v)) and float(v) > 0):
                raise ModelCheckError(f"{where} is {v}; scales must be finite and > 0")
        return
    lo_hi = _ONNX_ZERO_POINT.get(t.data_type)
    if lo_hi is None:
        return
    # Small integer types live in int32_data unless raw: a damaged value there is not wrapped by numpy.
    raw = t.HasField("raw_data")
    values = numpy_helper.to_array(t).reshape(-1).tolist() if raw else list(t.int32_data)
    for v in values:
        if not lo_hi[0] <= int(v) <= lo_hi[1]:
            raise ModelCheckError(f"{where} holds {v}, outside {lo_hi[0]}..{lo_hi[1]}")

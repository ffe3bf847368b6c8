"""TFLite / ONNX bytes to a Relax IRModule whose `main` takes the model inputs in order."""

from __future__ import annotations

import logging
from typing import Any

from tvmc_micro.compiler.errors import LoweringError
from tvmc_micro.compiler.graph_info import GraphInfo, check_tflite_input_shapes
from tvmc_micro.compiler.model_file import ModelFile
from tvmc_micro.errors import TvmcError

log = logging.getLogger(__name__)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    # TVM errors carry a C++ backtrace after the message; the user needs the message.
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("File ", "Traceback", "  ")):
            return line[:400]
    return type(err).__name__


def import_model(
    mf: ModelFile,
    info: GraphInfo,
    model_name: str,
    input_shapes: dict[str, list[int]],
    allow_float_fallback: bool,
    integer_path: bool = True,
) -> tuple[Any, str]:
    """Returns (IRModule, path) where path is "float", "qdq" (int8 through float) or "integer"."""
    if mf.format == "tflite":
        check_tflite_input_shapes(info, input_shapes)
        # Also int8 inside with float at the edges (QUANTIZE in, DEQUANTIZE out): TFLM's usual export.
        if info.is_quantized or _int8_inside(mf.data):
            mod = _try_integer_path(mf, model_name, allow_float_fallback) if integer_path else None
            if mod is not None:
                return mod, "integer"
            return _from_tflite(mf, input_shapes), "qdq"
        return _from_tflite(mf, input_shapes), "float"
    if info.is_quantized:  # QDQ / QLinear* ONNX
        mod = _try_integer_path(mf, model_name, allow_float_fallback) if integer_path else None
        if mod is not None:
            return mod, "integer"
        return _from_onnx(mf, input_shapes), "qdq"
    return _from_onnx(mf, input_shapes), "float"


def _int8_inside(data: bytes) -> bool:
    from tvmc_micro.compiler.quantized import is_quantized_tflite

    return is_quantized_tflite(data)


def _try_integer_path(mf: ModelFile, model_name: str, allow_float_fallback: bool) -> Any | None:
    """The integer (MCU-grade) module; None when it refuses the model and the user allowed the QDQ
    float path instead (never a silent change of arithmetic)."""
    from tvmc_micro.compiler import quantized

    try:
        if mf.format == "onnx":
            from tvmc_micro.compiler.quantized.onnx_importer import import_onnx_quantized

            return import_onnx_quantized(mf.parsed, model_name)
        return quantized.import_tflite_quantized(mf.data, model_name)
    except quantized.UnsupportedQuantizedModel as err:
        if allow_float_fallback:
            log.warning("integer path cannot compile this model (%s); using the float (QDQ) path", err)
            return None
        raise TvmcError(
            f"the integer int8 path cannot compile this model: {err}",
            "pass --allow-float-fallback to compute it in float32 (dequantize -> float op -> quantize); "
            "that needs ~4x the activation memory and is not bit-exact with the reference interpreter",
        ) from err


def _duplicate_tensor_names(model: Any) -> list[str]:
    """Tensor names used more than once in the main subgraph (converters never write them, but
    hand-edited or generated flatbuffers can)."""
    sub = model.Subgraphs(0)
    names = [sub.Tensors(i).Name() for i in range(sub.TensorsLength())]
    seen: set[bytes] = set()
    dups: dict[bytes, None] = {}
    for name in names:
        if name in seen:
            dups[name] = None
        seen.add(name)
    return [n.decode("utf-8", "replace") for n in dups]


def _from_tflite(mf: ModelFile, input_shapes: dict[str, list[int]]) -> Any:
    from tvm.relax.frontend.tflite import from_tflite

    duplicates = _duplicate_tensor_names(mf.parsed)
    if duplicates:
        # TVM's TFLite frontend keys tensors by name: a repeated name silently wires the wrong tensor.
        shown = ", ".join(repr(n) for n in duplicates[:5]) + (" ..." if len(duplicates) > 5 else "")
        raise LoweringError(
            f"{mf.path.name} reuses tensor names ({shown}); TVM's TFLite frontend needs unique names",
            "re-export the model with the TFLite converter (it writes unique names)",
        )
    sparse = _sparse_tensors(mf.parsed)
    _refuse_sparse_without_densify(mf, sparse)
    from tvmc_micro.compiler import float_lstm
    from tvmc_micro.compiler.tflite_converter import operator_converter

    # TVM converts only the CIFG LSTM, without state: float LSTMs go through our importer (float_lstm.py).
    with_lstm = float_lstm.has_float_lstm(mf.parsed)
    if with_lstm:
        float_lstm.check_lstm_ops(mf.parsed, mf.path.name)  # refuses the unsupported variants by name
    try:
        if with_lstm:
            mod = float_lstm.from_tflite_with_lstm(mf.parsed, mf.path.name, input_shapes or None)
        else:
            mod = from_tflite(
                mf.parsed, shape_dict=input_shapes or None, op_converter=operator_converter()
            )
    except LoweringError:
        raise
    except Exception as err:
        if sparse:
            raise LoweringError(
                f"TVM's TFLite frontend cannot read the sparse weights of {mf.path.name} "
                f"({', '.join(repr(n) for n in sparse.values())}, densified by DENSIFY): {_first_line(err)}",
                "export the model without sparsity (dense weights); TVM 0.27 reads only some sparse formats",
            ) from err
        raise LoweringError(
            f"TVM's TFLite frontend failed on {mf.path.name}: {_first_line(err)}",
            "the operator named above is used in a way TVM 0.27 cannot convert (known gaps: "
            "FULLY_CONNECTED on rank>2 inputs, hybrid quantization); run with -v for details",
        ) from err
    # The frontend attaches the weights a second time as a `params` attribute; they are inline constants.
    main = mod["main"]
    if main.attrs is not None and "params" in main.attrs:
        mod["main"] = main.without_attr("params")
    return mod


def _sparse_tensors(model: Any) -> dict[int, str]:
    """Tensors of the main subgraph stored sparse (TFLite sparsity parameters), by index: their names."""
    sub = model.Subgraphs(0)
    found: dict[int, str] = {}
    for i in range(sub.TensorsLength()):
        t = sub.Tensors(i)
        if t.Sparsity() is not None:
            found[i] = t.Name().decode("utf-8", "replace")
    return found


def _refuse_sparse_without_densify(mf: ModelFile, sparse: dict[int, str]) -> None:
    """A sparse tensor must reach the graph through DENSIFY: TVM's frontend expands it there. Read by
    any other operator, TVM would take its packed values for a dense tensor (wrong shape or values)."""
    if not sparse:
        return
    import tflite

    model = mf.parsed
    sub = model.Subgraphs(0)
    for k in range(sub.OperatorsLength()):
        op = sub.Operators(k)
        code = model.OperatorCodes(op.OpcodeIndex())
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin == tflite.BuiltinOperator.DENSIFY:
            continue
        for i in range(op.InputsLength()):
            if op.Inputs(i) in sparse:
                name = next(n for n, v in vars(tflite.BuiltinOperator).items() if v == builtin)
                raise LoweringError(
                    f"{mf.path.name}: operator {k} ({name}) reads the sparse tensor "
                    f"{sparse[op.Inputs(i)]!r} directly; only sparse weights expanded by DENSIFY "
                    "are supported",
                    "export the model without sparsity, or with a DENSIFY op in front of the sparse weights",
                )


def _from_onnx(mf: ModelFile, input_shapes: dict[str, list[int]]) -> Any:
    from tvm.relax.frontend.onnx import from_onnx

    from tvmc_micro.compiler.onnx_converters import onnx_converter_fixes

    try:
        with onnx_converter_fixes():  # our LSTM and PRelu converters (onnx_converters.py)
            mod = from_onnx(mf.parsed, shape_dict=input_shapes or None, keep_params_in_input=False)
    except LoweringError:
        raise
    except Exception as err:
        raise LoweringError(
            f"TVM's ONNX frontend failed on {mf.path.name}: {_first_line(err)}",
            "check the operator and its attributes named above; run with -v for details",
        ) from err
    main = mod["main"]
    if main.attrs is not None and "params" in main.attrs:
        mod["main"] = main.without_attr("params")
    return mod

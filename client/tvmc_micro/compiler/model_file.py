"""Read a model file, decide its format from its content, and check it before any frontend sees it.

Frontends fail on bad input with deep tracebacks (or worse, segfault on a truncated flatbuffer), so
everything a user can get wrong is checked here first, with messages that name the file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tvmc_micro.compiler.errors import ModelFileError

FORMATS = ("tflite", "onnx")
_EXTENSIONS = {".tflite": "tflite", ".onnx": "onnx"}


@dataclass
class ModelFile:
    path: Path
    data: bytes
    format: str
    sha256: str
    # The parsed object (tflite.Model or onnx.ModelProto), kept so nothing parses twice.
    parsed: Any = field(repr=False, default=None)


def sniff_format(data: bytes) -> str | None:
    """The format the bytes are in: TFLite carries the file identifier "TFL3" at offset 4."""
    if len(data) >= 8 and data[4:8] == b"TFL3":
        return "tflite"
    if _looks_like_onnx(data):
        return "onnx"
    return None


def _looks_like_onnx(data: bytes) -> bool:
    # An ONNX ModelProto starts with field 1 (ir_version, varint): tag byte 0x08. Parsing decides for sure.
    if not data or data[0] != 0x08:
        return False
    try:
        import onnx

        model = onnx.ModelProto()
        model.ParseFromString(data)
    except Exception:
        return False
    return model.ir_version > 0 and model.HasField("graph")


def load_model_file(path: Path, declared_format: str | None = None) -> ModelFile:
    """Read and validate `path`; `declared_format` is `--model-format` (None: from the extension)."""
    if not path.exists():
        raise ModelFileError(f"model file {path} does not exist", "check the path")
    if path.is_dir():
        raise ModelFileError(f"{path} is a directory, not a model file", "pass a .tflite or .onnx file")
    data = path.read_bytes()
    if not data:
        raise ModelFileError(f"model file {path} is empty", "re-export or re-download the model")
    claimed = declared_format or _EXTENSIONS.get(path.suffix.lower())
    actual = sniff_format(data)
    if actual is None and claimed == "onnx" and data[0] == 0x08:
        raise ModelFileError(
            f"{path} starts like an ONNX model but does not parse as one: it is truncated or damaged",
            "re-export or re-download the model",
        )
    if actual is None:
        raise ModelFileError(
            f'{path} is neither a TFLite flatbuffer (no "TFL3" identifier at offset 4) nor an ONNX '
            "model (not a parsable ModelProto); the file is garbage or truncated",
            "re-export or re-download the model; supported formats: .tflite, .onnx",
        )
    if claimed is not None and claimed != actual:
        origin = "--model-format" if declared_format else "its extension"
        raise ModelFileError(
            f"{path} contains {_article(actual)} {actual.upper()} model, but {origin} says {claimed.upper()}",
            f"rename the file to end in .{actual}, or pass --model-format {actual}",
        )
    model = ModelFile(path=path, data=data, format=actual, sha256=hashlib.sha256(data).hexdigest())
    if actual == "tflite":
        model.parsed = _parse_tflite(path, data)
    else:
        model.parsed = _parse_onnx(path, data)
    return model


def _parse_tflite(path: Path, data: bytes) -> Any:
    import tflite

    try:
        model = tflite.Model.GetRootAsModel(data, 0)
        _check_tflite_bounds(model, len(data))
    except ModelFileError:
        raise
    except Exception as err:  # flatbuffers raises IndexError/struct.error etc. on a damaged file
        raise ModelFileError(
            f"{path} is a damaged TFLite flatbuffer ({type(err).__name__}: {err})",
            "the file is probably truncated; re-export or re-download it",
        ) from err
    return model


def _check_tflite_bounds(model: Any, size: int) -> None:
    """Touch every table the compiler reads so a truncated file fails here, not inside TVM."""
    if model.SubgraphsLength() < 1:
        raise ModelFileError("the TFLite model has no subgraph", "re-export the model")
    if model.OperatorCodesLength() < 1:
        raise ModelFileError("the TFLite model has no operator codes", "re-export the model")
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        code.BuiltinCode()
        code.DeprecatedBuiltinCode()
    for s in range(model.SubgraphsLength()):
        sub = model.Subgraphs(s)
        for t in range(sub.TensorsLength()):
            tensor = sub.Tensors(t)
            tensor.ShapeAsNumpy() if tensor.ShapeLength() else None
            tensor.Name()
            if tensor.Buffer() >= model.BuffersLength():
                raise ModelFileError(
                    f"tensor {t} of subgraph {s} refers to buffer {tensor.Buffer()} of "
                    f"{model.BuffersLength()}",
                    "the file is damaged; re-export it",
                )
        for o in range(sub.OperatorsLength()):
            op = sub.Operators(o)
            if op.OpcodeIndex() >= model.OperatorCodesLength():
                raise ModelFileError(f"operator {o} has an invalid opcode index", "re-export the model")
            for idx in list(op.InputsAsNumpy() if op.InputsLength() else []) + list(
                op.OutputsAsNumpy() if op.OutputsLength() else []
            ):
                if idx >= sub.TensorsLength():
                    raise ModelFileError(
                        f"operator {o} refers to missing tensor {idx}", "re-export the model"
                    )
    for b in range(model.BuffersLength()):
        buf = model.Buffers(b)
        if buf.DataLength():
            buf.DataAsNumpy()
        # Large models keep weights outside the flatbuffer, addressed by offset/size.
        offset = buf.Offset() if hasattr(buf, "Offset") else 0
        if offset > 1 and offset + buf.Size() > size:
            raise ModelFileError(
                f"buffer {b} lies beyond the end of the file ({offset}+{buf.Size()} > {size} bytes)",
                "the file is truncated; re-export or re-download it",
            )


def _parse_onnx(path: Path, data: bytes) -> Any:
    import onnx

    try:
        model = onnx.load_model_from_string(data)
        onnx.checker.check_model(model)
    except Exception as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelFileError(
            f"{path} is not a valid ONNX model: {first}",
            "the file is probably truncated or damaged; re-export it (onnx.checker.check_model must pass)",
        ) from err
    return model


def _article(fmt: str) -> str:
    return "an" if fmt.upper()[0] in "AEIOU" else "a"  # "an ONNX model", "a TFLITE model"

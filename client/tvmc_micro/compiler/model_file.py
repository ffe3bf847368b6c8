"""Read a model file, decide its format from its content, and check it before any frontend sees it.

Frontends fail on bad input with deep tracebacks (or worse, segfault on a truncated flatbuffer), so
everything a user can get wrong is checked here first, with messages that name the file.
"""

from __future__ import annotations

import hashlib
import os
import stat
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


# The largest model file read. MCU models are kilobytes to a few megabytes (flash is rarely over 16 MiB);
# 512 MiB leaves room for big float models compiled for a host while keeping a wrong path (a disk image,
# /dev/zero) from exhausting memory.
MAX_MODEL_BYTES = 512 << 20


def read_model_bytes(path: Path) -> bytes:
    """The bytes of a regular file of at most MAX_MODEL_BYTES; refuses FIFOs, devices and directories
    before opening them (opening a FIFO blocks until a writer appears; /dev/zero never ends)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ModelFileError(f"model file {path} does not exist", "check the path") from None
    except OSError as err:
        raise ModelFileError(f"cannot read model file {path}: {err.strerror}", "check the path") from None
    _require_regular(path, st)
    try:
        # O_NONBLOCK: if the path became a FIFO after the stat, open returns instead of waiting.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as err:
        raise ModelFileError(f"cannot open model file {path}: {err.strerror}", "check permissions") from None
    with os.fdopen(fd, "rb") as f:
        _require_regular(path, os.fstat(fd))  # the file opened is the one checked
        data = f.read(MAX_MODEL_BYTES + 1)
    if len(data) > MAX_MODEL_BYTES:
        raise ModelFileError(
            f"model file {path} is larger than {MAX_MODEL_BYTES >> 20} MiB; no microcontroller model is",
            "check the path (is it really the model?)",
        )
    return data


def _require_regular(path: Path, st: os.stat_result) -> None:
    if stat.S_ISREG(st.st_mode):
        if st.st_size > MAX_MODEL_BYTES:
            raise ModelFileError(
                f"model file {path} is {st.st_size} bytes, more than {MAX_MODEL_BYTES >> 20} MiB; "
                "no microcontroller model is",
                "check the path (is it really the model?)",
            )
        return
    kind = (
        "a directory" if stat.S_ISDIR(st.st_mode)
        else "a FIFO (named pipe)" if stat.S_ISFIFO(st.st_mode)
        else "a character device" if stat.S_ISCHR(st.st_mode)
        else "a block device" if stat.S_ISBLK(st.st_mode)
        else "a socket" if stat.S_ISSOCK(st.st_mode)
        else "not a regular file"
    )  # fmt: skip
    raise ModelFileError(f"{path} is {kind}, not a model file", "pass a .tflite or .onnx file")


def load_model_file(path: Path, declared_format: str | None = None) -> ModelFile:
    """Read and validate `path`; `declared_format` is `--model-format` (None: from the extension)."""
    data = read_model_bytes(path)
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
    """The tflite.Model, after the flatbuffer verifier and the value and shape checks passed."""
    from tvmc_micro.compiler.model_checks import ModelCheckError, check_tflite
    from tvmc_micro.compiler.shape_rules import ShapeError
    from tvmc_micro.compiler.tflite_verify import FlatbufferError

    try:
        return check_tflite(data)
    except FlatbufferError as err:
        raise ModelFileError(
            f"{path} is a damaged TFLite flatbuffer ({err})",
            "the file is probably truncated or corrupted; re-export or re-download it",
        ) from err
    except ModelCheckError as err:
        raise ModelFileError(
            f"{path} is a damaged TFLite model: {err}",
            "the file is corrupted or was written by a broken converter; re-export or re-download it",
        ) from err
    except ShapeError as err:
        raise ModelFileError(
            f"{path} has a tensor shape its operator contradicts: {err}",
            "the file is corrupted (TFLite Micro recomputes these shapes, this compiler generates code from "
            "them); re-export or re-download it",
        ) from err
    except Exception as err:  # a check that itself failed: still the file's fault, never a traceback
        raise ModelFileError(
            f"{path} is a damaged TFLite model (unexpected {type(err).__name__} while checking it: {err})",
            "re-export or re-download it; if it loads in TFLite Micro, report this file",
        ) from err


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
    from tvmc_micro.compiler.model_checks import ModelCheckError, check_onnx_values

    try:
        check_onnx_values(model)
    except ModelCheckError as err:
        raise ModelFileError(
            f"{path} is a damaged ONNX model: {err}", "the file is corrupted; re-export or re-download it"
        ) from err
    return model


def _article(fmt: str) -> str:
    return "an" if fmt.upper()[0] in "AEIOU" else "a"  # "an ONNX model", "a TFLITE model"

"""The one reader of Model Library Format `metadata.json` (stdlib only): size-capped, strictly UTF-8 JSON,
checked field by field against what the tools rely on.

Used by the client (`tvmc micro create-project`, `tvmc run`) on the tar and by every template server on the
extracted project, so a bad MLF fails the same way everywhere: an `InvalidMetadataError` naming the field
path and its value (``models[0].inputs[1].shape is [-1]: ...``), never a KeyError, AttributeError,
RecursionError or UnicodeDecodeError later. What is checked (docs/model-library-format.md):

- the document is an object with a non-empty `models` list of objects;
- each model has `name` (a C identifier), `signature` (a non-empty string), `inputs` and `outputs` (lists
  of tensors); optional `memory` (non-negative integers), `operators` (objects with a string `name` and an
  integer `index`), `state` (tensors), `target_str` (string);
- each tensor has `name` (string), optional `c_name` (C identifier, defaults to `name`), `shape` (list of
  non-negative integers), `dtype` (one of DTYPES), `size_bytes` (= elements x element size), optional
  `quantization` (null or {scale: finite number, zero_point: integer}).

Unknown fields are allowed (the format is additive).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from microtvm_api.errors import ArchiveError
from microtvm_api.framing import json_depth

# A real metadata.json is a few KB (2.9 KB for a 10-operator model; operators add ~100 B each): 4 MiB is
# room for ~40,000 operators while keeping a hostile file from costing the reader gigabytes of memory.
MAX_METADATA_BYTES = 4 * 1024 * 1024
# Real metadata nests 4 levels (models[i].inputs[j].quantization); anything near Python's recursion limit
# is an attack on the reader, not a model.
MAX_METADATA_DEPTH = 32

# Element sizes in bytes of the dtypes the device runtime and the glue generator know.
DTYPE_BYTES: dict[str, int] = {
    "int8": 1, "int16": 2, "int32": 4, "int64": 8,
    "uint8": 1, "uint16": 2, "uint32": 4, "uint64": 8,
    "float16": 2, "float32": 4, "float64": 8, "bfloat16": 2, "bool": 1,
}  # fmt: skip
DTYPES = tuple(DTYPE_BYTES)

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HINT = "regenerate the Model Library Format archive with `tvmc compile` (docs/model-library-format.md)"


class InvalidMetadataError(ArchiveError):
    """metadata.json is missing, too large, not UTF-8 JSON, or lacks a field the tools rely on."""

    default_message = "invalid Model Library Format metadata"


def _fail(source: str, what: str, field: str | None = None) -> InvalidMetadataError:
    data = {"field": field} if field else {}
    return InvalidMetadataError(f"{source}: {what}", _HINT, data=data)


def _show(value: Any) -> str:
    text = json.dumps(value) if _depth(value) <= MAX_METADATA_DEPTH else "<deeply nested value>"
    return text if len(text) <= 60 else text[:57] + "..."


def _depth(value: Any) -> int:
    return json_depth(value, MAX_METADATA_DEPTH)


def parse_metadata(data: bytes, source: str = "metadata.json") -> dict[str, Any]:
    """Decode, parse and validate metadata.json bytes; returns the document. `source` names it in errors."""
    if len(data) > MAX_METADATA_BYTES:
        raise _fail(source, f"the file is {len(data):,} bytes, more than the {MAX_METADATA_BYTES:,} "
                    "bytes a metadata.json may have")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or (len(data) > 1 and b"\x00" in data[:2]):
        raise _fail(source, "the file is UTF-16 encoded; metadata.json must be UTF-8")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        bad = data[err.start : err.start + 1]
        raise _fail(source, f"the file is not UTF-8 text (byte {err.start} is {bad!r})") from None
    try:
        document = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise _fail(source, f"the document nests more than {MAX_METADATA_DEPTH} levels deep") from None
    except ValueError as err:
        raise _fail(source, f"the file is not valid JSON ({err})") from None
    return validate_metadata(document, source)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def load_metadata(path: str | Path) -> dict[str, Any]:
    """Read, parse and validate a metadata.json file (an extracted MLF), reading at most the size cap."""
    file = Path(path)
    try:
        with open(file, "rb") as handle:
            data = handle.read(MAX_METADATA_BYTES + 1)
    except FileNotFoundError:
        raise _fail(str(file), "file not found") from None
    except OSError as err:
        raise _fail(str(file), f"cannot be read: {err.strerror or err}") from None
    return parse_metadata(data, str(file))


def validate_metadata(document: Any, source: str = "metadata.json") -> dict[str, Any]:
    """Check an already parsed metadata document; returns it unchanged."""
    if _depth(document) > MAX_METADATA_DEPTH:
        raise _fail(source, f"the document nests more than {MAX_METADATA_DEPTH} levels deep")
    if not isinstance(document, dict):
        raise _fail(source, f"the document must be a JSON object, not {_kind(document)} {_show(document)}")
    models = document.get("models")
    if not isinstance(models, list) or not models:
        found = "is missing" if "models" not in document else f"is {_show(models)}"
        raise _fail(source, f"field 'models' {found}: it must be a non-empty list of models", "models")
    for index, model in enumerate(models):
        _check_model(source, f"models[{index}]", model)
    return document


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


def _field(source: str, where: str, obj: Mapping[str, Any], key: str, expected: str) -> InvalidMetadataError:
    path = f"{where}.{key}"
    if key not in obj:
        return _fail(source, f"{path} is missing: it must be {expected}", path)
    return _fail(source, f"{path} is {_show(obj[key])}: it must be {expected}", path)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_model(source: str, where: str, model: Any) -> None:
    if not isinstance(model, dict):
        raise _fail(source, f"{where} is {_show(model)}: a model must be an object", where)
    name = model.get("name")
    if not isinstance(name, str) or not _IDENT.match(name):
        raise _field(source, where, model, "name", "a C identifier (the prefix of tvmgen_<name>)")
    signature = model.get("signature")
    if not isinstance(signature, str) or not signature:
        raise _field(source, where, model, "signature", "a non-empty string (tvmc run checks it on devices)")
    if "target_str" in model and not isinstance(model["target_str"], str):
        raise _field(source, where, model, "target_str", "a string")
    for key in ("inputs", "outputs"):
        tensors = model.get(key)
        if not isinstance(tensors, list):
            raise _field(source, where, model, key, "a list of tensors")
        for index, tensor in enumerate(tensors):
            _check_tensor(source, f"{where}.{key}[{index}]", tensor)
    if "state" in model:
        state = model["state"]
        if not isinstance(state, list):
            raise _field(source, where, model, "state", "a list of tensors")
        for index, tensor in enumerate(state):
            _check_tensor(source, f"{where}.state[{index}]", tensor, c_name=False)
    if "memory" in model:
        memory = model["memory"]
        if not isinstance(memory, dict):
            raise _field(source, where, model, "memory", "an object of byte counts")
        for key, value in memory.items():
            if not _is_int(value) or value < 0:
                raise _field(source, f"{where}.memory", memory, key, "a non-negative integer")
    if "operators" in model:
        operators = model["operators"]
        if not isinstance(operators, list):
            raise _field(source, where, model, "operators", "a list of operators")
        for index, op in enumerate(operators):
            at = f"{where}.operators[{index}]"
            if not isinstance(op, dict):
                raise _fail(source, f"{at} is {_show(op)}: an operator must be an object", at)
            if not isinstance(op.get("name"), str):
                raise _field(source, at, op, "name", "a string")
            if "index" in op and (not _is_int(op["index"]) or op["index"] < 0):
                raise _field(source, at, op, "index", "a non-negative integer")


def _check_tensor(source: str, where: str, tensor: Any, *, c_name: bool = True) -> None:
    if not isinstance(tensor, dict):
        raise _fail(source, f"{where} is {_show(tensor)}: a tensor must be an object", where)
    if not isinstance(tensor.get("name"), str):
        raise _field(source, where, tensor, "name", "a string")
    if c_name and "c_name" in tensor:
        value = tensor["c_name"]
        if not isinstance(value, str) or not _IDENT.match(value):
            raise _field(source, where, tensor, "c_name", "a C identifier (the struct member)")
    elif c_name and not _IDENT.match(tensor["name"]):
        raise _field(source, where, tensor, "name", "a C identifier when there is no c_name")
    dtype = tensor.get("dtype")
    if dtype not in DTYPE_BYTES:
        raise _field(source, where, tensor, "dtype", f"one of {', '.join(DTYPES)}")
    shape = tensor.get("shape")
    if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
        raise _field(source, where, tensor, "shape", "a list of non-negative integers")
    size = tensor.get("size_bytes")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise _field(source, where, tensor, "size_bytes", "a non-negative integer")
    expected = math.prod(shape) * DTYPE_BYTES[dtype]
    if size != expected:
        raise _field(source, where, tensor, "size_bytes",
                     f"{expected} (shape {shape} of {dtype}); the sizes disagree")
    quant = tensor.get("quantization")
    if quant is not None:
        if not isinstance(quant, dict):
            raise _field(source, where, tensor, "quantization", "null or {scale, zero_point}")
        at = f"{where}.quantization"
        scale = quant.get("scale")
        if isinstance(scale, bool) or not isinstance(scale, int | float) or not math.isfinite(scale):
            raise _field(source, at, quant, "scale", "a finite number")
        if not _is_int(quant.get("zero_point")):
            raise _field(source, at, quant, "zero_point", "an integer")

"""A model's input data from a numpy `.npz` file, read with the standard library only (template servers do
not depend on numpy), checked against the model's inputs in metadata.json and converted the way `tvmc run`
converts (client/tvmc_micro/runner.py `make_inputs`): so a `standalone` firmware built with an input file
computes on exactly the bytes `tvmc run -i` would send.

An `.npz` is a zip of `<name>.npy` members; a `.npy` is a magic string, a version, a header (a Python dict
literal: `descr`, `fortran_order`, `shape`) and the raw elements. `read_npz` parses that; `model_input_bytes`
matches arrays to inputs (by `name`, else `c_name`), reshapes when only size-1 dimensions differ, and
converts:

- the input's own dtype: the bytes as they are (little-endian);
- float data for a quantized integer input: `clip(round(x / scale) + zero_point)` in the array's float
  precision, rounding half to even (numpy's `np.round`), as `tvmc run` quantizes;
- integer or bool data for an integer input: each value, if the input's dtype holds them all;
- integer or float data for a float input: converted (rounded to nearest).

Anything else (a missing or extra array, a shape that does not fit, float data for a non-quantized integer
input, NaN for a quantized input, an unreadable or hostile file) is an `InvalidOptionError` naming the
option, the file, the input and what to do.
"""

from __future__ import annotations

import ast
import math
import os
import struct
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from microtvm_api.errors import InvalidOptionError

__all__ = ["NpyArray", "model_input_bytes", "read_npz"]

# One input of a microcontroller model is kilobytes; 64 MiB per array bounds a hostile or wrong file.
MAX_ARRAY_BYTES = 64 * 1024 * 1024
MAX_ARRAYS = 256
_MAGIC = b"\x93NUMPY"

# numpy dtype.str kind+size (byte order stripped) -> (metadata dtype name, struct format letter).
_DESCRS: dict[str, tuple[str, str]] = {
    "b1": ("bool", "?"),
    "i1": ("int8", "b"), "i2": ("int16", "h"), "i4": ("int32", "i"), "i8": ("int64", "q"),
    "u1": ("uint8", "B"), "u2": ("uint16", "H"), "u4": ("uint32", "I"), "u8": ("uint64", "Q"),
    "f2": ("float16", "e"), "f4": ("float32", "f"), "f8": ("float64", "d"),
}  # fmt: skip
_FORMATS = {name: fmt for name, fmt in _DESCRS.values()}
_INT_RANGES = {
    "int8": (-(2**7), 2**7 - 1), "int16": (-(2**15), 2**15 - 1),
    "int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1),
    "uint8": (0, 2**8 - 1), "uint16": (0, 2**16 - 1), "uint32": (0, 2**32 - 1), "uint64": (0, 2**64 - 1),
}  # fmt: skip
_FLOATS = ("float16", "float32", "float64")


@dataclass(frozen=True)
class NpyArray:
    """One array of an .npz: its dtype (a metadata.json dtype name), shape and elements in C order."""

    dtype: str
    shape: tuple[int, ...]
    values: tuple[Any, ...]  # Python ints, floats or bools


def _bad(path: str, what: str, hint: str) -> InvalidOptionError:
    return InvalidOptionError(f"project option 'input': {path}: {what}", hint, data={"option": "input"})


_SAVEZ_HINT = "write it with numpy.savez(path, **{input_name: array})"


def _parse_npy(path: str, member: str, data: bytes) -> NpyArray:
    where = f"{member} in {path}"
    if not data.startswith(_MAGIC) or len(data) < 10:
        raise _bad(path, f"{member} is not a .npy array (no \\x93NUMPY header)", _SAVEZ_HINT)
    major = data[6]
    if major == 1:
        header_len, start = struct.unpack_from("<H", data, 8)[0], 10
    elif major in (2, 3):
        if len(data) < 12:
            raise _bad(path, f"{member} is truncated", _SAVEZ_HINT)
        header_len, start = struct.unpack_from("<I", data, 8)[0], 12
    else:
        raise _bad(path, f"{member} has .npy format version {major}, which is not known", _SAVEZ_HINT)
    if header_len > 65536 or start + header_len > len(data):
        raise _bad(path, f"{member}'s header is truncated or too long", _SAVEZ_HINT)
    try:
        header = ast.literal_eval(data[start : start + header_len].decode("latin-1"))
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise _bad(path, f"{member}'s header is not a .npy header", _SAVEZ_HINT) from None
    if not isinstance(header, dict) or not {"descr", "fortran_order", "shape"} <= set(header):
        raise _bad(path, f"{member}'s header lacks descr, fortran_order or shape", _SAVEZ_HINT)
    descr, fortran, shape = header["descr"], header["fortran_order"], header["shape"]
    if not isinstance(descr, str) or descr[1:] not in _DESCRS or descr[0] not in "<>|=":
        raise _bad(
            path,
            f"{where} has element type {descr!r}; input data must be bool, int8..64, uint8..64 or "
            "float16/32/64",
            "convert it before saving, e.g. array.astype(numpy.float32)",
        )
    if not isinstance(shape, tuple) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise _bad(path, f"{where} has an invalid shape {shape!r}", _SAVEZ_HINT)
    dtype, fmt = _DESCRS[descr[1:]]
    count = math.prod(shape)
    size = struct.calcsize(fmt)
    body = data[start + header_len :]
    if count * size > MAX_ARRAY_BYTES:
        raise _bad(path, f"{where} holds {count * size:,} bytes, more than {MAX_ARRAY_BYTES:,}", _SAVEZ_HINT)
    if len(body) != count * size:
        raise _bad(
            path,
            f"{where} has {len(body)} data bytes, its shape {list(shape)} needs {count * size}",
            _SAVEZ_HINT,
        )
    order = ">" if descr[0] == ">" else "<"
    values = struct.unpack(f"{order}{count}{fmt}", body)
    if fortran and len(shape) > 1:
        raise _bad(path, f"{where} is stored in Fortran order", "save numpy.ascontiguousarray(array) instead")
    return NpyArray(dtype, tuple(shape), values)


def read_npz(path: str | os.PathLike[str]) -> dict[str, NpyArray]:
    """The arrays of an .npz file by name; InvalidOptionError (option 'input') when it cannot be read."""
    shown = str(path)
    arrays: dict[str, NpyArray] = {}
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            if len(members) > MAX_ARRAYS:
                raise _bad(shown, f"holds {len(members)} arrays, more than {MAX_ARRAYS}", _SAVEZ_HINT)
            for info in members:
                if info.is_dir() or not info.filename.endswith(".npy"):
                    raise _bad(shown, f"member {info.filename!r} is not a .npy array", _SAVEZ_HINT)
                if info.file_size > MAX_ARRAY_BYTES + 65536:
                    raise _bad(shown, f"{info.filename} is {info.file_size:,} bytes, too large", _SAVEZ_HINT)
                with archive.open(info) as member:
                    data = member.read(MAX_ARRAY_BYTES + 65537)  # a lying header cannot make us read more
                arrays[info.filename[: -len(".npy")]] = _parse_npy(shown, info.filename, data)
    except FileNotFoundError:
        raise _bad(shown, "file not found", "pass the path of an .npz written by numpy.savez") from None
    except IsADirectoryError:
        raise _bad(shown, "is a directory", "pass the path of an .npz written by numpy.savez") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError, ValueError) as err:
        if isinstance(err, InvalidOptionError):
            raise
        raise _bad(shown, f"is not an .npz file ({err})", _SAVEZ_HINT) from None
    except OSError as err:
        raise _bad(
            shown, f"cannot be read: {err.strerror or err}", "check the path and its permissions"
        ) from None
    return arrays


def _describe(t: Mapping[str, Any]) -> str:
    return f"{t['name']!r} {t['dtype']}{list(t['shape'])}"


def _squeezed(shape: Sequence[int]) -> tuple[int, ...]:
    return tuple(d for d in shape if d != 1)


def _round_to(dtype: str, value: float) -> float:
    """`value` rounded to the float format of `dtype` (float64 values are already)."""
    if dtype == "float64":
        return value
    try:
        return float(struct.unpack(_FORMATS[dtype], struct.pack(_FORMATS[dtype], value))[0])
    except OverflowError:
        return math.copysign(math.inf, value)


def _quantize(
    values: Sequence[float], precision: str, scale: float, zero_point: int, dtype: str
) -> list[int]:
    """numpy's `clip(round(x / scale) + zero_point, lo, hi).astype(dtype)` with x in `precision`."""
    lo, hi = _INT_RANGES[dtype]
    step = _round_to(precision, scale)  # a Python float scalar takes the array's precision (NEP 50)
    out = []
    for x in values:
        q = _round_to(precision, float(round(_round_to(precision, x / step))))  # round(): half to even
        q = _round_to(precision, q + zero_point)
        out.append(int(min(max(q, lo), hi)))
    return out


def _convert(array: NpyArray, t: Mapping[str, Any], source: str) -> tuple[list[Any], str | None]:
    """The elements as the input's dtype, and a note when they were quantized."""
    dtype = str(t["dtype"])
    if array.dtype == dtype:
        return list(array.values), None
    quant = t.get("quantization")
    if array.dtype in _FLOATS and dtype in _INT_RANGES and quant:
        scale, zero_point = float(quant["scale"]), int(quant["zero_point"])
        if not all(math.isfinite(v) for v in array.values):
            raise _bad(
                source,
                f"input {t['name']!r} has NaN or infinite values, which cannot be quantized",
                "replace them before saving",
            )
        note = (
            f"note: quantizing float input {t['name']!r} to {dtype} "
            f"(scale {scale:g}, zero point {zero_point})"
        )
        return _quantize(array.values, array.dtype, scale, zero_point, dtype), note
    if array.dtype not in _FLOATS and dtype in _INT_RANGES:
        lo, hi = _INT_RANGES[dtype]
        values = [int(v) for v in array.values]
        if all(lo <= v <= hi for v in values):
            return values, None
    if dtype in _FLOATS and array.dtype in (*_FLOATS, *_INT_RANGES):
        return [_round_to(dtype, float(v)) for v in array.values], None
    raise _bad(
        source,
        f"input {t['name']!r} is {array.dtype}, the model needs {dtype}"
        + ("" if dtype not in _INT_RANGES or array.dtype in _FLOATS else " (its values do not all fit)"),
        f"convert it before saving: array.astype(numpy.{dtype})",
    )


def model_input_bytes(
    inputs_meta: Sequence[Mapping[str, Any]], npz_path: str | os.PathLike[str]
) -> tuple[list[bytes], list[str]]:
    """Each model input's bytes (little-endian, struct order) from the .npz, and the notes to print (one per
    quantized input). Raises InvalidOptionError (option 'input') for anything that does not fit."""
    source = str(npz_path)
    given = read_npz(npz_path)
    expected = "; ".join(_describe(t) for t in inputs_meta)
    known = {t["name"] for t in inputs_meta} | {t.get("c_name", t["name"]) for t in inputs_meta}
    extra = sorted(set(given) - known)
    if extra:
        raise _bad(
            source,
            f"has arrays the model has no input for: {', '.join(map(repr, extra))}",
            f"the model's inputs are: {expected}",
        )
    result: list[bytes] = []
    notes: list[str] = []
    for t in inputs_meta:
        name = t["name"] if t["name"] in given else t.get("c_name", t["name"])
        if name not in given:
            raise _bad(
                source, f"has no array for input {_describe(t)}", f"the model's inputs are: {expected}"
            )
        array = given[name]
        shape = tuple(int(d) for d in t["shape"])
        if array.shape != shape and (
            math.prod(array.shape) != math.prod(shape) or _squeezed(array.shape) != _squeezed(shape)
        ):
            raise _bad(
                source,
                f"input {t['name']!r} has shape {list(array.shape)}, the model needs {list(shape)}",
                "reshape the array before saving it",
            )
        values, note = _convert(array, t, source)
        if note:
            notes.append(note)
        fmt = _FORMATS.get(str(t["dtype"]))
        if fmt is None:
            raise _bad(
                source,
                f"input {_describe(t)} has a dtype input files cannot give",
                "give this input in the firmware by hand",
            )
        result.append(struct.pack(f"<{len(values)}{fmt}", *values))
    return result, notes

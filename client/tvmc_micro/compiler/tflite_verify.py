"""A structural verifier for TFLite flatbuffers, run before any reader touches the bytes.

The Python flatbuffers accessors trust the file: a damaged offset makes them read another part of the
file (Python slicing never faults), wrap around through a negative vtable offset, or raise deep inside
TVM. This module applies the rules of the C++ `flatbuffers::Verifier` that TFLite's `VerifyModelBuffer`
runs, to the TFLite schema (tables as in `tensorflow/lite/schema/schema.fbs`, version 3):

- every table: its offset 4-byte aligned and in the file; its vtable (table position minus the signed
  offset stored there) 2-byte aligned, at least 4 bytes, even, inside the file; the table's inline size
  inside the file;
- every present field: scalars aligned to their size and inside the file; offsets (to tables, vectors,
  strings) 4-byte aligned, non-zero, below 2**31, pointing inside the file;
- every vector and string: its length 4-byte aligned and inside the file, length x element size inside
  the file; strings end with a NUL inside the file;
- nested tables and vectors of tables recursively, unions by their type field (an unknown union type is
  skipped, as the generated C++ verifier does), nesting at most 64 deep and at most 1,000,000 tables.

The core tables are described here by hand; the ~150 operator option tables are read from the `tflite`
package's generated accessors (the schema compiler's own output), so every option field is covered.
Index checks (tensor, buffer, opcode indices) and value checks come after, in model_checks.py.
"""

from __future__ import annotations

import functools
import inspect
import re
import struct
from dataclasses import dataclass

MAX_DEPTH = 64  # flatbuffers::Verifier defaults
MAX_TABLES = 1_000_000
MAX_OFFSET = 2**31 - 1  # FLATBUFFERS_MAX_BUFFER_SIZE: offsets are signed 32-bit in the C++ verifier


class FlatbufferError(ValueError):
    """The bytes break a flatbuffer rule; the message names the field path and the byte position."""


@dataclass(frozen=True)
class Field:
    slot: int  # byte offset of the field's entry in the vtable: 4 + 2 * field id
    kind: str  # scalar | string | table | vec_scalar | vec_string | vec_table | union
    size: int = 0  # scalar size, or vector element size
    table: str = ""  # table name (table, vec_table) or union enum name (union)
    type_slot: int = 0  # union: the slot of its `_type` field


def _s(slot: int, size: int) -> Field:
    return Field(slot, "scalar", size)


def _v(slot: int, size: int) -> Field:
    return Field(slot, "vec_scalar", size)


def _str(slot: int) -> Field:
    return Field(slot, "string")


def _t(slot: int, table: str) -> Field:
    return Field(slot, "table", table=table)


def _vt(slot: int, table: str) -> Field:
    return Field(slot, "vec_table", table=table)


def _u(slot: int, type_slot: int, enum: str) -> Field:
    return Field(slot, "union", table=enum, type_slot=type_slot)


# schema.fbs, field by field (name: slot, kind). Scalars sizes: byte/bool/ubyte 1, int/uint/float 4, long 8.
SCHEMA: dict[str, dict[str, Field]] = {
    "Model": {
        "version": _s(4, 4),
        "operator_codes": _vt(6, "OperatorCode"),
        "subgraphs": _vt(8, "SubGraph"),
        "description": _str(10),
        "buffers": _vt(12, "Buffer"),
        "metadata_buffer": _v(14, 4),
        "metadata": _vt(16, "Metadata"),
        "signature_defs": _vt(18, "SignatureDef"),
    },
    "OperatorCode": {
        "deprecated_builtin_code": _s(4, 1),
        "custom_code": _str(6),
        "version": _s(8, 4),
        "builtin_code": _s(10, 4),
    },
    "SubGraph": {
        "tensors": _vt(4, "Tensor"),
        "inputs": _v(6, 4),
        "outputs": _v(8, 4),
        "operators": _vt(10, "Operator"),
        "name": _str(12),
        "debug_metadata_index": _s(14, 4),
    },
    "Tensor": {
        "shape": _v(4, 4),
        "type": _s(6, 1),
        "buffer": _s(8, 4),
        "name": _str(10),
        "quantization": _t(12, "QuantizationParameters"),
        "is_variable": _s(14, 1),
        "sparsity": _t(16, "SparsityParameters"),
        "shape_signature": _v(18, 4),
        "has_rank": _s(20, 1),
        "variant_tensors": _vt(22, "VariantSubType"),
    },
    "VariantSubType": {"shape": _v(4, 4), "type": _s(6, 1), "has_rank": _s(8, 1)},
    "QuantizationParameters": {
        "min": _v(4, 4),
        "max": _v(6, 4),
        "scale": _v(8, 4),
        "zero_point": _v(10, 8),
        "details_type": _s(12, 1),
        "details": _u(14, 12, "QuantizationDetails"),
        "quantized_dimension": _s(16, 4),
    },
    "SparsityParameters": {
        "traversal_order": _v(4, 4),
        "block_map": _v(6, 4),
        "dim_metadata": _vt(8, "DimensionMetadata"),
    },
    "DimensionMetadata": {
        "format": _s(4, 1),
        "dense_size": _s(6, 4),
        "array_segments_type": _s(8, 1),
        "array_segments": _u(10, 8, "SparseIndexVector"),
        "array_indices_type": _s(12, 1),
        "array_indices": _u(14, 12, "SparseIndexVector"),
    },
    "Buffer": {"data": _v(4, 1), "offset": _s(6, 8), "size": _s(8, 8)},
    "Metadata": {"name": _str(4), "buffer": _s(6, 4)},
    "TensorMap": {"name": _str(4), "tensor_index": _s(6, 4)},
    "SignatureDef": {
        "inputs": _vt(4, "TensorMap"),
        "outputs": _vt(6, "TensorMap"),
        "signature_key": _str(8),
        "subgraph_index": _s(12, 4),
    },
    "Operator": {
        "opcode_index": _s(4, 4),
        "inputs": _v(6, 4),
        "outputs": _v(8, 4),
        "builtin_options_type": _s(10, 1),
        "builtin_options": _u(12, 10, "BuiltinOptions"),
        "custom_options": _v(14, 1),
        "custom_options_format": _s(16, 1),
        "mutating_variable_inputs": _v(18, 1),
        "intermediates": _v(20, 4),
        "large_custom_options_offset": _s(22, 8),
        "large_custom_options_size": _s(24, 8),
        "builtin_options_2_type": _s(26, 1),
        "builtin_options_2": _u(28, 26, "BuiltinOptions2"),
        "debug_metadata_index": _s(30, 4),
    },
}

_FLAG_SIZES = {"Bool": 1, "Int8": 1, "Uint8": 1, "Int16": 2, "Uint16": 2, "Int32": 4, "Uint32": 4,
               "Float32": 4, "Int64": 8, "Uint64": 8, "Float64": 8}  # fmt: skip


@functools.cache
def _union_members(enum: str) -> dict[int, str]:
    import tflite

    values = vars(getattr(tflite, enum))
    return {v: k for k, v in values.items() if not k.startswith("_") and isinstance(v, int) and v != 0}


@functools.cache
def _generated_schema(table: str) -> dict[str, Field]:
    """The fields of a table the hand-written SCHEMA lacks (operator options, sparse index vectors),
    read from the accessors the flatbuffers compiler generated into the `tflite` package."""
    import tflite

    cls = getattr(tflite, table, None)
    if cls is None:
        return {}
    fields: dict[str, Field] = {}
    for name, fn in vars(cls).items():
        if name.startswith("_") or not callable(fn) or name.endswith(("AsNumpy", "Length", "IsNone")):
            continue
        try:
            src = inspect.getsource(fn)
        except (OSError, TypeError):
            continue
        slot = re.search(r"self\._tab\.Offset\((\d+)\)", src)
        if slot is None:
            continue
        s = int(slot.group(1))
        if "self._tab.Vector(o)" in src:
            elem = re.search(r"j \* (\d+)", src)
            if "self._tab.String(" in src:
                fields[name] = Field(s, "vec_string")
            elif "self._tab.Indirect(" in src:
                continue  # no option table holds a vector of tables (checked: tflite 2.18 schema)
            else:
                fields[name] = Field(s, "vec_scalar", int(elem.group(1)) if elem else 1)
        elif "self._tab.String(" in src:
            fields[name] = Field(s, "string")
        elif "self._tab.Union(" in src or "self._tab.Indirect(" in src:
            continue  # option tables hold scalars, strings and vectors only
        else:
            flag = re.search(r"number_types\.(\w+?)Flags", src.split("if o != 0", 1)[-1])
            if flag and flag.group(1) in _FLAG_SIZES:
                fields[name] = Field(s, "scalar", _FLAG_SIZES[flag.group(1)])
    return fields


def _schema(table: str) -> dict[str, Field]:
    return SCHEMA.get(table) or _generated_schema(table)


class _Verifier:
    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.size = len(buf)
        self.depth = 0
        self.tables = 0

    def fail(self, path: str, what: str) -> None:
        raise FlatbufferError(f"{path or 'root'}: {what}")

    def need(self, pos: int, n: int, path: str, what: str) -> None:
        if pos < 0 or n < 0 or pos + n > self.size:
            self.fail(path, f"{what} at byte {pos} ({n} bytes) lies outside the file ({self.size} bytes)")

    def align(self, pos: int, a: int, path: str, what: str) -> None:
        if pos % a:
            self.fail(path, f"{what} at byte {pos} is not {a}-byte aligned")

    def u16(self, pos: int) -> int:
        return int(struct.unpack_from("<H", self.buf, pos)[0])

    def u32(self, pos: int) -> int:
        return int(struct.unpack_from("<I", self.buf, pos)[0])

    def offset(self, pos: int, path: str) -> int:
        """Follow the uoffset stored at `pos`; returns the position it points to."""
        self.align(pos, 4, path, "offset")
        self.need(pos, 4, path, "offset")
        o = self.u32(pos)
        if o == 0 or o > MAX_OFFSET:
            self.fail(path, f"offset {o} at byte {pos} is invalid")
        self.need(pos + o, 1, path, "offset target")
        return pos + o

    def vector(self, pos: int, elem: int, path: str) -> tuple[int, int]:
        """(first element position, length) of the vector at `pos`."""
        self.align(pos, 4, path, "vector length")
        self.need(pos, 4, path, "vector length")
        n = self.u32(pos)
        if n * elem > self.size - pos - 4:
            self.fail(path, f"vector of {n} x {elem}-byte elements at byte {pos} runs past the end of the "
                      f"file ({self.size} bytes)")  # fmt: skip
        return pos + 4, n

    def string(self, pos: int, path: str) -> None:
        start, n = self.vector(pos, 1, path)
        self.need(start + n, 1, path, "string terminator")
        if self.buf[start + n] != 0:
            self.fail(path, f"string of {n} bytes at byte {pos} has no NUL terminator")

    def table(self, pos: int, table: str, path: str) -> None:
        self.depth += 1
        self.tables += 1
        if self.depth > MAX_DEPTH or self.tables > MAX_TABLES:
            self.fail(path, f"tables nest deeper than {MAX_DEPTH} or number more than {MAX_TABLES}")
        self.align(pos, 4, path, f"{table} table")
        self.need(pos, 4, path, f"{table} table")
        vt = pos - struct.unpack_from("<i", self.buf, pos)[0]
        self.align(vt, 2, path, f"{table} vtable")
        self.need(vt, 4, path, f"{table} vtable")
        vsize, tsize = self.u16(vt), self.u16(vt + 2)
        if vsize < 4 or vsize % 2:
            self.fail(path, f"{table} vtable at byte {vt} has invalid size {vsize}")
        self.need(vt, vsize, path, f"{table} vtable")
        self.need(pos, tsize, path, f"{table} table body")
        for name, f in _schema(table).items():
            voff = self.u16(vt + f.slot) if f.slot + 2 <= vsize else 0
            if voff:
                self.field(pos, pos + voff, vt, vsize, f, f"{path}.{name}" if path else name)
        self.depth -= 1

    def field(self, table_pos: int, pos: int, vt: int, vsize: int, f: Field, path: str) -> None:
        if f.kind == "scalar":
            self.align(pos, f.size, path, "scalar field")
            self.need(pos, f.size, path, "scalar field")
            return
        if f.kind == "union":
            tpos = self.u16(vt + f.type_slot) if f.type_slot + 2 <= vsize else 0
            kind = self.buf[table_pos + tpos] if tpos else 0
            member = _union_members(f.table).get(kind)
            if member is not None:  # an unknown member is skipped, as the generated C++ verifier does
                self.table(self.offset(pos, path), member, path)
            return
        target = self.offset(pos, path)
        if f.kind == "string":
            self.string(target, path)
        elif f.kind == "table":
            self.table(target, f.table, path)
        elif f.kind == "vec_scalar":
            self.vector(target, f.size, path)
        else:
            start, n = self.vector(target, 4, path)
            for i in range(n):
                item = self.offset(start + 4 * i, f"{path}[{i}]")
                if f.kind == "vec_table":
                    self.table(item, f.table, f"{path}[{i}]")
                else:
                    self.string(item, f"{path}[{i}]")


def verify_tflite(buf: bytes) -> None:
    """Raise FlatbufferError naming the first rule the bytes break; return when they are a sound
    TFLite flatbuffer (structure only: indices and values are model_checks.py's job)."""
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise FlatbufferError('not a TFLite flatbuffer (no "TFL3" identifier at offset 4)')
    if len(buf) > MAX_OFFSET:
        raise FlatbufferError(f"{len(buf)} bytes is more than a flatbuffer can address (2 GiB)")
    v = _Verifier(buf)
    v.table(v.offset(0, "root"), "Model", "")

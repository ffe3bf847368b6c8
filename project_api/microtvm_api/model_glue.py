"""Generate the C glue that hands one compiled model to the device runtime (stdlib only).

`write_model_glue(metadata_json_path, out_c_path)` reads an MLF's metadata.json (contract C1) and writes a
C file that includes `tvmgen_<name>.h`, owns the model's 16-byte-aligned static input/output buffers,
defines the `tvmrt_model_t` descriptor (runtime/include/tvmrt/model.h) returned by
`tvmrt_firmware_model()`, and implements `tvmgen_op_hook` by forwarding to the runtime's per-operator
timer. Template servers call it from `generate_project`.

`runtime_sources(runtime_dir, platform)` lists the runtime's C files a firmware compiles: the portable
modules (never their `*_test.c` unit tests) plus, optionally, one platform's default port.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from microtvm_api.errors import ArchiveError

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# dtype name -> DLPack (code, bits)
_DTYPES = {
    "int8": (0, 8), "int16": (0, 16), "int32": (0, 32), "int64": (0, 64),
    "uint8": (1, 8), "uint16": (1, 16), "uint32": (1, 32), "uint64": (1, 64),
    "float16": (2, 16), "float32": (2, 32), "float64": (2, 64), "bfloat16": (4, 16), "bool": (6, 8),
}


class InvalidMetadataError(ArchiveError):
    """metadata.json lacks what the firmware glue needs, or holds values C cannot take."""

    default_message = "invalid Model Library Format metadata"


def _fail(path: Path, what: str) -> InvalidMetadataError:
    return InvalidMetadataError(
        f"{path}: {what}",
        "regenerate the Model Library Format archive with `tvmc compile` (metadata.json contract C1)",
    )


def _c_string(text: str) -> str:
    """`text` as a C string literal of its UTF-8 bytes. `?` is escaped too: under -std=c99 `??/` is a
    trigraph (a backslash) and `??!` a `|`, which would change the names the device reports; `*` is, so
    the same text is safe inside a comment."""
    out = []
    for ch in text:
        if ch in '"\\?':
            out.append("\\" + ch)
        elif 32 <= ord(ch) < 127 and ch != "*":
            out.append(ch)
        else:
            out.extend(f"\\{b:03o}" for b in ch.encode("utf-8", errors="surrogatepass"))
    return '"' + "".join(out) + '"'


def _load_model(path: Path, model_name: str | None) -> dict[str, Any]:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _fail(path, "file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise _fail(path, f"not valid JSON ({err})") from None
    models = meta.get("models") if isinstance(meta, dict) else None
    if not isinstance(models, list) or not models:
        raise _fail(path, "no 'models' list")
    if model_name is None:
        if len(models) != 1:
            names = [m.get("name") for m in models if isinstance(m, dict)]
            raise _fail(path, f"holds {len(models)} models {names}; say which one (model_name=...)")
        model = models[0]
    else:
        matches = [m for m in models if isinstance(m, dict) and m.get("name") == model_name]
        if not matches:
            raise _fail(path, f"has no model named {model_name!r}")
        model = matches[0]
    if not isinstance(model, dict):
        raise _fail(path, "a model entry is not an object")
    return model


def _tensors(path: Path, model: dict[str, Any], key: str) -> list[dict[str, Any]]:
    tensors = model.get(key)
    if not isinstance(tensors, list):
        raise _fail(path, f"model has no '{key}' list")
    for i, t in enumerate(tensors):
        where = f"{key}[{i}]"
        if not isinstance(t, dict):
            raise _fail(path, f"{where} is not an object")
        c_name = t.get("c_name", t.get("name"))
        if not isinstance(c_name, str) or not _IDENT.match(c_name):
            raise _fail(path, f"{where} c_name {c_name!r} is not a C identifier")
        if t.get("dtype") not in _DTYPES:
            raise _fail(path, f"{where} dtype {t.get('dtype')!r} is not one of {sorted(_DTYPES)}")
        shape = t.get("shape")
        dims_ok = isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)
        if not isinstance(shape, list) or not dims_ok or len(shape) > 255:
            raise _fail(path, f"{where} shape {shape!r} is not a list of non-negative integers")
        size = t.get("size_bytes")
        if not isinstance(size, int) or size < 0:
            raise _fail(path, f"{where} size_bytes {size!r} is not a non-negative integer")
    return tensors


def _op_names(path: Path, model: dict[str, Any]) -> list[str]:
    ops = model.get("operators", [])
    if not isinstance(ops, list) or not all(isinstance(o, dict) and isinstance(o.get("name"), str)
                                            for o in ops):
        raise _fail(path, "'operators' must be a list of objects with a 'name'")
    ordered = sorted(ops, key=lambda o: o.get("index", 0))
    return [o["name"] for o in ordered]


def render_model_glue(metadata_json_path: str | os.PathLike[str], model_name: str | None = None) -> str:
    """The glue C source for one model of metadata.json (see the module docstring)."""
    path = Path(metadata_json_path)
    model = _load_model(path, model_name)
    name = model.get("name")
    if not isinstance(name, str) or not _IDENT.match(name):
        raise _fail(path, f"model name {name!r} is not a C identifier")
    signature = model.get("signature", "")
    if not isinstance(signature, str):
        raise _fail(path, "model signature is not a string")
    inputs = _tensors(path, model, "inputs")
    outputs = _tensors(path, model, "outputs")
    if len(inputs) > 255 or len(outputs) > 255:
        raise _fail(path, "the device protocol supports at most 255 inputs and 255 outputs")
    ops = _op_names(path, model)
    upper = name.upper()

    lines = [
        f"/* Generated by microtvm_api.model_glue from {_c_string(path.name)} (model {name}): do not edit */",
        "#include <stdint.h>",
        "",
        '#include "tvmrt/model.h"',
        '#include "tvmrt/profiler.h"',
        f'#include "tvmgen_{name}.h"',
        "",
    ]
    tables: dict[str, str] = {}
    for kind, tensors in (("input", inputs), ("output", outputs)):
        entries = []
        for i, t in enumerate(tensors):
            c_name = str(t.get("c_name", t.get("name")))
            size = t["size_bytes"]
            code, bits = _DTYPES[t["dtype"]]
            buf = f"tvmrt_{kind}_{i}"
            # One byte at least: C has no zero-length arrays.
            lines.append(f"static uint8_t {buf}[{max(size, 1)}] TVMRT_ALIGNED(16); /* {c_name} */")
            shape = t["shape"]
            if shape:
                dims = ", ".join(f"{d}u" for d in shape)
                lines.append(f"static const uint32_t {buf}_shape[{len(shape)}] = {{{dims}}};")
            macro = f"TVMGEN_{upper}_{c_name.upper()}_SIZE"
            # The header's size macro and metadata.json must agree, or the buffers would be wrong.
            lines += [
                f"#ifdef {macro}",
                f"typedef char {buf}_size_matches_header[({macro} == {size}) ? 1 : -1];",
                "#endif",
            ]
            shape_ref = f"{buf}_shape" if shape else "0"
            label = _c_string(str(t.get("name", c_name)))
            entries.append(f"    {{{label}, {code}u, {bits}u, {len(shape)}u, {shape_ref}, {size}u, {buf}}},")
        if entries:
            lines.append(f"static const tvmrt_tensor_t tvmrt_{kind}s[{len(entries)}] = {{")
            lines += entries
            lines.append("};")
            tables[kind] = f"tvmrt_{kind}s"
        else:
            tables[kind] = "0"
        lines.append("")

    if ops:
        lines.append(f"static const char* const tvmrt_op_names[{len(ops)}] = {{")
        lines += [f"    {_c_string(op)}," for op in ops]
        lines += ["};", f"static uint64_t tvmrt_op_ticks[{len(ops)}];", ""]
    names_ref, ticks_ref = ("tvmrt_op_names", "tvmrt_op_ticks") if ops else ("0", "0")

    lines += [
        "static int32_t tvmrt_glue_run(void) {",
        f"  struct tvmgen_{name}_inputs inputs;",
        f"  struct tvmgen_{name}_outputs outputs;",
    ]
    for kind, tensors in (("input", inputs), ("output", outputs)):
        for i, t in enumerate(tensors):
            lines.append(f"  {kind}s.{t.get('c_name', t.get('name'))} = tvmrt_{kind}_{i};")
    if not inputs:
        lines.append("  (void)inputs;")
    if not outputs:
        lines.append("  (void)outputs;")
    lines += [
        f"  return tvmgen_{name}_run(&inputs, &outputs);",
        "}",
        "",
        "/* Called by the executor around each operator when built with -DTVMGEN_PROFILE (contract C1). */",
        "void tvmgen_op_hook(uint32_t index);",
        "void tvmgen_op_hook(uint32_t index) { tvmrt_profiler_hook(index); }",
        "",
        "static const tvmrt_model_t tvmrt_glue_model = {",
        f"    {_c_string(name)},",
        f"    {_c_string(signature)},",
        f"    {len(inputs)}u, {tables['input']},",
        f"    {len(outputs)}u, {tables['output']},",
        f"    {len(ops)}u, {names_ref}, {ticks_ref},",
        "    tvmrt_glue_run,",
        "};",
        "",
        "const tvmrt_model_t* tvmrt_firmware_model(void) { return &tvmrt_glue_model; }",
        "",
    ]
    return "\n".join(lines)


def write_model_glue(
    metadata_json_path: str | os.PathLike[str],
    out_c_path: str | os.PathLike[str],
    model_name: str | None = None,
) -> Path:
    """Write the glue C file for the (only, or named) model of metadata.json; returns its path."""
    text = render_model_glue(metadata_json_path, model_name)
    out = Path(out_c_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out


def runtime_sources(runtime_dir: str | os.PathLike[str], platform: str | None = "host") -> list[Path]:
    """C files of the runtime tree a firmware compiles (include dir: runtime_dir/include).

    `platform` names a default port under runtime/platform/ (e.g. "host"); None when the template
    provides its own tvmrt_platform_* functions.
    """
    root = Path(runtime_dir)
    sources = sorted(p for p in (root / "src").glob("*.c") if not p.name.endswith("_test.c"))
    if not sources:
        raise InvalidMetadataError(
            f"{root}: no runtime sources under src/",
            "the Model Library Format archive must carry the runtime/ tree (tvmc compile writes it)",
        )
    if platform is not None:
        port = root / "platform" / platform
        port_sources = sorted(p for p in port.glob("*.c") if not p.name.endswith("_test.c"))
        if not port_sources:
            raise InvalidMetadataError(f"{port}: no platform sources for {platform!r}")
        sources += port_sources
    return sources

"""What the conformance checks run on, away from the user's files: a temporary copy of the server's
directory, and small Model Library Format archives made for the checks (a well-formed one, and one with
members escaping the project directory)."""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
from pathlib import Path

from microtvm_api.errors import ServerNotFoundError

# Members of the escaping MLF are named with this prefix, so what escaped can be found afterwards.
ESCAPED_MEMBER_PREFIX = "conformance_escaped_"


def copy_server_dir(source: Path, target: Path, *, max_files: int, max_bytes: int) -> Path:
    """Copy `source` (links kept as links, no __pycache__) to `target`; refuse a directory of more than
    `max_files` files or `max_bytes` bytes (counted before copying, so nothing large is copied)."""
    files = 0
    size = 0
    for root, dirs, names in os.walk(source):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        files += len(names)
        for name in names:
            try:
                size += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
        if files > max_files or size > max_bytes:
            raise ServerNotFoundError(
                f"{source} is too large to check ({files:,}+ files, {size:,}+ bytes): the checks run on a "
                "temporary copy of the server's directory",
                "check the template or project directory itself, not a directory holding other things",
            )
    shutil.copytree(source, target, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    """Add a regular file called `name` (taken as is, '..' included) holding `data`."""
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def minimal_mlf(path: Path) -> Path:
    """A tiny but well-formed MLF (one copy-through model), enough for generate_project."""
    name = "conformance"
    metadata = {
        "mlf_version": 1,
        "tool": {"name": "microtvm_api.conformance", "version": "0", "tvm_version": "0.27.0"},
        "models": [
            {
                "name": name,
                "export_datetime": "2026-01-01T00:00:00Z",
                "source": {"file": "none", "format": "none", "sha256": "0" * 64},
                "target": {"kind": "c", "keys": ["cpu"]},
                "target_str": "c",
                "executor": "aot",
                "signature": "0123456789abcdef",
                "memory": {
                    "arena_bytes": 16,
                    "constants_bytes": 0,
                    "activation_lower_bound_bytes": 16,
                    "io_bytes": 8,
                },
                "inputs": [
                    {
                        "name": "x",
                        "c_name": "x",
                        "shape": [4],
                        "dtype": "int8",
                        "size_bytes": 4,
                        "quantization": None,
                    }
                ],
                "outputs": [
                    {
                        "name": "y",
                        "c_name": "y",
                        "shape": [4],
                        "dtype": "int8",
                        "size_bytes": 4,
                        "quantization": None,
                    }
                ],
                "operators": [{"index": 0, "name": "copy", "function": f"tvmgen_{name}_copy"}],
            }
        ],
    }
    header = (
        f"#ifndef TVMGEN_{name.upper()}_H_\n#define TVMGEN_{name.upper()}_H_\n#include <stdint.h>\n"
        f"#define TVMGEN_{name.upper()}_WORKSPACE_SIZE 16\n#define TVMGEN_{name.upper()}_X_SIZE 4\n"
        f"#define TVMGEN_{name.upper()}_Y_SIZE 4\n"
        f"struct tvmgen_{name}_inputs {{ void* x; }};\nstruct tvmgen_{name}_outputs {{ void* y; }};\n"
        f"int32_t tvmgen_{name}_run(struct tvmgen_{name}_inputs* inputs,\n"
        f"                          struct tvmgen_{name}_outputs* outputs);\n#endif\n"
    )
    source = (
        f'#include "tvmgen_{name}.h"\n'
        f"int32_t tvmgen_{name}_run(struct tvmgen_{name}_inputs* inputs,\n"
        f"                          struct tvmgen_{name}_outputs* outputs) {{\n"
        "  for (int i = 0; i < 4; ++i) ((int8_t*)outputs->y)[i] = ((int8_t*)inputs->x)[i];\n  return 0;\n}\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        add_member(tar, "metadata.json", json.dumps(metadata, indent=2).encode())
        add_member(tar, f"codegen/host/include/tvmgen_{name}.h", header.encode())
        add_member(tar, f"codegen/host/src/{name}_lib0.c", source.encode())
        add_member(tar, f"src/{name}.relax", b"# no IR: synthetic conformance model\n")
    return path


def escaping_mlf(path: Path) -> Path:
    """`minimal_mlf` plus members whose names climb out of the project ('../', '../../', '../../../'),
    each named `ESCAPED_MEMBER_PREFIX<depth>.txt`."""
    minimal_mlf(path)
    with tarfile.open(path, "a") as tar:
        for depth in (1, 2, 3):
            add_member(tar, "../" * depth + f"{ESCAPED_MEMBER_PREFIX}{depth}.txt", b"escaped")
    return path

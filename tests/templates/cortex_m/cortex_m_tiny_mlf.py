"""A tiny hand-written Model Library Format tar (contract C1) for testing the template without the
compiler: one int8 operator, y = 2*x + 1 (wrapping), plus the repo's runtime/ tree. The C is what the
compiler's executor looks like to the template: a header with the I/O structs and a run function that
calls TVMGEN_OP_HOOK around its one operator and uses a static arena of `arena_bytes`."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]

HEADER = """#ifndef TVMGEN_TINY_H_
#define TVMGEN_TINY_H_
#include <stdint.h>
#define TVMGEN_TINY_WORKSPACE_SIZE {arena}
#define TVMGEN_TINY_X_SIZE 16
#define TVMGEN_TINY_Y_SIZE 16
struct tvmgen_tiny_inputs {{ void* x; }};
struct tvmgen_tiny_outputs {{ void* y; }};
int32_t tvmgen_tiny_run(struct tvmgen_tiny_inputs* inputs, struct tvmgen_tiny_outputs* outputs);
#endif
"""

SOURCE = """#include <stdint.h>
#include "tvmgen_tiny.h"
#if defined(TVMGEN_PROFILE)
extern void tvmgen_op_hook(uint32_t index);
#define TVMGEN_OP_HOOK(index) tvmgen_op_hook(index)
#else
#define TVMGEN_OP_HOOK(index) ((void)0)
#endif
static volatile uint8_t tvmgen_tiny_arena[TVMGEN_TINY_WORKSPACE_SIZE] __attribute__((aligned(16)));
static int32_t tvmgen_tiny_double_plus_one(const int8_t* x, int8_t* y) {
  for (int i = 0; i < 16; ++i) {
    tvmgen_tiny_arena[i] = (uint8_t)(x[i] * 2);
    y[i] = (int8_t)(tvmgen_tiny_arena[i] + 1);
  }
  return 0;
}
int32_t tvmgen_tiny_run(struct tvmgen_tiny_inputs* inputs, struct tvmgen_tiny_outputs* outputs) {
  TVMGEN_OP_HOOK(0);
  int32_t status = tvmgen_tiny_double_plus_one((const int8_t*)inputs->x, (int8_t*)outputs->y);
  TVMGEN_OP_HOOK(1);
  return status;
}
"""


def expected_output(x: bytes) -> bytes:
    return bytes(((b * 2 + 1) & 0xFF) for b in x)


def metadata(arena_bytes: int, signature: str) -> dict[str, object]:
    tensor = {"shape": [16], "dtype": "int8", "size_bytes": 16, "quantization": None}
    return {
        "mlf_version": 1,
        "tool": {"name": "tvmc-micro", "version": "0.1.0", "tvm_version": "0.27.0.post1"},
        "models": [
            {
                "name": "tiny",
                "export_datetime": "2026-11-25T00:00:00Z",
                "source": {"file": "tiny.tflite", "format": "tflite", "sha256": "0" * 64},
                "target": {"kind": "c", "mcpu": "cortex-m4", "keys": ["arm_cpu", "cpu"]},
                "target_str": "c -mcpu=cortex-m4",
                "executor": "aot",
                "signature": signature,
                "memory": {
                    "arena_bytes": arena_bytes,
                    "constants_bytes": 0,
                    "activation_lower_bound_bytes": 16,
                    "io_bytes": 32,
                },
                "inputs": [{"name": "x", "c_name": "x", **tensor}],
                "outputs": [{"name": "y", "c_name": "y", **tensor}],
                "operators": [
                    {"index": 0, "name": "double_plus_one", "function": "tvmgen_tiny_double_plus_one"}
                ],
            }
        ],
    }


def write_tiny_mlf(
    path: Path,
    *,
    arena_bytes: int = 64,
    declared_arena_bytes: int | None = None,
    signature: str = "00112233aabbccdd",
    source: str = SOURCE,
) -> Path:
    """The tar at `path`. declared_arena_bytes (metadata) may differ from the real arena to test the
    linker's overflow report; `source` replaces the model's C (a model with a bug, for fault tests)."""
    files: dict[str, bytes] = {
        "metadata.json": json.dumps(
            metadata(arena_bytes if declared_arena_bytes is None else declared_arena_bytes, signature),
            indent=2,
        ).encode(),
        "codegen/host/include/tvmgen_tiny.h": HEADER.format(arena=arena_bytes).encode(),
        "codegen/host/src/tiny_lib0.c": source.encode(),
        "src/tiny.relax": b"# hand-written test model\n",
    }
    for sub in ("include", "src"):
        for f in sorted((REPO_ROOT / "runtime" / sub).rglob("*")):
            if f.is_file():
                files[f"runtime/{f.relative_to(REPO_ROOT / 'runtime')}"] = f.read_bytes()
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path

"""The protocol's reference device: a hand-written tiny "model" and a host build of it.

The tiny model has one int8 input `x` of shape [1, n] and one int8 output `y = 2 * x + 1` (wrapping, as
int8 arithmetic on the device does), computed by two operators (`double`, `add_one`) with the executor
hooks of contract C1. Its run function fails with code -3 when x[0] and x[1] are both -128, so the error
path of RUN can be exercised on purpose. It is laid out as a Model Library Format directory (C1:
metadata.json, codegen/host/include/tvmgen_tiny.h, codegen/host/src/tiny.c), so the real glue generator
and the crt_host firmware serve it exactly like a compiled model. docs/wire-protocol.md's session vectors
are recorded against it with n = 4; tests and benchmarks use it as a device that needs no compiler.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from microtvm_api.model_glue import runtime_sources, write_model_glue

REPO_ROOT = Path(__file__).resolve().parents[3]
RUNTIME_DIR = REPO_ROOT / "runtime"
CRT_HOST_SRC = REPO_ROOT / "template_projects" / "crt_host" / "src"
SIGNATURE = "0123456789abcdef"
FAIL_CODE = -3

_HEADER = """\
#ifndef TVMGEN_TINY_H_
#define TVMGEN_TINY_H_
#include <stdint.h>
#define TVMGEN_TINY_WORKSPACE_SIZE {n}
#define TVMGEN_TINY_X_SIZE {n}
#define TVMGEN_TINY_Y_SIZE {n}
struct tvmgen_tiny_inputs {{ void* x; }};
struct tvmgen_tiny_outputs {{ void* y; }};
int32_t tvmgen_tiny_run(struct tvmgen_tiny_inputs* inputs, struct tvmgen_tiny_outputs* outputs);
#endif
"""

_SOURCE = """\
#include <stdint.h>
#include "tvmgen_tiny.h"
#if defined(TVMGEN_PROFILE)
extern void tvmgen_op_hook(uint32_t index);
#define TVMGEN_OP_HOOK(index) tvmgen_op_hook(index)
#else
#define TVMGEN_OP_HOOK(index) ((void)0)
#endif

static uint8_t tvmgen_tiny_arena[TVMGEN_TINY_WORKSPACE_SIZE] __attribute__((aligned(16)));

static int32_t tvmgen_tiny_double(const uint8_t* x, uint8_t* out) {{
  uint32_t i;
  for (i = 0; i < {n}u; ++i) out[i] = (uint8_t)(x[i] * 2u);
  return 0;
}}

static int32_t tvmgen_tiny_add_one(const uint8_t* x, uint8_t* out) {{
  uint32_t i;
  for (i = 0; i < {n}u; ++i) out[i] = (uint8_t)(x[i] + 1u);
  return 0;
}}

int32_t tvmgen_tiny_run(struct tvmgen_tiny_inputs* inputs, struct tvmgen_tiny_outputs* outputs) {{
  const uint8_t* x = (const uint8_t*)inputs->x;
{spin_loop}  if ({n}u >= 2u && x[0] == 0x80u && x[1] == 0x80u) return {fail};
  TVMGEN_OP_HOOK(0);
  if (tvmgen_tiny_double(x, tvmgen_tiny_arena) != 0) return -1;
  TVMGEN_OP_HOOK(1);
  if (tvmgen_tiny_add_one(tvmgen_tiny_arena, (uint8_t*)outputs->y) != 0) return -1;
  TVMGEN_OP_HOOK(2);
  return 0;
}}
"""

_SPIN = """\
  volatile uint32_t spin;
  for (spin = 0; spin < {spin}u; ++spin) {{
  }}
"""


def write_tiny_mlf(
    out_dir: str | os.PathLike[str], n: int = 4, signature: str = SIGNATURE, spin: int = 0
) -> Path:
    """Write the tiny model as an (unpacked) Model Library Format directory; returns it.

    `spin` > 0 makes every run busy-wait that many loop iterations first (a slow or hanging model).
    """
    root = Path(out_dir)
    (root / "codegen" / "host" / "include").mkdir(parents=True, exist_ok=True)
    (root / "codegen" / "host" / "src").mkdir(parents=True, exist_ok=True)
    (root / "codegen" / "host" / "include" / "tvmgen_tiny.h").write_text(_HEADER.format(n=n))
    spin_loop = _SPIN.format(spin=spin) if spin else ""
    source = _SOURCE.format(n=n, fail=FAIL_CODE, spin_loop=spin_loop)
    (root / "codegen" / "host" / "src" / "tiny.c").write_text(source)
    tensor = {"shape": [1, n], "dtype": "int8", "size_bytes": n, "quantization": None}
    metadata = {
        "mlf_version": 1,
        "tool": {"name": "tvmc-micro", "version": "0.1.0", "tvm_version": "none (hand-written)"},
        "models": [{
            "name": "tiny",
            "export_datetime": "2026-01-01T00:00:00Z",
            "source": {"file": "tiny (hand-written reference device)", "format": "c", "sha256": ""},
            "target": {"kind": "c"},
            "target_str": "c",
            "executor": "aot",
            "signature": signature,
            "memory": {"arena_bytes": n, "constants_bytes": 0, "activation_lower_bound_bytes": n,
                       "io_bytes": 2 * n},
            "inputs": [{"name": "x", "c_name": "x", **tensor}],
            "outputs": [{"name": "y", "c_name": "y", **tensor}],
            "operators": [
                {"index": 0, "name": "double", "function": "tvmgen_tiny_double"},
                {"index": 1, "name": "add_one", "function": "tvmgen_tiny_add_one"},
            ],
        }],
    }
    (root / "metadata.json").write_text(json.dumps(metadata, indent=2))
    return root


def expected_output(x: bytes) -> bytes:
    """What the tiny model computes: y = 2x + 1 modulo 256 on each byte."""
    return bytes((2 * b + 1) & 0xFF for b in x)


def host_firmware_argv(
    mlf_dir: Path, glue_c: Path, out_exe: Path, *, cc: str = "gcc", profile: bool = True,
    extra_flags: tuple[str, ...] = (), runtime_dir: Path = RUNTIME_DIR, src_dir: Path = CRT_HOST_SRC,
) -> list[str]:
    """The one compiler command that builds a crt_host firmware from an unpacked MLF and its glue."""
    argv = [cc, "-std=c99", "-O2", "-Wall", "-Wextra", f"-I{runtime_dir / 'include'}",
            f"-I{mlf_dir / 'codegen' / 'host' / 'include'}"]
    if profile:
        argv.append("-DTVMGEN_PROFILE")
    argv += list(extra_flags)
    argv += [str(p) for p in sorted(src_dir.glob("*.c"))]
    argv += [str(p) for p in runtime_sources(runtime_dir, "host")]
    argv.append(str(glue_c))
    argv += [str(p) for p in sorted((mlf_dir / "codegen" / "host" / "src").glob("*.c"))]
    argv += ["-lm", "-o", str(out_exe)]
    return argv


def build_host_firmware(
    mlf_dir: str | os.PathLike[str], out_exe: str | os.PathLike[str], *, cc: str = "gcc",
    profile: bool = True, extra_flags: tuple[str, ...] = (),
) -> Path:
    """Generate the glue for the MLF's model and compile the crt_host firmware; returns the executable."""
    mlf = Path(mlf_dir).resolve()
    exe = Path(out_exe).resolve()  # absolute, so it runs as a path and not through a PATH lookup
    glue = exe.parent / f"{exe.name}_glue.c"
    write_model_glue(mlf / "metadata.json", glue)
    argv = host_firmware_argv(mlf, glue, exe, cc=cc, profile=profile, extra_flags=extra_flags)
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"building {exe} failed:\n{' '.join(argv)}\n{result.stderr}")
    return exe

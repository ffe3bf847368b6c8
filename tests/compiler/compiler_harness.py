"""A generic C test harness for any MLF: generated from metadata.json alone, built against the header.

The harness reads samples (all inputs' raw bytes, concatenated, repeated) from a file, runs the model on
each and writes all outputs' raw bytes. It knows nothing about any model beyond what the MLF declares, so
it proves the MLF is self-describing.

Before every run it fills the executor's arena and every output buffer with a poison byte (cycling through
0x7F, 0xFF, 0xA5: float32 3.4e38 / NaN / -2.9e-16, int8 127 / -1 / -91), so a kernel that leaves part of
its output unwritten, or reads an intermediate before writing it, fails the comparison at once instead of
passing on the zeros of a fresh static buffer. The model state is poisoned once, then put back with
tvmgen_<name>_reset_state(): it must carry over between runs, so it cannot be poisoned before each one.
The arena is reached through the executor's TVMGEN_MEMORY_ACCESS hook (hence the -D in CFLAGS).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Werror", "-DTVMGEN_MEMORY_ACCESS"]
POISON_BYTES = (0x7F, 0xFF, 0xA5)


@dataclass
class BuiltModel:
    dir: Path
    metadata: dict[str, Any]
    exe: Path

    @property
    def model(self) -> dict[str, Any]:
        return self.metadata["models"][0]  # type: ignore[no-any-return]

    def run(self, samples: list[list[np.ndarray]], workdir: Path) -> list[list[np.ndarray]]:
        """Run the model on each sample (a list of input arrays); returns each sample's outputs."""
        ins, outs = self.model["inputs"], self.model["outputs"]
        blob = bytearray()
        for sample in samples:
            for spec, arr in zip(ins, sample, strict=True):
                a = np.ascontiguousarray(arr, dtype=spec["dtype"]).reshape(spec["shape"])
                blob += a.tobytes()
        in_file, out_file = workdir / "in.bin", workdir / "out.bin"
        in_file.write_bytes(bytes(blob))
        proc = subprocess.run(
            [str(self.exe), str(in_file), str(out_file)], capture_output=True, text=True, timeout=300
        )
        # A sanitizer report (-fno-sanitize-recover) ends the run with an error: show it.
        assert proc.returncode == 0 and "runtime error" not in proc.stderr, (
            f"{self.exe.name} failed (exit {proc.returncode}):\n{proc.stderr[-6000:]}"
        )
        raw = out_file.read_bytes()
        per_sample = sum(o["size_bytes"] for o in outs)
        assert len(raw) == per_sample * len(samples), "harness wrote the wrong number of bytes"
        result = []
        for s in range(len(samples)):
            pos, row = s * per_sample, []
            for o in outs:
                row.append(
                    np.frombuffer(raw[pos : pos + o["size_bytes"]], dtype=o["dtype"]).reshape(o["shape"])
                )
                pos += o["size_bytes"]
            result.append(row)
        return result


def extract(tar_path: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tar_path) as tar:
        for m in tar.getmembers():
            assert not m.name.startswith("/") and ".." not in m.name.split("/"), m.name
            assert m.isfile() or m.isdir(), f"{m.name} is a link or special file"
        tar.extractall(dest, filter="data")
    return dest


def generate_main(metadata: dict[str, Any]) -> str:
    model = metadata["models"][0]
    name = model["name"]
    lines = [
        "#include <stdint.h>",
        "#include <stdio.h>",
        "#include <string.h>",
        f'#include "tvmgen_{name}.h"',
        "",
    ]
    for kind in ("inputs", "outputs"):
        for spec in model[kind]:
            macro = f"TVMGEN_{name.upper()}_{spec['c_name'].upper()}_SIZE"
            lines.append(f"#if {macro} != {spec['size_bytes']}")
            lines.append(f'#error "header and metadata disagree on {spec["c_name"]}"')
            lines.append("#endif")
            lines.append(f"static uint8_t {kind}_{spec['c_name']}[{macro}] __attribute__((aligned(16)));")
    lines += [
        "",
        "int main(int argc, char** argv) {",
        '  if (argc != 3) { fprintf(stderr, "usage: harness IN OUT\\n"); return 2; }',
        '  FILE* in = fopen(argv[1], "rb");',
        '  FILE* out = fopen(argv[2], "wb");',
        '  if (!in || !out) { perror("fopen"); return 2; }',
        f"  struct tvmgen_{name}_inputs inputs;",
        f"  struct tvmgen_{name}_outputs outputs;",
    ]
    lines += [f"  inputs.{s['c_name']} = inputs_{s['c_name']};" for s in model["inputs"]]
    lines += [f"  outputs.{s['c_name']} = outputs_{s['c_name']};" for s in model["outputs"]]
    poison = ", ".join(f"0x{b:02X}" for b in POISON_BYTES)
    lines += [
        f"  static const uint8_t poison[{len(POISON_BYTES)}] = {{{poison}}};",
        "  uint32_t poison_round = 0;",
        "  uint8_t* arena;",
        "  uint8_t* state;",
        "  uint32_t arena_bytes, state_bytes;",
        f"  tvmgen_{name}_memory(&arena, &arena_bytes, &state, &state_bytes);",
    ]
    if model.get("state"):
        lines += [
            f"  memset(state, 0x{POISON_BYTES[-1]:02X}, state_bytes);",
            f"  tvmgen_{name}_reset_state();",
        ]
    lines += ["  for (;;) {"]
    for i, s in enumerate(model["inputs"]):
        size = s["size_bytes"]
        check = f"fread(inputs_{s['c_name']}, 1, {size}, in) != {size}"
        lines.append(f"    if ({check}) {{ {'break' if i == 0 else 'return 3'}; }}")
    lines.append(f"    const uint8_t byte = poison[poison_round++ % {len(POISON_BYTES)}u];")
    lines.append("    memset(arena, byte, arena_bytes);")
    lines += [f"    memset(outputs_{s['c_name']}, byte, {s['size_bytes']});" for s in model["outputs"]]
    lines.append(f"    if (tvmgen_{name}_run(&inputs, &outputs) != 0) return 4;")
    for s in model["outputs"]:
        lines.append(f"    fwrite(outputs_{s['c_name']}, 1, {s['size_bytes']}, out);")
    lines += ["  }", "  fclose(in);", "  fclose(out);", "  return 0;", "}", ""]
    return "\n".join(lines)


# AddressSanitizer + UndefinedBehaviorSanitizer, every report fatal (build(sanitize=True)).
# TVMGEN_ARENA_CHECKS: the executor fills the arena with a pattern before each run and, under ASan, keeps
# every tensor of the arena but the running kernel's poisoned (c_emit._arena_check_macros).
SANITIZE_CFLAGS = [
    "-fsanitize=address,undefined,float-cast-overflow",
    "-fno-sanitize-recover=all",
    "-fno-omit-frame-pointer",
    "-g",
    "-DTVMGEN_ARENA_CHECKS",
]


def build(
    mlf_dir: Path, cc: str = "gcc", *, sanitize: bool = False, extra_cflags: Sequence[str] = ()
) -> BuiltModel:
    """Build the harness against the MLF; `sanitize` adds SANITIZE_CFLAGS, `extra_cflags` go last."""
    metadata = json.loads((mlf_dir / "metadata.json").read_text())
    main_c = mlf_dir / "harness_main.c"
    main_c.write_text(generate_main(metadata))
    sources = sorted(str(p) for p in (mlf_dir / "codegen" / "host" / "src").glob("*.c"))
    exe = mlf_dir / ("harness_sanitized" if sanitize else "harness")
    cmd = [
        cc,
        *CFLAGS,
        *(SANITIZE_CFLAGS if sanitize else []),
        *extra_cflags,
        "-I",
        str(mlf_dir / "codegen" / "host" / "include"),
        str(main_c),
        *sources,
        "-o",
        str(exe),
        "-lm",
    ]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return BuiltModel(mlf_dir, metadata, exe)


def arm_objects(mlf_dir: Path, mcpu: str = "cortex-m4") -> list[Path]:
    """Compile every generated C file for Cortex-M (no link: there is no board here)."""
    arm_gcc = shutil.which("arm-none-eabi-gcc")
    assert arm_gcc, "arm-none-eabi-gcc not found: apt-get install gcc-arm-none-eabi"
    out_dir = mlf_dir / f"obj-{mcpu}"
    out_dir.mkdir(exist_ok=True)
    objs = []
    for src in sorted((mlf_dir / "codegen" / "host" / "src").glob("*.c")):
        obj = out_dir / (src.stem + ".o")
        cmd = [
            arm_gcc,
            f"-mcpu={mcpu}",
            "-mthumb",
            "-Os",
            "-Wall",
            "-Werror",
            "-std=c99",
            "-c",
            "-I",
            str(mlf_dir / "codegen" / "host" / "include"),
            str(src),
            "-o",
            str(obj),
        ]
        subprocess.run(cmd, check=True, capture_output=True, text=True)
        objs.append(obj)
    return objs

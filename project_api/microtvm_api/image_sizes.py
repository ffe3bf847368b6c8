"""What a built firmware image occupies, from binutils' `size`: written by a template's build to
`build/sizes.json` and read by `tvmc micro build --json` and `tvmc analyze` (docs/json-output.md).

Two views of one ELF: `size -B` (Berkeley: text, data, bss, the line `size` prints by default) and
`size -A` (System V: one line per section). Only allocated sections are kept from the second; debug
information and notes that are never loaded do not occupy the device.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any

from microtvm_api.commands import run_command
from microtvm_api.errors import CommandFailedError

SIZES_FILE = "build/sizes.json"
# Sections `size -A` lists that are never loaded onto the device.
_NOT_LOADED = re.compile(r"^\.(debug|comment|ARM\.attributes|stab|gnu_debug|note|gnu\.build\.attributes)")
_SYSV_LINE = re.compile(r"^(\.\S+)\s+(\d+)\s+(\d+)\s*$")


def parse_berkeley(text: str) -> dict[str, int]:
    """text/data/bss/dec of `size -B` (the first data line after the header)."""
    lines = [line.split() for line in text.splitlines() if line.strip()]
    for header, values in itertools.pairwise(lines):
        if header[:4] == ["text", "data", "bss", "dec"]:
            return {key: int(v) for key, v in zip(("text", "data", "bss", "dec"), values[:4], strict=True)}
    raise ValueError(f"no Berkeley size line in: {text[:200]!r}")


def parse_sysv(text: str) -> dict[str, int]:
    """Allocated sections and their sizes from `size -A` (in the order listed)."""
    sections: dict[str, int] = {}
    for line in text.splitlines():
        m = _SYSV_LINE.match(line.strip())
        if m and not _NOT_LOADED.match(m.group(1)):
            sections[m.group(1)] = int(m.group(2))
    return sections


def measure(size_tool: str, image: Path, *, cwd: Path, package: str | None = None) -> dict[str, Any]:
    """`size -B` and `size -A` of `image` (relative to `cwd`) as the sizes.json fields they give."""
    berkeley = run_command([size_tool, "-B", str(image)], cwd=cwd, package=package, echo_output=False)
    sysv = run_command([size_tool, "-A", str(image)], cwd=cwd, package=package, echo_output=False)
    try:
        totals = parse_berkeley(berkeley.output)
    except ValueError as err:
        raise CommandFailedError(
            f"`{size_tool} -B {image}` printed no text/data/bss line: {berkeley.output[:200]!r}",
            "check that the tool is binutils' size for this image's architecture",
        ) from err
    return {
        "image": str(image),
        "size_tool": Path(size_tool).name,
        "berkeley": totals,
        "sections": parse_sysv(sysv.output),
    }


def write_sizes(size_tool: str, image: Path, *, project_dir: Path, package: str | None = None) -> bool:
    """Measure `image` (relative to `project_dir`) into build/sizes.json for a template whose board has
    no flash/RAM table (crt_host, zephyr). The previous build's file goes first, so figures never sit
    beside another image; without `size_tool` on PATH or without the image the build still succeeds,
    says why there are no sizes, and returns False."""
    target = project_dir / SIZES_FILE
    target.unlink(missing_ok=True)
    if shutil.which(size_tool) is None:
        print(f"note: `{size_tool}` (binutils) not found: no {SIZES_FILE}", file=sys.stderr)
        return False
    if not (project_dir / image).is_file():  # a build system that put its image elsewhere: say so, go on
        print(f"note: the build left no {image}: no {SIZES_FILE}", file=sys.stderr)
        return False
    sizes = measure(size_tool, image, cwd=project_dir, package=package)
    target.write_text(json.dumps(sizes, indent=2) + "\n", encoding="utf-8")
    return True

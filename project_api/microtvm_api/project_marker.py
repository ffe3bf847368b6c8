"""The marker a generated project carries, and the one rule for when a directory may be replaced (`-f`).

`new_project` writes `.tvmc-project.json` as the last step of generate_project: what the project was made
from (platform, model name, signature, the MLF's SHA-256) and the SHA-256 of every file the generator
wrote. `tvmc micro create-project -f DIR` removes DIR only when `removal_problem(DIR)` is None: DIR is a
real directory (not a symlink) holding a valid marker, and every file in it is one the generator wrote,
unchanged, or lies under a directory later steps write (build/, flashed/: `tvmc micro build -f` deletes
build/ the same way) or a `__pycache__`. A template has no marker; a user's file beside a stray server, an
edited source, a link: each makes the directory one `-f` refuses to touch.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

MARKER_NAME = ".tvmc-project.json"
MARKER_FORMAT = "tvmc-micro generated project"
MARKER_VERSION = 1
# Directories the project's own later steps fill (build outputs, the emulated flash): regenerable.
OUTPUT_DIRS = ("build", "flashed")
# Written by Python when a project's server imports its helper modules.
_CACHE_DIR = "__pycache__"
_SHOWN = 5


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def _walk(root: Path, output_dirs: tuple[str, ...]) -> tuple[dict[str, Path], list[str]]:
    """Regular files under `root` by POSIX relative path, and entries that are neither files nor
    directories (links, FIFOs, ...). Output dirs at the top and __pycache__ dirs are not entered."""
    files: dict[str, Path] = {}
    others: list[str] = []
    stack = [root]
    while stack:
        directory = stack.pop()
        with os.scandir(directory) as entries:
            for entry in entries:
                path = Path(entry.path)
                rel = path.relative_to(root).as_posix()
                mode = entry.stat(follow_symlinks=False).st_mode
                if stat.S_ISDIR(mode):
                    top_output = directory == root and entry.name in output_dirs
                    if not top_output and entry.name != _CACHE_DIR:
                        stack.append(path)
                elif stat.S_ISREG(mode):
                    if rel != MARKER_NAME:
                        files[rel] = path
                else:
                    others.append(rel + (" (a symbolic link)" if stat.S_ISLNK(mode) else " (not a file)"))
    return files, sorted(others)


def write_marker(
    project_dir: Path,
    *,
    platform: str,
    model: Mapping[str, Any],
    mlf_sha256: str,
    tool: Any = None,
    output_dirs: tuple[str, ...] = OUTPUT_DIRS,
) -> Path:
    """Record in `project_dir` what it was generated from and every file it holds now (call it last)."""
    files, _ = _walk(project_dir, output_dirs)
    marker = {
        "format": MARKER_FORMAT,
        "version": MARKER_VERSION,
        "platform": platform,
        "model": model.get("name"),
        "signature": model.get("signature"),
        "mlf_sha256": mlf_sha256,
        "mlf_tool": tool,
        "output_dirs": list(output_dirs),
        "files": {rel: _sha256(path) for rel, path in sorted(files.items())},
    }
    path = project_dir / MARKER_NAME
    path.write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
    return path


def read_marker(project_dir: Path) -> dict[str, Any] | None:
    """The marker of `project_dir`; None when there is none or it is not a valid marker."""
    path = project_dir / MARKER_NAME
    try:
        if not stat.S_ISREG(path.lstat().st_mode) or path.lstat().st_size > 16 * 1024 * 1024:
            return None
        marker = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(marker, dict) or marker.get("format") != MARKER_FORMAT:
        return None
    files, dirs = marker.get("files"), marker.get("output_dirs")
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        return None
    if not isinstance(dirs, list) or not all(_plain_name(d) for d in dirs):
        return None
    return marker


def template_overlap(project_dir: Path, template_dir: Path) -> str | None:
    """How `project_dir` overlaps `template_dir` in words ("is inside the template ..."); None if apart.
    Both are resolved first, so a link cannot hide the overlap."""
    target, template = project_dir.resolve(), template_dir.resolve()
    if target == template:
        return f"is the template directory {template}"
    if template in target.parents:
        return f"is inside the template directory {template}"
    if target in template.parents:
        return f"contains the template directory {template}"
    return None


def _plain_name(name: Any) -> bool:
    return isinstance(name, str) and len(PurePosixPath(name).parts) == 1 and name not in ("", ".", "..")


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    return shown + (f" (and {len(names) - _SHOWN} more)" if len(names) > _SHOWN else "")


def removal_problem(project_dir: Path) -> str | None:
    """Why `-f` may not remove `project_dir`, in words; None when it is a generated project holding only
    what tvmc wrote (see the module docstring)."""
    if project_dir.is_symlink():
        return f"is a symbolic link (to {os.readlink(project_dir)}), and links are never followed"
    if not project_dir.is_dir():
        return "is not a directory"
    marker = read_marker(project_dir)
    if marker is None:
        return (
            f"has no valid {MARKER_NAME}: it is not a generated project (one made by tvmc micro "
            "create-project; or it was made by a tvmc older than the marker)"
        )
    recorded: dict[str, str] = marker["files"]
    files, others = _walk(project_dir, tuple(marker["output_dirs"]))
    foreign = sorted(rel for rel in files if rel not in recorded) + others
    if foreign:
        return f"holds files tvmc did not write: {_listing(foreign)}"
    changed = sorted(rel for rel, path in files.items() if _sha256(path) != recorded[rel])
    if changed:
        return f"has files changed since it was generated: {_listing(changed)}"
    return None

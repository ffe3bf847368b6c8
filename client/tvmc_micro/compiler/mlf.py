"""Model Library Format: metadata.json, signature, and the tar writer (contract C1)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

MLF_VERSION = 1
TOOL_NAME = "tvmc-micro"
REPO_RUNTIME_DIR = Path(__file__).resolve().parents[3] / "runtime"


def runtime_files(runtime_dir: Path = REPO_RUNTIME_DIR) -> dict[str, bytes]:
    """The device runtime sources (relative path -> bytes) shipped inside every MLF, if present."""
    if not runtime_dir.is_dir():
        return {}
    files = {}
    for path in sorted(runtime_dir.rglob("*")):
        rel = path.relative_to(runtime_dir)
        if path.is_file() and not path.is_symlink() and not any(p.startswith(".") for p in rel.parts):
            if path.suffix in (".o", ".a", ".so", ".pyc") or "build" in rel.parts:
                continue
            files[rel.as_posix()] = path.read_bytes()
    return files


def signature(
    model_sha256: str, options: dict[str, Any], tvm_version: str, tool_version: str, runtime: dict[str, bytes]
) -> str:
    """DESIGN §4: model bytes + compile options + format/runtime version, as 16 hex chars."""
    h = hashlib.sha256()
    h.update(model_sha256.encode())
    h.update(json.dumps(options, sort_keys=True, separators=(",", ":")).encode())
    h.update(f"mlf{MLF_VERSION}/{TOOL_NAME}{tool_version}/tvm{tvm_version}".encode())
    for name, data in sorted(runtime.items()):
        h.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()[:16]


def write_tar(output: Path, files: dict[str, bytes]) -> None:
    """Write an uncompressed tar of regular files with relative names, atomically (temp file + rename)."""
    output.parent.mkdir(parents=False, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tvmc-", suffix=".tar", dir=output.parent)
    now = int(time.time())
    try:
        with os.fdopen(fd, "wb") as fh, tarfile.open(fileobj=fh, mode="w", format=tarfile.PAX_FORMAT) as tar:
            dirs: set[str] = set()
            for name in sorted(files):
                parts = name.split("/")
                for i in range(1, len(parts)):
                    d = "/".join(parts[:i])
                    if d not in dirs:
                        dirs.add(d)
                        info = tarfile.TarInfo(d)
                        info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, now
                        tar.addfile(info)
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = len(files[name]), 0o644, now
                tar.addfile(info, io.BytesIO(files[name]))
        os.replace(tmp, output)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

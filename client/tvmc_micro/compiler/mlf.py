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

from tvmc_micro.errors import TvmcError
from tvmc_micro.resources import runtime_dir as installed_runtime

MLF_VERSION = 1
TOOL_NAME = "tvmc-micro"


def _is_runtime_test(rel: Path) -> bool:
    """The runtime's own unit tests and their fakes: each defines main() or the platform functions, so
    an IDE that compiles every .c of the MLF would fail to link; they stay in the repository."""
    return rel.parts[0] == "test" or rel.name.endswith("_test.c")


def runtime_files(runtime_dir: Path | None = None) -> dict[str, bytes]:
    """The device runtime sources (relative path -> bytes) shipped inside every MLF.

    An installation without the runtime is an error (an MLF without it cannot become firmware).
    """
    if runtime_dir is None:
        runtime_dir = installed_runtime()
    files = {}
    for path in sorted(runtime_dir.rglob("*")):
        rel = path.relative_to(runtime_dir)
        if path.is_file() and not path.is_symlink() and not any(p.startswith(".") for p in rel.parts):
            if path.suffix in (".o", ".a", ".so", ".pyc") or "build" in rel.parts or _is_runtime_test(rel):
                continue
            files[rel.as_posix()] = path.read_bytes()
    if not any(name.startswith("src/") and name.endswith(".c") for name in files):
        raise TvmcError(
            f"the device runtime at {runtime_dir} has no C sources under src/",
            "the installation is incomplete: reinstall tvmc-micro",
        )
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


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


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
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp made it 0600: give it an ordinary file's mode
        os.replace(tmp, output)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

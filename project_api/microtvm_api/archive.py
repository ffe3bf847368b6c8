"""Extract a Model Library Format tar into a project without ever writing outside it.

Every member is checked before anything is written: absolute names, `..` components, links (symbolic or
hard), devices and FIFOs are refused, and so is any member whose destination resolves outside the project
(e.g. through a symlink already in the project). Only regular files and directories are written.
"""

from __future__ import annotations

import os
import shutil
import tarfile
from pathlib import Path, PurePosixPath

from microtvm_api.errors import ArchiveError, UnsafeArchiveError

_HINT = (
    "regenerate it with `tvmc compile`; a Model Library Format tar holds only relative files and directories"
)


def _member_problem(member: tarfile.TarInfo) -> str | None:
    name = member.name
    if not name or "\x00" in name:
        return "has an empty or NUL-containing name"
    if (
        name.startswith(("/", "\\"))
        or PurePosixPath(name).is_absolute()
        or (len(name) > 1 and name[1] == ":")
    ):
        return "has an absolute path"
    if ".." in PurePosixPath(name.replace("\\", "/")).parts:
        return "has a '..' component"
    if member.issym():
        return f"is a symbolic link (to {member.linkname!r})"
    if member.islnk():
        return f"is a hard link (to {member.linkname!r})"
    if member.ischr() or member.isblk():
        return "is a device node"
    if member.isfifo():
        return "is a FIFO"
    if not (member.isfile() or member.isdir()):
        return "is not a regular file or directory"
    return None


def safe_extract(tar_path: str | Path, dest_dir: str | Path) -> list[Path]:
    """Extract `tar_path` into `dest_dir` (created if needed); returns the files written.

    Raises UnsafeArchiveError (nothing written) for a dangerous member, ArchiveError for an unreadable tar.
    """
    tar_path, dest = Path(tar_path), Path(dest_dir)
    try:
        archive = tarfile.open(tar_path, "r:*")
    except (OSError, tarfile.TarError) as err:
        raise ArchiveError(f"cannot read {tar_path} as a tar archive: {err}", _HINT) from err
    with archive:
        try:
            members = archive.getmembers()
        except tarfile.TarError as err:
            raise ArchiveError(f"{tar_path} is truncated or corrupt: {err}", _HINT) from err
        for member in members:
            problem = _member_problem(member)
            if problem:
                raise UnsafeArchiveError(
                    f"{tar_path}: member {member.name!r} {problem}; refusing to extract "
                    "(nothing was written)",
                    _HINT,
                    data={"member": member.name},
                )
        dest.mkdir(parents=True, exist_ok=True)
        root = dest.resolve()
        written: list[Path] = []
        for member in members:
            target = root / PurePosixPath(member.name)
            # Resolve through anything already on disk: a symlink inside the project must not lead out.
            parent = target.parent.resolve() if member.isfile() else target.resolve()
            if parent != root and root not in parent.parents:
                raise UnsafeArchiveError(
                    f"{tar_path}: member {member.name!r} would be written outside {root} "
                    "(through a link in the project); refusing",
                    "remove the link from the project directory",
                    data={"member": member.name},
                )
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_symlink():
                target.unlink()
            source = archive.extractfile(member)
            if source is None:  # pragma: no cover - isfile() members always have data
                continue
            with source, open(target, "wb") as out:
                shutil.copyfileobj(source, out)
            os.chmod(target, 0o755 if member.mode & 0o111 else 0o644)
            written.append(target)
    return written

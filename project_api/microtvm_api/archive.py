"""Read and extract a Model Library Format tar without ever writing outside the project or without bound.

Every member is checked before anything is written: absolute names, `..` components, links (symbolic or
hard), devices, FIFOs and sparse files are refused, and so is any member whose destination resolves outside
the project (e.g. through a symlink already in the project). Only regular files and directories are
written.

What an MLF may unpack is bounded (ArchiveLimits): the number of members, the bytes of each member and of
all of them, and the bytes of the (decompressed) tar stream itself. Declared sizes are checked before
anything is written, and bytes are counted again while copying, because a compressed stream or a sparse
member can produce more than its header suggests. A user with a bigger model raises a limit with the
environment variable named in the error message.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import lzma
import os
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, BinaryIO

from microtvm_api.errors import ArchiveError, UnsafeArchiveError

_HINT = (
    "regenerate it with `tvmc compile`; a Model Library Format tar holds only relative files and directories"
)

# The limits, generous for real MLFs: `tvmc compile` of a 1 MB float model (ad01_fp32) writes a 5.4 MB tar
# of 42 members whose largest member, the weights as C text, is 4.2 MB (about 4 bytes of C per weight
# byte). 64 MiB per member is room for ~16 MB of weights, more than any microcontroller's flash; 256 MiB in
# all leaves room for parameters/, sources and the runtime beside it. Each can be raised with the
# environment variable of the same name (e.g. MICROTVM_MLF_MAX_TOTAL_BYTES=1073741824).
MICROTVM_MLF_MAX_MEMBERS = 10_000
MICROTVM_MLF_MAX_MEMBER_BYTES = 64 * 1024 * 1024
MICROTVM_MLF_MAX_TOTAL_BYTES = 256 * 1024 * 1024
# Headers and padding the tar stream may add per member beyond its data (a pax header is a few hundred
# bytes; 4 KiB is generous), and a single read tarfile may make for one header.
_STREAM_BYTES_PER_MEMBER = 4096
_MAX_HEADER_READ = 1024 * 1024

_LIMIT_NAMES = ("MICROTVM_MLF_MAX_MEMBERS", "MICROTVM_MLF_MAX_MEMBER_BYTES", "MICROTVM_MLF_MAX_TOTAL_BYTES")


@dataclass(frozen=True)
class ArchiveLimits:
    """How much one MLF may unpack: member count, bytes per member, bytes in all."""

    members: int
    member_bytes: int
    total_bytes: int

    @classmethod
    def current(cls) -> ArchiveLimits:
        """The module's limits, each overridden by its environment variable when that is set."""
        values: list[int] = []
        for name in _LIMIT_NAMES:
            default: int = globals()[name]
            text = os.environ.get(name)
            if text is None or not text.strip():
                values.append(default)
                continue
            try:
                value = int(text.strip(), 0)
            except ValueError:
                value = 0
            if value < 1:
                raise ArchiveError(
                    f"environment variable {name}={text!r} is not a positive integer",
                    f"unset it to use the default {default:,}, or set a positive number",
                )
            values.append(value)
        return cls(*values)

    @property
    def stream_bytes(self) -> int:
        """Bytes of the (decompressed) tar stream: all data plus headers and padding."""
        return self.total_bytes + self.members * _STREAM_BYTES_PER_MEMBER + 2 * _MAX_HEADER_READ


def _too_big(tar_path: Path, what: str, limit: int, variable: str) -> ArchiveError:
    return ArchiveError(
        f"{tar_path}: {what}, more than the limit of {limit:,}; refusing to unpack it (nothing was written)",
        f"a Model Library Format tar from `tvmc compile` is far smaller; if this one is genuine, raise the "
        f"limit with the environment variable {variable}",
        data={"limit": limit},
    )


class _BoundedStream(io.RawIOBase):
    """A read-only view of a (decompressed) tar stream that refuses to go past `limit` bytes, or to read
    more than `_MAX_HEADER_READ` at once (tarfile reads member data in small chunks; only a forged header
    asks for more), so neither a decompression bomb nor a huge forged header can cost memory or time."""

    def __init__(self, raw: io.BufferedIOBase | BinaryIO, limit: int, tar_path: Path) -> None:
        super().__init__()
        self.raw = raw
        self.limit = limit
        self.tar_path = tar_path

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.raw.tell()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_CUR:
            offset += self.raw.tell()
            whence = io.SEEK_SET
        if whence == io.SEEK_SET and offset > self.limit:
            raise self._error()
        return self.raw.seek(offset, whence)

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0 or size > _MAX_HEADER_READ:
            if size is not None and size > _MAX_HEADER_READ:
                raise ArchiveError(
                    f"{self.tar_path}: a tar header asks to read {size:,} bytes at once; refusing "
                    "(nothing was written)",
                    _HINT,
                )
            size = _MAX_HEADER_READ
        if self.raw.tell() + size > self.limit:
            size = max(0, self.limit - self.raw.tell()) + 1
        data = self.raw.read(size)
        if self.raw.tell() > self.limit:
            raise self._error()
        return data

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def _error(self) -> ArchiveError:
        return _too_big(self.tar_path, "the tar stream unpacks to more bytes than its members may hold",
                        self.limit, "MICROTVM_MLF_MAX_TOTAL_BYTES")


def _decompressed(handle: BinaryIO) -> io.BufferedIOBase | BinaryIO:
    """The tar stream inside `handle`: gzip, bzip2 and xz are opened by content, anything else as is."""
    magic = handle.read(6)
    handle.seek(0)
    if magic.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=handle, mode="rb")
    if magic.startswith(b"BZh"):
        return bz2.BZ2File(handle, "rb")
    if magic.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(handle, "rb")
    return handle


# What a corrupt or truncated archive raises from tarfile or the decompressors.
_READ_ERRORS = (OSError, EOFError, zlib.error, lzma.LZMAError, tarfile.TarError)


@contextlib.contextmanager
def open_archive(tar_path: str | Path, limits: ArchiveLimits | None = None) -> Iterator[tarfile.TarFile]:
    """Open an MLF tar (optionally gzip/bzip2/xz compressed) for bounded reading; ArchiveError if unreadable.

    Iterate it with `checked_members`, which applies the member limits."""
    path = Path(tar_path)
    limits = limits or ArchiveLimits.current()
    with contextlib.ExitStack() as stack:
        try:
            handle = stack.enter_context(open(path, "rb"))
            stream = _decompressed(handle)
            stack.callback(stream.close)
            bounded = stack.enter_context(_BoundedStream(stream, limits.stream_bytes, path))
            archive = stack.enter_context(tarfile.open(fileobj=bounded, mode="r:"))
        except _READ_ERRORS as err:
            raise ArchiveError(f"cannot read {path} as a tar archive: {_detail(err)}", _HINT) from err
        yield archive


def _detail(err: BaseException) -> str:
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    return str(err) or type(err).__name__


def member_problem(member: tarfile.TarInfo) -> str | None:
    """Why `member` may not be extracted into a project, in words; None when it may."""
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
    if member.issparse():
        return "is a sparse file (its holes would be written out in full)"
    if not (member.isfile() or member.isdir()):
        return "is not a regular file or directory"
    return None


def checked_members(
    archive: tarfile.TarFile, tar_path: str | Path, limits: ArchiveLimits | None = None
) -> Iterator[tarfile.TarInfo]:
    """The archive's members, one by one, each refused (UnsafeArchiveError / ArchiveError) as soon as its
    header shows it is unsafe or would take the archive past a limit."""
    path = Path(tar_path)
    limits = limits or ArchiveLimits.current()
    count = total = 0
    while True:
        try:
            member = archive.next()
        except _READ_ERRORS as err:
            raise ArchiveError(f"{path} is truncated or corrupt: {err}", _HINT) from err
        if member is None:
            return
        count += 1
        if count > limits.members:
            raise _too_big(path, f"the archive has more than {limits.members:,} members", limits.members,
                           "MICROTVM_MLF_MAX_MEMBERS")
        problem = member_problem(member)
        if problem:
            raise UnsafeArchiveError(
                f"{path}: member {member.name!r} {problem}; refusing to extract (nothing was written)",
                _HINT,
                data={"member": member.name},
            )
        if member.size > limits.member_bytes:
            raise _too_big(path, f"member {member.name!r} is {member.size:,} bytes", limits.member_bytes,
                           "MICROTVM_MLF_MAX_MEMBER_BYTES")
        total += member.size
        if total > limits.total_bytes:
            raise _too_big(path, f"its members hold more than {limits.total_bytes:,} bytes in all "
                           f"(at member {member.name!r})", limits.total_bytes, "MICROTVM_MLF_MAX_TOTAL_BYTES")
        yield member


def copy_bounded(source: IO[bytes], out: IO[bytes], limit: int, what: str) -> int:
    """Copy `source` to `out`, counting: ArchiveError as soon as more than `limit` bytes arrive."""
    copied = 0
    while True:
        try:
            chunk = source.read(64 * 1024)
        except _READ_ERRORS as err:
            raise ArchiveError(f"{what} cannot be read: the archive is truncated or corrupt ({_detail(err)})",
                               _HINT) from err
        if not chunk:
            return copied
        copied += len(chunk)
        if copied > limit:
            raise ArchiveError(
                f"{what} unpacks to more than {limit:,} bytes, more than its header declared; refusing",
                _HINT,
                data={"limit": limit},
            )
        out.write(chunk)


def read_member(
    tar_path: str | Path, name: str, max_bytes: int, limits: ArchiveLimits | None = None
) -> bytes | None:
    """The bytes of member `name` (a regular file; `./name` matches too), None when the archive has none.

    ArchiveError when the member holds more than `max_bytes`; nothing is extracted."""
    path = Path(tar_path)
    limits = limits or ArchiveLimits.current()
    with open_archive(path, limits) as archive:
        for member in checked_members(archive, path, limits):
            if _normal_name(member.name) != name or not member.isfile():
                continue
            if member.size > max_bytes:
                raise ArchiveError(
                    f"{path}: {name} is {member.size:,} bytes, more than the limit of {max_bytes:,}",
                    "regenerate the archive with `tvmc compile`",
                    data={"limit": max_bytes},
                )
            source = archive.extractfile(member)
            if source is None:  # pragma: no cover - isfile() members always have data
                return b""
            out = io.BytesIO()
            with source:
                copy_bounded(source, out, max_bytes, f"{path}: {name}")
            return out.getvalue()
    return None


def _normal_name(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return name


def safe_extract(
    tar_path: str | Path, dest_dir: str | Path, limits: ArchiveLimits | None = None
) -> list[Path]:
    """Extract `tar_path` into `dest_dir` (created if needed); returns the files written.

    Raises UnsafeArchiveError (nothing written) for a dangerous member, ArchiveError for an unreadable tar
    or one past the limits (nothing written when the headers show it; a member whose data exceeds what its
    header declared stops the extraction, and the caller removes what was written).
    """
    tar_path, dest = Path(tar_path), Path(dest_dir)
    limits = limits or ArchiveLimits.current()
    with open_archive(tar_path, limits) as archive:
        members = list(checked_members(archive, tar_path, limits))
        dest.mkdir(parents=True, exist_ok=True)
        root = dest.resolve()
        written: list[Path] = []
        budget = limits.total_bytes
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
            # The scan above read every header and seeked over all data, so the data is there to read.
            source = archive.extractfile(member)
            if source is None:  # pragma: no cover - isfile() members always have data
                continue
            limit = min(limits.member_bytes, budget)
            with source, open(target, "wb") as out:
                budget -= copy_bounded(source, out, limit, f"{tar_path}: member {member.name!r}")
            os.chmod(target, 0o755 if member.mode & 0o111 else 0o644)
            written.append(target)
    return written

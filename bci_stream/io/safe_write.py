"""Every file bci-stream and bci-train write goes through here: a target is a regular file or a new
path, never a device, FIFO, socket or folder; a file is written to a temporary file in the same folder
and renamed over the target only when it is complete; a full disk, a read-only folder or a missing
permission is one line naming the path and the next step.

Why: libraries that write "atomically" (safetensors, numpy, matplotlib, onnx) write a temporary file
and rename it over whatever the path names, so ``--out /dev/null`` (as root) or ``--out myfifo``
would silently replace a device node with a regular file; and their own errors (``SafetensorError:
... os error 28``) name neither the path nor what to do.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


class WriteTargetError(OSError):
    """A path cannot be written: not a regular file, a read-only or full disk, no permission.
    One line (``str(err)``) naming the path and what to do."""


_KINDS = ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))


def _kind(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def _real(path: Path) -> Path:
    """A symlink's target (the link itself stays), else ``path``."""
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def check_writable_target(path: str | Path, create: bool = False, append: bool = False) -> Path:
    """Refuse a ``path`` that exists and is not a regular file, or whose folder cannot be written (or
    made); ``create``: make that folder. Returns the path to write (a symlink's target). Commands call
    it before long work, so that a bad ``--out`` is said at once.

    ``append``: for a file appended to in place (the JSONL session log), which never replaces what the
    path names: a character device (``/dev/null``, ``/dev/full``) is accepted; a FIFO (whose open would
    block until a reader came), a socket, a block device or a folder is still refused."""
    path = _real(Path(path))
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as err:
        raise _error(path, err) from None
    if mode is not None and not stat.S_ISREG(mode) and not (append and stat.S_ISCHR(mode)):
        raise WriteTargetError(f"refusing to write {path}: it is {_kind(mode)}, not a regular file; "
                               "give a new file path or an existing regular file")
    check_writable_folder(path.parent, create)
    return path


def check_writable_folder(folder: str | Path, create: bool = False) -> Path:
    """Refuse a ``folder`` that is not a folder or cannot be written (read-only file system, no
    permission); one that does not exist yet, when its nearest existing parent cannot be written.
    ``create``: make it (and its parents). Returns it."""
    folder = Path(folder)
    if create:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise WriteTargetError(f"cannot write into {folder}: it exists and is not a folder; "
                                   "give a new folder path") from None
        except OSError as err:
            raise _error(folder, err) from None
    existing = folder
    while not existing.exists() and existing != existing.parent:
        if existing.is_symlink():  # a dangling link: what it names would be made
            break
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise WriteTargetError(f"cannot write into {folder}: {existing} is not a folder; give another path")
    if existing.exists() and not os.access(existing, os.W_OK | os.X_OK):  # EROFS too, even for root
        err = OSError(errno.EROFS if _read_only_fs(existing) else errno.EACCES, "")
        raise _error(existing, err) from None
    return folder


def _read_only_fs(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _read_umask() -> int:
    mask = os.umask(0o022)  # the only way to read it; done once, at import, before any thread writes
    os.umask(mask)
    return mask


_UMASK = _read_umask()
_OS_ERROR = re.compile(r"os error (\d+)")  # Rust I/O errors (safetensors) carry the errno in their text


def _errno_of(err: BaseException) -> int | None:
    if isinstance(err, OSError) and err.errno:
        return err.errno
    found = _OS_ERROR.search(str(err))
    return int(found.group(1)) if found else None


def _error(path: Path, err: BaseException) -> WriteTargetError:
    """One line for a failed write of ``path``: what happened and the next step."""
    code = _errno_of(err)
    if code == errno.ENOSPC or code == errno.EDQUOT:
        return WriteTargetError(f"cannot write {path}: no space left on the device; free space there or "
                                "give a path on another disk")
    if code == errno.EROFS:
        return WriteTargetError(f"cannot write {path}: read-only file system; give a path on a writable disk")
    if code in (errno.EACCES, errno.EPERM):
        return WriteTargetError(f"cannot write {path}: permission denied; give a path in a folder you can write")
    if code == errno.ENOTDIR:
        return WriteTargetError(f"cannot write {path}: a part of the path is a file, not a folder; give another path")
    why = os.strerror(code) if code else " ".join(str(err).split())[:200] or type(err).__name__
    return WriteTargetError(f"cannot write {path}: {why}; check the path and the disk")


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path in ``path``'s folder (same suffix, so numpy and matplotlib keep the format) for
    the body to write; renamed over ``path`` when the body returns, removed when it raises. Any OS
    error (or a library's wrapping of one) becomes a one-line :class:`WriteTargetError`."""
    target = check_writable_target(path, create=True)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".partial{target.suffix}",
                                        dir=target.parent)
        os.close(fd)
    except OSError as err:
        raise _error(target, err) from None
    tmp = Path(tmp_name)
    try:
        try:
            yield tmp
        except WriteTargetError:
            raise
        except Exception as err:
            if _errno_of(err) is None:
                raise  # not an I/O problem: the caller's own error
            raise _error(target, err) from None
        try:  # the target may have become something else meanwhile: check again just before the rename
            mode = os.stat(target).st_mode
        except FileNotFoundError:
            mode = None
        if mode is not None and not stat.S_ISREG(mode):
            raise WriteTargetError(f"refusing to write {target}: it is {_kind(mode)}, not a regular file; "
                                   "give a new file path or an existing regular file")
        try:
            os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp's 0600 is not what a plain open() would have made
            os.replace(tmp, target)
        except OSError as err:
            raise _error(target, err) from None
    finally:
        tmp.unlink(missing_ok=True)


def write_with(path: str | Path, write: Callable[[Path], object]) -> Path:
    """``write(tmp)`` writes the file at a temporary path; it then replaces ``path``. Returns ``path``."""
    with atomic_path(path) as tmp:
        write(tmp)
    return Path(path)


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (flushed to disk before the rename)."""
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    return write_with(path, write)


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, obj, **kwargs) -> Path:
    """``json.dumps(obj, **kwargs)`` to ``path`` atomically."""
    return write_text(path, json.dumps(obj, **kwargs))

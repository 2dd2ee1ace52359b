"""Writing files so that an interruption (a kill, a full disk, a size limit) leaves the old file or
the new one, never half of either; every file drawviz writes goes through here.

A write goes to a partial file beside its target, ``<name>.tmp<pid>.<thread><suffix>`` (the target's
suffix kept, for writers that pick a format by it), which is flushed, fsynced and renamed over the
target; a failed write removes its partial and raises :class:`WriteError`, saying what is left.
Partials of processes that are gone are removed by the next write of the same file.
"""

from __future__ import annotations

import contextlib
import glob
import json
import errno
import warnings
import os
import stat
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

__all__ = [
    "real",
    "WriteError",
    "atomic",
    "write_bytes",
    "write_text",
    "write_json",
    "remove_stale_partials",
    "check_writable",
    "partial_name",
    "InUse",
    "exclusive",
]


class WriteError(OSError):
    """A file could not be written (full disk, quota, size limit, permissions); the message says what
    is left where and what to do."""


def partial_name(path: Path) -> Path:
    """Where a write of ``path`` by this process and thread goes before it is complete."""
    return path.with_name(f"{path.name}.tmp{os.getpid()}.{threading.get_ident()}{path.suffix}")


def remove_stale_partials(path) -> None:
    """Delete partial writes of ``path`` left by killed processes (``<name>.tmp<pid>…`` of a pid that is gone)."""
    path = Path(path)
    for tmp in path.parent.glob(f"{glob.escape(path.name)}.tmp*"):
        pid = tmp.name[len(path.name) + 4 :].split(".")[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)  # still running (another process writing the same file): leave it
        except ProcessLookupError:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass


def check_writable(path, hint: str = "choose a writable folder") -> Path:
    """Fail now, not after an hour of work, when ``path``'s folder cannot take a file."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        probe = path.with_name(f".{path.name}.writable{os.getpid()}")
        # a file of its own only: O_EXCL never opens what is there, a planted link to a victim included
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
        probe.unlink()
    except OSError as err:
        raise WriteError(f"cannot write {path}: {err.strerror or err}; {hint}") from None
    return path


def _fail(path: Path, err: BaseException, what: str = "file") -> WriteError:
    left = f"the previous {what} there is intact" if path.exists() else "nothing was written"
    reason = getattr(err, "strerror", None) or str(err)[:200]
    return WriteError(
        f"could not write {path} ({type(err).__name__}: {reason}); {left}. Free space or choose another folder, then run again"
    )


def real(path) -> Path:
    """The file a write of ``path`` means: ``path`` itself, or where it links to when it is a symbolic link
    this user made (a runs/ folder linked to a big disk: the target is updated and the link kept). A link
    another user owns is refused: in a shared folder it could be planted to turn a write at another file."""
    path = Path(path)
    if not path.is_symlink():
        return path
    if os.lstat(path).st_uid != os.geteuid():
        raise WriteError(
            f"{path} is a symbolic link owned by another user (to {os.readlink(path)}): drawviz will not write "
            f"through it; remove it, or give the file it points to"
        )
    return path.resolve()


@contextlib.contextmanager
def atomic(path, what: str = "file") -> Iterator[Path]:
    """``with atomic(path) as tmp:`` write the whole file at ``tmp``; on leaving the block it replaces
    ``path`` (durably), or, if the block raised, is removed and ``path`` is left as it was. OSErrors
    become a :class:`WriteError`. A ``path`` that is a link of this user's is followed: the file it points to
    is replaced, and the link stays (see ``real``)."""
    path = real(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _fail(path, err, what) from None
    remove_stale_partials(path)
    tmp = partial_name(path)
    try:
        yield tmp
        with open(tmp, "rb+") as f:  # the writer may have closed it: flush the data to the disk
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        raise _fail(path, err, what) from None
    finally:
        with contextlib.suppress(OSError):  # a cleanup that fails (a read-only folder) must not mask the error
            tmp.unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # make the rename itself durable
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_bytes(path, data: bytes, what: str = "file") -> Path:
    """``data`` as the whole of ``path``, atomically (``what`` names the file in an error)."""
    with atomic(path, what) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
    return Path(path)


def write_text(path, text: str, what: str = "file") -> Path:
    return write_bytes(path, text.encode("utf-8"), what)


def write_json(path, obj, default: Callable | None = None, what: str = "file") -> Path:
    return write_text(path, json.dumps(obj, indent=2, default=default), what)


class InUse(RuntimeError):
    """Another process holds the file (e.g. trains into the same checkpoint)."""


@contextlib.contextmanager
def exclusive(path, what: str = "this file") -> Iterator[None]:
    """Hold ``path`` for this process while the block runs: a second holder (another process, or another
    call in this one) gets :class:`InUse` naming the process that holds it. The lock is an flock on
    ``.<name>.lock`` beside it, released when the block ends or the process dies (no stale locks).

    The lock file is made writable by everyone (another user's run must be able to take it after this one),
    one left by a user whose file this process may not write is locked read-only, and a filesystem without
    locks (NFS without lockd) is said in a warning and worked on unlocked: neither stops the work."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    path = real(path)  # a checkpoint that is a link: the file it points to is what is held
    lock = path.with_name(f".{path.name}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd, writable = _open_lock(lock)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            raise InUse(
                f"{path} is in use: {holder} holds it for {what}. Wait for it to finish, stop it "
                f"(SIGTERM or Ctrl-C: it saves first), or choose another file"
            ) from None
        except OSError as err:
            if err.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                raise
            warnings.warn(
                f"{lock.parent} does not support file locks ({err.strerror}): {path} is used unlocked, so a second "
                f"process on the same file would not be stopped; run one at a time there",
                RuntimeWarning,
                stacklevel=3,
            )
            yield
            return
        if writable:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"process {os.getpid()} (since {time.strftime('%Y-%m-%d %H:%M:%S')})".encode(), 0)
        try:
            yield
        finally:
            if writable:
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _open_lock(lock: Path) -> tuple[int, bool]:
    """(fd, writable) of the lock file: never through a link, never anything but a regular file."""
    flags = os.O_CREAT | os.O_NOFOLLOW
    try:  # never through a link: a planted .x.lock -> victim would be truncated and written
        fd, writable = os.open(lock, os.O_RDWR | flags, 0o666), True
    except PermissionError:  # another user's lock: an flock needs no write access
        try:
            fd, writable = os.open(lock, os.O_RDONLY | os.O_NOFOLLOW), False
        except OSError as err:
            raise WriteError(
                f"cannot open the lock {lock} ({err.strerror}): this user may not write in {lock.parent}; "
                f"choose a folder you can write"
            ) from None
    except OSError:
        if lock.is_symlink():
            raise WriteError(
                f"{lock} is a symbolic link (to {os.readlink(lock)}), not a lock file drawviz made: it will not write "
                f"through it. Remove the link, or choose another file"
            ) from None
        raise
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise WriteError(f"{lock} is not a regular file (a FIFO or a device?): remove it, or choose another file")
    if writable and info.st_uid == os.getuid() and info.st_mode & 0o666 != 0o666:
        with contextlib.suppress(OSError):  # the umask took write access from the others: give it back
            os.fchmod(fd, 0o666)
    return fd, writable

"""One run per output folder: an advisory lock file naming its holder.

The runner holds :func:`folder_lock` on its ``--out`` folder for the whole run, so two runs
never append to the same TSV files at once (each would compute and write every case). The
lock is ``fcntl.flock`` on ``<folder>/.alpa_serve.lock``: the kernel releases it when the
holder exits, however it exits (``kill -9`` included), so a lock left by a dead process never
blocks a later run. The file holds the holder's pid, host, start time and command, which the
refusal message of a second run quotes. Platforms without ``fcntl`` (Windows) run unlocked,
with a warning.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

try:
    import fcntl
except ImportError:  # not POSIX
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

#: Name of the lock file inside the locked folder (hidden: plots read ``*.tsv`` only).
LOCK_NAME = ".alpa_serve.lock"


class FolderLockedError(RuntimeError):
    """Another live process holds the folder's lock; the message names it."""


def _holder_text(fd: int) -> str:
    """The holder description written in the lock file (best effort)."""
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        raw = os.read(fd, 4096).decode("utf-8", "replace")
        info = json.loads(raw)
        return (f"pid {info['pid']} on host {info['host']}, started "
                f"{info['started']}, command: {info['command']}")
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that is still starting (its details are not written yet)"


def _describe_self() -> bytes:
    info = {"pid": os.getpid(), "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
            "command": " ".join([os.path.basename(sys.executable)] + sys.argv)}
    return (json.dumps(info) + "\n").encode("utf-8")


def _acquire(path: Path) -> int:
    """An open descriptor of ``path`` locked exclusively by this process."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                holder = _holder_text(fd)
                os.close(fd)
                raise FolderLockedError(
                    f"another run is writing to {path.parent}: {holder}. Wait for it to "
                    f"finish (or stop it), or write to another --out folder; a lock left by "
                    f"a process that died is released automatically") from None
            os.close(fd)
            raise
        # A holder that was releasing may have unlinked the file between our open and
        # flock: then we locked an orphan and must retry on the current file.
        try:
            current = os.stat(path)
        except FileNotFoundError:
            os.close(fd)
            continue
        if current.st_ino != os.fstat(fd).st_ino:
            os.close(fd)
            continue
        return fd


@contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Hold the exclusive lock of ``folder`` (which must exist) for the ``with`` block.

    Raises:
        FolderLockedError: another live process holds it (message: its pid, host, start
            time and command).
        OSError: the lock file cannot be created (e.g. the folder is not writable).
    """
    path = Path(folder) / LOCK_NAME
    if fcntl is None:
        logger.warning("file locking is not available on this platform: nothing stops a "
                       "second run from writing into %s at the same time", folder)
        yield
        return
    try:
        fd = _acquire(path)
    except OSError as exc:
        if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
            raise
        logger.warning("%s: the file system does not support locks (%s): nothing stops a "
                       "second run from writing into this folder at the same time",
                       folder, exc.strerror)
        yield
        return
    try:
        os.ftruncate(fd, 0)
        os.write(fd, _describe_self())
        yield
    finally:
        # Unlink while still holding the lock (see the inode check in _acquire).
        try:
            os.unlink(path)
        except OSError:
            pass
        os.close(fd)

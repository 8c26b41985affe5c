"""Temporary folders of the trace cache that name their owner, and removal of stale ones.

Generating a stand-in or preprocessing a trace writes into a hidden temporary folder beside
the final one and renames it when done; a process killed meanwhile leaves that folder behind
(hundreds of MB). :func:`make_temp_dir` names the folder after its owner
(``<prefix>pid<pid>@<host>~<random>``) so that :func:`remove_stale_temp_dirs`, called by the
next process that uses the cache, can remove the folders whose owner is no longer running on
this host. Folders of other hosts (a shared cache) and folders named by older versions (no
owner in the name) are removed only when nothing in them changed for
:data:`STALE_AFTER_SECONDS`.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Iterable, Optional

logger = logging.getLogger(__name__)

#: A temporary folder whose owner cannot be checked is stale when nothing in it changed for
#: this long (s); building a cache entry takes minutes.
STALE_AFTER_SECONDS = 24 * 3600.0

#: Length of the random suffix of ``tempfile.mkdtemp`` (older, owner-less names).
_MKDTEMP_SUFFIX = r"[a-z0-9_]{8}"


def _host() -> str:
    """This host's name restricted to characters that cannot clash with the name format."""
    return re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname()) or "localhost"


def make_temp_dir(parent: Path, prefix: str) -> Path:
    """A new empty folder ``<parent>/<prefix>pid<pid>@<host>~<random>`` (owner in the name)."""
    return Path(tempfile.mkdtemp(prefix=f"{prefix}pid{os.getpid()}@{_host()}~", dir=parent))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    except OSError:
        return True  # cannot tell: keep the folder
    return True


def _newest_mtime(folder: Path) -> float:
    """Latest modification time (s since the epoch) of ``folder`` and everything in it."""
    newest = folder.stat().st_mtime
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            try:
                newest = max(newest, os.stat(os.path.join(root, name)).st_mtime)
            except OSError:
                pass
    return newest


def is_stale(folder: Path, prefix: str, now: Optional[float] = None,
             stale_after: float = STALE_AFTER_SECONDS) -> bool:
    """Whether ``folder``, a temporary folder made with ``prefix``, is abandoned.

    Named by :func:`make_temp_dir` on this host: its owner pid is not running. Otherwise
    (another host, or an owner-less ``tempfile.mkdtemp`` name): nothing in it changed for
    ``stale_after`` seconds. Names that are neither are never stale.
    """
    name = folder.name
    if not name.startswith(prefix):
        return False
    rest = name[len(prefix):]
    owned = re.fullmatch(r"pid(\d+)@([A-Za-z0-9.-]+)~.+", rest)
    if owned and owned.group(2) == _host():
        return not _pid_alive(int(owned.group(1)))
    if not owned and not re.fullmatch(_MKDTEMP_SUFFIX, rest):
        return False
    now = time.time() if now is None else now
    try:
        return now - _newest_mtime(folder) > stale_after
    except OSError:
        return False


def remove_stale_temp_dirs(parent: Path, prefixes: Iterable[str]) -> list[Path]:
    """Remove the stale temporary folders (see :func:`is_stale`) directly in ``parent``.

    Returns the removed folders (logged); errors (a folder another process removes at the
    same time, permissions) are ignored.
    """
    parent = Path(parent)
    prefixes = tuple(prefixes)
    removed: list[Path] = []
    try:
        entries = list(parent.iterdir())
    except OSError:
        return removed
    for entry in entries:
        prefix = next((p for p in prefixes if entry.name.startswith(p)), None)
        if prefix is None or not entry.is_dir() or entry.is_symlink():
            continue
        if is_stale(entry, prefix):
            shutil.rmtree(entry, ignore_errors=True)
            if not entry.exists():
                logger.info("removed %s, a temporary folder left by an interrupted run", entry)
                removed.append(entry)
    return removed

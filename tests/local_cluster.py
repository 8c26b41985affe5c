"""Helpers to start a real multi-node Ray cluster on this machine (``ray start --block`` per
node), used by the two-node cluster test, the Ray join test and the cluster benchmark
(DESIGN 7.4). They are test and benchmark helpers, not library code, so they live beside the
tests (imported by name, as the tests' other helpers; the benchmark puts tests/ on its path).

Each node is a ``ray start --block`` child process; stopping it (SIGTERM) stops that node's
processes. Never ``ray stop``, which would stop every Ray instance of the machine.
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Sequence


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ray_cli() -> list[str]:
    """The ``ray`` command of this Python environment."""
    exe = Path(sys.executable).with_name("ray")
    return [str(exe)] if exe.exists() else [shutil.which("ray") or "ray"]


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``predicate`` every 0.5 s until it is true; TimeoutError naming ``what`` after
    ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.5)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def port_open(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:``port``."""
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def stop_nodes(procs: Sequence[subprocess.Popen]) -> None:
    """Stop ``ray start --block`` processes (SIGTERM, which stops the node's processes; killed
    after 60 s)."""
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()

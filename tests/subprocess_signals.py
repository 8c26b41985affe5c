"""Signal a command line started by a test and collect what it printed (shared by the tests of
the experiments CLI, the runtime CLI and the Ray join).

Imported by name, like ``local_cluster`` (pytest puts tests/ on ``sys.path``)."""
from __future__ import annotations

import subprocess
import time

#: The line our Ray start-up logs just before ``ray.init`` (alpa_serve.raycluster).
RAY_STARTING = "starting an embedded Ray instance"


def read_until(proc: subprocess.Popen, marker: str) -> list[str]:
    """stderr lines of ``proc`` up to and including the first one containing ``marker`` (all
    of them if it never comes)."""
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if marker in line:
            break
    return lines


def stop(proc: subprocess.Popen, sig: int, lines: list[str], timeout: float) -> str:
    """Send ``sig``, wait up to ``timeout`` s for the exit and return all stderr (``lines`` read
    so far plus the rest). The process is killed if it outlives this call (also on an
    exception), so a failing test leaves nothing behind."""
    try:
        proc.send_signal(sig)
        _, rest = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return "".join(lines) + rest


def signal_during_ray_start(proc: subprocess.Popen, sig: int, timeout: float = 120.0) -> str:
    """Send ``sig`` while ``proc``'s embedded Ray instance starts (ray.init takes seconds, so
    0.3 s after the start-up line it is still running); return all of stderr."""
    try:
        lines = read_until(proc, RAY_STARTING)
        time.sleep(0.3)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return stop(proc, sig, lines, timeout)

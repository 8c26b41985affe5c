"""Importing JAX for the measured path: the optional dependency and the host devices.

JAX is an optional extra (``pip install -e '.[real]'``); nothing on the default import path of
the package imports it. :func:`require_jax` imports it with a clear error when it is missing.

On CPU, JAX shows one device unless ``--xla_force_host_platform_device_count=N`` is in
``XLA_FLAGS`` **before JAX is first imported** in the process; then it shows N host devices.
They share the machine's cores: each runs its operators on one thread
(``--xla_cpu_multi_thread_eigen=false``), so N devices keep at most N cores busy and one
device's work does not spread over the cores another device is using. :func:`configure_host_devices`
sets both flags (and only adds to flags already set).
"""
from __future__ import annotations

import os
import re
import sys
from typing import Any

#: The extra that installs JAX.
INSTALL_HINT = "install the real extra: pip install -e '.[real]' (jax and jaxlib from PyPI)"

#: Environment variable naming a folder for JAX's persistent compilation cache (optional): the
#: profiler and the runtime's JAX back end compile the same stage functions, and a rerun or a
#: group manager then loads them instead of compiling again.
CACHE_ENV = "ALPA_SERVE_JAX_CACHE"

_COUNT_FLAG = "--xla_force_host_platform_device_count"
_THREAD_FLAG = "--xla_cpu_multi_thread_eigen"


class JaxMissingError(ImportError):
    """JAX is not installed."""


def jax_available() -> bool:
    """True if JAX can be imported (does not import it)."""
    import importlib.util

    return importlib.util.find_spec("jax") is not None


def require_jax() -> Any:
    """Import and return ``jax``; :class:`JaxMissingError` with the install command if it is
    not installed."""
    try:
        import jax
    except ImportError as exc:
        raise JaxMissingError(f"the measured path needs JAX ({exc}); {INSTALL_HINT}") from None
    return jax


def host_device_flags(flags: str, count: int, single_thread: bool = True) -> str:
    """``flags`` (an XLA_FLAGS value) with the host device count set to ``count`` and, if
    ``single_thread``, one thread per host device; other flags are kept."""
    out = re.sub(rf"{_COUNT_FLAG}=\S+", "", flags)
    if single_thread:
        out = re.sub(rf"{_THREAD_FLAG}=\S+", "", out)
    parts = out.split() + [f"{_COUNT_FLAG}={int(count)}"]
    if single_thread:
        parts.append(f"{_THREAD_FLAG}=false")
    return " ".join(parts)


def configure_host_devices(count: int, single_thread: bool = True) -> None:
    """Make JAX show ``count`` host (CPU) devices in this process, one thread each.

    Must run before JAX is first imported in the process. If JAX is already imported, nothing
    can change: a process that already shows at least ``count`` CPU devices is accepted (the
    caller uses the first ``count``), otherwise RuntimeError says what to do. Has no effect on
    the GPUs a GPU build shows.
    """
    if count < 1:
        raise ValueError(f"host device count must be >= 1, got {count}")
    if "jax" in sys.modules:
        import jax

        have = len(jax.devices("cpu"))
        if have < count:
            raise RuntimeError(
                f"JAX was imported in this process with {have} host device(s) before "
                f"{count} could be requested; set XLA_FLAGS={_COUNT_FLAG}={count} before the "
                f"first 'import jax' (or run the command in a fresh process)")
        return
    os.environ["XLA_FLAGS"] = host_device_flags(os.environ.get("XLA_FLAGS", ""), count,
                                                single_thread)


def enable_compile_cache(path: Any = None) -> None:
    """Use JAX's persistent compilation cache in ``path`` (default: ``$ALPA_SERVE_JAX_CACHE``;
    neither: nothing happens). Every compiled executable is stored, however quick."""
    folder = path or os.environ.get(CACHE_ENV)
    if not folder:
        return
    jax = require_jax()
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)

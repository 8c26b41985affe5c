"""Starting or joining Ray: the one connection path of the experiments runner and the runtime.

Both command lines (``python -m alpa_serve.experiments`` and ``python -m alpa_serve.runtime``)
take the same flags (:func:`add_arguments`): ``--ray-address`` (join a cluster; default: start
an embedded instance on this machine), ``--connect-timeout`` (seconds) and ``--num-cpus``
(embedded instance). :func:`connect` does the work; :func:`session` wraps it so that Ray is
shut down whatever happens.

Guarantees (docs/experiments.md, "Running"; docs/runtime.md, "Starting it"):

* Signals during start-up: starting an embedded instance, ``ray.init`` runs in the calling
  thread (Ray's GCS and raylet die with the thread that spawned them) with SIGINT and SIGTERM
  deferred and Ray's own SIGTERM handler (which exits with status 15) kept out; if a signal
  came, Ray is shut down once started and KeyboardInterrupt is raised. Joining runs
  ``ray.init`` in a helper thread (it starts no process, and Ray sets no handler from a
  thread) while the caller's thread waits with its own handlers in force; an interrupt lets
  the join finish, disconnects and re-raises. Either way no Ray process outlives the caller.
* Joining is bounded by ``connect_timeout`` seconds: a TCP check of ``host:port``, then
  ``ray.init``, abandoned after what is left of the timeout (against a port that accepts
  connections but is no healthy GCS, ``ray.init`` retries for minutes).
* Token authentication: ``ray start --head`` turns it on whenever this user has a token
  (``~/.ray/auth_token``, ``$RAY_AUTH_TOKEN`` or ``$RAY_AUTH_TOKEN_PATH``; an embedded
  ``ray.init()`` writes the file), but Ray enables it in a driver only for ``address="auto"``.
  When ``RAY_AUTH_MODE`` is unset and such a token exists, joining enables it for this process
  too, so that joining a default head started by the same user works (a client in token mode
  also joins a head without authentication). A head of another user needs its token:
  ``ray get-auth-token`` there, ``RAY_AUTH_TOKEN=...`` here.

Failures are :class:`RayConnectError` with a one-line message naming the flag to change.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterator, Optional

logger = logging.getLogger(__name__)

#: Default of ``--connect-timeout`` (seconds).
DEFAULT_CONNECT_TIMEOUT = 15.0


class RayConnectError(RuntimeError):
    """Ray could not be started or joined; the message is one line saying what to change."""


def _positive_seconds(value: float | str, what: str) -> float:
    """``value`` as float if finite and > 0; ValueError naming ``what`` otherwise."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number of seconds, got {value!r}") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{what} must be a finite number of seconds > 0, got {value!r}")
    return seconds


@dataclass(frozen=True)
class RayConnection:
    """Where Ray runs.

    Attributes:
        address: cluster to join (``host:port`` of the head's GCS, ``ray://host:port`` for Ray
            Client, ``auto`` for a cluster started on this machine); None starts an embedded
            instance.
        connect_timeout: seconds within which ``address`` must answer and ``ray.init`` finish
            (finite, > 0).
        num_cpus: CPUs of an embedded instance (None: all cores); ignored when joining.
        worker_niceness: nice value of an embedded instance's workers (None: Ray's default,
            15); set through ``RAY_worker_niceness`` unless that variable is set already.
    """

    address: Optional[str] = None
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    num_cpus: Optional[int] = None
    worker_niceness: Optional[int] = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "connect_timeout",
                           _positive_seconds(self.connect_timeout, "connect_timeout"))
        if self.num_cpus is not None and (isinstance(self.num_cpus, bool)
                                          or int(self.num_cpus) != self.num_cpus
                                          or self.num_cpus < 1):
            raise ValueError(f"num_cpus must be a whole number >= 1, got {self.num_cpus!r}")
        if self.address is not None and not str(self.address).strip():
            raise ValueError("address must not be empty (None starts an embedded instance)")


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------

def connect_timeout_arg(text: str) -> float:
    """argparse type of ``--connect-timeout``: a finite number of seconds > 0."""
    try:
        return _positive_seconds(text, "--connect-timeout")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def num_cpus_arg(text: str) -> int:
    """argparse type of ``--num-cpus``: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--num-cpus must be a whole number, got {text!r}") \
            from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"--num-cpus must be >= 1, got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser, address_alias: bool = False) -> None:
    """Add ``--ray-address``, ``--connect-timeout`` and ``--num-cpus`` to ``parser``
    (``address_alias``: also accept ``--address``, a deprecated spelling)."""
    names = ["--ray-address"] + (["--address"] if address_alias else [])
    parser.add_argument(*names, dest="ray_address", default=None, metavar="ADDR",
                        help="join an existing Ray cluster (host:port of the head's GCS, "
                             "ray://host:port, or auto) instead of starting one on this "
                             "machine" + ("; --address is a deprecated alias" if address_alias
                                          else ""))
    parser.add_argument("--connect-timeout", type=connect_timeout_arg,
                        default=DEFAULT_CONNECT_TIMEOUT, metavar="S",
                        help="seconds within which --ray-address must answer and ray.init "
                             f"complete (default {DEFAULT_CONNECT_TIMEOUT:g})")
    parser.add_argument("--num-cpus", type=num_cpus_arg, default=None, metavar="N",
                        help="CPUs of the embedded Ray instance (default: all cores)")


def connection_from_args(args: argparse.Namespace,
                         worker_niceness: Optional[int] = None) -> RayConnection:
    """The :class:`RayConnection` of parsed :func:`add_arguments` flags."""
    return RayConnection(address=args.ray_address, connect_timeout=args.connect_timeout,
                         num_cpus=args.num_cpus, worker_niceness=worker_niceness)


# ---------------------------------------------------------------------------
# Connecting
# ---------------------------------------------------------------------------

def check_reachable(address: str, timeout: float) -> None:
    """RayConnectError unless ``host:port`` (or ``ray://host:port``) accepts a TCP connection
    within ``timeout`` seconds; ``auto`` and ``local`` are not checked."""
    if address in ("auto", "local"):
        return
    target = address.split("://", 1)[1] if "://" in address else address
    host, sep, port_text = target.rpartition(":")
    if not sep or not host:
        raise RayConnectError(f"--ray-address {address!r} is not of the form host:port, "
                              f"ray://host:port or auto")
    try:
        port = int(port_text)
    except ValueError:
        raise RayConnectError(
            f"--ray-address {address!r}: port {port_text!r} is not a number") from None
    try:
        with socket.create_connection((host.strip("[]"), port), timeout=timeout):
            pass
    except (OSError, OverflowError) as exc:
        raise RayConnectError(
            f"cannot reach the Ray cluster at {address!r} within {timeout:g} s ({exc}); start "
            f"it with `ray start --head` on that machine, check the address (the GCS port, "
            f"6379 by default; 10001 for ray://), or drop --ray-address to start Ray on this "
            f"machine") from None


class _DropMessages(logging.Filter):
    """Drops log records whose message contains any of ``texts``."""

    def __init__(self, *texts: str) -> None:
        super().__init__()
        self.texts = texts

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(t in message for t in self.texts)


def enable_token_auth_if_available() -> bool:
    """Use token authentication in this process when ``RAY_AUTH_MODE`` is unset and a token
    is available (what Ray itself does for ``address="auto"``); True if it is on."""
    mode = os.environ.get("RAY_AUTH_MODE")
    if mode is not None:
        return mode.lower() == "token"
    try:  # Ray's own helper: sets RAY_AUTH_MODE=token and refreshes its cached config
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available,
        )
    except ImportError:  # a Ray without token authentication
        return False
    setup_log = logging.getLogger("ray._private.authentication.authentication_token_setup")
    quiet = _DropMessages("Token authentication is enabled")
    setup_log.addFilter(quiet)
    try:
        on = bool(maybe_enable_token_auth_if_token_available(warn_if_disabled=False))
    finally:
        setup_log.removeFilter(quiet)
    if on:
        logger.info("joining with token authentication (this user's Ray token; set "
                    "RAY_AUTH_TOKEN to use another, RAY_AUTH_MODE=disabled to turn it off)")
    return on


def _import_ray() -> Any:
    """``import ray``; when this is the first import, the driver's C++ failure-signal handler
    is left out, since this process's SIGINT/SIGTERM are handled by its own handlers (Ray's
    would print a crash report for a plain SIGTERM). Its workers, started later without the
    variable, keep the handler."""
    if "ray" in sys.modules:
        return sys.modules["ray"]
    key = "RAY_DISABLE_FAILURE_SIGNAL_HANDLER"  # read once, when ray is imported
    set_here = key not in os.environ
    if set_here:
        os.environ[key] = "1"
    try:
        import ray
    finally:
        if set_here:
            os.environ.pop(key, None)
    return ray


def _wait_quietly(thread: threading.Thread, timeout: Optional[float]) -> None:
    """Join ``thread`` (at most ``timeout`` s) while further SIGINT/SIGTERM only log: used
    after an interrupt, while Ray finishes starting so that it can be shut down."""
    in_main = threading.current_thread() is threading.main_thread()
    saved: dict[signal.Signals, Any] = {}
    if in_main:
        def note(signum: int, frame: object) -> None:
            logger.warning("still stopping Ray (signal %d ignored)", signum)

        for sig in (signal.SIGINT, signal.SIGTERM):
            saved[sig] = signal.getsignal(sig)
            signal.signal(sig, note)
    try:
        thread.join(timeout)
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def _join_in_thread(kwargs: dict[str, Any], deadline: float, address: str,
                    timeout: float) -> None:
    """``ray.init(**kwargs)`` joining ``address`` in a helper thread, waited for until
    ``deadline`` (monotonic s) and abandoned after it. Joining starts no process, so the
    helper thread may end (compare :func:`_start_embedded`), and Ray installs no signal handler
    from it. On KeyboardInterrupt during the wait: let it finish (until the deadline), shut
    Ray down, re-raise."""
    import ray

    outcome: dict[str, BaseException] = {}

    def target() -> None:
        try:
            ray.init(**kwargs)
        except BaseException as exc:  # reported by the caller's thread  # noqa: BLE001
            outcome["error"] = exc

    # Ray warns that it set no SIGTERM handler from a thread: intended here.
    worker_log = logging.getLogger("ray._private.worker")
    quiet = _DropMessages("SIGTERM handler is not set")
    worker_log.addFilter(quiet)
    thread = threading.Thread(target=target, name="ray-init", daemon=True)
    thread.start()
    try:
        # Short joins keep the caller's signal handlers running promptly.
        while thread.is_alive():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            thread.join(min(0.2, left))
    except KeyboardInterrupt:
        logger.warning("interrupted while joining the Ray cluster; disconnecting")
        _wait_quietly(thread, max(deadline - time.monotonic(), 0.0))
        if not thread.is_alive():
            ray.shutdown()
        raise
    finally:
        worker_log.removeFilter(quiet)
    if thread.is_alive():
        raise RayConnectError(
            f"the Ray cluster at {address!r} answers but ray.init did not complete within "
            f"{timeout:g} s (--connect-timeout): check that the address is the head's GCS port "
            f"(6379 by default; 10001 for ray://) and that the cluster is healthy; a head "
            f"using token authentication needs its token here (`ray get-auth-token` on the "
            f"head, then RAY_AUTH_TOKEN=...); or drop --ray-address to start Ray on this "
            f"machine")
    if "error" in outcome:
        error = outcome["error"]

        def reraise() -> None:
            raise error

        _raise_on_failure(reraise, address)


def _start_embedded(kwargs: dict[str, Any]) -> None:
    """``ray.init(**kwargs)`` starting an embedded instance, in the calling thread.

    Not in a helper thread: Ray starts its GCS and raylet with ``PR_SET_PDEATHSIG``, which
    fires when the creating *thread* exits, so they would be killed with the helper. In the
    main thread, SIGINT and SIGTERM are deferred while Ray starts (Ray's own SIGTERM handler,
    which exits with status 15, is not installed); if one came, Ray is shut down once started
    and KeyboardInterrupt is raised, so no Ray process outlives the caller.
    """
    import ray

    if threading.current_thread() is not threading.main_thread():
        _raise_on_failure(lambda: ray.init(**kwargs), None)
        return
    received: list[int] = []

    def defer(signum: int, frame: object) -> None:
        if not received:
            logger.warning("interrupted while Ray was starting; stopping it once started")
        received.append(signum)

    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    utils: Any = getattr(getattr(ray, "_private", None), "utils", None)
    ray_sets_handler = getattr(utils, "set_sigterm_handler", None)
    for sig in saved:
        signal.signal(sig, defer)
    if ray_sets_handler is not None:
        utils.set_sigterm_handler = lambda handler: None
    try:
        _raise_on_failure(lambda: ray.init(**kwargs), None)
    finally:
        if ray_sets_handler is not None:
            utils.set_sigterm_handler = ray_sets_handler
        for sig, handler in saved.items():
            signal.signal(sig, handler)
        if received:
            ray.shutdown()
    if received:
        raise KeyboardInterrupt(f"signal {received[0]} while Ray was starting")


def _raise_on_failure(init: Any, address: Optional[str]) -> None:
    """Run ``init()``; an exception other than KeyboardInterrupt becomes RayConnectError (one
    line) after ``ray.shutdown()``."""
    import ray

    try:
        init()
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - reported in one line
        ray.shutdown()
        where = f"join the Ray cluster at {address!r}" if address else "start Ray"
        text = " ".join(str(exc).split()) or type(exc).__name__
        raise RayConnectError(f"cannot {where}: {text}") from exc


def connect(conn: RayConnection) -> bool:
    """Join ``conn.address`` or start an embedded instance; True if this call connected
    (the caller must then call ``ray.shutdown()``; prefer :func:`session`), False if this
    process was connected already.

    Raises:
        RayConnectError: unreachable address, ``ray.init`` failing or not done within
            ``conn.connect_timeout`` seconds (joining).
        KeyboardInterrupt: interrupted during start-up; Ray was shut down.
    """
    ray = _import_ray()
    if ray.is_initialized():
        return False
    common = {"logging_level": logging.WARNING, "log_to_driver": True}
    if conn.address is not None:
        deadline = time.monotonic() + conn.connect_timeout
        check_reachable(conn.address, conn.connect_timeout)
        logger.info("joining the Ray cluster at %s", conn.address)
        if conn.address not in ("auto", "local"):  # Ray handles "auto" itself
            enable_token_auth_if_available()
        _join_in_thread(dict(common, address=conn.address), deadline, conn.address,
                        conn.connect_timeout)
        return True
    num_cpus = conn.num_cpus or os.cpu_count() or 1
    logger.info("starting an embedded Ray instance with %d CPUs", num_cpus)
    key = "RAY_worker_niceness"
    set_here = conn.worker_niceness is not None and key not in os.environ
    if set_here:
        os.environ[key] = str(conn.worker_niceness)  # read by the raylet when it starts
    try:
        _start_embedded(dict(common, num_cpus=num_cpus, include_dashboard=False))
    finally:
        if set_here:
            os.environ.pop(key, None)
    return True


@contextlib.contextmanager
def session(conn: RayConnection) -> Iterator[bool]:
    """``with session(conn) as started:``: :func:`connect`, and ``ray.shutdown()`` on exit
    (however it exits) if this call connected. ``started`` as :func:`connect` returns."""
    import ray

    started = connect(conn)
    try:
        yield started
    finally:
        if started:
            ray.shutdown()


__all__ = ["DEFAULT_CONNECT_TIMEOUT", "RayConnectError", "RayConnection", "add_arguments",
           "check_reachable", "connect", "connect_timeout_arg", "connection_from_args",
           "enable_token_auth_if_available", "num_cpus_arg", "session"]

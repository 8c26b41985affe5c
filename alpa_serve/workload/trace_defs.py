"""Definitions of the Azure Functions traces shared by the loader and the stand-in generators.

The loader (:mod:`alpa_serve.workload.trace`) reads the raw formats defined here and the
stand-in generators (:mod:`alpa_serve.workload.standin`) write them; both import this module
and neither imports the other's internals (the loader calls the generators, never the reverse).
Also here: the one parser of ``"day.hour.minute"`` time strings (and :class:`TraceWindow`, a
window parsed once), the trace errors and the cache directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# A trace source named ``<format><STANDIN_SUFFIX>`` is the generated stand-in of the format. The
# suffix is defined on the ground floor (alpa_serve.results: the result rows and the figures
# tell stand-in rows by it) and re-exported here for the trace code.
from alpa_serve.results import STANDIN_SUFFIX

__all__ = [
    "MINUTES_PER_DAY", "SECONDS_PER_DAY", "MAF_DAYS", "MAF1_FILE_TEMPLATE", "MAF1_COLUMNS",
    "MAF2_FILE_NAME", "MAF2_COLUMNS", "STANDIN_SUFFIX", "ENV_CACHE",
    "TraceError", "TraceFormatError", "TraceWindowError", "TraceNotFoundError",
    "default_cache_dir", "parse_time", "TraceWindow",
]

MINUTES_PER_DAY = 1440
SECONDS_PER_DAY = 86400
#: Days of both datasets.
MAF_DAYS = 14

#: MAF1 (Azure Functions 2019): one CSV per day with per-minute invocation counts.
MAF1_FILE_TEMPLATE = "invocations_per_function_md.anon.d{day:02d}.csv"
MAF1_COLUMNS = ["HashOwner", "HashApp", "HashFunction", "Trigger"] + \
    [str(i) for i in range(1, MINUTES_PER_DAY + 1)]
#: MAF2 (Azure Functions 2021): one CSV of invocations (seconds since the trace start).
MAF2_FILE_NAME = "AzureFunctionsInvocationTraceForTwoWeeksJan2021.txt"
MAF2_COLUMNS = ["app", "func", "end_timestamp", "duration"]

#: Environment variable overriding the root of the trace cache.
ENV_CACHE = "ALPA_SERVE_CACHE"


class TraceError(ValueError):
    """Base class of trace errors that are about values (format, window)."""


class TraceFormatError(TraceError):
    """A trace file exists but does not have the expected format."""


class TraceWindowError(TraceError):
    """A replay window or time string is malformed, outside the trace, or ends before it
    starts."""


class TraceNotFoundError(FileNotFoundError):
    """Trace files are missing; the message says what was expected and how to use a stand-in."""


def default_cache_dir() -> Path:
    """Trace cache directory: ``$ALPA_SERVE_CACHE/traces`` if set, else
    ``~/.cache/alpa_serve/traces``. Generated files live there and are never committed."""
    root = os.environ.get(ENV_CACHE)
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "alpa_serve"
    return base / "traces"


def parse_time(text: str) -> int:
    """Seconds since the trace start for a ``"day.hour.minute"`` string (day 0-based).

    ``"0.0.0"`` is the trace start, ``"0.1.0"`` one hour later, ``"13.23.60"`` the end of
    day 14. Hours may be 0..24 and minutes 0..60 (so day ends can be written either way).
    Raises :class:`TraceWindowError` (a ``ValueError``) naming the bad string otherwise.
    """
    parts = str(text).strip().split(".")
    if len(parts) != 3 or not all(p.strip().isdigit() for p in parts):
        raise TraceWindowError(f"time {text!r} is not 'day.hour.minute' with non-negative "
                               f"integers (e.g. '0.1.0' or '13.23.60')")
    d, h, m = (int(p) for p in parts)
    if h > 24 or m > 60:
        raise TraceWindowError(f"time {text!r} is not 'day.hour.minute' with hour 0..24 and "
                               f"minute 0..60 (e.g. '0.1.0' or '13.23.60')")
    return d * SECONDS_PER_DAY + h * 3600 + m * 60


@dataclass(frozen=True)
class TraceWindow:
    """A replay window parsed once: its ``"day.hour.minute"`` strings, which stay the window's
    identity (rows, case JSON and ids, replay names), and their seconds since the trace start.

    Made by :meth:`parse`; it checks the strings only (:class:`TraceWindowError` for a malformed
    one), not the order of start and end or the trace's length: the users do.
    """

    start: str
    end: str
    start_seconds: int
    end_seconds: int

    @classmethod
    def parse(cls, start: str, end: str) -> TraceWindow:
        """The window ``[start, end)`` of two ``"day.hour.minute"`` strings (:func:`parse_time`)."""
        return cls(str(start), str(end), parse_time(start), parse_time(end))

    @property
    def strings(self) -> tuple[str, str]:
        """``(start, end)``, the window as cases and rows write it."""
        return (self.start, self.end)

    @property
    def duration(self) -> int:
        """Length in seconds (``end_seconds - start_seconds``)."""
        return self.end_seconds - self.start_seconds

"""Result TSV files: one header line, then one row per finished case (DESIGN 7.3).

Rows are appended as cases finish, each flushed and fsync'ed, so a crash loses
at most the row being written. A row is a plain tab-joined line of the
:data:`COLUMNS` values (no quoting: values never contain tabs or newlines; the
placement column holds compact JSON). Floats are written with ``repr`` so equal
values always give equal text.
"""

from __future__ import annotations

import csv
import logging
import math
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Union

logger = logging.getLogger(__name__)

#: Column order of every result TSV (DESIGN 7.3 plus case bookkeeping).
COLUMNS: tuple[str, ...] = (
    "exp_name", "workload", "model_set", "num_devices", "num_models", "mem_budget",
    "total_rate", "rate_scale", "cv", "cv_scale", "slo_scale", "duration", "policy",
    "goodput", "latency_mean", "latency_p99", "num_requests", "solver_seconds",
    "placement", "train_window", "test_window", "train_workload", "train_seed",
    "profile", "case_id",
)

#: Columns that may differ between two runs of the same case.
TIMING_COLUMNS: tuple[str, ...] = ("solver_seconds",)

PathLike = Union[str, os.PathLike]


class TsvFormatError(ValueError):
    """A result TSV cannot be read; the message names the file and line number."""


def format_value(value: Any) -> str:
    """Text of one TSV cell (``None`` -> empty, floats via ``repr``)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return repr(value)
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalar
        return format_value(value.item())
    text = str(value)
    if "\t" in text or "\n" in text or "\r" in text:
        raise ValueError(f"TSV value contains a tab or newline: {text[:80]!r}")
    return text


def format_row(row: Mapping[str, Any], columns: Iterable[str] = COLUMNS) -> str:
    """One TSV line (with newline) of ``row``; every column must be present."""
    columns = tuple(columns)
    missing = [c for c in columns if c not in row]
    if missing:
        raise KeyError(f"row lacks the columns {missing}")
    return "\t".join(format_value(row[c]) for c in columns) + "\n"


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def append_row(path: PathLike, row: Mapping[str, Any], columns: Iterable[str] = COLUMNS) -> None:
    """Append ``row`` to ``path``, writing the header first if the file is new or empty.

    The line is flushed and fsync'ed before returning.
    """
    path = Path(path)
    columns = tuple(columns)
    line = format_row(row, columns)
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists() or path.stat().st_size == 0
    if not new:
        header = _read_header(path)
        if header != list(columns):
            raise TsvFormatError(
                f"{path}:1: header differs from this version's columns "
                f"(file: {header}, expected: {list(columns)}); "
                f"write to another --out folder or move the file away")
    with open(path, "a", encoding="utf-8", newline="") as f:
        if new:
            f.write("\t".join(columns) + "\n")
        f.write(line)
        f.flush()
        os.fsync(f.fileno())
    if new:
        _fsync_dir(path.parent)


def _read_header(path: Path) -> list[str]:
    with open(path, "r", encoding="utf-8", newline="") as f:
        first = f.readline()
    return first.rstrip("\n").rstrip("\r").split("\t")


def read_rows(path: PathLike, columns: Optional[Iterable[str]] = None) -> list[dict[str, str]]:
    """All rows of ``path`` as dicts of strings (header keys).

    Raises:
        FileNotFoundError: the file does not exist.
        TsvFormatError: the header is missing or lacks ``columns``, or a row has a
            different number of fields than the header (message: ``file:line: ...``).
    """
    path = Path(path)
    rows: list[dict[str, str]] = []
    with open(path, "r", encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header: Optional[list[str]] = None
        for lineno, fields in enumerate(reader, start=1):
            if header is None:
                header = fields
                if not header or header == [""]:
                    raise TsvFormatError(f"{path}:{lineno}: empty header line")
                if columns is not None:
                    missing = [c for c in columns if c not in header]
                    if missing:
                        raise TsvFormatError(f"{path}:{lineno}: header lacks columns {missing}")
                continue
            if not fields or fields == [""]:
                raise TsvFormatError(f"{path}:{lineno}: unreadable row: empty line")
            if len(fields) != len(header):
                shown = "\t".join(fields)
                raise TsvFormatError(
                    f"{path}:{lineno}: unreadable row: {len(fields)} fields, header has "
                    f"{len(header)} ({shown[:120]!r})")
            rows.append(dict(zip(header, fields)))
    if header is None:
        raise TsvFormatError(f"{path}:1: file is empty (no header)")
    return rows


def repair_partial_tail(path: PathLike) -> bool:
    """Drop an incomplete last line (no trailing newline), left by a crash mid-write.

    Returns True if the file was changed. Rows are written with one ``write`` of
    a whole line followed by fsync, so only the very last line can be partial.
    """
    path = Path(path)
    if not path.exists():
        return False
    with open(path, "rb") as f:
        data = f.read()
    if not data or data.endswith(b"\n"):
        return False
    cut = data.rfind(b"\n") + 1
    logger.warning("%s: dropping an incomplete last line (%d bytes) left by an interrupted run",
                   path, len(data) - cut)
    with open(path, "r+b") as f:
        f.truncate(cut)
        f.flush()
        os.fsync(f.fileno())
    return True


def finished_case_ids(path: PathLike) -> dict[str, str]:
    """``case_id -> profile fingerprint`` of the rows already in ``path`` (empty if none)."""
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return {}
    return {r["case_id"]: r["profile"] for r in read_rows(path, columns=("case_id", "profile"))}


def remove_rows(path: PathLike, case_ids: set[str]) -> int:
    """Rewrite ``path`` without the rows whose case_id is in ``case_ids``; returns the count.

    The rewrite goes to a temporary file first and replaces the original atomically.
    """
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return 0
    with open(path, "r", encoding="utf-8", newline="") as f:
        lines = f.readlines()
    read_rows(path, columns=("case_id",))  # validate before rewriting
    header = lines[0].rstrip("\n").split("\t")
    idx = header.index("case_id")
    kept = [lines[0]]
    removed = 0
    for line in lines[1:]:
        if line.rstrip("\n").split("\t")[idx] in case_ids:
            removed += 1
        else:
            kept.append(line)
    if removed:
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.writelines(kept)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    return removed


def rows_without_timing(path: PathLike) -> list[tuple[str, ...]]:
    """Rows of ``path`` with the timing columns blanked, sorted (for comparing runs)."""
    out = []
    for row in read_rows(path):
        out.append(tuple("" if k in TIMING_COLUMNS else v for k, v in row.items()))
    return sorted(out)

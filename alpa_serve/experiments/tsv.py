"""Writing and checking result TSV files: one header line, then one row per finished case
(DESIGN 7.3). The columns, the parser and the error type are those of :mod:`alpa_serve.results`
(shared with the plotting code).

Rows are appended as cases finish, each flushed and fsync'ed, so a crash loses
at most the row being written. A row is a plain tab-joined line of the
:data:`COLUMNS` values (no quoting: values never contain tabs or newlines; the
placement column holds compact JSON). Floats are written with ``repr`` so equal
values always give equal text.

A file is only ever changed after :func:`inspect_result_file` has recognised it as a
result file of this runner (UTF-8 text whose first line is the header): files written
by anything else are refused untouched.
"""

from __future__ import annotations

import codecs
import io
import logging
import math
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

from alpa_serve.results import (
    COLUMNS,
    PREVIOUS_COLUMNS,
    TIMING_COLUMNS,
    PathLike,
    TsvFormatError,
    parse_table,
    read_table,
)

logger = logging.getLogger(__name__)

__all__ = ["COLUMNS", "TIMING_COLUMNS", "TsvFormatError", "PreviousVersionError",
           "format_value", "format_row",
           "append_row", "read_rows", "ResultFileState", "inspect_result_file",
           "repair_partial_tail", "finished_case_ids", "rows_without_timing"]


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
    with open(path, "rb") as f:
        first = f.readline()
    try:
        text = first.decode("utf-8")
    except UnicodeDecodeError:
        raise TsvFormatError(f"{path}:1: not a text file (not UTF-8); it was not written by "
                             f"this runner: move it away or use another --out folder") from None
    return text.rstrip("\n").rstrip("\r").split("\t")


def read_rows(path: PathLike, columns: Optional[Iterable[str]] = None) -> list[dict[str, str]]:
    """All rows of ``path`` as dicts of strings (header keys).

    Raises:
        FileNotFoundError: the file does not exist.
        TsvFormatError: the file is not UTF-8 text, the header is missing or lacks
            ``columns``, or a row is blank or has a different number of fields than the
            header (message: ``file:line: ...``).
    """
    return read_table(path, columns or ()).dicts()


@dataclass(frozen=True)
class ResultFileState:
    """What an existing result file holds (see :func:`inspect_result_file`).

    Attributes:
        path: the file.
        rows: its complete rows (header keys), in file order.
        lines: the 1-based line number of each row.
        partial_tail: bytes of an incomplete last line (a write cut short by a crash;
            :func:`repair_partial_tail` drops them), 0 if none.
    """

    path: Path
    rows: list[dict[str, str]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    partial_tail: int = 0

    def duplicates(self) -> dict[str, list[int]]:
        """``case_id -> line numbers`` of the case ids that have more than one row."""
        where: dict[str, list[int]] = defaultdict(list)
        for row, line in zip(self.rows, self.lines):
            where[row["case_id"]].append(line)
        return {cid: lines for cid, lines in where.items() if len(lines) > 1}


class PreviousVersionError(TsvFormatError):
    """A result file of this runner's previous version (its header lacks the ``search``
    column, DESIGN 7.3): readable, but rows of this version are never appended to it."""


def _not_ours(path: Path, why: str) -> TsvFormatError:
    return TsvFormatError(f"{path}: {why}, so it is not a result file of this runner; it was "
                          f"left unchanged: move it away or write to another --out folder")


def inspect_result_file(path: PathLike, columns: Iterable[str] = COLUMNS) -> ResultFileState:
    """Check an existing result file without changing it.

    A missing or empty file gives an empty state. A file is recognised as ours when it is
    UTF-8 text without NUL bytes whose first line is the ``columns`` header (a file cut
    short while its header was written, i.e. a prefix of the header, counts as ours).

    Raises:
        PreviousVersionError: the file has the header of the previous version
            (:data:`~alpa_serve.results.PREVIOUS_COLUMNS`); the file is untouched.
        TsvFormatError: the file is not ours (binary, another header, e.g. a TSV of the
            original artifact) or one of its complete rows is unreadable; the message
            names the file (and line) and the file is untouched.
        OSError: the file cannot be read.
    """
    path = Path(path)
    columns = tuple(columns)
    if not path.exists():
        return ResultFileState(path)
    if not path.is_file():
        raise _not_ours(path, "it is not a regular file")
    data = path.read_bytes()
    if not data:
        return ResultFileState(path)
    cut = data.rfind(b"\n") + 1
    complete, tail = data[:cut], data[cut:]
    if b"\0" in data:
        raise _not_ours(path, "it holds NUL bytes (not text)")
    try:
        text = complete.decode("utf-8")
        # final=False: a multi-byte character cut by a crash is not an error.
        codecs.getincrementaldecoder("utf-8")().decode(tail, final=False)
    except UnicodeDecodeError:
        raise _not_ours(path, "it is not UTF-8 text") from None
    header = "\t".join(columns)
    if not complete:
        if (header + "\n").encode("utf-8").startswith(tail):
            return ResultFileState(path, partial_tail=len(tail))
        raise _not_ours(path, f"its first line is not this runner's header (it starts with "
                              f"{tail[:60].decode('utf-8', 'replace')!r})")
    first = text.split("\n", 1)[0]
    if first != header and columns == COLUMNS and first == "\t".join(PREVIOUS_COLUMNS):
        raise PreviousVersionError(
            f"{path}: a result file of the previous version (no column 'search'); rows of this "
            f"version are not appended to it: rerun with --force (the old file is kept as "
            f"{path.name}.bak) or use another --out folder")
    if first != header:
        raise _not_ours(path, f"its header differs from this runner's columns (file starts "
                              f"with {first[:60]!r})")
    table = parse_table(io.StringIO(text, newline=""), path, columns)
    return ResultFileState(path, table.dicts(), table.lines, len(tail))


def repair_partial_tail(path: PathLike, columns: Iterable[str] = COLUMNS) -> bool:
    """Drop an incomplete last line (no trailing newline), left by a crash mid-write.

    Returns True if the file was changed. Rows are written with one ``write`` of
    a whole line followed by fsync, so only the very last line can be partial.
    The file is checked first (:func:`inspect_result_file`): a file that is not a result
    file of this runner raises TsvFormatError and is not changed.
    """
    path = Path(path)
    state = inspect_result_file(path, columns)
    if not state.partial_tail:
        return False
    size = path.stat().st_size
    cut = size - state.partial_tail
    logger.warning("%s: dropping an incomplete last line (%d bytes) left by an interrupted run",
                   path, state.partial_tail)
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


def rows_without_timing(path: PathLike) -> list[tuple[str, ...]]:
    """Rows of ``path`` with the timing columns blanked, sorted (for comparing runs)."""
    out = []
    for row in read_rows(path):
        out.append(tuple("" if k in TIMING_COLUMNS else v for k, v in row.items()))
    return sorted(out)

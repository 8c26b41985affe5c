"""The result files: the one owner of the result TSV format (DESIGN 7.3): the row schema
(columns), where each figure's rows go, and how a TSV is read and written.

Shared by the experiments package, which writes the files, and the plotting and comparison
packages, which read them; it depends on the standard library only (pandas is imported on use,
by :func:`read_results` alone), so that plotting never imports the experiment machinery
(policies, simulator, Ray).
What each sweep (``exp_name``) is, its x column, labels and marker rule, is in
:mod:`alpa_serve.sweeps` beside this module, likewise standard library only.

A result TSV is one header line of :data:`COLUMNS` and one tab-separated row per finished
case. :func:`parse_table` splits a file into rows and reports any damage as a
:class:`TsvFormatError` naming the file and the 1-based line (the header is line 1).

Writing (:func:`append_row`): rows are appended as cases finish, each flushed and fsync'ed, so
a crash loses at most the row being written. A row is a plain tab-joined line of the
:data:`COLUMNS` values (no quoting: values never contain tabs or newlines; the placement
column holds compact JSON). Floats are written with ``repr`` so equal values always give equal
text. A file is only ever changed after :func:`inspect_result_file` has recognised it as a
result file of this runner (UTF-8 text whose first line is the header): files written by
anything else are refused untouched.

Reading for figures (:func:`read_results`): a file into a pandas DataFrame with the numeric
columns converted, every damaged row reported with its file and line.
"""
from __future__ import annotations

import codecs
import csv
import io
import logging
import math
import os
from collections import defaultdict
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Optional, Union

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]

#: Column order of every result TSV (DESIGN 7.3 plus case bookkeeping).
COLUMNS: tuple[str, ...] = (
    "exp_name", "workload", "model_set", "num_devices", "num_models", "mem_budget",
    "total_rate", "rate_scale", "cv", "cv_scale", "slo_scale", "duration", "policy",
    "goodput", "latency_mean", "latency_p99", "num_requests", "solver_seconds",
    "placement", "train_window", "test_window", "train_workload", "train_seed",
    "profile", "search", "case_id",
)

#: The previous version's columns (before ``search``): a file with this header is a result
#: file of an older runner; the runner refuses to append to it (``--force`` moves it to a
#: backup) and the readers take its rows as exact (DESIGN 7.3, 7.8).
PREVIOUS_COLUMNS: tuple[str, ...] = tuple(c for c in COLUMNS if c != "search")

# ------------------------------------------------------------------------------------------
# Search modes (DESIGN 7.8): the one home of the vocabulary
# ------------------------------------------------------------------------------------------
#: The placement search of the case: ``"exact"`` (the default, DESIGN 6: the search policies
#: train on the whole training workload) or ``"fast"`` (opt-in: the search policies train on
#: some replay windows of a trace case's training workload; the placement is evaluated on the
#: whole test workload as always).
SEARCH_EXACT = "exact"
SEARCH_FAST = "fast"
SEARCH_MODES: tuple[str, ...] = (SEARCH_EXACT, SEARCH_FAST)

#: The fast search's constants (DESIGN 7.8; the rule is
#: ``alpa_serve.experiments.fast_search.select_training_windows``): the share of every replay
#: window of a training replay that the fast search keeps (the window's middle part), and the
#: shortest replay window it reduces (s): replays in shorter windows (MAF1's 60 s) are kept
#: whole.
FAST_WINDOW_SHARE = 0.0625
FAST_MIN_WINDOW_SECONDS = 3600.0

#: What every figure drawn from fast rows says (DESIGN 7.5, 7.8).
FAST_SEARCH_NOTE = (
    f"Beta placed by the opt-in fast search: trained on the middle "
    f"{Fraction(FAST_WINDOW_SHARE).limit_denominator(1000)} of "
    f"every MAF2 replay window ({FAST_WINDOW_SHARE * 5400:g} s of each 5400 s window), "
    f"evaluated on the whole day (DESIGN 7.8)")


def row_search(row: dict[str, str]) -> str:
    """The search mode of a result row; a row without the ``search`` column (a file of the
    previous version) or with an empty value is exact."""
    return row.get("search", "") or SEARCH_EXACT


#: A trace source named ``<format><STANDIN_SUFFIX>`` (``maf1-standin``) is the generated
#: stand-in of the format (DESIGN 4.3). Defined here, on the ground floor, because the result
#: rows name their workload by it and the figures and the comparison tell stand-in rows by it;
#: the trace loader (:mod:`alpa_serve.workload.trace_defs`) imports it from here, so that
#: plotting needs no workload module.
STANDIN_SUFFIX = "-standin"

#: Columns that hold numbers (empty where a column does not apply to the case's workload;
#: ``nan`` where a statistic is undefined).
NUMERIC_COLUMNS: tuple[str, ...] = (
    "num_devices", "num_models", "mem_budget", "total_rate", "rate_scale", "cv", "cv_scale",
    "slo_scale", "duration", "goodput", "latency_mean", "latency_p99", "num_requests",
    "solver_seconds",
)

#: Columns that may differ between two runs of the same case (all others are determined by
#: the case and the profile).
TIMING_COLUMNS: tuple[str, ...] = ("solver_seconds",)


# ------------------------------------------------------------------------------------------
# Where each figure's rows go (file names relative to the figure's data folder)
# ------------------------------------------------------------------------------------------
#: Figure -> the folder its gen_data script writes its TSVs to (beside the scripts in
#: osdi23_artifact/); the original artifact uses the same folder names.
DATA_DIRS: dict[str, str] = {
    "fig11": "sec6_2_data",
    "fig12": "sec6_3_data",
    "fig13": "sec6_4_data",
    "fig14": "sec6_5_data",
}

#: Fig. 11 columns, left to right: (model set, trace). Each column has its own TSV holding
#: its four sweeps (told apart by ``exp_name``; the sweeps are in :mod:`alpa_serve.sweeps`).
#: The one list of the columns and their order: the experiment grids
#: (``alpa_serve.experiments.suites.FIG11_COLUMNS``) are checked against it and ordered by it.
FIG11_COLUMNS: tuple[tuple[str, str], ...] = (
    ("S1", "maf1"), ("S2", "maf1"), ("S3", "maf1"),
    ("S1", "maf2"), ("S2", "maf2"), ("S3", "maf2"),
)
#: Fig. 12: all sweeps of the large-model experiment in one file.
FIG12_FILE = "large_model_exp.tsv"
#: Fig. 14: both sweeps of the ablation in one file.
FIG14_FILE = "ablation.tsv"


def fig11_title(model_set: str, trace: str) -> str:
    """Panel title of a Fig. 11 column, e.g. ``S1@MAF1``."""
    return f"{model_set}@{trace.upper()}"


def fig11_file(model_set: str, trace: str) -> str:
    """TSV file of a Fig. 11 column, e.g. ``S1_maf1.tsv``."""
    return f"{model_set}_{trace}.tsv"


#: Glob of the Fig. 13 pair files (see :func:`fig13_file`).
FIG13_PATTERN = "robust_pair*.tsv"


def fig13_file(pair: int) -> str:
    """TSV file of the Fig. 13 (train, test) window pair number ``pair`` (1-based)."""
    return FIG13_PATTERN.replace("*", str(pair))


# ------------------------------------------------------------------------------------------
# Parsing
# ------------------------------------------------------------------------------------------
class TsvFormatError(ValueError):
    """A result TSV that cannot be read or used; the message names the file (and line)."""


def where(path: PathLike, line: int | None) -> str:
    """``file:line`` (or the file alone) for error messages."""
    return f"{path}:{line}" if line is not None else str(path)


@dataclass(frozen=True)
class Table:
    """The parsed lines of a TSV.

    Attributes:
        header: the column names (stripped of surrounding white space).
        header_line: line number of the header.
        rows: the fields of each row, in file order (as many as the header has).
        lines: the line number each row ends on.
    """

    header: list[str]
    header_line: int
    rows: list[list[str]]
    lines: list[int]

    def dicts(self) -> list[dict[str, str]]:
        """The rows as ``{column: text}``."""
        return [dict(zip(self.header, fields)) for fields in self.rows]


def parse_table(lines: Iterable[str], path: PathLike, required: Iterable[str] = (),
                skip_blank_lines: bool = False) -> Table:
    """Split the text ``lines`` of the TSV ``path`` (used in messages) into a :class:`Table`.

    Fields are tab-separated; a field may be quoted as the csv module writes it (a JSON
    placement written by pandas, say); the runner itself never quotes. Blank lines are
    skipped with ``skip_blank_lines`` and are an error otherwise (the runner never writes
    one). Raises :class:`TsvFormatError` naming the file and line for: no header, a header
    that lacks a ``required`` column, a blank line (unless skipped), a row with another number
    of fields than the header (typically a row cut short by an interrupted run).
    """
    header: list[str] | None = None
    header_line = 0
    rows: list[list[str]] = []
    numbers: list[int] = []
    reader = csv.reader(lines, delimiter="\t")
    try:
        for fields in reader:
            blank = not fields or all(not f.strip() for f in fields)
            if blank and skip_blank_lines:
                continue
            if header is None:
                if blank:
                    raise TsvFormatError(f"{where(path, reader.line_num)}: empty header line")
                header, header_line = [h.strip() for h in fields], reader.line_num
                missing = [c for c in required if c not in header]
                if missing:
                    raise TsvFormatError(
                        f"{where(path, header_line)}: missing column(s) {', '.join(missing)}; "
                        f"header is: {' '.join(header)}")
                continue
            if blank:
                raise TsvFormatError(f"{where(path, reader.line_num)}: unreadable row: "
                                     f"empty line")
            if len(fields) != len(header):
                shown = "\t".join(fields)
                raise TsvFormatError(
                    f"{where(path, reader.line_num)}: unreadable row: expected {len(header)} "
                    f"tab-separated fields (as in the header on line {header_line}), found "
                    f"{len(fields)} ({shown[:120]!r}); a row cut short by an interrupted run "
                    f"can be deleted: a rerun recomputes it (finished cases are skipped)")
            rows.append(fields)
            numbers.append(reader.line_num)
    except csv.Error as e:
        raise TsvFormatError(f"{where(path, reader.line_num)}: {e}") from e
    if header is None:
        raise TsvFormatError(f"{path}: empty file (no header line)")
    return Table(header, header_line, rows, numbers)


def read_table(path: PathLike, required: Iterable[str] = (),
               skip_blank_lines: bool = False) -> Table:
    """:func:`parse_table` of the file ``path`` (UTF-8).

    Raises:
        FileNotFoundError: the file does not exist.
        TsvFormatError: the file is not UTF-8 text or does not parse.
    """
    path = Path(path)
    try:
        with open(path, "r", encoding="utf-8", newline="") as f:
            return parse_table(f, path, required, skip_blank_lines)
    except UnicodeDecodeError as e:
        raise TsvFormatError(f"{path}: not a UTF-8 text file ({e})") from e


# ------------------------------------------------------------------------------------------
# Writing and checking (the runner's side)
# ------------------------------------------------------------------------------------------
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
        seen: dict[str, list[int]] = defaultdict(list)
        for row, line in zip(self.rows, self.lines):
            seen[row["case_id"]].append(line)
        return {cid: lines for cid, lines in seen.items() if len(lines) > 1}


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


# ------------------------------------------------------------------------------------------
# Reading into a DataFrame (the figures' and the comparison's side; pandas imported on use)
# ------------------------------------------------------------------------------------------
#: Columns every figure needs, whatever its x variable.
REQUIRED_COLUMNS = ("exp_name", "workload", "policy", "goodput")

#: Name of the column holding each row's line number in its file (for later error messages).
LINE_COLUMN = "_line"

#: Name of the column holding the file a row came from.
FILE_COLUMN = "_file"


def read_results(path: PathLike, required: Iterable[str] = REQUIRED_COLUMNS
                 ) -> pd.DataFrame:
    """Read one results TSV into a DataFrame with numeric columns converted.

    Adds ``_line`` (1-based line number of the row in the file; the header is line 1) and
    ``_file`` columns. Raises :class:`TsvFormatError` naming the file and line for: an empty or
    undecodable file, a missing required column, a row with the wrong number of fields, a
    non-numeric value in a numeric column (``nan`` is accepted), an empty goodput, or a goodput
    outside [0, 1]. Rows whose goodput is ``nan`` are skipped with a logged warning.
    A header-only file gives an empty frame (an experiment that has not finished any case yet).
    """
    import pandas as pd

    path = Path(path)
    # Blank lines carry no case; pandas' own tokenizer is not used because it silently pads
    # short rows with NaN, which would hide a row truncated by a crash.
    table = read_table(path, tuple(required), skip_blank_lines=True)
    lines = table.lines
    df = pd.DataFrame(table.rows, columns=table.header)
    df[LINE_COLUMN] = lines
    df[FILE_COLUMN] = str(path)
    goodput_text = df["goodput"].astype(str).str.strip()
    for col in NUMERIC_COLUMNS:
        if col not in df.columns:  # a TSV of an older runner with fewer columns still loads
            continue
        text = df[col].str.strip()
        values = pd.to_numeric(text.where(text != ""), errors="coerce")
        # "nan" is a number the runner writes on purpose (e.g. a latency with no good
        # request); anything else that does not parse is a damaged row.
        bad = values.isna() & (text != "") & (text.str.lower() != "nan")
        if bad.any():
            i = bad.to_numpy().nonzero()[0][0]
            raise TsvFormatError(
                f"{where(path, lines[i])}: column {col} holds {df[col].iloc[i]!r}, "
                "which is not a number")
        df[col] = values.astype(float)
    for col in ("exp_name", "workload", "policy"):
        if col in df.columns:
            df[col] = df[col].str.strip()

    empty = goodput_text == ""
    if empty.any():
        i = empty.to_numpy().nonzero()[0][0]
        raise TsvFormatError(f"{where(path, lines[i])}: goodput is empty")
    undefined = df["goodput"].isna()
    if undefined.any():
        # A case whose goodput is undefined (no request counted) has no point to draw; it is
        # skipped rather than failing the whole figure.
        logger.warning("%s: skipping %d row(s) with goodput nan (lines %s)", path,
                       int(undefined.sum()), ", ".join(map(str, df.loc[undefined, LINE_COLUMN])))
        df = df[~undefined].reset_index(drop=True)
    out = (df["goodput"] < 0) | (df["goodput"] > 1 + 1e-9)
    if out.any():
        i = out.to_numpy().nonzero()[0][0]
        raise TsvFormatError(
            f"{where(path, int(df[LINE_COLUMN].iloc[i]))}: goodput {df['goodput'].iloc[i]} "
            "is outside [0, 1] "
            "(goodput is the fraction of requests that met their SLO, not a percentage)")
    return df

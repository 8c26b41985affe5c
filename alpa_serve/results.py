"""The result files: columns of a result TSV, where each figure's rows go, and how a TSV is
parsed (DESIGN 7.3).

Shared by the experiments package, which writes the files, and the plotting package, which
reads them; it depends on the standard library only, so that plotting never imports the
experiment machinery (policies, simulator, Ray).
What each sweep (``exp_name``) is, its x column, labels and marker rule, is in
:mod:`alpa_serve.sweeps` beside this module, likewise standard library only.

A result TSV is one header line of :data:`COLUMNS` and one tab-separated row per finished
case. :func:`parse_table` splits a file into rows and reports any damage as a
:class:`TsvFormatError` naming the file and the 1-based line (the header is line 1).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Union

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

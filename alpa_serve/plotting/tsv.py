"""Reading the experiment TSVs (DESIGN 7.3) for plotting.

The runner appends one row per finished case, so a TSV can end in a row cut short by a crash or
hold a value the runner never meant to write. Plotting such a file silently would draw a wrong
curve; instead every problem is reported with the file name and the 1-based line number, which
is what a reviewer needs to find and delete (or regenerate) the offending row.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Iterable

import pandas as pd

from alpa_serve.results import NUMERIC_COLUMNS, TsvFormatError, read_table, where

logger = logging.getLogger(__name__)

__all__ = ["TsvFormatError", "REQUIRED_COLUMNS", "LINE_COLUMN", "FILE_COLUMN", "read_results",
           "check_x_column"]

#: Columns every figure needs, whatever its x variable.
REQUIRED_COLUMNS = ("exp_name", "workload", "policy", "goodput")

#: Name of the column holding each row's line number in its file (for later error messages).
LINE_COLUMN = "_line"

#: Name of the column holding the file a row came from.
FILE_COLUMN = "_file"


def read_results(path: str | Path, required: Iterable[str] = REQUIRED_COLUMNS) -> pd.DataFrame:
    """Read one results TSV into a DataFrame with numeric columns converted.

    Adds ``_line`` (1-based line number of the row in the file; the header is line 1) and
    ``_file`` columns. Raises :class:`TsvFormatError` naming the file and line for: an empty or
    undecodable file, a missing required column, a row with the wrong number of fields, a
    non-numeric value in a numeric column (``nan`` is accepted), an empty goodput, or a goodput
    outside [0, 1]. Rows whose goodput is ``nan`` are skipped with a logged warning.
    A header-only file gives an empty frame (an experiment that has not finished any case yet).
    """
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


def check_x_column(df: pd.DataFrame, x: str) -> None:
    """Raise :class:`TsvFormatError` if rows of ``df`` lack a usable value in column ``x``.

    Called on the rows of one sweep just before plotting them, because which column must be
    filled depends on the sweep (``num_devices`` for a device sweep, ...).
    """
    if df.empty:
        return
    if x not in df.columns:
        raise TsvFormatError(
            f"{df[FILE_COLUMN].iloc[0]}: rows of {df['exp_name'].iloc[0]} need column {x}, "
            "which the file does not have")
    bad = df[x].isna() | ~df[x].map(lambda v: isinstance(v, float) and math.isfinite(v))
    if bad.any():
        row = df[bad].iloc[0]
        raise TsvFormatError(
            f"{where(Path(row[FILE_COLUMN]), int(row[LINE_COLUMN]))}: {row['exp_name']} row has "
            f"no value in its x column {x}")

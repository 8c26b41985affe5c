"""Reading the experiment TSVs (DESIGN 7.3) for plotting: :func:`read_results` and its
constants belong to :mod:`alpa_serve.results`, the one owner of the result TSV format, and are
importable from here too; :func:`check_x_column` is the plotting's own check of a sweep's rows.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from alpa_serve.results import (
    FILE_COLUMN,
    LINE_COLUMN,
    REQUIRED_COLUMNS,
    TsvFormatError,
    read_results,
    where,
)

__all__ = ["TsvFormatError", "REQUIRED_COLUMNS", "LINE_COLUMN", "FILE_COLUMN", "read_results",
           "check_x_column"]


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

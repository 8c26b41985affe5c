"""Writing and checking result TSV files (DESIGN 7.3): the names of :mod:`alpa_serve.results`,
the one owner of the result TSV format, importable from here too (the experiments' earlier
home of the writer)."""

from __future__ import annotations

from alpa_serve.results import (
    COLUMNS,
    TIMING_COLUMNS,
    PreviousVersionError,
    ResultFileState,
    TsvFormatError,
    append_row,
    finished_case_ids,
    format_row,
    format_value,
    inspect_result_file,
    read_rows,
    repair_partial_tail,
    rows_without_timing,
)

__all__ = ["COLUMNS", "TIMING_COLUMNS", "TsvFormatError", "PreviousVersionError",
           "format_value", "format_row",
           "append_row", "read_rows", "ResultFileState", "inspect_result_file",
           "repair_partial_tail", "finished_case_ids", "rows_without_timing"]

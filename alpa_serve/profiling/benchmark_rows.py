"""Raw benchmark rows in the original artifact's layout, and their conversion into the database.

The original artifact measured every (model, parallel configuration, batch size) with its
benchmark script and converted the rows into ``profiling_result.pkl``. A row file is
tab-separated with a header line; the columns, in order::

    ModelName  BS  #Microbatch  DP  OP  PP  #GPU  MeanTime(s)  StdTime(s)  TFLOPs
    StageWeights(B)  StagePeakMem(B)  StageLatencies(s)

The three ``Stage*`` fields are lists with one entry per pipeline stage, written as numpy prints
arrays (``[1.5e+09 1.5e+09]``); a comma-separated list (``[1.5e9, 1.5e9]``) is read as well.
Stage weights are bytes per device of the stage (already divided by op), peak memory is bytes per
device, latencies are seconds. The activation memory of a stage is peak - weight, as the original
conversion computes it. We append one column of our own, ``DeviceKind`` (what measured the row,
e.g. ``cpu`` or ``NVIDIA H100``); readers that look columns up by name, the original's among
them, ignore it, and a file without it reads as device kind ``""``.

The original benchmark wrote its rows without the header line (its ``write_tsv`` writes values
only; the original conversion adds the header when the first line does not start with it).
``read_rows`` does the same without touching the file: a file whose first field is not
``ModelName`` is read as headerless rows in the original column order.

Rows are the unit of resumption for the profiler: ``append_row`` writes one complete line and
flushes it, ``read_rows`` drops nothing silently (a cut last line is an error naming the line).

Repeated (model, configuration, batch size) rows: ``rows_to_database(rule="last")`` (the
default) keeps the last one (a re-measurement replaces the earlier row);
``rule="original"`` reproduces the original conversion (``LatencyMemData.add_result``): the first
row of a batch size is kept unless a later one has a strictly smaller slowest stage, which then
replaces its latencies, activations and the configuration's weights; a configuration's weights
otherwise come from its first row. :func:`load_database` uses ``original`` for files in the
original layout (no ``DeviceKind`` column) and ``last`` for ours.
"""
from __future__ import annotations

import csv
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from alpa_serve.profiling.database import (
    ConfigProfile,
    ModelProfile,
    ParallelConfig,
    ProfilingDatabase,
)

# The original benchmark's columns, in its order.
ORIGINAL_COLUMNS: tuple[str, ...] = (
    "ModelName", "BS", "#Microbatch", "DP", "OP", "PP", "#GPU", "MeanTime(s)", "StdTime(s)",
    "TFLOPs", "StageWeights(B)", "StagePeakMem(B)", "StageLatencies(s)",
)
# Ours, after the original ones (optional when reading).
DEVICE_KIND_COLUMN = "DeviceKind"
COLUMNS: tuple[str, ...] = ORIGINAL_COLUMNS + (DEVICE_KIND_COLUMN,)

_LIST_SPLIT = re.compile(r"[,\s]+")


class BenchmarkRowError(ValueError):
    """A raw benchmark row file that does not follow the layout; names the file and line."""

    def __init__(self, path: Any, line: int | None, problem: str):
        self.path = str(path)
        self.line = line
        self.problem = problem
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class BenchmarkRow:
    """One measured (model, parallel configuration, batch size).

    stage_weights:   bytes per device of each stage (already divided by op);
    stage_peak_mem:  peak bytes per device of each stage (weights + activations);
    stage_latencies: seconds per stage for one batch;
    mean_time, std_time: seconds for one batch through the whole pipeline;
    tflops: achieved TFLOP/s (0 where not computed).
    """

    model_name: str
    batch_size: int
    config: ParallelConfig
    mean_time: float
    std_time: float
    stage_weights: tuple[float, ...]
    stage_peak_mem: tuple[float, ...]
    stage_latencies: tuple[float, ...]
    num_microbatches: int = 1
    tflops: float = 0.0
    device_kind: str = ""

    def __post_init__(self) -> None:
        pp = self.config.pp
        for name in ("stage_weights", "stage_peak_mem", "stage_latencies"):
            if len(getattr(self, name)) != pp:
                raise ValueError(f"{self.model_name} {tuple(self.config)} bs={self.batch_size}: "
                                 f"{name} has {len(getattr(self, name))} stages, expected pp={pp}")

    @property
    def num_devices(self) -> int:
        """Devices the configuration spans (dp * op * pp)."""
        return self.config.num_devices

    @property
    def act_mem(self) -> tuple[float, ...]:
        """Per-stage activation bytes: peak - weight (never below 0)."""
        return tuple(max(p - w, 0.0) for p, w in zip(self.stage_peak_mem, self.stage_weights))

    def fields(self) -> list[str]:
        """The row's fields as written, in ``COLUMNS`` order."""
        return [self.model_name, str(self.batch_size), str(self.num_microbatches),
                str(self.config.dp), str(self.config.op), str(self.config.pp),
                str(self.num_devices), repr(float(self.mean_time)), repr(float(self.std_time)),
                repr(float(self.tflops)), _format_list(self.stage_weights),
                _format_list(self.stage_peak_mem), _format_list(self.stage_latencies),
                self.device_kind]


def _format_list(values: Sequence[float]) -> str:
    """A stage list as numpy prints an array (space-separated, in brackets), exact floats."""
    return "[" + " ".join(repr(float(v)) for v in values) + "]"


def _parse_list(text: str, what: str, bad) -> tuple[float, ...]:
    body = text.strip()
    if not (body.startswith("[") and body.endswith("]")):
        raise bad(f"{what} {text!r} is not a bracketed list")
    items = [x for x in _LIST_SPLIT.split(body[1:-1].strip()) if x]
    if not items:
        raise bad(f"{what} is empty")
    try:
        values = tuple(float(x) for x in items)
    except ValueError:
        raise bad(f"{what} {text!r} holds a non-number") from None
    if not all(math.isfinite(v) and v >= 0 for v in values):
        raise bad(f"{what} {text!r} holds a negative or non-finite value")
    return values


def _parse_int(text: str, what: str, bad) -> int:
    try:
        value = int(text)
    except ValueError:
        raise bad(f"{what} {text!r} is not an integer") from None
    if value < 1:
        raise bad(f"{what} must be >= 1, got {value}")
    return value


def _parse_float(text: str, what: str, bad) -> float:
    try:
        value = float(text)
    except ValueError:
        raise bad(f"{what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise bad(f"{what} {text!r} is not finite")
    return value


def parse_row(record: Mapping[str, str], bad) -> BenchmarkRow:
    """One row from its named fields; ``bad(problem)`` builds the exception to raise."""
    cfg = ParallelConfig(_parse_int(record["DP"], "DP", bad), _parse_int(record["OP"], "OP", bad),
                         _parse_int(record["PP"], "PP", bad))
    num_gpus = _parse_int(record["#GPU"], "#GPU", bad)
    if num_gpus != cfg.num_devices:
        raise bad(f"#GPU is {num_gpus} but DP x OP x PP is {cfg.num_devices}")
    lists = {name: _parse_list(record[col], col, bad) for name, col in (
        ("stage_weights", "StageWeights(B)"), ("stage_peak_mem", "StagePeakMem(B)"),
        ("stage_latencies", "StageLatencies(s)"))}
    for name, values in lists.items():
        if len(values) != cfg.pp:
            raise bad(f"{name} has {len(values)} stages, expected PP={cfg.pp}")
    if min(lists["stage_latencies"]) <= 0:
        raise bad("a stage latency is 0; latencies are seconds and must be > 0")
    tflops_text = (record.get("TFLOPs") or "0").strip()
    return BenchmarkRow(
        model_name=record["ModelName"].strip(),
        batch_size=_parse_int(record["BS"], "BS", bad),
        num_microbatches=_parse_int(record["#Microbatch"], "#Microbatch", bad),
        config=cfg,
        mean_time=_parse_float(record["MeanTime(s)"], "MeanTime(s)", bad),
        std_time=_parse_float(record["StdTime(s)"], "StdTime(s)", bad),
        tflops=_parse_float(tflops_text, "TFLOPs", bad) if tflops_text not in ("-", "") else 0.0,
        device_kind=(record.get(DEVICE_KIND_COLUMN) or "").strip(),
        **lists,
    )


@dataclass(frozen=True)
class RowFile:
    """A raw benchmark file's rows and layout.

    header: the file has a header line (the original benchmark wrote none);
    device_kind_column: the header has our ``DeviceKind`` column (the file was written by our
    profiler, not the original benchmark).
    """

    rows: list[BenchmarkRow]
    header: bool
    device_kind_column: bool


def read_rows(path: str | Path) -> list[BenchmarkRow]:
    """All rows of a raw benchmark file, in file order.

    Raises BenchmarkRowError naming the file and line for a header that lacks a column, a row
    with too few fields (e.g. cut by a crash), a field that does not parse, or binary content.
    A file without a header line is read in the original column order (see the module text).
    """
    return read_row_file(path).rows


def read_row_file(path: str | Path) -> RowFile:
    """:func:`read_rows` plus the file's layout (:class:`RowFile`); the file is only read."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise BenchmarkRowError(path, None, "not a text file (binary content); expected the "
                                "tab-separated benchmark rows") from None
    if "\x00" in text:
        raise BenchmarkRowError(path, None, "not a text file (binary content); expected the "
                                "tab-separated benchmark rows")
    lines = text.splitlines()
    if not lines:
        raise BenchmarkRowError(path, None, "empty file; expected a header line "
                                + "\t".join(ORIGINAL_COLUMNS))
    first = lines[0].split("\t")
    has_header = first[0].strip() == ORIGINAL_COLUMNS[0]
    if has_header:
        header = [h.strip() for h in first]
        missing = [c for c in ORIGINAL_COLUMNS if c not in header]
        if missing:
            raise BenchmarkRowError(path, 1, f"header lacks column(s) {', '.join(missing)}; "
                                    "expected the original benchmark layout "
                                    + "\t".join(ORIGINAL_COLUMNS))
        body, first_line = lines[1:], 2
    else:
        if len(first) < len(ORIGINAL_COLUMNS):
            raise BenchmarkRowError(
                path, 1, f"header lacks column {ORIGINAL_COLUMNS[0]!r} (first field "
                f"{first[0][:40]!r}) and the line is no headerless row either ({len(first)} "
                f"fields, expected {len(ORIGINAL_COLUMNS)}); expected the original benchmark "
                "layout " + "\t".join(ORIGINAL_COLUMNS))
        header = list(COLUMNS)
        body, first_line = lines, 1
    rows = []
    reader = csv.reader(body, delimiter="\t", quoting=csv.QUOTE_NONE)
    for offset, fields in enumerate(reader):
        line_no = offset + first_line
        if not fields or fields == [""]:
            continue

        def bad(problem: str, line_no: int = line_no) -> BenchmarkRowError:
            return BenchmarkRowError(path, line_no, problem)

        if len(fields) < len(ORIGINAL_COLUMNS):
            raise bad(f"{len(fields)} fields, expected at least {len(ORIGINAL_COLUMNS)} "
                      "(a cut line? remove it and rerun the profiler to measure it again)")
        record = dict(zip(header, fields))
        rows.append(parse_row(record, bad))
    return RowFile(rows, has_header, has_header and DEVICE_KIND_COLUMN in header)


def append_row(path: str | Path, row: BenchmarkRow) -> None:
    """Append one row (writing the header first if the file is new or empty); flushed and
    synced, so that a crash loses at most the row being measured."""
    path = Path(path)
    new = not path.exists() or path.stat().st_size == 0
    with open(path, "a", encoding="utf-8", newline="") as out:
        if new:
            out.write("\t".join(COLUMNS) + "\n")
        out.write("\t".join(row.fields()) + "\n")
        out.flush()
        os.fsync(out.fileno())


def write_rows(path: str | Path, rows: Iterable[BenchmarkRow]) -> None:
    """Write a new row file (header and rows), replacing ``path`` only once it is complete."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as out:
        out.write("\t".join(COLUMNS) + "\n")
        for row in rows:
            out.write("\t".join(row.fields()) + "\n")
    os.replace(tmp, path)


#: Rules for repeated (model, configuration, batch size) rows (see the module text).
DUPLICATE_RULES = ("last", "original")


def rows_to_database(rows: Iterable[BenchmarkRow],
                     hardware: Mapping[str, Any] | None = None,
                     rule: str = "last") -> ProfilingDatabase:
    """The profiling database the rows describe (DESIGN 3.1).

    ``rule="last"``: a later row for the same (model, configuration, batch size) replaces an
    earlier one, and a configuration's weights are taken from its last row. ``rule="original"``:
    the original conversion's rule (module text). Models and configurations keep their
    first-appearance order (the database sorts configurations).
    """
    if rule not in DUPLICATE_RULES:
        raise ValueError(f"unknown rule {rule!r}; expected one of {DUPLICATE_RULES}")
    latency: dict[str, dict[ParallelConfig, dict[int, tuple[float, ...]]]] = {}
    act_mem: dict[str, dict[ParallelConfig, dict[int, tuple[float, ...]]]] = {}
    weights: dict[str, dict[ParallelConfig, tuple[float, ...]]] = {}
    for row in rows:
        lat = latency.setdefault(row.model_name, {}).setdefault(row.config, {})
        act = act_mem.setdefault(row.model_name, {}).setdefault(row.config, {})
        wts = weights.setdefault(row.model_name, {})
        if rule == "last":
            lat[row.batch_size], act[row.batch_size] = row.stage_latencies, row.act_mem
            wts[row.config] = row.stage_weights
            continue
        wts.setdefault(row.config, row.stage_weights)
        if row.batch_size not in lat:
            lat[row.batch_size], act[row.batch_size] = row.stage_latencies, row.act_mem
        elif max(row.stage_latencies) < max(lat[row.batch_size]):
            lat[row.batch_size], act[row.batch_size] = row.stage_latencies, row.act_mem
            wts[row.config] = row.stage_weights
    if not latency:
        raise ValueError("no benchmark rows to convert; measure some first")
    profiles = []
    for name, per_cfg in latency.items():
        table = {cfg: ConfigProfile(latency=dict(sorted(lat.items())),
                                    act_mem=dict(sorted(act_mem[name][cfg].items())),
                                    weight_mem=weights[name][cfg])
                 for cfg, lat in per_cfg.items()}
        profiles.append(ModelProfile(name, table))
    return ProfilingDatabase(profiles, hardware)


def database_to_rows(db: ProfilingDatabase, device_kind: str = "") -> list[BenchmarkRow]:
    """Rows that ``rows_to_database`` turns back into ``db``'s numbers (for writing a database
    in the original raw layout). Mean time = the stage sum; std time and TFLOPs are 0 (not
    known from a database)."""
    rows = []
    for prof in db:
        for cfg in prof.configs():
            cp = prof.profile(cfg)
            for b in cp.batch_sizes:
                lat = cp.latency[b]
                peak = tuple(w + a for w, a in zip(cp.weight_mem, cp.act_mem[b]))
                rows.append(BenchmarkRow(prof.name, b, cfg, float(sum(lat)), 0.0,
                                         cp.weight_mem, peak, lat, device_kind=device_kind))
    return rows


def load_database(path: str | Path) -> ProfilingDatabase:
    """The database of a raw benchmark file (``ProfilingDatabase.load`` of a ``.tsv``).

    Files in the original layout (no ``DeviceKind`` column, with or without header) convert
    with the original conversion's rule for repeated rows, files written by our profiler with
    ``last``. The hardware description records the source file, the rule and the device kinds.
    Raises BenchmarkRowError (file and line) for a malformed file, ValueError for one
    without rows.
    """
    path = Path(path)
    found = read_row_file(path)
    rule = "last" if found.device_kind_column else "original"
    kinds = sorted({r.device_kind for r in found.rows if r.device_kind})
    hardware = {"description": "converted from raw benchmark rows", "source": path.name,
                "duplicate_rule": rule, "device_kinds": kinds}
    return rows_to_database(found.rows, hardware, rule=rule)

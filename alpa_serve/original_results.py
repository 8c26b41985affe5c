"""The original artifact's result files: reading them and mapping their rows onto our figures'
cases (DESIGN 7.7).

Standard library only, like :mod:`alpa_serve.results`, so that both the plotting package
(``--compare``) and the comparison report (:mod:`alpa_serve.compare`) read them without the
experiment machinery.

The original experiments append one headerless, tab-separated row per case, every value written
with ``str()``, in one of two layouts:

* general-model (14 fields, Fig. 11 S3 columns, Fig. 14): exp_name, num_models, num_devices,
  mem_budget, total_rate, rate_distribution, arrival_process, arrival_process_kwargs, slo_scale,
  duration, policy_name, placement, goodput, mode;
* equal-model (19 fields, Fig. 11 S1/S2 columns, Figs. 12, 13): exp_name, num_devices,
  mem_budget, model_type, num_models, total_rate, rate_distribution, arrival_process,
  arrival_process_kwargs, slo_scale, duration, policy_name, train_start, train_end,
  test_start, test_end, placement, goodput, mode.

``arrival_process_kwargs`` is a dict literal (``{'rate_scale': 0.002, 'cv_scale': 4,
'trace_dir': '...'}`` or ``{'cv': 4}``), parsed with ``ast.literal_eval``; ``placement`` is the
repr of the original placement classes (``ModelPlacement(group_configs=(ParallelConfig(dp=1,
op=1, pp=4), ...), group_models=((0, 1), ...))``, tuples or lists, and
``ModelPlacementWithReplacement(num_segments=60)``), parsed by walking its syntax tree and
allowing only those three constructor names with literal arguments (nothing is evaluated).
Blank lines and lines starting with ``#`` are skipped, as the original readers do. ``mode`` is
``simulate`` or ``run`` (a real-system run).

Files and their place in our figures (the original names; the folders are ours too):
``sec6_2_data/azure_v{1,2}_{1dot3b,6dot7b,mixed}.tsv`` -> Fig. 11 columns S1, S2, S3 on MAF1
(``azure_v1``) and MAF2 (``azure_v2``); ``sec6_3_data/large_model_exp.tsv`` -> Fig. 12;
``sec6_4_data/*.tsv`` (one per train/test pair, e.g.
``robustness_exp.train-5.8.0-5.9.0_test-5.1.0-5.2.0.tsv``) -> Fig. 13, each pair keyed by its test
window; ``sec6_5_data/ablation.tsv`` -> Fig. 14. A row becomes a point of one of our sweeps
(its ``exp_name`` is a key of :data:`~alpa_serve.sweeps.EXP_X`; the x value comes from the
row's field or its kwargs); the policy keeps its original name (the figures look up labels by
name: ``sr-replace-<T>`` is Clockwork++ whatever T). A row that maps to no case of ours is kept
in :attr:`OriginalResults.unmapped` with the reason, never dropped silently; where a case appears
twice the last row wins, as in the original plots; where a Fig. 11 file holds both
``mp-search`` and ``mp-search-sep``, the ``mp-search`` rows are not drawn (the original plot
removes them) and are listed as unmapped.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

from alpa_serve.results import (
    DATA_DIRS,
    FIG11_COLUMNS,
    FIG12_FILE,
    FIG14_FILE,
    PathLike,
    fig11_file,
)
from alpa_serve.sweeps import EXP_X

#: The original general-model layout (``benchmarks/alpa/general_model_case.py``).
GENERAL_FIELDS: tuple[str, ...] = (
    "exp_name", "num_models", "num_devices", "mem_budget", "total_rate", "rate_distribution",
    "arrival_process", "arrival_process_kwargs", "slo_scale", "duration", "policy_name",
    "placement", "goodput", "mode",
)
#: The original equal-model layout (``benchmarks/alpa/equal_model_case.py``).
EQUAL_FIELDS: tuple[str, ...] = (
    "exp_name", "num_devices", "mem_budget", "model_type", "num_models", "total_rate",
    "rate_distribution", "arrival_process", "arrival_process_kwargs", "slo_scale", "duration",
    "policy_name", "train_start", "train_end", "test_start", "test_end", "placement", "goodput",
    "mode",
)
#: Field count -> layout name.
LAYOUTS: dict[int, str] = {len(GENERAL_FIELDS): "general", len(EQUAL_FIELDS): "equal"}

#: The original ``arrival_process`` of each trace (our trace names).
ORIGINAL_TRACES: dict[str, str] = {"azure_v1": "maf1", "azure_v2": "maf2"}
_SET_SUFFIX = {"S1": "1dot3b", "S2": "6dot7b", "S3": "mixed"}
_TRACE_PREFIX = {trace: original for original, trace in ORIGINAL_TRACES.items()}

#: Original Fig. 11 file name -> (our file name, trace).
ORIGINAL_FIG11_FILES: dict[str, tuple[str, str]] = {
    f"{_TRACE_PREFIX[trace]}_{_SET_SUFFIX[model_set]}.tsv": (fig11_file(model_set, trace), trace)
    for model_set, trace in FIG11_COLUMNS
}

#: Where the original row keeps each of our x columns: a row field or a kwargs key.
_X_SOURCE: dict[str, tuple[str, str]] = {
    "num_devices": ("field", "num_devices"),
    "slo_scale": ("field", "slo_scale"),
    "total_rate": ("field", "total_rate"),
    "rate_scale": ("kwargs", "rate_scale"),
    "cv_scale": ("kwargs", "cv_scale"),
    "cv": ("kwargs", "cv"),
}

#: The original plots' label for the full search: Fig. 11 draws mp-search-sep where a file
#: holds both.
_SEARCH, _SEARCH_SEP = "mp-search", "mp-search-sep"


class OriginalResultError(ValueError):
    """An original result file that cannot be read; the message is one line naming the file
    and (where known) the 1-based line."""

    def __init__(self, path: PathLike, line: int | None, problem: str):
        self.path = str(path)
        self.line = line
        self.problem = problem
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {problem}")


# ------------------------------------------------------------------------------------------
# Placement reprs
# ------------------------------------------------------------------------------------------
class _Config(list):
    """A parsed ``ParallelConfig(dp, op, pp)`` (a list of three ints)."""


_CONSTRUCTORS: dict[str, tuple[str, ...]] = {
    "ParallelConfig": ("dp", "op", "pp"),
    "ModelPlacement": ("group_configs", "group_models"),
    "ModelPlacementWithReplacement": ("start_times", "placements"),
}


def _literal(node: ast.AST) -> Any:
    """Value of a literal or an allowed constructor call; ValueError for anything else."""
    if isinstance(node, ast.Constant) and (node.value is None or isinstance(
            node.value, (int, float, str))):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)) \
            and isinstance(node.operand, ast.Constant) \
            and isinstance(node.operand.value, (int, float)) \
            and not isinstance(node.operand.value, bool):
        return -node.operand.value if isinstance(node.op, ast.USub) else node.operand.value
    if isinstance(node, (ast.Tuple, ast.List)):
        return [_literal(e) for e in node.elts]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
            and node.func.id in _CONSTRUCTORS:
        return _construct(node.func.id, node)
    what = node.func.id if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
        else type(node).__name__
    raise ValueError(f"unexpected {what} at column {getattr(node, 'col_offset', 0) + 1} "
                     f"(allowed: literals and {', '.join(_CONSTRUCTORS)})")


def _construct(name: str, node: ast.Call) -> Any:
    params = _CONSTRUCTORS[name]
    extra = ("num_segments",) if name == "ModelPlacementWithReplacement" else ()
    if len(node.args) > len(params):
        raise ValueError(f"{name} with {len(node.args)} positional arguments")
    args: dict[str, Any] = {p: _literal(a) for p, a in zip(params, node.args)}
    for kw in node.keywords:
        if kw.arg is None or kw.arg not in params + extra or kw.arg in args:
            raise ValueError(f"{name} with unexpected argument {kw.arg!r}")
        args[kw.arg] = _literal(kw.value)
    if name == "ParallelConfig":
        values = [args.get(p) for p in params]
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values):
            raise ValueError(f"ParallelConfig needs three positive integers, got {values}")
        return _Config(values)
    if name == "ModelPlacement":
        configs, models = args.get("group_configs"), args.get("group_models")
        if not isinstance(configs, list) or not all(isinstance(c, _Config) for c in configs):
            raise ValueError("ModelPlacement.group_configs must be a sequence of ParallelConfig")
        if not isinstance(models, list) or not all(
                isinstance(g, list) and all(isinstance(m, int) and not isinstance(m, bool)
                                            and m >= 0 for m in g) for g in models):
            raise ValueError("ModelPlacement.group_models must be sequences of model indices")
        if len(configs) != len(models):
            raise ValueError(f"ModelPlacement has {len(configs)} group configs but "
                             f"{len(models)} groups")
        return {"type": "ModelPlacement", "group_configs": [list(c) for c in configs],
                "group_models": models}
    # ModelPlacementWithReplacement: the original prints only the number of segments.
    out: dict[str, Any] = {"type": "ModelPlacementWithReplacement"}
    if "placements" in args:
        placements = args["placements"]
        if not isinstance(placements, list) or not all(
                isinstance(p, dict) and p.get("type") == "ModelPlacement" for p in placements):
            raise ValueError("ModelPlacementWithReplacement.placements must be ModelPlacements")
        out["placements"] = placements
        out["start_times"] = args.get("start_times", [])
    segments = args.get("num_segments", len(out.get("placements", [])))
    if not isinstance(segments, int) or isinstance(segments, bool) or segments < 0:
        raise ValueError(f"ModelPlacementWithReplacement.num_segments {segments!r}")
    out["num_segments"] = segments
    return out


def parse_placement(text: str) -> dict[str, Any]:
    """A placement repr of the original artifact as our JSON form (DESIGN 10):
    ``{"type": "ModelPlacement", "group_configs": [[dp, op, pp], ...], "group_models":
    [[m, ...], ...]}``, or ``{"type": "ModelPlacementWithReplacement", "num_segments": n}`` (plus
    ``start_times`` and ``placements`` where the repr has them). Nothing is evaluated; raises
    ValueError naming what does not parse.
    """
    try:
        tree = ast.parse(text.strip(), mode="eval")
        value = _literal(tree.body)
    except SyntaxError as exc:
        raise ValueError(f"placement does not parse: {exc.msg} at column {exc.offset}") \
            from None
    except (RecursionError, MemoryError):
        raise ValueError("placement is nested too deeply to parse") from None
    if not isinstance(value, dict):
        raise ValueError("placement is not a ModelPlacement or ModelPlacementWithReplacement")
    return value


# ------------------------------------------------------------------------------------------
# Rows
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OriginalRow:
    """One parsed row of an original result file (either layout).

    Units: mem_budget bytes, total_rate requests/s (-1 for trace cases), duration seconds (-1
    for trace cases), goodput the fraction 0..1 of requests within their SLO. ``model_type``
    and the windows exist in the equal-model layout only (None otherwise, and where the file
    says ``None``).
    """

    path: str
    line: int
    layout: str
    exp_name: str
    num_devices: int
    num_models: int
    mem_budget: float
    model_type: Optional[str]
    total_rate: float
    rate_distribution: Optional[str]
    arrival_process: str
    arrival_process_kwargs: dict[str, Any]
    slo_scale: float
    duration: float
    policy: str
    train_window: Optional[tuple[str, str]]
    test_window: Optional[tuple[str, str]]
    placement: dict[str, Any]
    goodput: float
    mode: str

    @property
    def workload(self) -> str:
        """Our name of the row's workload: ``maf1``/``maf2`` (the real traces) or the
        original arrival process (``gamma`` for the synthetic cases)."""
        return ORIGINAL_TRACES.get(self.arrival_process, self.arrival_process)

    def value(self, column: str) -> Optional[float]:
        """The row's value of our TSV column ``column`` (x columns and the fixed settings:
        num_devices, num_models, slo_scale, total_rate, rate_scale, cv_scale, cv); None where the
        row does not have it."""
        if column == "num_models":
            return float(self.num_models)
        kind, key = _X_SOURCE.get(column, ("", ""))
        raw = getattr(self, key) if kind == "field" else \
            self.arrival_process_kwargs.get(key) if kind == "kwargs" else None
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            return None
        return float(raw)


def _number(text: str, what: str, bad, integer: bool = False) -> Any:
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        raise bad(f"{what} {text[:40]!r} is not {'an integer' if integer else 'a number'}") \
            from None
    if not integer and math.isnan(value):
        raise bad(f"{what} is nan")
    return value


def _optional(text: str) -> Optional[str]:
    text = text.strip()
    return None if text in ("None", "") else text


def parse_row(fields: list[str], path: PathLike, line: int) -> OriginalRow:
    """One row from its tab-separated ``fields`` (14 or 19); OriginalResultError naming
    ``path:line`` for anything that does not parse."""
    def bad(problem: str) -> OriginalResultError:
        return OriginalResultError(path, line, problem)

    layout = LAYOUTS.get(len(fields))
    if layout is None:
        raise bad(f"{len(fields)} tab-separated fields; the original layouts have 14 "
                  "(general-model: exp_name ... placement, goodput, mode) or 19 (equal-model: "
                  "with model_type and train/test windows); a row cut short?")
    rec = dict(zip(GENERAL_FIELDS if layout == "general" else EQUAL_FIELDS,
                   (f.strip() for f in fields)))
    try:
        kwargs = ast.literal_eval(rec["arrival_process_kwargs"])
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise bad(f"arrival_process_kwargs {rec['arrival_process_kwargs'][:60]!r} is not a "
                  "Python dict literal") from None
    if not isinstance(kwargs, dict):
        raise bad(f"arrival_process_kwargs is a {type(kwargs).__name__}, expected a dict")
    try:
        placement = parse_placement(rec["placement"])
    except ValueError as exc:
        raise bad(str(exc)) from None
    goodput = _number(rec["goodput"], "goodput", bad)
    if not 0 <= goodput <= 1:
        raise bad(f"goodput {goodput} is outside [0, 1]")
    windows: dict[str, Optional[tuple[str, str]]] = {"train": None, "test": None}
    for which in windows:
        start, end = _optional(rec.get(f"{which}_start", "")), _optional(rec.get(f"{which}_end",
                                                                                 ""))
        if (start is None) != (end is None):
            raise bad(f"{which}_start and {which}_end must both be set or both be None")
        if start is not None and end is not None:
            windows[which] = (start, end)
    if not rec["exp_name"] or not rec["policy_name"]:
        raise bad("empty exp_name or policy_name")
    return OriginalRow(
        path=str(path), line=line, layout=layout, exp_name=rec["exp_name"],
        num_devices=_number(rec["num_devices"], "num_devices", bad, integer=True),
        num_models=_number(rec["num_models"], "num_models", bad, integer=True),
        mem_budget=_number(rec["mem_budget"], "mem_budget", bad),
        model_type=_optional(rec["model_type"]) if layout == "equal" else None,
        total_rate=_number(rec["total_rate"], "total_rate", bad),
        rate_distribution=_optional(rec["rate_distribution"]),
        arrival_process=rec["arrival_process"], arrival_process_kwargs=kwargs,
        slo_scale=_number(rec["slo_scale"], "slo_scale", bad),
        duration=_number(rec["duration"], "duration", bad),
        policy=rec["policy_name"], train_window=windows["train"],
        test_window=windows["test"], placement=placement, goodput=goodput,
        mode=rec["mode"])


def read_original_rows(path: PathLike) -> list[OriginalRow]:
    """Every row of one original result file, in file order (the file is only read).

    Raises OriginalResultError (one line: file, line, problem) for binary content, a header
    line (our own result files have one; the original ones never do), a row with another
    number of fields than the two layouts, rows of both layouts in one file, or a field that
    does not parse (numbers, the kwargs dict literal, the placement repr, goodput in [0, 1]).
    """
    path = Path(path)
    data = path.read_bytes()
    if b"\x00" in data:
        raise OriginalResultError(path, None, "binary content; expected the original "
                                  "artifact's tab-separated result rows")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise OriginalResultError(path, None, f"not a UTF-8 text file ({exc.reason} at byte "
                                  f"{exc.start}); expected tab-separated result rows") from None
    rows: list[OriginalRow] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split("\t")
        if fields[0].strip() == "exp_name":
            raise OriginalResultError(path, number, "a header line: this is a result file of "
                                      "ours (DESIGN 7.3), not of the original artifact (whose "
                                      "rows have no header)")
        row = parse_row(fields, path, number)
        if rows and row.layout != rows[0].layout:
            raise OriginalResultError(path, number, f"a {row.layout}-model row in a file of "
                                      f"{rows[0].layout}-model rows (line {rows[0].line})")
        rows.append(row)
    return rows


# ------------------------------------------------------------------------------------------
# Mapping onto our figures
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OriginalPoint:
    """One original row as a point of one of our sweeps.

    figure: ``fig11`` ... ``fig14``; file: our TSV the case belongs to (``S1_maf1.tsv``,
    ``large_model_exp.tsv``, ``ablation.tsv``; Fig. 13: the original file's name); window: Fig.
    13's test window ``start-end`` (its pair), else ""; x_column: our column (DESIGN 7.3);
    policy: the original policy name.
    """

    figure: str
    file: str
    window: str
    exp_name: str
    x_column: str
    x: float
    policy: str
    goodput: float
    row: OriginalRow


@dataclass(frozen=True)
class UnmappedRow:
    """A row (or, with ``line`` None, a whole file) that maps to no case of ours."""

    path: str
    line: Optional[int]
    reason: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.reason}"


@dataclass
class OriginalResults:
    """The original result files of a folder, as points of our figures.

    points: one per case (last row wins), in file order; unmapped: rows and files that map to
    no case of ours, with the reason; duplicates: rows replaced by a later row of the same case;
    files: the files read; rows: every parsed row.
    """

    points: list[OriginalPoint] = field(default_factory=list)
    unmapped: list[UnmappedRow] = field(default_factory=list)
    duplicates: int = 0
    files: list[Path] = field(default_factory=list)
    rows: list[OriginalRow] = field(default_factory=list)

    def select(self, figure: str, file: Optional[str] = None, exp_name: Optional[str] = None,
               window: Optional[str] = None) -> list[OriginalPoint]:
        """The points of ``figure`` (and of one file, sweep or Fig. 13 window)."""
        return [p for p in self.points if p.figure == figure
                and (file is None or p.file == file)
                and (exp_name is None or p.exp_name == exp_name)
                and (window is None or p.window == window)]

    @property
    def modes(self) -> list[str]:
        """The distinct ``mode`` values of the rows (``simulate``, ``run``)."""
        return sorted({r.mode for r in self.rows})


def classify_file(path: PathLike, figure: Optional[str] = None) -> Optional[tuple[str, str]]:
    """(figure, our file name) of an original result file, from its name; ``figure``: the
    figure of the folder it was found in (``sec6_4_data`` -> ``fig13``), if known. None for a
    file that belongs to no figure of ours. Fig. 13's files keep their own names."""
    name = Path(path).name
    if name in ORIGINAL_FIG11_FILES and figure in (None, "fig11"):
        return "fig11", ORIGINAL_FIG11_FILES[name][0]
    if name == FIG12_FILE and figure in (None, "fig12"):
        return "fig12", FIG12_FILE
    if name == FIG14_FILE and figure in (None, "fig14"):
        return "fig14", FIG14_FILE
    if figure == "fig13" or (figure is None and name.startswith("robustness")):
        return "fig13", name
    return None


def window_key(window: tuple[str, str]) -> str:
    """A window as our TSVs write it: ``"start-end"``."""
    return f"{window[0]}-{window[1]}"


def map_rows(rows: Iterable[OriginalRow], figure: str, file: str,
             results: OriginalResults) -> None:
    """Add the ``rows`` of one original file (of ``figure``, our ``file``) to ``results`` as
    points, or as unmapped rows with the reason."""
    rows = list(rows)
    trace = ORIGINAL_FIG11_FILES.get(Path(rows[0].path).name, ("", ""))[1] if rows else ""
    policies = {r.policy for r in rows}
    for row in rows:
        def skip(reason: str, row: OriginalRow = row) -> None:
            results.unmapped.append(UnmappedRow(row.path, row.line, reason))

        x_column = EXP_X.get(row.exp_name)
        if x_column is None:
            skip(f"experiment {row.exp_name!r} has no counterpart in our figures (ours: "
                 f"{', '.join(EXP_X)})")
            continue
        x = row.value(x_column)
        if x is None:
            skip(f"{row.exp_name} row without a numeric {x_column}")
            continue
        if figure == "fig11" and row.policy == _SEARCH and _SEARCH_SEP in policies:
            skip(f"{_SEARCH} where the file also has {_SEARCH_SEP}: the original Fig. 11 plot "
                 "draws only the latter")
            continue
        if trace and row.workload != trace:
            skip(f"arrival process {row.arrival_process!r} in the {trace.upper()} file")
            continue
        window = ""
        if figure == "fig13":
            if row.test_window is None:
                skip("Fig. 13 row without a test window")
                continue
            window = window_key(row.test_window)
        results.points.append(OriginalPoint(figure, file, window, row.exp_name, x_column, x,
                                            row.policy, row.goodput, row))


def _dedupe(results: OriginalResults) -> None:
    """Keep the last point of each case (as the original plots do)."""
    last: dict[tuple[Any, ...], int] = {}
    for i, p in enumerate(results.points):
        last[(p.figure, p.file, p.window, p.exp_name, p.policy, round(p.x, 9))] = i
    keep = sorted(last.values())
    results.duplicates += len(results.points) - len(keep)
    results.points = [results.points[i] for i in keep]


def _files_of(root: Path, figures: Iterable[str]) -> list[tuple[Path, Optional[str]]]:
    """(file, figure of its folder or None) for every ``*.tsv`` under ``root`` that may
    belong to ``figures``."""
    if root.is_file():
        return [(root, None)]
    if not root.is_dir():
        raise FileNotFoundError(f"{root} does not exist (expected the original artifact's "
                                "folder, one of its sec6_*_data folders, or a result file)")
    subdirs = {fig: root / DATA_DIRS[fig] for fig in figures if (root / DATA_DIRS[fig]).is_dir()}
    if subdirs:
        return [(p, fig) for fig, d in subdirs.items() for p in sorted(d.glob("*.tsv"))]
    own = next((fig for fig in figures if root.name == DATA_DIRS[fig]), None)
    return [(p, own) for p in sorted(root.glob("*.tsv"))]


def read_original_results(root: PathLike,
                          figures: Iterable[str] = tuple(DATA_DIRS)) -> OriginalResults:
    """Read the original result files under ``root`` (the original artifact's folder with
    ``sec6_*_data/`` inside, one such data folder, or one file) for ``figures`` and map them
    onto our figures. Files that belong to no figure are listed as unmapped; nothing is
    written.

    Raises FileNotFoundError (no such folder) and OriginalResultError (a file that does not
    read: one line with file and line).
    """
    root = Path(root)
    figures = tuple(figures)
    results = OriginalResults()
    for path, folder_figure in _files_of(root, figures):
        found = classify_file(path, folder_figure)
        if found is not None and found[0] not in figures:
            continue  # another figure's file: not asked for
        if found is None:
            results.unmapped.append(UnmappedRow(str(path), None, "not a result file of the "
                                                "original artifact's figures (names: "
                                                + ", ".join(sorted(ORIGINAL_FIG11_FILES))
                                                + f", {FIG12_FILE}, {FIG14_FILE}, "
                                                "sec6_4_data/*.tsv)"))
            continue
        rows = read_original_rows(path)
        results.files.append(path)
        results.rows += rows
        map_rows(rows, found[0], found[1], results)
    _dedupe(results)
    return results

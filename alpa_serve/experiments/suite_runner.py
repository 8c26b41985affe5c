"""The experiment runner (DESIGN 7.4): a suite's cases as Ray tasks, rows appended as they finish.

Modes:

* default: an embedded local Ray instance using all cores (``num_cpus`` to limit);
* ``ray_address``: join an existing Ray cluster (its workers need this package installed);
* ``serial``: in-process, no Ray.

Resume: a case whose ``case_id`` is already in its TSV is skipped; ``force``
starts the suite's TSV files afresh (each old file is moved to a backup name that does not
exist yet: ``NAME.bak``, ``NAME.bak1``, ...; no backup is ever overwritten).
Safety: before any case runs, the output folder is locked against a second run
(:mod:`~alpa_serve.experiments.lock`) and every existing output file is checked without
changing it (a file not written by this runner is refused untouched); a row that cannot be
written later (disk full) stops the run with :class:`OutputWriteError` naming the file.
Precomputed rows: ``seed_dir`` names a folder of TSV files (same names) whose rows for
cases of the grid are copied into the output files before the run, so those cases are
skipped (the original artifact shipped its S3 columns the same way; see
``osdi23_artifact/precomputed/``). Only rows with the current profile are used.
Work shared between cases (the profiling database, loaded traces) is put in
Ray's object store once; workload inputs common to several cases (same model
set and workload spec, see :func:`~alpa_serve.experiments.case_runner.inputs_key`) are
built once by a preparation task whose result the case tasks share.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import traceback
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from alpa_serve import raycluster
from alpa_serve.experiments.case_runner import (
    CaseInputs,
    SearchResources,
    default_database,
    inputs_key,
    prepare_inputs,
    profile_fingerprint,
    run_prepared,
)
from alpa_serve.experiments.cases import Case, TraceWorkload
from alpa_serve.experiments.lock import FolderLockedError, folder_lock
from alpa_serve.experiments.suites import SuiteEntry, SuiteOptions, build_suite, resolve_suite_name
from alpa_serve.experiments.tsv import (
    COLUMNS,
    PreviousVersionError,
    ResultFileState,
    append_row,
    finished_case_ids,
    inspect_result_file,
    read_rows,
    repair_partial_tail,
)
from alpa_serve.results import row_search

logger = logging.getLogger(__name__)


#: Folder inside the output folder where solved search sub-problems are kept.
SUBPROBLEM_FOLDER = ".subproblems"


class RunnerError(RuntimeError):
    """A run cannot start (unusable output folder, another run holding it, stale results,
    unreachable Ray cluster, ...); raised before any case runs."""


class OutputWriteError(RuntimeError):
    """A row could not be written during a run (e.g. disk full); the message names the file.
    The rows written before are kept and a rerun resumes after them."""


@dataclass(frozen=True)
class RunOptions:
    """How to run a suite.

    Attributes:
        out_dir: folder of the suite's TSV files.
        serial: run in-process without Ray.
        ray_address: address of an existing Ray cluster (``host:port``, ``ray://host:port``
            or ``auto``); ``None`` starts an embedded local instance.
        num_cpus: CPUs of the embedded Ray instance (default: all cores).
        force: start the suite's TSV files afresh instead of resuming (old files are
            moved to new backup names, see :func:`backup_path`).
        connect_timeout: seconds within which a Ray cluster address must answer and
            ``ray.init`` must complete.
        progress: show a tqdm progress bar.
        share_traces: load each trace once in the driver and share it (a handle to its
            memory-mapped cache locally, the trace itself on a remote cluster); else each
            worker loads it.
        seed_dir: folder of precomputed TSV files (same names as the suite's); their rows
            for cases of the grid that are not yet done are copied in first (see
            :func:`seed_rows`). Ignored with ``force``.
    """

    out_dir: Path
    serial: bool = False
    ray_address: Optional[str] = None
    num_cpus: Optional[int] = None
    force: bool = False
    connect_timeout: float = 15.0
    progress: bool = True
    share_traces: bool = True
    seed_dir: Optional[Path] = None
    split_cases: bool = False
    share_subproblems: bool = True

    def __post_init__(self) -> None:
        self.ray_connection()  # a bad timeout or CPU count fails here, before anything runs

    def ray_connection(self) -> raycluster.RayConnection:
        """Where Ray runs (ValueError, one line, for a bad ``connect_timeout`` or
        ``num_cpus``)."""
        return raycluster.RayConnection(address=self.ray_address,
                                        connect_timeout=self.connect_timeout,
                                        num_cpus=self.num_cpus)

    def search_resources(self) -> SearchResources:
        """Where the cases' policies search: greedy runs as Ray tasks with ``split_cases``
        (Ray modes only); solved sub-problems kept in ``OUT/.subproblems`` unless
        ``share_subproblems`` is off."""
        return SearchResources(
            split=self.split_cases and not self.serial,
            subproblem_dir=(str(self.out_dir / SUBPROBLEM_FOLDER) if self.share_subproblems
                            else None))


@dataclass
class CaseFailure:
    """A case that raised: its id, description and the error text."""

    case_id: str
    description: str
    error: str


@dataclass
class RunSummary:
    """Outcome of a run: cases in the grid, skipped (already done, including ``seeded`` rows
    copied from precomputed files), run, failed."""

    total: int
    skipped: int
    ran: int = 0
    seeded: int = 0
    failures: list[CaseFailure] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures


# ---------------------------------------------------------------------------
# Resume bookkeeping
# ---------------------------------------------------------------------------

def _reason(exc: OSError) -> str:
    """The short text of an OSError (``No space left on device``)."""
    return exc.strerror or str(exc)


def seed_rows(entries: Sequence[SuiteEntry], out_dir: Path, seed_dir: Path,
              profiles: Mapping[str, str]) -> int:
    """Copy precomputed rows from ``seed_dir`` into ``out_dir``; returns the number copied.

    For each TSV file of ``entries`` that ``seed_dir`` also holds, a row is copied (appended,
    in the seed file's order) when its ``case_id`` is a case of ``entries`` for that file, that
    case has no row in ``out_dir`` yet, and its ``profile`` is ``profiles[case_id]`` (the
    current fingerprint of the case's model types); rows of another profile are skipped with
    a warning (their cases are then computed). Every seed file is
    read before anything is written. A missing ``seed_dir`` is an error (FileNotFoundError
    naming it); an unreadable seed file raises TsvFormatError.
    """
    seed_dir = Path(seed_dir)
    if not seed_dir.is_dir():
        raise FileNotFoundError(f"precomputed rows folder {seed_dir} does not exist "
                                f"(drop the seed option to compute every case)")
    wanted: dict[str, set[str]] = defaultdict(set)
    search = {e.case.case_id: e.case.search for e in entries}
    for e in entries:
        wanted[e.file].add(e.case.case_id)
    sources = {name: read_rows(seed_dir / name, columns=COLUMNS)
               for name in wanted if (seed_dir / name).exists()}
    copied = 0
    for name, seed in sources.items():
        src, dst, ids = seed_dir / name, out_dir / name, wanted[name]
        repair_partial_tail(dst)
        done = set(finished_case_ids(dst))
        rows = [r for r in seed if r["case_id"] in ids and r["case_id"] not in done
                and row_search(r) == search[r["case_id"]]]
        stale = [r for r in rows if r["profile"] != profiles[r["case_id"]]]
        if stale:
            logger.warning("%s: %d precomputed row(s) were computed with profile %s, not the "
                           "current %s: not used, their cases will be computed", src,
                           len(stale), sorted({r["profile"] for r in stale}),
                           sorted({profiles[r["case_id"]] for r in stale}))
        here = 0
        for r in rows:
            if r["profile"] == profiles[r["case_id"]] and r["case_id"] not in done:
                _append(dst, r)
                done.add(r["case_id"])
                here += 1
        if here:
            logger.info("%s: %d precomputed row(s) copied from %s (their cases are not "
                        "computed; to compute them, run without --seed-from, e.g. "
                        "gen_data_sec6_2_e2e.sh --no-precomputed)", dst, here, src)
        copied += here
    return copied


def backup_path(path: Path) -> Path:
    """The first of ``NAME.bak``, ``NAME.bak1``, ``NAME.bak2``, ... that does not exist."""
    candidate = path.with_name(path.name + ".bak")
    n = 0
    while candidate.exists() or candidate.is_symlink():
        n += 1
        candidate = path.with_name(f"{path.name}.bak{n}")
    return candidate


def _output_folder(out_dir: Path) -> Path:
    """``out_dir``, created if missing; RunnerError if it cannot be a folder of results."""
    if out_dir.exists() and not out_dir.is_dir():
        raise RunnerError(f"--out {out_dir} exists and is not a folder: give the path of a "
                          f"folder (it is created if missing)")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunnerError(f"cannot create the output folder {out_dir}: {_reason(exc)}; "
                          f"choose another --out") from None
    return out_dir


def _check_outputs(by_file: dict[str, list[SuiteEntry]], out_dir: Path, force: bool,
                   profiles: Mapping[str, str]) -> dict[str, ResultFileState]:
    """Check every existing output file without changing it (before any case runs).

    Refused (RunnerError or TsvFormatError naming the file): a file this runner did not
    write (another header, not text), an unreadable row, a file that cannot be read or
    appended to, and (unless ``force``) rows of cases of the grid computed with other profiles
    of their model types than ``profiles[case_id]``. Reported with a warning: duplicate case
    ids and rows of cases outside the grid.
    """
    states: dict[str, ResultFileState] = {}
    for name, file_entries in by_file.items():
        path = out_dir / name
        try:
            state = inspect_result_file(path)
        except PreviousVersionError as exc:
            if not force:
                raise RunnerError(str(exc)) from None
            state = ResultFileState(path)  # --force moves it to a backup
        except OSError as exc:
            raise RunnerError(f"cannot read {path}: {_reason(exc)}") from None
        if path.exists():
            try:
                with open(path, "ab"):  # appendable? (opening writes nothing)
                    pass
            except OSError as exc:
                raise RunnerError(f"cannot write to {path}: {_reason(exc)}; make it writable "
                                  f"or use another --out folder") from None
        states[name] = state
        if force:
            continue
        _check_search_modes(path, state, file_entries)
        done = {r["case_id"]: r["profile"] for r in state.rows}
        stale = {cid for cid, prof in done.items() if cid in profiles and prof != profiles[cid]}
        if stale:
            raise RunnerError(
                f"{path}: {len(stale)} row(s) were computed with other profiles of their "
                f"model types (profile {sorted(set(done[c] for c in stale))}, current "
                f"{sorted(set(profiles[c] for c in stale))}); "
                f"rerun with --force to recompute the file (the old one is kept as a backup), "
                f"or use another --out folder")
        duplicates = state.duplicates()
        if duplicates:
            shown = "; ".join(f"{cid} on lines {', '.join(map(str, lines))}"
                              for cid, lines in list(duplicates.items())[:5])
            logger.warning("%s holds %d case id(s) more than once (%s%s), e.g. from two runs "
                           "writing into one folder at once. Their cases count as done; the "
                           "plots use the last row of each. Delete the extra lines to keep "
                           "one row per case", path, len(duplicates), shown,
                           ", ..." if len(duplicates) > 5 else "")
        foreign = set(done) - {e.case.case_id for e in file_entries}
        if foreign:
            logger.warning("%s holds %d row(s) that are not in this grid (from a run with other "
                           "options, e.g. --quick); plots read them too. --force starts the "
                           "file afresh", path, len(foreign))
    return states


def _check_search_modes(path: Path, state: ResultFileState,
                        file_entries: Sequence[SuiteEntry]) -> None:
    """RunnerError if ``path`` holds rows of another search mode (DESIGN 7.8) than the cases
    this run writes to it: fast and exact rows are never mixed in one file."""
    run_modes = {e.case.search for e in file_entries}
    file_modes = {row_search(r) for r in state.rows}
    if file_modes - run_modes:
        raise RunnerError(
            f"{path}: holds {'/'.join(sorted(file_modes))} rows and this run writes "
            f"{'/'.join(sorted(run_modes))} rows: fast and exact rows are never mixed in one "
            f"file; use another --out folder, or --force (the old file is kept as a backup)")


def _start_afresh(states: dict[str, ResultFileState]) -> None:
    """``--force``: move each existing file to a new backup name (never overwriting one)."""
    for state in states.values():
        path = state.path
        if not path.exists():
            continue
        backup = backup_path(path)
        try:
            os.rename(path, backup)
        except OSError as exc:
            raise RunnerError(f"--force: cannot move {path} to {backup.name}: "
                              f"{_reason(exc)}") from None
        logger.info("--force: moved %s to %s (earlier backups are kept); the file starts "
                    "afresh. Rerunning with --force moves it to a new backup again; rerunning "
                    "without --force resumes it", path, backup.name)


def _todo(by_file: dict[str, list[SuiteEntry]], out_dir: Path) -> list[SuiteEntry]:
    """Repair interrupted writes and return the entries that have no row yet."""
    todo: list[SuiteEntry] = []
    for name, file_entries in by_file.items():
        path = out_dir / name
        repair_partial_tail(path)
        done = finished_case_ids(path)
        todo.extend(e for e in file_entries if e.case.case_id not in done)
    return todo


def _subproblem_cache(options: RunOptions, out_dir: Path) -> RunOptions:
    """Make ``OUT/.subproblems`` usable as a cache, changing nothing of the user's.

    A path of that name that is not a folder is left untouched and the run keeps no
    sub-problems (a warning says so; rows are the same). In the folder, the temporary files of
    writes cut short (``.tmp-*.json``, e.g. by ``kill -9``) are removed: this run holds the
    folder lock, so no other run is writing them.
    """
    if not options.share_subproblems:
        return options
    folder = out_dir / SUBPROBLEM_FOLDER
    if os.path.lexists(folder) and not folder.is_dir():
        logger.warning("%s exists and is not a folder; it is left untouched and this run keeps "
                       "no solved sub-problems (same rows; move it away to share them between "
                       "cases)", folder)
        return _replace(options, share_subproblems=False)
    if folder.is_dir():
        removed = 0
        for tmp in folder.glob(".tmp-*.json"):
            try:
                if tmp.is_file() and not tmp.is_symlink():
                    tmp.unlink()
                    removed += 1
            except OSError:  # best effort: a leftover only wastes a little space
                pass
        if removed:
            logger.info("removed %d unfinished sub-problem file(s) of an interrupted run from "
                        "%s", removed, folder)
    return options


def _append(path: Path, row: dict[str, Any]) -> None:
    """:func:`append_row`; an OSError (disk full, ...) becomes OutputWriteError naming ``path``."""
    try:
        append_row(path, row)
    except OSError as exc:
        raise OutputWriteError(
            f"cannot write a row to {path}: {_reason(exc)}. The rows written before are kept; "
            f"fix the cause (e.g. free disk space) and rerun the same command to resume "
            f"(an incomplete last line is dropped then)") from None


def _load_traces(todo: Sequence[SuiteEntry]) -> dict[str, Any]:
    """The traces of the trace cases in ``todo``, loaded (generated or preprocessed on first
    use) before any case runs, so a missing or malformed trace stops the run up front."""
    from alpa_serve.experiments.trace_inputs import load_trace

    sources = sorted({e.case.workload.source for e in todo
                      if isinstance(e.case.workload, TraceWorkload)})
    return {source: load_trace(source) for source in sources}


# ---------------------------------------------------------------------------
# Ray helpers
# ---------------------------------------------------------------------------

def init_ray(options: RunOptions) -> bool:
    """Connect to or start Ray (:func:`alpa_serve.raycluster.connect`); True if this call
    started it (and must shut it down). RunnerError (one line) if it cannot."""
    try:
        return raycluster.connect(options.ray_connection())
    except raycluster.RayConnectError as exc:
        raise RunnerError(str(exc)) from None


def _prepare_task(case: Case, trace: Any) -> CaseInputs:
    """Ray task: the shared inputs of the cases with ``inputs_key(case)``."""
    traces = None
    if trace is not None and isinstance(case.workload, TraceWorkload):
        traces = {case.workload.source: trace}
    return prepare_inputs(case, traces)


def _case_task(case: Case, db: Any, inputs: CaseInputs, resources: SearchResources
               ) -> dict[str, Any]:
    """Ray task: one case on its prepared inputs -> row."""
    return run_prepared(case, db, inputs, resources)


# ---------------------------------------------------------------------------
# Execution
# ---------------------------------------------------------------------------

def _progress(total: int, initial: int, desc: str, enabled: bool, file: Any = None):
    """The progress bar: ``initial`` cases already done (resumed or copied), which do not
    count toward the rate and ETA (tqdm measures the rate from ``initial`` on)."""
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="case", disable=not enabled,
                dynamic_ncols=True, file=file)


def _start_clock(bar: Any) -> None:
    """Start the bar's clock now, when the first case is submitted, so that set-up time
    (Ray start-up, putting inputs in the object store) does not count toward the rate."""
    bar.unpause()


def _failure(case: Case, exc: BaseException) -> CaseFailure:
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    logger.error("case failed: %s: %s", case.describe(), text)
    return CaseFailure(case.case_id, case.describe(), text)


#: Relative cost of a case by policy family, used only to order submissions (most
#: expensive first, which shortens the tail of a run on few cores).
_POLICY_COST: tuple[tuple[str, float], ...] = (
    ("mp-search-sep", 100.0), ("mp-search", 10.0), ("sr-replace-", 5.0), ("mp-greedy-", 2.0),
)


def policy_cost(policy: str) -> float:
    """Heuristic relative cost of a policy (see :data:`_POLICY_COST`; others 1)."""
    for prefix, cost in _POLICY_COST:
        if policy.startswith(prefix):
            return cost
    return 1.0


@dataclass
class _Job:
    """Entries that are the same simulation (they differ only in ``exp_name``, e.g. the
    fixed point that every sweep of a figure column contains): run once, one row each."""

    entries: list[SuiteEntry]

    @property
    def case(self) -> Case:
        return self.entries[0].case


def simulation_key(case: Case) -> str:
    """Cases with equal keys have identical rows apart from ``exp_name`` and ``case_id``."""
    return case.replace(exp_name="").case_id


def _jobs(todo: Sequence[SuiteEntry]) -> list[_Job]:
    """``todo`` grouped into :class:`_Job` s (first-appearance order)."""
    jobs: dict[str, _Job] = {}
    for e in todo:
        key = simulation_key(e.case)
        if key in jobs:
            jobs[key].entries.append(e)
        else:
            jobs[key] = _Job([e])
    return list(jobs.values())


def _submission_order(jobs: Sequence[_Job]) -> list[_Job]:
    """``jobs`` sorted by decreasing policy cost, then by input group, then grid order."""
    first_seen: dict[str, int] = {}
    for j in jobs:
        first_seen.setdefault(inputs_key(j.case), len(first_seen))
    indexed = list(enumerate(jobs))
    indexed.sort(key=lambda ij: (-policy_cost(ij[1].case.policy),
                                 first_seen[inputs_key(ij[1].case)], ij[0]))
    return [j for _, j in indexed]


def _record(job: _Job, row: dict[str, Any], options: RunOptions, summary: RunSummary,
            bar: Any) -> None:
    """Append ``row`` (computed for ``job.case``) once per entry of ``job``."""
    for e in job.entries:
        own = dict(row)
        own.update(exp_name=e.case.exp_name, case_id=e.case.case_id)
        _append(options.out_dir / e.file, own)
        summary.ran += 1
        bar.update(1)


def _record_failure(job: _Job, exc: BaseException, summary: RunSummary, bar: Any) -> None:
    for e in job.entries:
        summary.failures.append(_failure(e.case, exc))
        bar.update(1)


def _run_serial(todo: Sequence[SuiteEntry], options: RunOptions, db: Any,
                summary: RunSummary, bar: Any) -> None:
    groups: dict[str, list[_Job]] = defaultdict(list)
    for job in _jobs(todo):
        groups[inputs_key(job.case)].append(job)
    _start_clock(bar)
    for group in groups.values():
        try:
            inputs = prepare_inputs(group[0].case)
        except Exception as exc:  # every case of the group fails the same way
            for job in group:
                _record_failure(job, exc, summary, bar)
            continue
        for job in group:
            try:
                row = run_prepared(job.case, db, inputs, options.search_resources())
            except Exception as exc:
                _record_failure(job, exc, summary, bar)
            else:
                _record(job, row, options, summary, bar)


def _run_ray(todo: Sequence[SuiteEntry], options: RunOptions, db: Any,
             summary: RunSummary, bar: Any, traces: dict[str, Any]) -> None:
    started = False
    try:
        # Inside the try: an interrupt right after start-up still shuts Ray down (one during
        # start-up is handled by raycluster.connect itself, which also imports ray first).
        started = init_ray(options)
        import ray

        prepare_remote = ray.remote(num_cpus=1)(_prepare_task)
        case_remote = ray.remote(num_cpus=1)(_case_task)
        db_ref = ray.put(db)  # shared read-only input: put once
        resources = options.search_resources()

        # Traces were loaded (generated/preprocessed if needed) once, by the driver. On the
        # local embedded instance workers open the preprocessed cache memory-mapped through
        # a small handle; on a remote cluster the trace itself goes to the object store.
        trace_refs: dict[str, Any] = {}
        if options.share_traces:
            from alpa_serve.experiments.trace_inputs import handle_of

            for source, trace in traces.items():
                shared = handle_of(trace) if options.ray_address is None else trace
                trace_refs[source] = ray.put(shared)

        # Most expensive policies first (shorter tail on few cores), at most
        # `max_in_flight` case tasks at a time; the shared inputs of a group are
        # prepared when its first case is submitted and released after its last one.
        order = _submission_order(_jobs(todo))
        remaining = Counter(inputs_key(j.case) for j in order)
        cpus = int(ray.cluster_resources().get("CPU", 1))
        max_in_flight = max(2 * cpus, 4)
        input_refs: dict[str, Any] = {}
        pending: dict[Any, tuple[_Job, str]] = {}
        next_index = 0
        _start_clock(bar)

        def submit(job: _Job) -> None:
            key = inputs_key(job.case)
            if key not in input_refs:
                wl = job.case.workload
                trace_ref = (trace_refs.get(wl.source) if isinstance(wl, TraceWorkload)
                             else None)
                input_refs[key] = prepare_remote.remote(job.case, trace_ref)
            pending[case_remote.remote(job.case, db_ref, input_refs[key], resources)] = (job,
                                                                                      key)

        while next_index < len(order) or pending:
            while next_index < len(order) and len(pending) < max_in_flight:
                submit(order[next_index])
                next_index += 1
            # A timeout keeps the loop responsive to signals (Ctrl-C, SIGTERM).
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            for ref in ready:
                job, key = pending.pop(ref)
                try:
                    row = ray.get(ref)
                except Exception as exc:
                    cause = getattr(exc, "cause", None) or exc
                    _record_failure(job, cause, summary, bar)
                else:
                    _record(job, row, options, summary, bar)
                remaining[key] -= 1
                if remaining[key] == 0:
                    del input_refs[key]  # let the object store free the shared inputs
    finally:
        if started:
            import ray

            ray.shutdown()


def run_entries(entries: Sequence[SuiteEntry], options: RunOptions, db: Any = None,
                desc: str = "cases") -> RunSummary:
    """Run the ``entries`` not yet in their TSV files (all with ``options.force``).

    Order (every refusal comes before any case runs and changes no file): the output folder
    is created and locked, every existing output file checked, the precomputed rows read;
    then ``force`` moves old files to new backup names, interrupted writes are repaired,
    precomputed rows copied, the traces of the remaining cases loaded, and the cases run.

    Raises:
        RunnerError, TsvFormatError, FileNotFoundError: the run cannot start (nothing ran).
        OutputWriteError: a row could not be written (the run stopped; rows before it kept).
    """
    t0 = time.perf_counter()
    if db is None:
        db = default_database()
    profiles = {e.case.case_id: profile_fingerprint(e.case, db) for e in entries}
    out_dir = _output_folder(Path(options.out_dir))
    options = _replace(options, out_dir=out_dir)
    by_file: dict[str, list[SuiteEntry]] = defaultdict(list)
    for e in entries:
        by_file[e.file].append(e)
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(folder_lock(out_dir))
        except FolderLockedError as exc:
            raise RunnerError(str(exc)) from None
        except OSError as exc:
            raise RunnerError(f"cannot write to the output folder {out_dir}: "
                              f"{_reason(exc)}; make it writable or choose another "
                              f"--out") from None
        states = _check_outputs(by_file, out_dir, options.force, profiles)
        seeded = 0
        if options.force:
            if options.seed_dir is not None:
                logger.info("--force: precomputed rows in %s are not used", options.seed_dir)
            _start_afresh(states)
        elif options.seed_dir is not None:
            seeded = seed_rows(entries, out_dir, options.seed_dir, profiles)
        todo = _todo(by_file, out_dir)
        summary = RunSummary(total=len(entries), skipped=len(entries) - len(todo),
                             files=sorted({out_dir / e.file for e in entries}), seeded=seeded)
        logger.info("%s: %d case(s), %d already done, %d to run (%s)", desc, len(entries),
                    summary.skipped, len(todo),
                    "serial" if options.serial else
                    f"Ray at {options.ray_address}" if options.ray_address else "embedded Ray")
        if todo:
            options = _subproblem_cache(options, out_dir)
            traces = _load_traces(todo)
            with _progress(len(entries), summary.skipped, desc, options.progress) as bar:
                if options.serial:
                    _run_serial(todo, options, db, summary, bar)
                else:
                    _run_ray(todo, options, db, summary, bar, traces)
    summary.seconds = time.perf_counter() - t0
    if summary.failures:
        logger.error("%s: %d case(s) failed; rerun to retry them (finished cases are skipped)",
                     desc, len(summary.failures))
    return summary


def _replace(options: RunOptions, **changes: Any) -> RunOptions:
    import dataclasses

    return dataclasses.replace(options, **changes)


def run_suite(name: str, options: RunOptions, suite_options: SuiteOptions = SuiteOptions(),
              db: Any = None) -> RunSummary:
    """Build suite ``name`` (see :mod:`~alpa_serve.experiments.suites`) and run it."""
    canonical = resolve_suite_name(name)
    entries = build_suite(canonical, suite_options)
    return run_entries(entries, options, db=db, desc=canonical)

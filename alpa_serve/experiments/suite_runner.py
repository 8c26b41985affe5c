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

This module is the entry point (:func:`run_entries`, :func:`run_suite`); the work is in
:mod:`~alpa_serve.experiments.outputs` (the output folder: lock, checks, backups, precomputed
rows, resume, appends), :mod:`~alpa_serve.experiments.scheduling` (jobs, their order, the
serial and Ray executors, the progress bar) and :mod:`~alpa_serve.experiments.run_options`
(:class:`RunOptions`, :class:`RunSummary` and the errors), whose public names are importable
from here too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

from alpa_serve.experiments.case_runner import default_database, profile_fingerprint
from alpa_serve.experiments.outputs import (
    backup_path,
    check_outputs,
    lock_folder,
    output_folder,
    pending_entries,
    seed_rows,
    start_afresh,
    subproblem_cache,
)
from alpa_serve.experiments.run_options import (
    SUBPROBLEM_FOLDER,
    CaseFailure,
    OutputWriteError,
    RunnerError,
    RunOptions,
    RunSummary,
)
from alpa_serve.experiments.scheduling import (
    init_ray,
    load_traces,
    policy_cost,
    progress_bar,
    run_ray,
    run_serial,
    simulation_key,
)
from alpa_serve.experiments.suites import SuiteEntry, SuiteOptions, build_suite, resolve_suite_name

__all__ = [
    "RunOptions", "RunSummary", "CaseFailure", "RunnerError", "OutputWriteError",
    "SUBPROBLEM_FOLDER", "run_entries", "run_suite", "seed_rows", "backup_path",
    "simulation_key", "policy_cost", "init_ray",
]

logger = logging.getLogger(__name__)


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
    out_dir = output_folder(Path(options.out_dir))
    options = dataclasses.replace(options, out_dir=out_dir)
    by_file: dict[str, list[SuiteEntry]] = defaultdict(list)
    for e in entries:
        by_file[e.file].append(e)
    with contextlib.ExitStack() as stack:
        lock_folder(stack, out_dir)
        states = check_outputs(by_file, out_dir, options.force, profiles)
        seeded = 0
        if options.force:
            if options.seed_dir is not None:
                logger.info("--force: precomputed rows in %s are not used", options.seed_dir)
            start_afresh(states)
        elif options.seed_dir is not None:
            seeded = seed_rows(entries, out_dir, options.seed_dir, profiles)
        todo = pending_entries(by_file, out_dir)
        summary = RunSummary(total=len(entries), skipped=len(entries) - len(todo),
                             files=sorted({out_dir / e.file for e in entries}), seeded=seeded)
        logger.info("%s: %d case(s), %d already done, %d to run (%s)", desc, len(entries),
                    summary.skipped, len(todo),
                    "serial" if options.serial else
                    f"Ray at {options.ray_address}" if options.ray_address else "embedded Ray")
        if todo:
            options = subproblem_cache(options, out_dir)
            traces = load_traces(todo)
            with progress_bar(len(entries), summary.skipped, desc, options.progress) as bar:
                if options.serial:
                    run_serial(todo, options, db, summary, bar)
                else:
                    run_ray(todo, options, db, summary, bar, traces)
    summary.seconds = time.perf_counter() - t0
    if summary.failures:
        logger.error("%s: %d case(s) failed; rerun to retry them (finished cases are skipped)",
                     desc, len(summary.failures))
    return summary


def run_suite(name: str, options: RunOptions, suite_options: SuiteOptions = SuiteOptions(),
              db: Any = None) -> RunSummary:
    """Build suite ``name`` (see :mod:`~alpa_serve.experiments.suites`) and run it."""
    canonical = resolve_suite_name(name)
    entries = build_suite(canonical, suite_options)
    return run_entries(entries, options, db=db, desc=canonical)

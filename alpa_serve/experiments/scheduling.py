"""Executing a suite's cases (DESIGN 7.4): jobs, their order, and the two executors.

Cases that are the same simulation (they differ only in ``exp_name``) form one :class:`Job`
(run once, one row each); jobs are submitted most expensive policy first
(:func:`policy_cost`), grouped by shared inputs. :func:`run_serial` runs them in-process;
:func:`run_ray` as Ray tasks (connecting with :mod:`alpa_serve.raycluster`), with the
profiling database and the loaded traces put in the object store once and each group's
workload inputs prepared by one task. Each finished row is appended at once
(:func:`~alpa_serve.experiments.outputs.write_row`); the progress bar counts only the cases
run now.
"""

from __future__ import annotations

import logging
import traceback
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any, Sequence

from alpa_serve import raycluster
from alpa_serve.experiments.case_runner import (
    CaseInputs,
    SearchResources,
    inputs_key,
    prepare_inputs,
    run_prepared,
)
from alpa_serve.experiments.cases import Case, TraceWorkload
from alpa_serve.experiments.outputs import write_row
from alpa_serve.experiments.run_options import CaseFailure, RunnerError, RunOptions, RunSummary
from alpa_serve.experiments.suites import SuiteEntry

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------
# Traces and Ray
# ---------------------------------------------------------------------------

def load_traces(todo: Sequence[SuiteEntry]) -> dict[str, Any]:
    """The traces of the trace cases in ``todo``, loaded (generated or preprocessed on first
    use) before any case runs, so a missing or malformed trace stops the run up front."""
    from alpa_serve.experiments.trace_inputs import load_trace

    sources = sorted({e.case.workload.source for e in todo
                      if isinstance(e.case.workload, TraceWorkload)})
    return {source: load_trace(source) for source in sources}


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
# Jobs, their order, execution
# ---------------------------------------------------------------------------

def progress_bar(total: int, initial: int, desc: str, enabled: bool, file: Any = None):
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
class Job:
    """Entries that are the same simulation (they differ only in ``exp_name``, e.g. the
    fixed point that every sweep of a figure column contains): run once, one row each."""

    entries: list[SuiteEntry]

    @property
    def case(self) -> Case:
        return self.entries[0].case


def simulation_key(case: Case) -> str:
    """Cases with equal keys have identical rows apart from ``exp_name`` and ``case_id``."""
    return case.replace(exp_name="").case_id


def group_jobs(todo: Sequence[SuiteEntry]) -> list[Job]:
    """``todo`` grouped into :class:`Job` s (first-appearance order)."""
    jobs: dict[str, Job] = {}
    for e in todo:
        key = simulation_key(e.case)
        if key in jobs:
            jobs[key].entries.append(e)
        else:
            jobs[key] = Job([e])
    return list(jobs.values())


def submission_order(jobs: Sequence[Job]) -> list[Job]:
    """``jobs`` sorted by decreasing policy cost, then by input group, then grid order."""
    first_seen: dict[str, int] = {}
    for j in jobs:
        first_seen.setdefault(inputs_key(j.case), len(first_seen))
    indexed = list(enumerate(jobs))
    indexed.sort(key=lambda ij: (-policy_cost(ij[1].case.policy),
                                 first_seen[inputs_key(ij[1].case)], ij[0]))
    return [j for _, j in indexed]


def _record(job: Job, row: dict[str, Any], options: RunOptions, summary: RunSummary,
            bar: Any) -> None:
    """Append ``row`` (computed for ``job.case``) once per entry of ``job``."""
    for e in job.entries:
        own = dict(row)
        own.update(exp_name=e.case.exp_name, case_id=e.case.case_id)
        write_row(options.out_dir / e.file, own)
        summary.ran += 1
        bar.update(1)


def _record_failure(job: Job, exc: BaseException, summary: RunSummary, bar: Any) -> None:
    for e in job.entries:
        summary.failures.append(_failure(e.case, exc))
        bar.update(1)


def run_serial(todo: Sequence[SuiteEntry], options: RunOptions, db: Any,
                summary: RunSummary, bar: Any) -> None:
    groups: dict[str, list[Job]] = defaultdict(list)
    for job in group_jobs(todo):
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


def run_ray(todo: Sequence[SuiteEntry], options: RunOptions, db: Any,
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
        order = submission_order(group_jobs(todo))
        remaining = Counter(inputs_key(j.case) for j in order)
        cpus = int(ray.cluster_resources().get("CPU", 1))
        max_in_flight = max(2 * cpus, 4)
        input_refs: dict[str, Any] = {}
        pending: dict[Any, tuple[Job, str]] = {}
        next_index = 0
        _start_clock(bar)

        def submit(job: Job) -> None:
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

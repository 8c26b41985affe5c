"""What a suite run is given and what it gives back (DESIGN 7.4): :class:`RunOptions`,
:class:`RunSummary` with its :class:`CaseFailure` s, and the two errors a run stops with.

Shared by :mod:`~alpa_serve.experiments.outputs` (the output folder's bookkeeping),
:mod:`~alpa_serve.experiments.scheduling` (the cases' execution) and
:mod:`~alpa_serve.experiments.suite_runner` (the entry point, which re-exports them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from alpa_serve import raycluster
from alpa_serve.experiments.case_runner import SearchResources

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
            moved to new backup names, see :func:`~alpa_serve.experiments.outputs.backup_path`).
        connect_timeout: seconds within which a Ray cluster address must answer and
            ``ray.init`` must complete.
        progress: show a tqdm progress bar.
        share_traces: load each trace once in the driver and share it (a handle to its
            memory-mapped cache locally, the trace itself on a remote cluster); else each
            worker loads it.
        seed_dir: folder of precomputed TSV files (same names as the suite's); their rows
            for cases of the grid that are not yet done are copied in first (see
            :func:`~alpa_serve.experiments.outputs.seed_rows`). Ignored with ``force``.
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

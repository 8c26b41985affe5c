"""The output folder of a suite run (DESIGN 7.4): its lock, the checks of its TSV files before
any case runs, ``--force`` backups, precomputed rows, resume and row appends.

Nothing here runs a case: :mod:`~alpa_serve.experiments.suite_runner` calls these in order
(see :func:`~alpa_serve.experiments.suite_runner.run_entries`) and
:mod:`~alpa_serve.experiments.scheduling` appends each finished row with :func:`write_row`.
The TSV format itself is :mod:`alpa_serve.results`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from collections import defaultdict
from pathlib import Path
from typing import Any, Mapping, Sequence

from alpa_serve.experiments.lock import FolderLockedError, folder_lock
from alpa_serve.experiments.run_options import (
    SUBPROBLEM_FOLDER,
    OutputWriteError,
    RunnerError,
    RunOptions,
)
from alpa_serve.experiments.suites import SuiteEntry
from alpa_serve.results import (
    COLUMNS,
    PreviousVersionError,
    ResultFileState,
    append_row,
    finished_case_ids,
    inspect_result_file,
    read_rows,
    repair_partial_tail,
    row_search,
)

logger = logging.getLogger(__name__)


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
                write_row(dst, r)
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


def output_folder(out_dir: Path) -> Path:
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


def check_outputs(by_file: dict[str, list[SuiteEntry]], out_dir: Path, force: bool,
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


def start_afresh(states: dict[str, ResultFileState]) -> None:
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


def pending_entries(by_file: dict[str, list[SuiteEntry]], out_dir: Path) -> list[SuiteEntry]:
    """Repair interrupted writes and return the entries that have no row yet."""
    todo: list[SuiteEntry] = []
    for name, file_entries in by_file.items():
        path = out_dir / name
        repair_partial_tail(path)
        done = finished_case_ids(path)
        todo.extend(e for e in file_entries if e.case.case_id not in done)
    return todo


def subproblem_cache(options: RunOptions, out_dir: Path) -> RunOptions:
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
        return dataclasses.replace(options, share_subproblems=False)
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


def write_row(path: Path, row: dict[str, Any]) -> None:
    """:func:`append_row`; an OSError (disk full, ...) becomes OutputWriteError naming ``path``."""
    try:
        append_row(path, row)
    except OSError as exc:
        raise OutputWriteError(
            f"cannot write a row to {path}: {_reason(exc)}. The rows written before are kept; "
            f"fix the cause (e.g. free disk space) and rerun the same command to resume "
            f"(an incomplete last line is dropped then)") from None


def lock_folder(stack: contextlib.ExitStack, out_dir: Path) -> None:
    """Take the lock of ``out_dir`` (:mod:`~alpa_serve.experiments.lock`) for the life of
    ``stack``; RunnerError (one line) if another run holds it or the folder is not writable."""
    try:
        stack.enter_context(folder_lock(out_dir))
    except FolderLockedError as exc:
        raise RunnerError(str(exc)) from None
    except OSError as exc:
        raise RunnerError(f"cannot write to the output folder {out_dir}: "
                          f"{_reason(exc)}; make it writable or choose another "
                          f"--out") from None

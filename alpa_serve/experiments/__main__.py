"""Command line: ``python -m alpa_serve.experiments <suite> --out DIR [options]``.

Runs every case of a suite (DESIGN 7.2) not yet in its TSV file; see docs/experiments.md
(section "Guarantees"). Exit status: 0 when every case has a row; 1 when some case failed or
a row could not be written (disk full); 2 when the run is refused before any case runs
(unknown suite, unusable or locked output folder, a file this runner did not write, stale
results, a malformed profile or trace, a profile without a model of the suite, unreachable Ray
cluster); 130 when interrupted (Ctrl-C or SIGTERM; rerun to resume). Every error is one line,
without a traceback (-v adds it).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path
from typing import Optional, Sequence

from alpa_serve import raycluster
from alpa_serve.experiments.suite_runner import OutputWriteError, RunnerError, RunOptions, run_suite
from alpa_serve.experiments.suites import (
    SUITE_ALIASES,
    SUITES,
    CalibrationTargetsError,
    SuiteOptions,
    UnknownFileError,
    UnknownSuiteError,
    resolve_suite_name,
)
from alpa_serve.profiling import DatabaseFormatError, ProfilingDatabase, UnknownModelError
from alpa_serve.results import SEARCH_EXACT, SEARCH_MODES, TsvFormatError
from alpa_serve.workload.trace_defs import TraceError

logger = logging.getLogger("alpa_serve.experiments")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m alpa_serve.experiments",
        description="Run the simulated experiments of one figure and append one TSV row per "
                    "finished case (finished cases are skipped on reruns).")
    parser.add_argument("suite", help=f"suite to run: {', '.join(SUITES)} "
                        f"(aliases: {', '.join(SUITE_ALIASES)})")
    parser.add_argument("--out", required=True, type=Path,
                        help="output folder of the suite's TSV files")
    parser.add_argument("--quick", action="store_true",
                        help="reduced grid (first point of each sweep and the one nearest the "
                             "fixed point, shorter windows) for smoke tests")
    parser.add_argument("--serial", action="store_true", help="run in-process without Ray")
    raycluster.add_arguments(parser)
    parser.add_argument("--force", action="store_true",
                        help="recompute every case: start the TSV files afresh (each old one "
                             "is moved to a new backup name, NAME.bak, NAME.bak1, ...; no "
                             "backup is overwritten)")
    parser.add_argument("--legacy-fig13", action="store_true",
                        help="fig13: reproduce the published driver's quirk (device and SLO "
                             "sweeps of pairs 2 and 3 at cv_scale 8)")
    parser.add_argument("--traces", choices=("auto", "standin", "real"), default="auto",
                        help="Azure traces: 'real' files (at $ALPA_SERVE_MAF1_PATH / "
                             "$ALPA_SERVE_MAF2_PATH), generated 'standin's, or 'auto' (default): "
                             "the real trace where its variable is set, else the stand-in")
    parser.add_argument("--targets", default=None,
                        help="calibration suite: path of calibration_targets.tsv (default: the "
                             "copy packaged in alpa_serve/data/reference/)")
    parser.add_argument("--only", default="", metavar="FILE[,FILE...]",
                        help="run only the cases of these TSV files of the suite, e.g. "
                             "S1_maf1.tsv (one column of Fig. 11)")
    parser.add_argument("--exclude", default="", metavar="FILE[,FILE...]",
                        help="skip the cases of these TSV files, e.g. S3_maf2.tsv (the Fig. 11 "
                             "column that takes hours on 2 cores)")
    parser.add_argument("--seed-from", default=None, type=Path, metavar="DIR",
                        help="copy the rows of cases of the grid from precomputed TSV files in "
                             "DIR (same file names; current profile only) before running, so "
                             "those cases are not computed; ignored with --force. "
                             "gen_data_sec6_2_e2e.sh uses osdi23_artifact/precomputed/sec6_2_data")
    parser.add_argument("--profile", default=None, type=Path, metavar="PATH",
                        help="profiling database to simulate with instead of the committed "
                             "reconstruction: our .pkl/.json, the original artifact's "
                             "profiling_result.pkl, or raw benchmark rows (.tsv); every row "
                             "records its fingerprint (column profile)")
    parser.add_argument("--split-cases", action="store_true",
                        help="also run each case's independent greedy searches as Ray tasks "
                             "(one case over all workers of a cluster; identical rows)")
    parser.add_argument("--no-subproblem-cache", action="store_true",
                        help="do not keep solved mp-search-sep sub-problems in OUT/.subproblems "
                             "(cases of a device sweep then solve them again; identical rows, "
                             "longer solver_seconds)")
    parser.add_argument("--search", choices=SEARCH_MODES, default=SEARCH_EXACT,
                        help="placement search of every case: 'exact' (default) or 'fast' "
                             "(opt-in, DESIGN 7.8: mp-search/mp-search-sep train on some replay "
                             "windows of a trace case's day, evaluated on the whole day; rows "
                             "say search=fast, never mixed with exact rows in one file)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


def _file_list(text: str) -> tuple[str, ...]:
    """``"a.tsv, b.tsv"`` -> ``("a.tsv", "b.tsv")``."""
    return tuple(f.strip() for f in text.split(",") if f.strip())


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _log_error(message: str, exc: BaseException) -> None:
    """One error line; the traceback only at debug level (-v)."""
    logger.error("%s", message)
    logger.debug("details", exc_info=exc)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        suite = resolve_suite_name(args.suite)
    except UnknownSuiteError as exc:
        parser.error(str(exc))
    options = RunOptions(out_dir=args.out, serial=args.serial, ray_address=args.ray_address,
                         num_cpus=args.num_cpus, force=args.force,
                         connect_timeout=args.connect_timeout, progress=not args.no_progress,
                         seed_dir=args.seed_from, split_cases=args.split_cases,
                         share_subproblems=not args.no_subproblem_cache)
    suite_options = SuiteOptions(quick=args.quick, legacy_fig13=args.legacy_fig13,
                                 traces=args.traces, calibration_targets=args.targets,
                                 only_files=_file_list(args.only),
                                 exclude_files=_file_list(args.exclude),
                                 search=args.search)
    db = None
    if args.profile is not None:
        try:
            db = ProfilingDatabase.load(args.profile)
        except (DatabaseFormatError, FileNotFoundError) as exc:
            _log_error(f"--profile: cannot use {args.profile}: {exc}", exc)
            return 2
        logger.info("profile %s: %d models (%s), fingerprint %s", args.profile, len(db),
                    ", ".join(db.model_names()), db.fingerprint())
    signal.signal(signal.SIGTERM, _terminate)  # SIGTERM = Ctrl-C: rows kept, Ray shut down
    try:
        summary = run_suite(suite, options, suite_options, db=db)
    except DatabaseFormatError as exc:
        _log_error(f"the profiling database cannot be used: {exc}; reinstall the package or "
                   f"regenerate it with `python -m alpa_serve.profiling.generate`", exc)
        return 2
    except UnknownModelError as exc:
        where = args.profile if args.profile is not None else "the committed database"
        _log_error(f"{suite} needs a model the profile does not have ({where}): {exc}", exc)
        return 2
    except (RunnerError, TsvFormatError, FileNotFoundError, UnknownFileError, TraceError,
            CalibrationTargetsError) as exc:
        _log_error(str(exc), exc)
        return 2
    except OutputWriteError as exc:
        _log_error(str(exc), exc)
        return 1
    except OSError as exc:  # an unexpected I/O failure: one line, the traceback with -v
        _log_error(f"{exc}", exc)
        return 2
    except KeyboardInterrupt:
        if args.force:
            how = ("rerun without --force to resume (with --force the files would be moved to "
                   "new backups and started again)")
        else:
            how = "rerun the same command to resume"
        logger.error("%s: interrupted; finished cases are in %s; %s", suite, args.out, how)
        return 130
    logger.info("%s: %d case(s) in the grid, %d skipped (already done, %d of them copied from "
                "precomputed rows), %d run, %d failed, %.1f s; files: %s", suite, summary.total,
                summary.skipped, summary.seeded, summary.ran,
                len(summary.failures), summary.seconds,
                ", ".join(str(p) for p in summary.files))
    for failure in summary.failures:
        logger.error("failed: %s: %s", failure.description, failure.error)
    return 0 if summary.ok else 1


if __name__ == "__main__":
    sys.exit(main())

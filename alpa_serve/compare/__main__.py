"""Command line: ``python -m alpa_serve.compare OURS ORIGINAL --out DIR [options]``.

OURS: our artifact folder (``osdi23_artifact/`` with ``sec6_*_data/`` inside) or one of its data
folders; ORIGINAL: the original artifact's folder laid out as it writes it
(``sec6_2_data/azure_v1_1dot3b.tsv`` ...), one of its data folders, or one result file. Writes
``report.md``, ``comparison.tsv`` and ``ordering.tsv`` into DIR (created; only these three files
are written, never into ORIGINAL) and prints their paths and the verdicts. Exit status 0; 2 when
an input cannot be read (one ``error:`` line naming file and line).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Optional, Sequence

from alpa_serve.original_results import OriginalResultError
from alpa_serve.results import DATA_DIRS, TsvFormatError

from .report import DEFAULT_TOL, Comparison, claim_results, collect, write_report

logger = logging.getLogger("alpa_serve.compare")


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def check_profile(comp: Comparison, profile: Path) -> str:
    """A sentence saying whether our rows were computed with the database at ``profile``: each
    row's ``profile`` column against that database's fingerprint of the row's model types."""
    from alpa_serve.experiments.cases import model_set_types
    from alpa_serve.profiling import ProfilingDatabase, UnknownModelError
    from alpa_serve.results import read_results

    db = ProfilingDatabase.load(profile)
    same = other = 0
    for path in comp.ours_files:
        df = read_results(path)
        if "profile" not in df.columns or "model_set" not in df.columns:
            continue
        for model_set, fingerprint in zip(df["model_set"], df["profile"]):
            try:
                expected = db.fingerprint(model_set_types(model_set))
            except UnknownModelError:
                expected = None
            same, other = (same + 1, other) if fingerprint == expected else (same, other + 1)
    verdict = "all of them" if other == 0 and same else f"{same} of {same + other}"
    return (f"Profile check against `{profile}` (fingerprint {db.fingerprint()}): {verdict} of "
            "our rows were computed with its numbers.")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the comparison; return the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m alpa_serve.compare",
        description="Compare our result files with the original artifact's: report.md, "
                    "comparison.tsv and ordering.tsv.")
    parser.add_argument("ours", type=Path, help="our artifact folder or one of its "
                        "sec6_*_data folders")
    parser.add_argument("original", type=Path, help="the original artifact's folder (or one "
                        "of its sec6_*_data folders, or one result file)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the report")
    parser.add_argument("--figures", default=None,
                        help=f"figures to compare, from {','.join(DATA_DIRS)} (default: all; "
                             "the one figure of OURS when it is a sec6_*_data folder)")
    parser.add_argument("--tol", type=float, default=DEFAULT_TOL,
                        help=f"goodput difference counted as equal (default {DEFAULT_TOL})")
    parser.add_argument("--profile", type=Path, default=None,
                        help="also check that our rows were computed with this profiling "
                             "database (e.g. the original profile converted or as is)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    own = [fig for fig, folder in DATA_DIRS.items() if args.ours.name == folder]
    text = args.figures if args.figures is not None else ",".join(own or DATA_DIRS)
    figures = tuple(f.strip() for f in text.split(",") if f.strip())
    unknown = [f for f in figures if f not in DATA_DIRS]
    if unknown or not figures:
        parser.error(f"--figures: unknown {unknown}; choose from {', '.join(DATA_DIRS)}")
    if not 0 <= args.tol < 1:
        parser.error("--tol must be in [0, 1)")
    if args.original.exists() and _inside(args.out, args.original if args.original.is_dir()
                                          else args.original.parent):
        print(f"error: --out {args.out} is inside the original artifact's folder "
              f"{args.original}; choose a folder outside it (its files are never modified)",
              file=sys.stderr)
        return 2
    try:
        comp = collect(args.ours, args.original, figures, args.tol)
        if args.profile is not None:
            comp.profile_check = check_profile(comp, args.profile)
    except (FileNotFoundError, TsvFormatError, OriginalResultError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    paths = write_report(comp, args.out)
    for p in paths:
        sys.stdout.write(f"{p}\n")
    for c in claim_results(comp):
        sys.stdout.write(f"{c.figure}: {c.text}: {c.verdict}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

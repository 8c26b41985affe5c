"""Convert a profiling database between its forms (DESIGN 3.5).

    python -m alpa_serve.profiling.convert IN --out OUT [--to ours|original|rows] [--force]

IN is anything ``ProfilingDatabase.load`` reads: our ``.pkl`` or ``.json``, the original
artifact's ``profiling_result.pkl`` (class-based; read without running it) or raw benchmark rows
(``.tsv``, with or without header). OUT is written in our form (``--to ours``, the default; the
suffix picks ``.pkl`` or ``.json``), in the original artifact's pickle layout (``--to original``,
loadable by the original package) or as raw benchmark rows (``--to rows``, ``.tsv``). The input
is only read; an existing OUT is replaced only with ``--force``, and never when it is IN.
Prints one line: what was written, the number of models and the fingerprint (DESIGN 3.1) that
result rows computed with it will carry for the model types they use. Exit status 0, 2 on an
unreadable input or a refused output (one ``error:`` line).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Sequence

from alpa_serve.profiling.benchmark_rows import database_to_rows, write_rows
from alpa_serve.profiling.database import DatabaseFormatError, ProfilingDatabase
from alpa_serve.profiling.original_format import to_original_bytes

logger = logging.getLogger(__name__)

#: Output forms and the suffixes each accepts.
TARGETS = {"ours": (".pkl", ".json"), "original": (".pkl",), "rows": (".tsv",)}


def convert(src: str | Path, out: str | Path, to: str = "ours",
            force: bool = False) -> ProfilingDatabase:
    """Read ``src`` and write it to ``out`` in form ``to``; return the database.

    Raises DatabaseFormatError (unreadable ``src``), FileExistsError (``out`` exists and not
    ``force``, or ``out`` is ``src``), ValueError (unknown form or a suffix it cannot write).
    """
    src, out = Path(src), Path(out)
    if to not in TARGETS:
        raise ValueError(f"unknown target form {to!r}; expected one of {', '.join(TARGETS)}")
    suffix = out.suffix.lower()
    if suffix not in TARGETS[to]:
        raise ValueError(f"--to {to} writes {' or '.join(TARGETS[to])} files, not {out.name}")
    if out.exists() and (src.exists() and out.resolve() == src.resolve()):
        raise FileExistsError(f"{out} is the input file; choose another --out (the input is "
                              "never modified)")
    if out.exists() and not force:
        raise FileExistsError(f"{out} exists; pass --force to replace it")
    db = ProfilingDatabase.load(src)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    if to == "rows":
        write_rows(out, database_to_rows(db))
    else:
        tmp.write_bytes(to_original_bytes(db) if to == "original" else db.to_bytes(suffix))
        os.replace(tmp, out)
    return db


def main(argv: Sequence[str] | None = None) -> int:
    """Command line (see the module text); returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m alpa_serve.profiling.convert",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("input", type=Path, help="database to read (.pkl ours or original, "
                        ".json, .tsv raw benchmark rows)")
    parser.add_argument("--out", type=Path, required=True, help="file to write")
    parser.add_argument("--to", choices=tuple(TARGETS), default="ours",
                        help="output form: ours (.pkl/.json, default), original (the original "
                             "artifact's pickle layout), rows (raw benchmark rows, .tsv)")
    parser.add_argument("--force", action="store_true", help="replace an existing --out")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        db = convert(args.input, args.out, args.to, args.force)
    except (DatabaseFormatError, FileExistsError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(f"wrote {args.out} ({args.to} form, {len(db)} models: "
                     f"{', '.join(db.model_names())}; fingerprint {db.fingerprint()})\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Regenerate the committed profiling database from the cost model.

    python -m alpa_serve.profiling.generate        # -> alpa_serve/data/profiling_result.pkl
    python -m alpa_serve.profiling.generate --out DIR/x.pkl --json DIR/x.json

``osdi23_artifact/profiling_result.pkl`` is a git symlink to the package file. The output is
byte-for-byte deterministic (fixed pickle protocol, fixed key order, rounded numbers).
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Sequence

from alpa_serve.profiling.cost_model import build_database
from alpa_serve.profiling.database import ProfilingDatabase
from alpa_serve.profiling.memory_evidence import check_database

logger = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> int:
    """Write the database; refuse (exit 1) if its weights break the memory evidence."""
    parser = argparse.ArgumentParser(prog="python -m alpa_serve.profiling.generate",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ProfilingDatabase.default_path()),
                        help="pickle to write (default: the package's committed database)")
    parser.add_argument("--json", help="also write the JSON form here")
    parser.add_argument("--skip-evidence-check", action="store_true",
                        help="write even if the weights violate memory_evidence.tsv")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    db = build_database()
    violations = check_database(db)
    if violations and not args.skip_evidence_check:
        for v in violations:
            print(f"VIOLATION {v}", file=sys.stderr)
        print(f"{len(violations)} memory-evidence violation(s); nothing written",
              file=sys.stderr)
        return 1
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    db.save(out)
    if args.json:
        db.save(Path(args.json))
    print(f"wrote {out} ({len(db)} models, fingerprint {db.fingerprint()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Command line shared by the four reviewer plot scripts in osdi23_artifact/.

Each script is ``python3 plot_sec6_X_*.py [--pdf] [--png] [--data-dir D] [--out-dir O]
[--compare DIR]``. Default
folders are resolved relative to the script file, not the working directory, so that the script
works when started from anywhere.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Sequence

from alpa_serve.original_results import OriginalResultError
from alpa_serve.results import TsvFormatError

from .figures import MissingDataError, get_section, write_figures


def main(section: str, script_file: str, argv: Sequence[str] | None = None) -> int:
    """Run a plot script for ``section``; return the process exit status.

    Prints the written paths (one per line) on stdout; on missing or unreadable data prints one
    ``error: ...`` line on stderr and returns 1 (no traceback: the message says what to do).
    """
    sec = get_section(section)
    here = Path(script_file).resolve().parent
    parser = argparse.ArgumentParser(
        description=f"Plot {sec.figure} from {sec.data_dir}/ (made by {sec.gen_script}).")
    parser.add_argument("--pdf", action="store_true", help="write PDF (the default format)")
    parser.add_argument("--png", action="store_true", help="write PNG (for quick viewing)")
    parser.add_argument("--data-dir", type=Path, default=here / sec.data_dir,
                        help=f"folder with the TSVs (default: {sec.data_dir}/ beside this script)")
    parser.add_argument("--out-dir", type=Path, default=here / "paper_figures",
                        help="output folder (default: paper_figures/ beside this script)")
    parser.add_argument("--compare", type=Path, default=None, metavar="DIR",
                        help="also draw the original artifact's results on every panel (hollow "
                             "markers, dashed lines): its folder with sec6_*_data/ inside, or "
                             f"its {sec.data_dir}/ folder")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    formats = [f for f, on in (("pdf", args.pdf), ("png", args.png)) if on] or ["pdf"]
    try:
        paths = write_figures(section, args.data_dir, args.out_dir, formats, args.compare)
    except (MissingDataError, TsvFormatError, OriginalResultError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for p in paths:
        print(p)
    return 0

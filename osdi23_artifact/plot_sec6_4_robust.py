#!/usr/bin/env python3
"""Fig. 13: robustness to changing traffic (mean over train/test pairs).

Usage: python3 plot_sec6_4_robust.py --pdf [--png] [--data-dir D] [--out-dir O]
Reads sec6_4_data/ beside this script and writes into paper_figures/ beside it (see
docs/figures.md for the TSV naming and how to read the figure).
"""

import sys

from alpa_serve.plotting.cli import main

if __name__ == "__main__":
    sys.exit(main("sec6_4", __file__))

#!/usr/bin/env python3
"""Fig. 12: serving very large models (S4).

Usage: python3 plot_sec6_3_large.py --pdf [--png] [--data-dir D] [--out-dir O]
Reads sec6_3_data/ beside this script and writes into paper_figures/ beside it (see
docs/figures.md for the TSV naming and how to read the figure).
"""

import sys

from alpa_serve.plotting.cli import main

if __name__ == "__main__":
    sys.exit(main("sec6_3", __file__))

#!/usr/bin/env python3
"""Fig. 14: ablation of the placement algorithm.

Usage: python3 plot_sec6_5_ab.py --pdf [--png] [--data-dir D] [--out-dir O]
Reads sec6_5_data/ beside this script and writes into paper_figures/ beside it (see
docs/figures.md for the TSV naming and how to read the figure).
"""

import sys
from pathlib import Path

try:
    from alpa_serve.plotting.cli import main
except ImportError:
    # Not installed (pip install -e .): use the checkout this script lives in.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from alpa_serve.plotting.cli import main

if __name__ == "__main__":
    sys.exit(main("sec6_5", __file__))

"""Shared figure code for the Section 6 figures (DESIGN 7.5).

Reading the result TSVs (:mod:`.tsv`), policy labels and colours (:mod:`.styles`), the 99%
markers (:mod:`.markers`), panels and figure assembly (:mod:`.panels`), and the per-figure
layouts and file naming (:mod:`.figures`); :mod:`.cli` is the reviewer scripts' command line.
What each sweep is (x column, axis label, panel title, marker direction) is read from
:mod:`alpa_serve.sweeps`.
See docs/figures.md.
"""

from alpa_serve.results import TsvFormatError, read_results
from alpa_serve.sweeps import EXP_X

from .figures import SECTIONS, MissingDataError, build_figures, get_section, write_figures
from .markers import DIRECTION_BY_X, THRESHOLD, direction_for, point_99
from .panels import FAST_GID, STANDIN_GID, Panel, make_figure, save_figure, sweep_points
from .styles import PolicyStyle, policy_style

__all__ = [
    "SECTIONS", "MissingDataError", "build_figures", "get_section", "write_figures",
    "DIRECTION_BY_X", "THRESHOLD", "direction_for", "point_99",
    "EXP_X", "FAST_GID", "STANDIN_GID", "Panel", "make_figure", "save_figure", "sweep_points",
    "PolicyStyle", "policy_style", "TsvFormatError", "read_results",
]

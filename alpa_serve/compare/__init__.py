"""Comparison of our result files with the original artifact's (DESIGN 7.7).

``python -m alpa_serve.compare OURS ORIGINAL --out DIR`` writes ``DIR/report.md`` (per figure:
the agreement of every policy's curve, the order of the policies at each shared x, and a
verdict per claim the paper draws from the figure), ``DIR/comparison.tsv`` (one row per figure,
panel, sweep and policy: shared points, ``mae``, ``max_abs``, ...) and ``DIR/ordering.tsv``.

    from alpa_serve.compare import collect, write_report
    write_report(collect(ours_dir, original_dir), "cmp")   # two result folders
"""

from .claims import Claim, ClaimCheck, claims
from .report import (
    COMPARISON_COLUMNS,
    DEFAULT_TOL,
    ORDERING_COLUMNS,
    Comparison,
    claim_results,
    collect,
    ordering_rows,
    policy_key,
    policy_rows,
    write_report,
)

__all__ = [
    "Claim", "ClaimCheck", "claims", "COMPARISON_COLUMNS", "DEFAULT_TOL", "ORDERING_COLUMNS",
    "Comparison", "claim_results", "collect", "ordering_rows", "policy_key", "policy_rows",
    "write_report",
]

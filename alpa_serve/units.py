"""Units and fixed quantities shared by every layer (no dependencies).

Memory is counted in bytes everywhere; "GB" in the paper's memory budgets and in our docs is
the binary gibibyte :data:`GiB`. Decimal units appear only in sourced hardware numbers (e.g.
a 25 GB/s NVLink link or 25 Gbps Ethernet in ``profiling/params.py``), written out there as
powers of ten.
"""

GiB = 1 << 30
"""One gibibyte in bytes (2**30)."""

DEFAULT_MEM_BUDGET = 13 * GiB
"""Per-device memory budget of every published experiment, bytes (13 GiB): the default of
``ClusterEnv`` and ``Case``, and the budget the published rows of the memory evidence were
placed under."""

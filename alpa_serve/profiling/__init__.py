"""Profiling database (per-stage latency and memory) and the V100 cost model that produces it.

Public API (DESIGN 10, docs/architecture.md)::

    from alpa_serve.profiling import ParallelConfig, ProfilingDatabase
    db = ProfilingDatabase.default()          # committed V100 reconstruction
    prof = db.get("bert-2.6b")
    prof.latency(ParallelConfig(1, 1, 2), batch_size=1)   # per-stage seconds
"""
from alpa_serve.profiling.database import (
    ConfigNotProfiledError,
    ConfigProfile,
    DatabaseFormatError,
    ModelProfile,
    ParallelConfig,
    ProfilingDatabase,
    UnknownModelError,
)

__all__ = [
    "ConfigNotProfiledError",
    "ConfigProfile",
    "DatabaseFormatError",
    "ModelProfile",
    "ParallelConfig",
    "ProfilingDatabase",
    "UnknownModelError",
]

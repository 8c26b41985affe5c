"""Helpers for the experiments tests: a small hand-made profiling database.

Kept independent of the committed V100 reconstruction so that the runner's
tests do not depend on calibration; latencies (s) and weights (bytes) are
round numbers with the shape of the real profiles.
"""

from __future__ import annotations

from alpa_serve.profiling import ConfigProfile, ModelProfile, ParallelConfig, ProfilingDatabase

GB = 1 << 30

#: type -> (single-device b=1 latency in s, total weight in bytes)
TINY_MODELS = {
    "bert-1.3b": (0.151, 2.9e9),
    "bert-2.6b": (0.238, 5.5e9),
    "bert-6.7b": (0.395, 13.0e9),
    "moe-1.3b": (0.18, 2.9e9),
    "moe-2.4b": (0.20, 5.0e9),
    "moe-5.3b": (0.21, 11.0e9),
}


def tiny_database() -> ProfilingDatabase:
    """Profiles with op in {1, 2, 4} and pp in {1, 2, 4, 8} for the model types of the sets."""
    profiles = []
    for name, (lat, weight) in TINY_MODELS.items():
        configs = {}
        for op in (1, 2, 4):
            for pp in (1, 2, 4, 8):
                stage = lat / op / pp * (1.0 + 0.05 * (op - 1) + 0.04 * (pp - 1))
                w = weight / op / pp
                configs[ParallelConfig(1, op, pp)] = ConfigProfile(
                    latency={1: tuple([stage] * pp)}, act_mem={1: tuple([1e8] * pp)},
                    weight_mem=tuple([w] * pp))
        profiles.append(ModelProfile(name, configs))
    return ProfilingDatabase(profiles, hardware={"note": "tests only"})

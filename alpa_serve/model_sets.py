"""The models of a case, their SLO base and the default profiles (DESIGN 3.3, 4.2, 7.1).

Shared by the experiments (``experiments.cases``, ``experiments.case_runner``, which re-export
these names) and the serving runtime's command line, which serves a placement with the
experiments' model names, types and SLOs without importing the experiments package. Imports only
``alpa_serve.profiling``.
"""

from __future__ import annotations

from typing import Optional

from alpa_serve.profiling import ModelProfile, ProfilingDatabase

#: Model type lists of the named model sets (DESIGN 7.1 and 3.3). Model i of a
#: set has type ``types[i % len(types)]``.
MODEL_SETS: dict[str, tuple[str, ...]] = {
    "S1": ("bert-1.3b",),
    "S2": ("bert-6.7b",),
    "S3": ("bert-6.7b", "moe-5.3b", "bert-2.6b", "moe-2.4b", "bert-1.3b", "moe-1.3b"),
    "S4": ("bert-103.5b",),
    "all_transformers": ("bert-6.7b", "bert-2.6b", "bert-1.3b"),
    "mixed": ("bert-6.7b", "moe-5.3b", "bert-2.6b", "moe-2.4b", "bert-1.3b", "moe-1.3b"),
}


def model_set_types(model_set: str) -> tuple[str, ...]:
    """Return the model type cycle of ``model_set``.

    A name of :data:`MODEL_SETS` gives its list; any other string is taken as a
    single model type (e.g. ``"bert-2.6b"``), checked later against the profile
    database.
    """
    if not model_set:
        raise ValueError("model_set must be a non-empty string")
    return MODEL_SETS.get(model_set, (model_set,))


def model_types(model_set: str, num_models: int) -> list[str]:
    """Model type of every model of a case: model i has ``types[i % len(types)]``."""
    types = model_set_types(model_set)
    return [types[i % len(types)] for i in range(num_models)]


def model_names(model_set: str, num_models: int) -> list[str]:
    """Model names of a case.

    Equal-model sets (one type) name their models ``m0..m{M-1}``; mixed sets use
    ``"<type>-<i>"`` so that a row's placement can be read without the case.
    """
    types = model_set_types(model_set)
    if len(types) == 1:
        return [f"m{i}" for i in range(num_models)]
    return [f"{t}-{i}" for i, t in enumerate(model_types(model_set, num_models))]


#: SLO bases (s) that DESIGN 4.2 fixes explicitly: bert-103.5b fits no single device, and the
#: paper states its whole-model latency (4.6 s) as the base of its SLOs.
PUBLISHED_SLO_BASES: dict[str, float] = {"bert-103.5b": 4.6}


def slo_base(profile: ModelProfile) -> float:
    """SLO base (s) of a model type (DESIGN 4.2): its single-device b=1 latency, i.e. the sum of
    the (1,1,1) b=1 stage latencies, or the published whole-model latency where DESIGN fixes it
    (:data:`PUBLISHED_SLO_BASES`)."""
    if profile.name in PUBLISHED_SLO_BASES:
        return PUBLISHED_SLO_BASES[profile.name]
    return float(profile.single_latency)


_DEFAULT_DB: Optional[ProfilingDatabase] = None


def default_database() -> ProfilingDatabase:
    """``ProfilingDatabase.default()``, loaded once per process."""
    global _DEFAULT_DB
    if _DEFAULT_DB is None:
        _DEFAULT_DB = ProfilingDatabase.default()
    return _DEFAULT_DB

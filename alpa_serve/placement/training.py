"""Training workload a policy generates when none is given (DESIGN 4.1)."""
from __future__ import annotations

from typing import Sequence

from alpa_serve.placement_types import ModelData
from alpa_serve.workload import GammaProcess, Workload

#: Training workload length (DESIGN 4.1): at least this many seconds ...
TRAIN_MIN_DURATION = 100.0
#: ... and long enough for about this many requests at the models' summed rate.
TRAIN_MIN_SAMPLES = 30000.0


def workload_model_names(model_datas: Sequence[ModelData]) -> list[str]:
    """Model names for a case's workload: the ModelData names when they are unique, otherwise
    ``"<name>#<index>"`` (a workload needs unique names; cases often repeat a model type)."""
    names = [d.name for d in model_datas]
    if len(set(names)) == len(names):
        return names
    return [f"{n}#{i}" for i, n in enumerate(names)]


def train_duration(model_datas: Sequence[ModelData]) -> float:
    """Duration (s) of the generated training workload: max(100 s, 30000 / sum of rates)."""
    total_rate = sum(d.rate for d in model_datas)
    if not total_rate > 0:
        raise ValueError(f"cannot generate a training workload: the models' summed rate is "
                         f"{total_rate} req/s; give every model a positive rate or pass "
                         f"train_workload")
    return max(TRAIN_MIN_DURATION, TRAIN_MIN_SAMPLES / total_rate)


def generate_train_workload(model_datas: Sequence[ModelData], train_seed: int = 0) -> Workload:
    """The training workload a policy generates when none is given (DESIGN 4.1).

    Model i: GammaProcess(rate_i, cv_i) from time 0 over :func:`train_duration` seconds with seed
    ``train_seed + i`` and SLO ``slo_i``; all models merged in ONE Workload.merge call (numpy's
    default argsort, as published, so ties among identical arrivals are ordered as there).
    """
    duration = train_duration(model_datas)
    names = workload_model_names(model_datas)
    ws = [GammaProcess(d.rate, d.cv).generate_workload(i, 0.0, duration, d.slo,
                                                        seed=int(train_seed) + i,
                                                        model_names=names)
          for i, d in enumerate(model_datas)]
    return Workload.merge(*ws)


__all__ = ["TRAIN_MIN_DURATION", "TRAIN_MIN_SAMPLES", "generate_train_workload",
           "train_duration", "workload_model_names"]

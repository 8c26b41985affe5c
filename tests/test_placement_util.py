"""Shared helpers for the placement tests: synthetic profiles and small cases.

Synthetic profiles scale simply: under (1, op, pp) each of the pp stages takes
latency / (pp * op * op_efficiency) seconds (op_efficiency only for op > 1) and holds
weight / (op * pp) bytes per device, which makes the best placements of tiny cases easy to
reason about.
"""
from __future__ import annotations

from alpa_serve.placement import ModelData
from alpa_serve.profiling import ConfigProfile, ModelProfile, ParallelConfig
from alpa_serve.workload import GammaProcess, Workload


def synthetic_profile(name: str, latency: float, weight: float,
                      ops=(1, 2, 4, 8), pps=(1, 2, 4, 8, 16, 32),
                      op_efficiency: float = 1.0) -> ModelProfile:
    """Ideal-scaling profile: latency (s) and weight (bytes) at (1,1,1)."""
    configs = {}
    for op in ops:
        for pp in pps:
            stage_lat = latency / pp / (op * op_efficiency if op > 1 else 1)
            configs[ParallelConfig(1, op, pp)] = ConfigProfile(
                latency={1: tuple([stage_lat] * pp)},
                act_mem={1: tuple([0.0] * pp)},
                weight_mem=tuple([float(weight / (op * pp))] * pp))
    return ModelProfile(name, configs)


def model_datas(profiles, rates, cv=1.0, slo_scale=5.0):
    """ModelData per profile with SLO = slo_scale x single-device latency."""
    out = []
    for i, (p, r) in enumerate(zip(profiles, rates)):
        out.append(ModelData(name=f"{p.name}-{i}", slo=slo_scale * p.single_latency, rate=r,
                             cv=cv, profile=p))
    return out


def gamma_workload(datas, duration, seed_offset=0):
    """Model i: Gamma(rate_i, cv_i) over [0, duration) with seed seed_offset + i."""
    names = [d.name for d in datas]
    ws = [GammaProcess(d.rate, d.cv).generate_workload(i, 0.0, duration, d.slo,
                                                        seed=seed_offset + i, model_names=names)
          for i, d in enumerate(datas)]
    return Workload.merge(*ws)

"""Workloads: arrival processes, the Workload container and Azure Functions traces.

Public API (DESIGN 10)::

    from alpa_serve.workload import GammaProcess, Workload
    w = GammaProcess(rate, cv).generate_workload(model_id, start, duration, slo, seed)
    w = Workload.merge(w1, w2, ...); w.save(p); Workload.load(p)

    from alpa_serve.workload import load_trace
    rep = load_trace("maf1-standin").replay(72, "0.0.0", "0.1.0", 60, rate_scale, cv_scale)
    w = rep.to_workload(slos)     # rep.rates / rep.cvs: per-model statistics; rep.name: source
"""

from alpa_serve.workload.arrival import (
    ArrivalProcess,
    DeterministicProcess,
    GammaProcess,
    PoissonProcess,
    legacy_gamma_arrivals,
    power_law_rates,
    uniform_rates,
    weighted_rates,
)
from alpa_serve.workload.trace import (
    SOURCES as TRACE_SOURCES,
    Trace,
    TraceReplay,
    load_trace,
    open_trace,
)
from alpa_serve.workload.trace_defs import (
    TraceError,
    TraceFormatError,
    TraceNotFoundError,
    TraceWindow,
    TraceWindowError,
    default_cache_dir,
    parse_time,
)
from alpa_serve.workload.workload import Workload, WorkloadFormatError

__all__ = [
    "Workload",
    "WorkloadFormatError",
    "ArrivalProcess",
    "GammaProcess",
    "PoissonProcess",
    "DeterministicProcess",
    "legacy_gamma_arrivals",
    "uniform_rates",
    "power_law_rates",
    "weighted_rates",
    "TRACE_SOURCES",
    "Trace",
    "TraceReplay",
    "TraceError",
    "TraceFormatError",
    "TraceNotFoundError",
    "TraceWindowError",
    "default_cache_dir",
    "load_trace",
    "open_trace",
    "parse_time",
    "TraceWindow",
]

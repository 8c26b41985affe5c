"""Serving runtime on Ray (DESIGN 9): the simulator's dispatch rule serving real requests.

    from alpa_serve.runtime import Runtime, RuntimeConfig, replay
    with Runtime.start(placement, profiles, model_names, slos, RuntimeConfig()) as rt:
        result = replay(rt.url, workload)          # open-loop load generator
        print(result.stats().goodput)

See docs/runtime.md. Names are imported lazily (PEP 562) so that a group-manager actor, which
only needs ``runtime.group``, does not import the simulator (numba) when it starts.
"""

_EXPORTS = {
    "Runtime": "alpa_serve.runtime.runtime",
    "RuntimeConfig": "alpa_serve.runtime.runtime",
    "replay": "alpa_serve.runtime.loadgen",
    "ReplayResult": "alpa_serve.runtime.loadgen",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'alpa_serve.runtime' has no attribute {name!r}")

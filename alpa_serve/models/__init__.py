"""JAX models of the zoo's families, shared by the measured profiler and the runtime's JAX back
end (DESIGN 3.4, 9; docs/profiling.md, "Measured profiles").

Ground floor of the measured path: ``profiling.profile`` and ``runtime.jax_backend`` import it;
it imports nothing above it. This package and ``arch``, ``zoo`` and ``jaxenv`` import only the
standard library; ``transformer`` and ``sharding`` import JAX (an optional extra:
``pip install -e '.[real]'``).

    from alpa_serve.models import get_arch
    from alpa_serve.models.jaxenv import configure_host_devices
    configure_host_devices(2)                      # before JAX is imported (CPU)
    from alpa_serve.models.sharding import ShardedModel
    model = ShardedModel.build(get_arch("bert-mini"), op=2, pp=1)
    model.forward(tokens)                          # [b, seq] int32 -> [b, hidden]
"""
from alpa_serve.models.arch import ModelArch
from alpa_serve.models.zoo import SMALL_MODELS, UnknownArchitectureError, get_arch

__all__ = ["ModelArch", "SMALL_MODELS", "UnknownArchitectureError", "get_arch"]

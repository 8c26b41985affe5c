"""Elementwise exp, log, log1p, cos and 10**x that give the same bits on every x86-64 CPU.

numpy picks its float64 transcendental loops by CPU at import: on CPUs with AVX-512 it uses
its own SIMD (and Intel SVML) implementations, elsewhere the C library's scalar functions. The
two differ in the last bit for some inputs, and a workload generator that thins, rounds or
sorts on such values then produces slightly different traces on different machines, so the
same case could give different latencies on two machines (DESIGN 4.3). These ufuncs run a
compiled loop that calls the C library's scalar function for every element on every CPU, so
the stand-ins and the MAF2 window fits are the same wherever they are generated. Numba only
vectorizes such calls with Intel SVML (``numba.config.USING_SVML``, off unless the ``icc_rt``
package is installed); :func:`check_portable` refuses to run with it on.

On a CPU without AVX-512 these give exactly numpy's results (numpy calls the same C library
functions there), so switching to them changed no stand-in generated on such machines.
"""

from __future__ import annotations

import math

import numba
from numba import vectorize

__all__ = ["exp", "log", "log1p", "cos", "exp10", "log_scalar", "check_portable"]


def check_portable() -> None:
    """Raise RuntimeError if numba would vectorize these loops with SVML (other bits)."""
    if getattr(numba.config, "USING_SVML", False):
        raise RuntimeError(
            "numba uses Intel SVML (icc_rt is installed), so alpa_serve.workload.portable_math "
            "would not match the C library's results; set NUMBA_DISABLE_INTEL_SVML=1 "
            "before starting Python")


@vectorize(["float64(float64)"], cache=True)
def exp(x):  # noqa: D103 - documented in the module docstring
    return math.exp(x)


@vectorize(["float64(float64)"], cache=True)
def log(x):  # noqa: D103
    # math.log raises on x <= 0 in Python; compiled, it returns the C library's -inf / nan,
    # as numpy does.
    return math.log(x)


@vectorize(["float64(float64)"], cache=True)
def log1p(x):  # noqa: D103
    return math.log1p(x)


@vectorize(["float64(float64)"], cache=True)
def cos(x):  # noqa: D103
    return math.cos(x)


@vectorize(["float64(float64)"], cache=True)
def exp10(x):  # noqa: D103 - 10.0 ** x
    return 10.0 ** x


def log_scalar(x: float) -> float:
    """Natural log of one number with numpy's conventions: -inf at 0, nan below 0 or at nan."""
    x = float(x)
    if x > 0:
        return math.log(x)
    return -math.inf if x == 0 else math.nan


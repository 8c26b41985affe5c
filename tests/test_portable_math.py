"""The workload generators give the same bits on every CPU (DESIGN 4.3, "Same bits on every
CPU"): portable_math is the C library's scalar functions, the MAF2 fit is scipy's computation
with those logs, and no generator module calls numpy's CPU-dispatched transcendental ufuncs."""

import ast
import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import optimize, special, stats

from alpa_serve.workload import portable_math as pm
from alpa_serve.workload.trace import gamma_mle_floc0

ROOT = Path(__file__).resolve().parents[1]
SPECIAL = [0.0, -0.0, -1.0, math.inf, -math.inf, math.nan, 5e-324, 1e308]


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.all((a == b) | (np.isnan(a) & np.isnan(b))))


def _scalar(f, xs):
    out = []
    for v in xs:
        try:
            out.append(f(v))
        except ValueError:  # Python's math raises where C returns nan / inf
            out.append(math.nan)
        except OverflowError:
            out.append(math.inf)
    return np.array(out)


@pytest.mark.parametrize("name, fn, ref, lo, hi", [
    ("exp", pm.exp, math.exp, -700.0, 700.0),
    ("log", pm.log, math.log, 1e-9, 1e6),
    ("log1p", pm.log1p, math.log1p, -0.999, 50.0),
    ("cos", pm.cos, math.cos, -1e4, 1e4),
    ("exp10", pm.exp10, lambda v: 10.0 ** v, -300.0, 300.0),
])
def test_ufuncs_are_the_c_library_scalar_functions(name, fn, ref, lo, hi):
    x = np.random.default_rng(7).uniform(lo, hi, 50_000)
    assert _same(fn(x), _scalar(ref, x.tolist())), name
    with np.errstate(all="ignore"):
        special_out = fn(np.array(SPECIAL))
    finite = [i for i, v in enumerate(SPECIAL) if v > 0 and math.isfinite(v)]
    assert _same(special_out[finite], _scalar(ref, [SPECIAL[i] for i in finite]))
    assert fn(x.reshape(100, 500)).shape == (100, 500)


def test_log_scalar_follows_numpy_conventions():
    with np.errstate(all="ignore"):
        for v in SPECIAL + [2.5, 1e-300]:
            assert _same(np.array([pm.log_scalar(v)]), np.array([np.log(np.float64(v))])), v


def _reference_fit(data):
    """scipy 1.17's gamma.fit(data, floc=0) written out with Python's math.log."""
    xbar = data.mean()
    s = np.float64(math.log(xbar)) - np.array([math.log(v) for v in data.tolist()]).mean()
    aest = (3 - s + np.sqrt((s - 3) ** 2 + 24 * s)) / (12 * s)
    a = optimize.brentq(lambda a: math.log(a) - special.digamma(a) - s,
                        aest * 0.6, aest * 1.4, disp=0)
    return float(a), float(xbar / a)


def test_gamma_fit_is_scipys_computation_with_portable_logs():
    rng = np.random.default_rng(3)
    for _ in range(300):
        data = rng.gamma(rng.uniform(0.05, 5.0), rng.uniform(0.01, 100.0),
                         int(rng.integers(2, 2000))) + 1e-6
        ours = gamma_mle_floc0(data)
        assert ours == _reference_fit(data)  # exact: same operations, same C library
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = stats.gamma.fit(data, floc=0)
        # scipy's own logs may differ in the last bit on AVX-512 CPUs, hence the tolerance.
        assert ours == pytest.approx((theirs[0], theirs[2]), rel=1e-9)


@pytest.mark.parametrize("bad", [np.array([1.0, np.inf]), np.array([1.0, 0.0]),
                                 np.array([1.0, -2.0])])
def test_gamma_fit_refuses_what_scipy_refuses(bad):
    with pytest.raises(ValueError):
        gamma_mle_floc0(bad)
    with pytest.raises(ValueError):
        stats.gamma.fit(bad, floc=0)


# numpy ufuncs (and the ** operator on arrays) whose float64 loops depend on the CPU.
_DISPATCHED = {"exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sin", "cos", "tan",
               "arcsin", "arccos", "arctan", "arctan2", "sinh", "cosh", "tanh", "power",
               "float_power", "cbrt", "hypot"}


@pytest.mark.parametrize("module", ["alpa_serve/workload/standin.py",
                                    "alpa_serve/workload/trace.py",
                                    "alpa_serve/workload/arrival.py"])
def test_generators_call_no_cpu_dispatched_numpy_ufunc(module):
    tree = ast.parse((ROOT / module).read_text())
    calls = [f"{module}:{n.lineno} np.{n.func.attr}" for n in ast.walk(tree)
             if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
             and isinstance(n.func.value, ast.Name) and n.func.value.id == "np"
             and n.func.attr in _DISPATCHED]
    assert not calls, f"use alpa_serve.workload.portable_math instead: {calls}"


_HASH_SMALL_STANDINS = """
import hashlib, sys, tempfile
from pathlib import Path
from alpa_serve.workload import standin as S
h = hashlib.sha256()
with tempfile.TemporaryDirectory() as d:
    S.generate_maf2_standin(Path(d) / "2", S.Maf2StandinParams(num_functions=30, num_apps=8,
                                                              total_invocations=20_000))
    S.generate_maf1_standin(Path(d) / "1", S.Maf1StandinParams(num_functions=300, num_days=2))
    for f in sorted(Path(d).rglob("*.csv*")) + sorted(Path(d).rglob("*.txt")):
        data = f.read_bytes()
        h.update(__import__("gzip").decompress(data) if f.suffix == ".gz" else data)
print(h.hexdigest())
"""


def test_standins_do_not_depend_on_numpys_simd_level():
    """Generating with every optional SIMD extension of numpy disabled gives the same files
    (on an AVX-512 machine this is the check that matters; elsewhere it still guards AVX2)."""
    from numpy._core._multiarray_umath import __cpu_features__

    def run(extra_env):
        env = {**os.environ, **extra_env, "PYTHONPATH": str(ROOT)}
        out = subprocess.run([sys.executable, "-c", _HASH_SMALL_STANDINS], env=env,
                             capture_output=True, text=True, timeout=300, check=True)
        return out.stdout.strip()

    from numpy._core._multiarray_umath import __cpu_dispatch__

    found = [name for name in __cpu_dispatch__ if __cpu_features__.get(name)]
    plain = run({})
    assert len(plain) == 64
    if found:
        assert run({"NPY_DISABLE_CPU_FEATURES": ",".join(found)}) == plain

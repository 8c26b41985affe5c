"""The measured path (DESIGN 3.4, 9): the checks without JAX here; the checks that need JAX
run in their own pytest process (``tests/measured_path_checks.py``), so that this process never
imports JAX (it starts threads, and other tests fork). JAX is in the dev extra: without it the
JAX checks fail, they are not skipped."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from alpa_serve.models.arch import ModelArch
from alpa_serve.models.zoo import get_arch, layer_partition, parallel_config_problem

ROOT = Path(__file__).resolve().parents[1]
CHECKS = Path(__file__).with_name("measured_path_checks.py")


def test_jax_checks_pass_in_their_own_process():
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-W", "error::pytest.PytestUnraisableExceptionWarning", str(CHECKS)],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, f"{CHECKS.name} failed:\n{proc.stdout[-8000:]}\n{proc.stderr}"
    assert " passed" in proc.stdout and "skipped" not in proc.stdout, proc.stdout[-2000:]


def test_zoo_checks_and_partition():
    assert [list(r) for r in layer_partition(5, 2)] == [[0, 1, 2], [3, 4]]
    assert parallel_config_problem(get_arch("bert-tiny"), 4, 1) == \
        "op=4 does not divide the 2 attention heads of bert-tiny"
    assert "exceeds the 2 layers" in parallel_config_problem(get_arch("bert-tiny"), 1, 4)
    wide = ModelArch("wide-moe", "moe", 2, 32, 8, 8, 100, num_experts=4)
    assert parallel_config_problem(wide, 8, 1) == "op=8 does not divide the 4 experts of wide-moe"
    with pytest.raises(KeyError, match="unknown model 'bert-huge'.*bert-tiny"):
        get_arch("bert-huge")


def test_missing_jax_names_the_extra(monkeypatch):
    from alpa_serve.models import jaxenv

    monkeypatch.setitem(sys.modules, "jax", None)  # import jax -> ImportError
    with pytest.raises(jaxenv.JaxMissingError, match=r"pip install -e '\.\[real\]'"):
        jaxenv.require_jax()


def test_host_device_flags_keep_other_flags():
    from alpa_serve.models.jaxenv import host_device_flags

    flags = host_device_flags("--xla_foo=1 --xla_force_host_platform_device_count=8", 2)
    assert flags.split() == ["--xla_foo=1", "--xla_force_host_platform_device_count=2",
                             "--xla_cpu_multi_thread_eigen=false"]


def test_default_import_path_does_not_import_jax():
    code = ("import sys, alpa_serve, alpa_serve.profiling, alpa_serve.profiling.profile, "
            "alpa_serve.models, alpa_serve.runtime.runtime, alpa_serve.runtime.group, "
            "alpa_serve.runtime.fidelity, alpa_serve.experiments, alpa_serve.placement; "
            "assert 'jax' not in sys.modules, 'jax imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)

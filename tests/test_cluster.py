"""One suite on a real two-node Ray cluster started on this machine (DESIGN 7.4).

A head node and a second node (``ray start``, one CPU each) form the cluster; the runner joins
it with ``--ray-address`` and spreads each case's greedy searches over both nodes with
``--split-cases``. The rows must equal a serial run's (timing column aside).
"""
from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from local_cluster import free_port, port_open, ray_cli, stop_nodes, wait_for

#: Starts a two-node Ray cluster (about a minute): deselected by the quick run -m "not slow".
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ray")
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT), RAY_AUTH_MODE="token",
               RAY_AUTH_TOKEN=secrets.token_hex(16))
    common = ["--block", "--num-cpus", "1", "--disable-usage-stats"]
    procs = []
    try:
        procs.append(subprocess.Popen(
            ray_cli() + ["start", "--head", "--port", str(port), "--include-dashboard",
                          "false", "--temp-dir", str(tmp)] + common,
            env=env, stdout=open(tmp / "head.log", "w"), stderr=subprocess.STDOUT))
        wait_for(lambda: port_open(port), 90, "the head node")
        procs.append(subprocess.Popen(
            ray_cli() + ["start", "--address", f"127.0.0.1:{port}"] + common,
            env=env, stdout=open(tmp / "node.log", "w"), stderr=subprocess.STDOUT))
        probe = ("import ray, sys; ray.init(address=sys.argv[1], log_to_driver=False); "
                 "print(sum(n['Alive'] for n in ray.nodes()))")

        def two_nodes() -> bool:
            out = subprocess.run([sys.executable, "-c", probe, f"127.0.0.1:{port}"], env=env,
                                 capture_output=True, text=True, timeout=60)
            return out.stdout.strip().endswith("2")

        wait_for(two_nodes, 90, "the second node to join")
        yield f"127.0.0.1:{port}", env
    finally:
        stop_nodes(procs[::-1])


def _rows(path: Path) -> list[dict]:
    import csv

    with open(path, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    for r in rows:
        r.pop("solver_seconds")
    return sorted(rows, key=lambda r: r["case_id"])


def test_split_cases_on_a_two_node_cluster_equal_a_serial_run(cluster, tmp_path):
    address, env = cluster
    cmd = [sys.executable, "-m", "alpa_serve.experiments", "fig14", "--quick", "--no-progress"]
    serial = subprocess.run(cmd + ["--serial", "--out", str(tmp_path / "serial")], env=env,
                            capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert serial.returncode == 0, serial.stderr[-2000:]
    split = subprocess.run(cmd + ["--ray-address", address, "--split-cases", "--out",
                                  str(tmp_path / "cluster")],
                           env=env, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert split.returncode == 0, split.stderr[-2000:]
    a = _rows(tmp_path / "serial" / "ablation.tsv")
    b = _rows(tmp_path / "cluster" / "ablation.tsv")
    assert len(a) == 12 and a == b

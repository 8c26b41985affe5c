"""Joining a cluster started with a plain ``ray start --head``, as a user would (DESIGN 9).

The head is started the default way, in a fresh home folder that holds only a Ray token
(``ray get-auth-token --generate``), as any user's does once Ray has run: Ray then turns token
authentication on for the head. The runtime's command line joins it with ``--ray-address
host:port`` and nothing else, serves a request, and stops on SIGTERM; a second command line
with the deprecated ``--address`` alias and the wrong token is refused in one line.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from local_cluster import free_port, port_open, ray_cli, stop_nodes, wait_for

#: Starts a Ray head node (about 30 s): deselected by the quick run -m "not slow".
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
PLACEMENT = '{"type":"ModelPlacement","group_configs":[[1,1,1],[1,1,1]],"group_models":[[0],[1]]}'


@pytest.fixture(scope="module")
def head(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("head")
    home = tmp / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(HOME=str(home), PYTHONPATH=str(ROOT))
    subprocess.run(ray_cli() + ["get-auth-token", "--generate"], env=env, check=True,
                   capture_output=True, timeout=60)
    assert (home / ".ray" / "auth_token").is_file()
    port = free_port()
    proc = subprocess.Popen(
        ray_cli() + ["start", "--head", "--port", str(port), "--include-dashboard", "false",
                     "--temp-dir", str(tmp / "ray"), "--num-cpus", "1", "--block",
                     "--disable-usage-stats"],
        env=env, stdout=open(tmp / "head.log", "w"), stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: port_open(port), 90, "the head node")
        yield f"127.0.0.1:{port}", env, tmp
    finally:
        stop_nodes([proc])
    assert "Token authentication is enabled" in (tmp / "head.log").read_text()


def _serve(env, *flags):
    return subprocess.Popen(
        [sys.executable, "-m", "alpa_serve.runtime", "--placement", PLACEMENT, "--model-set",
         "bert-2.6b", "--num-models", "2", "--port", "0", *flags],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)


def test_runtime_joins_a_default_head_and_serves(head):
    address, env, _ = head
    proc = _serve(env, "--ray-address", address)
    try:
        url = None
        lines = []
        deadline = time.monotonic() + 120
        for line in proc.stderr:
            lines.append(line)
            match = re.search(r"serving 2 models on 2 groups at (http://\S+) ", line)
            if match or time.monotonic() > deadline:
                url = match.group(1) if match else None
                break
        assert url, "".join(lines)[-3000:]
        assert any(f"joining the Ray cluster at {address}" in ln for ln in lines)
        req = urllib.request.Request(f"{url}/v1/models/m1/infer", data=b"{}", method="POST")
        with urllib.request.urlopen(req, timeout=30) as resp:
            data = json.loads(resp.read())
        assert resp.status == 200 and data["status"] == "ok" and data["group"] == 1
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = "".join(lines) + rest
    assert proc.returncode == 0, err[-3000:]
    assert "Traceback" not in err and "SIGTERM received" not in err


def test_wrong_token_is_one_line_naming_what_to_set(head):
    address, env, _ = head
    env = dict(env, RAY_AUTH_TOKEN="0" * 32)
    proc = _serve(env, "--address", address, "--connect-timeout", "5")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    errors = [ln for ln in err.splitlines() if " ERROR " in ln]
    assert len(errors) == 1 and "RAY_AUTH_TOKEN" in errors[0] and "--connect-timeout" in errors[0]
    assert "--address is deprecated" in err and "Traceback" not in err

"""The measured path's checks that need JAX (DESIGN 3.4, 9): JAX models sharded over (op, pp)
compute the one-device function; the profiler writes rows in the original layout and a
database the pipeline places and simulates with; the runtime's JAX back end serves outputs
equal to the reference forward pass.

Not collected by the main test run (the name does not match ``test_*.py``):
``tests/test_measured_path.py`` runs this file in its own pytest process, so that the main
test process never imports JAX (JAX starts threads, and other tests fork). JAX shows 4 host
devices here (set before JAX is first imported). JAX is part of the dev extra: without it
these checks fail (they are not skipped). Models are tiny, so compilation dominates the time.
"""
from __future__ import annotations

import json
import os
import urllib.error
import urllib.request

import numpy as np
import pytest

from alpa_serve.models.jaxenv import configure_host_devices

configure_host_devices(4)

from alpa_serve.models.arch import ModelArch  # noqa: E402
from alpa_serve.models.sharding import ShardedModel  # noqa: E402
from alpa_serve.models.transformer import (  # noqa: E402
    example_tokens,
    init_params,
    reference_forward,
)
from alpa_serve.models.zoo import get_arch  # noqa: E402
from alpa_serve.profiling import ModelProfile, ParallelConfig, ProfilingDatabase  # noqa: E402
from alpa_serve.profiling.benchmark_rows import ORIGINAL_COLUMNS, read_rows  # noqa: E402
from alpa_serve.profiling.profile import (  # noqa: E402
    TimingOptions,
    main as profile_main,
    measure_row,
)

DENSE = ModelArch("test-dense", "dense", 2, 32, 4, 8, 100)
MOE = ModelArch("test-moe", "moe", 2, 32, 4, 8, 100, num_experts=4)


@pytest.mark.parametrize("arch, configs", [
    (DENSE, [(2, 1), (1, 2), (2, 2)]),
    (MOE, [(2, 1), (1, 2)]),
], ids=["dense", "moe"])
def test_every_op_pp_computes_the_one_device_function(arch, configs):
    params = init_params(arch, seed=3)
    tokens = example_tokens(arch, 3, seed=4)
    ref = reference_forward(arch, params, tokens)
    assert ref.shape == (3, arch.hidden) and np.all(np.isfinite(ref))
    for op, pp in configs:
        model = ShardedModel.build(arch, op, pp, params)
        assert [len(s.devices) for s in model.stages] == [op] * pp
        assert len({d.id for d in model.devices}) == op * pp  # each stage on its own devices
        out = model.forward(tokens)
        np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5,
                                   err_msg=f"{arch.name} op={op} pp={pp}")
        if (op, pp) == (1, 2):  # the isolated timing path, on the stages compiled above
            row = measure_row(model, 3, TimingOptions(warmup=0, min_repeats=2, max_repeats=2,
                                                      min_seconds=0, rounds=2), 0, "cpu")
            assert len(row.stage_latencies) == 2 and len(row.act_mem) == 2
            assert min(row.stage_latencies) > 0 and row.mean_time > 0
        # Weights really are split: per device, op halves the layers' share.
        if op > 1 and pp == 1:
            full = ShardedModel.build(arch, 1, 1, params).weight_bytes()[0]
            assert model.weight_bytes()[0] < 0.6 * full


def test_too_few_devices():
    with pytest.raises(ValueError, match="needs 8 devices; JAX shows 4"):
        ShardedModel.build(get_arch("moe-mini"), 2, 4)


@pytest.fixture(scope="module")
def profiled(tmp_path_factory):
    """bert-tiny measured on 2 host devices, every (op, pp) with op x pp <= 2, batch 1 and 2.

    With a persistent compilation cache, which the runtime test's group manager (a process
    showing as many host devices as this one: the cache key counts them) reads back."""
    from alpa_serve.models.jaxenv import CACHE_ENV

    out = tmp_path_factory.mktemp("profile") / "db.pkl"
    os.environ[CACHE_ENV] = str(out.parent / "jax_cache")
    args = ["--models", "bert-tiny", "--out", str(out), "--host-devices", "2",
            "--batch-sizes", "1", "2", "--warmup", "1", "--min-repeats", "3",
            "--max-repeats", "6", "--min-seconds", "0", "--rounds", "2", "--no-progress"]
    assert profile_main(args) == 0
    yield out, args
    del os.environ[CACHE_ENV]


def test_profiler_rows_database_resume(profiled):
    out, args = profiled
    rows_path = out.with_name("db.rows.tsv")
    header = rows_path.read_text().splitlines()[0].split("\t")
    assert tuple(header[:len(ORIGINAL_COLUMNS)]) == ORIGINAL_COLUMNS
    rows = read_rows(rows_path)
    assert {(tuple(r.config), r.batch_size) for r in rows} == {
        (c, b) for c in ((1, 1, 1), (1, 2, 1), (1, 1, 2)) for b in (1, 2)}
    assert all(r.device_kind == "cpu" and r.model_name == "bert-tiny" for r in rows)
    by_cfg = {(tuple(r.config), r.batch_size): r for r in rows}
    one, op2, pp2 = (by_cfg[(c, 1)] for c in ((1, 1, 1), (1, 2, 1), (1, 1, 2)))
    assert all(x > 0 for r in rows for x in r.stage_latencies)
    # Weights from the arrays: op=2 holds about half per device; pp=2 splits the layers.
    assert 0.45 < op2.stage_weights[0] / one.stage_weights[0] < 0.55
    assert sum(pp2.stage_weights) == pytest.approx(one.stage_weights[0], rel=1e-6)
    # Activations from XLA's memory analysis (peak > weights), growing with the batch.
    assert all(a > 0 for r in rows for a in r.act_mem)
    assert by_cfg[((1, 1, 1), 2)].act_mem[0] > one.act_mem[0]

    db = ProfilingDatabase.load(out)
    prof = db.get("bert-tiny")
    assert prof.configs() == [ParallelConfig(1, 1, 1), ParallelConfig(1, 1, 2),
                              ParallelConfig(1, 2, 1)]
    assert prof.latency(ParallelConfig(1, 1, 2), 1) == list(pp2.stage_latencies)
    assert prof.single_latency == pytest.approx(one.stage_latencies[0])
    assert db.hardware["device_kind"] == "cpu" and "memory analysis" in \
        db.hardware["activation_memory"]
    # The raw rows load through the same entry point (benchmark_rows.load_database, rule
    # "last"), giving the profiler's profiles.
    from_rows = ProfilingDatabase.load(rows_path)
    assert from_rows.get("bert-tiny") == prof and from_rows.hardware["duplicate_rule"] == "last"
    json_path = out.with_suffix(".json")
    db.save(json_path)
    assert ProfilingDatabase.load(json_path) == db
    # Resume: a second run measures nothing and keeps the rows.
    before = rows_path.read_text()
    assert profile_main(args) == 0
    assert rows_path.read_text() == before


def test_measured_database_places_and_simulates(profiled):
    from alpa_serve.placement import ClusterEnv, ModelData, get_policy
    from alpa_serve.simulator import simulate
    from alpa_serve.workload import GammaProcess, Workload

    prof = ProfilingDatabase.load(profiled[0]).get("bert-tiny")
    slo = 5 * prof.single_latency
    names = ["a", "b", "c"]
    w = Workload.merge(*[GammaProcess(20.0, 3).generate_workload(i, 0, 60, slo, seed=i,
                                                               model_names=names)
                         for i in range(3)])
    models = [ModelData(n, slo, 20.0, 3.0, prof) for n in names]
    placement = get_policy("mp-search").place(models, ClusterEnv(2), train_workload=w)
    assert placement.num_devices <= 2
    stats = simulate(placement, [prof] * 3, w)
    assert 0.0 < stats.goodput <= 1.0


@pytest.mark.parametrize("argv, message", [
    (["--models", "bert-tiny", "bert-nope"], "unknown model(s) 'bert-nope'"),
    (["--models", "bert-tiny", "--configs", "2x2"], "needs 4 devices but JAX shows 2"),
    (["--models", "bert-tiny", "--configs", "1x4"], "exceeds the 2 layers"),
])
def test_profiler_refuses_before_any_work(tmp_path, capsys, argv, message):
    out = tmp_path / "db.pkl"
    with pytest.raises(SystemExit) as exc:
        profile_main(argv + ["--out", str(out), "--host-devices", "2", "--no-progress"])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # no rows, no database


def _infer(url: str, name: str, body: dict) -> tuple[int, dict]:
    req = urllib.request.Request(f"{url}/v1/models/{name}/infer",
                                 data=json.dumps(body).encode(), method="POST")
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


# Ray starts its processes with fork + exec, after JAX's threads exist in this process.
@pytest.mark.filterwarnings("ignore:os.fork\\(\\) was called:RuntimeWarning")
def test_runtime_serves_reference_outputs(profiled, monkeypatch):
    """A pp=2 group of the JAX back end: input to stage 0, activations to stage 1, output back
    to the client, equal to the one-device reference forward pass."""
    import ray

    from alpa_serve.placement import ModelPlacement
    from alpa_serve.runtime import Runtime, RuntimeConfig

    prof = ProfilingDatabase.load(profiled[0]).get("bert-tiny")
    arch = get_arch("bert-tiny")
    tokens = example_tokens(arch, 1, seed=11)
    ref = reference_forward(arch, init_params(arch, seed=0), tokens)[0]
    with pytest.raises(ValueError, match="speedup must be 1"):
        RuntimeConfig(backend="jax", speedup=2.0)
    placement = ModelPlacement((ParallelConfig(1, 1, 2),), ((0,),))
    pp2 = ParallelConfig(1, 1, 2)
    other = ModelProfile("other", {pp2: prof.profile(pp2)})  # a type no JAX model has
    with pytest.raises(ValueError, match="type 'other'.*cannot build"):
        Runtime.start(placement, [other], ["m0"], [1.0], RuntimeConfig(backend="jax"))
    assert not ray.is_initialized()  # refused before Ray started
    monkeypatch.setenv("ALPA_SERVE_HOST_DEVICES", "4")  # the group manager's process
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    try:
        with Runtime.start(placement, [prof], ["m0"], [10.0],
                           RuntimeConfig(backend="jax")) as rt:
            status, data = _infer(rt.url, "m0", {"input": tokens[0].tolist()})
            assert status == 200, data
            np.testing.assert_allclose(np.array(data["output"]), ref, rtol=1e-4, atol=1e-5)
            assert data["timing"]["device"] > 0
            status, data = _infer(rt.url, "m0", {})  # no input: a fixed seeded row
            assert status == 200 and len(data["output"]) == arch.hidden
            status, data = _infer(rt.url, "m0", {"input": [arch.vocab]})
            assert status == 503 and data["reason"] == "group_error"
            assert "token ids must be in [0, 30522)" in data["detail"]
            # Redeploy on the same actor (configure builds and compiles op=2, with the old
            # controller's watchdog paused), then serve from the compiled stage at once.
            rt.deploy(ModelPlacement((ParallelConfig(1, 2, 1),), ((0,),)), [prof], ["m0"],
                      [10.0])
            status, data = _infer(rt.url, "m0", {"input": tokens[0].tolist()})
            assert status == 200, data
            np.testing.assert_allclose(np.array(data["output"]), ref, rtol=1e-4, atol=1e-5)
            health = rt.health()
            assert [g["state"] for g in health["groups"]] == ["serving"]
            assert health["counts"] == {"ok": 1}
    finally:
        ray.shutdown()

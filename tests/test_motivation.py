"""Tests of the Section 3 motivation scripts (studies/motivation/).

Hand examples for the Fig. 2(d) utilisation and for the latency statistics plotted in
Figs. 4-7 (mean over all trimmed requests, np.percentile linear p99 over the good ones), the
Fig. 7(b) profile modification, the Fig. 8/9 decomposition, the grids, and a --quick smoke run.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from alpa_serve.placement import ModelPlacement
from alpa_serve.profiling import ConfigProfile, ModelProfile, ParallelConfig, ProfilingDatabase
from alpa_serve.simulator import compute_stats, simulate
from alpa_serve.units import GiB
from alpa_serve.workload import Workload
from studies.motivation import (
    common,
    fig2_two_models,
    fig4_memory_budget,
    fig5_7a_sweeps,
    fig7b_pipeline_overhead,
    fig8_9_profile,
)
from studies.motivation.fig2_two_models import utilisation


def _profile(name: str, single: float, weight: float, pps=(1, 2, 4, 8), ops=(1, 2, 4, 8),
             pp_overhead: float = 0.04, op_overhead: float = 0.1) -> ModelProfile:
    """A hand-made profile: uneven pipeline stages (first stage 10% slower), op speed-up with
    a fixed overhead per doubling; weights split evenly (bytes)."""
    configs = {}
    for pp in pps:
        base = single * (1 + pp_overhead * (pp - 1)) / pp
        stages = [base * (1.1 if (k == 0 and pp > 1) else 1.0) for k in range(pp)]
        configs[ParallelConfig(1, 1, pp)] = ConfigProfile(
            latency={1: tuple(stages), 2: tuple(2 * s for s in stages)},
            act_mem={1: tuple([1e8] * pp), 2: tuple([2e8] * pp)},
            weight_mem=tuple([weight / pp] * pp))
    for op in ops:
        if op == 1:
            continue
        lat = single / op + op_overhead * math.log2(op) * single / 10
        configs[ParallelConfig(1, op, 1)] = ConfigProfile(
            latency={1: (lat,), 2: (2 * lat,)}, act_mem={1: (1e8,), 2: (2e8,)},
            weight_mem=(weight / op,))
    return ModelProfile(name, configs)


def tiny_db() -> ProfilingDatabase:
    """bert-2.6b-like and bert-6.7b-like hand profiles (latencies s, weights bytes)."""
    return ProfilingDatabase([_profile("bert-2.6b", 0.238, 5.5e9),
                              _profile("bert-6.7b", 0.395, 13.0e9)], {"note": "tests"})


# ------------------------------------------------------------------------------------------
# Fig. 2(d) utilisation
# ------------------------------------------------------------------------------------------
def test_utilisation_hand_example():
    # Two devices. Good requests finishing at 1.0 and 1.5 with a 1-s single latency are busy
    # over [0, 1) and [0.5, 1.5); the failed request (finish 3.0) occupies nothing.
    finish = np.array([1.0, 1.5, 3.0])
    good = np.array([True, True, False])
    times = np.array([0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5])
    util = utilisation(finish, good, 1.0, 2, times)
    np.testing.assert_array_equal(util, [50, 50, 100, 100, 50, 50, 0, 0, 0])


def test_utilisation_per_request_busy_times_and_unsorted_input():
    # Busy times per request (two model types); the input need not be sorted by finish.
    finish = np.array([4.0, 2.0, 3.0])
    good = np.array([True, True, True])
    busy = np.array([0.5, 2.0, 1.0])  # intervals [3.5, 4), [0, 2), [2, 3)
    times = np.array([0.0, 1.9, 2.0, 2.9, 3.0, 3.4, 3.5, 3.99, 4.0])
    util = utilisation(finish, good, busy, 4, times)
    np.testing.assert_array_equal(util, [25, 25, 25, 25, 0, 0, 25, 25, 0])


def test_utilisation_of_the_fig2d_sampling_grid():
    # 400 points over 0-40 s; a request busy over [10, 30) covers exactly half of them.
    times = np.linspace(0, 40, 400)
    util = utilisation(np.array([30.0]), np.array([True]), 20.0, 2, times)
    assert util.max() == 50.0
    assert np.count_nonzero(util) == np.count_nonzero((times >= 10) & (times < 30))


# ------------------------------------------------------------------------------------------
# Latency statistics of Figs. 4-7
# ------------------------------------------------------------------------------------------
def test_latency_mean_and_p99_hand_example():
    # Good latencies 1, 2, 3, 4, 5 s and one failed request (latency 0 in the mean).
    # np.percentile linear: rank 0.99 * 4 = 3.96 -> 4 + 0.96 * (5 - 4) = 4.96 s.
    arrivals = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    finish = arrivals + np.array([1.0, 2.0, 3.0, 4.0, 5.0, 0.0])
    good = np.array([True, True, True, True, True, False])
    stats = compute_stats(arrivals, np.zeros(6, np.int32), finish, good,
                          np.zeros(1, np.int64), ["m0"])
    assert stats.trim == slice(0, 6)  # 10 s of warm-up exceeds the span: no trimming
    assert stats.latency_p99 == pytest.approx(4.96, abs=1e-12)
    assert stats.latency_mean == pytest.approx(15.0 / 6, abs=1e-12)
    assert stats.goodput == pytest.approx(5 / 6)


def test_latency_statistics_of_a_simulated_queue():
    # Five requests at t = 0 on one device with a 1-s model: the k-th waits for k-1 others, so
    # its latency is k * L + 0.011 with L = 1 s x (1 + 0.009) (single-stage penalty, float32).
    prof = _profile("one", 1.0, 1e9, pps=(1,), ops=(1,))
    w = Workload(np.zeros(5), np.zeros(5, np.int32), np.full(5, 1e9), ["m0"])
    stats = simulate(ModelPlacement((ParallelConfig(1, 1, 1),), ((0,),)), [prof], w)
    L = float(np.float32(1.0 * 1.009))
    lat = np.array([k * L + 0.011 for k in range(1, 6)])
    assert stats.latency_mean == pytest.approx(lat.mean(), rel=1e-9)
    assert stats.latency_p99 == pytest.approx(lat[3] + 0.96 * (lat[4] - lat[3]), rel=1e-9)


def test_runner_rows_carry_the_trimmed_mean_and_linear_p99(tmp_path):
    # The rows the figures plot (one runner case) are those of the in-process path Fig. 2
    # uses, and their statistics are the mean over the trimmed requests and np.percentile
    # over the trimmed good latencies.
    from alpa_serve.experiments import SuiteEntry, simulate_case
    from alpa_serve.experiments.case_runner import result_row

    db = tiny_db()
    settings = common.Settings(quick=True, serial=True, progress=False,
                               figures_dir=tmp_path, data_root=tmp_path / "data")
    case = fig5_7a_sweeps.make_case(fig5_7a_sweeps.SWEEPS["slo"], 3.0, "sr-uniform", settings)
    rows = common.run_cases([SuiteEntry("t.tsv", case)], db, settings)
    row = rows[case.case_id]

    res = simulate_case(case, db)
    direct = result_row(case, db, res)
    assert {k: str(v) for k, v in direct.items() if k != "solver_seconds"} == {
        k: v for k, v in row.items() if k != "solver_seconds"}
    lat = res.good_latencies()
    trim = res.stats.trim
    all_lat = res.stats.finish[trim] - res.workload.arrivals[trim]
    assert float(row["latency_p99"]) == pytest.approx(np.percentile(lat, 99), rel=1e-12)
    assert float(row["latency_mean"]) == pytest.approx(all_lat.mean(), rel=1e-12)
    assert float(row["goodput"]) == pytest.approx(round(len(lat) / len(all_lat), 3))
    # Resume: a second call reads the same row without recomputing it.
    assert common.run_cases([SuiteEntry("t.tsv", case)], db, settings)[case.case_id] == row


def test_fig2_cases_are_the_two_model_example_of_design_7_6():
    # Through the one pipeline (Case -> simulate_case), Fig. 2(b) is exactly the hand-built
    # example: Gamma arrivals at 20%/80% of 3 req/s (model i: seed i), SLO 1e9 x the
    # single-device latency, the policy placing on the evaluated workload, 14 GiB per device.
    from alpa_serve.experiments import simulate_case
    from alpa_serve.placement import ClusterEnv, ModelData, get_policy
    from alpa_serve.units import GiB
    from alpa_serve.workload import GammaProcess

    db = tiny_db()
    prof = db.get(fig2_two_models.MODEL)
    shares, cv, duration = (0.2, 0.8), 1.0, 400.0
    case = fig2_two_models.case("mp-search", shares, cv, duration)
    assert case.mem_budget == 14 * GiB and case.num_devices == 2
    res = simulate_case(case, db)

    names = ["m0", "m1"]
    slo = common.INFINITE_SLO_SCALE * prof.single_latency
    rates = [3.0 * s for s in shares]
    w = Workload.merge(*[GammaProcess(rates[i], cv).generate_workload(
        i, 0.0, duration, slo, seed=i, model_names=names) for i in range(2)])
    placement = get_policy("mp-search").place(
        [ModelData(names[i], slo, rates[i], cv, prof) for i in range(2)],
        ClusterEnv(2, 14 * GiB), train_workload=w)
    stats = simulate(placement, [prof, prof], w)
    assert res.placement == placement
    for attr in ("arrivals", "model_ids", "slos"):
        np.testing.assert_array_equal(getattr(res.workload, attr), getattr(w, attr))
    np.testing.assert_array_equal(res.stats.finish, stats.finish)
    np.testing.assert_array_equal(res.stats.good, stats.good)
    assert res.stats.good.all()  # the "infinite" SLO is never missed


# ------------------------------------------------------------------------------------------
# Fig. 7(b) profile modification
# ------------------------------------------------------------------------------------------
def test_pipeline_overhead_profile_is_a_new_object():
    base = tiny_db()
    before = base.to_dict()
    prof = base.get("bert-2.6b")
    mod = common.with_pipeline_overhead(prof, 1.3)
    assert mod.name == "bert-2.6b-alpha1.30"
    cfg = ParallelConfig(1, 1, 8)
    assert mod.latency(cfg, 1) == pytest.approx([1.3 * 0.238 / 8] * 8)
    # Everything else is unchanged: other batch sizes, weights, other configurations, and the
    # single-device latency that the SLOs are based on.
    assert mod.latency(cfg, 2) == prof.latency(cfg, 2)
    assert mod.weight_mem(cfg) == prof.weight_mem(cfg)
    assert mod.act_mem(cfg, 1) == prof.act_mem(cfg, 1)
    for c in prof.configs():
        if c != cfg:
            assert mod.profile(c) == prof.profile(c)
    assert mod.single_latency == prof.single_latency
    assert base.to_dict() == before  # the source database is untouched

    db = common.motivation_database(base)
    assert db.model_names() == base.model_names() + [common.alpha_model_name(a)
                                                     for a in common.ALPHAS]
    assert base.to_dict() == before
    with pytest.raises(ValueError):
        common.with_pipeline_overhead(prof, 0.0)


# ------------------------------------------------------------------------------------------
# Figs. 8-9 decomposition
# ------------------------------------------------------------------------------------------
def test_parallelism_costs_hand_profile():
    prof = _profile("x", 0.2, 4e9)
    costs = {c.n: c for c in fig8_9_profile.parallelism_costs(prof)}
    c1, c4 = costs[1], costs[4]
    assert c1.communication == 0 and c1.uneven == 0 and c1.op_overhead == pytest.approx(0)
    assert c1.pp_throughput == pytest.approx(5.0) and c1.rep_throughput == pytest.approx(5.0)
    # pp = 4: stages base = 0.2 * 1.12 / 4 = 0.056, first stage 0.0616; sum 0.2296.
    assert c4.pp_latency == pytest.approx(0.2296)
    assert c4.communication == pytest.approx(0.0296)
    assert c4.uneven == pytest.approx(0.0616 * 4 - 0.0296 - 0.2)
    assert c4.single + c4.communication + c4.uneven == pytest.approx(c4.pp_slowest * 4)
    assert c4.pp_throughput == pytest.approx(1 / 0.0616)
    assert c4.rep_throughput == pytest.approx(20.0)
    # op = 4: 0.2 / 4 + 0.1 * 2 * 0.02 = 0.054 s; overhead 0.004 s.
    assert c4.op_latency == pytest.approx(0.054)
    assert c4.op_overhead == pytest.approx(0.004)
    assert c4.pp_memory == pytest.approx(4e9)
    assert c4.op_memory == pytest.approx(4e9)
    assert c4.rep_memory == pytest.approx(16e9)


# ------------------------------------------------------------------------------------------
# Grids
# ------------------------------------------------------------------------------------------
def test_grids_match_design_7_6():
    full = common.Settings()
    pts = fig4_memory_budget.grid(full)
    assert len(pts) == 24
    assert {p.case.workload.duration for p in pts} == {20000.0}
    assert {p.case.slo_scale for p in pts} == {common.INFINITE_SLO_SCALE}
    # The sr-uniform point of each model-parallel line equals the last replication point.
    assert len({p.case.case_id for p in pts}) == 22
    for sweep in fig5_7a_sweeps.SWEEPS.values():
        x = fig5_7a_sweeps.xs(sweep, full)
        assert len(x) == 20 and x[0] == sweep.lo and x[-1] == sweep.hi
    assert fig5_7a_sweeps.xs(fig5_7a_sweeps.SWEEPS["rate"], full)[1] == pytest.approx(
        0.8 + 23.2 / 19, abs=1e-6)
    assert fig5_7a_sweeps.xs(fig5_7a_sweeps.SWEEPS["slo"], full) == [float(k) for k in
                                                                      range(1, 21)]
    entries = (fig4_memory_budget.build_entries(full) + fig5_7a_sweeps.build_entries(full)
               + fig7b_pipeline_overhead.build_entries(full))
    assert len({e.case.case_id for e in entries}) == 22 + 120 + 120
    # Fig. 7(b)'s replication line is Fig. 7(a)'s, in the same TSV.
    sr7b = fig7b_pipeline_overhead.cases(full)["sr"]
    by_id = {e.case.case_id: e.file for e in entries}
    assert all(by_id[c.case_id] == fig5_7a_sweeps.SWEEPS["slo"].tsv for c in sr7b)


def test_fig4_budgets_give_the_intended_replica_counts():
    # The budgets of DESIGN 7.6 assume the paper's weights; check that with the committed
    # database they still mean "k copies per device" (replication) and "every model once per
    # group" (model parallelism), the layout Fig. 4 is about.
    db = ProfilingDatabase.default()
    for model, (_, mp_points, unit) in fig4_memory_budget.SETUPS.items():
        prof = db.get(model)
        w1 = prof.max_stage_weight(ParallelConfig(1, 1, 1))
        for k in range(1, 9):
            assert math.floor(round(unit * k, 6) * GiB / w1) == k, (model, k)
        for policy, budget in mp_points:
            pp = int(policy.rsplit("-", 1)[1]) if policy.startswith("mp-greedy") else 1
            need = 8 * prof.max_stage_weight(ParallelConfig(1, 1, pp))
            assert need <= budget * GiB, (model, policy)
            if pp > 1:  # one copy of every model per group, not two
                assert 16 * prof.max_stage_weight(ParallelConfig(1, 1, pp)) > budget * GiB


# ------------------------------------------------------------------------------------------
# Smoke: every figure with --quick --serial
# ------------------------------------------------------------------------------------------
def _colours(png) -> set[tuple[int, int, int]]:
    """Every RGB colour (0..255) of an image file."""
    import matplotlib.image

    rgb = (matplotlib.image.imread(png)[..., :3] * 255).round().astype(int)
    return {tuple(c) for c in rgb.reshape(-1, 3)}


def test_run_all_quick_serial_writes_every_figure(tmp_path):
    import matplotlib.colors

    from studies.motivation import run_all

    assert run_all.main(["--quick", "--serial", "--no-progress", "--out", str(tmp_path)]) == 0
    # Each figure's lines are drawn: its PNG holds the colours of its curves (model
    # parallelism red, replication / simple placement blue, ...), not only axes and text.
    both = ("tab:red", "tab:blue")
    lines = {"fig2a_latency_cdf": both, "fig2b_latency_cdf": both, "fig2c_latency_cdf": both,
             "fig2d_utilisation": both, "fig4_memory_budget": both,
             "fig5_latency_vs_rate": both, "fig6_latency_vs_cv": both,
             "fig7a_slo_attainment": both, "fig7b_pipeline_overhead": ("tab:blue",),
             "fig8_parallelism_cost": ("tab:red", "tab:blue", "tab:green"),
             "fig9_overhead_decomposition": ("tab:orange", "tab:purple")}
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == sorted(
        f"{name}{suffix}" for name in lines for suffix in (".pdf", ".png"))
    for name, colours in lines.items():
        found = _colours(tmp_path / f"{name}.png")
        for colour in colours:
            rgb = tuple(round(255 * c) for c in matplotlib.colors.to_rgb(colour))
            assert rgb in found, (name, colour)
        pdf = (tmp_path / f"{name}.pdf").read_bytes()
        assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF"), name
        assert pdf.count(b"/Type /Page\n") + pdf.count(b"/Type /Page ") == 1, name

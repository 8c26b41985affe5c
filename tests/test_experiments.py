"""Tests of alpa_serve.experiments: cases, suites, TSV I/O, run_case, runner (resume, Ray)."""

from __future__ import annotations

import csv
import dataclasses
import json
import socket
import time
from collections import Counter
from pathlib import Path

import pytest

from alpa_serve.experiments import (
    Case,
    SyntheticWorkload,
    TraceWorkload,
    build_suite,
    run_case,
    scheduling as sched_mod,
)
from alpa_serve.experiments.__main__ import main as cli_main
from alpa_serve.experiments.cases import model_names, model_types
from alpa_serve.experiments.suite_runner import RunnerError, RunOptions, run_entries
from alpa_serve.experiments.suites import (
    SUITES,
    SuiteEntry,
    SuiteOptions,
    UnknownSuiteError,
    calibration_targets,
    default_calibration_targets,
    fig13_window_pairs,
)
from alpa_serve.experiments.tsv import (
    COLUMNS,
    TsvFormatError,
    append_row,
    finished_case_ids,
    read_rows,
    repair_partial_tail,
    rows_without_timing,
)
from alpa_serve.profiling import ConfigProfile, ModelProfile, ParallelConfig, ProfilingDatabase

# A small hand-made profiling database, independent of the committed V100 reconstruction so
# that the runner's tests do not depend on calibration (latencies in s, weights in bytes).
#: type -> (single-device b=1 latency in s, total weight in bytes)
TINY_MODELS = {
    "bert-1.3b": (0.151, 2.9e9),
    "bert-2.6b": (0.238, 5.5e9),
    "bert-6.7b": (0.395, 13.0e9),
    "moe-1.3b": (0.18, 2.9e9),
    "moe-2.4b": (0.20, 5.0e9),
    "moe-5.3b": (0.21, 11.0e9),
}


def tiny_database() -> ProfilingDatabase:
    """Profiles with op in {1, 2, 4} and pp in {1, 2, 4, 8} for the model types of the sets."""
    profiles = []
    for name, (lat, weight) in TINY_MODELS.items():
        configs = {}
        for op in (1, 2, 4):
            for pp in (1, 2, 4, 8):
                stage = lat / op / pp * (1.0 + 0.05 * (op - 1) + 0.04 * (pp - 1))
                w = weight / op / pp
                configs[ParallelConfig(1, op, pp)] = ConfigProfile(
                    latency={1: tuple([stage] * pp)}, act_mem={1: tuple([1e8] * pp)},
                    weight_mem=tuple([w] * pp))
        profiles.append(ModelProfile(name, configs))
    return ProfilingDatabase(profiles, hardware={"note": "tests only"})


def _case(**kw) -> Case:
    base = dict(exp_name="goodput_vs_rate", model_set="S1", num_devices=2, num_models=4,
                policy="mp-search", slo_scale=5,
                workload=SyntheticWorkload(total_rate=4, cv=4, duration=40))
    base.update(kw)
    return Case(**base)


@pytest.fixture(scope="module")
def db():
    return tiny_database()


# ---------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------

def test_case_id_stable_and_normalised():
    c = _case()
    # A fixed value: changing the canonical form silently would break resume of old TSVs.
    assert c.case_id == _case().case_id
    assert len(c.case_id) == 16
    assert _case(slo_scale=5.0).case_id == c.case_id          # 5 and 5.0 are the same case
    assert _case(num_devices=2.0).case_id == c.case_id
    assert _case(slo_scale=5.5).case_id != c.case_id
    assert _case(policy="sr-greedy").case_id != c.case_id
    assert _case(exp_name="goodput_vs_cv").case_id != c.case_id
    assert Case.from_json_dict(json.loads(c.canonical_json())) == c


def test_case_id_known_value():
    # Pinned: the id is sha256 of the canonical JSON; an accidental change of the case
    # model would make every existing TSV look unfinished.
    c = _case()
    assert c.canonical_json() == (
        '{"exp_name":"goodput_vs_rate","mem_budget":13958643712.0,"model_set":"S1",'
        '"num_devices":2,"num_models":4,"policy":"mp-search","slo_scale":5.0,'
        '"workload":{"cv":4.0,"duration":40.0,"kind":"synthetic","rate_dist":"power_law",'
        '"total_rate":4.0,"train_seed":0,"train_workload":"test"}}')


def test_rate_shares_split_the_total_rate():
    # rate_i = total_rate x share_i (Fig. 2(b)'s 20%/80%); the field enters the canonical form
    # only when given, so every other case keeps its id (pinned above).
    wl = SyntheticWorkload(total_rate=3, cv=1, duration=60, rate_dist="shares",
                           rate_shares=(0.2, 0.8))
    c = _case(model_set="bert-1.3b", num_models=2, workload=wl)
    assert '"rate_shares":[0.2,0.8]' in c.canonical_json()
    assert Case.from_json_dict(json.loads(c.canonical_json())) == c
    assert '"rate_shares"' not in _case().canonical_json()
    from alpa_serve.experiments import prepare_inputs

    assert prepare_inputs(c).rates == (3 * 0.2, 3 * 0.8)
    equal = c.replace(workload=SyntheticWorkload(3, 1, 60, rate_dist="uniform"))
    halves = c.replace(workload=SyntheticWorkload(3, 1, 60, rate_dist="shares",
                                                  rate_shares=(0.5, 0.5)))
    assert prepare_inputs(equal).rates == prepare_inputs(halves).rates == (1.5, 1.5)
    for bad in ({"rate_dist": "shares"}, {"rate_shares": (0.5, 0.5)},
                {"rate_dist": "shares", "rate_shares": (0.5, -1)}):
        with pytest.raises(ValueError, match="rate_shares"):
            SyntheticWorkload(3, 1, 60, **bad)
    with pytest.raises(ValueError, match="2 rate_shares for 3 models"):
        c.replace(num_models=3)


def test_trace_case_roundtrip_and_windows():
    wl = TraceWorkload(source="maf1-standin", rate_scale=2e-3, cv_scale=4,
                       test_window=("0.0.0", "0.1.0"), interval_seconds=60)
    c = _case(workload=wl, policy="sr-replace-60")
    assert Case.from_json_dict(json.loads(c.canonical_json())) == c
    assert c.workload.duration == 3600.0
    row = c.to_row_fields()
    assert row["test_window"] == "0.0.0-0.1.0" and row["train_window"] == "0.0.0-0.1.0"
    assert row["workload"] == "maf1-standin" and row["total_rate"] == ""
    with pytest.raises(ValueError):
        TraceWorkload(source="maf3", rate_scale=1, cv_scale=1, test_window=("0.0.0", "0.1.0"))
    with pytest.raises(ValueError):
        TraceWorkload(source="maf1", rate_scale=1, cv_scale=1, test_window=("0.1.0", "0.0.0"))
    # A malformed window string: the workload layer's one time parser names it.
    with pytest.raises(ValueError, match="'0.1' is not 'day.hour.minute'"):
        TraceWorkload(source="maf1", rate_scale=1, cv_scale=1, test_window=("0.0.0", "0.1"))



def test_trace_windows_are_parsed_once_and_stay_out_of_the_case_id():
    wl = TraceWorkload(source="maf2-standin", rate_scale=8, cv_scale=1,
                       test_window=("13.0.0", "13.23.60"), train_window=("12.0.0", "12.1.30"),
                       interval_seconds=5400)
    assert wl.test_trace_window.strings == ("13.0.0", "13.23.60")
    assert (wl.test_trace_window.start_seconds, wl.test_trace_window.end_seconds) == \
        (13 * 86400, 14 * 86400)
    assert wl.train_trace_window.start_seconds == 12 * 86400 and wl.duration == 86400.0
    same_test = dataclasses.replace(wl, train_window=None)
    assert same_test.train_trace_window is same_test.test_trace_window
    c = _case(workload=wl, policy="sr-greedy")
    assert "trace_window" not in c.canonical_json()
    back = Case.from_json_dict(json.loads(c.canonical_json()))
    assert back == c and back.case_id == c.case_id
    assert back.workload.train_trace_window == wl.train_trace_window


def test_model_sets():
    assert model_types("S3", 8)[:7] == ["bert-6.7b", "moe-5.3b", "bert-2.6b", "moe-2.4b",
                                        "bert-1.3b", "moe-1.3b", "bert-6.7b"]
    assert model_types("all_transformers", 4) == ["bert-6.7b", "bert-2.6b", "bert-1.3b",
                                                  "bert-6.7b"]
    assert model_types("bert-2.6b", 2) == ["bert-2.6b", "bert-2.6b"]
    assert model_names("S1", 3) == ["m0", "m1", "m2"]
    assert model_names("S4", 2) == ["m0", "m1"]
    assert model_names("mixed", 2) == ["bert-6.7b-0", "moe-5.3b-1"]
    with pytest.raises(ValueError):
        _case(num_devices=0)


# ---------------------------------------------------------------------------
# Suites
# ---------------------------------------------------------------------------

def test_fig11_grid_sizes():
    entries = build_suite("fig11", SuiteOptions(traces="standin"))
    counts = Counter(e.file for e in entries)
    # (sweep lengths summed) x 3 policies, DESIGN 7.2
    assert counts == {"S1_maf1.tsv": 29 * 3, "S2_maf1.tsv": 32 * 3, "S3_maf1.tsv": 30 * 3,
                      "S1_maf2.tsv": 29 * 3, "S2_maf2.tsv": 27 * 3, "S3_maf2.tsv": 26 * 3}
    pol = {f: sorted({e.case.policy for e in entries if e.file == f}) for f in counts}
    assert pol["S1_maf1.tsv"] == ["mp-search", "sr-greedy", "sr-replace-60"]
    assert pol["S3_maf1.tsv"] == ["mp-search-sep", "sr-greedy", "sr-replace-60"]
    assert pol["S2_maf2.tsv"] == ["mp-search", "sr-greedy", "sr-replace-21600"]
    s3 = [e.case for e in entries if e.file == "S3_maf2.tsv"]
    assert all(c.num_models == 72 and c.model_set == "S3" for c in s3)
    fixed = [c for c in s3 if c.exp_name == "goodput_vs_num_devices"]
    assert {c.workload.rate_scale for c in fixed} == {32.0}
    assert {c.workload.cv_scale for c in fixed} == {1.0}
    assert sorted({c.num_devices for c in fixed}) == [16, 24, 32, 40, 48, 54, 64]
    assert {c.workload.test_window for c in s3} == {("13.0.0", "13.23.60")}
    assert {c.workload.interval_seconds for c in s3} == {5400.0}
    assert {c.workload.source for c in s3} == {"maf2-standin"}
    real = build_suite("fig11", SuiteOptions(traces="real"))
    assert {e.case.workload.source for e in real} == {"maf1", "maf2"}
    ids = [e.case.case_id for e in entries]
    assert len(set(ids)) == len(ids)


def test_fig11_columns_are_the_plotted_ones():
    # The suite writes one file per column of the shared Fig. 11 layout, in its order, and
    # the plotting code reads exactly those files.
    from alpa_serve import results
    from alpa_serve.experiments.suites import FIG11_COLUMNS
    from alpa_serve.plotting.figures import FIG11_PANELS

    assert [(c.model_set, c.trace) for c in FIG11_COLUMNS] == list(results.FIG11_COLUMNS)
    assert [(c.file, c.name) for c in FIG11_COLUMNS] == list(FIG11_PANELS)
    assert FIG11_PANELS[0] == ("S1_maf1.tsv", "S1@MAF1")
    files = list(dict.fromkeys(e.file for e in build_suite("fig11")))
    assert files == [c.file for c in FIG11_COLUMNS]


def test_one_knob_sweeps_move_one_knob_from_the_fixed_point():
    from alpa_serve.experiments.suites import one_knob_sweeps

    sweeps = (("vs_a", "a", (1, 2, 3, 4)), ("vs_b", "b", (10, 20)))
    fixed = {"a": 3, "b": 20, "c": 7}
    assert one_knob_sweeps(sweeps, lambda _: fixed, quick=False) == [
        ("vs_a", {"a": 1, "b": 20, "c": 7}), ("vs_a", {"a": 2, "b": 20, "c": 7}),
        ("vs_a", {"a": 3, "b": 20, "c": 7}), ("vs_a", {"a": 4, "b": 20, "c": 7}),
        ("vs_b", {"a": 3, "b": 10, "c": 7}), ("vs_b", {"a": 3, "b": 20, "c": 7})]
    # quick: the first value and the one nearest the fixed point; the fixed point may depend
    # on the sweep (Fig. 13's legacy CV scale).
    assert one_knob_sweeps(sweeps, lambda e: {**fixed, "a": 2 if e == "vs_a" else 3},
                           quick=True) == [
        ("vs_a", {"a": 1, "b": 20, "c": 7}), ("vs_a", {"a": 2, "b": 20, "c": 7}),
        ("vs_b", {"a": 3, "b": 10, "c": 7}), ("vs_b", {"a": 3, "b": 20, "c": 7})]


def test_traces_auto(monkeypatch):
    monkeypatch.delenv("ALPA_SERVE_MAF2_PATH", raising=False)
    monkeypatch.setenv("ALPA_SERVE_MAF1_PATH", "/somewhere")
    sources = {e.case.workload.source for e in build_suite("fig11", SuiteOptions(quick=True))}
    assert sources == {"maf1", "maf2-standin"}
    monkeypatch.delenv("ALPA_SERVE_MAF1_PATH")
    sources = {e.case.workload.source for e in build_suite("fig11", SuiteOptions(quick=True))}
    assert sources == {"maf1-standin", "maf2-standin"}


def test_fig12_fig14_grid_sizes():
    f12 = build_suite("fig12")
    assert len(f12) == (5 + 4 + 6) * 5
    assert {e.file for e in f12} == {"large_model_exp.tsv"}
    assert {e.case.num_devices for e in f12} == {64}
    assert {e.case.workload.duration for e in f12} == {1200.0}
    assert {e.case.workload.train_workload for e in f12} == {"test"}
    f14 = build_suite("fig14")
    assert len(f14) == (7 + 9) * 3
    assert {e.case.num_models for e in f14} == {60}
    assert {(e.case.workload.train_workload, e.case.workload.train_seed) for e in f14} == {
        ("generated", 0)}


def test_fig13_pairs_and_legacy_quirk():
    assert fig13_window_pairs() == [
        (("5.8.0", "5.9.0"), ("5.1.0", "5.2.0")),
        (("11.9.0", "11.10.0"), ("0.12.0", "0.13.0")),
        (("12.11.0", "12.12.0"), ("0.7.0", "0.8.0")),
    ]
    entries = build_suite("fig13")
    assert Counter(e.file for e in entries) == {"robust_pair1.tsv": 87, "robust_pair2.tsv": 87,
                                               "robust_pair3.tsv": 87}
    for e in entries:
        wl = e.case.workload
        if e.case.policy == "sr-replace-120":
            assert wl.train_window is None  # Clockwork++ uses the test window
        else:
            assert wl.train_window != wl.test_window and wl.train_window is not None
        if e.case.exp_name != "goodput_vs_cv_scale":
            assert wl.cv_scale == 4.0
    legacy = build_suite("fig13", SuiteOptions(legacy_fig13=True))
    eights = Counter((e.file, e.case.exp_name) for e in legacy
                     if e.case.exp_name != "goodput_vs_cv_scale" and e.case.workload.cv_scale == 8)
    assert eights == {("robust_pair2.tsv", "goodput_vs_num_devices"): 18,
                      ("robust_pair2.tsv", "goodput_vs_slo"): 24,
                      ("robust_pair3.tsv", "goodput_vs_num_devices"): 18,
                      ("robust_pair3.tsv", "goodput_vs_slo"): 24}


def test_calibration_suite_matches_targets():
    path = default_calibration_targets()  # packaged in alpa_serve/data/reference/
    with open(path, newline="") as f:
        n = sum(1 for _ in csv.DictReader(f, delimiter="\t"))
    targets = calibration_targets(path)
    assert len(targets) == n == len(build_suite("calibration"))
    fid = [t for t in targets if t.set == "fidelity-bert2.6b-sim"]
    assert fid and all(t.case.model_set == "bert-2.6b" and t.case.num_models == 24
                       and t.case.num_devices == 16 for t in fid)
    for t in targets:
        wl = t.case.workload
        if isinstance(wl, SyntheticWorkload):
            assert (wl.train_workload, wl.train_seed, wl.duration) == ("generated", 1234, 200.0)
        else:
            # Trace targets: SR everywhere, Clockwork++ (6-hour windows) on S3@MAF2.
            assert t.case.policy == "sr-greedy" or (
                t.set == "S3@MAF2" and t.case.policy == "sr-replace-21600")


def test_quick_suites_are_small_and_cover_every_file_and_policy():
    for name in SUITES:
        full = build_suite(name)
        quick = build_suite(name, SuiteOptions(quick=True))
        assert 0 < len(quick) < len(full)
        if name != "calibration":
            assert {e.file for e in quick} == {e.file for e in full}
            assert {(e.file, e.case.policy, e.case.exp_name) for e in quick} == {
                (e.file, e.case.policy, e.case.exp_name) for e in full}


def test_unknown_suite():
    with pytest.raises(UnknownSuiteError, match="fig11"):
        build_suite("fig99")


def test_only_and_exclude_files():
    full = build_suite("fig11")
    one = build_suite("fig11", SuiteOptions(only_files=("S1_maf1.tsv",)))
    assert one and {e.file for e in one} == {"S1_maf1.tsv"}
    assert len(one) == sum(e.file == "S1_maf1.tsv" for e in full)
    rest = build_suite("fig11", SuiteOptions(exclude_files=("S3_maf2.tsv",)))
    assert {e.file for e in rest} == {e.file for e in full} - {"S3_maf2.tsv"}
    assert len(rest) + sum(e.file == "S3_maf2.tsv" for e in full) == len(full)
    with pytest.raises(ValueError, match="S3_maf3.tsv.*its files are: S1_maf1.tsv"):
        build_suite("fig11", SuiteOptions(exclude_files=("S3_maf3.tsv",)))


def test_cli_unknown_file_is_a_clear_error(tmp_path, caplog):
    assert cli_main(["fig14", "--out", str(tmp_path), "--only", "nope.tsv", "--serial"]) == 2
    assert "ablation.tsv" in caplog.text and "nope.tsv" in caplog.text
    assert not list(tmp_path.iterdir())


def test_case_ids_distinct_across_suites():
    ids = Counter()
    for name in ("fig11", "fig12", "fig13", "fig14"):
        for e in build_suite(name):
            ids[e.case.case_id] += 1
    assert max(ids.values()) == 1


# ---------------------------------------------------------------------------
# TSV
# ---------------------------------------------------------------------------

def _row(case: Case, goodput: float = 0.5) -> dict:
    row = case.to_row_fields()
    row.update(goodput=goodput, latency_mean=0.1, latency_p99=0.2, num_requests=10,
               solver_seconds=0.01, placement='{"type":"ModelPlacement"}', profile="abc",
               case_id=case.case_id)
    return row


def test_tsv_append_and_read(tmp_path):
    path = tmp_path / "sub" / "r.tsv"
    a, b = _case(), _case(slo_scale=2)
    append_row(path, _row(a, 0.25))
    append_row(path, _row(b, 1.0))
    lines = path.read_text().splitlines()
    assert lines[0].split("\t") == list(COLUMNS)
    rows = read_rows(path)
    assert [r["case_id"] for r in rows] == [a.case_id, b.case_id]
    assert rows[0]["goodput"] == "0.25" and rows[1]["placement"] == '{"type":"ModelPlacement"}'
    assert finished_case_ids(path) == {a.case_id: "abc", b.case_id: "abc"}
    # pandas reads it with its defaults
    import pandas as pd
    df = pd.read_csv(path, sep="\t")
    assert list(df.columns) == list(COLUMNS) and len(df) == 2


def test_tsv_unreadable_row_names_line(tmp_path):
    path = tmp_path / "r.tsv"
    append_row(path, _row(_case()))
    append_row(path, _row(_case(slo_scale=3)))
    with open(path, "a") as f:
        f.write("garbage\tline\n")
    append_row(path, _row(_case(slo_scale=4)))
    with pytest.raises(TsvFormatError, match=r"r\.tsv:4: unreadable row"):
        read_rows(path)


def test_tsv_partial_tail_repaired(tmp_path):
    path = tmp_path / "r.tsv"
    append_row(path, _row(_case()))
    with open(path, "a") as f:
        f.write("goodput_vs_rate\tsynth")  # a crash mid-write
    assert repair_partial_tail(path)
    assert len(read_rows(path)) == 1
    assert not repair_partial_tail(path)


def test_tsv_header_mismatch(tmp_path):
    path = tmp_path / "r.tsv"
    path.write_text("a\tb\n1\t2\n")
    with pytest.raises(TsvFormatError, match=r"r\.tsv:1: header"):
        append_row(path, _row(_case()))


def test_tsv_rejects_tabs():
    row = _row(_case())
    row["placement"] = "a\tb"
    with pytest.raises(ValueError):
        append_row("unused.tsv", row)


# ---------------------------------------------------------------------------
# run_case
# ---------------------------------------------------------------------------

def test_run_case_tiny(db):
    row = run_case(_case(), db)
    assert set(COLUMNS) <= set(row)
    assert 0 <= row["goodput"] <= 1 and row["goodput"] == round(row["goodput"], 3)
    assert row["num_requests"] > 0
    # The profile column covers exactly the case's model types.
    assert row["profile"] == db.fingerprint(_case().model_types) == db.get(
        _case().model_types[0]).fingerprint()
    placement = json.loads(row["placement"])
    assert placement["type"] == "ModelPlacement"
    again = run_case(_case(), db)
    assert {k: v for k, v in again.items() if k != "solver_seconds"} == {
        k: v for k, v in row.items() if k != "solver_seconds"}


def test_run_case_slo_scales_goodput(db):
    low = run_case(_case(slo_scale=1.05, policy="sr-greedy",
                         workload=SyntheticWorkload(total_rate=20, cv=4, duration=60)), db)
    high = run_case(_case(slo_scale=20, policy="sr-greedy",
                          workload=SyntheticWorkload(total_rate=20, cv=4, duration=60)), db)
    assert low["goodput"] < high["goodput"]


def test_run_case_mixed_generated(db):
    c = _case(model_set="mixed", num_models=6, num_devices=4, policy="mp-search-sep",
              workload=SyntheticWorkload(total_rate=6, cv=2, duration=40,
                                         train_workload="generated", train_seed=1234))
    row = run_case(c, db)
    assert row["train_workload"] == "generated" and row["train_seed"] == 1234
    assert 0 <= row["goodput"] <= 1


def test_simulate_case_gives_the_row_and_the_requests(db):
    # run_case's row is result_row of simulate_case's result; the result keeps the requests
    # (with their SLOs) and the per-request outcome the row summarises.
    from alpa_serve.experiments import simulate_case
    from alpa_serve.experiments.case_runner import result_row, slo_base

    case = _case(policy="sr-greedy", slo_scale=3)
    res = simulate_case(case, db)
    row = run_case(case, db)
    assert {k: v for k, v in result_row(case, db, res).items() if k != "solver_seconds"} == {
        k: v for k, v in row.items() if k != "solver_seconds"}
    assert set(res.workload.slos) == {3 * slo_base(db.get("bert-1.3b"))}
    trim = res.stats.trim
    all_lat = res.stats.finish[trim] - res.workload.arrivals[trim]
    good = res.good_latencies()
    assert len(good) == int(res.stats.good[trim].sum()) > 0
    assert row["goodput"] == round(len(good) / len(all_lat), 3)
    assert row["latency_mean"] == pytest.approx(all_lat.mean(), rel=1e-12)


def test_run_case_default_database():
    row = run_case(_case(num_models=4, num_devices=2, policy="sr-greedy"))
    assert 0 <= row["goodput"] <= 1


# ---------------------------------------------------------------------------
# Runner: resume, determinism, Ray, errors
# ---------------------------------------------------------------------------

def _small_entries() -> list[SuiteEntry]:
    entries = []
    for policy in ("sr-greedy", "mp-search", "sr-replace-15"):
        for rate in (2, 6):
            entries.append(SuiteEntry("a.tsv", _case(policy=policy,
                                                     workload=SyntheticWorkload(rate, 3, 30))))
        entries.append(SuiteEntry("b.tsv", _case(policy=policy, num_devices=3, slo_scale=2,
                                                 exp_name="goodput_vs_slo")))
    return entries


def _ids_in(out: Path) -> Counter:
    ids = Counter()
    for p in sorted(out.glob("*.tsv")):
        ids.update(r["case_id"] for r in read_rows(p))
    return ids


def test_resume_after_crash_serial(tmp_path, db, monkeypatch):
    entries = _small_entries()
    opts = RunOptions(out_dir=tmp_path, serial=True, progress=False)
    real = sched_mod.run_prepared
    calls = {"n": 0}

    def crashing(case, db_, inputs, *rest):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt("simulated kill")
        return real(case, db_, inputs, *rest)

    monkeypatch.setattr(sched_mod, "run_prepared", crashing)
    with pytest.raises(KeyboardInterrupt):
        run_entries(entries, opts, db=db)
    assert sum(_ids_in(tmp_path).values()) == 4
    monkeypatch.setattr(sched_mod, "run_prepared", real)
    summary = run_entries(entries, opts, db=db)
    assert summary.ok and summary.skipped == 4 and summary.ran == len(entries) - 4
    ids = _ids_in(tmp_path)
    assert ids == Counter({e.case.case_id: 1 for e in entries})
    # a third run does nothing
    summary = run_entries(entries, opts, db=db)
    assert summary.ran == 0 and summary.skipped == len(entries)


def test_two_runs_identical_apart_from_timing(tmp_path, db):
    entries = _small_entries()
    for sub in ("x", "y"):
        run_entries(entries, RunOptions(out_dir=tmp_path / sub, serial=True, progress=False),
                    db=db)
    for name in ("a.tsv", "b.tsv"):
        assert rows_without_timing(tmp_path / "x" / name) == rows_without_timing(
            tmp_path / "y" / name)


def test_failed_case_is_reported_and_others_run(tmp_path, db):
    entries = _small_entries() + [SuiteEntry("a.tsv", _case(policy="no-such-policy"))]
    summary = run_entries(entries, RunOptions(out_dir=tmp_path, serial=True, progress=False),
                          db=db)
    assert not summary.ok and len(summary.failures) == 1
    assert "no-such-policy" in summary.failures[0].error
    assert summary.ran == len(entries) - 1


def test_rows_stay_valid_when_another_model_type_changes(tmp_path, db):
    """A result depends on the profiles of its model types only: changing another model in
    the database neither marks it stale nor makes a rerun compute it again."""
    entries = _small_entries()[:2]
    opts = RunOptions(out_dir=tmp_path, serial=True, progress=False)
    run_entries(entries, opts, db=db)
    used = set(entries[0].case.model_types)
    other = next(n for n in db.model_names() if n not in used)
    changed = ProfilingDatabase([p if p.name != other else ModelProfile(
        p.name, {c: p.profile(c) for c in p.configs()[:-1]}) for p in
        (db.get(n) for n in db.model_names())], db.hardware)
    assert changed.fingerprint() != db.fingerprint()
    summary = run_entries(entries, opts, db=changed)
    assert summary.ok and summary.ran == 0 and summary.skipped == 2


def test_force_and_stale_profile(tmp_path, db):
    entries = _small_entries()[:2]
    opts = RunOptions(out_dir=tmp_path, serial=True, progress=False)
    run_entries(entries, opts, db=db)
    path = tmp_path / "a.tsv"
    text = path.read_text().replace(db.fingerprint(entries[0].case.model_types), "0ldpr0f11e00")
    path.write_text(text)
    with pytest.raises(RunnerError, match="other profiles of their model types"):
        run_entries(entries, opts, db=db)
    summary = run_entries(entries, RunOptions(out_dir=tmp_path, serial=True, progress=False,
                                              force=True), db=db)
    assert summary.ran == 2 and (tmp_path / "a.tsv.bak").exists()
    assert _ids_in(tmp_path) == Counter({e.case.case_id: 1 for e in entries})


def test_seed_rows_are_copied_and_not_recomputed(tmp_path, db, monkeypatch):
    entries = _small_entries()
    seed = tmp_path / "seed"
    run_entries(entries[:3], RunOptions(out_dir=seed, serial=True, progress=False), db=db)
    # a row of another profile and a row of a case outside the grid are not used
    stale_case = entries[3].case
    row = _row(stale_case)
    row["profile"] = "0ldpr0f11e00"
    append_row(seed / entries[3].file, row)
    append_row(seed / "a.tsv", _row(_case(policy="sr-greedy", num_devices=7)))
    ran: list[str] = []
    real = sched_mod.run_prepared

    def counting(case, db_, inputs, *rest):
        ran.append(case.case_id)
        return real(case, db_, inputs, *rest)

    monkeypatch.setattr(sched_mod, "run_prepared", counting)
    out = tmp_path / "out"
    summary = run_entries(entries, RunOptions(out_dir=out, serial=True, progress=False,
                                              seed_dir=seed), db=db)
    assert summary.ok and summary.seeded == 3 and summary.skipped == 3
    assert sorted(ran) == sorted(e.case.case_id for e in entries[3:])
    assert _ids_in(out) == Counter({e.case.case_id: 1 for e in entries})
    # seeded rows are the seed's rows verbatim; the result equals a run from scratch
    ref = tmp_path / "ref"
    run_entries(entries, RunOptions(out_dir=ref, serial=True, progress=False), db=db)
    for name in ("a.tsv", "b.tsv"):
        assert rows_without_timing(out / name) == rows_without_timing(ref / name)
    # a rerun copies nothing twice
    summary = run_entries(entries, RunOptions(out_dir=out, serial=True, progress=False,
                                              seed_dir=seed), db=db)
    assert summary.seeded == 0 and summary.ran == 0
    assert _ids_in(out) == Counter({e.case.case_id: 1 for e in entries})
    # --force ignores the seed folder and computes everything
    ran.clear()
    run_entries(entries, RunOptions(out_dir=out, serial=True, progress=False, seed_dir=seed,
                                    force=True), db=db)
    assert len(ran) == len(entries)


def test_seed_folder_missing_is_a_clear_error(tmp_path, db):
    with pytest.raises(FileNotFoundError, match="precomputed rows folder"):
        run_entries(_small_entries()[:1], RunOptions(out_dir=tmp_path, serial=True,
                                                     progress=False,
                                                     seed_dir=tmp_path / "nope"), db=db)


def test_ray_run_resumes_serial_partial(tmp_path, db):
    entries = _small_entries()
    opts = RunOptions(out_dir=tmp_path, serial=True, progress=False)
    run_entries(entries[:3], opts, db=db)
    serial_rows = {r["case_id"]: r for r in read_rows(tmp_path / "a.tsv")}
    summary = run_entries(entries, RunOptions(out_dir=tmp_path, num_cpus=2, progress=False),
                          db=db)
    assert summary.ok and summary.skipped == 3 and summary.ran == len(entries) - 3
    assert _ids_in(tmp_path) == Counter({e.case.case_id: 1 for e in entries})
    # Ray rows equal serial rows apart from timing
    ref = tmp_path / "ref"
    run_entries(entries, RunOptions(out_dir=ref, serial=True, progress=False), db=db)
    for name in ("a.tsv", "b.tsv"):
        assert rows_without_timing(tmp_path / name) == rows_without_timing(ref / name)
    assert serial_rows


def test_unreachable_ray_address_fails_fast(tmp_path, db):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    with pytest.raises(RunnerError, match="cannot reach the Ray cluster"):
        run_entries(_small_entries()[:1], RunOptions(out_dir=tmp_path, progress=False,
                                                     ray_address=f"127.0.0.1:{port}",
                                                     connect_timeout=2), db=db)
    assert time.monotonic() - t0 < 10
    with pytest.raises(RunnerError, match="host:port"):
        run_entries(_small_entries()[:1], RunOptions(out_dir=tmp_path, progress=False,
                                                     ray_address="nonsense"), db=db)


def test_cli_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        cli_main(["fig99", "--out", str(tmp_path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "unknown suite 'fig99'" in err and "fig11" in err and "calibration" in err


# ---------------------------------------------------------------------------
# Trace cases (a tiny MAF1-format trace written by the test)
# ---------------------------------------------------------------------------

@pytest.fixture()
def tiny_maf1(tmp_path, monkeypatch):
    """A one-day MAF1 raw file with 12 functions; $ALPA_SERVE_MAF1_PATH points at it."""
    import numpy as np

    from alpa_serve.experiments import trace_inputs as traces_mod

    raw = tmp_path / "maf1raw"
    raw.mkdir()
    rs = np.random.RandomState(7)
    header = ["HashOwner", "HashApp", "HashFunction", "Trigger"] + [str(i) for i in range(1, 1441)]
    lines = [",".join(header)]
    for f in range(12):
        counts = rs.poisson(rs.uniform(0.2, 30), size=1440) * (rs.uniform(size=1440) < 0.7)
        lines.append(",".join([f"o{f}", f"a{f}", f"fn{f}", "http"] + [str(int(c)) for c in counts]))
    (raw / "invocations_per_function_md.anon.d01.csv").write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("ALPA_SERVE_MAF1_PATH", str(raw))
    monkeypatch.setenv("ALPA_SERVE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(traces_mod, "_CACHE", {})
    return raw


def _trace_entries() -> list[SuiteEntry]:
    entries = []
    for policy in ("sr-greedy", "sr-replace-600", "mp-search"):
        for rate_scale in (0.05, 0.2):
            wl = TraceWorkload(source="maf1", rate_scale=rate_scale, cv_scale=4,
                               test_window=("0.1.0", "0.2.0"), interval_seconds=60)
            entries.append(SuiteEntry("t.tsv", _case(policy=policy, num_models=6, num_devices=3,
                                                     exp_name="goodput_vs_rate_scale",
                                                     workload=wl)))
        wl = TraceWorkload(source="maf1", rate_scale=0.1, cv_scale=2,
                           test_window=("0.1.0", "0.2.0"), train_window=("0.5.0", "0.6.0"),
                           interval_seconds=60)
        entries.append(SuiteEntry("u.tsv", _case(policy=policy, num_models=6, num_devices=3,
                                                 exp_name="goodput_vs_cv_scale", workload=wl)))
    return entries


def test_trace_cases_serial_and_ray(tmp_path, db, tiny_maf1):
    entries = _trace_entries()
    row = run_case(entries[0].case, db)
    assert row["workload"] == "maf1" and row["test_window"] == "0.1.0-0.2.0"
    assert row["rate_scale"] == 0.05 and row["num_requests"] > 0
    ser = tmp_path / "serial"
    summary = run_entries(entries, RunOptions(out_dir=ser, serial=True, progress=False), db=db)
    assert summary.ok and summary.ran == len(entries)
    rows = read_rows(ser / "u.tsv")
    assert {r["train_window"] for r in rows} == {"0.5.0-0.6.0"}
    par = tmp_path / "ray"
    summary = run_entries(entries, RunOptions(out_dir=par, num_cpus=2, progress=False), db=db)
    assert summary.ok, summary.failures
    for name in ("t.tsv", "u.tsv"):
        assert rows_without_timing(ser / name) == rows_without_timing(par / name)


def test_cli_resume_after_truncation(tmp_path):
    """fig12 --quick through the CLI; a run cut after 10 rows (plus a half-written line)
    resumes to every case exactly once, with rows equal to an uninterrupted run."""
    full, cut = tmp_path / "full", tmp_path / "cut"
    args = ["fig12", "--quick", "--serial", "--no-progress"]
    assert cli_main(args + ["--out", str(full)]) == 0
    lines = (full / "large_model_exp.tsv").read_text().splitlines(keepends=True)
    assert len(lines) == 31
    cut.mkdir()
    (cut / "large_model_exp.tsv").write_text("".join(lines[:11]) + lines[11][:40])
    assert cli_main(args + ["--out", str(cut)]) == 0
    ids = Counter(r["case_id"] for r in read_rows(cut / "large_model_exp.tsv"))
    assert len(ids) == 30 and set(ids.values()) == {1}
    assert rows_without_timing(cut / "large_model_exp.tsv") == rows_without_timing(
        full / "large_model_exp.tsv")


def test_same_simulation_in_two_sweeps_runs_once(tmp_path, db, monkeypatch):
    a = _case(exp_name="goodput_vs_rate")
    b = _case(exp_name="goodput_vs_slo")
    c = _case(exp_name="goodput_vs_rate", slo_scale=2)
    real = sched_mod.run_prepared
    calls = []
    def counting(case, db_, inputs, *rest):
        calls.append(case)
        return real(case, db_, inputs, *rest)

    monkeypatch.setattr(sched_mod, "run_prepared", counting)
    summary = run_entries([SuiteEntry("x.tsv", a), SuiteEntry("y.tsv", b), SuiteEntry("x.tsv", c)],
                          RunOptions(out_dir=tmp_path, serial=True, progress=False), db=db)
    assert summary.ok and summary.ran == 3 and len(calls) == 2
    ra = {r["case_id"]: r for r in read_rows(tmp_path / "x.tsv")}[a.case_id]
    (rb,) = read_rows(tmp_path / "y.tsv")
    assert rb["case_id"] == b.case_id and rb["exp_name"] == "goodput_vs_slo"
    assert {k: v for k, v in ra.items() if k not in ("exp_name", "case_id")} == {
        k: v for k, v in rb.items() if k not in ("exp_name", "case_id")}


def test_quick_windows():
    from alpa_serve.experiments.suites import quick_window
    assert quick_window(("0.0.0", "0.1.0"), "maf1") == ("0.0.0", "0.0.20")
    assert quick_window(("13.0.0", "13.23.60"), "maf2") == ("13.0.0", "13.1.30")
    assert quick_window(("0.23.0", "0.23.60"), "maf2") == ("0.23.0", "0.24.0")
    quick = build_suite("fig11", SuiteOptions(quick=True, traces="standin"))
    assert {e.case.workload.test_window for e in quick} == {("0.0.0", "0.0.20"),
                                                           ("13.0.0", "13.1.30")}
    # first point and the one nearest the fixed point (shared by the sweeps)
    s1 = {(e.case.exp_name, e.case.num_devices, e.case.workload.rate_scale,
           e.case.workload.cv_scale, e.case.slo_scale) for e in quick if e.file == "S1_maf1.tsv"}
    assert s1 == {("goodput_vs_num_devices", 8, 2e-3, 4.0, 5.0),
                  ("goodput_vs_num_devices", 16, 2e-3, 4.0, 5.0),
                  ("goodput_vs_rate_scale", 16, 5e-4, 4.0, 5.0),
                  ("goodput_vs_rate_scale", 16, 2e-3, 4.0, 5.0),
                  ("goodput_vs_cv_scale", 16, 2e-3, 1.0, 5.0),
                  ("goodput_vs_cv_scale", 16, 2e-3, 4.0, 5.0),
                  ("goodput_vs_slo", 16, 2e-3, 4.0, 0.75),
                  ("goodput_vs_slo", 16, 2e-3, 4.0, 5.0)}


def test_slo_base_is_single_latency_or_published_whole_model_latency():
    from alpa_serve.experiments.case_runner import slo_base
    db = ProfilingDatabase.default()
    assert slo_base(db.get("bert-2.6b")) == db.get("bert-2.6b").single_latency
    # DESIGN 4.2: bert-103.5b's SLOs are slo_scale x 4.6 s exactly, not its profile's stage sum.
    assert slo_base(db.get("bert-103.5b")) == 4.6
    assert db.get("bert-103.5b").single_latency != 4.6

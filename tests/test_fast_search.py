"""The opt-in fast search (DESIGN 7.8): the case field, the reduction rule, the runner's
refusals, the command line and gen_data flag, the figures' note, the comparison report and the
precomputed rows (never fast)."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from test_experiments import _case, _row, _small_entries, tiny_database
from test_plotting import (
    E2E_POLICIES,
    E2E_SWEEPS,
    LARGE_POLICIES,
    LARGE_SWEEPS,
    _texts,
    synthetic_rows,
    write_tsv,
)

import alpa_serve.placement as placement_pkg
from alpa_serve.experiments import Case, TraceWorkload
from alpa_serve.experiments.__main__ import main as cli_main
from alpa_serve.experiments.case_runner import CaseInputs, simulate_prepared
from alpa_serve.experiments.fast_search import (
    FAST_SEARCH_POLICIES,
    FAST_WINDOW_SHARE,
    fast_training_workload,
    num_windows,
    select_training_windows,
    uses_fast_search,
    window_slice,
)
from alpa_serve.experiments.suite_runner import RunnerError, RunOptions, run_entries, seed_rows
from alpa_serve.experiments.suites import SuiteEntry, SuiteOptions, build_suite
from alpa_serve.experiments.tsv import (
    COLUMNS,
    PreviousVersionError,
    append_row,
    inspect_result_file,
    read_rows,
)
from alpa_serve.placement.subproblems import workload_digest
from alpa_serve.plotting import FAST_GID, STANDIN_GID, build_figures
from alpa_serve.plotting.panels import FAST_MARK, FAST_NOTE
from alpa_serve.results import PREVIOUS_COLUMNS, SEARCH_MODES
from alpa_serve.workload import Workload

REPO = Path(__file__).resolve().parent.parent
PRECOMPUTED = REPO / "osdi23_artifact" / "precomputed"


@pytest.fixture(scope="module")
def db():
    return tiny_database()


def _fast(entries: list[SuiteEntry]) -> list[SuiteEntry]:
    return [SuiteEntry(e.file, e.case.replace(search="fast")) for e in entries]


def _opts(out: Path, **kw) -> RunOptions:
    return RunOptions(out_dir=out, serial=True, progress=False, **kw)


# ---------------------------------------------------------------------------
# The case field
# ---------------------------------------------------------------------------

def test_search_is_part_of_the_case_and_exact_keeps_the_old_ids():
    exact, fast = _case(), _case(search="fast")
    assert exact.search == "exact" and SEARCH_MODES == ("exact", "fast")
    assert '"search"' not in exact.canonical_json()       # every existing id unchanged
    assert '"search":"fast"' in fast.canonical_json() and fast.case_id != exact.case_id
    assert Case.from_json_dict(json.loads(fast.canonical_json())) == fast
    assert Case.from_json_dict(json.loads(exact.canonical_json())) == exact
    assert exact.to_row_fields()["search"] == "exact" and fast.to_row_fields()["search"] == "fast"
    assert "fast search" in fast.describe() and "fast" not in exact.describe()
    with pytest.raises(ValueError, match=r"search must be one of 'exact', 'fast', got 'quick'"):
        _case(search="quick")


def test_suite_option_sets_every_case():
    entries = build_suite("fig12", SuiteOptions(quick=True, search="fast"))
    exact = build_suite("fig12", SuiteOptions(quick=True))
    assert {e.case.search for e in entries} == {"fast"}
    assert [e.case.replace(search="exact") for e in entries] == [e.case for e in exact]


# ---------------------------------------------------------------------------
# The rule
# ---------------------------------------------------------------------------

def test_window_slice_is_the_middle_of_every_window():
    assert FAST_WINDOW_SHARE == 0.0625
    assert window_slice(5400) == (2531.25, 2868.75)           # MAF2: 337.5 s of each window
    assert window_slice(10, share=0.5) == (2.5, 7.5)
    assert num_windows(13 * 86400, 14 * 86400, 5400) == 16
    assert num_windows(0, 100, 60) == 2                       # a last, partial window
    for bad in (0, 1.5):
        with pytest.raises(ValueError):
            window_slice(60, share=bad)


def _replay(start: float = 1000.0) -> Workload:
    """8 windows of 10 s from ``start``: model 0 at 3 s and 8 s into every window, model 1 at
    1 s into window 0 and 4, 5, 6 s into window 6, model 2 never, model 3 at 9 s into windows 1
    and 7 and 1 s into window 7, plus one arrival past the end (window 7)."""
    times, ids = [], []
    for k in range(8):
        times += [start + 10 * k + 3.0, start + 10 * k + 8.0]
        ids += [0, 0]
    times += [start + 1.0, start + 64.0, start + 65.0, start + 66.0,
              start + 19.0, start + 71.0, start + 79.0, start + 85.0]
    ids += [1, 1, 1, 1, 3, 3, 3, 3]
    order = np.argsort(times, kind="stable")
    return Workload(np.array(times)[order], np.array(ids)[order], np.ones(len(times)),
                    ["a", "b", "c", "d"])


def test_selection_keeps_the_middle_of_every_window_and_every_model():
    w = _replay()
    sel = select_training_windows(w, 1000.0, 1080.0, 10.0, share=0.5)
    assert sel.num_windows == 8 and sel.slice == (2.5, 7.5)
    kept = w[sel.mask]
    # model 0: its 3 s arrivals (8 of 16); model 1: window 6's three; model 3 has none in a
    # slice, so its busiest window (7, with the arrival past the end) is added; model 2 has
    # no request.
    assert sel.added == ((3, 7),)
    assert sel.num_requests == len(kept) == 8 + 3 + 3
    assert np.array_equal(np.sort(kept.arrivals[kept.model_ids == 0]),
                          1000.0 + 10 * np.arange(8) + 3.0)
    assert sorted(kept.arrivals[kept.model_ids == 3]) == [1071.0, 1079.0, 1085.0]
    assert np.all(np.diff(kept.arrivals) >= 0) and kept.model_names == w.model_names
    assert set(kept.arrivals) <= set(w.arrivals)           # original arrival times


def _trace_case(policy: str = "mp-search", search: str = "fast",
                interval: float = 6000.0) -> Case:
    wl = TraceWorkload(source="maf2-standin", rate_scale=1, cv_scale=1,
                       test_window=("0.0.0", "0.13.20"), interval_seconds=interval)
    return Case("goodput_vs_num_devices", "S1", 2, 4, policy, 5, wl, search=search)


def test_only_fast_trace_search_policies_train_on_less():
    short = _replay(start=0.0)                                 # windows of 6000 s
    w = Workload(short.arrivals * 600, short.model_ids, short.slos, short.model_names)
    assert FAST_SEARCH_POLICIES == ("mp-search", "mp-search-sep")
    fast = _trace_case()
    assert uses_fast_search(fast) and len(fast_training_workload(fast, w)) < len(w)
    for case in (_trace_case(search="exact"), _trace_case("sr-greedy"),
                 _trace_case("sr-replace-600"), _trace_case("mp-greedy-2"),
                 _trace_case(interval=60),                     # MAF1-like short windows
                 _case(search="fast")):                        # synthetic
        assert not uses_fast_search(case)
        assert fast_training_workload(case, w) is w


class _Recording:
    """A policy stand-in that records its training workload and places every model once."""

    seen: list = []

    def __init__(self, name):
        self.name = name

    def place(self, model_datas, cluster_env, train_workload=None, train_seed=0):
        from alpa_serve.placement import ModelPlacement
        from alpa_serve.profiling import ParallelConfig

        _Recording.seen.append((self.name, train_workload))
        return ModelPlacement((ParallelConfig(1, 1, 1),) * 2,
                              (tuple(range(0, 4, 2)), tuple(range(1, 4, 2))))


def test_fast_case_trains_on_the_reduced_day_and_is_evaluated_on_all_of_it(db, monkeypatch):
    rng = np.random.default_rng(0)
    arrivals = np.sort(rng.uniform(0, 48000, 1600))           # 8 windows of 6000 s
    test = Workload(arrivals, rng.integers(0, 4, 1600), np.zeros(1600),
                    [f"m{i}" for i in range(4)])
    inputs = CaseInputs(test, test, 0, (0.01,) * 4, (1.0,) * 4)
    monkeypatch.setattr(placement_pkg, "get_policy", lambda name, **kw: _Recording(name))
    _Recording.seen = []
    exact = simulate_prepared(_trace_case(search="exact"), db, inputs)
    fast = simulate_prepared(_trace_case(), db, inputs)
    sr = simulate_prepared(_trace_case("sr-greedy"), db, inputs)
    (_, train_exact), (_, train_fast), (_, train_sr) = _Recording.seen
    assert len(train_exact) == len(train_sr) == 1600
    offsets = train_fast.arrivals - 6000 * np.floor(train_fast.arrivals / 6000)
    assert np.all((offsets >= 2812.5) & (offsets < 3187.5))   # the middle 1/16 of each window
    assert 0 < len(train_fast) < 1600 / 8
    # the test workload is never reduced; the same placement gives the same statistics
    assert exact.workload.equals(fast.workload) and len(fast.workload) == 1600
    assert exact.stats.goodput == fast.stats.goodput == sr.stats.goodput
    # a reduced training workload has its own sub-problem key (DESIGN 6, subproblems.py)
    assert workload_digest(train_fast) != workload_digest(train_exact)


# ---------------------------------------------------------------------------
# Rows, files, refusals
# ---------------------------------------------------------------------------

def test_fast_rows_carry_the_column_and_never_join_exact_files(tmp_path, db):
    entries = _small_entries()
    summary = run_entries(_fast(entries), _opts(tmp_path), db=db)
    assert summary.ok and summary.ran == len(entries)
    rows = read_rows(tmp_path / "a.tsv") + read_rows(tmp_path / "b.tsv")
    assert {r["search"] for r in rows} == {"fast"}
    assert read_rows(tmp_path / "a.tsv")[0].keys() == set(COLUMNS)
    # synthetic cases: identical to exact apart from the label and the id
    exact_out = tmp_path / "exact"
    run_entries(entries, _opts(exact_out), db=db)
    strip = ("search", "case_id", "solver_seconds")
    assert sorted(tuple(v for k, v in r.items() if k not in strip) for r in rows) == sorted(
        tuple(v for k, v in r.items() if k not in strip)
        for r in read_rows(exact_out / "a.tsv") + read_rows(exact_out / "b.tsv"))
    # an exact run into the fast folder, and a fast run into the exact one, are refused
    for out, run in ((tmp_path, entries), (exact_out, _fast(entries))):
        before = {p.name: p.read_bytes() for p in out.glob("*.tsv")}
        with pytest.raises(RunnerError, match="fast and exact rows are never mixed in one file; "
                                              "use another --out folder, or --force"):
            run_entries(run, _opts(out), db=db)
        assert {p.name: p.read_bytes() for p in out.glob("*.tsv")} == before
    # --force starts afresh and keeps the old file
    assert run_entries(entries, _opts(tmp_path, force=True), db=db).ok
    assert {r["search"] for r in read_rows(tmp_path / "a.tsv")} == {"exact"}
    assert {r["search"] for r in read_rows(tmp_path / "a.tsv.bak")} == {"fast"}


def _previous_version_file(path: Path, case: Case) -> None:
    row = _row(case)
    path.write_text("\t".join(PREVIOUS_COLUMNS) + "\n"
                    + "\t".join(str(row[c]) for c in PREVIOUS_COLUMNS) + "\n")


def test_previous_version_file_is_refused_then_moved_by_force(tmp_path, db, caplog):
    entries = _small_entries()
    old = tmp_path / "a.tsv"
    _previous_version_file(old, entries[0].case)
    content = old.read_bytes()
    with pytest.raises(PreviousVersionError):
        inspect_result_file(old)
    with pytest.raises(RunnerError, match=r"a\.tsv: a result file of the previous version .*"
                                          r"rerun with --force .*a\.tsv\.bak"):
        run_entries(entries, _opts(tmp_path), db=db)
    assert old.read_bytes() == content and not (tmp_path / "b.tsv").exists()
    # the command line: one line, exit status 2
    (tmp_path / "o").mkdir()
    _previous_version_file(tmp_path / "o" / "large_model_exp.tsv", entries[0].case)
    caplog.clear()
    assert cli_main(["fig12", "--quick", "--serial", "--no-progress",
                     "--out", str(tmp_path / "o")]) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "previous version" in errors[0] and "--force" in errors[0]
    # --force keeps it as a backup and runs
    assert run_entries(entries, _opts(tmp_path, force=True), db=db).ok
    assert (tmp_path / "a.tsv.bak").read_bytes() == content


def test_cli_flag_and_gen_data_script(tmp_path):
    with pytest.raises(SystemExit) as exc:
        cli_main(["fig12", "--out", str(tmp_path), "--search", "quick"])
    assert exc.value.code == 2
    # the wrapper passes --search through: a fast run into a folder of exact rows is refused
    out = tmp_path / "out"
    case = build_suite("fig11", SuiteOptions(only_files=("S1_maf1.tsv",)))[0].case
    append_row(out / "S1_maf1.tsv", _row(case))
    script = REPO / "osdi23_artifact" / "gen_data_sec6_2_e2e.sh"
    res = subprocess.run(["bash", str(script), "--search", "fast", "--serial", "--out", str(out)],
                         capture_output=True, text=True)
    assert res.returncode == 2, res.stderr
    assert "fast and exact rows are never mixed" in res.stderr
    usage = script.read_text()
    assert "--search fast" in usage
    for name in ("gen_data_sec6_3_large.sh", "gen_data_sec6_4_robust.sh", "gen_data_sec6_5_ab.sh"):
        assert "--search fast" in (REPO / "osdi23_artifact" / name).read_text()


def test_precomputed_rows_are_exact_and_never_seed_fast_cases(tmp_path):
    rows = read_rows(PRECOMPUTED / "sec6_2_data" / "S3_maf2.tsv", columns=COLUMNS)
    assert rows and {r["search"] for r in rows} == {"exact"}
    assert json.loads((PRECOMPUTED / "manifest.json").read_text())["search"] == "exact"
    from alpa_serve.experiments.case_runner import default_database, profile_fingerprint

    dbase = default_database()
    for search, copied in (("fast", 0), ("exact", len(rows))):
        entries = build_suite("fig11", SuiteOptions(only_files=("S3_maf2.tsv",),
                                                    traces="standin", search=search))
        out = tmp_path / search
        out.mkdir()
        profiles = {e.case.case_id: profile_fingerprint(e.case, dbase) for e in entries}
        assert seed_rows(entries, out, PRECOMPUTED / "sec6_2_data", profiles) == copied


def test_collect_refuses_fast_rows(tmp_path, monkeypatch, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("collect", PRECOMPUTED / "collect.py")
    collect = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(collect)
    shipped, manifest = tmp_path / "S3_maf2.tsv", tmp_path / "manifest.json"
    shutil.copy(PRECOMPUTED / "sec6_2_data" / "S3_maf2.tsv", shipped)
    shutil.copy(PRECOMPUTED / "manifest.json", manifest)
    monkeypatch.setattr(collect, "SHIPPED", shipped)
    monkeypatch.setattr(collect, "MANIFEST", manifest)
    before = shipped.read_bytes(), manifest.read_bytes()
    case = collect.grid()[0].replace(search="fast")
    fast = tmp_path / "fast.tsv"
    append_row(fast, dict(_row(case), profile="x"))
    assert collect.main([str(fast)]) == 2
    assert "only rows of the exact search ship" in capsys.readouterr().err
    old = tmp_path / "old.tsv"
    _previous_version_file(old, case.replace(search="exact"))
    assert collect.main([str(old)]) == 2
    assert "missing column(s) search" in capsys.readouterr().err
    assert (shipped.read_bytes(), manifest.read_bytes()) == before


# ---------------------------------------------------------------------------
# Figures and the comparison report
# ---------------------------------------------------------------------------

def _fig12_folder(root: Path, search: str | None) -> Path:
    rows = synthetic_rows(LARGE_SWEEPS, LARGE_POLICIES, "synthetic")
    columns = [c for c in COLUMNS if c != "search"] if search is None else list(COLUMNS)
    for r in rows:
        r["search"] = search or ""
        for c in columns:
            r.setdefault(c, "")
    path = root / "sec6_3_data" / "large_model_exp.tsv"
    write_tsv(path, [{c: r[c] for c in columns} for r in rows], columns)
    return path.parent


@pytest.mark.parametrize("search", ["fast", "exact", None], ids=["fast", "exact", "no-column"])
def test_figures_from_fast_rows_carry_the_note(tmp_path, search):
    fig = build_figures("sec6_3", _fig12_folder(tmp_path, search))["large_model_exp"]
    notes = [t for t in _texts(fig) if t.get_gid() == FAST_GID]
    titles = [ax.get_title() for ax in fig.axes]
    if search == "fast":
        assert [t.get_text() for t in notes] == [FAST_NOTE]
        assert "middle 1/16 of every MAF2 replay window" in FAST_NOTE
        assert "whole day" in FAST_NOTE
        assert all(t.endswith(FAST_MARK) for t in titles)
    else:
        assert not notes and not any(FAST_MARK in t for t in titles)
    assert not [t for t in _texts(fig) if t.get_gid() == STANDIN_GID]


def test_mixed_file_plots_the_exact_rows(tmp_path, caplog):
    folder = _fig12_folder(tmp_path, "exact")
    path = folder / "large_model_exp.tsv"
    lines = path.read_text().splitlines()
    col = lines[0].split("\t").index("search")
    extra = lines[1].split("\t")
    extra[col] = "fast"
    extra[lines[0].split("\t").index("goodput")] = "0.0"
    path.write_text("\n".join(lines + ["\t".join(extra)]) + "\n")
    fig = build_figures("sec6_3", folder)["large_model_exp"]
    assert "plotting only the exact rows" in caplog.text
    assert not [t for t in _texts(fig) if t.get_gid() == FAST_GID]


def test_compare_report_says_ours_are_fast(tmp_path):
    from test_compare import make_folders

    from alpa_serve.compare.__main__ import main as compare_main

    ours, orig = make_folders(tmp_path)
    path = ours / "sec6_2_data" / "S1_maf1.tsv"
    rows = synthetic_rows(E2E_SWEEPS, E2E_POLICIES, "maf1-standin", seed=1)
    for r in rows:
        r["search"] = "fast"
    write_tsv(path, rows, list(COLUMNS))
    assert compare_main([str(ours), str(orig), "--out", str(tmp_path / "cmp")]) == 0
    report = (tmp_path / "cmp" / "report.md").read_text()
    assert "Fig. 11: ours come from the opt-in fast search" in report
    assert "Fig. 14: ours come from the opt-in fast search" not in report
    (tmp_path / "cmp").rename(tmp_path / "cmp-fast")
    ours2, orig2 = make_folders(tmp_path / "plain")
    assert compare_main([str(ours2), str(orig2), "--out", str(tmp_path / "cmp")]) == 0
    assert "fast search" not in (tmp_path / "cmp" / "report.md").read_text()

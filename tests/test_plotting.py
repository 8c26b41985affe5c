"""Tests of the shared figure code and the four reviewer plot scripts (synthetic TSVs)."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from alpa_serve.plotting import (
    STANDIN_GID,
    MissingDataError,
    TsvFormatError,
    build_figures,
    direction_for,
    point_99,
    policy_style,
    read_results,
    write_figures,
)
from alpa_serve.plotting.figures import FIG11_PANELS
from alpa_serve.plotting.markers import marker_is_certain
from alpa_serve.plotting.panels import NO_DATA_GID
from alpa_serve.results import COLUMNS as RESULT_COLUMNS

REPO = Path(__file__).resolve().parent.parent
ARTIFACT = REPO / "osdi23_artifact"

COLUMNS = list(RESULT_COLUMNS)

# Sweeps of each figure: exp_name -> (x column, grid, whether larger x is easier).
E2E_SWEEPS = {
    "goodput_vs_num_devices": ("num_devices", [8, 16, 24, 32, 40, 48], True),
    "goodput_vs_rate_scale": ("rate_scale", [5e-4, 1e-3, 2e-3, 4e-3, 6e-3, 8e-3], False),
    "goodput_vs_cv_scale": ("cv_scale", [1, 2, 3, 4, 6, 8], False),
    "goodput_vs_slo": ("slo_scale", [0.75, 1, 2, 3, 5, 7.5, 10], True),
}
LARGE_SWEEPS = {
    "goodput_vs_rate": ("total_rate", [0.5, 2, 4, 6, 8], False),
    "goodput_vs_cv": ("cv", [1, 2, 3, 4], False),
    "goodput_vs_slo": ("slo_scale", [0.5, 1, 2, 4, 6, 8], True),
}
AB_SWEEPS = {
    "goodput_vs_rate": ("total_rate", [8, 16, 24, 32, 64, 96, 128], False),
    "goodput_vs_cv": ("cv", [0.5, 1, 1.5, 2, 3, 4, 5, 6, 7], False),
}
E2E_POLICIES = {"mp-search": 1.0, "sr-replace-60": 0.8, "sr-greedy": 0.6}
LARGE_POLICIES = {"mp-search": 1.0, "mp-equal-16-1": 0.85, "mp-equal-8-2": 0.75,
                  "mp-equal-4-4": 0.65, "mp-equal-2-8": 0.55}
AB_POLICIES = {"mp-search-sep": 1.0, "mp-greedy-4": 0.8, "mp-round-robin": 0.6}


def synthetic_rows(sweeps, policies, workload, seed=0):
    """Plausible rows: each policy's goodput rises (or falls) smoothly along the sweep, better
    policies (larger strength) higher, so the markers land at different x."""
    rng = np.random.default_rng(seed)
    rows = []
    for exp_name, (xcol, grid, easier_up) in sweeps.items():
        for policy, strength in policies.items():
            for i, x in enumerate(grid):
                t = i / (len(grid) - 1)
                ease = t if easier_up else 1 - t
                g = min(1.0, 0.35 + 0.7 * strength * (0.4 + 0.6 * ease) + rng.normal(0, 0.005))
                row = {c: "" for c in COLUMNS}
                row["search"] = "exact"
                row.update(exp_name=exp_name, workload=workload, model_set="S1",
                           num_devices=16, num_models=48, mem_budget=13 * 2**30,
                           total_rate=8, rate_scale=2e-3, cv=4, cv_scale=4, slo_scale=5,
                           duration=3600, policy=policy, goodput=f"{max(0.0, g):.4f}",
                           latency_mean=0.3, latency_p99=1.2, num_requests=1000,
                           solver_seconds=0.5, profile="abc123", case_id=f"{exp_name}-{policy}-{i}",
                           placement=json.dumps({"type": "ModelPlacement",
                                                 "group_configs": [[1, 1, 2]],
                                                 "group_models": [[0, 1]]}))
                row[xcol] = x
                rows.append(row)
    return rows


def write_tsv(path: Path, rows, columns=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, columns or COLUMNS, delimiter="\t", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def write_synthetic(root: Path, section: str, standin: bool = False, skip=()) -> Path:
    """Write a synthetic data folder for ``section`` under ``root``; return the folder."""
    if section == "sec6_2":
        d = root / "sec6_2_data"
        for i, (name, _) in enumerate(FIG11_PANELS):
            stem = name.removesuffix(".tsv")
            if stem in skip:
                continue
            trace = stem.split("_")[1]
            wl = trace + ("-standin" if standin else "")
            write_tsv(d / name, synthetic_rows(E2E_SWEEPS, E2E_POLICIES, wl, seed=i))
    elif section == "sec6_3":
        d = root / "sec6_3_data"
        write_tsv(d / "large_model_exp.tsv", synthetic_rows(LARGE_SWEEPS, LARGE_POLICIES,
                                                            "synthetic"))
    elif section == "sec6_4":
        d = root / "sec6_4_data"
        pols = {"mp-search": 1.0, "sr-replace-120": 0.8, "sr-greedy": 0.6}
        for k in range(3):
            write_tsv(d / f"pair{k}.tsv", synthetic_rows(
                E2E_SWEEPS, pols, "maf1-standin" if standin else "maf1", seed=10 + k))
    elif section == "sec6_5":
        d = root / "sec6_5_data"
        write_tsv(d / "ablation.tsv", synthetic_rows(AB_SWEEPS, AB_POLICIES, "synthetic"))
    else:
        raise ValueError(section)
    return d


SCRIPTS = {
    "sec6_2": ("plot_sec6_2_e2e.py", ["goodput_vs_num_devices", "goodput_vs_rate_scale",
                                      "goodput_vs_cv_scale", "goodput_vs_slo_scale"]),
    "sec6_3": ("plot_sec6_3_large.py", ["large_model_exp"]),
    "sec6_4": ("plot_sec6_4_robust.py", ["robustness"]),
    "sec6_5": ("plot_sec6_5_ab.py", ["ablation"]),
}
GEN = {"sec6_2": "gen_data_sec6_2_e2e.sh", "sec6_3": "gen_data_sec6_3_large.sh",
       "sec6_4": "gen_data_sec6_4_robust.sh", "sec6_5": "gen_data_sec6_5_ab.sh"}


def _texts(fig):
    from matplotlib.text import Text
    return [t for t in fig.findobj(Text) if t.get_text()]


# ---------------------------------------------------------------- 99% markers

def test_marker_min_direction_smallest_x_reaching_99():
    xs = [8, 16, 24, 32, 40]
    ys = [0.5, 0.95, 0.99, 1.0, 0.995]
    assert point_99(xs, ys, "min") == 24


def test_marker_max_direction_largest_x_still_reaching_99():
    xs = [1, 2, 3, 4, 6, 8]
    ys = [1.0, 0.999, 0.992, 0.97, 0.9, 0.7]
    assert point_99(xs, ys, "max") == 3


def test_marker_never_reached_gives_none():
    assert point_99([1, 2, 3], [0.5, 0.98, 0.989], "min") is None
    assert point_99([1, 2, 3], [0.5, 0.98, 0.989], "max") is None
    assert point_99([], [], "max") is None


def test_marker_unsorted_input_nan_and_exact_threshold():
    # Points in file order need not be sorted by x; 0.99 computed in floating point counts.
    xs = [4, 1, 3, 2]
    ys = [0.5, 1.0, float("nan"), 99 / 100]
    assert point_99(xs, ys, "max") == 2
    assert point_99(xs, ys, "min") == 1


def test_marker_direction_per_sweep():
    assert direction_for("num_devices") == "min"
    assert direction_for("slo_scale") == "min"
    for x in ("rate_scale", "cv_scale", "total_rate", "cv"):
        assert direction_for(x) == "max"
    with pytest.raises(ValueError):
        direction_for("duration")
    with pytest.raises(ValueError):
        point_99([1], [1.0], "up")


def test_marker_lines_drawn_at_99_points(tmp_path):
    d = tmp_path / "sec6_5_data"
    rows = synthetic_rows({"goodput_vs_rate": ("total_rate", [8, 16, 32, 64], False)},
                          {"mp-search-sep": 1.0, "mp-round-robin": 0.6}, "synthetic")
    for r in rows:  # exact goodputs: search-sep >= 0.99 up to 32, round robin never
        r["goodput"] = {("mp-search-sep", 8): 1.0, ("mp-search-sep", 16): 0.995,
                        ("mp-search-sep", 32): 0.99, ("mp-search-sep", 64): 0.9}.get(
                            (r["policy"], r["total_rate"]), 0.5)
    write_tsv(d / "ablation.tsv", rows)
    fig = build_figures("sec6_5", d)["ablation"]
    ax = fig.axes[0]
    lines = {ln.get_gid(): ln for ln in ax.get_lines() if str(ln.get_gid()).startswith("p99-")}
    assert set(lines) == {"p99-mp-search-sep"}
    assert lines["p99-mp-search-sep"].get_xdata()[0] == 32
    assert lines["p99-mp-search-sep"].get_linestyle() == ":"


# ---------------------------------------------------------------- labels

@pytest.mark.parametrize("policy,figure,label", [
    ("sr-greedy", "e2e", "SR"),
    ("sr-replace-60", "e2e", "Clockwork++"),
    ("sr-replace-21600", "e2e", "Clockwork++"),
    ("sr-replace-120", "robust", "Clockwork++"),
    ("mp-search", "e2e", "Beta"),
    ("mp-search-sep", "e2e", "Beta"),
    ("mp-search", "large", "Beta"),
    ("mp-equal-16-1", "large", "Pipeline (16x1)"),
    ("mp-equal-8-2", "large", "Pipeline (8x2)"),
    ("mp-equal-4-4", "large", "Pipeline (4x4)"),
    ("mp-equal-2-8", "large", "Pipeline (2x8)"),
    ("mp-round-robin", "ablation", "Round robin"),
    ("mp-greedy-4", "ablation", "Greedy placement"),
    ("mp-search-sep", "ablation", "Greedy placement + group partitioning"),
])
def test_policy_labels(policy, figure, label):
    assert policy_style(policy, figure).label == label


def test_policy_styles_distinct_within_each_figure():
    for figure, pols in (("e2e", E2E_POLICIES), ("large", LARGE_POLICIES),
                         ("ablation", AB_POLICIES)):
        styles = [policy_style(p, figure) for p in pols]
        assert len({s.color for s in styles}) == len(styles)
        assert len({s.label for s in styles}) == len(styles)
    assert policy_style("mp-search", "e2e").order == 0  # Beta first in the legend


def test_unknown_policy_falls_back_to_its_name():
    assert policy_style("my-new-policy", "e2e").label == "my-new-policy"
    with pytest.raises(ValueError):
        policy_style("sr-greedy", "fig99")


# ---------------------------------------------------------------- TSV reading

def test_read_results_converts_numbers_and_keeps_line_numbers(tmp_path):
    p = tmp_path / "a.tsv"
    write_tsv(p, synthetic_rows(AB_SWEEPS, AB_POLICIES, "synthetic"))
    df = read_results(p)
    assert df["goodput"].dtype == float and df["total_rate"].dtype == float
    assert df["_line"].iloc[0] == 2
    assert json.loads(df["placement"].iloc[0])["type"] == "ModelPlacement"


def test_read_results_truncated_row_names_file_and_line(tmp_path):
    p = tmp_path / "S1_maf1.tsv"
    write_tsv(p, synthetic_rows(E2E_SWEEPS, E2E_POLICIES, "maf1")[:3])
    with open(p, "a") as f:
        f.write("goodput_vs_slo\tmaf1\tS1\t16\n")  # a row cut short by a crash
    with pytest.raises(TsvFormatError,
                       match=rf"S1_maf1\.tsv:5: unreadable row: expected {len(COLUMNS)}"):
        read_results(p)


def test_read_results_bad_number_names_file_line_and_column(tmp_path):
    p = tmp_path / "x.tsv"
    rows = synthetic_rows(AB_SWEEPS, AB_POLICIES, "synthetic")[:4]
    rows[2]["goodput"] = "n/a"
    write_tsv(p, rows)
    with pytest.raises(TsvFormatError, match=r"x\.tsv:4: column goodput holds 'n/a'"):
        read_results(p)


def test_read_results_rejects_percent_goodput_and_missing_columns(tmp_path):
    p = tmp_path / "x.tsv"
    rows = synthetic_rows(AB_SWEEPS, AB_POLICIES, "synthetic")[:2]
    rows[1]["goodput"] = 99.5
    write_tsv(p, rows)
    with pytest.raises(TsvFormatError, match=r"x\.tsv:3: goodput 99.5 is outside"):
        read_results(p)
    p.write_text("exp_name\tpolicy\ngoodput_vs_rate\tsr-greedy\n")
    with pytest.raises(TsvFormatError, match="missing column.*workload"):
        read_results(p)
    p.write_text("")
    with pytest.raises(TsvFormatError, match="empty file"):
        read_results(p)
    p.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(TsvFormatError, match="not a UTF-8"):
        read_results(p)


def test_bad_row_reported_by_script(tmp_path):
    d = write_synthetic(tmp_path, "sec6_3")
    with open(d / "large_model_exp.tsv", "a") as f:
        f.write("goodput_vs_rate\tsynthetic\n")
    r = _run_script("sec6_3", ["--data-dir", str(d), "--out-dir", str(tmp_path / "o")])
    assert r.returncode == 1
    assert "large_model_exp.tsv:" in r.stderr and "Traceback" not in r.stderr


def test_missing_x_value_names_line(tmp_path):
    d = tmp_path / "sec6_5_data"
    rows = synthetic_rows(AB_SWEEPS, AB_POLICIES, "synthetic")
    rows[5]["total_rate"] = ""
    write_tsv(d / "ablation.tsv", rows)
    with pytest.raises(TsvFormatError, match=r"ablation\.tsv:7: goodput_vs_rate row has no value"):
        build_figures("sec6_5", d)


# ---------------------------------------------------------------- scripts

def _run_script(section, args, cwd=None):
    script, _ = SCRIPTS[section]
    return subprocess.run([sys.executable, str(ARTIFACT / script), *args], cwd=cwd or REPO,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("section", sorted(SCRIPTS))
def test_script_writes_pdf_and_png(tmp_path, section):
    d = write_synthetic(tmp_path / "data", section)
    out = tmp_path / "figs"
    # Started from an unrelated working directory: the script must not depend on it.
    r = _run_script(section, ["--pdf", "--png", "--data-dir", str(d), "--out-dir", str(out)],
                    cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    # The script draws exactly the figures the library builds from the same data (whose content
    # the tests above check): byte-identical files.
    expected = {p.name: p.read_bytes()
                for p in write_figures(section, d, tmp_path / "ref", formats=("pdf", "png"))}
    for stem in SCRIPTS[section][1]:
        for ext in ("pdf", "png"):
            p = out / f"{stem}.{ext}"
            assert p.read_bytes() == expected[p.name], p
            assert str(p) in r.stdout
    assert {p.name for p in out.iterdir()} == {
        f"{s}.{e}" for s in SCRIPTS[section][1] for e in ("pdf", "png")}


def test_default_format_is_pdf_and_pdf_is_reproducible(tmp_path):
    d = write_synthetic(tmp_path, "sec6_5")
    a = write_figures("sec6_5", d, tmp_path / "a")
    b = write_figures("sec6_5", d, tmp_path / "b")
    assert [p.name for p in a] == ["ablation.pdf"]
    assert a[0].read_bytes() == b[0].read_bytes()


@pytest.mark.parametrize("section", sorted(SCRIPTS))
def test_missing_data_dir_names_gen_script(tmp_path, section):
    r = _run_script(section, ["--pdf", "--data-dir", str(tmp_path / "nowhere"),
                              "--out-dir", str(tmp_path / "o")])
    assert r.returncode == 1
    assert GEN[section] in r.stderr
    assert "Traceback" not in r.stderr
    for other in set(GEN.values()) - {GEN[section]}:
        assert other not in r.stderr
    assert not (tmp_path / "o").exists()


def test_empty_data_dir_and_missing_file_name_gen_script(tmp_path):
    (tmp_path / "sec6_4_data").mkdir()
    with pytest.raises(MissingDataError, match="gen_data_sec6_4_robust.sh"):
        build_figures("sec6_4", tmp_path / "sec6_4_data")
    d = tmp_path / "sec6_3_data"
    write_tsv(d / "other.tsv", [])
    with pytest.raises(MissingDataError, match=r"large_model_exp\.tsv.*gen_data_sec6_3_large"):
        build_figures("sec6_3", d)


def test_default_paths_are_beside_the_script(tmp_path):
    # No --data-dir: the default is sec6_X_data beside the script, whatever the working directory.
    # A copy of the script in an empty folder has no data beside it (the checkout may have some).
    script = tmp_path / "artifact" / SCRIPTS["sec6_5"][0]
    script.parent.mkdir()
    shutil.copy(ARTIFACT / SCRIPTS["sec6_5"][0], script)
    r = subprocess.run([sys.executable, str(script), "--pdf"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1
    assert str(script.parent / "sec6_5_data") in r.stderr


def test_missing_fig11_panel_is_drawn_as_no_data(tmp_path):
    d = write_synthetic(tmp_path, "sec6_2", skip=("S3_maf1", "S3_maf2"))
    figs = build_figures("sec6_2", d)
    assert set(figs) == {"goodput_vs_num_devices", "goodput_vs_rate_scale",
                         "goodput_vs_cv_scale", "goodput_vs_slo_scale"}
    fig = figs["goodput_vs_num_devices"]
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == [t for _, t in FIG11_PANELS]
    no_data = [i for i, ax in enumerate(axes)
               if any(t.get_gid() == NO_DATA_GID for t in ax.texts)]
    assert no_data == [2, 5]
    assert len(axes[0].get_lines()) >= 3
    assert axes[0].get_ylabel() == "SLO attainment (%)"
    # The legend names the three methods, Beta first.
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels[:3] == ["Beta", "Clockwork++", "SR"]


def test_standin_note_present_only_with_standin(tmp_path):
    real = write_synthetic(tmp_path / "real", "sec6_2")
    fig = build_figures("sec6_2", real)["goodput_vs_rate_scale"]
    assert not [t for t in _texts(fig) if t.get_gid() == STANDIN_GID]
    sub = write_synthetic(tmp_path / "sub", "sec6_2", standin=True)
    fig = build_figures("sec6_2", sub)["goodput_vs_rate_scale"]
    notes = [t for t in _texts(fig) if t.get_gid() == STANDIN_GID]
    assert len(notes) == 1 and "stand-in" in notes[0].get_text()
    assert all(ax.get_title().endswith("*") for ax in fig.axes)
    fig13 = build_figures("sec6_4", write_synthetic(tmp_path / "r", "sec6_4", standin=True))
    assert [t for t in _texts(fig13["robustness"]) if t.get_gid() == STANDIN_GID]


def test_real_rows_preferred_over_standin_rows(tmp_path):
    d = tmp_path / "sec6_5_data"
    rows = synthetic_rows(AB_SWEEPS, AB_POLICIES, "synthetic-standin")
    rows += synthetic_rows(AB_SWEEPS, AB_POLICIES, "synthetic", seed=3)
    write_tsv(d / "ablation.tsv", rows)
    fig = build_figures("sec6_5", d)["ablation"]
    assert not [t for t in _texts(fig) if t.get_gid() == STANDIN_GID]
    # One point per (policy, x): the stand-in rows were dropped, not averaged in.
    curve = [ln for ln in fig.axes[0].get_lines() if ln.get_label() == "Round robin"][0]
    assert len(curve.get_xdata()) == len(AB_SWEEPS["goodput_vs_rate"][1])


def test_fig13_averages_over_pairs(tmp_path):
    d = tmp_path / "sec6_4_data"
    base = synthetic_rows({"goodput_vs_num_devices": ("num_devices", [8, 16], True)},
                          {"sr-greedy": 0.5}, "maf1")
    for k, g in enumerate((0.2, 0.4, 0.9)):
        rows = [dict(r, goodput=g) for r in base]
        write_tsv(d / f"pair{k}.tsv", rows)
    fig = build_figures("sec6_4", d)["robustness"]
    ax = fig.axes[0]
    (line,) = [ln for ln in ax.get_lines() if ln.get_label() == "SR"]
    assert np.allclose(line.get_ydata(), 50.0)
    assert "3 pairs" in ax.get_title()
    assert any(t.get_gid() == NO_DATA_GID for t in fig.axes[1].texts)


def test_fig12_and_fig14_panels(tmp_path):
    fig = build_figures("sec6_3", write_synthetic(tmp_path, "sec6_3"))["large_model_exp"]
    assert [ax.get_xlabel() for ax in fig.axes] == ["Rate (r/s)", "CV", "SLO scale"]
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["Beta", "Pipeline (16x1)", "Pipeline (8x2)", "Pipeline (4x4)",
                      "Pipeline (2x8)", "99% attainment point"]
    fig = build_figures("sec6_5", write_synthetic(tmp_path, "sec6_5"))["ablation"]
    assert [ax.get_xlabel() for ax in fig.axes] == ["Rate (r/s)", "CV"]
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels[:3] == ["Greedy placement + group partitioning", "Greedy placement",
                          "Round robin"]


def test_nan_values_accepted_and_nan_goodput_rows_skipped(tmp_path):
    p = tmp_path / "ablation.tsv"
    rows = synthetic_rows(AB_SWEEPS, AB_POLICIES, "synthetic")[:4]
    rows[0]["latency_mean"] = "nan"
    rows[1]["goodput"] = "nan"
    rows[3]["goodput"] = 1.5
    write_tsv(p, rows)
    # The out-of-range goodput is still reported at its own line after the nan row is dropped.
    with pytest.raises(TsvFormatError, match=r"ablation\.tsv:5: goodput 1.5"):
        read_results(p)
    rows[3]["goodput"] = 0.5
    write_tsv(p, rows)
    df = read_results(p)
    assert len(df) == 3 and list(df["_line"]) == [2, 4, 5]


def test_header_only_file_gives_no_data_panels(tmp_path):
    d = tmp_path / "sec6_5_data"
    write_tsv(d / "ablation.tsv", [])
    fig = build_figures("sec6_5", d)["ablation"]
    assert all(any(t.get_gid() == NO_DATA_GID for t in ax.texts) for ax in fig.axes)


def test_reads_what_the_experiment_runner_writes(tmp_path):
    """Format contract with alpa_serve.experiments.tsv (unquoted JSON, repr floats)."""
    from alpa_serve.experiments import tsv as exp_tsv

    d = tmp_path / "sec6_5_data"
    for row in synthetic_rows(AB_SWEEPS, AB_POLICIES, "synthetic"):
        full = {c: row.get(c, "") for c in exp_tsv.COLUMNS}
        full["goodput"] = float(row["goodput"])
        exp_tsv.append_row(d / "ablation.tsv", full)
    df = read_results(d / "ablation.tsv")
    assert len(df) == sum(len(g) for _, g, _ in AB_SWEEPS.values()) * len(AB_POLICIES)
    assert json.loads(df["placement"].iloc[0])["type"] == "ModelPlacement"
    assert build_figures("sec6_5", d)["ablation"].axes[0].get_lines()


def test_plotting_imports_no_experiment_machinery():
    # The plotting package reads the result format from alpa_serve.results (standard library
    # only): importing it must not pull in the runner, the policies, the simulator or Ray.
    code = ("import sys, alpa_serve.plotting; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'ray' or "
            "m.startswith(('alpa_serve.experiments', 'alpa_serve.placement', "
            "'alpa_serve.simulator', 'numba'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------- partly computed sweeps

def test_marker_certainty_needs_the_neighbouring_grid_point():
    grid = [16, 24, 32, 40, 48]
    # "min": 48 reaches 99%; 40 was not run for this method, so 40 might too.
    assert not marker_is_certain(48, grid, [16, 24, 48], "min")
    assert marker_is_certain(48, grid, [16, 40, 48], "min")
    assert marker_is_certain(16, grid, [16, 48], "min")  # nothing below the grid's start
    # "max": 8 still reaches 99%; 16 was not run, so it might too.
    assert not marker_is_certain(8, [1, 4, 8, 16, 32], [1, 4, 8], "max")
    assert marker_is_certain(8, [1, 4, 8, 16, 32], [1, 4, 8, 16], "max")


def test_gap_in_a_sweep_breaks_the_line_and_drops_an_uncertain_marker(tmp_path):
    """A policy missing a grid point that another policy has is drawn with a gap there (no
    interpolated segment) and gets no 99% marker that the missing point could move."""
    d = tmp_path / "sec6_5_data"
    rows = synthetic_rows({"goodput_vs_rate": ("total_rate", [8, 16, 32, 64], False)},
                          {"mp-search-sep": 1.0, "mp-round-robin": 0.6}, "synthetic")
    # search-sep ran at 8 and 64 only (>= 0.99 at 8: 16 might be too); round robin everywhere.
    rows = [r for r in rows if r["policy"] != "mp-search-sep" or r["total_rate"] in (8, 64)]
    for r in rows:
        r["goodput"] = 1.0 if (r["policy"], r["total_rate"]) == ("mp-search-sep", 8) else 0.5
    write_tsv(d / "ablation.tsv", rows)
    ax = build_figures("sec6_5", d)["ablation"].axes[0]
    lines = {ln.get_gid(): ln for ln in ax.get_lines() if ln.get_gid()}
    sep = lines["curve-mp-search-sep"]
    assert list(sep.get_xdata()) == [8, 16, 32, 64]
    y = np.asarray(sep.get_ydata(), dtype=float)
    assert y[0] == 100 and np.isnan(y[1]) and np.isnan(y[2]) and y[3] == 50
    assert not np.isnan(np.asarray(lines["curve-mp-round-robin"].get_ydata(), float)).any()
    assert "p99-mp-search-sep" not in lines

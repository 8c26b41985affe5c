"""The side-by-side comparison with the original artifact's results (DESIGN 7.7): the plot
scripts' --compare and ``python -m alpa_serve.compare``."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
from original_fixtures import MAF1_KWARGS, equal_row, general_row, write_lines
from test_plotting import (
    AB_POLICIES,
    AB_SWEEPS,
    ARTIFACT,
    E2E_POLICIES,
    E2E_SWEEPS,
    synthetic_rows,
    write_tsv,
)

from alpa_serve.compare import collect, ordering_rows, policy_rows
from alpa_serve.compare.__main__ import main as compare_main
from alpa_serve.compare.claims import ClaimCheck, claims, verdict
from alpa_serve.plotting import build_figures, policy_style
from alpa_serve.plotting.panels import ORIGINAL_GID, ORIGINAL_LABEL

REPO = Path(__file__).resolve().parent.parent
PAIRS = (("5.8.0-5.9.0", "5.1.0-5.2.0"), ("11.9.0-11.10.0", "0.12.0-0.13.0"))


def _kwargs(row: dict) -> dict:
    return dict(MAF1_KWARGS, rate_scale=float(row["rate_scale"]),
                cv_scale=float(row["cv_scale"]))


def _original_line(row: dict, goodput: float, layout: str, policy: str, windows=None) -> str:
    """The original row of the same case as our ``row`` (a dict of our columns)."""
    if layout == "general":
        return general_row(row["exp_name"], int(float(row["num_devices"])), policy, goodput,
                           {"cv": float(row["cv"])}, float(row["slo_scale"]), 60,
                           float(row["total_rate"]), "power_law", "gamma", 200)
    return equal_row(row["exp_name"], int(float(row["num_devices"])), policy, goodput,
                     _kwargs(row), float(row["slo_scale"]),
                     windows=windows or (None,) * 4)


def make_folders(root: Path, standin: bool = True):
    """Our folder (Fig. 11 S1@MAF1, Fig. 13 two pairs, Fig. 14) and an original one made of
    the same cases with known differences:

    * S1@MAF1: every original goodput 0.02 lower, Clockwork++ as sr-replace-30;
    * Fig. 14: at rate 8 the original ranks Round robin above Greedy placement + group
      partitioning (so the ordering and the claim fail there in the original only);
    * Fig. 13: identical, one original pair per file.
    """
    ours, orig = root / "ours", root / "orig"
    wl = "maf1-standin" if standin else "maf1"
    rows = synthetic_rows(E2E_SWEEPS, E2E_POLICIES, wl, seed=1)
    write_tsv(ours / "sec6_2_data" / "S1_maf1.tsv", rows)
    write_lines(orig / "sec6_2_data" / "azure_v1_1dot3b.tsv", [
        _original_line(r, max(0.0, float(r["goodput"]) - 0.02), "equal",
                       r["policy"].replace("sr-replace-60", "sr-replace-30")) for r in rows])
    ab = synthetic_rows(AB_SWEEPS, AB_POLICIES, "synthetic", seed=2)
    write_tsv(ours / "sec6_5_data" / "ablation.tsv", ab)
    lines = []
    for r in ab:
        g = float(r["goodput"])
        if r["exp_name"] == "goodput_vs_rate" and float(r["total_rate"]) == 8:
            g = {"mp-round-robin": 0.99, "mp-search-sep": 0.5}.get(r["policy"], g)
        lines.append(_original_line(r, g, "general", r["policy"]))
    write_lines(orig / "sec6_5_data" / "ablation.tsv", lines)
    pols = {"mp-search": 1.0, "sr-replace-120": 0.8, "sr-greedy": 0.6}
    for k, (train, test) in enumerate(PAIRS):
        pair = synthetic_rows(E2E_SWEEPS, pols, wl, seed=10 + k)
        for r in pair:
            r["train_window"] = test if r["policy"].startswith("sr-replace") else train
            r["test_window"] = test
        write_tsv(ours / "sec6_4_data" / f"robust_pair{k + 1}.tsv", pair)
        write_lines(orig / "sec6_4_data" / f"robustness_exp.train-{train}_test-{test}.tsv", [
            _original_line(r, float(r["goodput"]), "equal", r["policy"],
                           tuple(r["train_window"].split("-")) + tuple(test.split("-")))
            for r in pair])
    return ours, orig


def test_plot_draws_original_points_beside_ours(tmp_path):
    ours, orig = make_folders(tmp_path)
    figs = build_figures("sec6_2", ours / "sec6_2_data", compare_dir=orig)
    fig = figs["goodput_vs_num_devices"]
    ax = fig.axes[0]  # S1@MAF1
    lines = {ln.get_gid(): ln for ln in ax.get_lines() if ln.get_gid()}
    for policy in E2E_POLICIES:
        orig_policy = policy.replace("sr-replace-60", "sr-replace-30")
        mine, theirs = lines[f"curve-{policy}"], lines[f"{ORIGINAL_GID}{orig_policy}"]
        assert theirs.get_color() == mine.get_color() == policy_style(policy).color
        assert theirs.get_linestyle() == "--" and theirs.get_markerfacecolor() == "none"
        assert list(theirs.get_ydata()) == pytest.approx(
            [y - 2 for y in mine.get_ydata()], abs=0.051)
    # panels without an original file carry no original curve
    assert not [ln for ln in fig.axes[1].get_lines()
                if (ln.get_gid() or "").startswith(ORIGINAL_GID)]
    legend_texts = [t.get_text() for leg in fig.legends for t in leg.get_texts()]
    assert ORIGINAL_LABEL in legend_texts and legend_texts.count("Clockwork++") == 1
    # Fig. 13: the mean over the original pair files; Fig. 14 as well
    fig13 = build_figures("sec6_4", ours / "sec6_4_data", compare_dir=orig)["robustness"]
    assert any((ln.get_gid() or "").startswith(ORIGINAL_GID) for ln in fig13.axes[0].get_lines())
    fig14 = build_figures("sec6_5", ours / "sec6_5_data", compare_dir=orig / "sec6_5_data")
    assert f"{ORIGINAL_GID}mp-round-robin" in {ln.get_gid() for ln in
                                               fig14["ablation"].axes[0].get_lines()}
    # without --compare nothing changes
    plain = build_figures("sec6_2", ours / "sec6_2_data")["goodput_vs_num_devices"]
    assert ORIGINAL_LABEL not in [t.get_text() for leg in plain.legends for t in leg.get_texts()]


def test_plot_script_compare_errors_are_one_line(tmp_path, capsys):
    from alpa_serve.plotting.cli import main as plot_main

    ours, orig = make_folders(tmp_path)
    bad = orig / "sec6_5_data" / "ablation.tsv"
    bad.write_text(bad.read_text().splitlines()[0][:-40] + "\n")
    script = str(ARTIFACT / "plot_sec6_5_ab.py")
    argv = ["--data-dir", str(ours / "sec6_5_data"), "--out-dir", str(tmp_path / "f")]
    assert plot_main("sec6_5", script, argv + ["--compare", str(orig)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {bad}:1: ") and err.count("\n") == 1
    assert plot_main("sec6_5", script, argv + ["--compare", str(tmp_path / "no")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert plot_main("sec6_5", script, argv + ["--compare", str(orig / "sec6_2_data")]) == 1
    assert "no result file of the original artifact's Fig. 14" in capsys.readouterr().err
    assert not (tmp_path / "f").exists()


def test_comparison_metrics_ordering_and_claims(tmp_path):
    ours, orig = make_folders(tmp_path)
    comp = collect(ours, orig)
    rows = policy_rows(comp)
    s1 = [r for r in rows if r.figure == "fig11" and r.panel == "S1@MAF1"]
    assert len(s1) == len(E2E_SWEEPS) * len(E2E_POLICIES)
    for r in s1:
        assert r.shared_points == r.ours_points == r.original_points > 0
        assert r.mean_diff == pytest.approx(0.02, abs=0.0006)  # goodput rounded to 3 digits
        assert r.mae == pytest.approx(0.02, abs=0.0006) and r.max_abs <= 0.0206
        assert r.ours_workload == "maf1-standin" and r.original_workload == "maf1"
    clock = next(r for r in s1 if r.label == "Clockwork++")
    assert (clock.policy, clock.original_policy) == ("sr-replace-60", "sr-replace-30")
    # Fig. 14, rate 8: the original's order conflicts with ours
    order = {(r.figure, r.sweep, r.x): r for r in ordering_rows(comp)}
    bad = order[("fig14", "goodput_vs_rate", 8.0)]
    assert not bad.agree and "Round robin" in bad.conflicts
    assert order[("fig14", "goodput_vs_rate", 16.0)].agree
    assert all(r.agree for r in order.values() if r.figure in ("fig11", "fig13"))
    # Fig. 13: per pair and the mean, pairs matched by test window
    panels = {r.panel for r in rows if r.figure == "fig13"}
    assert panels == {"test 5.1.0-5.2.0", "test 0.12.0-0.13.0", "mean over pairs"}
    assert all(r.shared_points and r.mae < 0.0006 for r in rows if r.figure == "fig13")


def test_claim_checks_and_verdicts():
    fig14 = next(c for c in claims() if c.figure == "fig14")
    ok, bad = ClaimCheck(), ClaimCheck()
    pts = {"Greedy placement + group partitioning": {1.0: 0.9, 2.0: 0.8},
           "Greedy placement": {1.0: 0.9, 2.0: 0.7}, "Round robin": {1.0: 0.5, 2.0: 0.6}}
    ok.add("p", "s", fig14, pts, 0.005)
    pts["Round robin"][2.0] = 0.75
    bad.add("p", "s", fig14, pts, 0.005)
    assert (ok.held, ok.checked, bad.held, bad.checked) == (2, 2, 1, 2)
    assert bad.failures == [("p", "s", 2.0, "Greedy placement", "Round robin", 0.7, 0.75)]
    assert verdict(ok, ok).startswith("reproduced")
    assert verdict(bad, ok).startswith("NOT reproduced")
    assert verdict(ok, bad).startswith("holds at every x of ours")
    assert verdict(ClaimCheck(), ok).startswith("not comparable")
    fig11 = next(c for c in claims() if c.figure == "fig11")
    assert fig11.pairs({"Beta", "SR", "Clockwork++"}) == [("Beta", "Clockwork++"),
                                                          ("Beta", "SR")]


def test_compare_cli_writes_the_report(tmp_path, capsys):
    ours, orig = make_folders(tmp_path)
    snapshot = {p: p.read_bytes() for p in orig.rglob("*") if p.is_file()}
    out = tmp_path / "cmp"
    assert compare_main([str(ours), str(orig), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "fig14: each added technique helps" in printed and "holds at every x of ours" in printed
    assert "fig11: Beta at or above every baseline" in printed and "reproduced" in printed
    with open(out / "comparison.tsv", newline="") as f:
        table = list(csv.DictReader(f, delimiter="\t"))
    assert {"figure", "panel", "sweep", "policy", "shared_points", "mae",
            "max_abs"} <= set(table[0])
    assert {r["figure"] for r in table} == {"fig11", "fig13", "fig14"} | (
        {"fig12"} & {r["figure"] for r in table})
    report = (out / "report.md").read_text()
    assert "ours were made from stand-in traces" in report
    assert "| Fig. 14 | each added technique helps" in report
    assert "Round robin vs" in report or "vs Round robin" in report
    assert (out / "ordering.tsv").is_file()
    # the original folder is untouched, and the report may not be written into it
    assert {p: p.read_bytes() for p in orig.rglob("*") if p.is_file()} == snapshot
    assert compare_main([str(ours), str(orig), "--out", str(orig / "cmp")]) == 2
    # real-trace rows of ours: no stand-in warning
    ours2, orig2 = make_folders(tmp_path / "real", standin=False)
    assert compare_main([str(ours2 / "sec6_2_data"), str(orig2), "--out",
                         str(tmp_path / "cmp2")]) == 0  # a data folder: its figure only
    report2 = (tmp_path / "cmp2" / "report.md").read_text()
    assert "stand-in" not in report2 and "Fig. 11" in report2 and "Fig. 14" not in report2


def test_compare_cli_bad_original_file_is_one_line(tmp_path, capsys):
    ours, orig = make_folders(tmp_path)
    bad = orig / "sec6_2_data" / "azure_v1_1dot3b.tsv"
    lines = bad.read_text().splitlines()
    lines[3] = lines[3].replace("ModelPlacement(", "ModelPlacement(((")
    bad.write_text("\n".join(lines) + "\n")
    assert compare_main([str(ours), str(orig), "--out", str(tmp_path / "cmp")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {bad}:4: placement does not parse") and err.count("\n") == 1


def test_compare_profile_check(tmp_path, capsys):
    ours, orig = make_folders(tmp_path)
    from alpa_serve.profiling import ProfilingDatabase

    db = ProfilingDatabase.default()
    path = ours / "sec6_2_data" / "S1_maf1.tsv"
    text = path.read_text().replace("abc123", db.fingerprint(["bert-1.3b"]))
    path.write_text(text)
    assert compare_main([str(ours), str(orig), "--out", str(tmp_path / "c"), "--figures",
                         "fig11", "--profile", str(ProfilingDatabase.default_path())]) == 0
    report = (tmp_path / "c" / "report.md").read_text()
    assert "Profile check" in report and "all of them" in report


def test_compare_module_runs_as_a_program(tmp_path):
    ours, orig = make_folders(tmp_path)
    res = subprocess.run([sys.executable, "-m", "alpa_serve.compare", str(ours), str(orig),
                          "--out", str(tmp_path / "c"), "--figures", "fig14"],
                         capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "c" / "report.md").is_file()

"""Reading the original artifact's result files and mapping them onto our figures
(alpa_serve/original_results.py, DESIGN 7.7)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from original_fixtures import (
    MAF1_KWARGS,
    MP_PLACEMENT,
    equal_row,
    general_row,
    pc,
    write_lines,
)

from alpa_serve.original_results import (
    ORIGINAL_FIG11_FILES,
    OriginalResultError,
    classify_file,
    parse_placement,
    read_original_results,
    read_original_rows,
)

WINDOWS = ("5.8.0", "5.9.0", "5.1.0", "5.2.0")


def test_placement_reprs_parse_without_evaluation():
    p = parse_placement(f"ModelPlacement(group_configs=({pc(1)}, {pc(4, op=2)}), "
                        "group_models=((0,), (1, 16)))")
    assert p == {"type": "ModelPlacement", "group_configs": [[1, 1, 1], [1, 2, 4]],
                 "group_models": [[0], [1, 16]]}
    assert parse_placement(MP_PLACEMENT)["group_configs"] == [[1, 4, 1], [1, 1, 8]]
    assert parse_placement("ModelPlacement((ParallelConfig(1, 1, 2),), ((0, 1),))") == {
        "type": "ModelPlacement", "group_configs": [[1, 1, 2]], "group_models": [[0, 1]]}
    assert parse_placement("ModelPlacementWithReplacement(num_segments=60)") == {
        "type": "ModelPlacementWithReplacement", "num_segments": 60}
    full = parse_placement("ModelPlacementWithReplacement(start_times=[0.0, 60.5], "
                           f"placements=[ModelPlacement(group_configs=[{pc(1)}], "
                           "group_models=[[0]])] * 1)".replace(" * 1", ""))
    assert full["start_times"] == [0.0, 60.5] and full["num_segments"] == 1


@pytest.mark.parametrize("text", [
    "__import__('os').system('touch pwned')",
    "ModelPlacement(group_configs=(os.getcwd(),), group_models=())",
    "ModelPlacement(group_configs=(ParallelConfig(dp=1, op=1, pp=1),), group_models=((0,),)"
    ").__class__",
    "(lambda: 1)()",
    "ModelPlacement(group_configs=(ParallelConfig(dp=1, op=1, pp=1),), group_models=((0,),),"
    " evil=1)",
    "ModelPlacement(group_configs=(ParallelConfig(dp=0, op=1, pp=1),), group_models=((0,),))",
    "ModelPlacement(group_configs=(ParallelConfig(dp=1, op=1, pp=1),), group_models=())",
    "ModelPlacement(group_configs=(ParallelConfig(dp=1, op=1, pp=1),",
    "[" * 200000,
])
def test_bad_placements_are_refused(text, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError):
        parse_placement(text)
    assert not (tmp_path / "pwned").exists()


def test_both_layouts_read_with_skipped_blank_and_comment_lines(tmp_path):
    g = write_lines(tmp_path / "g.tsv", [
        "# a comment", general_row("goodput_vs_rate", 32, "mp-greedy-4", 0.9512, {"cv": 4},
                                   total_rate=16, rate_distribution="power_law",
                                   arrival_process="gamma", duration=200, num_models=60),
        "", general_row("goodput_vs_num_devices", 40, "sr-greedy", 0.8, MAF1_KWARGS)])
    e = write_lines(tmp_path / "e.tsv", [equal_row("goodput_vs_slo", 16, "mp-search", 0.97,
                                                   MAF1_KWARGS, 2.5, windows=WINDOWS)])
    r1, r2 = read_original_rows(g)
    assert (r1.layout, r1.line, r1.total_rate, r1.rate_distribution, r1.mem_budget) == (
        "general", 2, 16.0, "power_law", 13 * 2 ** 30)
    assert r1.arrival_process_kwargs == {"cv": 4} and r1.value("cv") == 4.0
    assert r1.goodput == 0.951 and r1.mode == "simulate" and r1.workload == "gamma"
    assert r2.line == 4 and r2.rate_distribution is None and r2.value("rate_scale") == 0.002
    (r3,) = read_original_rows(e)
    assert r3.layout == "equal" and r3.model_type == "bert-1.3b"
    assert r3.train_window == ("5.8.0", "5.9.0") and r3.test_window == ("5.1.0", "5.2.0")
    assert r3.workload == "maf1" and r3.value("slo_scale") == 2.5


GOOD = equal_row("goodput_vs_slo", 16, "mp-search", 0.97, MAF1_KWARGS)


@pytest.mark.parametrize("content, needle", [
    (b"\x00\x01binary\xff", r"x\.tsv: binary content"),
    (b"\xff\xfe tab\tseparated\n", r"x\.tsv: not a UTF-8 text file"),
    ((GOOD + "\n" + GOOD[:-30] + "\n").encode(), r"x\.tsv:2: 1[0-9] tab-separated fields"),
    ((GOOD + "\n" + GOOD.replace("ModelPlacement(", "ModelPlacement((") + "\n").encode(),
     r"x\.tsv:2: placement does not parse"),
    (GOOD.replace("{'rate_scale'", "dict(rate_scale=1, x={'rate_scale'").encode(),
     r"x\.tsv:1: arrival_process_kwargs .* is not a Python dict literal"),
    (GOOD.replace("\t0.97\t", "\t97.0\t").encode(), r"x\.tsv:1: goodput 97.0 is outside"),
    (("exp_name\tworkload\tmodel_set\n" + GOOD).encode(), r"x\.tsv:1: a header line"),
    ((GOOD + "\n" + general_row("goodput_vs_slo", 16, "sr-greedy", 0.5, MAF1_KWARGS)).encode(),
     r"x\.tsv:2: a general-model row in a file of equal-model rows"),
    (GOOD.replace("\t16\t", "\tsixteen\t", 1).encode(), r"x\.tsv:1: num_devices 'sixteen'"),
])
def test_bad_files_give_one_line_errors_naming_file_and_line(tmp_path, content, needle):
    path = tmp_path / "x.tsv"
    path.write_bytes(content)
    with pytest.raises(OriginalResultError, match=needle) as err:
        read_original_rows(path)
    assert "\n" not in str(err.value)
    assert path.read_bytes() == content


def _fig11_folder(root):
    d = root / "sec6_2_data"
    write_lines(d / "azure_v1_1dot3b.tsv", [
        equal_row("goodput_vs_num_devices", 8, "sr-greedy", 0.61, MAF1_KWARGS),
        equal_row("goodput_vs_num_devices", 8, "sr-greedy", 0.62, MAF1_KWARGS),  # repeated
        equal_row("goodput_vs_num_devices", 8, "sr-replace-30", 0.7, MAF1_KWARGS),
        equal_row("goodput_vs_rate_scale", 16, "mp-search", 0.9,
                  dict(MAF1_KWARGS, rate_scale=0.008)),
        equal_row("goodput_vs_cv_scale", 16, "mp-search", 0.8, dict(MAF1_KWARGS, cv_scale=6)),
        equal_row("goodput_vs_num_models", 16, "mp-search", 0.8, MAF1_KWARGS),
    ])
    write_lines(d / "azure_v2_mixed.tsv", [
        general_row("goodput_vs_slo", 48, "mp-search-sep", 0.95, MAF1_KWARGS, 2,
                    arrival_process="azure_v2"),
        general_row("goodput_vs_slo", 48, "mp-search", 0.93, MAF1_KWARGS, 2,
                    arrival_process="azure_v2"),
        general_row("goodput_vs_slo", 48, "sr-greedy", 0.93, MAF1_KWARGS, 3,
                    arrival_process="azure_v1"),
    ])
    write_lines(d / "notes.tsv", ["x\ty"])
    return d


def test_fig11_rows_map_onto_our_panels_and_sweeps(tmp_path):
    d = _fig11_folder(tmp_path)
    before = {p: p.read_bytes() for p in d.iterdir()}
    res = read_original_results(tmp_path)
    assert set(ORIGINAL_FIG11_FILES["azure_v1_1dot3b.tsv"]) == {"S1_maf1.tsv", "maf1"}
    s1 = res.select("fig11", "S1_maf1.tsv")
    assert [(p.exp_name, p.x_column, p.x, p.policy, p.goodput) for p in s1] == [
        ("goodput_vs_num_devices", "num_devices", 8.0, "sr-greedy", 0.62),  # last row wins
        ("goodput_vs_num_devices", "num_devices", 8.0, "sr-replace-30", 0.7),
        ("goodput_vs_rate_scale", "rate_scale", 0.008, "mp-search", 0.9),
        ("goodput_vs_cv_scale", "cv_scale", 6.0, "mp-search", 0.8)]
    assert res.duplicates == 1
    s3 = res.select("fig11", "S3_maf2.tsv")
    assert [(p.policy, p.x) for p in s3] == [("mp-search-sep", 2.0)]
    reasons = sorted(str(u) for u in res.unmapped)
    assert len(reasons) == 4  # nothing dropped silently
    assert any("azure_v1_1dot3b.tsv:6: experiment 'goodput_vs_num_models'" in r for r in reasons)
    assert any("azure_v2_mixed.tsv:2: mp-search where the file also has mp-search-sep" in r
               for r in reasons)
    assert any("azure_v2_mixed.tsv:3: arrival process 'azure_v1'" in r for r in reasons)
    assert any(r.endswith("not a result file of the original artifact's figures (names: "
                          + ", ".join(sorted(ORIGINAL_FIG11_FILES))
                          + ", large_model_exp.tsv, ablation.tsv, sec6_4_data/*.tsv)")
               and "notes.tsv" in r for r in reasons)
    assert {p: p.read_bytes() for p in d.iterdir()} == before
    # the data folder itself and a single file read the same
    assert len(read_original_results(d).points) == len(res.points)
    assert len(read_original_results(d / "azure_v1_1dot3b.tsv").points) == 4


def test_fig12_to_14_files_and_fig13_windows(tmp_path):
    write_lines(tmp_path / "sec6_3_data" / "large_model_exp.tsv", [
        equal_row("goodput_vs_cv", 64, "mp-equal-16-1", 0.7, {"cv": 3}, 2, "bert-103.5b", 4, 8,
                  "power_law", "gamma", 1200)])
    write_lines(tmp_path / "sec6_5_data" / "ablation.tsv", [
        general_row("goodput_vs_rate", 32, "mp-round-robin", 0.6, {"cv": 4}, 5, 60, 24,
                    "power_law", "gamma", 200)])
    for k, (test, end) in enumerate((("5.1.0", "5.2.0"), ("0.12.0", "0.13.0"))):
        write_lines(tmp_path / "sec6_4_data" / f"robustness_exp.pair{k}.tsv", [
            equal_row("goodput_vs_num_devices", 8, "mp-search", 0.9 + k / 100, MAF1_KWARGS,
                      windows=("5.8.0", "5.9.0", test, end)),
            equal_row("goodput_vs_num_devices", 8, "sr-replace-120", 0.8, MAF1_KWARGS,
                      windows=(test, end, test, end)),
            equal_row("goodput_vs_num_devices", 16, "sr-greedy", 0.7, MAF1_KWARGS)])
    res = read_original_results(tmp_path)
    (large,) = res.select("fig12")
    assert (large.file, large.x_column, large.x, large.row.model_type) == (
        "large_model_exp.tsv", "cv", 3.0, "bert-103.5b")
    (ab,) = res.select("fig14")
    assert (ab.x_column, ab.x, ab.row.num_models) == ("total_rate", 24.0, 60)
    assert sorted({p.window for p in res.select("fig13")}) == ["0.12.0-0.13.0", "5.1.0-5.2.0"]
    assert len(res.select("fig13", window="5.1.0-5.2.0")) == 2
    assert sum("without a test window" in u.reason for u in res.unmapped) == 2
    assert classify_file("robustness_exp.x.tsv") == ("fig13", "robustness_exp.x.tsv")
    assert classify_file("ablation.tsv", "fig11") is None
    # only the figures asked for are read
    assert {p.figure for p in read_original_results(tmp_path, ("fig12",)).points} == {"fig12"}


def test_original_results_module_is_ground_floor():
    code = ("import sys, alpa_serve.original_results; "
            "print(sorted(m for m in sys.modules if m.startswith(('alpa_serve.', 'pandas', "
            "'matplotlib', 'ray', 'numba')) and m not in ('alpa_serve.results', "
            "'alpa_serve.sweeps', 'alpa_serve.original_results')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"

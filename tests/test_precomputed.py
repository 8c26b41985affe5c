"""The shipped precomputed S3@MAF2 Beta rows (osdi23_artifact/precomputed/) are current.

gen_data_sec6_2_e2e.sh copies them into its results instead of computing those cases (hours on
2 cores), so they must be what this code computes: every row is a case of the current grid with
the current profile and MAF2 stand-in, and replaying its placement on the case's test workload
gives the row's numbers exactly (only the search itself is not rerun). The file may hold no row
(after a stand-in or profile change, until the cases are recomputed): the manifest must then
list every case as missing, and collect.py must drop rows of another stand-in.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import alpa_serve.placement as placement_pkg
from alpa_serve.experiments.case_runner import (
    default_database,
    prepare_inputs,
    profile_fingerprint,
    run_prepared,
)
from alpa_serve.experiments.suite_runner import seed_rows, simulation_key
from alpa_serve.experiments.suites import SuiteEntry
from alpa_serve.experiments.tsv import COLUMNS, TIMING_COLUMNS, format_value, read_rows
from alpa_serve.placement import ModelPlacement
from alpa_serve.workload.standin import DEFAULT_PARAMS

ROOT = Path(__file__).resolve().parents[1]
PRECOMPUTED = ROOT / "osdi23_artifact" / "precomputed"


def _collect_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("collect", PRECOMPUTED / "collect.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def shipped():
    rows = read_rows(PRECOMPUTED / "sec6_2_data" / "S3_maf2.tsv", columns=COLUMNS)
    cases = {c.case_id: c for c in _collect_module().grid()}
    return rows, cases


def test_manifest_matches_current_inputs(shipped):
    rows, cases = shipped
    manifest = json.loads((PRECOMPUTED / "manifest.json").read_text())
    db = default_database()
    assert manifest["profiles"] == {t: db.get(t).fingerprint()
                                    for t in sorted(set(next(iter(cases.values())).model_types))}
    assert manifest["maf2_standin_digest"] == DEFAULT_PARAMS.digest("maf2")
    assert manifest["cases_shipped"] == len(rows)
    assert manifest["cases_in_grid"] == len(cases)
    shipped_ids = {r["case_id"] for r in rows}
    # The README points reviewers to this list for what a default run still computes.
    assert manifest["missing"] == [c.describe() for c in cases.values()
                                   if c.case_id not in shipped_ids]


def test_rows_are_cases_of_the_current_grid(shipped):
    rows, cases = shipped
    ids = [r["case_id"] for r in rows]
    assert len(ids) == len(set(ids))
    db = default_database()
    for r in rows:
        case = cases.get(r["case_id"])
        assert case is not None, f"shipped row {r['case_id']} is no case of the current grid"
        assert r["profile"] == profile_fingerprint(case, db)
        for key, value in case.to_row_fields().items():
            assert r[key] == format_value(value), (r["case_id"], key)


class _Fixed:
    """A policy stand-in that returns a given placement (verified like a real policy's)."""

    def __init__(self, placement: ModelPlacement):
        self.placement = placement

    def place(self, model_datas, cluster_env, train_workload=None, train_seed=0):
        self.placement.verify(model_datas, cluster_env.mem_budget)
        return self.placement


@pytest.mark.slow
def test_rows_replay_exactly(shipped, monkeypatch):
    """Re-simulating each shipped placement reproduces goodput, latencies and request count.

    Generates the MAF2 stand-in on first use (about 1-2 minutes, cached afterwards)."""
    rows, cases = shipped
    db = default_database()
    seen: set[str] = set()
    for r in rows:
        case = cases[r["case_id"]]
        if simulation_key(case) in seen:  # the fixed point appears once per sweep
            continue
        seen.add(simulation_key(case))
        placement = ModelPlacement.from_json(r["placement"])
        assert isinstance(placement, ModelPlacement)
        monkeypatch.setattr(placement_pkg, "get_policy",
                            lambda name, p=placement, **options: _Fixed(p))
        again = run_prepared(case, db, prepare_inputs(case))
        for key in COLUMNS:
            if key not in TIMING_COLUMNS:
                assert format_value(again[key]) == r[key], (case.describe(), key)


def test_collect_drops_rows_of_another_standin(tmp_path):
    """Case ids do not cover the stand-in's parameters: collect.py trusts shipped rows only
    when the manifest's MAF2 digest is the current one, and writes a header-only file when no
    row is left (which the runner's seeding reads as nothing to copy)."""
    collect = _collect_module()
    manifest = tmp_path / "manifest.json"
    assert not collect.shipped_rows_current(manifest, DEFAULT_PARAMS.digest("maf2"))
    manifest.write_text(json.dumps({"maf2_standin_digest": "0123456789"}))
    assert not collect.shipped_rows_current(manifest, DEFAULT_PARAMS.digest("maf2"))
    manifest.write_text(json.dumps({"maf2_standin_digest": DEFAULT_PARAMS.digest("maf2")}))
    assert collect.shipped_rows_current(manifest, DEFAULT_PARAMS.digest("maf2"))
    shipped = tmp_path / "seed" / "S3_maf2.tsv"
    shipped.parent.mkdir()
    collect.write_rows(shipped, [])
    assert read_rows(shipped, columns=COLUMNS) == []
    out = tmp_path / "out"
    out.mkdir()
    grid = collect.grid()
    db = default_database()
    assert seed_rows([SuiteEntry("S3_maf2.tsv", c) for c in grid], out, shipped.parent,
                     {c.case_id: profile_fingerprint(c, db) for c in grid}) == 0
    assert not (out / "S3_maf2.tsv").exists()

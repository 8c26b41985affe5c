"""Profiling database: schema, load/save, errors, committed file and its regeneration."""
from __future__ import annotations

import json
import math
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from alpa_serve.profiling import (
    ConfigNotProfiledError,
    ConfigProfile,
    DatabaseFormatError,
    ModelProfile,
    ParallelConfig,
    ProfilingDatabase,
    UnknownModelError,
    generate,
)
from alpa_serve.profiling.params import BATCH_SIZES

REPO = Path(__file__).resolve().parents[1]
MODELS = ["bert-1.3b", "bert-2.6b", "bert-6.7b", "bert-103.5b", "moe-1.3b", "moe-2.4b",
          "moe-5.3b"]


@pytest.fixture(scope="module")
def db() -> ProfilingDatabase:
    return ProfilingDatabase.default()


def tiny_db() -> ProfilingDatabase:
    single = ConfigProfile({1: (0.2,), 2: (0.39,)}, {1: (1e6,), 2: (2e6,)}, (5e9,))
    pipe = ConfigProfile({1: (0.11, 0.1), 2: (0.2, 0.21)}, {1: (1e6, 1e6), 2: (2e6, 2e6)},
                         (2.6e9, 2.5e9))
    return ProfilingDatabase(
        [ModelProfile("m", {(1, 1, 2): pipe, ParallelConfig(1, 1, 1): single})],
        {"description": "toy"})


def good_doc() -> dict:
    return tiny_db().to_dict()


# ---------------------------------------------------------------------------------------------
# round trips
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".pkl", ".json"])
def test_round_trip_tiny(tmp_path, suffix):
    original = tiny_db()
    path = tmp_path / f"db{suffix}"
    original.save(path)
    loaded = ProfilingDatabase.load(path)
    assert loaded == original
    assert loaded.fingerprint() == original.fingerprint()
    prof = loaded.get("m")
    assert prof.configs() == [ParallelConfig(1, 1, 1), ParallelConfig(1, 1, 2)]
    assert prof.latency((1, 1, 2), 2) == [0.2, 0.21]
    assert prof.act_mem(ParallelConfig(1, 1, 2)) == [1e6, 1e6]
    assert prof.weight_mem((1, 1, 2)) == [2.6e9, 2.5e9]
    assert prof.max_stage_weight((1, 1, 2)) == 2.6e9
    assert prof.single_latency == 0.2


@pytest.mark.parametrize("suffix", [".pkl", ".json"])
def test_round_trip_committed(db, tmp_path, suffix):
    path = tmp_path / f"db{suffix}"
    db.save(path)
    loaded = ProfilingDatabase.load(path)
    assert loaded == db
    assert loaded.fingerprint() == db.fingerprint()
    assert loaded.model_names() == MODELS


def test_json_matches_design_schema(db, tmp_path):
    path = tmp_path / "db.json"
    db.save(path)
    doc = json.loads(path.read_text())
    assert doc["format"] == "alpa_serve.profiling/v1"
    assert isinstance(doc["hardware"], dict)
    entry = doc["models"]["bert-1.3b"]["configs"][0]
    assert set(entry) == {"dp", "op", "pp", "latency", "act_mem", "weight_mem"}
    assert set(entry["latency"]) == {str(b) for b in BATCH_SIZES}


def _assert_plain(obj, where="doc"):
    if isinstance(obj, dict):
        for k, v in obj.items():
            assert type(k) is str, where
            _assert_plain(v, f"{where}[{k!r}]")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            _assert_plain(v, f"{where}[{i}]")
    else:
        assert type(obj) in (str, int, float), f"{where}: {type(obj).__name__}"


def test_committed_pickle_is_plain_types():
    path = REPO / "alpa_serve" / "data" / "profiling_result.pkl"
    with open(path, "rb") as f:
        _assert_plain(pickle.load(f))
    # ... and unpickles in a fresh interpreter that never imports alpa_serve.
    code = ("import pickle, sys; d = pickle.load(open(sys.argv[1], 'rb')); "
            "assert 'alpa_serve' not in sys.modules; print(d['format'], len(d['models']))")
    out = subprocess.run([sys.executable, "-I", "-c", code, str(path)], capture_output=True,
                         text=True, cwd=str(Path(path).anchor), check=True)
    assert out.stdout.split() == ["alpa_serve.profiling/v1", "7"]


def test_osdi23_artifact_symlink():
    link = REPO / "osdi23_artifact" / "profiling_result.pkl"
    assert link.is_symlink()
    assert os.readlink(link) == "../alpa_serve/data/profiling_result.pkl"
    assert ProfilingDatabase.load(link) == ProfilingDatabase.default()


def test_regeneration_is_byte_identical(tmp_path):
    out = tmp_path / "profiling_result.pkl"
    js = tmp_path / "profiling_result.json"
    assert generate.main(["--out", str(out), "--json", str(js)]) == 0
    committed = (REPO / "alpa_serve" / "data" / "profiling_result.pkl").read_bytes()
    assert out.read_bytes() == committed
    assert ProfilingDatabase.load(js) == ProfilingDatabase.load(out)


def test_fingerprint_is_short_and_content_sensitive(db):
    fp = db.fingerprint()
    assert len(fp) == 12 and all(c in "0123456789abcdef" for c in fp)
    other = tiny_db()
    assert other.fingerprint() != fp
    # The free-form hardware text does not change it; a number does.
    relabelled = ProfilingDatabase(list(other), {"description": "other text"})
    assert relabelled.fingerprint() == other.fingerprint()


# ---------------------------------------------------------------------------------------------
# content of the committed database
# ---------------------------------------------------------------------------------------------
def test_committed_coverage(db):
    assert db.model_names() == MODELS
    for name in MODELS:
        prof = db.get(name)
        cfgs = prof.configs()
        if name == "bert-103.5b":
            assert {c.op * c.pp for c in cfgs} == {16, 32, 64}
            assert {c.op for c in cfgs} == {1, 2, 4, 8}
        else:
            pps = [1, 2, 4, 8, 16] + ([32] if name in ("bert-2.6b", "bert-6.7b") else [])
            assert cfgs == sorted(ParallelConfig(1, op, pp) for op in (1, 2, 4, 8) for pp in pps)
        for cfg in cfgs:
            for b in BATCH_SIZES:
                assert len(prof.latency(cfg, b)) == cfg.pp
                assert len(prof.act_mem(cfg, b)) == cfg.pp
            assert len(prof.weight_mem(cfg)) == cfg.pp


def test_single_latency_of_large_model_uses_smallest_pipeline(db):
    prof = db.get("bert-103.5b")
    assert not prof.has_config((1, 1, 1))
    assert prof.single_latency == pytest.approx(sum(prof.latency((1, 1, 16))))
    assert prof.single_latency == pytest.approx(4.6, rel=0.02)


# ---------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------
def test_unknown_model_lists_names(db):
    with pytest.raises(UnknownModelError) as exc:
        db.get("gpt-3")
    msg = str(exc.value)
    assert "gpt-3" in msg
    for name in MODELS:
        assert name in msg
    assert isinstance(exc.value, KeyError)


def test_missing_config_names_model_config_and_choices(db):
    prof = db.get("bert-1.3b")
    with pytest.raises(ConfigNotProfiledError) as exc:
        prof.latency(ParallelConfig(1, 3, 1))
    msg = str(exc.value)
    assert "bert-1.3b" in msg and "op=3" in msg and "(dp=1, op=1, pp=1)" in msg
    with pytest.raises(ConfigNotProfiledError):
        prof.weight_mem((1, 16, 1))
    with pytest.raises(ConfigNotProfiledError) as exc:
        prof.latency((1, 1, 1), batch_size=3)
    assert "3" in str(exc.value)
    assert prof.max_stage_weight((1, 3, 1)) == math.inf
    assert not prof.has_config((1, 3, 1))
    assert prof.has_config((1, 4, 1))


def test_parallel_config_coerce_accepts_sequences_of_three_integers():
    cfg = ParallelConfig(1, 2, 4)
    assert ParallelConfig.coerce(cfg) is cfg
    assert ParallelConfig.coerce([1, 2, 4]) == cfg and ParallelConfig.coerce((1.0, 2, 4)) == cfg
    assert type(ParallelConfig.coerce([1, 2, 4])) is ParallelConfig
    with pytest.raises(ValueError, match="3 integers"):
        ParallelConfig.coerce([1, 2])
    with pytest.raises(ValueError):
        ParallelConfig.coerce(["1", "x", "2"])
    # A profile looks configurations up through it: a malformed one is simply not profiled.
    prof = ModelProfile("m", {(1, 1, 1): ConfigProfile(latency={1: (0.1,)}, act_mem={1: (0.0,)},
                                                       weight_mem=(1.0,))})
    assert prof.has_config([1, 1, 1]) and not prof.has_config((1, 1))


def _write(tmp_path, doc, suffix=".json"):
    path = tmp_path / f"bad{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(doc))
    else:
        path.write_bytes(pickle.dumps(doc, protocol=4))
    return path


def _mutate(fn):
    doc = good_doc()
    fn(doc)
    return doc


def _cfg(doc):
    return doc["models"]["m"]["configs"][1]  # the (1, 1, 2) entry


BAD_DOCS = {
    "format": _mutate(lambda d: d.__setitem__("format", "alpa_serve.profiling/v0")),
    "models": _mutate(lambda d: d.pop("models")),
    "missing key": _mutate(lambda d: _cfg(d).pop("weight_mem")),
    "must be a list": _mutate(lambda d: _cfg(d)["latency"].__setitem__("1", 0.2)),
    "stages, expected pp=2": _mutate(lambda d: _cfg(d)["latency"].__setitem__("1", [0.1])),
    "negative": _mutate(lambda d: _cfg(d).__setitem__("weight_mem", [-1.0, 2.0])),
    "positive int": _mutate(lambda d: _cfg(d).__setitem__("pp", 0)),
    "batch size": _mutate(lambda d: _cfg(d)["latency"].__setitem__("x", [0.1, 0.1])),
    "differ": _mutate(lambda d: _cfg(d)["act_mem"].pop("2")),
    "duplicate": _mutate(lambda d: d["models"]["m"]["configs"].append(_cfg(d))),
    "'models' is empty": _mutate(lambda d: d.__setitem__("models", {})),
    "has no configurations": _mutate(lambda d: d["models"]["m"].__setitem__("configs", [])),
    "zero stage latency": _mutate(lambda d: _cfg(d)["latency"].__setitem__("1", [0.0, 0.0])),
}


@pytest.mark.parametrize("suffix", [".json", ".pkl"])
@pytest.mark.parametrize("problem", sorted(BAD_DOCS))
def test_malformed_documents(tmp_path, suffix, problem):
    path = _write(tmp_path, BAD_DOCS[problem], suffix)
    with pytest.raises(DatabaseFormatError) as exc:
        ProfilingDatabase.load(path)
    assert str(path) in str(exc.value)
    assert problem in str(exc.value)


def test_unreadable_files(tmp_path):
    garbage = tmp_path / "garbage.pkl"
    garbage.write_bytes(b"not a pickle at all")
    with pytest.raises(DatabaseFormatError, match="cannot unpickle"):
        ProfilingDatabase.load(garbage)
    # A pickle referencing any class is refused (plain built-in types only).
    classy = tmp_path / "classy.pkl"
    classy.write_bytes(pickle.dumps({"format": ParallelConfig(1, 1, 1)}))
    with pytest.raises(DatabaseFormatError, match="plain built-in types"):
        ProfilingDatabase.load(classy)
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{not json")
    with pytest.raises(DatabaseFormatError, match="invalid JSON"):
        ProfilingDatabase.load(bad_json)
    with pytest.raises(DatabaseFormatError, match="suffix"):
        ProfilingDatabase.load(tmp_path / "db.txt")
    with pytest.raises(ValueError):
        tiny_db().save(tmp_path / "db.csv")

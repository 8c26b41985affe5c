"""The original artifact's profile formats (DESIGN 3.5): its class-based profiling_result.pkl
read without running it and written back, raw benchmark rows, the convert CLI and --profile."""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from original_fixtures import install_lookalikes, tiny_original_profile

from alpa_serve.profiling import (
    DatabaseFormatError,
    ParallelConfig,
    ProfilingDatabase,
    convert as convert_cli,
)
from alpa_serve.profiling.benchmark_rows import (
    ORIGINAL_COLUMNS,
    read_row_file,
    rows_to_database,
)
from alpa_serve.profiling.original_format import (
    CPU_SECONDS_KEY,
    OriginalParallelConfig,
    OriginalUnpickler,
    load_original,
    save_original,
    to_original_bytes,
)


def _dump(obj, protocol: int) -> bytes:
    return pickle.dumps(obj, protocol=protocol)


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
@pytest.mark.parametrize("variant", ["metadata-none", "metadata-set", "old-class"])
def test_original_pickle_loads_through_the_public_loader(tmp_path, monkeypatch, protocol,
                                                         variant):
    classes = install_lookalikes(monkeypatch, old_lmd=variant == "old-class")
    meta = {"submesh_shapes": [[1, 1]]} if variant == "metadata-set" else None
    path = tmp_path / "profiling_result.pkl"
    path.write_bytes(_dump(tiny_original_profile(classes, meta), protocol))
    before = path.read_bytes()
    monkeypatch.undo()  # the loader must not need the look-alikes (nor our classes)
    db = ProfilingDatabase.load(path)
    assert db.model_names() == ["bert-1.3b", "bert-2.6b"]
    prof = db.get("bert-2.6b")
    assert prof.latency(ParallelConfig(1, 1, 2), 1) == [0.238 / 2 + 0.001, 0.238 / 2]
    assert prof.latency((1, 1, 1), 2) == [2 * 0.238]
    assert prof.act_mem((1, 1, 2), 2) == [1e8, 1e8]
    assert prof.weight_mem((1, 1, 1)) == [2.6e9]
    assert prof.single_latency == 0.238
    assert db.hardware[CPU_SECONDS_KEY]["bert-1.3b"] == {"preprocess_cpu": 0.002,
                                                        "postprocess_cpu": 0.001}
    assert path.read_bytes() == before  # only read


def test_round_trip_our_database_through_the_original_layout(tmp_path):
    db = ProfilingDatabase.default()
    path = tmp_path / "orig.pkl"
    save_original(db, path)
    back = ProfilingDatabase.load(path)  # detected as the original layout by the same call
    assert back.fingerprint() == db.fingerprint()
    assert back.model_names() == db.model_names()
    assert to_original_bytes(back) == path.read_bytes()  # deterministic, CPU times kept


def test_written_pickle_loads_in_the_original_package(tmp_path):
    # A stand-in for the original package: its alpa_serve/profiling.py defines the classes
    # exactly as the format facts say; a plain pickle.load there must give its own objects.
    pkg = tmp_path / "fake" / "alpa_serve"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "profiling.py").write_text(textwrap.dedent("""
        import dataclasses
        from collections import namedtuple
        from typing import Any, Dict, List
        ParallelConfig = namedtuple("ParallelConfig", ("dp", "op", "pp"))
        @dataclasses.dataclass
        class LatencyMemData:
            latency: Dict
            act_mem: Dict
            weight_mem: List
            metadata: Any = None
        @dataclasses.dataclass
        class ProfilingResult:
            model_name: str
            para_dict: Dict
            preprocess_cpu: float
            postprocess_cpu: float
        """))
    db = ProfilingDatabase.default()
    out = tmp_path / "profiling_result.pkl"
    save_original(db, out)
    expected = db.get("bert-6.7b").latency((1, 2, 4), 8)
    code = textwrap.dedent(f"""
        import pickle
        import alpa_serve.profiling as p
        assert p.__file__.startswith({str(pkg)!r}), p.__file__
        d = pickle.load(open({str(out)!r}, "rb"))
        r = d["bert-6.7b"]
        assert isinstance(r, p.ProfilingResult) and r.model_name == "bert-6.7b"
        data = r.para_dict[p.ParallelConfig(1, 2, 4)]
        assert isinstance(data, p.LatencyMemData) and data.metadata is None
        print(repr(data.latency[8]), sorted(d) == {sorted(db.model_names())!r})
        """)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(pkg.parent)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == f"{expected!r} True"


def test_the_original_names_never_resolve_to_our_classes():
    u = OriginalUnpickler(io.BytesIO(b""))
    cls = u.find_class("alpa_serve.profiling", "ParallelConfig")
    assert cls is OriginalParallelConfig and cls is not ParallelConfig
    for module, name in [("alpa_serve.profiling.database", "ParallelConfig"),
                         ("alpa_serve.profiling", "ProfilingDatabase"), ("os", "system"),
                         ("builtins", "eval"), ("copyreg", "_reconstructor")]:
        with pytest.raises(pickle.UnpicklingError, match=f"{module}.{name}"):
            u.find_class(module, name)


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_a_pickle_that_would_run_code_is_refused_and_runs_nothing(tmp_path, monkeypatch):
    classes = install_lookalikes(monkeypatch)
    doc = tiny_original_profile(classes)
    doc["bert-1.3b"].para_dict["x"] = _Evil()
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(doc, protocol=4))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DatabaseFormatError, match=r"evil\.pkl: .*(posix|os|nt)\.system"):
        ProfilingDatabase.load(path)
    assert not (tmp_path / "pwned").exists()


def test_protocol_0_and_1_pickles_are_refused_with_a_clear_error(tmp_path, monkeypatch):
    classes = install_lookalikes(monkeypatch)
    path = tmp_path / "p0.pkl"
    path.write_bytes(pickle.dumps(tiny_original_profile(classes), protocol=1))
    with pytest.raises(DatabaseFormatError, match="protocol 0 or 1.*protocol 2 or later"):
        ProfilingDatabase.load(path)


@pytest.mark.parametrize("damage, needle", [
    (lambda d, c: d["bert-1.3b"].para_dict.__setitem__(c["ParallelConfig"](1, 1, 4),
                                                       d["bert-1.3b"].para_dict[
                                                           c["ParallelConfig"](1, 1, 2)]),
     "model 'bert-1.3b' config #.*latency\\[1\\] has 2 stages, expected pp=4"),
    (lambda d, c: setattr(d["bert-2.6b"], "para_dict", [1, 2]), "para_dict is a list"),
    (lambda d, c: d.__setitem__("bert-2.6b", {"x": 1}), "expected a ProfilingResult"),
    (lambda d, c: setattr(d["bert-2.6b"].para_dict[c["ParallelConfig"](1, 1, 1)], "latency",
                          {1: [0.0]}), "zero stage latency"),
])
def test_bad_original_content_names_file_and_place(tmp_path, monkeypatch, damage, needle):
    classes = install_lookalikes(monkeypatch)
    doc = tiny_original_profile(classes)
    damage(doc, classes)
    path = tmp_path / "bad.pkl"
    path.write_bytes(pickle.dumps(doc, protocol=4))
    with pytest.raises(DatabaseFormatError, match=needle) as err:
        load_original(path)
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)


# ------------------------------------------------------------------------ raw rows

def _raw(name, bs, pp, lat, weight=1.0e9, peak=1.2e9, sep=", "):
    """A row as the original benchmark wrote it: no header, Python list reprs."""
    lst = lambda v: "[" + sep.join(repr(float(x)) for x in v) + "]"  # noqa: E731
    return "\t".join([name, str(bs), "1", "1", "1", str(pp), str(pp), "0.100", "0.001", "1.00",
                      lst([weight] * pp), lst([peak] * pp), lst(lat)])


def test_headerless_original_rows_convert_with_the_original_duplicate_rule(tmp_path):
    path = tmp_path / "inference_prof_res.tsv"
    lines = [_raw("bert-1.3b", 1, 2, [0.08, 0.09]),
             _raw("bert-1.3b", 1, 2, [0.07, 0.095], weight=2e9, peak=2.1e9),  # slower max: kept?
             _raw("bert-1.3b", 1, 2, [0.07, 0.08], weight=1.5e9, peak=1.6e9),  # faster: replaces
             _raw("bert-1.3b", 2, 2, [0.15, 0.16], weight=9e9, peak=9.1e9)]  # new bs: weights kept
    path.write_text("\n".join(lines) + "\n")
    before = path.read_bytes()
    found = read_row_file(path)
    assert not found.header and not found.device_kind_column and len(found.rows) == 4
    db = ProfilingDatabase.load(path)
    prof = db.get("bert-1.3b")
    assert prof.latency((1, 1, 2), 1) == [0.07, 0.08]
    assert prof.weight_mem((1, 1, 2)) == [1.5e9, 1.5e9]
    assert prof.act_mem((1, 1, 2), 2) == pytest.approx([1e8, 1e8])
    assert db.hardware["duplicate_rule"] == "original"
    last = rows_to_database(found.rows)  # our profiler's rule: the last row wins
    assert last.get("bert-1.3b").weight_mem((1, 1, 2)) == [9e9, 9e9]
    assert path.read_bytes() == before  # the original conversion added a header; we do not


def test_raw_rows_with_header_and_numpy_lists_load(tmp_path):
    path = tmp_path / "rows.tsv"
    path.write_text("\t".join(ORIGINAL_COLUMNS) + "\n" + _raw("m", 1, 1, [0.05], sep=" ") + "\n")
    assert ProfilingDatabase.load(path).get("m").latency((1, 1, 1)) == [0.05]


@pytest.mark.parametrize("content, needle", [
    ("m\t1\t1\n", r"rows\.tsv:1: header lacks"),
    (_raw("m", 1, 2, [0.1, 0.1]) + "\n" + _raw("m", 2, 2, [0.1])[:-5] + "\n",
     r"rows\.tsv:2: "),
])
def test_bad_raw_rows_are_one_line_database_errors(tmp_path, content, needle):
    path = tmp_path / "rows.tsv"
    path.write_text(content)
    with pytest.raises(DatabaseFormatError, match=needle) as err:
        ProfilingDatabase.load(path)
    assert "\n" not in str(err.value)


# ------------------------------------------------------------------------ convert CLI

def test_convert_cli_between_all_forms(tmp_path, capsys):
    ours = ProfilingDatabase.default()
    src = tmp_path / "ours.pkl"
    ours.save(src)
    orig, json_out, rows = tmp_path / "orig.pkl", tmp_path / "back.json", tmp_path / "rows.tsv"
    assert convert_cli.main([str(src), "--out", str(orig), "--to", "original"]) == 0
    assert ours.fingerprint() in capsys.readouterr().out
    assert convert_cli.main([str(orig), "--out", str(json_out)]) == 0
    assert convert_cli.main([str(json_out), "--out", str(rows), "--to", "rows"]) == 0
    assert ProfilingDatabase.load(json_out).fingerprint() == ours.fingerprint()
    assert ProfilingDatabase.load(rows).get("bert-1.3b").latency((1, 1, 2), 4) == \
        ours.get("bert-1.3b").latency((1, 1, 2), 4)
    # never over the input, never over an existing file without --force
    before = src.read_bytes()
    assert convert_cli.main([str(src), "--out", str(src), "--force"]) == 2
    assert convert_cli.main([str(src), "--out", str(orig), "--to", "original"]) == 2
    assert "exists" in capsys.readouterr().err
    assert convert_cli.main([str(src), "--out", str(tmp_path / "x.json"), "--to",
                             "original"]) == 2
    assert src.read_bytes() == before


def test_experiments_cli_takes_a_profile(tmp_path, monkeypatch, caplog):
    from alpa_serve.experiments import __main__ as cli

    seen = {}

    def fake_run_suite(name, options, suite_options, db=None):
        seen["db"] = db
        raise FileNotFoundError("stop here")

    monkeypatch.setattr(cli, "run_suite", fake_run_suite)
    orig = tmp_path / "profiling_result.pkl"
    save_original(ProfilingDatabase.default(), orig)
    assert cli.main(["fig14", "--out", str(tmp_path / "o"), "--profile", str(orig)]) == 2
    assert seen["db"].fingerprint() == ProfilingDatabase.default().fingerprint()
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(b"\x00garbage")
    assert cli.main(["fig14", "--out", str(tmp_path / "o"), "--profile", str(bad)]) == 2
    assert "bad.pkl" in caplog.text


def test_a_profile_without_a_suite_model_stops_before_any_case(tmp_path, caplog):
    from alpa_serve.experiments.__main__ import main

    small = tmp_path / "small.json"
    ProfilingDatabase([ProfilingDatabase.default().get("bert-1.3b")]).save(small)
    assert main(["fig14", "--serial", "--out", str(tmp_path / "o"), "--profile",
                 str(small)]) == 2
    assert "unknown model" in caplog.text and "small.json" in caplog.text
    assert not list(Path(tmp_path / "o").glob("*.tsv"))


def test_gen_data_scripts_pass_the_profile_through(tmp_path):
    # The wrapper forwards --profile (and a later --out) to the runner, which refuses an
    # unreadable profile before touching any output folder.
    bad = tmp_path / "profiling_result.pkl"
    bad.write_bytes(b"not a pickle")
    script = Path(__file__).resolve().parent.parent / "osdi23_artifact" / "gen_data_sec6_5_ab.sh"
    res = subprocess.run(["bash", str(script), "--serial", "--profile", str(bad), "--out",
                          str(tmp_path / "out")], capture_output=True, text=True)
    assert res.returncode == 2, res.stderr
    assert f"--profile: cannot use {bad}" in res.stderr
    assert not (tmp_path / "out").exists()

"""Raw benchmark rows in the original artifact's layout (profiling/benchmark_rows.py)."""
from __future__ import annotations

import math

import pytest

from alpa_serve.profiling import ParallelConfig, ProfilingDatabase
from alpa_serve.profiling.benchmark_rows import (
    ORIGINAL_COLUMNS,
    BenchmarkRow,
    BenchmarkRowError,
    append_row,
    database_to_rows,
    read_rows,
    rows_to_database,
    write_rows,
)

HEADER = "\t".join(ORIGINAL_COLUMNS)


def _row(bs: int, cfg=(1, 1, 2), lat=(0.05, 0.06), name="tiny") -> BenchmarkRow:
    cfg = ParallelConfig(*cfg)
    return BenchmarkRow(name, bs, cfg, mean_time=sum(lat) * bs, std_time=0.001,
                        stage_weights=(1e6,) * cfg.pp, stage_peak_mem=(1.5e6,) * cfg.pp,
                        stage_latencies=tuple(x * bs for x in lat), device_kind="cpu")


def test_original_layout_with_numpy_lists_reads(tmp_path):
    # As the original benchmark wrote them: header, numpy-style lists, no DeviceKind column.
    path = tmp_path / "rows.tsv"
    path.write_text(HEADER + "\n"
                    "bert-1.3b\t1\t1\t1\t1\t2\t2\t0.16\t0.001\t10.5\t"
                    "[1.3e+09 1.3e+09]\t[1.4e+09 1.5e+09]\t[0.079 0.081]\n")
    (row,) = read_rows(path)
    assert row.config == ParallelConfig(1, 1, 2)
    assert row.stage_latencies == (0.079, 0.081)
    assert row.act_mem == pytest.approx((1e8, 2e8))
    assert row.device_kind == ""
    db = rows_to_database([row])
    assert db.get("bert-1.3b").latency((1, 1, 2), 1) == [0.079, 0.081]
    assert db.get("bert-1.3b").weight_mem((1, 1, 2)) == [1.3e9, 1.3e9]


def test_append_resume_and_last_row_wins(tmp_path):
    path = tmp_path / "rows.tsv"
    for bs in (1, 2):
        append_row(path, _row(bs))
    append_row(path, _row(1, lat=(0.5, 0.6)))  # a re-measurement replaces the first
    rows = read_rows(path)
    assert len(rows) == 3 and rows[0].device_kind == "cpu"
    prof = rows_to_database(rows).get("tiny")
    assert prof.latency((1, 1, 2), 1) == [0.5, 0.6]
    assert prof.latency((1, 1, 2), 2) == [0.1, 0.12]


def test_round_trip_through_rows_keeps_the_numbers(tmp_path):
    db = ProfilingDatabase.default()
    path = tmp_path / "rows.tsv"
    write_rows(path, database_to_rows(db))
    back = rows_to_database(read_rows(path))
    assert back.model_names() == db.model_names()
    for name in db.model_names():
        a, b = db.get(name), back.get(name)
        assert a.configs() == b.configs()
        for cfg in a.configs():
            assert a.latency(cfg, 4) == b.latency(cfg, 4)
            assert a.weight_mem(cfg) == b.weight_mem(cfg)
            assert a.act_mem(cfg, 4) == pytest.approx(b.act_mem(cfg, 4), rel=1e-12)


@pytest.mark.parametrize("content, needle", [
    (b"\x00\xff\xfe binary", "binary"),
    (b"", "empty file"),
    (b"a\tb\tc\n", "header lacks"),
    ((HEADER + "\nbert\t1\t1\t1\t1\t2\t2\t0.1\n").encode(), ":2: 8 fields"),
    ((HEADER + "\nbert\t1\t1\t1\t1\t2\t2\t0.1\t0\t0\t[1 1]\t[2 2]\t[0.1]\n").encode(),
     "expected PP=2"),
    ((HEADER + "\nbert\t1\t1\t1\t1\t2\t4\t0.1\t0\t0\t[1 1]\t[2 2]\t[0.1 0.1]\n").encode(),
     "#GPU is 4"),
    ((HEADER + "\nbert\tx\t1\t1\t1\t1\t1\t0.1\t0\t0\t[1]\t[2]\t[0.1]\n").encode(),
     "BS 'x'"),
    ((HEADER + "\nbert\t1\t1\t1\t1\t1\t1\t0.1\t0\t0\t[1]\t[2]\t[0]\n").encode(),
     "must be > 0"),
])
def test_bad_files_get_one_line_errors(tmp_path, content, needle):
    path = tmp_path / "rows.tsv"
    path.write_bytes(content)
    with pytest.raises(BenchmarkRowError) as err:
        read_rows(path)
    assert needle in str(err.value) and str(path) in str(err.value)
    assert "\n" not in str(err.value)
    assert path.read_bytes() == content  # nothing of the user's file changes


def test_stage_count_checked_at_construction():
    with pytest.raises(ValueError, match="expected pp=2"):
        BenchmarkRow("m", 1, ParallelConfig(1, 1, 2), 0.1, 0.0, (1.0,), (1.0, 1.0), (0.1, 0.1))
    assert math.isclose(_row(1).mean_time, 0.11)

"""Workload container (DESIGN 4.2): validation, merge, slicing, statistics, split, save/load."""

import numpy as np
import pytest

from alpa_serve.workload import GammaProcess, Workload, WorkloadFormatError


def mk(arrivals, ids, names=("a", "b", "c"), slo=1.0):
    arrivals = np.asarray(arrivals, dtype=np.float64)
    return Workload(arrivals, np.asarray(ids, dtype=np.int32),
                    np.full(len(arrivals), slo), list(names))


# ----------------------------------------------------------------------------- validation

def test_validation_errors():
    with pytest.raises(ValueError, match="sorted"):
        mk([1.0, 0.5], [0, 0])
    with pytest.raises(ValueError, match="equal lengths"):
        Workload([0.0, 1.0], [0], [1.0, 1.0], ["a"])
    with pytest.raises(ValueError, match=r"\[-1, 3\)"):
        mk([0.0], [3])
    with pytest.raises(ValueError, match=r"\[-1, 3\)"):
        mk([0.0], [-2])
    with pytest.raises(ValueError, match="finite"):
        mk([0.0, np.nan], [0, 0])
    with pytest.raises(ValueError, match="finite"):
        Workload([0.0], [0], [np.inf], ["a"])
    with pytest.raises(ValueError, match="1-D"):
        Workload(np.zeros((2, 2)), np.zeros(4, dtype=np.int32), np.zeros(4), ["a"])
    with pytest.raises(ValueError, match="unique"):
        mk([0.0], [0], names=("a", "a"))
    w = mk([0.0, 0.0, 1.0], [-1, 0, 2])  # -1 allowed, ties allowed
    assert len(w) == 3


def test_constructor_copies_and_dtypes():
    arr = np.array([0.0, 1.0])
    w = Workload(arr, [0, 0], [1, 1], ["a"])
    arr[0] = 5.0
    assert w.arrivals[0] == 0.0
    assert w.arrivals.dtype == np.float64 and w.model_ids.dtype == np.int32
    assert w.slos.dtype == np.float64


def test_empty():
    w = Workload.empty(["x"])
    assert len(w) == 0 and w.model_names == ["x"]
    assert w.rate == 0.0 and w.cv == 0.0
    assert w.split_time_interval(10.0) == []


# ----------------------------------------------------------------------------- merge

def test_merge_orders_by_numpy_argsort_and_keeps_longest_names():
    w1 = mk([0.0, 2.0, 4.0], [0, 0, 0], names=("a",), slo=1.0)
    w2 = mk([1.0, 2.0, 3.0], [1, 1, 1], names=("a", "b"), slo=2.0)
    m = Workload.merge(w1, w2)
    cat = np.concatenate([w1.arrivals, w2.arrivals])
    order = np.argsort(cat)
    assert np.array_equal(m.arrivals, cat[order])
    assert np.array_equal(m.model_ids, np.concatenate([w1.model_ids, w2.model_ids])[order])
    assert np.array_equal(m.slos, np.concatenate([w1.slos, w2.slos])[order])
    assert m.model_names == ["a", "b"]
    assert m.model_ids.dtype == np.int32


def test_merge_ties_follow_argsort_kind():
    # Many identical arrivals (as with large cv): the default (stable) keeps argument order on
    # every machine; kind="quicksort" reproduces numpy's default argsort (the published order).
    ws = [GammaProcess(20.0, 8.0).generate_workload(i, 0.0, 30.0, 1.0, seed=i,
                                                    model_names=[f"m{j}" for j in range(4)])
          for i in range(4)]
    cat = np.concatenate([w.arrivals for w in ws])
    ids = np.concatenate([w.model_ids for w in ws])
    assert len(cat) - len(np.unique(cat)) > 0
    m = Workload.merge(*ws, kind="quicksort")
    assert np.array_equal(m.model_ids, ids[np.argsort(cat)])
    s = Workload.merge(*ws)
    assert np.array_equal(s.model_ids, ids[np.argsort(cat, kind="stable")])
    # Stable: within equal arrival times ids are non-decreasing (argument order = model order).
    same = np.diff(s.arrivals) == 0
    assert np.all(np.diff(s.model_ids)[same] >= 0)


def test_merge_errors_and_single():
    w1 = mk([0.0], [0], names=("a",))
    assert Workload.merge(w1) is w1
    with pytest.raises(ValueError):
        Workload.merge()
    with pytest.raises(ValueError, match="disagree"):
        Workload.merge(w1, mk([0.0], [0], names=("z",)))
    merged = Workload.merge(w1, Workload.empty(["a", "b"]))
    assert merged.model_names == ["a", "b"] and len(merged) == 1


# ----------------------------------------------------------------------------- slicing/stats

def test_slicing_and_len():
    w = mk([0.0, 1.0, 2.0, 3.0], [0, 1, 2, 0])
    s = w[1:3]
    assert isinstance(s, Workload) and len(s) == 2
    assert np.array_equal(s.arrivals, [1.0, 2.0]) and np.array_equal(s.model_ids, [1, 2])
    assert s.model_names == w.model_names
    assert len(w[5:]) == 0
    assert np.array_equal(w[np.array([0, 3])].arrivals, [0.0, 3.0])
    assert np.array_equal(w[w.model_ids == 0].arrivals, [0.0, 3.0])
    with pytest.raises(TypeError):
        w[0]


def test_rate_and_cv():
    w = mk([0.0, 1.0, 3.0], [0, 0, 0])
    gaps = np.array([1.0, 2.0])
    rate = 1 / (gaps.mean() + 1e-6)
    assert w.rate == rate
    assert w.cv == np.std(gaps) * rate
    one = mk([5.0], [0])
    assert one.rate == 0.0 and one.cv == 0.0


# ----------------------------------------------------------------------------- split

def reference_split(arrivals, interval):
    if len(arrivals) < 1:
        return []
    out, start_i, start_time = [], 0, arrivals[0]
    for i in range(len(arrivals)):
        if arrivals[i] > start_time + interval:
            out.append((start_i, i))
            start_i, start_time = i, arrivals[i]
    out.append((start_i, len(arrivals)))
    return out


def test_split_time_interval_edges():
    w = mk([0.0, 1.0, 2.0, 2.0, 2.5, 7.0, 7.0, 20.0], [0] * 8)
    parts, starts = w.split_time_interval_with_starts(2.0)
    # 2.0 is not > 0 + 2 so it stays in the first window; 2.5 opens a window; 7, 20 too.
    assert [list(p.arrivals) for p in parts] == [[0.0, 1.0, 2.0, 2.0], [2.5], [7.0, 7.0], [20.0]]
    assert starts == [0.0, 2.5, 7.0, 20.0]
    assert [len(p) for p in w.split_time_interval(100.0)] == [8]
    # interval 0: every distinct time its own window, ties together.
    assert [len(p) for p in w.split_time_interval(0.0)] == [1, 1, 2, 1, 2, 1]
    with pytest.raises(ValueError):
        w.split_time_interval(-1.0)


@pytest.mark.parametrize("interval", [0.3, 1.0, 7.5, 60.0])
def test_split_matches_reference_loop(interval):
    w = GammaProcess(5.0, 3.0).generate_workload(0, 0.0, 200.0, 1.0, seed=2)
    parts = w.split_time_interval(interval)
    ref = reference_split(w.arrivals, interval)
    assert [(len(p)) for p in parts] == [b - a for a, b in ref]
    assert np.array_equal(np.concatenate([p.arrivals for p in parts]), w.arrivals)


# ----------------------------------------------------------------------------- remap

def test_remap_models():
    w = mk([0.0, 1.0, 2.0, 3.0], [0, 1, 2, -1])
    r = w.remap_models(np.array([-1, 0, 1]), ["b", "c"])
    assert np.array_equal(r.model_ids, [-1, 0, 1, -1])
    assert r.model_names == ["b", "c"]
    assert np.array_equal(r.arrivals, w.arrivals)
    with pytest.raises(ValueError):
        w.remap_models(np.array([0, 1]), ["x"])
    with pytest.raises(ValueError):
        w.remap_models(np.array([0, 1, 5]), ["x"])


# ----------------------------------------------------------------------------- save/load

def test_save_load_round_trip(tmp_path):
    w = Workload.merge(*[GammaProcess(3.0, 2.0).generate_workload(
        i, 0.0, 20.0, 0.1 * (i + 1), seed=i, model_names=["bert-1.3b", "bert-2.6b"])
        for i in range(2)])
    p = tmp_path / "w.npz"
    w.save(p)
    back = Workload.load(p)
    assert back.equals(w)
    e = Workload.empty(["a"])
    e.save(tmp_path / "e.npz")
    assert Workload.load(tmp_path / "e.npz").equals(e)


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        Workload.load(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    bad.write_text("not a zip")
    with pytest.raises(WorkloadFormatError, match="cannot read"):
        Workload.load(bad)
    partial = tmp_path / "partial.npz"
    np.savez(partial, arrivals=np.zeros(2))
    with pytest.raises(WorkloadFormatError, match="missing arrays"):
        Workload.load(partial)
    unsorted = tmp_path / "unsorted.npz"
    np.savez(unsorted, arrivals=np.array([1.0, 0.0]), model_ids=np.zeros(2, np.int32),
             slos=np.ones(2), model_names=np.array(["a"]))
    with pytest.raises(WorkloadFormatError, match="sorted"):
        Workload.load(unsorted)

"""Trace loaders and replay (DESIGN 4.3) on tiny real-format fixtures (tests/data/traces/)."""

import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from alpa_serve.workload import (
    GammaProcess,
    TraceWindow,
    Workload,
    maf2 as maf2_format,
    trace as tr,
)

DATA = Path(__file__).parent / "data" / "traces"


@pytest.fixture
def maf1(tmp_path):
    return tr.open_trace("maf1", DATA / "maf1", cache_dir=tmp_path)


@pytest.fixture
def maf2(tmp_path):
    return tr.open_trace("maf2", DATA / "maf2", cache_dir=tmp_path)


def gamma(rate, cv, start, dur, seed):
    return GammaProcess(rate, cv).generate_arrivals(start, dur, seed)


# ----------------------------------------------------------------------------- time strings

def test_parse_time():
    assert tr.parse_time("0.0.0") == 0
    assert tr.parse_time("0.1.0") == 3600
    assert tr.parse_time("13.0.0") == 13 * 86400
    assert tr.parse_time("13.23.60") == 14 * 86400
    for bad in ("1.2", "a.b.c", "0.25.0", "0.0.61", "-1.0.0", ""):
        with pytest.raises(tr.TraceWindowError):
            tr.parse_time(bad)


# ----------------------------------------------------------------------------- MAF1

def test_maf1_preprocess_order_and_cache(maf1, tmp_path):
    # First appearance: day-1 rows in file order, then fE (new on day 2, listed first there).
    assert list(maf1.function_ids) == ["fA", "fB", "fC", "fD", "fE"]
    assert maf1.num_days == 2
    assert list(maf1.function_totals()) == [3 + 2 + 1 + 5 + 1, 4, 11, 2, 7]
    mt = maf1.minute_totals()
    assert len(mt) == 2 * 1440 and mt[0] == 3 and mt[1440] == 9 and mt.sum() == 36
    # Cached: a second Trace reuses the preprocessed directory, and it loads directly too.
    again = tr.open_trace("maf1", DATA / "maf1", cache_dir=tmp_path)
    assert again.cache_path == maf1.cache_path
    direct = tr.open_trace("maf1", maf1.cache_path)
    assert list(direct.function_ids) == list(maf1.function_ids)


def test_maf1_first_hour_stripe_histogram_and_seeds(maf1):
    r = maf1.replay(2, "0.0.0", "0.1.0", 60, rate_scale=2.0, cv_scale=3.0, seed=0)
    # fB (no invocation in the hour) and fD (zeros) are dropped: fA -> m0, fC -> m1.
    assert r.num_active_functions == 2
    assert list(r.functions_per_model) == [1, 1]
    assert r.model_names == ["m0", "m1"]
    assert r.window_starts.tolist() == [60.0 * k for k in range(60)]
    # Windows with invocations: m0 minutes 0 (3), 1 (2), 59 (1); m1 minutes 5 (1), 30 (10).
    expected = {0: [(0, 3), (1, 2), (59, 1)], 1: [(5, 1), (30, 10)]}
    seed = 0
    for m in (0, 1):
        parts = []
        for k, h in expected[m]:
            rate = h / 60.0 * 2.0
            assert r.window_rates[m, k] == rate and r.window_cvs[m, k] == 3.0
            parts.append(gamma(rate, 3.0, 60.0 * k, 60.0, seed))
            seed += 1
        assert np.array_equal(r.arrivals[m], np.concatenate(parts))
        assert np.count_nonzero(r.window_rates[m]) == len(expected[m])
    assert r.next_seed == seed == 5
    # Statistics: count / window length and std(gaps) / (mean(gaps) + 1e-5).
    for m in (0, 1):
        a = r.arrivals[m]
        if len(a) > 1:
            g = np.diff(a)
            assert r.rates[m] == len(a) / 3600.0
            assert r.cvs[m] == np.std(g) / (np.mean(g) + 1e-5)


def test_maf1_seed_offset(maf1):
    a = maf1.replay(2, "0.0.0", "0.1.0", 60, 2.0, 3.0, seed=0)
    b = maf1.replay(2, "0.0.0", "0.1.0", 60, 2.0, 3.0, seed=7)
    assert b.next_seed == 12
    assert np.array_equal(b.arrivals[0][:len(gamma(0.1, 3.0, 0.0, 60.0, 7))],
                          gamma(0.1, 3.0, 0.0, 60.0, 7))
    assert not np.array_equal(a.arrivals[0], b.arrivals[0])
    # Deterministic.
    c = maf1.replay(2, "0.0.0", "0.1.0", 60, 2.0, 3.0, seed=7)
    assert all(np.array_equal(x, y) for x, y in zip(b.arrivals, c.arrivals))


def test_maf1_day2_uses_function_order_not_file_order(maf1):
    r = maf1.replay(3, "1.0.0", "1.1.0", 3600, 1.0, 1.0, seed=0)
    # Active on day 2's first hour: fA (min 10), fD (min 0), fE (min 0) -> m0, m1, m2.
    assert r.num_active_functions == 3
    assert r.window_rates[:, 0].tolist() == [1 / 3600, 2 / 3600, 7 / 3600]
    assert r.window_starts.tolist() == [86400.0]
    # Seeds 0, 1, 2 in model order.
    for m, h in enumerate((1, 2, 7)):
        assert np.array_equal(r.arrivals[m], gamma(h / 3600, 1.0, 86400.0, 3600.0, m))


def test_maf1_partial_window_divides_by_full_interval(maf1):
    r = maf1.replay(1, "0.0.0", "0.1.30", 3600, 1.0, 1.0, seed=0)
    # One model: window 0 = first hour (3+2+1+1+10 = 17), window 1 = minutes 60..89 (5).
    assert r.window_rates[0].tolist() == [17 / 3600, 5 / 3600]
    assert r.window_starts.tolist() == [0.0, 3600.0]
    expect = np.concatenate([gamma(17 / 3600, 1.0, 0.0, 3600.0, 0),
                             gamma(5 / 3600, 1.0, 3600.0, 3600.0, 1)])
    assert np.array_equal(r.arrivals[0], expect)   # full-interval generation, past `end`
    assert r.rates[0] == len(expect) / 5400.0


def test_maf1_multi_day_window_and_more_models_than_functions(maf1):
    r = maf1.replay(["x", "y", "z", "w", "v", "u"], "0.0.0", "1.23.60", 86400, 1.0, 1.0)
    # All five functions have invocations over the two days; model u gets none.
    assert r.num_active_functions == 5
    assert list(r.functions_per_model) == [1, 1, 1, 1, 1, 0]
    day1 = r.window_rates[:, 0] * 86400
    day2 = r.window_rates[:, 1] * 86400
    assert np.allclose(day1, [11, 4, 11, 0, 0, 0]) and np.allclose(day2, [1, 0, 0, 2, 7, 0])
    assert len(r.arrivals[5]) == 0 and r.rates[5] == 0.0 and r.cvs[5] == 0.0


def test_maf1_cache_not_modified_by_replay(maf1):
    before = np.array(maf1.count).copy()
    maf1.replay(1, "0.0.0", "1.23.60", 60, 5.0, 2.0)
    assert np.array_equal(np.array(maf1.count), before)


def test_maf1_window_and_argument_errors(maf1):
    with pytest.raises(tr.TraceWindowError, match="after start"):
        maf1.replay(2, "0.1.0", "0.1.0", 60)
    with pytest.raises(tr.TraceWindowError, match="after start"):
        maf1.replay(2, "0.2.0", "0.1.0", 60)
    with pytest.raises(tr.TraceWindowError, match="2 days"):
        maf1.replay(2, "1.0.0", "2.0.1", 60)
    with pytest.raises(ValueError, match="multiple of 60"):
        maf1.replay(2, "0.0.0", "0.1.0", 90)
    with pytest.raises(ValueError, match="rate_scale"):
        maf1.replay(2, "0.0.0", "0.1.0", 60, rate_scale=0)
    with pytest.raises(ValueError, match="cv_scale"):
        maf1.replay(2, "0.0.0", "0.1.0", 60, cv_scale=-1)
    with pytest.raises(ValueError):
        maf1.replay(0, "0.0.0", "0.1.0", 60)


# ----------------------------------------------------------------------------- MAF2

def maf2_rows():
    lines = (DATA / "maf2" / tr.MAF2_FILE_NAME).read_text().split("\n")[1:]
    rows = [ln.split(",") for ln in lines if ln]
    return [(f, float(e) - float(d)) for _a, f, e, d in rows]


def reference_maf2(rows, M, s, e, interval, rate_scale, cv_scale, seed):
    """Independent transcription of DESIGN 4.3's MAF2 replay."""
    order = []
    for f, _t in rows:
        if f not in order:
            order.append(f)
    times = {f: sorted(t for g, t in rows if g == f) for f in order}
    active = [f for f in order if any(s <= t < e for t in times[f])]
    edges = list(np.arange(s, e, interval)) + [e]
    out = []
    for m in range(M):
        ts = np.sort(np.array([t for f in active[m::M] for t in times[f] if s <= t < e]))
        arr = []
        for k in range(len(edges) - 1):
            w = ts[(ts >= edges[k]) & (ts < edges[k + 1])]
            if len(w) - 1 < 2:
                continue
            try:
                # scipy's gamma.fit(floc=0) computation with CPU-independent logs (it is
                # checked against scipy in test_portable_math.py).
                shape, scale = tr.gamma_mle_floc0(np.diff(w) + 1e-6)
            except Exception:
                continue
            rate, cv = 1 / (shape * scale), math.sqrt(1 / shape)
            if rate > 5 * len(w) / interval:
                rate = len(w) / interval
            arr.append(gamma(rate * rate_scale, cv * cv_scale, edges[k], interval, seed))
            seed += 1
        out.append(np.concatenate(arr) if arr else np.zeros(0))
    return out, seed


def test_maf2_preprocess(maf2):
    assert list(maf2.function_ids) == ["g4", "g1", "g2", "g3"]
    assert list(maf2.app_ids) == ["a2", "a1", "a1", "a2"]
    assert list(maf2.function_totals()) == [5, 29, 2, 5]
    rows = maf2_rows()
    for i, f in enumerate(maf2.function_ids):
        assert np.array_equal(maf2.function_times(i), sorted(t for g, t in rows if g == f))


@pytest.mark.parametrize("M,start,end,interval,rs,cs,seed", [
    (2, "0.0.0", "0.3.0", 5400, 1.0, 1.0, 0),
    (2, "0.0.0", "0.2.0", 5400, 4.0, 2.0, 3),     # partial last window
    (1, "0.0.0", "1.23.60", 5400, 1.0, 1.0, 0),
    (3, "0.0.0", "0.1.40", 1200, 2.0, 1.0, 0),
])
def test_maf2_replay_matches_reference(maf2, M, start, end, interval, rs, cs, seed):
    r = maf2.replay(M, start, end, interval, rs, cs, seed)
    ref, next_seed = reference_maf2(maf2_rows(), M, tr.parse_time(start), tr.parse_time(end),
                                    interval, rs, cs, seed)
    assert r.next_seed == next_seed
    for m in range(M):
        assert np.array_equal(r.arrivals[m], ref[m])


def test_maf2_stripe_drop_fit_and_fallbacks(maf2):
    r = maf2.replay(2, "0.0.0", "0.3.0", 5400, 1.0, 1.0, 0)
    # Active in [0, 10800): g4, g1, g2 (g3 is day 2 only) -> m0: g4 + g2, m1: g1.
    assert r.num_active_functions == 3 and list(r.functions_per_model) == [2, 1]
    # m1 window 1: six invocations within 7.5 s: the fitted rate (~0.67/s) is > 5x the
    # empirical 6/5400 and is replaced by it.
    assert r.window_rates[1, 1] == 6 / 5400
    # m1 window 0: 20 spread invocations: the fit is kept (close to the empirical rate).
    assert 0 < r.window_rates[1, 0] <= 5 * 20 / 5400 and r.window_rates[1, 0] != 20 / 5400
    # m0 window 0: g4 (5) + g2 (2) = 7 invocations -> a fit; window 1: none.
    assert r.window_rates[0, 0] > 0 and r.window_rates[0, 1] == 0
    assert r.next_seed == 3


def test_maf2_equal_gaps_fit_raises_no_arrivals():
    # scipy cannot fit identical gaps (its shape root search hits inf): no arrivals.
    assert tr.fit_gamma_window(np.array([0.0, 1.5, 3.0, 4.5]), 100.0) is None


def test_maf2_fewer_than_two_gaps_and_fit_failures(maf2, monkeypatch):
    # g2 alone in a window: 2 invocations = 1 gap -> no arrivals, seed not consumed.
    r = maf2.replay(3, "0.0.0", "0.1.40", 6000, 1.0, 1.0, 0)
    assert r.num_active_functions == 3          # g4 -> m0, g1 -> m1, g2 -> m2
    assert r.window_rates.shape == (3, 1)
    assert r.window_rates[2, 0] == 0 and len(r.arrivals[2]) == 0
    assert r.window_rates[0, 0] > 0 and r.window_rates[1, 0] > 0 and r.next_seed == 2
    assert tr.fit_gamma_window(np.array([1.0, 2.0]), 10.0) is None
    assert tr.fit_gamma_window(np.array([1.0, 2.0, 4.0]), 10.0) is not None

    def boom(*a, **k):
        raise RuntimeError("fit failed")

    monkeypatch.setattr(maf2_format, "gamma_mle_floc0", boom)
    assert tr.fit_gamma_window(np.array([1.0, 2.0, 4.0]), 10.0) is None
    r = maf2.replay(2, "0.0.0", "0.3.0", 5400, 1.0, 1.0, 0)
    assert r.num_requests() == 0 and r.next_seed == 0
    monkeypatch.setattr(maf2_format, "gamma_mle_floc0", lambda *a, **k: (float("nan"), 1.0))
    assert tr.fit_gamma_window(np.array([1.0, 2.0, 4.0]), 10.0) is None


def test_replay_window_takes_a_window_parsed_once(maf2):
    w = TraceWindow.parse("0.0.0", "0.3.0")
    assert (w.start_seconds, w.end_seconds, w.duration) == (0, 10800, 10800)
    a = maf2.replay_window(3, w, 5400, 2.0, 1.5, 7)
    b = maf2.replay(3, "0.0.0", "0.3.0", 5400, 2.0, 1.5, 7)
    assert (a.name, a.start_seconds, a.end_seconds) == (b.name, 0.0, 10800.0)
    assert all(np.array_equal(x, y) for x, y in zip(a.arrivals, b.arrivals))
    with pytest.raises(tr.TraceWindowError, match="must be after start"):
        maf2.replay_window(2, TraceWindow.parse("0.3.0", "0.1.0"), 5400)


def test_maf2_window_errors(maf2):
    with pytest.raises(tr.TraceWindowError, match="14 days"):
        maf2.replay(2, "13.0.0", "14.0.1", 5400)
    with pytest.raises(tr.TraceWindowError):
        maf2.replay(2, "1.0.0", "0.0.0", 5400)


# ----------------------------------------------------------------------------- workload

def test_to_workload(maf1):
    r = maf1.replay(["a", "b"], "0.0.0", "0.1.0", 60, 2.0, 3.0)
    w = r.to_workload([1.5, 2.5])
    assert isinstance(w, Workload) and w.model_names == ["a", "b"]
    ref = Workload.merge(*[Workload(r.arrivals[i], np.full(len(r.arrivals[i]), i),
                                    np.full(len(r.arrivals[i]), s), ["a", "b"])
                           for i, s in enumerate([1.5, 2.5])])
    assert w.equals(ref)
    assert r.name == "maf1[0.0.0-0.1.0]"
    assert len(r.to_workload(5.0)) == r.num_requests()
    with pytest.raises(ValueError):
        r.to_workload([1.0])


# ----------------------------------------------------------------------------- errors

def test_missing_files_errors(tmp_path, monkeypatch):
    with pytest.raises(tr.TraceNotFoundError, match="maf1-standin"):
        tr.open_trace("maf1", tmp_path / "nope", cache_dir=tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(tr.TraceNotFoundError, match="d01"):
        tr.open_trace("maf1", tmp_path / "empty", cache_dir=tmp_path)
    with pytest.raises(tr.TraceNotFoundError, match="maf2-standin"):
        tr.open_trace("maf2", tmp_path / "empty", cache_dir=tmp_path)
    monkeypatch.delenv("ALPA_SERVE_MAF1_PATH", raising=False)
    with pytest.raises(tr.TraceNotFoundError, match="ALPA_SERVE_MAF1_PATH.*maf1-standin"):
        tr.load_trace("maf1", cache_dir=tmp_path)
    monkeypatch.setenv("ALPA_SERVE_MAF2_PATH", str(DATA / "maf2"))
    t = tr.load_trace("maf2", cache_dir=tmp_path)
    assert t.num_functions == 4 and t.source == "maf2"
    with pytest.raises(ValueError, match="unknown trace"):
        tr.load_trace("maf3")


def test_malformed_maf1(tmp_path):
    d = tmp_path / "bad"
    d.mkdir()
    src = DATA / "maf1" / "invocations_per_function_md.anon.d01.csv"
    text = src.read_text().split("\n")
    (d / src.name).write_text("\n".join([text[0].replace("HashApp", "App")] + text[1:]))
    with pytest.raises(tr.TraceFormatError, match="expected HashOwner"):
        tr.open_trace("maf1", d, cache_dir=tmp_path)
    cells = text[1].split(",")
    cells[10] = "x"
    (d / src.name).write_text("\n".join([text[0], ",".join(cells)] + text[2:]))
    with pytest.raises(tr.TraceFormatError, match="integers"):
        tr.open_trace("maf1", d, cache_dir=tmp_path)
    # Non-contiguous days.
    shutil.copy(src, d / src.name)
    shutil.copy(src, d / "invocations_per_function_md.anon.d03.csv")
    with pytest.raises(tr.TraceFormatError, match="contiguous"):
        tr.open_trace("maf1", d, cache_dir=tmp_path)


def test_malformed_maf2(tmp_path):
    f = tmp_path / tr.MAF2_FILE_NAME
    f.write_text("app,func,end\na,b,1.0\n")
    with pytest.raises(tr.TraceFormatError, match="columns"):
        tr.open_trace("maf2", f, cache_dir=tmp_path)
    f.write_text("app,func,end_timestamp,duration\na,b,1.0,zz\n")
    with pytest.raises(tr.TraceFormatError, match="numbers"):
        tr.open_trace("maf2", f, cache_dir=tmp_path)
    f.write_text("app,func,end_timestamp,duration\na,b,1.0,\n")
    with pytest.raises(tr.TraceFormatError, match="empty"):
        tr.open_trace("maf2", f, cache_dir=tmp_path)


def test_corrupt_cache(tmp_path, maf1):
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "meta.json").write_text("{not json")
    with pytest.raises(tr.TraceFormatError, match="delete it"):
        tr.open_trace("maf1", tmp_path / "c")
    with pytest.raises(tr.TraceFormatError, match="kind=maf1"):
        tr.open_trace("maf2", maf1.cache_path)


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("ALPA_SERVE_CACHE", str(tmp_path))
    assert tr.default_cache_dir() == tmp_path / "traces"
    monkeypatch.delenv("ALPA_SERVE_CACHE")
    assert tr.default_cache_dir() == Path.home() / ".cache" / "alpa_serve" / "traces"

"""Stand-in generators: real raw formats, determinism, caching, the report tool (small
parameters)."""

import dataclasses
import gzip
import hashlib
import json

import numpy as np
import pytest

from alpa_serve.workload import standin as S, trace as tr, trace_defs
from studies.traces import standin_report as R

SMALL1 = S.Maf1StandinParams(num_functions=400, num_days=2, late_birth_fraction=0.2)
SMALL2 = S.Maf2StandinParams(num_functions=30, num_apps=8, total_invocations=20_000)
SMALL = S.StandinParams(maf1=SMALL1, maf2=SMALL2)


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_maf1_standin_format_and_determinism(tmp_path):
    a = S.generate_maf1_standin(tmp_path / "a", SMALL1)
    b = S.generate_maf1_standin(tmp_path / "b", SMALL1)
    assert [p.name for p in a] == ["invocations_per_function_md.anon.d01.csv.gz",
                                   "invocations_per_function_md.anon.d02.csv.gz"]
    # gzip headers carry no mtime differences that matter: compare decompressed content.
    for x, y in zip(a, b):
        assert gzip.decompress(x.read_bytes()) == gzip.decompress(y.read_bytes())
    lines = gzip.decompress(a[0].read_bytes()).decode().split("\n")
    header = lines[0].split(",")
    assert header == trace_defs.MAF1_COLUMNS
    rows = [ln.split(",") for ln in lines[1:] if ln]
    assert all(len(r) == 1444 for r in rows)
    assert len({r[2] for r in rows}) == len(rows)          # unique function ids per day
    assert all(sum(int(c) for c in r[4:]) > 0 for r in rows)  # only invoked functions listed
    assert {r[3] for r in rows} <= {"http", "timer", "queue", "event", "orchestration",
                                    "storage", "others"}
    other = S.generate_maf1_standin(tmp_path / "c", dataclasses.replace(SMALL1, seed=1))
    assert gzip.decompress(other[0].read_bytes()) != gzip.decompress(a[0].read_bytes())


def test_maf1_standin_loads_and_replays(tmp_path):
    raw = S.ensure_standin("maf1", tmp_path, SMALL)
    assert (raw / "DONE").is_file() and json.loads((raw / "params.json").read_text())["seed"]
    t = tr.load_trace("maf1-standin", cache_dir=tmp_path, params=SMALL)
    assert t.source == "maf1-standin" and t.num_days == 2
    assert t.num_functions > 300
    # Later-born functions appear after all day-1 functions (first-appearance order).
    r = t.replay(8, "0.0.0", "0.1.0", 60, 0.01, 4.0)
    assert r.name.startswith("maf1-standin[")
    assert r.num_requests() > 0
    # Cached: a second call reuses the raw files.
    assert S.ensure_standin("maf1", tmp_path, SMALL) == raw
    rep = R.trace_report(t, num_models=8)
    text = R.format_report(rep)
    assert "maf1-standin" in text and "top 1%" in text
    assert 0 <= rep["frac_functions_le_1_per_hour"] <= rep["frac_functions_le_1_per_minute"] <= 1
    assert len(rep["hour_of_day_profile"]) == 24


def test_maf2_standin_format_and_determinism(tmp_path):
    a = S.generate_maf2_standin(tmp_path / "a", SMALL2)
    b = S.generate_maf2_standin(tmp_path / "b", SMALL2)
    assert a.name == trace_defs.MAF2_FILE_NAME
    assert digest(a) == digest(b)
    lines = a.read_text().split("\n")
    assert lines[0] == "app,func,end_timestamp,duration"
    rows = [ln.split(",") for ln in lines[1:] if ln]
    ends = np.array([float(r[2]) for r in rows])
    assert np.all(np.diff(ends) >= 0)                   # ordered by end_timestamp
    assert len({r[1] for r in rows}) == SMALL2.num_functions
    assert abs(len(rows) - SMALL2.total_invocations) < 0.3 * SMALL2.total_invocations


def test_maf2_standin_is_bursty(tmp_path):
    # Without steady streams (which the busiest functions of a 30-function draw mostly are)
    # every non-timer function is bursty: far burstier than Poisson within windows, median
    # fitted CV per model window above 1. (The full stand-in's median is in docs/traces.md.)
    bursty = S.StandinParams(maf2=dataclasses.replace(
        SMALL2, stream_half_daily_invocations=float("inf")))
    t = tr.load_trace("maf2-standin", cache_dir=tmp_path, params=bursty)
    assert t.num_functions == SMALL2.num_functions
    rep = R.trace_report(t, num_models=4)
    assert rep["fitted_cv_per_model_window"]["p50"] > 1.0


def test_report_figure_shows_the_report(tmp_path):
    import matplotlib.pyplot as plt

    t = tr.load_trace("maf2-standin", cache_dir=tmp_path, params=SMALL)
    rep = R.trace_report(t, num_models=4)
    fig = R.report_figure([rep], [t])
    fig.canvas.draw()
    cdf, hourly, cvs = fig.axes
    # Rate CDF: every function's mean daily invocations, sorted, up to 1.
    x, y = cdf.lines[0].get_data()
    assert np.array_equal(x, np.sort(t.function_totals() / t.num_days))
    assert len(y) == t.num_functions and y[-1] == 1.0 and np.all(np.diff(y) > 0)
    # Invocations per hour: 24 points a day summing to the report's daily totals.
    _, per_hour = hourly.lines[0].get_data()
    assert np.array_equal(per_hour.reshape(t.num_days, 24).sum(axis=1), rep["daily_totals"])
    # CV bars: the report's per-model-window percentiles, labelled by percentile.
    cv = rep["fitted_cv_per_model_window"]
    assert [b.get_height() for b in cvs.patches] == list(cv.values())
    assert [lab.get_text() for lab in cvs.get_xticklabels()] == list(cv)
    plt.close(fig)
    out = tmp_path / "f.png"
    R.plot_report([rep], [t], out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_params_digest_changes_with_numbers():
    a = S.StandinParams()
    b = S.StandinParams(maf2=dataclasses.replace(a.maf2, total_invocations=10))
    assert a.digest("maf1") == b.digest("maf1")
    assert a.digest("maf2") != b.digest("maf2")
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.maf1.seed = 3  # type: ignore[misc]


def test_cli_small(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(S, "DEFAULT_PARAMS", SMALL)
    assert R.main(["--out", str(tmp_path), "--which", "maf2", "--report"]) == 0
    out = capsys.readouterr().out
    assert "maf2-standin" in out and "fitted_cv_per_model_window" in out


# ----------------------------------------------------------------------------- MAF2 streams

STREAMY = S.Maf2StandinParams(num_functions=40, num_apps=10, num_days=2,
                              total_invocations=400_000, stream_half_daily_invocations=2000.0)


def _window_cvs(times, interval=5400.0, min_count=30):
    """Gamma-fitted CVs of the replay (DESIGN 4.3) over the windows of ``times`` with at least
    ``min_count`` invocations."""
    t = np.sort(times)
    edges = np.arange(0.0, t.max() + interval, interval)
    b = np.searchsorted(t, edges)
    out = []
    for k in range(len(edges) - 1):
        w = t[b[k]:b[k + 1]]
        if len(w) >= min_count:
            fit = tr.fit_gamma_window(w, interval)
            if fit:
                out.append(fit[1])
    return np.asarray(out)


def test_maf2_streams_are_high_volume_and_regular():
    pop = S._maf2_population(STREAMY)
    stream, bursty = pop["is_stream"], ~pop["is_stream"] & ~pop["is_timer"]
    assert stream.any() and bursty.any() and not (stream & pop["is_timer"]).any()
    # P(stream) = d / (d + d0): streams carry a larger share of the volume than of functions.
    vol = pop["expected"]
    assert vol[stream].sum() / vol.sum() > stream.mean()
    # A stream's windows are regular (fitted CV near stream_gap_cv), the busiest bursty
    # function's are bursty (fitted CV above 1, the 2021 trace's character).
    f_stream = int(np.argmax(np.where(stream, vol, -1)))
    f_bursty = int(np.argmax(np.where(bursty, vol, -1)))
    cv_s = _window_cvs(S._maf2_function(STREAMY, pop, f_stream)[0])
    cv_b = _window_cvs(S._maf2_function(STREAMY, pop, f_bursty)[0])
    assert len(cv_s) >= 5 and len(cv_b) >= 5
    assert abs(np.median(cv_s) - STREAMY.stream_gap_cv) < 0.1
    assert np.median(cv_b) > 1.0


def test_maf2_stream_draws_leave_other_functions_unchanged():
    no_streams = dataclasses.replace(STREAMY, stream_half_daily_invocations=float("inf"))
    a, b = S._maf2_population(no_streams), S._maf2_population(STREAMY)
    assert not a["is_stream"].any() and b["is_stream"].any()
    assert np.array_equal(a["expected"], b["expected"])
    for f in np.flatnonzero(~b["is_stream"])[:8]:
        ta, da = S._maf2_function(no_streams, a, int(f))
        tb, db = S._maf2_function(STREAMY, b, int(f))
        assert np.array_equal(ta, tb) and np.array_equal(da, db)
    f = int(np.flatnonzero(b["is_stream"])[0])
    assert not np.array_equal(S._maf2_function(no_streams, a, f)[0],
                              S._maf2_function(STREAMY, b, f)[0])


def test_stream_times_follow_the_daily_intensity():
    p = dataclasses.replace(STREAMY, diurnal_amplitude=0.5, stream_gap_cv=0.3)
    r = S._rng(1, 2)
    horizon = 2 * 86400.0
    always_on = (np.zeros(1), np.ones(1, dtype=bool))
    t = S._stream_times(r, p, horizon, always_on, 20_000.0, p.diurnal_peak_hour)
    # Renewal count: sd about stream_gap_cv * sqrt(n).
    assert abs(len(t) - 20_000) < 200 and t.min() >= 0 and t.max() < horizon
    hour = (t / 3600) % 24
    peak = np.sum(np.abs(hour - p.diurnal_peak_hour) < 1)
    trough = np.sum(np.abs(hour - (p.diurnal_peak_hour + 12) % 24) < 1)
    assert 2.4 < peak / trough < 3.6          # (1 + 0.5) / (1 - 0.5) = 3 at the extremes
    # Regime off: nothing there.
    half_off = (np.array([0.0, 86400.0]), np.array([True, False]))
    t = S._stream_times(S._rng(1, 3), p, horizon, half_off, 5_000.0, p.diurnal_peak_hour)
    assert t.max() < 86400.0 and abs(len(t) - 5_000) < 100


def test_maf2_cache_key_changes_with_the_stream_parameters(tmp_path):
    # The stand-in before the steady streams (parameter digest cef23987e9) must not be reused.
    assert S.DEFAULT_PARAMS.digest("maf2") != "cef23987e9"
    small = S.StandinParams(maf2=SMALL2)
    other = S.StandinParams(maf2=dataclasses.replace(SMALL2, stream_gap_cv=0.7))
    assert small.digest("maf2") != other.digest("maf2")
    assert S.ensure_standin("maf2", tmp_path, small) != S.ensure_standin("maf2", tmp_path, other)


# ----------------------------------------------------------------------------- MAF2 daily mix

def test_maf2_peak_hours_are_per_function_and_leave_the_volumes_alone():
    shared = dataclasses.replace(STREAMY, diurnal_peak_jitter_hours=0.0)
    spread = dataclasses.replace(STREAMY, diurnal_peak_jitter_hours=6.0)
    a, b = S._maf2_population(shared), S._maf2_population(spread)
    assert np.all(a["peak_hour"] == shared.diurnal_peak_hour)
    assert 3.0 < np.std(b["peak_hour"]) < 9.0
    # The phases come from their own stream: kinds and volumes do not move.
    for key in ("expected", "is_timer", "is_stream"):
        assert np.array_equal(a[key], b[key])


def test_stream_times_peak_at_their_own_hour():
    p = dataclasses.replace(STREAMY, diurnal_amplitude=0.5, stream_gap_cv=0.3)
    always_on = (np.zeros(1), np.ones(1, dtype=bool))
    t = S._stream_times(S._rng(1, 4), p, 2 * 86400.0, always_on, 20_000.0, 2.0)
    hour = (t / 3600) % 24
    assert np.sum(np.abs(hour - 2.0) < 1) > 2.4 * np.sum(np.abs(hour - 14.0) < 1)


def test_regime_always_has_an_on_period():
    # On fraction 1%, off periods averaging 99 days: the first period is taken as on.
    for seed in range(20):
        edges, states = S._regime(S._rng(seed, 5), 14 * 86400.0, 3600.0, 0.0001)
        assert states.any()

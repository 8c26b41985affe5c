"""The sweep table (alpa_serve/sweeps.py) is the one vocabulary of the sweeps: every view of it
that experiments and plotting read agrees with it."""
from __future__ import annotations

import pytest

from alpa_serve.results import COLUMNS, NUMERIC_COLUMNS
from alpa_serve.sweeps import EXP_X, FIGURE_SWEEPS, SWEEPS, get_sweep, sweep_of_x


def test_every_sweep_moves_a_numeric_result_column():
    for sweep in SWEEPS:
        assert sweep.x in COLUMNS and sweep.x in NUMERIC_COLUMNS, sweep
        assert sweep.direction in ("min", "max")
        assert sweep_of_x(sweep.x) is sweep and get_sweep(sweep.name) is sweep
    assert EXP_X == {s.name: s.x for s in SWEEPS}


def test_every_figure_sweep_is_in_the_table():
    assert set(FIGURE_SWEEPS) == {"fig11", "fig12", "fig13", "fig14"}
    for names in FIGURE_SWEEPS.values():
        assert [get_sweep(n).name for n in names] == list(names)
    with pytest.raises(ValueError, match="unknown sweep"):
        get_sweep("goodput_vs_duration")
    assert sweep_of_x("duration") is None


def test_the_views_of_plotting_and_experiments_read_the_table():
    from alpa_serve.experiments.suites import build_suite
    from alpa_serve.plotting.figures import FIG11_ROWS, FIG12_PANELS, FIG13_PANELS, FIG14_PANELS
    from alpa_serve.plotting.markers import DIRECTION_BY_X

    assert DIRECTION_BY_X == {s.x: s.direction for s in SWEEPS}
    assert FIG11_ROWS[-1] == ("goodput_vs_slo", "goodput_vs_slo_scale")
    assert [t for _, t in FIG13_PANELS] == ["Devices", "Rate scale", "CV scale", "SLO scale"]
    for figure, panels in (("fig12", FIG12_PANELS), ("fig13", FIG13_PANELS),
                           ("fig14", FIG14_PANELS)):
        assert tuple(e for e, _ in panels) == FIGURE_SWEEPS[figure]
    for figure in FIGURE_SWEEPS:
        ran = list(dict.fromkeys(e.case.exp_name for e in build_suite(figure)))
        assert ran == list(FIGURE_SWEEPS[figure])

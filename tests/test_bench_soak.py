"""The arithmetic behind B8's verdicts (bench/soak_figures.py): a 30-minute soak
must not pass or fail on a slip in its percentile, its gap accounting or its
sizing table."""

from __future__ import annotations

import math
import sys
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import soak_figures as fig


def test_percentile_is_a_sample_never_an_interpolation() -> None:
    values = [float(v) for v in range(1, 101)]
    assert fig.percentile(values, 99) == 99.0
    assert fig.percentile(values, 100) == 100.0
    assert fig.percentile([5.0], 99) == 5.0
    assert math.isnan(fig.percentile([], 99))


@given(st.lists(st.floats(0, 1e4, allow_nan=False), min_size=1), st.floats(0, 100))
def test_percentile_property(values: list[float], q: float) -> None:
    found = fig.percentile(values, q)
    assert found in values
    assert sum(v <= found for v in values) >= q / 100 * len(values)


def test_growth_and_flat() -> None:
    assert fig.growth(100, 104) == 0.04
    assert fig.growth(100, 90) == -0.1
    assert fig.flat(40, 44) and not fig.flat(40, 45)
    assert fig.flat(100, 110) and not fig.flat(100, 111)
    assert fig.flat(120, 96)


def test_only_the_injected_fault_explains_a_gap() -> None:
    faults = [("cam-fault", 100.0, 110.0)]
    gaps = [
        fig.Gap("cam-fault", 98.0, 150.0, "source gone"),  # during and after
        fig.Gap("cam-fault", 165.0, 171.0, "late"),  # after the back-off bound
        fig.Gap("cam-001", 101.0, 105.0, "another camera"),
        fig.Gap("cam-fault", 10.0, 20.0, "before"),
    ]
    left = fig.unexplained(gaps, faults, after=50.0)
    assert [g.reason for g in left] == ["late", "another camera", "before"]
    assert fig.unexplained(gaps[:1], [], after=50.0) == gaps[:1]


def test_sizing() -> None:
    # 2 Mbit/s for a day: 21.6 GB of video; 4 Mbit/s twice that
    assert fig.storage_per_day(2e6) == 21.6e9
    assert fig.storage_per_day(4e6, overhead=0.01) == 43.2e9 * 1.01
    assert fig.cameras_per_core(0.005) == 200
    assert fig.cameras_per_core(0.005, utilisation=0.7) == 140
    assert fig.cameras_per_core(0) == math.inf


def test_worst_lag_is_placed_in_time() -> None:
    # the second sample was taken after two periods and its own 100 ms of lag
    at, lag = fig.worst([0.0, 100.0, 5.0], 0.1)
    assert (round(at, 9), lag) == (0.3, 100.0)

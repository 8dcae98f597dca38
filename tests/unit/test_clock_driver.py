"""The clock the now(x) builtin reads: UTC, truncated to its resolution, published
only when its value changes, one row."""

from __future__ import annotations

import pytest

from congress_ha.datasources.base import DriverError
from congress_ha.datasources.clock import ClockDriver, clock_value

T = 1796187723.9  # 2026-12-02 05:02:03.9 UTC


def test_the_value_is_utc_in_congress_format_truncated_to_the_resolution():
    assert clock_value(T, 1) == "2026-12-02 05:02:03"
    assert clock_value(T, 60) == "2026-12-02 05:02:00"
    assert clock_value(T, 3600) == "2026-12-02 05:00:00"


def test_one_row_published_when_the_value_changes_and_only_then():
    now = [T]
    sent = []
    driver = ClockDriver("builtin", {"resolution": 60}, lambda t, rows: sent.append((t, rows)),
                         clock=lambda: now[0])
    driver.poll()
    driver.poll()
    now[0] += 30  # 05:02:33, same minute
    driver.poll()
    now[0] += 30  # 05:03:03
    driver.poll()
    assert sent == [("now", [("2026-12-02 05:02:00",)]), ("now", [("2026-12-02 05:03:00",)])]
    assert driver.schema() == {"now": ["time"]}


@pytest.mark.parametrize("resolution", [0, 0.5, -1, "soon", float("nan")])
def test_a_bad_resolution_is_refused_naming_it(resolution):
    with pytest.raises(DriverError, match="resolution"):
        ClockDriver("builtin", {"resolution": resolution}, lambda *_: None)

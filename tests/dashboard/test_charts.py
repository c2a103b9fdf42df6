"""The SVG drawing on its own: round axes, escaped text, gaps, years that do not collide."""

from __future__ import annotations

import re

import pytest

from marketplace.dashboard.charts import Frame, Scale, Series, legend, lines, nice_top, row_bars
from marketplace.dashboard.charts import stacked_bars as bars


def frame(labels: tuple[str, ...], years: tuple[str, ...] | None = None,
          title: str = "Jobs") -> Frame:
    return Frame("chart-x", title, "What it shows.", labels, years or ("2026",) * len(labels),
                 lambda v: f"{v:g}", lambda v: f"{v:.2f}")


@pytest.mark.parametrize(("highest", "whole", "top"), [
    (7, True, 8), (3, True, 4), (1, True, 4), (0.05, False, 0.08), (2_500, False, 4_000),
    (0.3, False, 0.4), (1.0, False, 1.0), (123_456, False, 200_000),
])
def test_axis_tops_are_round_numbers_above_the_data(highest: float, whole: bool,
                                                    top: float) -> None:
    assert nice_top(highest, 4, whole) == pytest.approx(top)


def test_an_empty_chart_still_has_a_scale() -> None:
    assert Scale(empty_top=4.0).top_for(0) == 4.0
    assert Scale(top=5.0, steps=5).top_for(3.2) == 5.0


def test_a_chart_is_an_accessible_image_with_escaped_text() -> None:
    svg = bars(frame(("Jan", "Feb"), title="<script>alert(1)</script>"),
               [Series("Claimed & kept", (2, 1)), Series("Not taken", (1, None), 2)],
               Scale(whole=True))
    assert svg.startswith("<svg ") and 'role="img"' in svg
    assert 'aria-labelledby="chart-x-title chart-x-desc"' in svg
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert "Claimed &amp; kept" in svg and "style=" not in svg
    assert svg.count("<rect") == 3  # 2 + 1 for January, 1 for February, none for a gap
    assert "#D55E00" in svg  # the second series asked for the palette's vermillion
    assert "Not taken" in legend([Series("Not taken", (1,), 2)])


def test_a_line_breaks_where_a_month_has_no_figure() -> None:
    svg = lines(frame(("Jan", "Feb", "Mar", "Apr", "May")),
                [Series("Rate", (0.5, 0.6, None, 0.4, 0.5))], Scale())
    assert svg.count("<polyline") == 2 and svg.count("<circle") == 4


def test_the_year_is_written_once_where_it_changes_without_colliding() -> None:
    months = ("Dec", "Jan", "Feb", "Mar")
    svg = bars(frame(months, ("2025", "2026", "2026", "2026")), [Series("n", (1, 1, 1, 1))],
               Scale())
    years = re.findall(r">(20\d\d)</text>", svg)
    assert years == ["2026"]  # December's 2025 would overlap January's 2026
    svg = bars(frame(("Oct", "Nov", "Dec", "Jan"), ("2025", "2025", "2025", "2026")),
               [Series("n", (1, 1, 1, 1))], Scale())
    assert re.findall(r">(20\d\d)</text>", svg) == ["2025", "2026"]


def test_rows_have_their_names_and_values() -> None:
    svg = row_bars(frame(("Alpha", "=Beta")), Series("Received", (210.0, 0.0)))
    assert ">Alpha<" in svg and ">=Beta<" in svg and ">210.00<" in svg and ">0.00<" in svg

"""Charts drawn on the server as SVG: no JavaScript, no inline styles, readable on a phone.

The pages' Content-Security-Policy allows no inline script or style, so a
chart is plain SVG markup with presentation attributes (fill, stroke,
font-size), which the policy does not govern.  The drawing is sized for a
390 px phone (a 320-unit-wide view box, drawn about one unit per pixel there)
and scales up on wider screens.  Each chart is an image to assistive
technology (`role="img"` with a title and a description that states the key
figures); the page puts the same numbers in a real table next to it.

Text arrives translated and formatted (labels, month names, values): this
module knows geometry and colours, not languages or currencies.  Colours
are the Okabe-Ito palette, which stays distinguishable with the common
colour-vision deficiencies; the legend names every series in stack order.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

#: Okabe-Ito colours: blue, bluish green, vermillion, grey, orange, reddish purple.
PALETTE = ("#0072B2", "#009E73", "#D55E00", "#8C8C8C", "#E69F00", "#CC79A7")
INK, MUTED, GRID = "#1b1f1d", "#59615c", "#d5dbd6"
WIDTH = 320
HEIGHT = 200
LEFT, RIGHT, TOP, BOTTOM = 46, 6, 8, 30  # room for value ticks and two lines of months
FONT = 11
MAX_LABELS = 12  # month labels shown at most; beyond, every n-th
ROW_HEIGHT = 34  # one member per row: name above its bar

Format = Callable[[float], str]


@dataclass(frozen=True)
class Series:
    label: str
    values: tuple[float | None, ...]
    tone: int = 0  # index into PALETTE

    @property
    def colour(self) -> str:
        return PALETTE[self.tone % len(PALETTE)]


@dataclass(frozen=True)
class Frame:
    """What every chart has: an id for its title and description, the texts, the
    category labels (months, or members for a row chart) and the value formats."""

    chart_id: str
    title: str
    description: str
    labels: tuple[str, ...]
    years: tuple[str, ...]  # each month's year, shown under the first and where it changes
    short: Format  # tick labels: compact ("$12K")
    full: Format  # tooltips and row values: exact ("$12,345.00")


@dataclass(frozen=True)
class Scale:
    """How the value axis runs: to a fixed top (ratings: 5) or to a round number above
    the data, in `steps` ticks; whole numbers per step for counts; `empty_top` when
    there is nothing to draw (a 0-to-0 axis has no scale)."""

    top: float | None = None
    steps: int = 4
    whole: bool = False
    empty_top: float = 1.0

    def top_for(self, highest: float) -> float:
        if self.top is not None:
            return self.top
        if highest <= 0:
            return self.empty_top
        return nice_top(highest, self.steps, self.whole)


def nice_top(highest: float, steps: int = 4, whole: bool = False) -> float:
    """The smallest round axis top (1, 2, 2.5 or 5 times a power of ten per step) that
    holds `highest` (> 0); whole numbers per step for counts."""
    raw = highest / steps
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    if whole:
        step = max(1.0, float(math.ceil(step)))
    return step * steps


def _number(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _text(x: float, y: float, content: str, *, anchor: str = "middle", size: int = FONT,
          fill: str = INK) -> str:
    return (f'<text x="{_number(x)}" y="{_number(y)}" text-anchor="{anchor}" '
            f'font-size="{size}" fill="{fill}">{escape(content)}</text>')


def _open(frame: Frame, height: float) -> list[str]:
    chart_id = escape(frame.chart_id)
    return [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart-svg" role="img" '
            f'viewBox="0 0 {WIDTH} {_number(height)}" width="100%" '
            f'aria-labelledby="{chart_id}-title {chart_id}-desc" focusable="false">',
            f'<title id="{chart_id}-title">{escape(frame.title)}</title>',
            f'<desc id="{chart_id}-desc">{escape(frame.description)}</desc>']


def _year_marks(frame: Frame, shown: list[int]) -> set[int]:
    """Under which shown months to write the year: the first, and where it changes --
    but not the first when the change comes right after it (no room for both)."""
    marks = [i for n, i in enumerate(shown)
             if n == 0 or frame.years[i] != frame.years[shown[n - 1]]]
    if len(marks) > 1 and len(shown) > 1 and marks[1] == shown[1]:
        marks = marks[1:]
    return set(marks)


def _axis(frame: Frame, scale: Scale, highest: float
          ) -> tuple[list[str], Callable[[float], float]]:
    """Grid lines with value ticks, month labels, and the value -> y function."""
    top = scale.top_for(highest)
    plot_height = HEIGHT - TOP - BOTTOM
    parts = []
    for index in range(scale.steps + 1):
        value = top * index / scale.steps
        y = HEIGHT - BOTTOM - plot_height * index / scale.steps
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{_number(y)}" '
                     f'y2="{_number(y)}" stroke="{GRID}" stroke-width="1"/>')
        parts.append(_text(LEFT - 4, y + 4, frame.short(value), anchor="end", size=10,
                           fill=MUTED))
    band = (WIDTH - LEFT - RIGHT) / max(len(frame.labels), 1)
    every = math.ceil(len(frame.labels) / MAX_LABELS)
    shown = list(range(0, len(frame.labels), every))
    years = _year_marks(frame, shown)
    for index in shown:
        x = LEFT + band * (index + 0.5)
        parts.append(_text(x, HEIGHT - BOTTOM + 13, frame.labels[index], size=10))
        if index in years:
            parts.append(_text(x, HEIGHT - BOTTOM + 25, frame.years[index], size=10,
                               fill=MUTED))
    return parts, lambda value: HEIGHT - BOTTOM - plot_height * min(value, top) / top


def stacked_bars(frame: Frame, series: Sequence[Series], scale: Scale) -> Markup:
    """A bar per month, the series stacked bottom-up in the legend's order."""
    totals = [sum(s.values[i] or 0 for s in series) for i in range(len(frame.labels))]
    parts, y_of = _axis(frame, scale, max(totals, default=0))
    band = (WIDTH - LEFT - RIGHT) / max(len(frame.labels), 1)
    width = max(band * 0.7, 2)
    for index, label in enumerate(frame.labels):
        base = 0.0
        x = LEFT + band * index + (band - width) / 2
        for one in series:
            value = one.values[index] or 0
            if value <= 0:
                continue
            upper, lower = y_of(base + value), y_of(base)
            parts.append(f'<rect x="{_number(x)}" y="{_number(upper)}" width="{_number(width)}" '
                         f'height="{_number(max(lower - upper, 0.5))}" fill="{one.colour}">'
                         f'<title>{escape(label)}, {escape(one.label)}: '
                         f'{escape(frame.full(value))}</title></rect>')
            base += value
    return Markup("".join([*_open(frame, HEIGHT), *parts, "</svg>"]))


def lines(frame: Frame, series: Sequence[Series], scale: Scale) -> Markup:
    """A line per series over the months; a month without a value breaks the line."""
    highest = max((v for s in series for v in s.values if v is not None), default=0)
    parts, y_of = _axis(frame, scale, highest)
    band = (WIDTH - LEFT - RIGHT) / max(len(frame.labels), 1)
    for one in series:
        runs: list[list[tuple[float, float]]] = [[]]
        for index, value in enumerate(one.values):
            if value is None:
                runs.append([])
                continue
            point = (LEFT + band * (index + 0.5), y_of(value))
            runs[-1].append(point)
            parts.append(f'<circle cx="{_number(point[0])}" cy="{_number(point[1])}" r="3.5" '
                         f'fill="{one.colour}"><title>{escape(frame.labels[index])}, '
                         f'{escape(one.label)}: {escape(frame.full(value))}</title></circle>')
        for run in runs:
            if len(run) > 1:
                points = " ".join(f"{_number(x)},{_number(y)}" for x, y in run)
                parts.append(f'<polyline points="{points}" fill="none" stroke="{one.colour}" '
                             f'stroke-width="2.5" stroke-linejoin="round"/>')
    return Markup("".join([*_open(frame, HEIGHT), *parts, "</svg>"]))


def row_bars(frame: Frame, series: Series) -> Markup:
    """One horizontal bar per row (a member), its name above and its value beside it."""
    height = TOP + ROW_HEIGHT * max(len(frame.labels), 1)
    highest = max((v or 0 for v in series.values), default=0)
    room = WIDTH - 90  # the rest holds the value written after the bar
    parts = _open(frame, height)
    for index, (label, value) in enumerate(zip(frame.labels, series.values, strict=True)):
        top = TOP + ROW_HEIGHT * index
        length = room * (value or 0) / highest if highest > 0 else 0
        parts.append(_text(0, top + 11, label, anchor="start"))
        parts.append(f'<rect x="0" y="{_number(top + 15)}" width="{_number(max(length, 1))}" '
                     f'height="12" fill="{series.colour}"/>')
        parts.append(_text(length + 4, top + 25, frame.full(value or 0), anchor="start",
                           size=10, fill=MUTED))
    return Markup("".join([*parts, "</svg>"]))


def legend(series: Sequence[Series]) -> Markup:
    """The series' names with their colour swatches, as an HTML list (the chart itself
    is one image to assistive technology; the table carries the numbers)."""
    items = "".join(
        f'<li><svg width="12" height="12" aria-hidden="true" focusable="false">'
        f'<rect width="12" height="12" rx="2" fill="{one.colour}"/></svg> '
        f"{escape(one.label)}</li>" for one in series)
    return Markup(f'<ul class="legend">{items}</ul>')

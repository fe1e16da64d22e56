"""Line charts drawn on the server: the points and paths of an inline <svg>, with no script and nothing
fetched. A day without a value leaves a gap in its line rather than a fall to zero."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

WIDTH, HEIGHT = 480, 200
LEFT, RIGHT, TOP, BOTTOM = 40, 20, 10, 24  # room for the axes' labels


@dataclass(frozen=True)
class Series:
    name: str  # as the legend says it
    key: str  # names its colour in the stylesheet (`.series-<key>`)
    values: Sequence[float | None]  # one per day; None where there is nothing to show


@dataclass(frozen=True)
class Point:
    x: str  # coordinates written out, so no locale's decimal comma reaches the SVG
    y: str
    label: str  # what a pointer hovering on it is told


@dataclass(frozen=True)
class Line:
    name: str
    key: str
    paths: list[str]  # one `d` per unbroken run of days
    points: list[Point]


@dataclass(frozen=True)
class Tick:
    at: str
    label: str


@dataclass(frozen=True)
class Chart:
    title: str
    unit: str
    lines: list[Line]
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    top: int = TOP
    bottom: int = HEIGHT - BOTTOM

    @property
    def label_x(self) -> int:
        """Where the value axis's labels end."""
        return self.left - 4

    @property
    def label_y(self) -> int:
        """Where the day axis's labels sit."""
        return self.height - 6

    @property
    def empty(self) -> bool:
        return not any(line.points for line in self.lines)

    def marks(self) -> SafeString:
        """The chart's axes, lines and points as SVG elements, each point titled with its value (written
        here rather than looped over in a template: a page holds hundreds of them)."""
        grid = format_html_join(
            "",
            '<line x1="{}" x2="{}" y1="{}" y2="{}"></line>'
            '<text x="{}" y="{}" text-anchor="end" dominant-baseline="middle">{}</text>',
            ((self.left, self.right, t.at, t.at, self.label_x, t.at, t.label) for t in self.y_ticks),
        )
        days = format_html_join(
            "",
            '<text x="{}" y="{}" text-anchor="middle">{}</text>',
            ((t.at, self.label_y, t.label) for t in self.x_ticks),
        )
        lines = format_html_join(
            "",
            '<g class="series series-{}">{}{}</g>',
            (
                (
                    line.key,
                    format_html_join("", '<path d="{}"></path>', ((d,) for d in line.paths)),
                    format_html_join(
                        "",
                        '<circle cx="{}" cy="{}" r="2.5"><title>{}</title></circle>',
                        ((p.x, p.y, p.label) for p in line.points),
                    ),
                )
                for line in self.lines
            ),
        )
        return format_html('<g class="axis">{}{}</g>{}', grid, days, lines)


def _nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × a power of ten at or above `value` (1 at least)."""
    if value <= 1:
        return 1.0
    power = 1.0
    while power * 10 < value:
        power *= 10
    return next(step * power for step in (1, 2, 2.5, 5, 10) if step * power >= value)


def _number(value: float) -> str:
    return f"{value:.0f}" if value == int(value) else f"{value:.1f}"


def day_label(day: date) -> str:
    return f"{day.day} {day:%b}"


def line_chart(
    *, title: str, days: Sequence[date], series: Sequence[Series], unit: str, y_max: float | None = None
) -> Chart:
    """A chart of one value per day for each series, on a shared scale from 0 to `y_max` (by default
    a round number at or above the largest value)."""
    values = [v for s in series for v in s.values if v is not None]
    top_value = y_max if y_max is not None else _nice_ceiling(max(values, default=0.0))
    chart = Chart(title=title, unit=unit, lines=[], y_ticks=[], x_ticks=[])
    span_x = chart.right - chart.left
    span_y = chart.bottom - chart.top
    step = span_x / max(len(days) - 1, 1)

    def x_of(index: int) -> float:
        return chart.left + index * step

    def y_of(value: float) -> float:
        return chart.bottom - min(value, top_value) / top_value * span_y

    for s in series:
        paths: list[str] = []
        points: list[Point] = []
        run: list[str] = []
        for index, value in enumerate(s.values):
            if value is None:
                if run:
                    paths.append(" ".join(run))
                run = []
                continue
            x, y = x_of(index), y_of(value)
            run.append(f"{'L' if run else 'M'}{x:.1f} {y:.1f}")
            points.append(Point(f"{x:.1f}", f"{y:.1f}", f"{s.name}, {day_label(days[index])}: {_number(value)} {unit}"))
        if run:
            paths.append(" ".join(run))
        chart.lines.append(Line(name=s.name, key=s.key, paths=paths, points=points))
    chart.y_ticks.extend(Tick(f"{y_of(top_value * share):.1f}", _number(top_value * share)) for share in (0, 0.5, 1))
    shown = sorted(range(len(days) - 1, -1, -7))  # a week apart, counted back from the last day
    chart.x_ticks.extend(Tick(f"{x_of(index):.1f}", day_label(days[index])) for index in shown)
    return chart

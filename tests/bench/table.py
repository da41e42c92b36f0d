"""The one table the benchmark prints: sections of rows, each row a metric with its value, unit,
target and verdict (ok / over / blank when there is no target), plus a JSON form for tests."""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable


@dataclass
class Row:
    key: str  # stable identifier (for --json and the smoke test)
    metric: str  # what a reader sees
    value: Any  # number, text or None (not measured)
    unit: str = ""
    target: str = ""
    verdict: str = ""  # ok | over | "" (no target) | n/a
    note: str = ""

    def shown_value(self) -> str:
        if self.value is None:
            return "n/a"
        if isinstance(self.value, bool):
            return "yes" if self.value else "no"
        if isinstance(self.value, float):
            return fmt(self.value)
        return str(self.value)


@dataclass
class Section:
    title: str
    note: str = ""
    rows: list[Row] = field(default_factory=list)

    def add(self, key: str, metric: str, value: Any, unit: str = "", target: str = "",
            verdict: str = "", note: str = "") -> Row:
        row = Row(key, metric, value, unit, target, verdict, note)
        self.rows.append(row)
        return row


def fmt(value: float) -> str:
    if value != value:  # NaN
        return "n/a"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def at_most(value: float | None, limit: float) -> str:
    """Verdict for a 'lower is better' target."""
    if value is None:
        return "n/a"
    return "ok" if value <= limit else "over"


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(values: Iterable[float]) -> float | None:
    values = list(values)
    return statistics.median(values) if values else None


class Table:
    COLUMNS = ("metric", "value", "unit", "target", "")

    def __init__(self, title: str, header_lines: list[str] | None = None):
        self.title = title
        self.header_lines = header_lines or []
        self.footer_lines: list[str] = []
        self.sections: list[Section] = []

    def section(self, title: str, note: str = "") -> Section:
        section = Section(title, note)
        self.sections.append(section)
        return section

    def rows(self) -> list[Row]:
        return [row for section in self.sections for row in section.rows]

    def render(self) -> str:
        cells = [(r.metric, r.shown_value(), r.unit, r.target, r.verdict) for r in self.rows()]
        widths = [max([len(c) for c in column] + [len(h)]) for column, h in zip(zip(*cells), self.COLUMNS)] if cells \
            else [len(h) for h in self.COLUMNS]
        widths[0] = max(widths[0], 30)
        total = sum(widths) + 2 * (len(widths) - 1)

        def line(values: tuple[str, ...]) -> str:
            metric, value, unit, target, verdict = values
            return "  ".join((metric.ljust(widths[0]), value.rjust(widths[1]), unit.ljust(widths[2]),
                              target.ljust(widths[3]), verdict.ljust(widths[4]))).rstrip()

        out = [self.title, *self.header_lines, "=" * total, line(self.COLUMNS), "=" * total]
        for section in self.sections:
            out.append(f"[{section.title}]" + (f"  {section.note}" if section.note else ""))
            for row in section.rows:
                out.append(line((row.metric, row.shown_value(), row.unit, row.target, row.verdict)))
                if row.note:
                    out.append(" " * 4 + row.note)
            out.append("-" * total)
        out += self.footer_lines
        return "\n".join(out)

    def to_json(self) -> str:
        return json.dumps(
            {
                "title": self.title,
                "header": self.header_lines,
                "footer": self.footer_lines,
                "sections": [
                    {"title": s.title, "note": s.note, "rows": [asdict(r) for r in s.rows]} for s in self.sections
                ],
            },
            indent=1,
            default=str,
        )

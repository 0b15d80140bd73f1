"""How comparison figures are shown to people: the compare-versions table, its markdown, the verdict's
reason, and where each figure comes from.

Used by ``lightning/commands/compare.py`` (the terminal table, ``--markdown``/``--markdown-file``,
``--json`` and the chart's captions), and through it by ``make demo`` (``lightning/demo.py`` runs
``compare-versions`` as a user would). The service (``lightning.services.comparison``) returns data;
this module writes the words and numbers. It lives next to the commands because the CLI is what
prints; the import-linter contract that keeps services away from ``lightning.commands`` keeps
presentation from creeping back into a service.

Where a figure comes from is named from its ``source`` field, never from the metric's name:
``ground truth`` (recorded on the episodes, or labeled by people) or ``judge-estimated (<evaluator>)``
(an evaluator's labels: an estimate, not a known answer). The workshop's row names stay as they are;
the table's Source column, a footnote, the verdict's reason and the chart say which is which.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lightning.services.comparison import (
    ComparisonReport,
    FigureSource,
    MetricComparison,
    MetricResult,
    MetricUnit,
    SideMetric,
)

__all__ = [
    "PRIMARY_FOOTNOTE",
    "RESULT_TEXT",
    "SOURCE_TEXT",
    "figure_name",
    "figure_source",
    "format_difference",
    "format_p",
    "format_side",
    "format_value",
    "judges",
    "render_markdown",
    "report_document",
    "source_footnote",
    "table_columns",
    "table_rows",
    "verdict_reason",
]

PRIMARY_FOOTNOTE = "* primary metric (decides the verdict)"

SOURCE_TEXT: dict[FigureSource, str] = {
    "ground_truth": "ground truth",
    "judge": "judge-estimated",
}


# --- one figure ----------------------------------------------------------------------------------


def format_value(unit: MetricUnit, value: float | None) -> str:
    if value is None:
        return "n/a"
    if unit == "percent":
        return f"{value * 100:.1f}%"
    if unit == "score":
        return f"{value:.3f}"
    return f"{value:,.0f} ms"


def _format_bound(unit: MetricUnit, value: float) -> str:
    if unit == "percent":
        return f"{value * 100:.1f}"
    if unit == "score":
        return f"{value:.3f}"
    return f"{value:,.0f}"


def format_side(row: MetricComparison, side: SideMetric, *, multiline: bool = False) -> str:
    """``82.0% (n=50) [69.2–90.2]``: the figure, how many episodes it rests on, its interval."""
    text = f"{format_value(row.unit, side.value)} (n={side.n})"
    if side.low is not None and side.high is not None:
        sep = "\n" if multiline else " "
        text += f"{sep}[{_format_bound(row.unit, side.low)}–{_format_bound(row.unit, side.high)}]"
    return text


def format_difference(row: MetricComparison, *, multiline: bool = False) -> str:
    if row.difference is None:
        return row.note or "n/a"
    if row.unit == "percent":
        text = f"{row.difference * 100:+.1f} pp"
    elif row.unit == "score":
        text = f"{row.difference:+.3f}"
    else:
        text = f"{row.difference:+,.0f} ms"
    if row.difference_low is not None and row.difference_high is not None:
        sep = "\n" if multiline else " "
        low, high = _signed_bound(row.unit, row.difference_low), _signed_bound(row.unit, row.difference_high)
        text += f"{sep}[{low}, {high}]"
    return text


def _signed_bound(unit: MetricUnit, value: float) -> str:
    if unit == "percent":
        return f"{value * 100:+.1f}"
    if unit == "score":
        return f"{value:+.3f}"
    return f"{value:+,.0f}"


def format_p(p_value: float | None) -> str:
    if p_value is None:
        return "–"
    if p_value < 0.001:
        return "<0.001"
    return f"{p_value:.3f}"


def _p_expression(p_value: float | None) -> str:
    text = format_p(p_value)
    return f"p{text}" if text.startswith("<") else f"p={text}"


RESULT_TEXT: dict[MetricResult, str] = {
    "better": "better",
    "worse": "worse",
    "no_difference": "not significant",
    "not_enough_data": "not enough data",
}


# --- where a figure comes from -------------------------------------------------------------------


def judges(report: ComparisonReport) -> list[str]:
    """Who gave the labels that are estimates, on either side: evaluator names, then rewards of unknown origin."""
    seen = {*report.baseline.label_sources, *report.candidate.label_sources} - {"human"}
    names = sorted(seen - {"unknown"})
    if "unknown" in seen:
        names.append("rewards of unknown origin")
    return names


def figure_source(report: ComparisonReport, row: MetricComparison | None) -> str:
    """``ground truth`` or ``judge-estimated (rubric)``; ``None`` is the episode counts (ground truth)."""
    if row is None or row.source == "ground_truth":
        return SOURCE_TEXT["ground_truth"]
    names = judges(report)
    return f"{SOURCE_TEXT['judge']} ({', '.join(names)})" if names else SOURCE_TEXT["judge"]


def figure_name(row: MetricComparison, *, prose: bool = False) -> str:
    """The metric's workshop name, saying so when the figure is the judge's estimate:
    ``Tool Selection Accuracy (judge-estimated)``, or in a sentence ``judge-estimated Tool Selection Accuracy``."""
    if row.source == "ground_truth":
        return row.name
    judged = SOURCE_TEXT["judge"]
    return f"{judged} {row.name}" if prose else f"{row.name} ({judged})"


def source_footnote(report: ComparisonReport) -> str:
    """The line under the table that says what its Source column means."""
    truth = "ground truth = recorded on the episodes or labeled by people"
    if not any(row.source == "judge" for row in report.metrics):
        return f"Source: {truth}."
    names = judges(report)
    by = f" ({', '.join(names)})" if names else ""
    return f"Source: {SOURCE_TEXT['judge']} = from an evaluator's labels{by}, an estimate, not known answers; {truth}."


# --- the verdict ---------------------------------------------------------------------------------


def verdict_reason(report: ComparisonReport) -> str:
    """Why the verdict is what it is, naming the metrics behind it with their figures."""
    verdict = report.verdict
    rows = [report.metric(key) for key in verdict.metrics]
    if verdict.outcome == "not_enough_data" and rows and verdict.short_side is not None:
        row = rows[0]
        side, summary = (
            (row.baseline, report.baseline)
            if verdict.short_side == "baseline"
            else (row.candidate, report.candidate)
        )
        return (
            f"{figure_name(row, prose=True)} has {side.n} usable episodes on the {summary.label} side; "
            f"a verdict needs at least {report.min_samples} on each side "
            "(capture and label more episodes, or widen the window)"
        )
    if verdict.outcome == "worse":
        return "significant regression in " + _list_changes(rows)
    if verdict.outcome == "better":
        return "significant improvement in " + _list_changes(rows) + "; no significant regression"
    return "no primary metric (tool accuracy, average reward, error rate) changed significantly"


def _list_changes(rows: Sequence[MetricComparison]) -> str:
    return ", ".join(
        f"{figure_name(row, prose=True)} ({format_difference(row)}, {_p_expression(row.decision_p_value)})"
        for row in rows
    )


# --- the report ----------------------------------------------------------------------------------

TABLE_COLUMNS = ("Metric", "{before}", "{after}", "Difference", "p-value", "Result", "Source")


def table_columns(report: ComparisonReport) -> list[str]:
    return [c.format(before=report.baseline.label, after=report.candidate.label) for c in TABLE_COLUMNS]


def table_rows(report: ComparisonReport, *, multiline: bool = False) -> list[list[str]]:
    """The workshop's before/after table, one row per metric, plus the episode counts.

    ``multiline`` puts intervals on a second line, so the table fits a terminal.
    """
    rows: list[list[str]] = []
    for row in report.metrics:
        name = f"{row.name} %" if row.unit == "percent" else row.name
        if row.primary:
            name += " *"
        result = row.note if row.result == "not_enough_data" and row.note else RESULT_TEXT[row.result]
        rows.append(
            [
                name,
                format_side(row, row.baseline, multiline=multiline),
                format_side(row, row.candidate, multiline=multiline),
                format_difference(row, multiline=multiline),
                format_p(row.decision_p_value),
                result,
                figure_source(report, row),
            ]
        )
    rows.append(
        [
            "Episodes (labeled)",
            f"{report.baseline.episodes:,} ({report.baseline.labeled:,})",
            f"{report.candidate.episodes:,} ({report.candidate.labeled:,})",
            f"{report.candidate.episodes - report.baseline.episodes:+,}",
            "–",
            "",
            figure_source(report, None),
        ]
    )
    return rows


def render_markdown(report: ComparisonReport) -> str:
    """The report as GitHub-flavoured markdown, for a pull request or a run log."""
    columns = table_columns(report)

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    out = [
        f"## compare-versions: {report.agent_id}",
        "",
        f"- **{report.baseline.label}**: {report.baseline.filter}",
        f"- **{report.candidate.label}**: {report.candidate.filter}",
        "",
        line(columns),
        line(["---"] * len(columns)),
        *(line(row) for row in table_rows(report)),
        "",
        f"**{report.verdict.line}** — {verdict_reason(report)}",
        "",
        f"\\{PRIMARY_FOOTNOTE}.",
        "",
        source_footnote(report),
        "",
        *(f"- {note}" for note in report.notes),
        "",
    ]
    return "\n".join(out)


def report_document(report: ComparisonReport) -> dict[str, Any]:
    """The report as JSON-ready data (``--json``), with the verdict's reason in words."""
    document = report.model_dump(mode="json")
    verdict = document["verdict"]
    document["verdict"] = {
        "outcome": verdict.pop("outcome"),
        "line": verdict.pop("line"),
        "reason": verdict_reason(report),
        **verdict,
    }
    return document

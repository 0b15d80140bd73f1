"""``compare-versions``: the workshop's before/after table, with confidence intervals and a verdict.

Parses the flags, calls ``services.comparison.compare_versions`` once and
prints the report as a table (default), ``--json``, ``--markdown``,
``--markdown-file FILE`` and/or ``--chart out.png``; the words and numbers
come from ``lightning.commands.presentation``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from rich.text import Text

from lightning.commands._common import console, container, parse_datetime, print_json
from lightning.commands.presentation import (
    PRIMARY_FOOTNOTE,
    RESULT_TEXT,
    figure_name,
    format_difference,
    render_markdown,
    report_document,
    source_footnote,
    table_columns,
    table_rows,
    verdict_reason,
)
from lightning.domain.errors import InvalidInput
from lightning.services.comparison import CompareRequest, ComparisonReport, compare_versions


def register(app: typer.Typer) -> None:
    @app.command("compare-versions")
    def compare_versions_command(
        agent_id: str = typer.Option(..., "--agent-id", help="Agent whose episodes to compare."),
        before_date: str | None = typer.Option(
            None, "--before-date", help="Before side: episodes with timestamp < this (ISO 8601)."
        ),
        after_date: str | None = typer.Option(
            None, "--after-date", help="After side: episodes with timestamp >= this (ISO 8601)."
        ),
        baseline_model: str | None = typer.Option(
            None, "--baseline-model", help="Before side: episodes of this model_version."
        ),
        candidate_model: str | None = typer.Option(
            None, "--candidate-model", help="After side: episodes of this model_version."
        ),
        since: str | None = typer.Option(None, "--since", help="Both sides: timestamp >= this."),
        until: str | None = typer.Option(None, "--until", help="Both sides: timestamp < this."),
        min_samples: int = typer.Option(
            30, "--min-samples", min=2, help="Fewest episodes per side before a metric is tested."
        ),
        confidence: float = typer.Option(
            0.95, "--confidence", min=0.5, max=0.999, help="Confidence level of intervals and tests."
        ),
        resamples: int = typer.Option(
            2000, "--resamples", min=100, max=100_000, help="Bootstrap resamples (reward, latency)."
        ),
        seed: int = typer.Option(0, "--seed", help="Bootstrap seed: the same seed gives the same numbers."),
        as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
        chart: Path | None = typer.Option(None, "--chart", help="Write a PNG chart of the metrics here."),
        markdown: bool = typer.Option(False, "--markdown", help="Print the report as markdown."),
        markdown_file: Path | None = typer.Option(
            None, "--markdown-file", help="Also write the report as markdown to this file ('-': stdout)."
        ),
    ) -> None:
        """Compare episode quality before and after fine-tuning (or between two model versions)."""
        # typer's parser has no optional option values, so "--markdown [FILE]" is two options.
        if markdown_file is not None and str(markdown_file) == "-":
            markdown, markdown_file = True, None
        if as_json and markdown:
            raise InvalidInput("--json and --markdown both print to stdout; use --markdown-file FILE")
        _check_writable(chart, "--chart")
        _check_writable(markdown_file, "--markdown-file")
        request = _request(
            agent_id=agent_id,
            before_date=parse_datetime(before_date, flag="--before-date"),
            after_date=parse_datetime(after_date, flag="--after-date"),
            baseline_model=baseline_model,
            candidate_model=candidate_model,
            since=parse_datetime(since, flag="--since"),
            until=parse_datetime(until, flag="--until"),
            min_samples=min_samples,
            confidence=confidence,
            resamples=resamples,
            seed=seed,
        )
        report = compare_versions(request, episodes=container().episodes)
        if chart is not None:
            _write_chart(report, chart)
        if markdown_file is not None:
            _write_text(markdown_file, render_markdown(report))
        if as_json:
            print_json(report_document(report))
        elif markdown:
            sys.stdout.write(render_markdown(report))
        else:
            _print_report(report, chart=chart, markdown_file=markdown_file)


def _request(**fields: object) -> CompareRequest:
    try:
        return CompareRequest.model_validate(fields)
    except ValidationError as exc:
        error = exc.errors()[0]
        flag = "--" + "-".join(str(part) for part in error["loc"]).replace("_", "-")
        raise InvalidInput(f"{flag}: {error['msg']}") from None


def _print_report(report: ComparisonReport, *, chart: Path | None, markdown_file: Path | None) -> None:
    out = _console()
    out.print(f"{report.baseline.label}: {report.baseline.filter}", markup=False)
    out.print(f"{report.candidate.label}: {report.candidate.filter}", markup=False)
    table = Table(title=f"compare-versions: {report.agent_id}")
    for index, column in enumerate(table_columns(report)):
        # Metric names wrap at spaces only, never inside a word.
        table.add_column(column, min_width=14 if index == 0 else None)
    for row in table_rows(report, multiline=True):
        table.add_row(*(Text(cell) for cell in row))
    out.print(table)
    out.print(f"{report.verdict.line} — {verdict_reason(report)}", markup=False)
    out.print(PRIMARY_FOOTNOTE, markup=False)
    out.print(source_footnote(report), markup=False)
    for note in report.notes:
        out.print(f"- {note}", markup=False)
    if chart is not None:
        out.print(f"Chart: {chart}", markup=False)
    if markdown_file is not None:
        out.print(f"Markdown: {markdown_file}", markup=False)


def _console() -> Console:
    # Piped or captured output has no terminal width; rich would assume 80 columns and wrap every cell
    # of a seven-column table, so it gets room for one line per row instead.
    out = console()
    if not out.is_terminal:
        out.width = max(out.width, 160)
    return out


def _check_writable(path: Path | None, flag: str) -> None:
    # Checked before the comparison runs, so a typo in a path does not cost a full bootstrap.
    if path is not None and not path.parent.is_dir():
        raise InvalidInput(f"{flag} {str(path)!r}: directory {str(path.parent)!r} does not exist")


def _write_text(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot write {str(path)!r}: {exc.strerror or exc}") from None


def _write_chart(report: ComparisonReport, path: Path) -> None:
    from lightning.adapters.charts import ChartBar, ChartMetric, write_comparison_chart

    metrics = [
        ChartMetric(
            name=figure_name(row),
            unit=row.unit,
            baseline=ChartBar(row.baseline.value, row.baseline.low, row.baseline.high, row.baseline.n),
            candidate=ChartBar(row.candidate.value, row.candidate.low, row.candidate.high, row.candidate.n),
            caption=row.note or f"{RESULT_TEXT[row.result]}: {format_difference(row)}",
        )
        for row in report.metrics
    ]
    write_comparison_chart(
        path,
        metrics=metrics,
        labels=(report.baseline.label, report.candidate.label),
        title=f"compare-versions: {report.agent_id}",
        subtitle=f"{round(report.confidence * 100)}% confidence intervals · {report.verdict.line}",
    )

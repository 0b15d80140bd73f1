"""The ``compare-versions --chart`` picture: per-metric bars with 95% CI error bars, as a PNG.

Called by ``lightning/commands/compare.py``. matplotlib is an optional
dependency (``lightning-loop[charts]``) and is imported only when a chart is
drawn. The figure is built on the object API with the Agg canvas — no
``pyplot`` global state, no display needed, safe in a server or a test.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from lightning.domain.errors import ConfigurationError, InvalidInput

BASELINE_COLOR = "#8c8c8c"
CANDIDATE_COLOR = "#1f6fb4"


@dataclass(frozen=True, slots=True)
class ChartBar:
    """One side of one metric: the value and its interval (None when the side has no data)."""

    value: float | None
    low: float | None = None
    high: float | None = None
    n: int = 0


@dataclass(frozen=True, slots=True)
class ChartMetric:
    """One panel: a metric, its unit, both sides, and an optional caption (the result or a warning)."""

    name: str
    unit: Literal["percent", "score", "ms"]
    baseline: ChartBar
    candidate: ChartBar
    caption: str = ""


def _scale(unit: str, value: float) -> float:
    return value * 100.0 if unit == "percent" else value


def _axis_label(unit: str) -> str:
    return {"percent": "%", "score": "score (0–1)", "ms": "milliseconds"}.get(unit, "")


def write_comparison_chart(
    path: Path,
    *,
    metrics: Sequence[ChartMetric],
    labels: tuple[str, str],
    title: str,
    subtitle: str = "",
) -> Path:
    """Draw one panel per metric (baseline and candidate bars, CI whiskers) and save a PNG at ``path``."""
    if not metrics:
        raise InvalidInput("nothing to chart: no metrics")
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ConfigurationError("--chart needs matplotlib: pip install 'lightning-loop[charts]'") from None

    columns = min(3, len(metrics))
    rows = (len(metrics) + columns - 1) // columns
    figure = Figure(figsize=(4.2 * columns, 3.6 * rows + 0.9), dpi=110, layout="constrained")
    FigureCanvasAgg(figure)
    figure.suptitle(f"{title}\n{subtitle}" if subtitle else title, fontsize=11)
    axes = figure.subplots(rows, columns, squeeze=False)
    for index, metric in enumerate(metrics):
        _panel(axes[index // columns][index % columns], metric, labels)
    for index in range(len(metrics), rows * columns):
        axes[index // columns][index % columns].set_visible(False)
    try:
        figure.savefig(path, format="png")
    except OSError as exc:
        raise InvalidInput(f"cannot write the chart to {str(path)!r}: {exc.strerror or exc}") from None
    return path


def _panel(ax: Any, metric: ChartMetric, labels: tuple[str, str]) -> None:
    sides = (metric.baseline, metric.candidate)
    colors = (BASELINE_COLOR, CANDIDATE_COLOR)
    top = 0.0
    for position, (bar, color) in enumerate(zip(sides, colors, strict=True)):
        if bar.value is None:
            ax.text(position, 0, "no data", ha="center", va="bottom", fontsize=8, color="#555555")
            continue
        value = _scale(metric.unit, bar.value)
        error = None
        if bar.low is not None and bar.high is not None:
            low, high = _scale(metric.unit, bar.low), _scale(metric.unit, bar.high)
            # Whiskers are distances from the bar top; clamp at 0 against rounding at the edges.
            error = [[max(0.0, value - low)], [max(0.0, high - value)]]
            top = max(top, high)
        top = max(top, value)
        ax.bar(position, value, width=0.6, color=color, yerr=error, capsize=6, ecolor="#222222")
        text = f"{value:.1f}" if metric.unit != "score" else f"{value:.3f}"
        # Above the whisker, so the label never sits on the interval it describes.
        anchor = value if bar.high is None else max(value, _scale(metric.unit, bar.high))
        ax.annotate(
            f"{text}\nn={bar.n}",
            (position, anchor),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.set_xticks([0, 1], [_short(labels[0]), _short(labels[1])], fontsize=8)
    ax.set_title(metric.name, fontsize=10)
    ax.set_ylabel(_axis_label(metric.unit), fontsize=8)
    # Scaled to the data (an error rate of 3% must not be a sliver on a 0–100 axis), with room for labels.
    ceiling = top * 1.3 if top > 0 else 1.0
    ax.set_ylim(0, min(ceiling, 112.0) if metric.unit == "percent" and top > 0 else ceiling)
    if metric.caption:
        ax.set_xlabel(metric.caption, fontsize=8)


def _short(label: str, width: int = 28) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"

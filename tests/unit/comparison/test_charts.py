"""The --chart adapter writes a real, non-empty PNG with matplotlib (Agg), including sides with no data."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from lightning.adapters.charts import ChartBar, ChartMetric, write_comparison_chart
from lightning.domain.errors import InvalidInput

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _metrics() -> list[ChartMetric]:
    return [
        ChartMetric(
            "Tool Selection Accuracy",
            "percent",
            ChartBar(0.6, 0.53, 0.66, 200),
            ChartBar(0.9, 0.85, 0.93, 200),
        ),
        ChartMetric(
            "Average Reward Score", "score", ChartBar(0.55, 0.53, 0.57, 200), ChartBar(0.79, 0.77, 0.8, 200)
        ),
        ChartMetric("Error Rate", "percent", ChartBar(0.12, 0.08, 0.17, 200), ChartBar(0.0, 0.0, 0.02, 200)),
        ChartMetric(
            "Latency p95",
            "ms",
            ChartBar(1100.0, 1050.0, 1140.0, 200),
            ChartBar(None),
            "not enough data (n=0)",
        ),
    ]


def test_chart_is_a_valid_non_empty_png(tmp_path: Path) -> None:
    path = write_comparison_chart(
        tmp_path / "out.png",
        metrics=_metrics(),
        labels=("Before Fine-Tuning", "After Fine-Tuning"),
        title="compare-versions: autonomous-agent",
        subtitle="Verdict: candidate better",
    )
    data = path.read_bytes()
    assert len(data) > 10_000
    width, height = _png_size(data)
    assert width > 800
    assert height > 400
    assert data.endswith(b"IEND\xaeB`\x82")


def test_one_metric_still_charts(tmp_path: Path) -> None:
    path = write_comparison_chart(tmp_path / "one.png", metrics=_metrics()[:1], labels=("a", "b"), title="t")
    assert _png_size(path.read_bytes())[0] > 0


def test_unwritable_path_is_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="cannot write the chart"):
        write_comparison_chart(
            tmp_path / "missing" / "out.png", metrics=_metrics(), labels=("a", "b"), title="t"
        )
    with pytest.raises(InvalidInput, match="nothing to chart"):
        write_comparison_chart(tmp_path / "x.png", metrics=[], labels=("a", "b"), title="t")

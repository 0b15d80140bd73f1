"""The five analytics tools: periods, argument validation, and results holding the rubric's keys."""

from __future__ import annotations

import pytest

from lightning.adapters.registry.yaml_registry import YamlAgentRegistry
from lightning.agent.queries import generate_queries, workshop_samples
from lightning.agent.sample_data import DATA_DIR, generate, load_sample_data
from lightning.agent.tools import parse_period, run_tool, summarize, validate_arguments
from lightning.domain.errors import InvalidInput

AS_OF = "2026-11-01"


@pytest.mark.parametrize(
    ("text", "first", "last", "future"),
    [
        ("Q4 2025", "2025-10", "2025-12", False),
        ("q1-2026", "2026-01", "2026-03", False),
        ("2025 Q2", "2025-04", "2025-06", False),
        ("H1 2026", "2026-01", "2026-06", False),
        ("2025", "2025-01", "2025-12", False),
        ("FY2024", "2024-01", "2024-12", False),
        ("March 2026", "2026-03", "2026-03", False),
        ("Sep 2025", "2025-09", "2025-09", False),
        ("2026-02", "2026-02", "2026-02", False),
        ("last quarter", "2026-07", "2026-09", False),
        ("this quarter", "2026-10", "2026-12", False),
        ("last month", "2026-10", "2026-10", False),
        ("this year", "2026-01", "2026-12", False),
        ("year to date", "2026-01", "2026-12", False),
        ("last year", "2025-01", "2025-12", False),
        ("the last 6 months", "2026-05", "2026-10", False),
        ("past three months", "2026-08", "2026-10", False),
        ("next month", "2026-11", "2026-11", True),
        ("next quarter", "2027-01", "2027-03", True),
        ("next 6 months", "2026-11", "2027-04", True),
    ],
)
def test_periods(text: str, first: str, last: str, future: bool) -> None:
    period = parse_period(text, as_of=AS_OF)
    assert (period.months[0], period.months[-1], period.future) == (first, last, future)
    assert period.label == text


@pytest.mark.parametrize("text", ["", "blah", "Q5 2025", "2025-13", "last 99 months", "Smarch 2025"])
def test_unknown_periods_are_refused_with_examples(text: str) -> None:
    with pytest.raises(InvalidInput, match="Q4 2025"):
        parse_period(text, as_of=AS_OF)


def test_every_tool_result_holds_the_rubric_result_keys_for_every_sample() -> None:
    agent = YamlAgentRegistry().get("autonomous-agent")
    for sample in [*workshop_samples(), *generate_queries(300, seed=21)]:
        result = run_tool(sample.tool, sample.arguments)
        rule = agent.rubric.rule_for(sample.tool)
        assert rule is not None
        missing = [key for key in rule.result_keys if key not in result]
        assert not missing, (sample, missing)
        assert summarize(sample.tool, result)


def test_results_are_computed_from_the_data() -> None:
    churn = run_tool("analyze_churn", {"period": "Q4 2025"})
    assert 0 < churn["churn_rate"] < 0.2
    assert churn["churned_customers"] == round(churn["churn_rate"] * churn["customers_at_start"])
    west = run_tool("sales_report", {"region": "west", "period": "2025"})
    everywhere = run_tool("sales_report", {"region": "all", "period": "2025"})
    assert everywhere["revenue"] == sum(everywhere["revenue_by_region"].values())
    assert everywhere["revenue_by_region"]["west"] == west["revenue"]
    top = run_tool("top_products", {"n": 5, "metric": "margin"})
    margins = [p["margin"] for p in top["products"]]
    assert margins == sorted(margins, reverse=True)
    assert len(margins) == 5
    assert len(run_tool("top_products", {"n": 100, "metric": "units"})["products"]) == 32
    high = run_tool("customer_segments", {"risk_level": "high"})
    assert {s["risk_level"] for s in high["segments"]} == {"high"}
    forecast = run_tool("sales_forecast", {"horizon_months": 12})
    assert [f["month"] for f in forecast["forecast"]][:2] == ["2026-11", "2026-12"]
    assert all(f["lower"] < f["revenue"] < f["upper"] for f in forecast["forecast"])
    projected = run_tool("analyze_churn", {"period": "next quarter"})
    assert projected["projected"] is True


@pytest.mark.parametrize(
    ("tool", "arguments", "message"),
    [
        ("top_products", {"n": 0, "metric": "revenue"}, "n"),
        ("top_products", {"n": "10", "metric": "revenue"}, "n"),
        ("top_products", {"n": 10, "metric": "profit"}, "metric"),
        ("sales_report", {"region": "mars", "period": "2025"}, "region"),
        ("sales_report", {"region": "west"}, "period"),
        ("sales_forecast", {"horizon_months": 36}, "horizon_months"),
        ("customer_segments", {"risk_level": "extreme"}, "risk_level"),
        ("analyze_churn", {"period": "Q4 2025", "extra": 1}, "extra"),
        ("delete_everything", {}, "unknown tool"),
    ],
)
def test_invalid_arguments_are_refused_naming_the_field(tool: str, arguments: dict, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        validate_arguments(tool, arguments)


def test_periods_outside_the_data_are_refused() -> None:
    with pytest.raises(InvalidInput, match="covers 2024-01 to 2026-10"):
        run_tool("sales_report", {"region": "all", "period": "2023"})
    with pytest.raises(InvalidInput, match="sales_forecast"):
        run_tool("sales_report", {"region": "all", "period": "next quarter"})


def test_bundled_data_is_what_the_generator_makes_and_small() -> None:
    files = generate()
    for name, text in files.items():
        assert (DATA_DIR / name).read_text(encoding="utf-8") == text, name
    assert sum(len(text.encode()) for text in files.values()) < 200_000
    data = load_sample_data()
    assert (data.first_month, data.last_month) == ("2024-01", "2026-10")

"""Tool sets a fine-tuned model did not train with, for measuring how it generalizes.

- ``rephrased_tools()``: the analytics agent's five tools, same names and schemas, described in
  other words (what another team's agent, or a later edit of the YAML, would send);
- ``unseen_tools()``: five tools whose names the model never saw, answering the same requests
  (``UNSEEN_NAMES`` maps the agent's tool to its stand-in, so known answers still apply).

Used by the model-server tests and ``bench/bench_model_server.py``.
"""

from __future__ import annotations

from typing import Any

from lightning.domain.agent import AgentDefinition

_REPHRASED: dict[str, str] = {
    "analyze_churn": "Churn and retention: how many customers left, cancelled, quit or stopped buying "
    "in a period, the churn rate, and which customers are likely to leave or walk away next.",
    "sales_report": "Sales report of revenue, orders and growth: how a region (north, south, east, "
    "west or all) did in a past period; sales figures, numbers, results and performance.",
    "top_products": "Top N products: best sellers and items ranked by revenue, units sold and volume, "
    "or margin and profit.",
    "customer_segments": "Customer segments, groups and cohorts by churn risk level (high or at risk, "
    "medium, low, all), describing each segment.",
    "sales_forecast": "Sales forecast: predicted and projected revenue and demand for the next months, "
    "quarters or years ahead, with a confidence interval.",
}

UNSEEN_NAMES: dict[str, str] = {
    "analyze_churn": "customer_attrition_study",
    "sales_report": "regional_revenue_summary",
    "top_products": "bestseller_ranking",
    "customer_segments": "risk_cohorts",
    "sales_forecast": "demand_projection",
}

_UNSEEN: dict[str, str] = {
    "analyze_churn": "Study customer attrition and retention for a period: who left and who may leave.",
    "sales_report": "Summarize revenue and orders for a region and period.",
    "top_products": "Rank products by revenue, units or margin and return the best N.",
    "customer_segments": "Group customers into cohorts by risk of leaving.",
    "sales_forecast": "Project future sales for a number of months ahead.",
}


def _function(name: str, description: str, parameters: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {"name": name, "description": description, "parameters": parameters},
    }


def rephrased_tools(agent: AgentDefinition) -> list[dict[str, Any]]:
    """The agent's tools with other descriptions (names and parameter schemas unchanged)."""
    return [_function(tool.name, _REPHRASED[tool.name], tool.parameters) for tool in agent.tools]


def unseen_tools(agent: AgentDefinition) -> list[dict[str, Any]]:
    """Stand-ins under names no training example uses (same parameter schemas)."""
    return [_function(UNSEEN_NAMES[tool.name], _UNSEEN[tool.name], tool.parameters) for tool in agent.tools]

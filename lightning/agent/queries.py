"""Realistic analytics requests with the tool call that answers each one.

``generate_queries(n, seed=…)`` draws varied requests for the analytics agents
(``autonomous-agent``, ``approval-agent``): for each of the five tools many
intent templates and paraphrases — some in the words of the tool descriptions
("Analyze customer churn for Q4 2025"), most not ("Which clients are likely to
leave us next quarter?") — with periods, regions, counts, metrics, risk levels
and horizons drawn at random. Each sample carries the correct tool and
arguments under the agent's tool schemas, so it is ground truth for the local
model server's tests, ``simulate-traffic``, the promotion gate and the demo.

Output is deterministic per ``seed`` (a private ``random.Random``), never
depends on global state, and does no I/O.

Conventions every caller shares (also what the agent's tools use when a value
is missing): ``TOOL_DEFAULTS``. Values the user states are copied verbatim
(periods keep the user's wording: ``"Q4 2025"``, ``"last quarter"``); words
map to schema values (``"the West"`` → ``"west"``, ``"profit"`` → ``"margin"``,
``"half a year"`` → ``6``, ``"at risk"`` → ``"high"``).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "TOOLS",
    "TOOL_DEFAULTS",
    "WORKSHOP_QUERIES",
    "QuerySample",
    "generate_queries",
    "workshop_samples",
]

QueryStyle = Literal[
    "workshop",  # one of the five queries of the workshop, verbatim
    "descriptive",  # worded like the tool's description ("Generate a sales report …")
    "paraphrase",  # worded the way people ask, without the tool's vocabulary
    "heldout",  # hand-written, never generated (``heldout.py``): only for measuring, never for tuning
]


class QuerySample(BaseModel):
    """One request and the tool call that correctly answers it."""

    model_config = ConfigDict(frozen=True)

    query: str = Field(description="The user's request, as sent to analyze_query.")
    tool: str = Field(description="The tool that answers it.")
    arguments: dict[str, Any] = Field(description="The tool's arguments, valid under its JSON schema.")
    style: QueryStyle = Field(default="paraphrase", description="How the request is worded.")


TOOLS: tuple[str, ...] = (
    "analyze_churn",
    "sales_report",
    "top_products",
    "customer_segments",
    "sales_forecast",
)

TOOL_DEFAULTS: dict[str, dict[str, Any]] = {
    "analyze_churn": {"period": "last quarter"},
    "sales_report": {"region": "all", "period": "last quarter"},
    "top_products": {"n": 10, "metric": "revenue"},
    "customer_segments": {"risk_level": "all"},
    "sales_forecast": {"horizon_months": 3},
}
"""What a tool uses for an argument the request does not state or imply."""

WORKSHOP_QUERIES: tuple[str, ...] = (
    "Analyze customer churn for Q4 2025",
    "Generate a sales report for the west region",
    "What are the top 10 products by revenue?",
    "Show me customer segments at risk",
    "Predict next month's sales forecast",
)
"""The five requests of the workshop (Exercise 4, step 4.2), verbatim."""

_WORKSHOP_CALLS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("analyze_churn", {"period": "Q4 2025"}),
    ("sales_report", {"region": "west", "period": "last quarter"}),
    ("top_products", {"n": 10, "metric": "revenue"}),
    ("customer_segments", {"risk_level": "high"}),
    ("sales_forecast", {"horizon_months": 1}),
)


def workshop_samples() -> list[QuerySample]:
    """The workshop's five queries with their correct tool calls."""
    return [
        QuerySample(query=query, tool=tool, arguments=dict(arguments), style="workshop")
        for query, (tool, arguments) in zip(WORKSHOP_QUERIES, _WORKSHOP_CALLS, strict=True)
    ]


# ---------------------------------------------------------------------------------------------
# Vocabulary: the phrase shown to the user → the schema value.

_ABSOLUTE_PERIODS = (
    [f"Q{q} {y}" for y in (2024, 2025, 2026) for q in (1, 2, 3, 4)]
    + ["2024", "2025", "2026", "H1 2025", "H2 2025", "H1 2026"]
    + [f"{m} 2025" for m in ("January", "March", "June", "September", "November")]
    + [f"{m} 2026" for m in ("January", "March", "June", "September")]  # the sample data ends Oct 2026
)
_RELATIVE_PERIODS = [
    "last quarter",
    "last month",
    "this quarter",
    "this year",
    "last year",
    "the last 6 months",
    "year to date",
]

_REGIONS: dict[str, list[str]] = {
    "north": ["the north region", "the North", "the northern region", "North", "north"],
    "south": ["the south region", "the South", "the southern region", "South", "south"],
    "east": ["the east region", "the East", "the eastern region", "East", "east"],
    "west": ["the west region", "the West", "the western region", "West", "west"],
}
_ALL_REGIONS = ["all regions", "every region", "the whole company", "company-wide", "all of our regions"]

_METRICS: dict[str, list[str]] = {
    "revenue": ["revenue", "sales revenue", "total sales", "dollar sales"],
    "units": ["units sold", "unit sales", "volume", "number of units sold"],
    "margin": ["margin", "profit margin", "profit", "profitability"],
}

_NUMBER_WORDS = {3: "three", 5: "five", 10: "ten", 15: "fifteen", 20: "twenty"}

_RISK: dict[str, list[str]] = {
    "high": ["high-risk", "high risk", "most at-risk"],
    "medium": ["medium-risk", "medium risk", "moderate-risk"],
    "low": ["low-risk", "low risk", "safest"],
}

_HORIZON_PHRASES: list[tuple[int, str]] = [
    (1, "next month"),
    (1, "the coming month"),
    (3, "next quarter"),
    (3, "the next three months"),
    (6, "the next six months"),
    (6, "the next half year"),
    (12, "the next year"),
    (12, "the next 12 months"),
    (18, "the next 18 months"),
    (24, "the next two years"),
]

_Draw = Callable[[random.Random], tuple[str, dict[str, Any], QueryStyle]]


def _period(rng: random.Random) -> str:
    return rng.choice(_ABSOLUTE_PERIODS) if rng.random() < 0.65 else rng.choice(_RELATIVE_PERIODS)


def _in(rng: random.Random, period: str) -> str:
    """The period as a phrase ('in Q4 2025', 'last quarter', 'over the last 6 months'), kept verbatim."""
    if period.startswith(("last ", "this ")) or period == "year to date":
        return period
    if period.startswith("the "):
        return f"over {period}"
    return f"{rng.choice(('in', 'for', 'for'))} {period}"


def _pick(rng: random.Random, templates: list[tuple[str, QueryStyle]]) -> tuple[str, QueryStyle]:
    return rng.choice(templates)


# ---------------------------------------------------------------------------------------------
# analyze_churn(period)

_CHURN_WITH_PERIOD: list[tuple[str, QueryStyle]] = [
    ("Analyze customer churn {p}", "descriptive"),
    ("Analyze customer churn and retention {p}", "descriptive"),
    ("Run a churn analysis {p}", "descriptive"),
    ("What was our churn rate {p}?", "descriptive"),
    ("Show customer retention {p}", "descriptive"),
    ("How many customers did we lose {p}?", "paraphrase"),
    ("Which clients stopped buying from us {p}?", "paraphrase"),
    ("How bad was customer attrition {p}?", "paraphrase"),
    ("Did we keep our customers {p}? I need the numbers on who left", "paraphrase"),
    ("What share of our customer base walked away {p}?", "paraphrase"),
    ("Give me the customer loss numbers {p}", "paraphrase"),
    ("How many accounts cancelled {p}, and who else might?", "paraphrase"),
    ("I need to know how many customers left us {p}", "paraphrase"),
    ("Who defected to competitors {p}?", "paraphrase"),
    ("How well did we retain customers {p}?", "paraphrase"),
]
_CHURN_NO_PERIOD: list[tuple[str, QueryStyle]] = [
    ("Analyze customer churn", "descriptive"),
    ("What's our current churn rate?", "descriptive"),
    ("Are we losing customers?", "paraphrase"),
    ("How many clients have we lost lately?", "paraphrase"),
    ("Is customer attrition getting worse?", "paraphrase"),
]
_CHURN_FUTURE: list[tuple[str, str, QueryStyle]] = [
    ("Which clients are likely to leave us next quarter?", "next quarter", "paraphrase"),
    ("Who is about to cancel next month?", "next month", "paraphrase"),
    ("Which customers might stop buying from us next quarter?", "next quarter", "paraphrase"),
    ("Estimate customer churn for next quarter", "next quarter", "descriptive"),
]


def _churn(rng: random.Random) -> tuple[str, dict[str, Any], QueryStyle]:
    roll = rng.random()
    if roll < 0.78:
        template, style = _pick(rng, _CHURN_WITH_PERIOD)
        period = _period(rng)
        return template.format(p=_in(rng, period)), {"period": period}, style
    if roll < 0.9:
        template, style = _pick(rng, _CHURN_NO_PERIOD)
        return template, dict(TOOL_DEFAULTS["analyze_churn"]), style
    query, period, style = rng.choice(_CHURN_FUTURE)
    return query, {"period": period}, style


# ---------------------------------------------------------------------------------------------
# sales_report(region, period)

_REPORT_FULL: list[tuple[str, QueryStyle]] = [
    ("Generate a sales report for {r} {p}", "descriptive"),
    ("Sales report for {r} {p}, please", "descriptive"),
    ("Show revenue and orders for {r} {p}", "descriptive"),
    ("What were the sales figures for {r} {p}?", "descriptive"),
    ("How did {r} do {p}?", "paraphrase"),
    ("How much did we sell in {r} {p}?", "paraphrase"),
    ("Pull the numbers for {r} {p}", "paraphrase"),
    ("I need the results for {r} for {p_bare}", "paraphrase"),
    ("What did {r} bring in {p}?", "paraphrase"),
    ("Break down {r}'s performance {p}", "paraphrase"),
    ("Can you summarize how {r} performed {p}?", "paraphrase"),
    ("Give me the revenue and order count in {r} {p}", "descriptive"),
]
_REPORT_ALL: list[tuple[str, QueryStyle]] = [
    ("Generate a sales report for {a} {p}", "descriptive"),
    ("How much did we sell across {a} {p}?", "paraphrase"),
    ("What were total sales {p}?", "paraphrase"),
    ("Give me the overall numbers {p}", "paraphrase"),
    ("How did the business do {p}?", "paraphrase"),
]
_REPORT_NO_PERIOD: list[tuple[str, QueryStyle]] = [
    ("Generate a sales report for {r}", "descriptive"),
    ("Generate a sales report for the {rb} region", "descriptive"),
    ("How is {r} doing?", "paraphrase"),
    ("Numbers for {r}, please", "paraphrase"),
    ("What are sales like in {r}?", "paraphrase"),
]


def _sales_report(rng: random.Random) -> tuple[str, dict[str, Any], QueryStyle]:
    roll = rng.random()
    region = rng.choice(list(_REGIONS))
    phrase = rng.choice(_REGIONS[region])
    if roll < 0.6:
        template, style = _pick(rng, _REPORT_FULL)
        period = _period(rng)
        query = template.format(r=phrase, p=_in(rng, period), p_bare=period)
        return query, {"region": region, "period": period}, style
    if roll < 0.8:
        template, style = _pick(rng, _REPORT_ALL)
        period = _period(rng)
        query = template.format(a=rng.choice(_ALL_REGIONS), p=_in(rng, period))
        return query, {"region": "all", "period": period}, style
    template, style = _pick(rng, _REPORT_NO_PERIOD)
    query = template.format(r=phrase, rb=region)
    return query, {"region": region, "period": TOOL_DEFAULTS["sales_report"]["period"]}, style


# ---------------------------------------------------------------------------------------------
# top_products(n, metric)

_TOP_FULL: list[tuple[str, QueryStyle]] = [
    ("What are the top {n} products by {m}?", "descriptive"),
    ("Rank the top {n} products by {m}", "descriptive"),
    ("List the top {n} products by {m}", "descriptive"),
    ("Give me the {n} best sellers by {m}", "paraphrase"),
    ("Which {n} items lead on {m}?", "paraphrase"),
    ("Show me our {n} strongest products in terms of {m}", "paraphrase"),
    ("Which {n} SKUs are doing best on {m}?", "paraphrase"),
    ("I want the {n} highest-{m} products", "paraphrase"),
    ("Name the {n} products with the best {m}", "paraphrase"),
    ("Top {n} by {m}?", "paraphrase"),
]
_TOP_METRIC_ONLY: list[tuple[str, QueryStyle]] = [
    ("What are our best-selling products by {m}?", "paraphrase"),
    ("Which products lead on {m}?", "paraphrase"),
    ("Rank our products by {m}", "descriptive"),
]
_TOP_COUNT_ONLY: list[tuple[str, QueryStyle]] = [
    ("What are our top {n} products?", "descriptive"),
    ("Show me the {n} best sellers", "paraphrase"),
    ("Which {n} items sell best?", "paraphrase"),
]
_TOP_FIXED: list[tuple[str, dict[str, Any], QueryStyle]] = [
    ("What are our most profitable products?", {"n": 10, "metric": "margin"}, "paraphrase"),
    ("Which products move the most units?", {"n": 10, "metric": "units"}, "paraphrase"),
    ("What's our single best seller by revenue?", {"n": 1, "metric": "revenue"}, "paraphrase"),
    ("Show the product ranking", {"n": 10, "metric": "revenue"}, "descriptive"),
]


def _count(rng: random.Random) -> tuple[int, str]:
    n = rng.choice([3, 5, 5, 10, 10, 10, 15, 20, 25, 50, rng.randint(2, 30)])
    if n in _NUMBER_WORDS and rng.random() < 0.3:
        return n, _NUMBER_WORDS[n]
    return n, str(n)


def _top_products(rng: random.Random) -> tuple[str, dict[str, Any], QueryStyle]:
    roll = rng.random()
    metric = rng.choice(list(_METRICS))
    metric_phrase = rng.choice(_METRICS[metric])
    n, n_phrase = _count(rng)
    if roll < 0.7:
        template, style = _pick(rng, _TOP_FULL)
        if "highest-{m}" in template:
            metric_phrase = {"revenue": "revenue", "units": "volume", "margin": "margin"}[metric]
        return template.format(n=n_phrase, m=metric_phrase), {"n": n, "metric": metric}, style
    if roll < 0.82:
        template, style = _pick(rng, _TOP_METRIC_ONLY)
        default_n = TOOL_DEFAULTS["top_products"]["n"]
        return template.format(m=metric_phrase), {"n": default_n, "metric": metric}, style
    if roll < 0.92:
        template, style = _pick(rng, _TOP_COUNT_ONLY)
        default_metric = TOOL_DEFAULTS["top_products"]["metric"]
        return template.format(n=n_phrase), {"n": n, "metric": default_metric}, style
    query, arguments, style = rng.choice(_TOP_FIXED)
    return query, dict(arguments), style


# ---------------------------------------------------------------------------------------------
# customer_segments(risk_level)

_SEGMENT_LEVEL: list[tuple[str, QueryStyle]] = [
    ("Show me the {k} customer segments", "descriptive"),
    ("Segment customers by risk and show the {k} ones", "descriptive"),
    ("Describe our {k} customer groups", "paraphrase"),
    ("Who are our {k} customers?", "paraphrase"),
    ("Which customer cohorts are {k}?", "paraphrase"),
    ("Break down the {k} part of our customer base", "paraphrase"),
    ("Tell me about the {k} accounts", "paraphrase"),
]
_SEGMENT_ALL: list[tuple[str, QueryStyle]] = [
    ("Segment our customers by churn risk", "descriptive"),
    ("Show all customer segments", "descriptive"),
    ("How does our customer base split by risk level?", "paraphrase"),
    ("Give me an overview of every customer group", "paraphrase"),
    ("What kinds of customers do we have?", "paraphrase"),
]
_SEGMENT_AT_RISK: list[tuple[str, QueryStyle]] = [
    ("Show me customer segments at risk", "descriptive"),
    ("Which customer groups are at risk?", "paraphrase"),
    ("Who should the retention team call first?", "paraphrase"),
    ("Which accounts need attention before they go cold?", "paraphrase"),
]


def _customer_segments(rng: random.Random) -> tuple[str, dict[str, Any], QueryStyle]:
    roll = rng.random()
    if roll < 0.6:
        level = rng.choice(list(_RISK))
        template, style = _pick(rng, _SEGMENT_LEVEL)
        return template.format(k=rng.choice(_RISK[level])), {"risk_level": level}, style
    if roll < 0.8:
        template, style = _pick(rng, _SEGMENT_ALL)
        return template, {"risk_level": "all"}, style
    template, style = _pick(rng, _SEGMENT_AT_RISK)
    return template, {"risk_level": "high"}, style


# ---------------------------------------------------------------------------------------------
# sales_forecast(horizon_months)

_FORECAST_PHRASE: list[tuple[str, QueryStyle]] = [
    ("Forecast sales for {h}", "descriptive"),
    ("Predict sales for {h}", "descriptive"),
    ("What's the sales forecast for {h}?", "descriptive"),
    ("How much will we sell over {h}?", "paraphrase"),
    ("What revenue should we expect in {h}?", "paraphrase"),
    ("Where are sales heading over {h}?", "paraphrase"),
    ("Project our sales for {h}", "paraphrase"),
    ("What will demand look like over {h}?", "paraphrase"),
    ("Give me the sales outlook for {h}", "paraphrase"),
]
_FORECAST_MONTHS: list[tuple[str, QueryStyle]] = [
    ("Forecast sales {k} months ahead", "descriptive"),
    ("Predict the next {k} months of sales", "descriptive"),
    ("What do the next {k} months look like for sales?", "paraphrase"),
    ("How much will we sell in the next {k} months?", "paraphrase"),
    ("Plan ahead: estimate sales {k} months out", "paraphrase"),
]
_FORECAST_NO_HORIZON: list[tuple[str, QueryStyle]] = [
    ("Give me a sales forecast", "descriptive"),
    ("What are future sales looking like?", "paraphrase"),
    ("Where are sales going?", "paraphrase"),
]


def _sales_forecast(rng: random.Random) -> tuple[str, dict[str, Any], QueryStyle]:
    roll = rng.random()
    if roll < 0.55:
        months, phrase = rng.choice(_HORIZON_PHRASES)
        template, style = _pick(rng, _FORECAST_PHRASE)
        return template.format(h=phrase), {"horizon_months": months}, style
    if roll < 0.9:
        months = rng.randint(2, 24)
        template, style = _pick(rng, _FORECAST_MONTHS)
        return template.format(k=months), {"horizon_months": months}, style
    template, style = _pick(rng, _FORECAST_NO_HORIZON)
    return template, dict(TOOL_DEFAULTS["sales_forecast"]), style


_DRAWS: dict[str, _Draw] = {
    "analyze_churn": _churn,
    "sales_report": _sales_report,
    "top_products": _top_products,
    "customer_segments": _customer_segments,
    "sales_forecast": _sales_forecast,
}

_QUESTION_OPENERS = ("Quick question: ", "Hey, ", "Could you tell me: ", "For the board deck: ")
_REQUEST_OPENERS = ("Please ", "Hey, ", "For the board deck: ", "When you get a chance, ")


def _lower_first(query: str) -> str:
    # "I" and acronyms/proper starts ("Q4", "SKUs") keep their case.
    first = query.split(" ", 1)[0]
    if first == "I" or (len(first) > 1 and first[1].isupper()):
        return query
    return query[0].lower() + query[1:]


def _dress(rng: random.Random, query: str) -> str:
    """Light surface noise people add (an opener, lower-case start) without touching the values."""
    roll = rng.random()
    if roll < 0.3:
        openers = _QUESTION_OPENERS if query.endswith("?") else _REQUEST_OPENERS
        return rng.choice(openers) + _lower_first(query)
    if roll < 0.38:
        return _lower_first(query)
    return query


def generate_queries(n: int, *, seed: int = 0, agent_id: str = "autonomous-agent") -> list[QuerySample]:
    """``n`` varied requests with their correct tool calls, deterministic per ``seed``.

    Tools come in balanced shuffled rounds (every tool once per five samples) so
    small samples still cover all five. The two analytics agents share tools and
    schemas, so ``agent_id`` only seeds a distinct stream per agent.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = random.Random(f"{agent_id}:{seed}")
    samples: list[QuerySample] = []
    order: list[str] = []
    while len(samples) < n:
        if not order:
            order = list(TOOLS)
            rng.shuffle(order)
        tool = order.pop()
        query, arguments, style = _DRAWS[tool](rng)
        samples.append(QuerySample(query=_dress(rng, query), tool=tool, arguments=arguments, style=style))
    return samples

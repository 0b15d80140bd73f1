"""The five analytics tools of the reference agent, over the bundled sample data.

``run_tool(name, arguments)`` validates the arguments against the tool's schema
(the same constraints as ``lightning/agents/*.yaml``) and returns a JSON-ready
dict holding at least the rubric's ``result_keys`` for that tool. Bad
arguments raise ``InvalidInput`` with a message saying what would be valid —
the agent turns that into a tool error (and a captured episode with
``error``), never a crash.

Relative periods ("last quarter", "year to date", "next month") are relative
to the data's "as of" date (``meta.json``: 2026-11-01, the first month after
the data ends), so answers are reproducible.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lightning.agent.sample_data import REGIONS, SampleData, load_sample_data, month_key
from lightning.domain.errors import InvalidInput

_MONTHS = {
    name: index
    for index, names in enumerate(
        [
            ("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"), ("may",),
            ("june", "jun"), ("july", "jul"), ("august", "aug"), ("september", "sep", "sept"),
            ("october", "oct"), ("november", "nov"), ("december", "dec"),
        ],
        start=1,
    )
    for name in names
}  # fmt: skip
_NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "eighteen": 18, "twenty-four": 24,
}  # fmt: skip
_PERIOD_HELP = (
    "use a quarter ('Q4 2025'), a half ('H1 2026'), a year ('2025'), a month ('March 2026'), "
    "or 'last quarter', 'last month', 'this year', 'year to date', 'the last 6 months'"
)


# --------------------------------------------------------------------------------------------
# Periods


class Period(BaseModel):
    """A period as the user named it and the months it covers."""

    label: str
    months: list[str]
    future: bool = False


def _shift(year: int, month: int, delta: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + delta
    return index // 12, index % 12 + 1


def _span(start: tuple[int, int], count: int) -> list[str]:
    return [month_key(*_shift(*start, i)) for i in range(count)]


def _count(text: str) -> int | None:
    if text.isdigit():
        return int(text)
    return _NUMBER_WORDS.get(text)


def parse_period(text: str, *, as_of: str) -> Period:
    """Months covered by ``text`` relative to ``as_of`` (YYYY-MM-DD); ``InvalidInput`` if not understood."""
    label = text.strip()
    value = re.sub(r"\s+", " ", label.lower()).strip(" .?")
    value = re.sub(r"^(the|fy|fiscal year) ", "", value)
    now_year, now_month = int(as_of[:4]), int(as_of[5:7])
    current_quarter_start = (now_year, (now_month - 1) // 3 * 3 + 1)
    last_full = _shift(now_year, now_month, -1)

    def result(months: list[str], future: bool = False) -> Period:
        return Period(label=label, months=months, future=future)

    if match := re.fullmatch(r"q([1-4])[ -]?(\d{4})|(\d{4})[ -]?q([1-4])", value):
        quarter = int(match.group(1) or match.group(4))
        year = int(match.group(2) or match.group(3))
        return result(_span((year, (quarter - 1) * 3 + 1), 3))
    if match := re.fullmatch(r"h([12])[ -]?(\d{4})|(\d{4})[ -]?h([12])", value):
        half = int(match.group(1) or match.group(4))
        year = int(match.group(2) or match.group(3))
        return result(_span((year, 1 if half == 1 else 7), 6))
    if match := re.fullmatch(r"(?:fy ?)?(\d{4})", value):
        return result(_span((int(match.group(1)), 1), 12))
    if match := re.fullmatch(r"(\d{4})-(\d{2})", value):
        year, month = int(match.group(1)), int(match.group(2))
        if 1 <= month <= 12:
            return result([month_key(year, month)])
    if (match := re.fullmatch(r"([a-z]+),? (\d{4})", value)) and match.group(1) in _MONTHS:
        return result([month_key(int(match.group(2)), _MONTHS[match.group(1)])])
    if value in ("last quarter", "previous quarter", "past quarter"):
        return result(_span(_shift(*current_quarter_start, -3), 3))
    if value in ("this quarter", "current quarter", "quarter to date"):
        return result(_span(current_quarter_start, 3))
    if value in ("last month", "previous month", "past month"):
        return result([month_key(*last_full)])
    if value in ("this month", "current month"):
        return result([month_key(now_year, now_month)])
    if value in ("this year", "current year", "year to date", "ytd"):
        return result(_span((now_year, 1), 12))
    if value in ("last year", "previous year", "past year"):
        return result(_span((now_year - 1, 1), 12))
    if match := re.fullmatch(r"(?:last|past|previous) ([a-z0-9-]+) months", value):
        count = _count(match.group(1))
        if count and 1 <= count <= 36:
            return result(_span(_shift(*last_full, -(count - 1)), count))
    if value in ("next month", "coming month"):
        return result([month_key(now_year, now_month)], future=True)
    if value in ("next year", "coming year", "next 12 months"):
        return result(_span((now_year, now_month), 12), future=True)
    if value in ("next half year", "next half", "coming half year"):
        return result(_span((now_year, now_month), 6), future=True)
    if value in ("next quarter", "coming quarter"):
        return result(_span(_shift(*current_quarter_start, 3), 3), future=True)
    if match := re.fullmatch(r"(?:next|coming) ([a-z0-9-]+) months", value):
        count = _count(match.group(1))
        if count and 1 <= count <= 24:
            return result(_span((now_year, now_month), count), future=True)
    raise InvalidInput(f"period {label!r} is not understood; {_PERIOD_HELP}", field="period")


# --------------------------------------------------------------------------------------------
# Arguments (the schemas of lightning/agents/*.yaml, as pydantic models)


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ChurnArgs(_Args):
    period: str = Field(min_length=1, max_length=100)


class SalesReportArgs(_Args):
    region: Literal["north", "south", "east", "west", "all"]
    period: str = Field(min_length=1, max_length=100)


class TopProductsArgs(_Args):
    n: int = Field(ge=1, le=100)
    metric: Literal["revenue", "units", "margin"]


class SegmentsArgs(_Args):
    risk_level: Literal["low", "medium", "high", "all"]


class ForecastArgs(_Args):
    horizon_months: int = Field(ge=1, le=24)


# --------------------------------------------------------------------------------------------
# The tools


def _pct(value: float) -> float:
    return round(value, 4)


def _available(data: SampleData, period: Period) -> list[str]:
    months = [m for m in period.months if data.first_month <= m <= data.last_month]
    if not months:
        raise InvalidInput(
            f"no data for {period.label!r}: the sample data covers {data.first_month} to {data.last_month}",
            field="period",
        )
    return months


def analyze_churn(data: SampleData, args: ChurnArgs) -> dict[str, Any]:
    period = parse_period(args.period, as_of=data.as_of)
    if period.future:
        return _projected_churn(data, period)
    months = _available(data, period)
    first, last = months[0], months[-1]
    at_start = [
        c
        for c in data.customers
        if c.signup_month < first and (c.churned_month is None or c.churned_month >= first)
    ]
    churned = [c for c in at_start if c.churned_month is not None and first <= c.churned_month <= last]
    active_at_end = [c for c in at_start if c not in churned]
    at_risk = [c for c in active_at_end if c.risk_level == "high"]
    rate = len(churned) / len(at_start) if at_start else 0.0
    by_region = {
        region: _pct(
            sum(1 for c in churned if c.region == region)
            / max(1, sum(1 for c in at_start if c.region == region))
        )
        for region in REGIONS
    }
    reasons = Counter(c.churn_reason for c in churned if c.churn_reason)
    return {
        "period": period.label,
        "months": months,
        "churn_rate": _pct(rate),
        "retention_rate": _pct(1 - rate),
        "customers_at_start": len(at_start),
        "churned_customers": len(churned),
        "at_risk_customers": len(at_risk),
        "lost_monthly_revenue": round(sum(c.monthly_spend for c in churned), 2),
        "churn_rate_by_region": by_region,
        "top_churn_reasons": [reason for reason, _ in reasons.most_common(3)],
    }


def _projected_churn(data: SampleData, period: Period) -> dict[str, Any]:
    active = [c for c in data.customers if c.churned_month is None]
    months = len(period.months)
    # Monthly churn probability per customer, the same risk model the sample data was drawn from.
    expected = sum(1 - (1 - (0.004 + 0.03 * c.risk_score)) ** months for c in active)
    at_risk = [c for c in active if c.risk_level == "high"]
    return {
        "period": period.label,
        "months": period.months,
        "projected": True,
        "churn_rate": _pct(expected / len(active)) if active else 0.0,
        "expected_churned_customers": round(expected, 1),
        "active_customers": len(active),
        "at_risk_customers": len(at_risk),
        "monthly_revenue_at_risk": round(sum(c.monthly_spend for c in at_risk), 2),
    }


class _Aggregates:
    """Sales summed once per data set: by (month, region) and by (month, product)."""

    def __init__(self, data: SampleData) -> None:
        self.by_region: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
        self.by_product: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
        for row in data.sales:
            cell = self.by_region[(row.month, row.region)]
            cell[0] += row.revenue
            cell[1] += row.orders
            cell[2] += row.units
            product = self.by_product[(row.month, row.product_id)]
            product[0] += row.revenue
            product[1] += row.units


_AGGREGATES: dict[int, tuple[SampleData, _Aggregates]] = {}


def _aggregates(data: SampleData) -> _Aggregates:
    # Keyed by identity (hashing the data would touch every row); the data object is kept alive
    # with its aggregates so its id cannot be reused while the entry exists.
    entry = _AGGREGATES.get(id(data))
    if entry is None or entry[0] is not data:
        if len(_AGGREGATES) > 8:
            _AGGREGATES.clear()
        entry = (data, _Aggregates(data))
        _AGGREGATES[id(data)] = entry
    return entry[1]


def _sales_totals(data: SampleData, region: str, months: list[str]) -> tuple[int, int, int]:
    by_region = _aggregates(data).by_region
    regions = REGIONS if region == "all" else (region,)
    revenue = orders = units = 0
    for month in months:
        for name in regions:
            cell = by_region.get((month, name))
            if cell is not None:
                revenue += cell[0]
                orders += cell[1]
                units += cell[2]
    return revenue, orders, units


def sales_report(data: SampleData, args: SalesReportArgs) -> dict[str, Any]:
    period = parse_period(args.period, as_of=data.as_of)
    if period.future:
        raise InvalidInput(
            f"{period.label!r} is in the future; sales_report covers past periods, sales_forecast the future",
            field="period",
        )
    months = _available(data, period)
    revenue, orders, units = _sales_totals(data, args.region, months)
    year, month = int(months[0][:4]), int(months[0][5:])
    previous = _span(_shift(year, month, -len(months)), len(months))
    previous = [m for m in previous if m >= data.first_month]
    prev_revenue = _sales_totals(data, args.region, previous)[0] if len(previous) == len(months) else 0
    report: dict[str, Any] = {
        "region": args.region,
        "period": period.label,
        "months": months,
        "revenue": revenue,
        "orders": orders,
        "units": units,
        "average_order_value": round(revenue / orders, 2) if orders else 0.0,
        "growth": _pct(revenue / prev_revenue - 1) if prev_revenue else None,
    }
    if args.region == "all":
        report["revenue_by_region"] = {r: _sales_totals(data, r, months)[0] for r in REGIONS}
    return report


def top_products(data: SampleData, args: TopProductsArgs) -> dict[str, Any]:
    # Rankings are over the trailing twelve months of data.
    last_year, last_month = int(data.last_month[:4]), int(data.last_month[5:])
    window = set(_span(_shift(last_year, last_month, -11), 12))
    by_product = _aggregates(data).by_product
    totals: dict[str, dict[str, float]] = defaultdict(lambda: {"revenue": 0.0, "units": 0.0})
    for month in window:
        for product in data.products:
            cell = by_product.get((month, product.product_id))
            if cell is not None:
                totals[product.product_id]["revenue"] += cell[0]
                totals[product.product_id]["units"] += cell[1]
    ranked: list[dict[str, Any]] = []
    for product in data.products:
        revenue = totals[product.product_id]["revenue"]
        units = int(totals[product.product_id]["units"])
        margin = revenue - units * product.unit_cost
        ranked.append(
            {
                "product_id": product.product_id,
                "name": product.name,
                "category": product.category,
                "revenue": round(revenue),
                "units": units,
                "margin": round(margin),
                "margin_pct": _pct(margin / revenue) if revenue else 0.0,
            }
        )
    ranked.sort(key=lambda item: (-float(item[args.metric]), str(item["product_id"])))
    products = [{"rank": i, **item} for i, item in enumerate(ranked[: args.n], start=1)]
    result: dict[str, Any] = {
        "metric": args.metric,
        "n": args.n,
        "period": "last 12 months",
        "products": products,
    }
    if args.n > len(ranked):
        result["note"] = f"only {len(ranked)} products exist; all are listed"
    return result


_SEGMENT_ACTIONS = {
    "high": "call within a week; offer a retention discount or a service review",
    "medium": "nurture: check-in email, loyalty offer at renewal",
    "low": "upsell: introduce new categories and volume pricing",
}


def customer_segments(data: SampleData, args: SegmentsArgs) -> dict[str, Any]:
    active = [c for c in data.customers if c.churned_month is None]
    levels = ["high", "medium", "low"] if args.risk_level == "all" else [args.risk_level]
    segments = []
    for level in levels:
        members = [c for c in active if c.risk_level == level]
        for tier in ("enterprise", "mid-market", "small-business"):
            group = [c for c in members if c.tier == tier]
            if not group:
                continue
            regions = Counter(c.region for c in group)
            segments.append(
                {
                    "name": f"{level} risk · {tier}",
                    "risk_level": level,
                    "tier": tier,
                    "customers": len(group),
                    "share_of_active": _pct(len(group) / len(active)),
                    "avg_risk_score": round(sum(c.risk_score for c in group) / len(group), 3),
                    "monthly_revenue": round(sum(c.monthly_spend for c in group), 2),
                    "main_region": regions.most_common(1)[0][0],
                    "recommended_action": _SEGMENT_ACTIONS[level],
                }
            )
    return {
        "risk_level": args.risk_level,
        "active_customers": len(active),
        "customers_in_scope": sum(s["customers"] for s in segments),
        "segments": segments,
    }


def sales_forecast(data: SampleData, args: ForecastArgs) -> dict[str, Any]:
    totals: dict[str, int] = defaultdict(int)
    for (key_month, _), cell in _aggregates(data).by_region.items():
        totals[key_month] += cell[0]
    months = sorted(totals)
    history = [float(totals[m]) for m in months]
    # Multiplicative seasonality (month-of-year index) on a log-linear trend: simple and explainable.
    n = len(history)
    by_month: dict[int, list[float]] = defaultdict(list)
    mean_level = sum(history) / n
    for m, value in zip(months, history, strict=True):
        by_month[int(m[5:])].append(value / mean_level)
    season = {k: sum(v) / len(v) for k, v in by_month.items()}
    deseason = [math.log(v / season[int(m[5:])]) for m, v in zip(months, history, strict=True)]
    xs = list(range(n))
    x_mean, y_mean = sum(xs) / n, sum(deseason) / n
    slope = sum((x - x_mean) * (y - y_mean) for x, y in zip(xs, deseason, strict=True)) / sum(
        (x - x_mean) ** 2 for x in xs
    )
    intercept = y_mean - slope * x_mean
    residual_sd = math.sqrt(
        sum((y - (intercept + slope * x)) ** 2 for x, y in zip(xs, deseason, strict=True)) / (n - 2)
    )
    last_year, last_month = int(months[-1][:4]), int(months[-1][5:])
    forecast = []
    for h in range(1, args.horizon_months + 1):
        year, month = _shift(last_year, last_month, h)
        x = n - 1 + h
        center = math.exp(intercept + slope * x) * season[month]
        spread = 1.2816 * residual_sd * math.sqrt(1 + h / n)  # 80% interval, widening with the horizon
        forecast.append(
            {
                "month": month_key(year, month),
                "revenue": round(center),
                "lower": round(center * math.exp(-spread)),
                "upper": round(center * math.exp(spread)),
            }
        )
    return {
        "horizon_months": args.horizon_months,
        "forecast": forecast,
        "total_revenue": sum(item["revenue"] for item in forecast),
        "confidence": 0.8,
        "monthly_growth": _pct(math.exp(slope) - 1),
        "method": "log-linear trend x monthly seasonality",
        "based_on": f"{months[0]} to {months[-1]}",
    }


_ToolFn = Callable[[SampleData, Any], dict[str, Any]]
TOOLS: dict[str, tuple[type[_Args], _ToolFn]] = {
    "analyze_churn": (ChurnArgs, analyze_churn),
    "sales_report": (SalesReportArgs, sales_report),
    "top_products": (TopProductsArgs, top_products),
    "customer_segments": (SegmentsArgs, customer_segments),
    "sales_forecast": (ForecastArgs, sales_forecast),
}


def validate_arguments(name: str, arguments: dict[str, Any]) -> _Args:
    """The validated arguments of tool ``name``; ``InvalidInput`` naming every problem otherwise."""
    entry = TOOLS.get(name)
    if entry is None:
        raise InvalidInput(f"unknown tool {name!r}; tools are {', '.join(TOOLS)}", field="tool")
    model = entry[0]
    try:
        return model.model_validate(arguments)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'arguments'}: {err['msg']}" for err in exc.errors()
        )
        raise InvalidInput(f"invalid arguments for {name}: {problems}", field="arguments") from None


def run_tool(name: str, arguments: dict[str, Any], data: SampleData | None = None) -> dict[str, Any]:
    """Validate ``arguments`` and run tool ``name`` over ``data`` (the bundled data by default)."""
    validated = validate_arguments(name, arguments)
    return TOOLS[name][1](data or load_sample_data(), validated)


def summarize(name: str, result: dict[str, Any]) -> str:
    """One sentence a person can read: the agent's ``response`` for an episode."""
    if name == "analyze_churn":
        if result.get("projected"):
            return (
                f"Projected churn for {result['period']}: {result['churn_rate']:.1%} "
                f"(~{result['expected_churned_customers']:.0f} customers); "
                f"{result['at_risk_customers']} customers are high risk."
            )
        return (
            f"Churn for {result['period']}: {result['churn_rate']:.1%} "
            f"({result['churned_customers']} of {result['customers_at_start']} customers); "
            f"{result['at_risk_customers']} customers are at risk."
        )
    if name == "sales_report":
        growth = result.get("growth")
        trend = f", {growth:+.1%} vs the previous period" if growth is not None else ""
        return (
            f"Sales for {result['region']} in {result['period']}: ${result['revenue']:,} revenue "
            f"from {result['orders']:,} orders{trend}."
        )
    if name == "top_products":
        names = ", ".join(p["name"] for p in result["products"][:3])
        return f"Top {len(result['products'])} products by {result['metric']} (last 12 months): {names}…"
    if name == "customer_segments":
        return (
            f"{len(result['segments'])} segments with {result['customers_in_scope']} customers "
            f"at risk level {result['risk_level']}."
        )
    if name == "sales_forecast":
        return (
            f"Forecast for the next {result['horizon_months']} month(s): ${result['total_revenue']:,} revenue "
            f"(80% interval per month)."
        )
    return ""

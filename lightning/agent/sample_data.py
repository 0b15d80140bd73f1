"""The bundled sample business data the analytics tools answer from, and its generator.

Files in ``lightning/agent/data/`` (committed, < 200 KB, regenerated bit-for-bit by
``python -m lightning.agent.sample_data``):

* ``products.csv`` — product_id, name, category, unit_price, unit_cost
* ``customers.csv`` — customer_id, region, tier, signup_month, churned_month, churn_reason,
  monthly_spend, risk_score
* ``sales.csv`` — month, region, product_id, units, revenue, orders (one row per month × region × product)
* ``meta.json`` — seed, first/last month of data, the "as of" date relative periods refer to

A fictional retailer, four regions, 32 products, Jan 2024 – Oct 2026, with seasonality,
a growth trend, regional differences and monthly churn, so every tool has something
real to compute. ``load_sample_data()`` reads the files once per process.
"""

from __future__ import annotations

import csv
import io
import json
import math
import random
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

DATA_DIR = Path(__file__).with_name("data")
SEED = 2026
FIRST_MONTH = (2024, 1)
LAST_MONTH = (2026, 10)
AS_OF = "2026-11-01"
REGIONS = ("north", "south", "east", "west")
TIERS = ("enterprise", "mid-market", "small-business")

_REGION_WEIGHT = {"north": 1.0, "south": 0.8, "east": 1.25, "west": 1.1}
_REGION_GROWTH = {"north": 0.004, "south": 0.011, "east": 0.007, "west": 0.009}
# Retail seasonality: a slow start of the year, a summer bump, a strong Q4.
_SEASON = (0.84, 0.82, 0.93, 0.96, 1.0, 1.05, 1.02, 0.98, 0.97, 1.04, 1.22, 1.38)
_CATEGORIES = {
    "Outdoor": [
        "Trail Backpack",
        "Camping Tent",
        "Hiking Boots",
        "Rain Shell",
        "Sleeping Bag",
        "Trekking Poles",
        "Water Filter",
        "Camp Stove",
        "Headlamp",
        "Cooler Box",
    ],
    "Home": [
        "Espresso Maker",
        "Chef Knife Set",
        "Cast Iron Pan",
        "Linen Bedding",
        "Desk Lamp",
        "Air Purifier",
        "Robot Vacuum",
        "Storage Baskets",
        "Throw Blanket",
        "Wall Clock",
    ],
    "Electronics": [
        "Wireless Earbuds",
        "Smart Speaker",
        "Fitness Tracker",
        "Portable Charger",
        "Action Camera",
        "E-Reader",
        "Mechanical Keyboard",
        "USB-C Hub",
        "Webcam HD",
        "Bluetooth Tracker",
    ],
    "Apparel": [
        "Merino Sweater",
        "Denim Jacket",
        "Running Shoes",
        "Rain Boots",
        "Wool Socks",
        "Chino Pants",
        "Puffer Vest",
        "Yoga Leggings",
        "Sun Hat",
        "Leather Belt",
    ],
}
_CHURN_REASONS = ("price", "service", "competitor", "moved", "product fit")


@dataclass(frozen=True)
class Product:
    product_id: str
    name: str
    category: str
    unit_price: float
    unit_cost: float


@dataclass(frozen=True)
class Customer:
    customer_id: str
    region: str
    tier: str
    signup_month: str
    churned_month: str | None
    churn_reason: str | None
    monthly_spend: float
    risk_score: float

    @property
    def risk_level(self) -> str:
        """high ≥ 0.6, medium ≥ 0.3, low below: the segment a customer falls in."""
        if self.risk_score >= 0.6:
            return "high"
        if self.risk_score >= 0.3:
            return "medium"
        return "low"


@dataclass(frozen=True)
class SalesRow:
    month: str
    region: str
    product_id: str
    units: int
    revenue: int
    orders: int


@dataclass(frozen=True)
class SampleData:
    products: tuple[Product, ...]
    customers: tuple[Customer, ...]
    sales: tuple[SalesRow, ...]
    first_month: str
    last_month: str
    as_of: str


def month_key(year: int, month: int) -> str:
    return f"{year:04d}-{month:02d}"


def months_between(first: tuple[int, int], last: tuple[int, int]) -> list[str]:
    year, month = first
    out = []
    while (year, month) <= last:
        out.append(month_key(year, month))
        month += 1
        if month == 13:
            year, month = year + 1, 1
    return out


# --------------------------------------------------------------------------------------------
# Generation (deterministic per seed)


def _products(rng: random.Random) -> list[Product]:
    products = []
    index = 0
    for category, names in _CATEGORIES.items():
        price_scale = {"Outdoor": 95.0, "Home": 80.0, "Electronics": 120.0, "Apparel": 55.0}[category]
        for name in names[:8]:  # 32 products keeps the bundled files small
            index += 1
            price = round(price_scale * rng.uniform(0.35, 2.6), 2)
            cost = round(price * rng.uniform(0.38, 0.78), 2)
            products.append(Product(f"P{index:03d}", name, category, price, cost))
    return products


def _sales(rng: random.Random, products: list[Product], months: list[str]) -> list[SalesRow]:
    popularity = {
        p.product_id: rng.lognormvariate(0.0, 0.55) * 60.0 / math.sqrt(p.unit_price / 40) for p in products
    }
    rows = []
    for t, month in enumerate(months):
        season = _SEASON[int(month[5:]) - 1]
        for region in REGIONS:
            trend = (1 + _REGION_GROWTH[region]) ** t
            for product in products:
                outdoor_summer = (
                    1.25 if product.category == "Outdoor" and month[5:] in ("06", "07", "08") else 1.0
                )
                mean = (
                    popularity[product.product_id] * _REGION_WEIGHT[region] * season * trend * outdoor_summer
                )
                units = max(0, round(mean * rng.uniform(0.82, 1.18)))
                discount = rng.uniform(0.0, 0.08) + (0.06 if month[5:] == "11" else 0.0)
                revenue = round(units * product.unit_price * (1 - discount))
                orders = max(0, round(units / rng.uniform(1.1, 1.9))) if units else 0
                rows.append(SalesRow(month, region, product.product_id, units, revenue, orders))
    return rows


def _customers(rng: random.Random, months: list[str]) -> list[Customer]:
    customers = []
    for index in range(1, 601):
        region = rng.choices(REGIONS, weights=[_REGION_WEIGHT[r] for r in REGIONS])[0]
        tier = rng.choices(TIERS, weights=[1, 3, 6])[0]
        spend_scale = {"enterprise": 9000.0, "mid-market": 2200.0, "small-business": 450.0}[tier]
        spend = round(spend_scale * rng.lognormvariate(0.0, 0.45), 2)
        # Most customers predate the data; the rest sign up along the way.
        signup = months[0] if rng.random() < 0.55 else rng.choice(months[:-1])
        risk = min(0.99, max(0.01, rng.betavariate(1.6, 3.6) + (0.08 if tier == "small-business" else 0.0)))
        churned: str | None = None
        reason: str | None = None
        for month in months[months.index(signup) + 1 :]:
            if rng.random() < 0.004 + 0.03 * risk:
                churned, reason = month, rng.choice(_CHURN_REASONS)
                break
        customers.append(
            Customer(f"C{index:04d}", region, tier, signup, churned, reason, spend, round(risk, 3))
        )
    return customers


def generate(seed: int = SEED) -> dict[str, str]:
    """The data files' contents (name → text), deterministic per ``seed``."""
    rng = random.Random(seed)
    months = months_between(FIRST_MONTH, LAST_MONTH)
    products = _products(rng)
    sales = _sales(rng, products, months)
    customers = _customers(rng, months)

    def to_csv(header: list[str], rows: list[list[object]]) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        return buffer.getvalue()

    return {
        "products.csv": to_csv(
            ["product_id", "name", "category", "unit_price", "unit_cost"],
            [
                [p.product_id, p.name, p.category, f"{p.unit_price:.2f}", f"{p.unit_cost:.2f}"]
                for p in products
            ],
        ),
        "customers.csv": to_csv(
            [
                "customer_id",
                "region",
                "tier",
                "signup_month",
                "churned_month",
                "churn_reason",
                "monthly_spend",
                "risk_score",
            ],
            [
                [
                    c.customer_id,
                    c.region,
                    c.tier,
                    c.signup_month,
                    c.churned_month or "",
                    c.churn_reason or "",
                    f"{c.monthly_spend:.2f}",
                    f"{c.risk_score:.3f}",
                ]
                for c in customers
            ],
        ),
        "sales.csv": to_csv(
            ["month", "region", "product_id", "units", "revenue", "orders"],
            [[s.month, s.region, s.product_id, s.units, s.revenue, s.orders] for s in sales],
        ),
        "meta.json": json.dumps(
            {
                "seed": seed,
                "first_month": months[0],
                "last_month": months[-1],
                "as_of": AS_OF,
                "description": "Fictional retailer sample data for the Lightning Loop reference agent.",
            },
            indent=2,
        )
        + "\n",
    }


def write(directory: Path = DATA_DIR, seed: int = SEED) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in generate(seed).items():
        (directory / name).write_text(text, encoding="utf-8")


# --------------------------------------------------------------------------------------------
# Loading


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def read_sample_data(directory: Path = DATA_DIR) -> SampleData:
    """Parse the data files in ``directory``."""
    meta = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
    products = tuple(
        Product(r["product_id"], r["name"], r["category"], float(r["unit_price"]), float(r["unit_cost"]))
        for r in _read_csv(directory / "products.csv")
    )
    customers = tuple(
        Customer(
            r["customer_id"],
            r["region"],
            r["tier"],
            r["signup_month"],
            r["churned_month"] or None,
            r["churn_reason"] or None,
            float(r["monthly_spend"]),
            float(r["risk_score"]),
        )
        for r in _read_csv(directory / "customers.csv")
    )
    sales = tuple(
        SalesRow(
            r["month"], r["region"], r["product_id"], int(r["units"]), int(r["revenue"]), int(r["orders"])
        )
        for r in _read_csv(directory / "sales.csv")
    )
    return SampleData(products, customers, sales, meta["first_month"], meta["last_month"], meta["as_of"])


@lru_cache(maxsize=1)
def load_sample_data() -> SampleData:
    """The bundled data, read once per process."""
    return read_sample_data(DATA_DIR)


if __name__ == "__main__":
    write()

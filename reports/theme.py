"""One look for every chart of the report, and the number formats people read.

The Altair theme ``stockturn`` is registered on import; :func:`themed` enables it for a block of code without
changing the process-wide default (Dagster and notebooks may render other charts in the same process).
Python formatters (tables, KPI tiles, titles) and Vega-Lite format strings (axes, tooltips) use the same
conventions: thousands separators, currency prefix, percentages with one decimal.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import altair as alt

THEME_NAME = "stockturn"
FONT = "Liberation Sans, Arial, Helvetica, sans-serif"

INK = "#1f2933"
MUTED = "#6b7785"
GRID = "#e4e7eb"
PRIMARY = "#1f5fa8"  # this year / the measure
PRIOR = "#9aa5b1"  # the prior-year comparison
GOOD = "#2f855a"
BAD = "#c0392b"
WARN = "#d9822b"
#: Categorical palette (colour-blind safe ordering, Tableau-like but muted).
PALETTE = [
    "#1f5fa8", "#d9822b", "#2f855a", "#c0392b", "#7b5ea7",
    "#8c6d46", "#d46a9f", "#5f6b77", "#a8a32a", "#2a9db0",
]

#: Currency symbol used by the Python formatters (set for a build with :func:`currency`).
CURRENCY: ContextVar[str] = ContextVar("stockturn_currency", default="$")

CHART_WIDTH = 520
CHART_HEIGHT = 240
SMALL_WIDTH = 190
SMALL_HEIGHT = 110

# Vega-Lite / d3 format strings. "$" is replaced by the locale's currency (see format_locale).
FMT_MONEY = "$,.0f"
FMT_MONEY_2 = "$,.2f"
FMT_PCT = ".1%"
FMT_INT = ",.0f"
FMT_1 = ",.1f"
FMT_2 = ",.2f"
FMT_MONTH = "%b %Y"
FMT_DATE = "%d %b %Y"


def theme_config() -> alt.theme.ThemeConfig:
    """The Vega-Lite config of the stockturn theme."""
    return alt.theme.ThemeConfig(
        config={
            "background": "#ffffff",
            "font": FONT,
            "padding": 6,
            "view": {"stroke": None, "continuousWidth": CHART_WIDTH, "continuousHeight": CHART_HEIGHT},
            "title": {
                "anchor": "start",
                "font": FONT,
                "fontSize": 14,
                "fontWeight": 600,
                "color": INK,
                "subtitleColor": MUTED,
                "subtitleFontSize": 11,
                "subtitlePadding": 4,
                "offset": 10,
                "limit": 900,
            },
            "axis": {
                "labelColor": MUTED,
                "labelFontSize": 11,
                "titleColor": MUTED,
                "titleFontSize": 11,
                "titleFontWeight": "normal",
                "gridColor": GRID,
                "domainColor": "#cbd2d9",
                "tickColor": "#cbd2d9",
                "labelLimit": 180,
            },
            "axisX": {"grid": False},
            "axisBand": {"grid": False, "ticks": False},
            "header": {"labelFontSize": 11, "labelColor": INK, "labelFontWeight": 600, "labelLimit": 190,
                       "titleFontSize": 11},
            "legend": {"orient": "top", "labelFontSize": 11, "titleFontSize": 11, "labelColor": INK,
                       "titleColor": MUTED, "symbolSize": 80, "labelLimit": 200},
            "range": {"category": PALETTE},
            "line": {"strokeWidth": 2, "color": PRIMARY},
            "bar": {"color": PRIMARY},
            "area": {"color": PRIMARY},
            "point": {"color": PRIMARY, "filled": True},
            "rule": {"color": MUTED},
            "text": {"font": FONT, "fontSize": 11, "color": INK},
            "facet": {"spacing": 14},
            "concat": {"spacing": 24},
            "numberFormat": FMT_2,
            "timeFormat": FMT_MONTH,
            "customFormatTypes": False,
        }
    )


alt.theme.register(THEME_NAME, enable=False)(theme_config)


@contextmanager
def themed() -> Iterator[None]:
    """Enable the stockturn theme inside the block (restores the previous theme afterwards)."""
    with alt.theme.enable(THEME_NAME):
        yield


@contextmanager
def currency(symbol: str) -> Iterator[None]:
    """Use ``symbol`` as the currency of the Python formatters inside the block."""
    token = CURRENCY.set(symbol)
    try:
        yield
    finally:
        CURRENCY.reset(token)


def format_locale(currency: str) -> dict:
    """d3-format locale: comma thousands, point decimal, ``currency`` as prefix (used by "$" formats)."""
    return {"decimal": ".", "thousands": ",", "grouping": [3], "currency": [currency, ""]}


def money_axis(title: str | None = None) -> alt.Axis:
    """An axis for amounts: $950, $12k, $3.4m, $1.2bn (finance abbreviations, not SI's G)."""
    expr = (
        "abs(datum.value) >= 1e9 ? format(datum.value / 1e9, '$,.1f') + 'bn' : "
        "abs(datum.value) >= 1e6 ? format(datum.value / 1e6, '$,.1f') + 'm' : "
        "abs(datum.value) >= 1e4 ? format(datum.value / 1e3, '$,.0f') + 'k' : format(datum.value, '$,.0f')"
    )
    return alt.Axis(title=title, labelExpr=expr, format=FMT_MONEY)


# ------------------------------------------------------------------------------------------ Python formatters


def _missing(value: float | int | None) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def money(value: float | None, *, digits: int = 0) -> str:
    """1234567.8 -> "$1,234,568"; negatives as "-$1,234" (currency from :data:`CURRENCY`)."""
    if _missing(value):
        return "n/a"
    sign = "-" if value < 0 else ""
    return f"{sign}{CURRENCY.get()}{abs(value):,.{digits}f}"


def money_short(value: float | None) -> str:
    """Compact amounts for headlines: $950, $12.3k, $3.4m, $1.2bn."""
    if _missing(value):
        return "n/a"
    sign = "-" if value < 0 else ""
    v = abs(value)
    if v >= 1e9:
        text = f"{v / 1e9:,.1f}bn"
    elif v >= 1e6:
        text = f"{v / 1e6:,.1f}m"
    elif v >= 1e4:
        text = f"{v / 1e3:,.0f}k"
    elif v >= 1e3:
        text = f"{v / 1e3:,.1f}k"
    else:
        text = f"{v:,.0f}"
    return f"{sign}{CURRENCY.get()}{text}"


def pct(value: float | None, digits: int = 1) -> str:
    """0.0572 -> "5.7%"."""
    return "n/a" if _missing(value) else f"{100 * value:,.{digits}f}%"


def number(value: float | int | None, digits: int = 0) -> str:
    """12345.678 -> "12,346" (digits=0) or "12,345.7" (digits=1)."""
    return "n/a" if _missing(value) else f"{value:,.{digits}f}"


def rate(value: float | None) -> str:
    """Quantities per day: 0.036 -> "0.04", 7.71 -> "7.7", 1234.5 -> "1,235"."""
    if _missing(value):
        return "n/a"
    digits = 2 if abs(value) < 1 else 1 if abs(value) < 100 else 0
    return f"{value:,.{digits}f}"


def days(value: float | None) -> str:
    """52.4 -> "52 days"."""
    if _missing(value):
        return "n/a"
    return f"{value:,.0f} day" if round(value) == 1 else f"{value:,.0f} days"


def turns(value: float | None) -> str:
    """7.04 -> "7.0x"."""
    return "n/a" if _missing(value) else f"{value:,.1f}x"


def change(current: float | None, previous: float | None, *, kind: str = "relative") -> str | None:
    """Change from ``previous`` to ``current``: "+4.1%" (relative) or "+0.6 pts" (points, for rates)."""
    if _missing(current) or _missing(previous):
        return None
    if kind == "points":
        return f"{100 * (current - previous):+,.1f} pts"
    if previous == 0:
        return None
    return f"{100 * (current / previous - 1):+,.1f}%"

"""Polars expressions that render numbers for the plain-words reasons planners read (vectorised, no Python loops)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import polars as pl


def units(expr: pl.Expr) -> pl.Expr:
    """Whole numbers without decimals ("12"), others with one ("12.5"); null -> "n/a"."""
    expr = expr.cast(pl.Float64)
    r1 = expr.round(1)
    whole = (r1 - r1.round(0)).abs() < 1e-9
    return (
        pl.when(expr.is_null() | expr.is_nan()).then(pl.lit("n/a"))
        .when(expr.is_infinite()).then(pl.lit("inf"))
        .when(whole).then(r1.round(0).cast(pl.Int64, strict=False).cast(pl.String))
        .otherwise(r1.cast(pl.String))
    )


def dec(expr: pl.Expr, digits: int = 2) -> pl.Expr:
    """Rounded to ``digits`` decimals; null/NaN -> "n/a", infinity -> "inf"."""
    expr = expr.cast(pl.Float64)
    return (
        pl.when(expr.is_null() | expr.is_nan()).then(pl.lit("n/a"))
        .when(expr.is_infinite()).then(pl.lit("inf"))
        .otherwise(expr.round(digits).cast(pl.String))
    )


def money(expr: pl.Expr) -> pl.Expr:
    """Rounded to a whole currency unit ("1234"); null -> "n/a"."""
    expr = expr.cast(pl.Float64)
    return pl.when(expr.is_null() | expr.is_nan() | expr.is_infinite()).then(pl.lit("n/a")).otherwise(
        expr.round(0).cast(pl.Int64, strict=False).cast(pl.String))


def pct(expr: pl.Expr) -> pl.Expr:
    """A fraction as a whole percentage ("25%")."""
    expr = expr.cast(pl.Float64)
    return pl.when(expr.is_null() | expr.is_nan()).then(pl.lit("n/a")).otherwise(
        pl.format("{}%", (expr * 100).round(0).cast(pl.Int64, strict=False)))


def stable_id(parts: Iterable[Iterable[object]]) -> list[str]:
    """16-hex-digit SHA-256 ids of '|'-joined parts: stable across library versions and runs."""
    return [hashlib.sha256("|".join("" if p is None else str(p) for p in row).encode()).hexdigest()[:16]
            for row in parts]

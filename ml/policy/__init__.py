"""Replenishment policy: inventory math (safety stock, reorder points, order quantities) on top of the forecasts.

``ml.policy.inventory_math`` holds the vectorised formulas (plain numpy/scipy, no I/O).
"""

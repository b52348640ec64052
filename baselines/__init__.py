"""Baseline methods deepemg is compared against."""

from .synergy import SynergyExtrapolationRegressor, variance_accounted_for

__all__ = ["SynergyExtrapolationRegressor", "variance_accounted_for"]

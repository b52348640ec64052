"""Baseline methods deepemg is compared against (muscle synergy extrapolation comes here)."""

__all__: list[str] = []

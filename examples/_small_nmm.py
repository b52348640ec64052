"""The small NMM the examples train in seconds; the benchmark's default network is larger.

The examples run as ``python examples/<name>.py``, which finds this module beside them.
"""

SMALL_NMM = dict(window=50, d_model=16, n_heads=2, n_layers=1, batch_size=16, random_state=0)
"""``NMMRegressor`` settings of the examples: 50-step windows, a 16-wide one-layer Transformer."""

"""What makes a fit fast (issue 20, item 3) stays as it was chosen: no attention dropout, and
the optimiser's foreach update, which gives the numbers of the per-parameter loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepemg import NMMRegressor, training
from deepemg.network import EMGTransformer

from ..conftest import FAST_NMM


@pytest.fixture(scope="module")
def data(two_subjects):
    return two_subjects


def _dropouts(model: NMMRegressor) -> tuple[set, set]:
    """The attention dropouts and the other dropouts' ``p`` of a fitted model's network."""
    layers = list(model.net_.module_.network.modules())
    attention = {m.dropout for m in layers if isinstance(m, torch.nn.MultiheadAttention)}
    return attention, {m.p for m in layers if isinstance(m, torch.nn.Dropout)}


def test_the_network_drops_no_attention_weights_by_default():
    network = EMGTransformer(4, 7, d_model=8, n_heads=2, n_layers=2, dropout=0.2)
    attention = [m for m in network.modules() if isinstance(m, torch.nn.MultiheadAttention)]
    assert len(attention) == 2
    assert {m.dropout for m in attention} == {0.0}
    assert {m.p for m in network.modules() if isinstance(m, torch.nn.Dropout)} == {0.2}
    opted_in = EMGTransformer(4, 7, d_model=8, n_heads=2, n_layers=1, attention_dropout=0.1)
    assert {m.dropout for m in opted_in.modules() if hasattr(m, "in_proj_weight")} == {0.1}


def test_a_fit_and_a_warm_fit_drop_out_everywhere_but_the_attention(data):
    model = NMMRegressor(random_state=0, **{**FAST_NMM, "max_epochs": 1, "dropout": 0.2})
    model.fit(data.X, data.y, subject_ids=data.groups)
    assert _dropouts(model) == ({0.0}, {0.2})
    model.set_params(warm_start=True, dropout=0.3).fit(data.X, data.y, subject_ids=data.groups)
    assert _dropouts(model) == ({0.0}, {0.3})


def test_the_foreach_update_gives_the_numbers_of_the_loop(data, monkeypatch):
    def fit():
        model = NMMRegressor(random_state=0, **{**FAST_NMM, "max_epochs": 2})
        return model.fit(data.X, data.y, subject_ids=data.groups).predict(data.X, data.groups)

    assert training.optimizer_params(NMMRegressor().get_params())["optimizer__foreach"]
    foreach = fit()
    loop = training.optimizer_params
    monkeypatch.setattr(
        training, "optimizer_params", lambda p: {**loop(p), "optimizer__foreach": False}
    )
    np.testing.assert_allclose(fit(), foreach, rtol=0, atol=1e-6)

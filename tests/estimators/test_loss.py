"""Terms of the NMM's loss against closed forms."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepemg.nmm_module import RATIO_FLOOR, NMMLoss


def _target(surface, n_muscles, unmeasured):
    """The criterion's target: EMG (NaN where unmeasured) and a zero torque."""
    emg = torch.full((*surface.shape[:2], n_muscles), float("nan"), dtype=torch.float64)
    measured = [j for j in range(n_muscles) if j not in unmeasured]
    emg[..., measured] = surface
    return {"emg": emg, "torque": torch.zeros(surface.shape[:2], dtype=torch.float64)}


def test_synergy_term_zero_inside_the_span_one_outside():
    t = torch.linspace(0, 1, 200, dtype=torch.float64)
    surface = torch.stack([torch.sin(np.pi * t) ** 2, t, 1 - t], dim=-1)[None]  # (1, T, 3)
    loss = NMMLoss(unmeasured=[3], ridge=1e-9)
    target = _target(surface, 4, [3])["emg"]
    inside = surface @ torch.tensor([[0.5], [0.2], [0.1]], dtype=torch.float64)
    emg = torch.cat([surface, inside], dim=-1)
    assert float(loss.synergy(emg, target)) == pytest.approx(0.0, abs=1e-9)
    # a deep EMG orthogonal to all three surface channels: nothing of it is in their span
    basis, _ = torch.linalg.qr(torch.cat([surface[0], torch.cos(7 * np.pi * t)[:, None]], 1))
    outside = basis[:, 3:4][None]
    emg = torch.cat([surface, outside], dim=-1)
    assert float(loss.synergy(emg, target)) == pytest.approx(1.0, abs=1e-9)


def test_synergy_term_is_weighted_into_the_loss_and_logged():
    torch.manual_seed(0)
    emg = torch.rand(2, 50, 3, dtype=torch.float64)
    torque = torch.zeros(2, 50, dtype=torch.float64)
    y = _target(torch.rand(2, 50, 2, dtype=torch.float64), 3, [2])
    without = NMMLoss(unmeasured=[2], effort_weight=0.0, synergy_weight=0.0)((emg, torque), y)
    loss = NMMLoss(unmeasured=[2], effort_weight=0.0, synergy_weight=2.0)
    total = loss((emg, torque), y)
    assert float(total - without) == pytest.approx(2 * float(loss.terms["synergy_loss"]))
    assert 0 < float(loss.terms["synergy_loss"]) < 1


def test_synergist_term_is_the_squared_gap_of_window_means():
    """Muscle 3 (unmeasured) against the mean of its synergists 0 and 1, per window."""
    surface = torch.zeros(3, 40, 3, dtype=torch.float64)
    surface[..., 0], surface[..., 1], surface[..., 2] = 0.1, 0.3, 0.9  # synergists' mean 0.2
    surface[2, 5, 1] = float("nan")  # a gap in a synergist: window 2 left out
    y = _target(surface, 4, [3])
    emg = torch.zeros(3, 40, 4, dtype=torch.float64)
    emg[0, :, 3] = 0.5  # gap 0.3
    emg[1, :, 3] = torch.linspace(0.0, 0.4, 40, dtype=torch.float64)  # mean 0.2: gap 0
    emg[2, :, 3] = 5.0  # not counted
    settings = dict(unmeasured=[3], effort_weight=0.0, synergy_weight=0.0)
    without = float(NMMLoss(**settings)((emg, y["torque"]), y))
    loss = NMMLoss(**settings, synergist_weight=2.0, synergists={3: [0, 1]})
    total = float(loss((emg, y["torque"]), y))
    assert float(loss.terms["synergist_loss"]) == pytest.approx((0.3**2 + 0.0) / 2)
    assert total - without == pytest.approx(2 * 0.045)
    assert float(NMMLoss(unmeasured=[3]).synergist(emg, y["emg"])) == 0.0  # no synergists
    # an ensemble member's offset (logits) moves the level it holds the muscle to
    offset = NMMLoss(unmeasured=[3], synergists={3: [0, 1]}, synergist_offset=np.log(3.0))
    shifted = 1 / (1 + (0.8 / 0.2) / 3.0)  # sigmoid(logit(0.2) + ln 3) = 3/7
    expected = ((0.5 - shifted) ** 2 + (0.2 - shifted) ** 2) / 2
    assert float(offset.synergist(emg, y["emg"])) == pytest.approx(expected)


def test_synergist_level_term_is_the_squared_gap_of_log_means_of_the_levelled_emg():
    """The third output (the EMG with the subjects' level) against the synergists' mean 0.2,
    in log ratio: a muscle at half its synergists' level costs ln(2)², at twice it the same."""
    surface = torch.zeros(2, 40, 3, dtype=torch.float64)
    surface[..., 0], surface[..., 1] = 0.1, 0.3  # synergists' mean 0.2
    y = _target(surface, 4, [3])
    emg = torch.full((2, 40, 4), 0.2, dtype=torch.float64)  # the network's own: no gap
    levelled = emg.clone()
    levelled[0, :, 3], levelled[1, :, 3] = 0.1, 0.4
    settings = dict(unmeasured=[3], effort_weight=0.0, synergy_weight=0.0)
    settings.update(synergist_weight=2.0, synergists={3: [0, 1]})
    without = float(NMMLoss(**settings)((emg, y["torque"], levelled), y))
    loss = NMMLoss(**settings, synergist_level_weight=0.5)
    total = float(loss((emg, y["torque"], levelled), y))
    eps = RATIO_FLOOR
    gaps = [np.log((0.1 + eps) / (0.2 + eps)) ** 2, np.log((0.4 + eps) / (0.2 + eps)) ** 2]
    assert float(loss.terms["synergist_loss"]) == pytest.approx(0.0)
    assert float(loss.terms["synergist_level_loss"]) == pytest.approx(np.mean(gaps))
    assert total - without == pytest.approx(0.5 * np.mean(gaps))
    assert gaps[0] == pytest.approx(gaps[1], rel=0.02)  # half and twice weigh alike
    # without a levelled output the term is 0
    loss((emg, y["torque"]), y)
    assert float(loss.terms["synergist_level_loss"]) == 0.0


def test_two_drives_average_their_torque_residuals():
    emg = torch.zeros(1, 20, 2, dtype=torch.float64)
    y = _target(torch.zeros(1, 20, 0, dtype=torch.float64), 2, [0, 1])
    loss = NMMLoss(effort_weight=0.0, torque_scale=2.0, burn_in=5)
    one = torch.full((1, 20), 1.0, dtype=torch.float64)
    three = torch.full((1, 20), 3.0, dtype=torch.float64)
    loss((emg, torch.stack([one, three])), y)
    # residuals / scale: 0.5 and 1.5, squared 0.25 and 2.25: mean 1.25
    assert float(loss.terms["physics_loss"]) == pytest.approx(1.25)

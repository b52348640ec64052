"""device="cuda": fit, predict with the correction, personalize, save and load on a GPU.

Skipped where torch sees no GPU (this project's CI has none); run on a machine with one, as
benchmarks/bench_gpu.py was (docs/results/gpu.txt): device="cuda" did not run at all before
that run, because tensors of the activation filter, the curves, the subject parameters and the
loss's target were made on the CPU.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepemg import NMMRegressor

from ..conftest import FAST_NMM

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def test_fit_predict_personalize_save_load_on_cuda(two_subjects, tmp_path):
    data = two_subjects
    params = {**FAST_NMM, "predict_physics": "torque", "correction_steps": 5}
    nmm = NMMRegressor(device="cuda", random_state=0, **params)
    nmm.fit(data.X, data.y, subject_ids=data.groups)
    assert next(nmm.net_.module_.parameters()).device.type == "cuda"
    emg = nmm.predict(data.X, data.groups)
    assert emg.shape == data.y.shape
    assert np.isfinite(emg).all()
    assert np.isfinite(nmm.predict_torque(data.X, data.groups)).all()
    nmm.personalize(data.X[:2], subject_ids=["new", "new"], max_epochs=1)
    loaded = NMMRegressor.load(nmm.save(tmp_path / "cuda.deepemg"), device="cpu")
    np.testing.assert_allclose(loaded.predict(data.X, data.groups), emg, atol=1e-4)

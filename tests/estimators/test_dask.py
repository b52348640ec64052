"""Leave-one-subject-out folds and grid searches on a Dask cluster give the serial results.

A local ``distributed`` cluster (two worker processes, one thread each; nothing leaves the
machine) runs scikit-learn's folds through joblib's ``"dask"`` backend. Every fit is seeded by
``random_state`` in its own forked torch RNG, so each fold's result depends only on its data and
seed, not on where it runs. The serial reference runs with one torch thread, as the workers do
(the nanny sets ``OMP_NUM_THREADS=1``): a different intra-op thread count changes the order of
float reductions and the scores in the last digits (about 1e-8 relative).
"""

from __future__ import annotations

import os

import joblib
import numpy as np
import pytest
import torch
from sklearn import config_context
from sklearn.model_selection import GridSearchCV, LeaveOneGroupOut

from baselines import SynergyExtrapolationRegressor
from deepemg import NMMRegressor
from deepemg.model_selection import leave_one_subject_out

from ..conftest import FAST_NMM, simulated

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return simulated(tmp_path_factory, 3, 3, 2.0)


@pytest.fixture(scope="module")
def client():
    # processes=True: each worker has its own torch global RNG. Threads in one process would
    # share it, and fits running at the same time would draw from each other's seeds. A
    # LocalCluster writes its workers' variables (OMP_NUM_THREADS=1, MALLOC_TRIM_THRESHOLD_...)
    # into this process's environment: put it back after, or later tests' subprocesses inherit
    # them (docs/scaling.md, "Measured: folds on Dask against one process").
    environment = dict(os.environ)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client
    os.environ.clear()
    os.environ.update(environment)


@pytest.fixture
def one_torch_thread():
    """Run the serial reference with the workers' torch thread count."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _leave_one_subject_out(estimator, data, n_jobs):
    return leave_one_subject_out(
        estimator, data.X, data.y, data.groups, n_jobs=n_jobs, return_estimator=True
    )


def test_workers_use_one_torch_thread(client):
    threads = client.run(torch.get_num_threads)
    assert len(threads) == 2
    assert set(threads.values()) == {1}


def test_leave_one_subject_out_on_dask_matches_serial(data, client, one_torch_thread):
    serial = _leave_one_subject_out(NMMRegressor(random_state=0, **FAST_NMM), data, n_jobs=1)
    with joblib.parallel_config(backend="dask"):
        on_dask = _leave_one_subject_out(NMMRegressor(random_state=0, **FAST_NMM), data, n_jobs=2)
    assert len(serial["test_score"]) == 3
    np.testing.assert_array_equal(on_dask["test_score"], serial["test_score"])
    for a, b in zip(serial["estimator"], on_dask["estimator"], strict=True):
        assert list(a.subjects_) == list(b.subjects_)
        assert len(a.subjects_) == 2
        np.testing.assert_array_equal(a.predict(data.X), b.predict(data.X))
        assert a.subject_params_ == b.subject_params_


def test_grid_search_on_dask_matches_serial(data, client, one_torch_thread):
    def search(n_jobs):
        with config_context(enable_metadata_routing=True):
            return GridSearchCV(
                NMMRegressor(random_state=0, **FAST_NMM).set_fit_request(subject_ids=True),
                {"physics_weight": [0.0, 1.0]},
                cv=LeaveOneGroupOut(),
                refit=False,
                n_jobs=n_jobs,
            ).fit(data.X, data.y, groups=data.groups, subject_ids=data.groups)

    serial = search(n_jobs=1)
    with joblib.parallel_config(backend="dask"):
        on_dask = search(n_jobs=2)
    for key in ("mean_test_score", "split0_test_score", "split1_test_score", "split2_test_score"):
        np.testing.assert_array_equal(on_dask.cv_results_[key], serial.cv_results_[key])
    assert on_dask.best_params_ == serial.best_params_


def test_synergy_baseline_on_dask_matches_serial(data, client, one_torch_thread):
    def mse():  # its score takes the subjects too (each subject's synergies)
        model = SynergyExtrapolationRegressor(n_synergies=2, max_iter=5, random_state=0)
        with config_context(enable_metadata_routing=True):
            return model.set_score_request(subject_ids=True)

    serial = _leave_one_subject_out(mse(), data, n_jobs=1)
    with joblib.parallel_config(backend="dask"):
        on_dask = _leave_one_subject_out(mse(), data, n_jobs=2)
    np.testing.assert_array_equal(on_dask["test_score"], serial["test_score"])
    # the score reconstructs the surface channels; compare the extrapolated muscles too
    for a, b in zip(serial["estimator"], on_dask["estimator"], strict=True):
        np.testing.assert_array_equal(a.predict(data.X), b.predict(data.X))

"""Personalised EMG: a learned code per subject conditions the network (``subject_embedding``).

Known truth: simulated subjects whose flexors (the never-measured brachialis with the surface
ones) all follow the subject's own pattern over the joint angle (a closed-form strategy), with
the torque that the nominal muscle model makes from that EMG. A new subject's surface EMG and
torque tell its strategy; the tests check that ``personalize`` carries it to the predicted EMG
of the surface muscles and of the brachialis, that ``fit`` learns codes that tell the subjects
apart, and that saving, ensembles and streaming carry the codes. Freezing the code in
``personalize``, or leaving it out of the network, turns them red.
"""

from __future__ import annotations

import copy
import json
import zipfile

import numpy as np
import pytest
import torch

from deepemg import ELBOW_CHANNELS, NMMEnsemble, NMMRegressor
from deepemg.benchmark import deep_muscle_metrics
from deepemg.metrics import UnseenSubjectWarning
from deepemg.network import EMGTransformer
from deepemg.persistence import load_model, save_model
from deepemg.physics import SubjectParameters
from deepemg.streaming import StreamingPredictor

from ..conftest import FAST_NMM

SMALL = dict(window=50, d_model=16, n_heads=2, n_layers=1, batch_size=16, predict_physics="none")
TRAINING = {"A": -1.0, "B": 0.0, "C": 1.0}
"""Each training subject's strategy: how much more its flexors work in flexion than in
extension (0: as the torque asks)."""
NEW = ("D", 0.9)
"""The subject left out of fit, close to C."""
BRA, SURFACE = 2, [0, 1, 3]  # brachialis; biceps long and short heads, brachioradialis


def _subject(elbow, strategy: float, n_sequences: int, seed: int):
    """``X``, ``y`` (brachialis NaN) and the true EMG of one subject's random lifts."""
    rng = np.random.default_rng(seed)
    rate, n = 100.0, 200
    t = np.arange(n) / rate
    X = np.zeros((n_sequences, n, len(ELBOW_CHANNELS)))
    truth = np.zeros((n_sequences, n, 7))
    for i in range(n_sequences):
        phase, frequency = rng.uniform(0, 2 * np.pi), rng.uniform(0.3, 0.8)
        angle = 1.2 + 0.6 * np.sin(2 * np.pi * frequency * t + phase)
        velocity = np.gradient(angle, 1 / rate)
        acceleration = np.gradient(velocity, 1 / rate)
        load = rng.uniform(0.0, 5.0)
        X[i, :, :4] = np.stack([angle, velocity, acceleration, np.full(n, load)], axis=1)
        kinematics = [torch.tensor(a) for a in (angle, velocity, acceleration)]
        need = elbow.inverse_dynamics(*kinematics, load_mass=load).numpy()
        flexors = np.clip(need / 40.0, 0.02, 1.0)
        # the subject's pattern, shared by its flexors: more active in flexion (strategy > 0)
        # or in extension (< 0) than the torque alone asks for
        flexors = flexors * (1.0 + 0.8 * strategy * (angle - 1.2) / 0.6)
        truth[i, :, [0, 1]] = np.clip(flexors, 0.0, 1.0)
        truth[i, :, 3] = np.clip(0.8 * flexors, 0.0, 1.0)
        truth[i, :, BRA] = np.clip(1.2 * flexors, 0.0, 1.0)
        truth[i, :, 4:] = 0.02
        with torch.no_grad():
            activation = elbow.activation(torch.tensor(truth[i]), rate)
            X[i, :, 4] = elbow.joint_torque(activation, kinematics[0], kinematics[1]).numpy()
    X[..., 5:] = truth[..., [0, 1, 3, 4, 5]]
    y = truth.copy()
    y[..., BRA] = np.nan
    return X, y, truth


@pytest.fixture(scope="module")
def subjects(elbow):
    parts = [
        _subject(elbow, strategy, 8, seed)
        for seed, strategy in enumerate([*TRAINING.values(), NEW[1]])
    ]
    X, y, truth = (np.concatenate([p[k] for p in parts[:3]]) for k in range(3))
    groups = np.repeat(list(TRAINING), 8)
    return (X, y, truth, groups), parts[3]


@pytest.fixture(scope="module")
def coded(subjects):
    """Fitted on the three training subjects, with codes of length 4.

    The network reads the kinematics only and the torque trains it (0.5's NMM), so a subject's
    strategy can come only from its code."""
    X, y, _, groups = subjects[0]
    model = NMMRegressor(
        subject_embedding=4,
        max_epochs=40,
        lr=5e-3,
        emg_inputs=False,
        physics_trains="all",
        random_state=0,
        **SMALL,
    )
    return model.fit(X, y, subject_ids=groups)


def _rmse(truth, prediction, muscles) -> float:
    return float(np.sqrt(np.mean((truth[..., muscles] - prediction[..., muscles]) ** 2)))


def test_personalize_moves_a_new_subjects_emg_towards_its_own(coded, subjects):
    X, y, truth = subjects[1]
    own, test = slice(0, 4), slice(4, 8)  # personalised on 4 lifts, scored on 4 others
    ids = np.full(4, NEW[0])
    population = coded.predict(X[test])
    model = copy.deepcopy(coded)
    network = {k: v.clone() for k, v in model.net_.module_.network.state_dict().items()}
    model.personalize(X[own], y[own], subject_ids=ids, max_epochs=30)
    personal = model.predict(X[test], ids)
    # measured: BRA r 0.56 -> 0.93, RMSE 0.224 -> 0.194; surface RMSE 0.108 -> 0.039
    r = [deep_muscle_metrics(truth[test][..., BRA], e[..., BRA])[0] for e in (population, personal)]
    bra = [_rmse(truth[test], e, [BRA]) for e in (population, personal)]
    surface = [_rmse(truth[test], e, SURFACE) for e in (population, personal)]
    assert r[1] > r[0] + 0.2, r
    assert r[1] > 0.85, r
    assert bra[1] < 0.95 * bra[0], bra
    assert surface[1] < 0.7 * surface[0], surface
    np.testing.assert_array_equal(model.predict(X[test]), population)  # None: population
    for name, value in model.net_.module_.network.state_dict().items():
        assert torch.equal(value, network[name]), name  # the network is frozen
    history = model.personalize_history_
    assert history[-1, "train_data_loss"] < 0.5 * history[0, "train_data_loss"]


def test_without_codes_personalize_changes_only_the_deep_muscles_level(subjects):
    """Without codes the network's EMG is the subject's only through the EMG level of the
    muscles without EMG: the surface muscles' EMG stays, the deep ones' logits move by the
    new subject's level, the same at every sample."""
    from scipy.special import logit

    X, y, _, groups = subjects[0]
    X_new, y_new, _ = subjects[1]
    model = NMMRegressor(random_state=0, **FAST_NMM).fit(X[::4], y[::4], subject_ids=groups[::4])
    before = model.predict(X_new, predict_physics="level")  # the fitted subjects' mean level
    ids = np.full(len(X_new), NEW[0])
    model.personalize(X_new, y_new, subject_ids=ids, max_epochs=2)
    after = model.predict(X_new, ids, predict_physics="level")
    deep = model.net_.module_.levelled
    assert deep == [j for j in range(y.shape[-1]) if np.isnan(y[..., j]).all()]
    surface = [j for j in range(y.shape[-1]) if j not in deep]
    np.testing.assert_array_equal(after[..., surface], before[..., surface])
    row = model.subjects_.tolist().index(NEW[0])
    level = model.net_.module_.level_offset(torch.tensor([row]))[0, deep].detach().numpy()
    assert np.abs(level).min() > 1e-3  # the torque moved it
    # exactly the level where one window covers a sample; where overlapping windows are
    # averaged, the mean of the shifted sigmoids, a little off
    shift = (logit(after[..., deep]) - logit(before[..., deep])).reshape(-1, len(deep))
    np.testing.assert_allclose(np.median(shift, axis=0), level, atol=1e-6)
    np.testing.assert_allclose(shift, np.broadcast_to(level, shift.shape), atol=0.05)
    assert model.subject_codes_.shape == (4, 0)
    keys = model.net_.module_.state_dict()
    new = {"subject_parameters.code", "network.condition.weight", "network.code_offset"}
    assert not new & set(keys)  # the module as before subject codes


def test_fit_learns_distinct_codes_and_predict_uses_them(coded, subjects, elbow):
    X, _, _, groups = subjects[0]
    codes = coded.subject_codes_
    assert codes.shape == (3, 4)
    np.testing.assert_allclose(codes.mean(axis=0), 0.0, atol=1e-6)  # centred: 0 = population
    distances = [np.linalg.norm(codes[a] - codes[b]) for a, b in ((0, 1), (0, 2), (1, 2))]
    assert min(distances) > 0.1, codes
    # B's lifts as each training subject makes them (same seed, the subject's strategy): the
    # EMG predicted with a subject's code is nearest to that subject's
    lifts = X[groups == "B"]
    truths = {s: _subject(elbow, k, 8, seed=1)[2] for s, k in TRAINING.items()}
    for subject in TRAINING:
        emg = coded.predict(lifts, np.full(len(lifts), subject))
        surface = {s: _rmse(truth, emg, SURFACE) for s, truth in truths.items()}
        deep = {s: deep_muscle_metrics(t[..., BRA], emg[..., BRA])[0] for s, t in truths.items()}
        assert min(surface, key=surface.get) == subject, (subject, surface)
        assert max(deep, key=deep.get) == subject, (subject, deep)
    # None: the population's code 0, the subjects' mean, nearest to the average strategy (B)
    population = coded.predict(lifts)
    surface = {s: _rmse(truth, population, SURFACE) for s, truth in truths.items()}
    assert min(surface, key=surface.get) == "B", surface
    with torch.no_grad():
        code = coded.net_.module_.subject_parameters.codes(torch.tensor([-1, 1]))
    assert code[0].abs().max() == 0
    assert code[1].abs().max() > 0
    with pytest.warns(UnseenSubjectWarning, match="personalize"):
        unseen = coded.predict(lifts, np.full(len(lifts), "Z"))
    np.testing.assert_array_equal(unseen, population)


def test_codes_survive_saving_and_streaming(coded, subjects, tmp_path):
    X, _, _, groups = subjects[0]
    path = save_model(coded, tmp_path / "coded.deepemg")
    loaded = load_model(path)
    assert loaded.subject_embedding == 4
    np.testing.assert_array_equal(loaded.subject_codes_, coded.subject_codes_)
    for ids in (groups, None):
        np.testing.assert_array_equal(loaded.predict(X, ids), coded.predict(X, ids))
    assert loaded.subject_params_ == coded.subject_params_  # codes are not physical parameters
    assert len(coded.subject_params_) == 3 * 32
    # streaming with a subject equals predict with it
    trial = X[groups == "C"][0]
    for subject in ("C", None):
        stream = StreamingPredictor(coded, subject=subject)
        outputs = [stream.update(trial[t : t + 7]) for t in range(0, len(trial), 7)]
        emg = np.concatenate([o.emg for o in [*outputs, stream.finish()]])
        expected = coded.predict(trial[None], None if subject is None else [subject])[0]
        np.testing.assert_allclose(emg, expected, atol=1e-6)
    with pytest.warns(UnseenSubjectWarning, match="'Z' was not seen in fit"):
        unseen = StreamingPredictor(coded, subject="Z")
    emg = np.concatenate([unseen.update(trial).emg, unseen.finish().emg])
    np.testing.assert_allclose(emg, coded.predict(trial[None])[0], atol=1e-6)  # population's


def test_old_files_and_networks_without_codes(subjects, tmp_path):
    X, y, _, groups = subjects[0]
    model = NMMRegressor(random_state=0, **FAST_NMM).fit(X[::4], y[::4], subject_ids=groups[::4])
    path = save_model(model, tmp_path / "old.deepemg")
    with zipfile.ZipFile(path) as archive:  # as deepemg wrote it before subject codes
        files = {name: archive.read(name) for name in archive.namelist()}
    header = json.loads(files["deepemg.json"])
    del header["params"]["subject_embedding"]
    header["format_version"] = 1
    files["deepemg.json"] = json.dumps(header).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    old = load_model(path)
    assert old.subject_embedding == 0
    np.testing.assert_array_equal(old.predict(X), model.predict(X))
    # a code adds its layer last: the other weights are drawn as without it, and code 0 is
    # the network without codes, bit for bit
    torch.manual_seed(0)
    plain = EMGTransformer(4, 7, d_model=16, n_heads=2, n_layers=1).eval()
    torch.manual_seed(0)
    conditioned = EMGTransformer(4, 7, d_model=16, n_heads=2, n_layers=1, code_dim=3).eval()
    for name, value in plain.state_dict().items():
        assert torch.equal(value, conditioned.state_dict()[name]), name
    x = torch.randn(2, 50, 4)
    assert torch.equal(plain(x), conditioned(x, torch.zeros(2, 3)))
    assert not torch.equal(plain(x), conditioned(x, torch.ones(2, 3)))
    params = SubjectParameters(2, ["BRA"], code_dim=3)
    assert params.n_per_subject == 8
    assert len(params.table()) == 2 * 8
    with torch.no_grad():
        params.code.fill_(1.0)
    assert float(params.prior().detach()) == pytest.approx(1.0)  # codes pulled to 0
    assert params.subset([1, None]).codes(torch.tensor([0, 1])).tolist() == [[1.0] * 3, [0.0] * 3]


def test_ensemble_members_carry_their_own_codes(subjects):
    X, y, _, groups = subjects[0]
    X_new, y_new, _ = subjects[1]
    rows = np.r_[0:3, 8:11, 16:19]
    template = NMMRegressor(subject_embedding=2, **FAST_NMM)
    model = NMMEnsemble(template, n_members=2, n_jobs=1, random_state=0)
    model.fit(X[rows], y[rows], subject_ids=groups[rows])
    ids = np.full(len(X_new), NEW[0])
    population = model.predict(X_new)
    model.personalize(X_new, y_new, subject_ids=ids, max_epochs=2)
    mean, std = model.predict(X_new, ids, return_std=True)
    assert mean.shape == std.shape == y_new.shape
    first, second = (m.subject_codes_ for m in model.estimators_)
    assert first.shape == (4, 2)
    assert not np.array_equal(first, second)
    assert np.abs(first[3]).max() > 0
    assert np.abs(second[3]).max() > 0
    assert not np.array_equal(mean, population)
    np.testing.assert_array_equal(model.predict(X_new), population)

"""scikit-learn's common estimator checks, with the checks that cannot apply named.

deepemg's estimators take sequences: ``X`` is ``(n_sequences, n_timesteps, n_channels)`` with
named channels (kinematics, load, torque, EMG) and ``y`` is ``(n_sequences, n_timesteps,
n_muscles)``. Their tags say so (``input_tags.three_d_array=True``, ``two_d_array=False``;
``allow_nan=True`` for an NMM whose network does not read ``X``'s surface EMG channels
(``emg_inputs=False``), which may then hold NaN;
``single_output=False``), and ``test_tags_are_honest`` pins them.

scikit-learn 1.9's ``parametrize_with_checks`` yields no check at all for an estimator whose
tags lack ``two_d_array`` (``_yield_all_checks`` returns at once), which would silence the
checks that do apply (clone, parameters, repr, tags, no fitting on bad input, the
complex/sparse messages, ...). The checks therefore run on a test-only subclass of each
estimator (``NMMRegressorForChecks``, ``SynergyExtrapolationRegressorForChecks``) that differs
from it only in claiming 2-D input. Every check that then fits a 2-D table of random numbers
cannot apply and is an expected failure (strict: one that passes turns the test red); each has a
stand-in in ``tests/estimators/test_common_sequences.py`` that checks the same property on sequences
(``STAND_INS`` names it; ``test_every_expected_failure_has_a_stand_in`` keeps that complete).

``EMGEnvelope`` takes a 2-D recording ``(n_timesteps, n_channels)`` as well as 3-D sequences,
so it runs as it is. Its expected failures are the two checks that treat a 2-D array's rows as
independent samples (their order, subsets): a recording's rows are time steps, which a filter
mixes; its sequences are independent, as the stand-ins check.
"""

import pytest
from sklearn.utils import get_tags
from sklearn.utils.estimator_checks import parametrize_with_checks

from baselines import SynergyExtrapolationRegressor
from deepemg import NMMEnsemble, NMMRegressor
from deepemg.preprocessing import EMGEnvelope

from . import test_common_sequences


class NMMRegressorForChecks(NMMRegressor):
    """NMMRegressor claiming 2-D input too, only so that scikit-learn yields its checks."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = True
        return tags


class NMMEnsembleForChecks(NMMEnsemble):
    """NMMEnsemble claiming 2-D input too, only so that scikit-learn yields its checks."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = True
        return tags


class SynergyExtrapolationRegressorForChecks(SynergyExtrapolationRegressor):
    """SynergyExtrapolationRegressor claiming 2-D input too, only so that scikit-learn yields
    its checks."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = True
        return tags


# check -> its stand-in on sequences in tests/estimators/test_common_sequences.py
STAND_INS = {
    "check_fit_score_takes_y": "test_fit_and_score_take_X_and_y",
    "check_estimators_overwrite_params": "test_fit_leaves_the_parameters",
    "check_dont_overwrite_parameters": "test_fit_sets_only_fitted_attributes",
    "check_estimators_fit_returns_self": "test_fit_returns_self",
    "check_readonly_memmap_input": "test_read_only_memory_maps",
    "check_n_features_in_after_fitting": "test_n_features_in_after_fitting",
    "check_positive_only_tag_during_fit": "test_negative_values_fit",
    "check_estimators_dtypes": "test_dtypes",
    "check_dtype_object": "test_object_dtype",
    "check_estimators_empty_data_messages": "test_empty_data_messages",
    "check_pipeline_consistency": "test_pipeline_consistency",
    "check_estimators_pickle": "test_pickle",
    "check_f_contiguous_array_estimator": "test_fortran_ordered_X",
    "check_regressors_train": "test_regressor_train",
    "check_regressor_data_not_an_array": "test_array_likes",
    "check_regressor_multioutput": "test_every_muscle_is_predicted",
    "check_regressors_no_decision_function": "test_no_decision_function",
    "check_regressors_int": "test_integer_y",
    "check_methods_sample_order_invariance": "test_sequence_order_invariance",
    "check_methods_subset_invariance": "test_sequence_subset_invariance",
    "check_fit2d_1sample": "test_one_sequence",
    "check_fit2d_1feature": "test_one_channel",
    "check_dict_unchanged": "test_predictions_leave_the_estimator",
    "check_fit_idempotent": "test_fit_idempotent",
    "check_fit_check_is_fitted": "test_check_is_fitted",
    "check_n_features_in": "test_n_features_in",
    "check_fit2d_predict1d": "test_one_sequence_without_its_axis",
    "check_estimators_nan_inf": "test_nan_and_inf",
    "check_non_transformer_estimators_n_iter": "test_n_iter",
}

# every check below fits a 2-D table of random numbers
FITS_2D = [
    "check_fit_score_takes_y",
    "check_estimators_overwrite_params",
    "check_dont_overwrite_parameters",
    "check_estimators_fit_returns_self",
    "check_readonly_memmap_input",
    "check_n_features_in_after_fitting",
    "check_positive_only_tag_during_fit",
    "check_estimators_dtypes",
    "check_dtype_object",
    "check_estimators_empty_data_messages",
    "check_pipeline_consistency",
    "check_estimators_pickle",
    "check_f_contiguous_array_estimator",
    "check_regressors_train",
    "check_regressor_data_not_an_array",
    "check_regressor_multioutput",
    "check_regressors_no_decision_function",
    "check_regressors_int",
    "check_methods_sample_order_invariance",
    "check_methods_subset_invariance",
    "check_fit2d_1sample",
    "check_fit2d_1feature",
    "check_dict_unchanged",
    "check_fit_idempotent",
    "check_fit_check_is_fitted",
    "check_n_features_in",
    "check_fit2d_predict1d",
]
EXPECTED_FAILURES = {
    # X must be finite where read: by default the NMM's network reads X's EMG channels, so
    # allow_nan is False and sklearn runs its NaN check (on a 2-D table; sklearn skips it for
    # emg_inputs=False, which allows NaN in the EMG channels)
    NMMRegressorForChecks: [*FITS_2D, "check_estimators_nan_inf"],
    NMMEnsembleForChecks: [*FITS_2D, "check_estimators_nan_inf"],
    # MSE has max_iter, so sklearn wants n_iter_ after a fit on iris
    SynergyExtrapolationRegressorForChecks: [
        *FITS_2D,
        "check_estimators_nan_inf",
        "check_non_transformer_estimators_n_iter",
    ],
    # the rows of a 2-D recording are time steps, not independent samples
    EMGEnvelope: ["check_methods_sample_order_invariance", "check_methods_subset_invariance"],
}
FAST = dict(max_epochs=1, window=5, d_model=8, n_heads=2, n_layers=1)


def _expected_failed_checks(estimator):
    reason = (
        "rows of a 2-D recording are time steps: {}"
        if isinstance(estimator, EMGEnvelope)
        else "fits a 2-D table; deepemg's estimators take 3-D sequences with named channels: {}"
    )
    return {
        name: reason.format(
            f"stand-in tests/estimators/test_common_sequences.py::{STAND_INS[name]}"
        )
        for name in EXPECTED_FAILURES[type(estimator)]
    }


@parametrize_with_checks(
    [
        NMMRegressorForChecks(**FAST),
        NMMEnsembleForChecks(NMMRegressor(**FAST), n_members=2, n_jobs=1),
        SynergyExtrapolationRegressorForChecks(max_iter=2),
        EMGEnvelope(rate=2000.0),
    ],
    expected_failed_checks=_expected_failed_checks,
    xfail_strict=True,
)
def test_sklearn_common_checks(estimator, check):
    check(estimator)


def test_every_expected_failure_has_a_stand_in():
    for names in EXPECTED_FAILURES.values():
        for name in names:
            assert callable(getattr(test_common_sequences, STAND_INS[name], None)), name


@pytest.mark.parametrize(
    ("estimator", "allow_nan"),
    [
        (NMMRegressor(), False),
        (NMMRegressor(emg_inputs=False), True),
        (SynergyExtrapolationRegressor(), False),
    ],
    ids=["NMMRegressor", "NMMRegressor-kinematics-only", "SynergyExtrapolationRegressor"],
)
def test_tags_are_honest(estimator, allow_nan):
    tags = get_tags(estimator)
    assert tags.input_tags.three_d_array
    assert not tags.input_tags.two_d_array
    assert tags.input_tags.allow_nan is allow_nan
    assert tags.target_tags.multi_output
    assert not tags.target_tags.single_output
    assert not tags.input_tags.sparse
    assert not tags.input_tags.positive_only
    envelope = get_tags(EMGEnvelope(rate=2000.0)).input_tags
    assert envelope.two_d_array
    assert envelope.three_d_array
    assert not envelope.allow_nan


def test_the_checks_need_the_subclasses():
    """Without claiming 2-D input, scikit-learn would run no check at all."""
    from sklearn.utils.estimator_checks import estimator_checks_generator

    with pytest.warns(UserWarning, match="Can't test estimator"):
        checks = list(estimator_checks_generator(NMMRegressor(), legacy=True))
    assert len(checks) == 1  # check_estimator_cloneable only

"""scikit-learn's common estimator checks, with the checks that cannot apply named.

deepemg's estimators take sequences: ``X`` is ``(n_sequences, n_timesteps, n_channels)`` with
named channels (kinematics, load, torque, EMG) and ``y`` is ``(n_sequences, n_timesteps,
n_muscles)``. sklearn's checks feed 2-D tables of random numbers, so every check that has to fit
on such a table cannot apply; each is listed with that reason. The checks that can apply (clone,
parameters, repr, tags, no fitting on bad input, the NaN/complex/sparse messages, ...) must pass.
"""

from sklearn.utils.estimator_checks import parametrize_with_checks

from baselines import SynergyExtrapolationRegressor
from deepemg import NMMRegressor

SEQUENCES = (
    "fits 2-D tables; deepemg's estimators need 3-D sequences "
    "(n_sequences, n_timesteps, n_channels) with named kinematic channels"
)
NEEDS_SEQUENCES = [
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
    "check_supervised_y_2d",
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
    "check_estimators_nan_inf",
]
# MSE also has max_iter, so sklearn wants n_iter_ after a (2-D) fit
MSE_NEEDS_SEQUENCES = [
    *NEEDS_SEQUENCES,
    "check_non_transformer_estimators_n_iter",
]
FAST = dict(max_epochs=1, window=5, d_model=8, n_heads=2, n_layers=1)


def _expected_failed_checks(estimator):
    names = (
        MSE_NEEDS_SEQUENCES
        if isinstance(estimator, SynergyExtrapolationRegressor)
        else NEEDS_SEQUENCES
    )
    return {name: SEQUENCES for name in names}


@parametrize_with_checks(
    [NMMRegressor(**FAST), SynergyExtrapolationRegressor(max_iter=2)],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_common_checks(estimator, check):
    check(estimator)

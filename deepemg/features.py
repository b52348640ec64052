"""What the network reads: the kinematics, the load and, where recorded, the surface EMG.

The NMM's Transformer always reads the joint angle (rad), velocity (rad/s), acceleration
(rad/s²) and the load (kg). With ``emg_inputs`` it also reads ``X``'s surface EMG channels
(``emg_<muscle>``, envelopes in MVC units) of the trial it predicts, so the EMG of the muscles
no electrode records follows the subject's own recorded strategy within each trial, as muscle
synergy extrapolation's does, instead of one learned from the kinematics alone
(docs/nmm.md, "The surface EMG as an input"; issue 17 item 5).

The channels read are fixed at fit (:func:`emg_input_channels`) and recovered from a fitted
estimator's channel names and input count (:func:`fitted_emg_inputs`), so model files need no
new field. ``predict`` then needs the same channels, by name, in any order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .channels import emg_channel
from .validation import SequenceInputs, check_envelopes

__all__ = [
    "EMG_INPUT_OPTIONS",
    "N_KINEMATIC_INPUTS",
    "emg_input_channels",
    "fitted_emg_inputs",
    "network_inputs",
]

EMG_INPUT_OPTIONS = ("auto", True, False)
"""``emg_inputs``: "auto" reads every ``emg_<muscle>`` channel ``X`` has at fit, True requires
at least one, False reads none (kinematics and load only)."""

N_KINEMATIC_INPUTS = 4
"""Angle, velocity, acceleration and load: the inputs every network reads first."""


def emg_input_channels(names: Sequence[str], muscles: Sequence[str], emg_inputs) -> list[str]:
    """The surface EMG channels a network fitted on ``X`` with channels ``names`` reads.

    Parameters
    ----------
    names : sequence of str
        ``X``'s channel names.
    muscles : sequence of str
        The model's muscles, in order (the channels are read in this order).
    emg_inputs : {"auto", True, False}
        "auto": every ``emg_<muscle>`` channel of ``names``; True: the same, at least one;
        False: none.

    Returns
    -------
    list of str

    Raises
    ------
    ValueError
        With True when ``names`` holds no EMG channel of a model muscle.

    Examples
    --------
    >>> names = ["elbow_angle", "elbow_velocity", "elbow_acceleration", "load_mass",
    ...          "emg_BRD", "emg_BIClong"]
    >>> emg_input_channels(names, ["BIClong", "BRA", "BRD"], "auto")
    ['emg_BIClong', 'emg_BRD']
    >>> emg_input_channels(names, ["BIClong", "BRA", "BRD"], False)
    []
    """
    if emg_inputs is False:
        return []
    present = set(names)
    channels = [emg_channel(m) for m in muscles if emg_channel(m) in present]
    if emg_inputs is True and not channels:
        raise ValueError(
            "emg_inputs=True, but X has no surface EMG channel of the model's muscles "
            f"({', '.join(emg_channel(m) for m in muscles)}); its channels are {list(names)}. "
            "Name them with channels=, or set emg_inputs=False (kinematics and load only)."
        )
    return channels


def fitted_emg_inputs(channels: Sequence[str], muscles: Sequence[str], n_inputs: int) -> list[str]:
    """The EMG channels a fitted network reads, from its fit's channel names and input count.

    A network reads the kinematics and load (4 inputs), then every ``emg_<muscle>`` channel
    its fit's ``X`` had, in the muscles' order, or none: ``n_inputs`` says which.

    Examples
    --------
    >>> names = ["elbow_angle", "elbow_velocity", "elbow_acceleration", "load_mass", "emg_BRD"]
    >>> fitted_emg_inputs(names, ["BRA", "BRD"], 5), fitted_emg_inputs(names, ["BRA", "BRD"], 4)
    (['emg_BRD'], [])
    """
    if n_inputs == N_KINEMATIC_INPUTS:
        return []
    read = emg_input_channels(channels, muscles, "auto")
    if n_inputs != N_KINEMATIC_INPUTS + len(read):
        raise ValueError(
            f"a network with {n_inputs} inputs does not fit the channels {list(channels)}: "
            f"it reads the kinematics and load (4) and either none or all of {read}."
        )
    return read


def network_inputs(sequences: SequenceInputs, emg_channels: Sequence[str]) -> np.ndarray:
    """The network's inputs, ``(n_sequences, n_timesteps, 4 + len(emg_channels))``, float64.

    The kinematics and load (:attr:`~deepemg.validation.SequenceInputs.inputs`), then the
    EMG channels ``emg_channels`` of ``sequences.X``, checked as envelopes (MVC units, none
    negative, none above 1.5) and as they are (above 1 is kept: the network reads, it is not
    driven).

    Raises
    ------
    ValueError
        When ``X`` lacks a channel the network reads, or holds NaN in one (with the sequence
        and step).

    Examples
    --------
    >>> import numpy as np
    >>> from deepemg.opensim import elbow_model
    >>> from deepemg.validation import prepare_sequences
    >>> names = ["elbow_angle", "elbow_velocity", "elbow_acceleration", "load_mass", "emg_BRD"]
    >>> X = np.zeros((2, 5, 5)); X[..., 0] = 1.0; X[..., 4] = 0.3
    >>> seq = prepare_sequences(X, names, elbow_model())
    >>> network_inputs(seq, ["emg_BRD"]).shape
    (2, 5, 5)
    """
    if not emg_channels:
        return sequences.inputs
    missing = [c for c in emg_channels if c not in sequences.names]
    if missing:
        raise ValueError(
            f"X lacks {missing}: the network was fitted reading the surface EMG "
            f"{list(emg_channels)} (emg_inputs) and needs it for every trial it predicts. "
            "Give X those channels (name them with channels=), or fit with "
            "emg_inputs=False to predict from the kinematics and load alone."
        )
    emg = np.stack([sequences.channel(c) for c in emg_channels], axis=-1)
    bad = np.isnan(emg)
    if bad.any():
        s, t, c = np.argwhere(bad)[0]
        raise ValueError(
            f"X holds NaN in '{emg_channels[c]}' (first at sequence {s}, step {t}), a surface "
            "EMG channel the network reads (emg_inputs): interpolate the gap, or fit with "
            "emg_inputs=False to predict from the kinematics and load alone."
        )
    emg = check_envelopes(emg, "X's EMG channels", list(emg_channels))
    return np.concatenate([sequences.inputs, emg], axis=-1)

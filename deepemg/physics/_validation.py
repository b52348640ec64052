"""Input checks shared by the physics functions: clear errors instead of silent NaN."""

from __future__ import annotations

import torch


def as_float_tensor(value, name: str, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Return ``value`` as a floating tensor, raising a clear error on NaN or infinity."""
    tensor = torch.as_tensor(value, dtype=None if torch.is_tensor(value) else dtype)
    if not torch.is_floating_point(tensor):
        tensor = tensor.to(dtype or torch.get_default_dtype())
    elif dtype is not None:
        tensor = tensor.to(dtype)
    if not bool(torch.isfinite(tensor).all()):
        bad = (~torch.isfinite(tensor)).nonzero()[:3].tolist()
        raise ValueError(
            f"{name} holds NaN or infinite values (first at index {bad}); "
            "interpolate gaps or drop those frames before calling deepemg."
        )
    return tensor


def check_same_shape(reference: torch.Tensor, reference_name: str, **others: torch.Tensor) -> None:
    """Raise when any of ``others`` differs in shape from ``reference``."""
    for name, tensor in others.items():
        if tensor.shape != reference.shape:
            raise ValueError(
                f"{name} has shape {tuple(tensor.shape)} but {reference_name} has shape "
                f"{tuple(reference.shape)}; they must match (one value per time step)."
            )


def check_muscle_axis(
    activation: torch.Tensor, angle: torch.Tensor, muscles: list[str], name: str = "activation"
) -> None:
    """Check that ``activation`` is ``angle.shape + (n_muscles,)``."""
    if activation.ndim == 0 or activation.shape[-1] != len(muscles):
        raise ValueError(
            f"{name} must have one column per muscle ({len(muscles)}: {muscles}) on its last "
            f"axis, got shape {tuple(activation.shape)}."
        )
    if activation.shape[:-1] != angle.shape:
        raise ValueError(
            f"{name} has shape {tuple(activation.shape)}, which does not match the angle's "
            f"shape {tuple(angle.shape)} + ({len(muscles)},)."
        )


def check_unit_interval(tensor: torch.Tensor, name: str) -> None:
    """Raise when ``tensor`` leaves [0, 1] (activations and EMG envelopes are normalised)."""
    low, high = float(tensor.detach().min()), float(tensor.detach().max())
    if low < 0.0 or high > 1.0:
        raise ValueError(
            f"{name} must lie in [0, 1] (normalised to the subject's maximum), got values from "
            f"{low:.4g} to {high:.4g}."
        )


def check_activation_filter(g1: torch.Tensor, g2: torch.Tensor, delay: torch.Tensor) -> None:
    """Raise for an unstable activation filter (``|g| >= 1``) or a negative delay."""
    if bool((g1.abs() >= 1).any() | (g2.abs() >= 1).any()):
        raise ValueError("g1 and g2 must satisfy |g| < 1 for a stable activation filter.")
    if bool((delay < 0).any()):
        raise ValueError("delay must be >= 0 s.")

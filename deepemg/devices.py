"""Where deepemg computes: a torch device this machine has, or a clear error."""

from __future__ import annotations

import torch

__all__ = ["check_device"]


def check_device(device) -> torch.device:
    """``device`` as a torch device this machine has, or a clear error.

    Examples
    --------
    >>> check_device("cpu")
    device(type='cpu')
    """
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(
            f"device={device!r} is no torch device; use 'cpu' (or 'cuda' for a GPU)."
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={str(device)!r}, but torch sees no CUDA device (torch "
            f"{torch.__version__}); use device='cpu'."
        )
    return device

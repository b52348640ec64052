"""Data sets: simulated subjects with known deep-muscle EMG."""

from .export import export_trials
from .lifting import excitation_from_activation, make_elbow_lifting
from .subjects import SimulatedSubject

__all__ = [
    "SimulatedSubject",
    "excitation_from_activation",
    "export_trials",
    "make_elbow_lifting",
]

"""Data sets: simulated subjects with known deep-muscle EMG."""

from .export import export_trials
from .lifting import excitation_from_activation, make_elbow_lifting
from .scenarios import SCENARIOS, Scenario, make_scenario
from .subjects import ScenarioSubject, SimulatedSubject

__all__ = [
    "SCENARIOS",
    "Scenario",
    "ScenarioSubject",
    "SimulatedSubject",
    "excitation_from_activation",
    "export_trials",
    "make_elbow_lifting",
    "make_scenario",
]

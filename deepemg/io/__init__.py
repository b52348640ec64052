"""Readers for real recordings: OpenSim .sto/.mot, c3d analog channels, csv tables; trials to X, y.

Writers back into OpenSim: :func:`write_storage` (any columns) and :func:`write_muscle_storage`
(excitations or activations with OpenSim's labels), both through OpenSim's own file adapter.

Every reader returns the time (s), the samples as a float64 array ``(n_samples, n_columns)``,
the column labels and the sampling rate (Hz), and raises a clear error for a missing file, a
file of another format, or NaN in a recording. :func:`load_trials` turns a subject's trial
files and a model into ``X`` and ``y`` in deepemg's layout, EMG in MVC units (``docs/data.md``);
:func:`load_each_trial` does the same keeping each trial whole.
"""

from .c3d import Analogs, read_c3d_analogs
from .manifest import MANIFEST, read_manifest, write_manifest
from .storage import Storage, read_storage, write_muscle_storage, write_storage
from .table import Recording, read_csv_table, resample
from .trials import DERIVATIVE_WINDOW, KINEMATIC_CHANNELS, MVC_WINDOW, load_each_trial, load_trials

__all__ = [
    "DERIVATIVE_WINDOW",
    "KINEMATIC_CHANNELS",
    "MANIFEST",
    "MVC_WINDOW",
    "Analogs",
    "Recording",
    "Storage",
    "load_each_trial",
    "load_trials",
    "read_c3d_analogs",
    "read_csv_table",
    "read_manifest",
    "read_storage",
    "resample",
    "write_manifest",
    "write_muscle_storage",
    "write_storage",
]

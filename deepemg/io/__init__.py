"""Readers for real recordings: OpenSim .sto/.mot, c3d analog channels, csv tables; trials to X, y.

Writers back into OpenSim: :func:`write_storage` (any columns) and :func:`write_muscle_storage`
(excitations or activations with OpenSim's labels), both through OpenSim's own file adapter.

Every reader returns the time (s), the samples as a float64 array ``(n_samples, n_columns)``,
the column labels and the sampling rate (Hz), and raises a clear error for a missing file, a
file of another format, or NaN in a recording. :func:`load_trials` turns a subject's trial
files and a model into ``X`` and ``y`` in deepemg's layout, EMG in MVC units (``docs/data.md``);
:func:`load_each_trial` does the same keeping each trial whole.

**EMG units: one rule** (as in :func:`~deepemg.datasets.make_elbow_lifting`'s arrays), for
:func:`load_trials` and :func:`load_each_trial`: envelopes are in units of a maximal voluntary
contraction (MVC).

- Trials that give ``mvc`` (the subject's MVC recordings) are divided, muscle by muscle, by the
  MVC reference: the highest mean envelope over ``MVC_WINDOW`` = 0.5 s in those recordings,
  processed like the trials. Envelopes above 1 (a lift stronger than the MVC trial) are kept,
  up to :data:`~deepemg.validation.EMG_CEILING` = 1.5; above that the reference cannot be the
  muscle's MVC and a ValueError names the trial and the muscle.
- A subject without MVC recordings is normalised to each muscle's maximum envelope over all of
  that subject's trials given in the call (whole files, not only the part that the kinematics
  cover): never trial by trial, so give all of a subject's trials together
  (:func:`load_each_trial` keeps trials apart while normalising them together).
- A subject's trials with EMG either all give ``mvc`` or none do.
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

"""Draw one trial's EMG with :class:`deepemg.display.EMGDisplay` and save it as a PNG.

A small NMM (a 2-member ensemble, so that every muscle gets a 90 % band) is fitted on three
simulated lifts of one subject and draws the fourth, which it did not see: the measured
surface EMG against the prediction, the deep muscles against their simulated truth (which
``y`` leaves NaN: ``y_true`` has it), and the muscle model's torque against inverse dynamics
(which it follows closely: by default, ``predict_physics="auto"``, the network's EMG is
corrected so that the muscle model reproduces that torque, for a subject whose model adequacy
is not poor).

Run ``python examples/plot_emg_display.py [out.png]`` (default ``emg_display.png`` in the
current folder); it takes about 20 s on two cores. The simulated subject is cached in
``$DEEPEMG_DATA`` or ``~/.cache/deepemg``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

from deepemg import NMMEnsemble, NMMRegressor
from deepemg.datasets import make_elbow_lifting
from deepemg.display import EMGDisplay


def save_atomically(figure, path: Path) -> None:
    """Write ``figure`` to ``path`` whole or not at all: a temporary file in the same folder,
    then a rename (``os.replace``), so that a reader never sees half a file."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        figure.savefig(temporary, format=path.suffix[1:] or "png", dpi=110, bbox_inches="tight")
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> Path:
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0] if args else "emg_display.png").resolve()
    data = make_elbow_lifting(n_subjects=1, n_trials=4, duration=2.0, random_state=0)
    template = NMMRegressor(max_epochs=60, window=50)
    nmm = NMMEnsemble(template, n_members=2, n_jobs=1, random_state=0)
    nmm.fit(data.X[:3], data.y[:3], subject_ids=data.groups[:3])
    # the measured (noisy) surface EMG of y, and the deep muscles' simulated truth, which y
    # leaves NaN: only simulated data have it
    emg = data.y.copy()
    deep = [data.muscles.index(m) for m in data.deep_muscles]
    emg[..., deep] = data.y_true[..., deep]
    display = EMGDisplay.from_estimator(nmm, data.X, emg, subject_ids=data.groups, trial=3)
    save_atomically(display.figure_, path)
    plt.close(display.figure_)
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    main()
